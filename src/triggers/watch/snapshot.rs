//! The persisted snapshot: a compact binary encoding of the tree, so that `watch --once`
//! can compare against the last run. Layout (little endian):
//!
//! ```text
//! magic "BGRUNWS\0" | version u32 | filter fingerprint u64 | exclude-file key
//! | root folder (recursive) | xxh3-64 of everything before, u64
//! folder: name | flags u8 (1: key, 2: .gitignore key) | [key] | [key]
//!         | n files (varint) | files | n folders (varint) | folders
//! file:   name | key | hash u64 | flags u8 (1: racy, 2: symlink)
//! key:    size (varint) | mtime ns i64 | ctime - mtime (zigzag varint) | inode (varint)
//! name:   length (varint) | bytes
//! ```
//! A snapshot that fails its checksum or parse is reported and replaced by a new baseline:
//! it is a cache of the tree, not user data.

use anyhow::{Result, bail};

use super::sys::Key;
use super::tree::{Dir, FileEnt};

const MAGIC: &[u8; 8] = b"BGRUNWS\0";
pub const VERSION: u32 = 1;
const MAX_DEPTH: usize = 4096;

/// What is stored besides the tree.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Header {
    pub fingerprint: u64,
    pub exclude_key: Option<Key>,
}

struct W(Vec<u8>);

impl W {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn key(&mut self, k: &Key) {
        self.varint(k.size);
        self.0.extend_from_slice(&k.mtime.to_le_bytes());
        let d = k.ctime.wrapping_sub(k.mtime);
        self.varint(((d << 1) ^ (d >> 63)) as u64);
        self.varint(k.ino);
    }
    fn dir(&mut self, d: &Dir) {
        self.bytes(&d.name);
        let flags = u8::from(d.key.is_some()) | (u8::from(d.ignore_key.is_some()) << 1);
        self.0.push(flags);
        if let Some(k) = &d.key {
            self.key(k);
        }
        if let Some(k) = &d.ignore_key {
            self.key(k);
        }
        self.varint(d.files.len() as u64);
        for f in &d.files {
            self.bytes(&f.name);
            self.key(&f.key);
            self.0.extend_from_slice(&f.hash.to_le_bytes());
            self.0.push(u8::from(f.racy) | (u8::from(f.symlink) << 1));
        }
        self.varint(d.dirs.len() as u64);
        for s in &d.dirs {
            self.dir(s);
        }
    }
}

/// Encode a tree.
pub fn encode(h: &Header, root: &Dir) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(64 * 1024));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&VERSION.to_le_bytes());
    w.0.extend_from_slice(&h.fingerprint.to_le_bytes());
    w.0.push(u8::from(h.exclude_key.is_some()));
    if let Some(k) = &h.exclude_key {
        w.key(k);
    }
    w.dir(root);
    let sum = xxhash_rust::xxh3::xxh3_64(&w.0);
    w.0.extend_from_slice(&sum.to_le_bytes());
    w.0
}

struct R<'a> {
    b: &'a [u8],
    at: usize,
}

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.b.len() - self.at < n {
            bail!("truncated at byte {}", self.at);
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        bail!("bad varint at byte {}", self.at)
    }
    fn len(&mut self) -> Result<usize> {
        let n = self.varint()? as usize;
        if n > self.b.len() - self.at {
            bail!("bad length at byte {}", self.at);
        }
        Ok(n)
    }
    fn name(&mut self) -> Result<Box<[u8]>> {
        let n = self.len()?;
        Ok(self.take(n)?.into())
    }
    fn key(&mut self) -> Result<Key> {
        let size = self.varint()?;
        let mtime = self.u64()? as i64;
        let z = self.varint()?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let ino = self.varint()?;
        Ok(Key {
            size,
            mtime,
            ctime: mtime.wrapping_add(d),
            ino,
        })
    }
    fn dir(&mut self, depth: usize) -> Result<Dir> {
        if depth > MAX_DEPTH {
            bail!("folders nested too deep");
        }
        let name = self.name()?;
        let flags = self.u8()?;
        let key = if flags & 1 != 0 {
            Some(self.key()?)
        } else {
            None
        };
        let ignore_key = if flags & 2 != 0 {
            Some(self.key()?)
        } else {
            None
        };
        let nf = self.len()?;
        let mut files = Vec::with_capacity(nf);
        for _ in 0..nf {
            let name = self.name()?;
            let key = self.key()?;
            let hash = self.u64()?;
            let fl = self.u8()?;
            files.push(FileEnt {
                name,
                key,
                hash,
                racy: fl & 1 != 0,
                symlink: fl & 2 != 0,
            });
        }
        let nd = self.len()?;
        let mut dirs = Vec::with_capacity(nd);
        for _ in 0..nd {
            dirs.push(self.dir(depth + 1)?);
        }
        Ok(Dir {
            name,
            key,
            ignore_key,
            files,
            dirs,
            ignore: None,
        })
    }
}

/// Decode a snapshot; an error says what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<(Header, Dir)> {
    if bytes.len() < MAGIC.len() + 4 + 8 + 1 + 8 || &bytes[..8] != MAGIC {
        bail!("not a bgrun watch snapshot");
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut a = [0u8; 8];
    a.copy_from_slice(sum);
    if xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(a) {
        bail!("checksum mismatch (a torn or corrupted file)");
    }
    let mut r = R { b: body, at: 8 };
    let mut v = [0u8; 4];
    v.copy_from_slice(r.take(4)?);
    let version = u32::from_le_bytes(v);
    if version != VERSION {
        bail!("snapshot format {version}, this build reads {VERSION}");
    }
    let fingerprint = r.u64()?;
    let exclude_key = if r.u8()? != 0 { Some(r.key()?) } else { None };
    let root = r.dir(0)?;
    if r.at != body.len() {
        bail!("trailing bytes after the tree");
    }
    Ok((
        Header {
            fingerprint,
            exclude_key,
        },
        root,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> Key {
        Key {
            size: n,
            mtime: 1_700_000_000_123_456_789 + n as i64,
            ctime: 1_700_000_000_123_456_789 - 5,
            ino: 1000 + n,
        }
    }

    fn tree() -> Dir {
        let mut root = Dir::new(b"");
        root.key = Some(key(1));
        root.ignore_key = Some(key(2));
        root.files.push(FileEnt {
            name: b"a.py".to_vec().into(),
            key: key(3),
            hash: 42,
            racy: true,
            symlink: false,
        });
        let mut sub = Dir::new(b"caf\xe9");
        sub.files.push(FileEnt {
            name: b"l\nx.py".to_vec().into(),
            key: key(4),
            hash: u64::MAX,
            racy: false,
            symlink: true,
        });
        root.dirs.push(sub);
        root
    }

    #[test]
    fn round_trips() {
        let h = Header {
            fingerprint: 7,
            exclude_key: Some(key(9)),
        };
        let bytes = encode(&h, &tree());
        let (h2, t2) = decode(&bytes).unwrap();
        assert_eq!(h, h2);
        assert_eq!(format!("{:?}", tree()), format!("{t2:?}"));
    }

    #[test]
    fn rejects_damage() {
        let bytes = encode(&Header::default(), &tree());
        for cut in [0, 10, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(decode(&flipped).is_err());
    }
}

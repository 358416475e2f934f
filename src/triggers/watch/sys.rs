//! The few system calls the watcher makes, relative to an open directory (`openat`,
//! `fstatat`, `readdir` on that descriptor): the kernel resolves one name per call instead
//! of the whole path, which is most of the cost of a stat pass over a deep tree. Names are
//! bytes: nothing here assumes UTF-8.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use xxhash_rust::xxh3::Xxh3;

/// What decides whether a file may have changed: when all of it is equal, the content is
/// taken as unchanged (git's rule), apart from racy timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Key {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub ctime: i64,
    pub ino: u64,
}

/// The key of a file from `std::fs::symlink_metadata`.
pub fn key_of(m: &std::fs::Metadata) -> Key {
    use std::os::unix::fs::MetadataExt;
    Key {
        size: m.size(),
        mtime: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        ctime: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        ino: m.ino(),
    }
}

/// The kind of a directory entry, as far as the watcher cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Symlink,
    Dir,
    /// Sockets, fifos, devices: never read.
    Other,
}

#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub key: Key,
    pub kind: Kind,
}

fn kind_of_mode(mode: libc::mode_t) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFDIR => Kind::Dir,
        _ => Kind::Other,
    }
}

// The casts are no-ops on 64-bit Linux, not on every libc.
#[allow(clippy::unnecessary_cast)]
fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        key: Key {
            size: st.st_size as u64,
            mtime: st.st_mtime as i64 * 1_000_000_000 + st.st_mtime_nsec as i64,
            ctime: st.st_ctime as i64 * 1_000_000_000 + st.st_ctime_nsec as i64,
            ino: st.st_ino as u64,
        },
        kind: kind_of_mode(st.st_mode),
    }
}

/// A NUL-terminated copy of `name` in a reused buffer.
fn c_name<'a>(buf: &'a mut Vec<u8>, name: &[u8]) -> io::Result<&'a CStr> {
    buf.clear();
    buf.extend_from_slice(name);
    buf.push(0);
    CStr::from_bytes_with_nul(buf).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `lstat` of `name` inside the directory `dir`.
pub fn stat_at(dir: RawFd, name: &[u8], buf: &mut Vec<u8>) -> io::Result<Stat> {
    let c = c_name(buf, name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: c is NUL-terminated; st is written by the kernel on success.
    let rc = unsafe { libc::fstatat(dir, c.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded.
    let st = unsafe { st.assume_init() };
    Ok(stat_of(&st))
}

/// `fstat` of an open descriptor.
pub fn stat_fd(fd: RawFd) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded.
    let st = unsafe { st.assume_init() };
    Ok(stat_of(&st))
}

/// Open a directory by absolute path (the root).
pub fn open_dir(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = Vec::new();
    open_dir_at(libc::AT_FDCWD, path.as_os_str().as_bytes(), &mut buf)
}

/// Open the directory `name` inside `dir`, never following a symlink (so a symlink loop
/// cannot be entered).
pub fn open_dir_at(dir: RawFd, name: &[u8], buf: &mut Vec<u8>) -> io::Result<OwnedFd> {
    let c = c_name(buf, name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: c is NUL-terminated.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A name in a folder, with its kind when the listing told it.
pub type Entry = (Box<[u8]>, Option<Kind>);

/// The entries of an open directory (without `.` and `..`), with their kind when the
/// filesystem reports it (`None`: ask `stat_at`).
pub fn list(dir: &OwnedFd) -> io::Result<Vec<Entry>> {
    use rustix::fs::{Dir, FileType};
    // rustix reads the entries (getdents64 on Linux, readdir elsewhere) through its own
    // descriptor for the same directory; errors are errno values, no libc errno games.
    let mut d = Dir::read_from(dir).map_err(io::Error::from)?;
    let mut out = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent.map_err(io::Error::from)?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let kind = match ent.file_type() {
            FileType::RegularFile => Some(Kind::File),
            FileType::Symlink => Some(Kind::Symlink),
            FileType::Directory => Some(Kind::Dir),
            FileType::Unknown => None,
            _ => Some(Kind::Other),
        };
        out.push((name.into(), kind));
    }
    Ok(out)
}

/// The hash of a file's content (a symlink: of its target), read relative to `dir`.
pub fn hash_at(
    dir: RawFd,
    name: &[u8],
    kind: Kind,
    buf: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> io::Result<u64> {
    if kind == Kind::Symlink {
        let c = c_name(buf, name)?;
        data.resize(4096, 0);
        // SAFETY: data has 4096 writable bytes.
        let n = unsafe {
            libc::readlinkat(
                dir,
                c.as_ptr(),
                data.as_mut_ptr() as *mut libc::c_char,
                data.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(xxhash_rust::xxh3::xxh3_64(&data[..n as usize]) ^ 0x5157_4c49_4e4b);
    }
    let c = c_name(buf, name)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: c is NUL-terminated.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by the File.
    let mut f = unsafe { File::from_raw_fd(fd) };
    if data.len() < 64 * 1024 {
        data.resize(64 * 1024, 0);
    }
    let mut h = Xxh3::new();
    loop {
        match f.read(data) {
            Ok(0) => break,
            Ok(n) => h.update(&data[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.digest())
}

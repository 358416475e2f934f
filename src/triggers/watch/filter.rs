//! Which paths are watched: `paths` and `exclude_paths` globs (matched against the
//! repo-relative path), and .gitignore rules. Excluded folders are pruned during the walk:
//! a folder is excluded when an exclude glob matches it, or when a glob ending in `/**`
//! matches it without that tail (`**/node_modules/**` prunes every `node_modules`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The compiled filters.
#[derive(Debug)]
pub struct Filter {
    paths: Option<GlobSet>,
    exclude: GlobSet,
    exclude_dirs: GlobSet,
    pub respect_gitignore: bool,
    /// `.git/info/exclude`, then the user's global excludes file: the lowest precedence.
    base_ignores: Vec<Gitignore>,
}

fn build(globs: &[String], what: &str) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).with_context(|| format!("triggers.file_watch.{what}: bad glob {g:?}"))?);
    }
    b.build()
        .with_context(|| format!("triggers.file_watch.{what}"))
}

fn p(rel: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(rel))
}

impl Filter {
    pub fn new(
        root: &Path,
        paths: &[String],
        exclude: &[String],
        respect_gitignore: bool,
    ) -> Result<Filter> {
        let dir_globs: Vec<String> = exclude
            .iter()
            .filter_map(|g| g.strip_suffix("/**").map(str::to_string))
            .filter(|g| !g.is_empty())
            .chain(exclude.iter().cloned())
            .collect();
        let mut base_ignores = Vec::new();
        if respect_gitignore {
            let mut b = GitignoreBuilder::new(root);
            b.add(root.join(".git/info/exclude"));
            if let Ok(g) = b.build() {
                base_ignores.push(g);
            }
            let (global, _) = Gitignore::global();
            base_ignores.push(global);
        }
        Ok(Filter {
            paths: if paths.is_empty() {
                None
            } else {
                Some(build(paths, "paths")?)
            },
            exclude: build(exclude, "exclude_paths")?,
            exclude_dirs: build(&dir_globs, "exclude_paths")?,
            respect_gitignore,
            base_ignores,
        })
    }

    /// Whether a folder (repo-relative) is pruned by the exclude globs.
    pub fn dir_excluded(&self, rel: &[u8]) -> bool {
        self.exclude_dirs.is_match(p(rel))
    }

    /// Whether a file (repo-relative) is watched by the globs.
    pub fn file_watched(&self, rel: &[u8]) -> bool {
        let path = p(rel);
        self.paths.as_ref().is_none_or(|s| s.is_match(path)) && !self.exclude.is_match(path)
    }

    /// Whether gitignore rules ignore `abs`: the deepest .gitignore that has an opinion
    /// wins, then `.git/info/exclude`, then the global excludes file.
    pub fn ignored(&self, stack: &[std::sync::Arc<LazyIgnore>], abs: &Path, is_dir: bool) -> bool {
        if !self.respect_gitignore {
            return false;
        }
        for lazy in stack.iter().rev() {
            let m = lazy.get().matched(abs, is_dir);
            if m.is_ignore() {
                return true;
            }
            if m.is_whitelist() {
                return false;
            }
        }
        for g in &self.base_ignores {
            let m = g.matched(abs, is_dir);
            if m.is_ignore() {
                return true;
            }
            if m.is_whitelist() {
                return false;
            }
        }
        false
    }
}

/// A folder's .gitignore, parsed the first time a walk needs it.
#[derive(Debug)]
pub struct LazyIgnore {
    dir: PathBuf,
    cell: OnceLock<Gitignore>,
}

impl LazyIgnore {
    pub fn new(dir: PathBuf) -> LazyIgnore {
        LazyIgnore {
            dir,
            cell: OnceLock::new(),
        }
    }

    pub fn get(&self) -> &Gitignore {
        self.cell.get_or_init(|| {
            let mut b = GitignoreBuilder::new(&self.dir);
            b.add(self.dir.join(".gitignore"));
            b.build().unwrap_or_else(|_| Gitignore::empty())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(paths: &[&str], ex: &[&str]) -> Filter {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Filter::new(Path::new("/nonexistent"), &s(paths), &s(ex), false).unwrap()
    }

    #[test]
    fn globs_match_files_and_prune_folders() {
        let f = f(
            &["**/*.py", "src/**/*.ts"],
            &["**/node_modules/**", "**/.venv/**", "gen"],
        );
        assert!(f.file_watched(b"a.py"));
        assert!(f.file_watched(b"x/y/a.py"));
        assert!(f.file_watched(b"src/a/b.ts"));
        assert!(!f.file_watched(b"lib/b.ts"));
        assert!(!f.file_watched(b"x/node_modules/a.py"));
        assert!(f.dir_excluded(b"node_modules"));
        assert!(f.dir_excluded(b"a/b/node_modules"));
        assert!(f.dir_excluded(b".venv"));
        assert!(f.dir_excluded(b"gen"));
        assert!(!f.dir_excluded(b"src"));
        assert!(!f.dir_excluded(b"node_modules_x"));
        assert!(f.file_watched(b"caf\xe9.py"));
    }

    #[test]
    fn empty_paths_watch_everything() {
        let f = f(&[], &[]);
        assert!(f.file_watched(b"README"));
    }
}

//! What is in the analyzed directory: its source files by language (one walk, skipping
//! dependency, build and VCS directories) and its marker files; where its tools live; and
//! how to turn a path a tool printed into a repo-relative one.

use std::path::{Component, Path, PathBuf};

/// Directories never analyzed: VCS, virtualenvs, dependencies, build output, caches.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".bgrun",
    "node_modules",
    ".venv",
    "venv",
    ".venv-tools",
    ".tox",
    ".nox",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "target",
    "build",
    "dist",
    ".eggs",
    "site-packages",
    ".idea",
    ".vscode",
    ".gradle",
    ".next",
    "coverage",
];

/// Extensions of source files, by language, for the tool-free size pass.
const LANGS: &[(&str, &[&str])] = &[
    ("python", &["py", "pyi"]),
    ("javascript", &["js", "mjs", "cjs", "jsx"]),
    ("typescript", &["ts", "mts", "cts", "tsx"]),
    ("rust", &["rs"]),
    ("go", &["go"]),
    ("java", &["java"]),
    ("kotlin", &["kt", "kts"]),
    ("c", &["c", "h"]),
    ("c++", &["cc", "cpp", "cxx", "hpp", "hh"]),
    ("c#", &["cs"]),
    ("ruby", &["rb"]),
    ("php", &["php"]),
    ("swift", &["swift"]),
    ("scala", &["scala"]),
    ("shell", &["sh", "bash"]),
    ("lua", &["lua"]),
    ("vue", &["vue"]),
    ("svelte", &["svelte"]),
];

/// A source file found by the walk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative to the analyzed directory (what tools are given).
    pub rel: PathBuf,
    pub lang: &'static str,
}

/// The analyzed directory.
#[derive(Debug, Clone)]
pub struct Project {
    pub repo: PathBuf,
    /// The analyzed directory (the repo root unless a PATH was given).
    pub root: PathBuf,
    /// `root` relative to `repo`, `/`-separated (empty for the repo itself).
    pub root_rel: String,
    pub files: Vec<SourceFile>,
}

impl Project {
    pub fn scan(root: &Path, repo: &Path) -> Project {
        let root_rel = root.strip_prefix(repo).map(slash).unwrap_or_default();
        let mut files = Vec::new();
        // `.gitignore` (and `.git/info/exclude`, `.ignore`) are honoured as git does, also
        // from parent directories up to the repository; hidden files are still analyzed.
        let walker = ignore::WalkBuilder::new(root)
            .hidden(false)
            .git_global(false)
            .require_git(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|e| {
                e.depth() == 0
                    || !(e.file_type().is_some_and(|t| t.is_dir())
                        && (SKIP_DIRS.contains(&e.file_name().to_string_lossy().as_ref())
                            || e.file_name().to_string_lossy().ends_with(".egg-info")))
            })
            .build();
        for e in walker.flatten() {
            if !e.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Some(ext) = e.path().extension().and_then(|x| x.to_str()) else {
                continue;
            };
            let Some((lang, _)) = LANGS.iter().find(|(_, exts)| exts.contains(&ext)) else {
                continue;
            };
            if let Ok(rel) = e.path().strip_prefix(root) {
                files.push(SourceFile {
                    rel: rel.to_path_buf(),
                    lang,
                });
            }
        }
        Project {
            repo: repo.to_path_buf(),
            root: root.to_path_buf(),
            root_rel,
            files,
        }
    }

    /// Source files of one language, relative to the analyzed directory.
    pub fn files_of(&self, lang: &str) -> Vec<&Path> {
        self.files
            .iter()
            .filter(|f| f.lang == lang)
            .map(|f| f.rel.as_path())
            .collect()
    }

    pub fn has_lang(&self, lang: &str) -> bool {
        self.files.iter().any(|f| f.lang == lang)
    }

    /// Is `name` (relative to the analyzed directory) a file?
    pub fn has(&self, name: &str) -> bool {
        self.root.join(name).is_file()
    }

    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(name)).ok()
    }

    /// Does it look like a Python project (sources or dependency manifests)?
    pub fn is_python(&self) -> bool {
        self.has_lang("python")
            || [
                "pyproject.toml",
                "setup.py",
                "setup.cfg",
                "requirements.txt",
            ]
            .iter()
            .any(|m| self.has(m))
    }

    /// Find a tool: the project's virtualenv or node_modules first, then `$PATH`.
    pub fn find_tool(&self, name: &str) -> Option<PathBuf> {
        if self.root == self.repo {
            super::exec::find(name, &[&self.root])
        } else {
            super::exec::find(name, &[&self.root, &self.repo])
        }
    }

    /// A path a tool printed (absolute, or relative to the analyzed directory) as a
    /// repo-relative, `/`-separated path.
    pub fn rel(&self, printed: &str) -> String {
        let p = Path::new(printed);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        };
        let abs = normalize(&abs);
        match abs.strip_prefix(&self.repo) {
            Ok(r) => slash(r),
            Err(_) => printed.trim_start_matches("./").to_string(),
        }
    }
}

/// Remove `.` and resolve `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn slash(p: &Path) -> String {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths() {
        let p = Project {
            repo: PathBuf::from("/r"),
            root: PathBuf::from("/r/sub"),
            root_rel: "sub".into(),
            files: Vec::new(),
        };
        assert_eq!(p.rel("./app/x.py"), "sub/app/x.py");
        assert_eq!(p.rel("/r/sub/a.js"), "sub/a.js");
        assert_eq!(p.rel("../top.py"), "top.py");
        assert_eq!(p.rel("/elsewhere/y.py"), "/elsewhere/y.py");
    }

    #[test]
    fn the_walk_honours_gitignore_from_the_repo_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for (f, text) in [
            (".gitignore", "generated/\n*.tmp.py\n"),
            ("app.py", "x = 1\n"),
            ("generated/gen.py", "y = 2\n"),
            ("sub/mod.py", "z = 3\n"),
            ("sub/scratch.tmp.py", "w = 4\n"),
            ("sub/.hidden.py", "h = 5\n"),
        ] {
            std::fs::create_dir_all(r.join(f).parent().unwrap()).unwrap();
            std::fs::write(r.join(f), text).unwrap();
        }
        let all: Vec<String> = Project::scan(r, r)
            .files
            .iter()
            .map(|f| slash(&f.rel))
            .collect();
        assert_eq!(all, ["app.py", "sub/.hidden.py", "sub/mod.py"]);
        let sub: Vec<String> = Project::scan(&r.join("sub"), r)
            .files
            .iter()
            .map(|f| slash(&f.rel))
            .collect();
        assert_eq!(sub, [".hidden.py", "mod.py"]);
    }
}

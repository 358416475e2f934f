//! Git hooks: where git looks for them (`git rev-parse` discovery, `core.hooksPath`, linked worktrees,
//! submodules), the tiny POSIX sh script bgrun installs (chaining the hook it replaces,
//! kept beside it as `NAME.bgrun-orig`), install / uninstall / inspect of one hook file,
//! and the context of a hook run (commit, pushed refs, changed files).
//!
//! The session of `bgrun hooks install|uninstall|status` (which hooks, each one's outcome,
//! what is installed) reads the `Env`'s config; the queue is `super::hook`'s.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::git;
use crate::engine::Env;

/// The script template (placeholders `@BGRUN@`, `@NAME@`, `@STDIN@`).
const TEMPLATE: &str = include_str!("../../hooks/hook.sh");

/// The hooks whose exit status git ignores (they run after the fact and cannot stop it).
/// With nothing to chain, these are installed in the direct form (see [`render`]): bgrun is
/// the file's interpreter, and no shell starts. A hook that can stop git keeps the sh
/// script, whose guard lets the git command go on when bgrun is gone.
pub const AFTER_THE_FACT: [&str; 8] = [
    "post-applypatch",
    "post-checkout",
    "post-commit",
    "post-index-change",
    "post-merge",
    "post-receive",
    "post-rewrite",
    "post-update",
];

/// The longest `#!` line written: kernels before Linux 5.1 read only the first 128 bytes
/// of a script to find its interpreter.
const MAX_SHEBANG: usize = 127;

/// The line that marks a hook file as bgrun's.
pub const MARKER: &str = "# bgrun-managed-hook";

/// Suffix of the backup of a hook bgrun replaced.
pub const BACKUP_SUFFIX: &str = ".bgrun-orig";

/// Hooks git feeds on stdin: the script tees stdin to bgrun and the original.
pub const STDIN_HOOKS: [&str; 5] = [
    "pre-push",
    "pre-receive",
    "post-receive",
    "post-rewrite",
    "reference-transaction",
];

/// What can go wrong finding or changing a hook.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{}: not in a git repository ({source})", .path.display())]
    NotARepository {
        path: PathBuf,
        #[source]
        source: git::GitError,
    },
    #[error(
        "{}: a bare repository has no working tree to run tasks in; install hooks from a \
         clone or worktree instead",
        .0.display()
    )]
    Bare(PathBuf),
    #[error(
        "{} is not bgrun's, and {} (an earlier hook bgrun chained) exists too: another tool \
         replaced bgrun's hook. Move one of them away, then install again",
        .hook.display(),
        .backup.display()
    )]
    Replaced { hook: PathBuf, backup: PathBuf },
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HookError {
    let path = path.to_path_buf();
    move |source| HookError::Io { what, path, source }
}

/// Where this repository's hooks live, as git finds them.
#[derive(Debug, Clone)]
pub struct HookDir {
    pub dir: PathBuf,
    /// `core.hooksPath` as configured, when it is set.
    pub hooks_path: Option<PathBuf>,
    /// The git dir of this checkout (`.git/worktrees/X` for a linked worktree).
    pub git_dir: PathBuf,
    /// The common git dir (the main `.git`), where default hooks live.
    pub common_dir: PathBuf,
    pub workdir: Option<PathBuf>,
}

/// Find the hooks directory for `start` as git does. Refuses bare repositories.
pub fn locate(start: &Path) -> Result<HookDir, HookError> {
    let repo = git::discover(start).map_err(|source| HookError::NotARepository {
        path: start.to_path_buf(),
        source,
    })?;
    if repo.bare {
        return Err(HookError::Bare(repo.git_dir));
    }
    let workdir = repo.workdir;
    let hooks_path = git::config_path(start, "core.hooksPath");
    let common = repo.common_dir;
    let dir = match &hooks_path {
        // git: a relative core.hooksPath is relative to where hooks run, the top-level.
        Some(p) if p.is_relative() => workdir.clone().unwrap_or_else(|| common.clone()).join(p),
        Some(p) => p.clone(),
        None => common.join("hooks"),
    };
    Ok(HookDir {
        dir,
        hooks_path,
        git_dir: repo.git_dir,
        common_dir: common,
        workdir,
    })
}

/// Quote bytes for sh between single quotes.
fn sh_quote(b: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &c in b {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    out
}

/// Whether `name` is safe to put in a script and a file name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The `#!` line that makes `bgrun` the interpreter of a hook file, when its path can be
/// one: absolute, without white space (the kernel splits the line there), short enough.
fn shebang(bgrun: &Path) -> Option<Vec<u8>> {
    let path = bgrun.as_os_str().as_encoded_bytes();
    let ok = bgrun.is_absolute()
        && !path
            .iter()
            .any(|c| c.is_ascii_whitespace() || *c == 0 || *c == b'\x0b');
    let mut line = b"#!".to_vec();
    line.extend_from_slice(path);
    line.extend_from_slice(b" hook\n");
    (ok && line.len() <= MAX_SHEBANG).then_some(line)
}

/// The hook file for `name` calling `bgrun` by absolute path; `chained` when an earlier hook
/// (`NAME.bgrun-orig`) is to run after it.
///
/// Two forms. The direct one, for a hook in [`AFTER_THE_FACT`] with nothing to chain, is
/// `#!/path/to/bgrun hook` and two comment lines: git runs it as `bgrun hook <this file>
/// ARGS...` (bgrun takes the hook's name from the file name), with no shell in between.
/// Otherwise (a chained hook, a hook that can stop git, a bgrun path that cannot be a `#!`
/// line), the POSIX sh script of `hooks/hook.sh`.
pub fn render(name: &str, bgrun: &Path, chained: bool) -> Vec<u8> {
    if !chained
        && AFTER_THE_FACT.contains(&name)
        && let Some(mut out) = shebang(bgrun)
    {
        out.extend_from_slice(
            format!(
                "{MARKER} v2: do not edit; `bgrun hooks uninstall` removes it.\n\
                 # git runs this file with bgrun (the line above): `bgrun hook <this file> ARGS...`.\n"
            )
            .as_bytes(),
        );
        return out;
    }
    let stdin = if STDIN_HOOKS.contains(&name) {
        "1"
    } else {
        "0"
    };
    let mut out = Vec::with_capacity(TEMPLATE.len() + 64);
    for (i, part) in TEMPLATE.split("@BGRUN@").enumerate() {
        if i > 0 {
            out.extend(sh_quote(bgrun.as_os_str().as_encoded_bytes()));
        }
        out.extend_from_slice(
            part.replace("@NAME@", name)
                .replace("@STDIN@", stdin)
                .as_bytes(),
        );
    }
    out
}

/// Whose hook a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Bgrun,
    /// Another manager (`husky`, `pre-commit`, `lefthook`, ...) or the user (None).
    Foreign(Option<&'static str>),
}

/// A hook file on disk.
#[derive(Debug, Clone)]
pub struct FileState {
    pub owner: Owner,
    pub executable: bool,
    pub symlink: bool,
    pub bytes: Vec<u8>,
}

/// One hook's state: the file and its chained backup.
#[derive(Debug, Clone)]
pub struct HookState {
    pub name: String,
    pub path: PathBuf,
    pub file: Option<FileState>,
    pub backup_path: PathBuf,
    pub backup: Option<FileState>,
}

impl HookState {
    /// Whether the file is bgrun's and is what `hooks install` would write now for `exe`
    /// (the form depends on whether there is a hook to chain).
    pub fn current(&self, exe: &Path) -> bool {
        self.file.as_ref().is_some_and(|f| {
            f.owner == Owner::Bgrun && f.bytes == render(&self.name, exe, self.backup.is_some())
        })
    }

    /// `installed`, `foreign` or `missing`.
    pub fn label(&self) -> &'static str {
        match &self.file {
            None => "missing",
            Some(f) if f.owner == Owner::Bgrun => "installed",
            Some(_) => "foreign",
        }
    }
}

fn manager_of(bytes: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]);
    let t = text.to_ascii_lowercase();
    if t.contains("lefthook") {
        Some("lefthook")
    } else if t.contains("husky") {
        Some("husky")
    } else if t.contains("pre-commit.com") || t.contains("generated by pre-commit") {
        Some("pre-commit")
    } else if t.contains("prek") {
        Some("prek")
    } else {
        None
    }
}

fn read_state(path: &Path) -> Option<FileState> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let symlink = meta.file_type().is_symlink();
    let bytes = std::fs::read(path).unwrap_or_default();
    let executable = std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    let ours = !symlink
        && bytes
            .split(|&c| c == b'\n')
            .take(3)
            .any(|l| l.starts_with(MARKER.as_bytes()));
    Some(FileState {
        owner: if ours {
            Owner::Bgrun
        } else {
            Owner::Foreign(manager_of(&bytes))
        },
        executable,
        symlink,
        bytes,
    })
}

pub fn backup_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{BACKUP_SUFFIX}"))
}

pub fn inspect(dir: &Path, name: &str) -> HookState {
    let path = dir.join(name);
    let backup_path = backup_path(dir, name);
    HookState {
        name: name.to_string(),
        file: read_state(&path),
        backup: read_state(&backup_path),
        path,
        backup_path,
    }
}

/// Names of the hooks in `dir` that are bgrun's or have a bgrun backup.
pub fn managed_in(dir: &Path) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(base) = n.strip_suffix(BACKUP_SUFFIX) {
            if valid_name(base) {
                names.insert(base.to_string());
            }
        } else if valid_name(&n) && read_state(&e.path()).is_some_and(|f| f.owner == Owner::Bgrun) {
            names.insert(n);
        }
    }
    names.into_iter().collect()
}

/// The hooks the config asks for (non-empty task lists), as git spells them; exit 2 naming
/// a bad hook name.
pub fn configured(env: &Env) -> anyhow::Result<Vec<String>> {
    let gh = &env.config.triggers.git_hooks;
    if !gh.enabled {
        return Ok(Vec::new());
    }
    let mut v = Vec::new();
    for (name, types) in &gh.hooks {
        if types.is_empty() {
            continue;
        }
        if !valid_name(name) {
            return Err(crate::error::usage(format!(
                "{}: triggers.git_hooks.{name}: not a valid hook name (letters, digits, - and _)",
                env.config_source
            )));
        }
        v.push(name.clone());
    }
    Ok(v)
}

/// Install each of `names` into `dir`, scripts calling `exe`: each one's outcome, in order.
pub fn install_all(
    dir: &Path,
    names: &[String],
    exe: &Path,
) -> Vec<(String, Result<Installed, HookError>)> {
    names
        .iter()
        .map(|n| (n.clone(), install(dir, n, exe)))
        .collect()
}

/// Uninstall bgrun's hooks from `dir` (those there and those `env` configures): each one's
/// outcome, in order.
pub fn uninstall_all(env: &Env, dir: &Path) -> Vec<(String, Result<Removed, HookError>)> {
    let mut names = managed_in(dir);
    for n in configured(env).unwrap_or_default() {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
        .into_iter()
        .map(|n| {
            let r = uninstall(dir, &n);
            (n, r)
        })
        .collect()
}

/// What `bgrun hooks status` shows: the hooks configured or installed, and git's own.
pub struct Status {
    /// The executable an up-to-date script calls.
    pub exe: PathBuf,
    /// The configured hooks, then the others installed (in that order).
    pub states: Vec<HookState>,
    pub config_hooks: Vec<git::ConfigHook>,
    pub git_version: Option<String>,
    /// Whether this git runs hooks defined in config (2.54+).
    pub config_hooks_supported: bool,
}

impl Status {
    pub fn of(env: &Env, hd: &HookDir) -> anyhow::Result<Status> {
        let exe = super::bgrun_exe()?;
        let mut names = configured(env).unwrap_or_default();
        for n in managed_in(&hd.dir) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let states = names.iter().map(|n| inspect(&hd.dir, n)).collect();
        let config_hooks = git::config_hooks(&hd.git_dir);
        let (git_version, config_hooks_supported) = git::version();
        Ok(Status {
            exe,
            states,
            config_hooks,
            git_version,
            config_hooks_supported,
        })
    }
}

/// What install did to one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    Created,
    /// An existing hook was moved to this backup and is run after bgrun.
    Chained(PathBuf),
    /// bgrun's script was rewritten (e.g. bgrun moved).
    Updated,
    Unchanged,
}

/// Write an executable file atomically (temp in the same dir, 0755, rename).
fn write_exec(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.bgrun-tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let res = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o755)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Install bgrun's hook `name` in `dir` calling `exe`, chaining whatever hook is there.
pub fn install(dir: &Path, name: &str, exe: &Path) -> Result<Installed, HookError> {
    let st = inspect(dir, name);
    let foreign = st.file.as_ref().is_some_and(|f| f.owner != Owner::Bgrun);
    let script = &render(name, exe, foreign || st.backup.is_some());
    match &st.file {
        Some(f) if f.owner == Owner::Bgrun => {
            if f.bytes == *script && f.executable {
                return Ok(Installed::Unchanged);
            }
            write_exec(&st.path, script).map_err(io_err("write", &st.path))?;
            Ok(Installed::Updated)
        }
        Some(_) => {
            if st.backup.is_some() {
                return Err(HookError::Replaced {
                    hook: st.path.clone(),
                    backup: st.backup_path.clone(),
                });
            }
            std::fs::rename(&st.path, &st.backup_path).map_err(io_err("move aside", &st.path))?;
            if let Err(e) = write_exec(&st.path, script) {
                let _ = std::fs::rename(&st.backup_path, &st.path);
                return Err(io_err("write", &st.path)(e));
            }
            Ok(Installed::Chained(st.backup_path))
        }
        None => {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
            write_exec(&st.path, script).map_err(io_err("write", &st.path))?;
            Ok(Installed::Created)
        }
    }
}

/// What uninstall did to one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// The chained original is back in place.
    Restored,
    Removed,
    /// Not bgrun's: left alone.
    NotOurs,
    Absent,
}

/// Remove bgrun's hook `name`, putting the chained original back (a rename: same bytes,
/// same mode).
pub fn uninstall(dir: &Path, name: &str) -> Result<Removed, HookError> {
    let st = inspect(dir, name);
    match &st.file {
        Some(f) if f.owner == Owner::Bgrun => {
            if st.backup.is_some() {
                std::fs::rename(&st.backup_path, &st.path)
                    .map_err(io_err("restore", &st.backup_path))?;
                Ok(Removed::Restored)
            } else {
                std::fs::remove_file(&st.path).map_err(io_err("remove", &st.path))?;
                Ok(Removed::Removed)
            }
        }
        Some(_) => Ok(Removed::NotOurs),
        None if st.backup.is_some() => {
            // bgrun's hook was deleted by hand: put the original back.
            std::fs::rename(&st.backup_path, &st.path)
                .map_err(io_err("restore", &st.backup_path))?;
            Ok(Removed::Restored)
        }
        None => Ok(Removed::Absent),
    }
}

// ---------------------------------------------------------------------------------------
// The context of a hook run

const MAX_FILES: usize = 1000;

/// What a hook run is about: the commit, pushed refs, changed files. Best effort: a field
/// git cannot resolve is left out, never an error. Runs `git` in the current directory
/// with the hook's environment (`GIT_DIR`, `GIT_INDEX_FILE`...), as git set it.
pub fn context(name: &str, args: &[String], stdin: &[u8]) -> Value {
    let mut ctx = json!({"hook": name, "args": args});
    if let Some(sha) = git::line(None, ["rev-parse", "-q", "--verify", "HEAD"]) {
        ctx["commit"] = json!(sha);
    }
    if let Some(branch) = git::line(None, ["symbolic-ref", "-q", "--short", "HEAD"]) {
        ctx["branch"] = json!(branch);
    }
    let files: Option<Vec<String>> = match name {
        "pre-commit" | "pre-merge-commit" | "prepare-commit-msg" | "commit-msg" => {
            diff(&["diff", "--cached"])
        }
        "post-commit" => diff(&[
            "diff-tree",
            "-r",
            "--no-commit-id",
            "--root",
            "--diff-merges=first-parent",
            "HEAD",
        ]),
        "post-merge" => diff(&["diff", "ORIG_HEAD", "HEAD"]),
        "post-checkout" if args.len() >= 2 => diff(&["diff", &args[0], &args[1]]),
        "pre-push" => {
            let refs = parse_push_refs(stdin);
            if let Some(r) = args.first() {
                ctx["remote"] = json!(r);
            }
            if let Some(u) = args.get(1) {
                ctx["url"] = json!(u);
            }
            let mut all = std::collections::BTreeSet::new();
            for r in &refs {
                for f in push_files(r).unwrap_or_default() {
                    all.insert(f);
                }
            }
            ctx["refs"] = serde_json::to_value(&refs).unwrap_or(Value::Null);
            Some(all.into_iter().take(MAX_FILES).collect())
        }
        _ => None,
    };
    if let Some(f) = files {
        ctx["changed_files"] = json!(f);
    }
    ctx
}

/// The names a diff touches (renames as a deletion and an addition), at most `MAX_FILES`.
fn diff(args: &[&str]) -> Option<Vec<String>> {
    let mut argv: Vec<&str> = vec!["-c", "core.quotePath=false"];
    argv.extend_from_slice(&args[..1]);
    argv.extend(["--name-only", "-z", "--no-renames", "--no-ext-diff"]);
    argv.extend_from_slice(&args[1..]);
    git::run(None, &argv)
        .ok()
        .map(|out| git::names(&out, MAX_FILES))
}

/// One line of pre-push's stdin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushRef {
    pub local_ref: String,
    pub local_sha: String,
    pub remote_ref: String,
    pub remote_sha: String,
}

/// Parse `<local ref> <local sha> <remote ref> <remote sha>` lines.
pub fn parse_push_refs(stdin: &[u8]) -> Vec<PushRef> {
    String::from_utf8_lossy(stdin)
        .lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            (p.len() == 4).then(|| PushRef {
                local_ref: p[0].to_string(),
                local_sha: p[1].to_string(),
                remote_ref: p[2].to_string(),
                remote_sha: p[3].to_string(),
            })
        })
        .collect()
}

fn is_zero(sha: &str) -> bool {
    sha.bytes().all(|c| c == b'0')
}

fn push_files(r: &PushRef) -> Option<Vec<String>> {
    if is_zero(&r.local_sha) {
        return None; // a deletion
    }
    let local = format!("{}^{{commit}}", r.local_sha);
    git::line(None, ["rev-parse", "-q", "--verify", &local])?;
    let base = if is_zero(&r.remote_sha) {
        format!("{}^", r.local_sha)
    } else {
        format!("{}^{{commit}}", r.remote_sha)
    };
    if git::line(None, ["rev-parse", "-q", "--verify", &base]).is_some() {
        diff(&["diff", &base, &local])
    } else {
        // No base here (a new branch's root, or a remote commit not fetched): every file.
        git::run(None, ["ls-tree", "-r", "--name-only", "-z", &local])
            .ok()
            .map(|out| git::names(&out, MAX_FILES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_quotes_the_path_and_marks_itself() {
        let s = render("pre-push", Path::new("/opt/my bin/it's/bgrun"), false);
        let t = String::from_utf8(s).unwrap();
        assert!(t.lines().nth(1).unwrap().starts_with(MARKER));
        assert!(t.contains("b='/opt/my bin/it'\\''s/bgrun'"));
        assert!(t.contains("n=pre-push"));
        assert!(t.contains("if [ 1 = 1 ]"));
        let t = String::from_utf8(render("post-commit", Path::new("/b"), true)).unwrap();
        assert!(t.contains("if [ 0 = 1 ]"));
    }

    #[test]
    fn an_after_the_fact_hook_with_nothing_to_chain_has_bgrun_as_its_interpreter() {
        let direct = |name, exe: &str, chained| {
            let b = render(name, Path::new(exe), chained);
            let ours = b
                .split(|&c| c == b'\n')
                .take(3)
                .any(|l| l.starts_with(MARKER.as_bytes()));
            assert!(ours, "{}", String::from_utf8_lossy(&b));
            b.starts_with(format!("#!{exe} hook\n").as_bytes())
        };
        assert!(direct("post-commit", "/usr/local/bin/bgrun", false));
        assert!(direct("post-merge", "/opt/b\u{e9}/bgrun", false));
        // Chained, able to stop git, or a path the kernel would split or cut: the sh script.
        assert!(!direct("post-commit", "/usr/local/bin/bgrun", true));
        assert!(!direct("pre-commit", "/usr/local/bin/bgrun", false));
        assert!(!direct("pre-push", "/usr/local/bin/bgrun", false));
        assert!(!direct("post-commit", "/opt/my bin/bgrun", false));
        assert!(!direct("post-commit", "/opt/tab\tbin/bgrun", false));
        assert!(!direct("post-commit", "relative/bgrun", false));
        assert!(!direct(
            "post-commit",
            &format!("/{}/bgrun", "d".repeat(120)),
            false
        ));
        assert!(direct(
            "post-commit",
            &format!("/{}/bgrun", "d".repeat(100)),
            false
        ));
    }

    #[test]
    fn push_refs_parse() {
        let r = parse_push_refs(b"refs/heads/main 1111 refs/heads/main 0000\nbad line\n");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].remote_ref, "refs/heads/main");
    }
}

//! The changed set: which files a change touched, asked of `git` (argv, never a shell) with
//! renames followed (`-M`). From `analyze --changed` (the working tree and the index against
//! HEAD, plus untracked files), `--since REF`, or a trigger's context (`$BGRUN_CONTEXT`:
//! a git hook's commit, staged files, pushed range, merge or checkout; the watcher's
//! debounced paths). `None` from [`from_context`] means "everything" (cron, manual runs).
//!
//! Paths are repository-relative and `/`-separated, the form findings use.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Error;

/// What a change touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    /// Where the set came from (`--changed`, `--since main`, `hook:post-commit`, `watch`).
    pub source: String,
    /// The commit the change is measured from, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Added, modified, or the new side of a rename: files that exist after the change.
    pub changed: BTreeSet<String>,
    /// Files the change removed (their findings go).
    pub deleted: BTreeSet<String>,
    /// `(old, new)` pairs: findings of `old` in a baseline belong to `new` now.
    pub renamed: Vec<(String, String)>,
}

impl ChangeSet {
    fn new(source: &str) -> ChangeSet {
        ChangeSet {
            source: source.to_string(),
            ..ChangeSet::default()
        }
    }

    /// Every path the change touched, old and new.
    pub fn touched(&self) -> impl Iterator<Item = &String> {
        self.changed
            .iter()
            .chain(&self.deleted)
            .chain(self.renamed.iter().map(|(o, _)| o))
    }

    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty() && self.renamed.is_empty()
    }

    /// Forget paths under `dir` (repo-relative): bgrun's own state is not the project's.
    pub fn drop_under(&mut self, dir: &str) {
        if dir.is_empty() {
            return;
        }
        let under =
            |p: &String| p == dir || p.strip_prefix(dir).is_some_and(|r| r.starts_with('/'));
        self.changed.retain(|p| !under(p));
        self.deleted.retain(|p| !under(p));
        self.renamed.retain(|(o, n)| !under(o) && !under(n));
    }

    fn merge(&mut self, other: ChangeSet) {
        for p in other.deleted {
            self.changed.remove(&p);
            self.deleted.insert(p);
        }
        for p in other.changed {
            self.deleted.remove(&p);
            self.changed.insert(p);
        }
        self.renamed.extend(other.renamed);
    }
}

/// Run git in `repo`; stdout, or why it failed.
pub fn git(repo: &Path, args: &[&OsStr]) -> Result<Vec<u8>, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "core.quotepath=off"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(Error::GitSpawn)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Git {
            args: args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            stderr: err.trim().to_string(),
        });
    }
    Ok(out.stdout)
}

fn git_s(repo: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let a: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    git(repo, &a)
}

/// The commit `rev` names (full sha), if it names one.
pub fn resolve(repo: &Path, rev: &str) -> Option<String> {
    if rev.starts_with('-') {
        return None;
    }
    let spec = format!("{rev}^{{commit}}");
    let out = git_s(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
    .ok()?;
    let s = String::from_utf8_lossy(&out).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn lossy(b: &[u8]) -> String {
    Path::new(OsStr::from_bytes(b))
        .to_string_lossy()
        .into_owned()
}

/// Parse `git diff --name-status -z` output (`M\0path\0`, `R100\0old\0new\0`).
pub fn parse_name_status(out: &[u8], into: &mut ChangeSet) {
    let mut it = out.split(|b| *b == 0).filter(|s| !s.is_empty());
    while let Some(status) = it.next() {
        let Some(first) = it.next() else { break };
        match status.first() {
            Some(b'R') => {
                let Some(second) = it.next() else { break };
                let (old, new) = (lossy(first), lossy(second));
                into.changed.insert(new.clone());
                into.renamed.push((old, new));
            }
            Some(b'C') => {
                if let Some(second) = it.next() {
                    into.changed.insert(lossy(second));
                }
            }
            Some(b'D') => {
                into.deleted.insert(lossy(first));
            }
            _ => {
                into.changed.insert(lossy(first));
            }
        }
    }
}

fn diff(repo: &Path, args: &[&str], into: &mut ChangeSet) -> Result<(), Error> {
    let mut a = vec![
        "diff",
        "--name-status",
        "-z",
        "-M",
        "--no-ext-diff",
        "--no-relative",
    ];
    a.extend_from_slice(args);
    let out = git_s(repo, &a)?;
    parse_name_status(&out, into);
    Ok(())
}

fn untracked(repo: &Path, into: &mut ChangeSet) -> Result<(), Error> {
    let out = git_s(
        repo,
        &[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--full-name",
        ],
    )?;
    for p in out.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        into.changed.insert(lossy(p));
    }
    Ok(())
}

/// `--changed`: the working tree's and the index's changes against HEAD, plus untracked
/// files (all files when there is no commit yet).
pub fn working(repo: &Path) -> Result<ChangeSet, Error> {
    let mut cs = ChangeSet::new("--changed");
    match resolve(repo, "HEAD") {
        Some(head) => {
            diff(repo, &[&head], &mut cs)?;
            cs.base = Some(head);
        }
        None => {
            let out = git_s(repo, &["ls-files", "-z", "--full-name"])?;
            for p in out.split(|b| *b == 0).filter(|s| !s.is_empty()) {
                cs.changed.insert(lossy(p));
            }
        }
    }
    untracked(repo, &mut cs)?;
    Ok(cs)
}

/// `--since REF`: what changed from REF to the working tree (untracked files included).
pub fn since(repo: &Path, rev: &str) -> Result<ChangeSet, Error> {
    let sha = resolve(repo, rev).ok_or_else(|| Error::NoCommit {
        rev: rev.to_string(),
    })?;
    let mut cs = ChangeSet::new(&format!("--since {rev}"));
    diff(repo, &[&sha], &mut cs)?;
    untracked(repo, &mut cs)?;
    cs.base = Some(sha);
    Ok(cs)
}

/// The staged files (index against HEAD): what a pre-commit hook is about.
pub fn staged(repo: &Path) -> Result<ChangeSet, Error> {
    let mut cs = ChangeSet::new("hook:pre-commit");
    diff(repo, &["--cached"], &mut cs)?;
    cs.base = resolve(repo, "HEAD");
    Ok(cs)
}

/// Between two commits; `from` None: the commit's own files (its first parent, or the
/// empty tree for a root commit).
pub fn commits(
    repo: &Path,
    from: Option<&str>,
    to: &str,
    source: &str,
) -> Result<ChangeSet, Error> {
    let mut cs = ChangeSet::new(source);
    let to_sha = resolve(repo, to).ok_or_else(|| Error::NoCommit {
        rev: to.to_string(),
    })?;
    let from_sha = match from {
        Some(f) => Some(resolve(repo, f).ok_or_else(|| Error::NoCommit { rev: f.to_string() })?),
        None => resolve(repo, &format!("{to_sha}^")),
    };
    match &from_sha {
        Some(f) => diff(repo, &[f, &to_sha], &mut cs)?,
        None => {
            let out = git_s(
                repo,
                &[
                    "diff-tree",
                    "-r",
                    "--root",
                    "--no-commit-id",
                    "--name-status",
                    "-z",
                    "-M",
                    &to_sha,
                ],
            )?;
            parse_name_status(&out, &mut cs);
        }
    }
    cs.base = from_sha;
    Ok(cs)
}

fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|c| c == b'0')
}

/// The remote's default branch (`refs/remotes/R/HEAD`, else R/main, R/master).
fn remote_default(repo: &Path, remote: &str) -> Option<String> {
    if let Ok(out) = git_s(
        repo,
        &[
            "symbolic-ref",
            "--quiet",
            &format!("refs/remotes/{remote}/HEAD"),
        ],
    ) {
        let s = String::from_utf8_lossy(&out).trim().to_string();
        if !s.is_empty() {
            return resolve(repo, &s);
        }
    }
    ["main", "master"]
        .iter()
        .find_map(|b| resolve(repo, &format!("refs/remotes/{remote}/{b}")))
}

/// pre-push: the files of every pushed range (a new branch: from its merge-base with the
/// remote's default branch). None when a range cannot be known (then: everything).
fn pushed(repo: &Path, ctx: &Value) -> Option<ChangeSet> {
    let remote = ctx
        .get("remote")
        .and_then(Value::as_str)
        .unwrap_or("origin");
    let mut cs = ChangeSet::new("hook:pre-push");
    for r in ctx.get("refs").and_then(Value::as_array)? {
        let local = r.get("local_sha").and_then(Value::as_str)?;
        let remote_sha = r.get("remote_sha").and_then(Value::as_str)?;
        if is_zero(local) {
            continue; // a branch deletion pushes no files
        }
        let base = if is_zero(remote_sha) || resolve(repo, remote_sha).is_none() {
            let def = remote_default(repo, remote)?;
            let out = git_s(repo, &["merge-base", local, &def]).ok()?;
            String::from_utf8_lossy(&out).trim().to_string()
        } else {
            remote_sha.to_string()
        };
        let part = commits(repo, Some(&base), local, "hook:pre-push").ok()?;
        cs.base = part.base.clone();
        cs.merge(part);
    }
    Some(cs)
}

/// A watch context's path (a string, or `{"hex": ..}` for non-UTF-8 bytes) made
/// repo-relative.
fn watch_path(repo: &Path, v: &Value) -> Option<String> {
    let bytes: Vec<u8> = match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(m) => {
            let h = m.get("hex")?.as_str()?;
            (0..h.len())
                .step_by(2)
                .map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()))
                .collect::<Option<Vec<u8>>>()?
        }
        _ => return None,
    };
    let p = Path::new(OsStr::from_bytes(&bytes));
    let rel = p.strip_prefix(repo).unwrap_or(p);
    Some(
        rel.components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// The changed set a trigger's context names; None means everything (cron, manual, a
/// context bgrun cannot resolve, a truncated list).
pub fn from_context(repo: &Path, ctx: &Value) -> Option<ChangeSet> {
    if let Some(hook) = ctx.get("hook").and_then(Value::as_str) {
        let args: Vec<&str> = ctx
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let commit = ctx.get("commit").and_then(Value::as_str).unwrap_or("HEAD");
        let source = format!("hook:{hook}");
        return match hook {
            "pre-commit" | "pre-merge-commit" | "prepare-commit-msg" | "commit-msg" => {
                // The task runs after the hook returned, maybe after the commit: the files
                // the hook saw staged (in its context) are the set; else the index now.
                match ctx.get("changed_files").and_then(Value::as_array) {
                    Some(list) if list.len() < 1000 => {
                        let mut cs = ChangeSet::new(&source);
                        for p in list.iter().filter_map(Value::as_str) {
                            if repo.join(p).exists() {
                                cs.changed.insert(p.to_string());
                            } else {
                                cs.deleted.insert(p.to_string());
                            }
                        }
                        cs.base = resolve(repo, commit);
                        Some(cs)
                    }
                    _ => staged(repo).ok().map(|mut c| {
                        c.source = source;
                        c
                    }),
                }
            }
            "post-commit" => commits(repo, None, commit, &source).ok(),
            "post-merge" => commits(repo, Some("ORIG_HEAD"), commit, &source).ok(),
            "post-checkout" if args.len() >= 2 => {
                commits(repo, Some(args[0]), args[1], &source).ok()
            }
            "pre-push" => pushed(repo, ctx),
            _ => None,
        };
    }
    // The watcher: {"created": [...], "modified": [...], "deleted": [...]}.
    if ctx.get("modified").is_some() || ctx.get("created").is_some() {
        if ["created", "modified", "deleted"]
            .iter()
            .any(|k| ctx.get(format!("{k}_truncated")).is_some())
        {
            return None;
        }
        let mut cs = ChangeSet::new("watch");
        for k in ["created", "modified"] {
            for v in ctx.get(k).and_then(Value::as_array).into_iter().flatten() {
                cs.changed.extend(watch_path(repo, v));
            }
        }
        for v in ctx
            .get("deleted")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            cs.deleted.extend(watch_path(repo, v));
        }
        return Some(cs);
    }
    None
}

/// Write the tree of commit `sha` to `dest` (through a private index, so the repository's
/// own index and work tree are untouched). The project's tool environments (`.venv`,
/// `venv`, `node_modules`) are linked in so the same tools run there.
pub fn export(repo: &Path, sha: &str, dest: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dest).map_err(|source| Error::CreateDir {
        path: dest.to_path_buf(),
        source,
    })?;
    let index = dest.with_extension("index");
    let run = |args: &[&OsStr]| -> Result<(), Error> {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .stdin(Stdio::null())
            .output()
            .map_err(Error::GitSpawn)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Git {
                args: args
                    .first()
                    .map(|a| a.to_string_lossy().into_owned())
                    .into_iter()
                    .collect(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    };
    let mut prefix = dest.as_os_str().to_owned();
    prefix.push("/");
    let mut prefix_arg = std::ffi::OsString::from("--prefix=");
    prefix_arg.push(&prefix);
    let result = run(&[OsStr::new("read-tree"), OsStr::new(sha)]).and_then(|()| {
        run(&[
            OsStr::new("checkout-index"),
            OsStr::new("-a"),
            OsStr::new("-f"),
            &prefix_arg,
        ])
    });
    let _ = std::fs::remove_file(&index);
    result?;
    for env in [".venv", "venv", "node_modules"] {
        let src = repo.join(env);
        let dst = dest.join(env);
        if src.is_dir() && !dst.exists() {
            let _ = std::os::unix::fs::symlink(&src, &dst);
        }
    }
    Ok(())
}

/// The merge-base of HEAD with its upstream branch, when it has one.
pub fn upstream_merge_base(repo: &Path) -> Option<String> {
    let up = resolve(repo, "@{upstream}")?;
    let out = git_s(repo, &["merge-base", "HEAD", &up]).ok()?;
    let s = String::from_utf8_lossy(&out).trim().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_status_with_renames_and_deletions() {
        let out = b"M\0a.py\0R087\0old name.py\0new name.py\0D\0gone.py\0A\0b\xffc.py\0";
        let mut cs = ChangeSet::default();
        parse_name_status(out, &mut cs);
        assert!(cs.changed.contains("a.py"));
        assert!(cs.changed.contains("new name.py"));
        assert!(
            cs.changed
                .iter()
                .any(|p| p.starts_with('b') && p.ends_with("c.py"))
        );
        assert!(cs.deleted.contains("gone.py"));
        assert_eq!(
            cs.renamed,
            vec![("old name.py".into(), "new name.py".into())]
        );
    }

    #[test]
    fn watch_context_paths() {
        let ctx =
            json!({"created": ["n.py"], "modified": [{"hex": "612e7079"}], "deleted": ["/r/d.py"]});
        let cs = from_context(Path::new("/r"), &ctx).unwrap();
        assert_eq!(
            cs.changed.iter().cloned().collect::<Vec<_>>(),
            ["a.py", "n.py"]
        );
        assert!(cs.deleted.contains("d.py"));
        let ctx = json!({"modified": ["a"], "modified_truncated": 3});
        assert!(from_context(Path::new("/r"), &ctx).is_none());
        assert!(from_context(Path::new("/r"), &json!({"trigger": "cron"})).is_none());
    }

    /// A temp repo with `git` run by argv.
    struct Repo(std::path::PathBuf);

    impl Repo {
        fn new(name: &str) -> Repo {
            let d =
                std::env::temp_dir().join(format!("bgrun-changed-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            let r = Repo(d);
            r.git(&["init", "-q", "-b", "main"]);
            r.git(&["config", "user.email", "t@example.com"]);
            r.git(&["config", "user.name", "t"]);
            r
        }
        fn git(&self, args: &[&str]) -> String {
            let out = Command::new("git")
                .arg("-C")
                .arg(&self.0)
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
        fn write(&self, rel: &str, text: &str) {
            std::fs::write(self.0.join(rel), text).unwrap();
        }
        fn commit(&self, msg: &str) -> String {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-qm", msg]);
            self.git(&["rev-parse", "HEAD"])
        }
    }

    impl Drop for Repo {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn files(cs: &ChangeSet) -> Vec<&str> {
        cs.changed.iter().map(String::as_str).collect()
    }

    #[test]
    fn hook_contexts_give_their_changed_sets() {
        let r = Repo::new("hooks");
        r.write("a.py", "a = 1\n");
        r.write("b.py", "b = 1\n");
        let c1 = r.commit("one");
        // post-commit of a root commit: all its files.
        let cs = from_context(&r.0, &json!({"hook": "post-commit", "commit": c1})).unwrap();
        assert_eq!(files(&cs), ["a.py", "b.py"]);
        // pre-commit: the staged files only (renames followed), not unstaged edits.
        r.git(&["mv", "a.py", "moved.py"]);
        r.write("c.py", "c = 1\n");
        r.git(&["add", "c.py"]);
        r.write("b.py", "b = 2\n");
        let cs = from_context(&r.0, &json!({"hook": "pre-commit"})).unwrap();
        assert_eq!(files(&cs), ["c.py", "moved.py"]);
        let seen = json!({"hook": "pre-commit", "changed_files": ["c.py", "gone.py"]});
        let from_hook = from_context(&r.0, &seen).unwrap();
        assert_eq!(files(&from_hook), ["c.py"]);
        assert_eq!(from_hook.deleted.iter().collect::<Vec<_>>(), ["gone.py"]);
        assert_eq!(
            cs.renamed,
            vec![("a.py".to_string(), "moved.py".to_string())]
        );
        assert_eq!(cs.source, "hook:pre-commit");
        let c2 = r.commit("two");
        // post-commit: that commit's files against its parent.
        let cs = from_context(&r.0, &json!({"hook": "post-commit", "commit": c2})).unwrap();
        assert_eq!(files(&cs), ["b.py", "c.py", "moved.py"]);
        // post-checkout old new: the files between them; post-merge: ORIG_HEAD..HEAD.
        let cs = from_context(
            &r.0,
            &json!({"hook": "post-checkout", "args": [c1, c2, "1"]}),
        )
        .unwrap();
        assert_eq!(files(&cs), ["b.py", "c.py", "moved.py"]);
        r.git(&["update-ref", "ORIG_HEAD", &c1]);
        let cs = from_context(&r.0, &json!({"hook": "post-merge", "commit": c2})).unwrap();
        assert_eq!(files(&cs), ["b.py", "c.py", "moved.py"]);
        // A deletion.
        r.git(&["rm", "-q", "c.py"]);
        let c3 = r.commit("three");
        let cs = from_context(&r.0, &json!({"hook": "post-commit", "commit": c3})).unwrap();
        assert!(cs.changed.is_empty());
        assert_eq!(cs.deleted.iter().collect::<Vec<_>>(), ["c.py"]);
    }

    #[test]
    fn pre_push_of_a_new_branch_starts_at_its_merge_base_with_the_remote_default() {
        let r = Repo::new("push");
        r.write("base.py", "x = 1\n");
        let c1 = r.commit("base");
        r.write("main_only.py", "y = 1\n");
        let c2 = r.commit("main moves on");
        r.git(&["update-ref", "refs/remotes/origin/main", &c2]);
        r.git(&["checkout", "-q", "-b", "feature", &c1]);
        r.write("feature.py", "z = 1\n");
        let f1 = r.commit("feature 1");
        r.write("feature2.py", "z = 2\n");
        let f2 = r.commit("feature 2");
        let zero = "0".repeat(40);
        let ctx = json!({"hook": "pre-push", "remote": "origin", "refs": [
            {"local_ref": "refs/heads/feature", "local_sha": f2, "remote_ref": "refs/heads/feature", "remote_sha": zero}
        ]});
        let cs = from_context(&r.0, &ctx).unwrap();
        assert_eq!(files(&cs), ["feature.py", "feature2.py"]);
        assert_eq!(cs.base.as_deref(), Some(c1.as_str()));
        // An existing branch: remote..local.
        let ctx = json!({"hook": "pre-push", "remote": "origin", "refs": [
            {"local_ref": "refs/heads/feature", "local_sha": f2, "remote_ref": "refs/heads/feature", "remote_sha": f1}
        ]});
        assert_eq!(files(&from_context(&r.0, &ctx).unwrap()), ["feature2.py"]);
        // A deletion pushes nothing.
        let ctx = json!({"hook": "pre-push", "refs": [
            {"local_ref": "(delete)", "local_sha": zero, "remote_ref": "refs/heads/x", "remote_sha": f1}
        ]});
        assert!(from_context(&r.0, &ctx).unwrap().is_empty());
    }

    #[test]
    fn working_and_since_include_untracked_and_reject_bad_refs() {
        let r = Repo::new("working");
        r.write("a.py", "a = 1\n");
        r.commit("one");
        r.write("a.py", "a = 2\n");
        r.write("new file.py", "n = 1\n");
        let cs = working(&r.0).unwrap();
        assert_eq!(files(&cs), ["a.py", "new file.py"]);
        let e = since(&r.0, "no-such-ref").unwrap_err();
        assert!(
            matches!(&e, Error::NoCommit { rev } if rev == "no-such-ref"),
            "{e}"
        );
        assert_eq!(e.to_string(), "\"no-such-ref\" names no commit");
        assert!(since(&r.0, "--output=x").is_err());
    }
}

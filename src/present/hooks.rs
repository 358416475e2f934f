//! What `bgrun hooks install|uninstall|status` prints: each hook's outcome, and the state
//! of the hooks directory, each hook file, its chained backup and git's config-defined
//! hooks (text or JSON). The session is `triggers::hooks`'.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use super::print_json;
use crate::config::Config;
use crate::output::Output;
use crate::triggers::hooks::{
    self, HookDir, HookError, HookState, Installed, Owner, Removed, Status,
};

/// The hooks directory, with `core.hooksPath` when it set it.
fn where_(hd: &HookDir) -> String {
    match &hd.hooks_path {
        Some(p) => format!("{} (core.hooksPath = {})", hd.dir.display(), p.display()),
        None => hd.dir.display().to_string(),
    }
}

/// `install` found no hook configured (`source`: the config's name).
pub fn none_configured(out: &Output, source: &impl std::fmt::Display) {
    out.say(format!(
        "no git hooks configured (triggers.git_hooks in {source}); nothing installed"
    ));
}

/// `install` is about to install into `hd`.
pub fn installing(out: &Output, hd: &HookDir) {
    out.say(format!("hooks directory: {}", where_(hd)));
}

/// `install`'s outcomes: the names that failed.
pub fn installed(
    out: &Output,
    hd: &HookDir,
    done: &[(String, Result<Installed, HookError>)],
) -> Result<Vec<String>> {
    outcomes(out, hd, done, |i| match i {
        Installed::Created => "installed".to_string(),
        Installed::Chained(b) => {
            format!(
                "installed, chaining the existing hook (kept as {})",
                b.display()
            )
        }
        Installed::Updated => "updated".to_string(),
        Installed::Unchanged => "already installed".to_string(),
    })
}

/// `uninstall`'s outcomes: the names that failed.
pub fn uninstalled(
    out: &Output,
    hd: &HookDir,
    done: &[(String, Result<Removed, HookError>)],
) -> Result<Vec<String>> {
    outcomes(out, hd, done, |r| {
        match r {
            Removed::Restored => "removed; the original hook is back",
            Removed::Removed => "removed",
            Removed::NotOurs => "not bgrun's: left alone",
            Removed::Absent => "not installed",
        }
        .to_string()
    })
}

/// A line per hook (an error on stderr), then the JSON of all with `--json`.
fn outcomes<T>(
    out: &Output,
    hd: &HookDir,
    done: &[(String, Result<T, HookError>)],
    what: impl Fn(&T) -> String,
) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for (name, r) in done {
        match r {
            Ok(done) => {
                let what = what(done);
                out.say(format!("  {name}: {what}"));
                report.push(json!({"name": name, "result": what}));
            }
            Err(e) => {
                eprintln!("bgrun: {name}: {e}");
                failed.push(name.clone());
                report.push(json!({"name": name, "error": e.to_string()}));
            }
        }
    }
    if out.json {
        print_json(&json!({"hooks_dir": hd.dir, "hooks": report}))?;
    }
    Ok(failed)
}

fn file_json(f: &Option<hooks::FileState>, path: &Path) -> Value {
    match f {
        None => Value::Null,
        Some(f) => json!({
            "path": path,
            "executable": f.executable,
            "symlink": f.symlink,
            "manager": match f.owner { Owner::Bgrun => Some("bgrun"), Owner::Foreign(m) => m },
        }),
    }
}

fn hook_json(config: &Config, st: &HookState, exe: &Path) -> Value {
    let up_to_date = st.file.as_ref().map(|f| f.executable && st.current(exe));
    json!({
        "name": st.name,
        "state": st.label(),
        "path": st.path,
        "file": file_json(&st.file, &st.path),
        "chained_backup": file_json(&st.backup, &st.backup_path),
        "up_to_date": if st.label() == "installed" { up_to_date } else { None },
        "tasks": config.hook_tasks(&st.name),
        "blocking": config.hook_is_blocking(&st.name),
    })
}

/// `status`: the hooks directory, a line per hook and git's config-defined hooks.
pub fn status(out: &Output, config: &Config, hd: &HookDir, s: &Status) -> Result<()> {
    if out.json {
        return print_json(&json!({
            "hooks_dir": hd.dir,
            "core_hooks_path": hd.hooks_path,
            "git_dir": hd.git_dir,
            "common_dir": hd.common_dir,
            "enabled": config.triggers.git_hooks.enabled,
            "hooks": s.states.iter().map(|st| hook_json(config, st, &s.exe)).collect::<Vec<_>>(),
            "git_version": s.git_version,
            "config_hooks_supported": s.config_hooks_supported,
            "config_hooks": s.config_hooks,
        }));
    }
    println!("hooks directory: {}", where_(hd));
    if s.states.is_empty() {
        println!("no git hooks configured and none installed");
    }
    for st in &s.states {
        println!("{}", hook_line(config, st, &s.exe));
    }
    if !s.config_hooks.is_empty() {
        println!(
            "hooks defined in git config{}:",
            if s.config_hooks_supported {
                ""
            } else {
                " (this git is older than 2.54 and does not run them)"
            }
        );
        for h in &s.config_hooks {
            println!(
                "  {} on {}: {}",
                h.name,
                h.events.join(", "),
                h.command.join("; ")
            );
        }
    }
    Ok(())
}

/// `NAME STATE (notes); chained backup PATH -> TASKS [blocking]`.
fn hook_line(config: &Config, st: &HookState, exe: &Path) -> String {
    let mut line = format!("{:<20} {}", st.name, st.label());
    if let Some(f) = &st.file {
        match &f.owner {
            Owner::Foreign(Some(m)) => line.push_str(&format!(" ({m})")),
            Owner::Bgrun if !st.current(exe) => {
                line.push_str(" (outdated: run `bgrun hooks install`)")
            }
            _ => {}
        }
        if !f.executable {
            line.push_str(" (not executable: git skips it)");
        }
    }
    if let Some(b) = &st.backup {
        let who = match &b.owner {
            Owner::Foreign(Some(m)) => format!(" ({m})"),
            _ => String::new(),
        };
        line.push_str(&format!(
            "; chained backup {}{who}{}",
            st.backup_path.display(),
            if b.executable {
                ""
            } else {
                " (not executable)"
            }
        ));
    }
    let tasks = config.hook_tasks(&st.name);
    if !tasks.is_empty() {
        line.push_str(&format!(" -> {}", tasks.join(", ")));
        if config.hook_is_blocking(&st.name) {
            line.push_str(" [blocking]");
        }
    }
    line
}

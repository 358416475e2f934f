//! `bgrun hooks install|uninstall|status` (aliases `install-hooks`, `uninstall-hooks`).
//!
//! Installs the hooks configured in `triggers.git_hooks` into the directory git reads them
//! from (`core.hooksPath` followed; a linked worktree shares the common dir's hooks). An
//! existing hook (the user's, husky's, pre-commit's, lefthook's) is moved beside it as
//! `NAME.bgrun-orig` and run after bgrun; uninstall renames it back: same bytes, same mode.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::HooksCommand;
use crate::triggers::hooks::{self, HookDir, HookState, Installed, Owner, Removed};
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, cmd: HooksCommand) -> Result<Exit> {
    let hd = hooks::locate(&ctx.repo).map_err(error::usage)?;
    match cmd {
        HooksCommand::Install => install(ctx, &hd),
        HooksCommand::Uninstall => uninstall(ctx, &hd),
        HooksCommand::Status => status(ctx, &hd),
    }
}

/// The hooks the config asks for (non-empty task lists), as git spells them.
fn configured(ctx: &Ctx) -> Result<Vec<String>> {
    let gh = &ctx.config.triggers.git_hooks;
    if !gh.enabled {
        return Ok(Vec::new());
    }
    let mut v = Vec::new();
    for (name, types) in &gh.hooks {
        if types.is_empty() {
            continue;
        }
        if !hooks::valid_name(name) {
            return Err(error::usage(format!(
                "{}: triggers.git_hooks.{name}: not a valid hook name (letters, digits, - and _)",
                ctx.config_source
            )));
        }
        v.push(name.clone());
    }
    Ok(v)
}

fn bgrun_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| error::work(format!("cannot find the bgrun executable: {e}")))?;
    Ok(exe.canonicalize().unwrap_or(exe))
}

fn where_(hd: &HookDir) -> String {
    match &hd.hooks_path {
        Some(p) => format!("{} (core.hooksPath = {})", hd.dir.display(), p.display()),
        None => hd.dir.display().to_string(),
    }
}

fn install(ctx: &Ctx, hd: &HookDir) -> Result<Exit> {
    let names = configured(ctx)?;
    if names.is_empty() {
        ctx.out.say(format!(
            "no git hooks configured (triggers.git_hooks in {}); nothing installed",
            ctx.config_source
        ));
        return Ok(Exit::Ok);
    }
    let exe = bgrun_exe()?;
    ctx.out.say(format!("hooks directory: {}", where_(hd)));
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for name in &names {
        let script = hooks::render(name, &exe);
        match hooks::install(&hd.dir, name, &script) {
            Ok(done) => {
                let what = match &done {
                    Installed::Created => "installed".to_string(),
                    Installed::Chained(b) => {
                        format!(
                            "installed, chaining the existing hook (kept as {})",
                            b.display()
                        )
                    }
                    Installed::Updated => "updated".to_string(),
                    Installed::Unchanged => "already installed".to_string(),
                };
                ctx.out.say(format!("  {name}: {what}"));
                report.push(json!({"name": name, "result": what}));
            }
            Err(e) => {
                eprintln!("bgrun: {name}: {e}");
                failed.push(name.clone());
                report.push(json!({"name": name, "error": e}));
            }
        }
    }
    if ctx.out.json {
        super::print_json(&json!({"hooks_dir": hd.dir, "hooks": report}))?;
    }
    if failed.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(error::work(format!("not installed: {}", failed.join(", "))))
    }
}

fn uninstall(ctx: &Ctx, hd: &HookDir) -> Result<Exit> {
    let mut names = hooks::managed_in(&hd.dir);
    for n in configured(ctx).unwrap_or_default() {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for name in &names {
        match hooks::uninstall(&hd.dir, name) {
            Ok(r) => {
                let what = match r {
                    Removed::Restored => "removed; the original hook is back",
                    Removed::Removed => "removed",
                    Removed::NotOurs => "not bgrun's: left alone",
                    Removed::Absent => "not installed",
                };
                ctx.out.say(format!("  {name}: {what}"));
                report.push(json!({"name": name, "result": what}));
            }
            Err(e) => {
                eprintln!("bgrun: {name}: {e}");
                failed.push(name.clone());
                report.push(json!({"name": name, "error": e}));
            }
        }
    }
    if ctx.out.json {
        super::print_json(&json!({"hooks_dir": hd.dir, "hooks": report}))?;
    }
    if failed.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(error::work(format!("not removed: {}", failed.join(", "))))
    }
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

fn hook_json(ctx: &Ctx, st: &HookState, exe: &Path) -> Value {
    let up_to_date = st.file.as_ref().map(|f| {
        f.owner == Owner::Bgrun && f.executable && f.bytes == hooks::render(&st.name, exe)
    });
    json!({
        "name": st.name,
        "state": st.label(),
        "path": st.path,
        "file": file_json(&st.file, &st.path),
        "chained_backup": file_json(&st.backup, &st.backup_path),
        "up_to_date": if st.label() == "installed" { up_to_date } else { None },
        "tasks": ctx.config.hook_tasks(&st.name),
        "blocking": ctx.config.hook_is_blocking(&st.name),
    })
}

/// Hooks defined in git config (`hook.<name>.command` / `.event`, git 2.54+).
fn config_hooks(hd: &HookDir) -> Vec<Value> {
    let mut by_name: std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> =
        Default::default();
    let entries = crate::triggers::git::config_entries(&hd.git_dir, r"^hook\..*\.(command|event)$");
    for (key, val) in entries {
        let Some(rest) = key.strip_prefix("hook.") else {
            continue;
        };
        if let Some(n) = rest.strip_suffix(".command") {
            by_name.entry(n.to_string()).or_default().0.push(val);
        } else if let Some(n) = rest.strip_suffix(".event") {
            by_name.entry(n.to_string()).or_default().1.push(val);
        }
    }
    by_name
        .into_iter()
        .map(|(name, (cmds, events))| json!({"name": name, "command": cmds, "events": events}))
        .collect()
}

/// The installed git's version, and whether it runs hooks defined in config (2.54+).
fn git_version() -> (Option<String>, bool) {
    let out = std::process::Command::new("git")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success());
    let Some(out) = out else {
        return (None, false);
    };
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ver = text.trim_start_matches("git version ").to_string();
    let nums: Vec<u32> = ver
        .split(['.', ' ', '-'])
        .take(2)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    let supported = matches!(nums.as_slice(), [maj, min] if (*maj, *min) >= (2, 54));
    (Some(ver), supported)
}

fn status(ctx: &Ctx, hd: &HookDir) -> Result<Exit> {
    let exe = bgrun_exe()?;
    let mut names = configured(ctx).unwrap_or_default();
    for n in hooks::managed_in(&hd.dir) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let states: Vec<HookState> = names.iter().map(|n| hooks::inspect(&hd.dir, n)).collect();
    let cfg_hooks = config_hooks(hd);
    let (ver, supported) = git_version();
    if ctx.out.json {
        super::print_json(&json!({
            "hooks_dir": hd.dir,
            "core_hooks_path": hd.hooks_path,
            "git_dir": hd.git_dir,
            "common_dir": hd.common_dir,
            "enabled": ctx.config.triggers.git_hooks.enabled,
            "hooks": states.iter().map(|s| hook_json(ctx, s, &exe)).collect::<Vec<_>>(),
            "git_version": ver,
            "config_hooks_supported": supported,
            "config_hooks": cfg_hooks,
        }))?;
        return Ok(Exit::Ok);
    }
    println!("hooks directory: {}", where_(hd));
    if names.is_empty() {
        println!("no git hooks configured and none installed");
    }
    for st in &states {
        let mut line = format!("{:<20} {}", st.name, st.label());
        if let Some(f) = &st.file {
            match &f.owner {
                Owner::Foreign(Some(m)) => line.push_str(&format!(" ({m})")),
                Owner::Bgrun if f.bytes != hooks::render(&st.name, &exe) => {
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
        let tasks = ctx.config.hook_tasks(&st.name);
        if !tasks.is_empty() {
            line.push_str(&format!(" -> {}", tasks.join(", ")));
            if ctx.config.hook_is_blocking(&st.name) {
                line.push_str(" [blocking]");
            }
        }
        println!("{line}");
    }
    if !cfg_hooks.is_empty() {
        println!(
            "hooks defined in git config{}:",
            if supported {
                ""
            } else {
                " (this git is older than 2.54 and does not run them)"
            }
        );
        for h in &cfg_hooks {
            println!(
                "  {} on {}: {}",
                h["name"].as_str().unwrap_or(""),
                h["events"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                h["command"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default()
            );
        }
    }
    Ok(Exit::Ok)
}

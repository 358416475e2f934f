//! `bgrun tools list|install [TOOL...]|update|which TOOL|prune|dir`: the managed, pinned
//! tool environments of issue 13 (the cache itself is `crate::tools`).
//!
//! Exit: 0 done; 1 an install or a registry lookup failed (the others still ran); 2 an
//! unknown tool or a bad config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::ToolsCommand;
use crate::tools::{self, Cache, Ecosystem, Missing, Source, Spec};
use crate::{Ctx, Exit, error};

pub fn run(ctx: &Ctx, c: ToolsCommand) -> Result<Exit> {
    match c {
        ToolsCommand::Dir => dir(ctx),
        ToolsCommand::List => list(ctx),
        ToolsCommand::Which { tool, repeat } => which(ctx, &tool, repeat),
        ToolsCommand::Install { tools } => install(ctx, &tools),
        ToolsCommand::Update => update(ctx),
        ToolsCommand::Prune { days } => prune(ctx, days),
    }
}

fn cache() -> Result<Cache> {
    Cache::from_env().map_err(|e| error::usage(e.to_string()))
}

fn settings(ctx: &Ctx) -> tools::Settings {
    ctx.config
        .analysis
        .tool_settings(true, crate::present::analyze::install_progress(&ctx.out))
}

fn spec_arg(name: &str) -> Result<&'static Spec> {
    tools::spec(name).ok_or_else(|| {
        error::usage(format!(
            "unknown tool {name:?} (known: {})",
            tools::TABLE
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

fn dir(ctx: &Ctx) -> Result<Exit> {
    let c = cache()?;
    if ctx.out.json {
        super::print_json(&json!({ "dir": c.root }))?;
    } else {
        println!("{}", c.root.display());
    }
    Ok(Exit::Ok)
}

/// Every known tool: this project's version and source, and whether it is installed.
fn list(ctx: &Ctx) -> Result<Exit> {
    let s = settings(ctx);
    let c = cache()?;
    let entries = c.list();
    let mut rows = Vec::new();
    for spec in tools::TABLE {
        let version = s.version_of(spec);
        let source = s.source_of(spec.name);
        let installed =
            spec.ecosystem != Ecosystem::Rustup && c.installed(spec, &version).is_some();
        let cached: Vec<Value> = entries
            .iter()
            .filter(|e| e.tool == spec.name)
            .map(|e| json!({"version": e.version, "complete": e.complete, "bytes": e.bytes, "path": e.path}))
            .collect();
        rows.push(json!({
            "tool": spec.name,
            "package": spec.package,
            "ecosystem": spec.ecosystem.as_str(),
            "version": if spec.ecosystem == Ecosystem::Rustup { Value::Null } else { json!(version) },
            "default_version": if spec.default_version.is_empty() { Value::Null } else { json!(spec.default_version) },
            "source": if spec.ecosystem == Ecosystem::Rustup { "rustup" } else { source.as_str() },
            "installed": installed,
            "cached": cached,
        }));
    }
    if ctx.out.json {
        super::print_json(&json!({"dir": c.root, "tools": rows}))?;
        return Ok(Exit::Ok);
    }
    println!("tools in {}", c.root.display());
    for r in &rows {
        let name = r["tool"].as_str().unwrap_or("");
        let version = r["version"].as_str().unwrap_or("-");
        let source = r["source"].as_str().unwrap_or("");
        let state = if r["ecosystem"] == "rustup" {
            "through rustup (rustup component add clippy)".to_string()
        } else if source != "managed" {
            format!("from {source}")
        } else if r["installed"] == true {
            "installed".to_string()
        } else {
            "not installed (installed on first use)".to_string()
        };
        let others: Vec<String> = r["cached"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["version"].as_str() != Some(version))
                    .map(|e| e["version"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let extra = if others.is_empty() {
            String::new()
        } else {
            format!(" (also cached: {})", others.join(", "))
        };
        println!(
            "  {name:<12} {version:<10} {:<8} {:<7} {state}{extra}",
            r["ecosystem"].as_str().unwrap_or(""),
            source
        );
    }
    Ok(Exit::Ok)
}

/// The executable the analyzers would run, without installing anything.
fn which(ctx: &Ctx, name: &str, repeat: u32) -> Result<Exit> {
    let spec = spec_arg(name)?;
    let mut s = settings(ctx);
    s.install = false;
    let dirs: Vec<&Path> = vec![&ctx.repo];
    let hint = format!("bgrun tools install {}", spec.name);
    let mut found = s.locate(spec.name, &dirs, &hint);
    for _ in 1..repeat {
        found = s.locate(spec.name, &dirs, &hint);
    }
    match found {
        Ok(l) => {
            if ctx.out.json {
                super::print_json(&json!({
                    "tool": spec.name, "path": l.exe, "source": l.source.as_str(),
                    "version": l.version,
                }))?;
            } else {
                println!("{}", l.exe.display());
            }
            Ok(Exit::Ok)
        }
        Err(Missing::Skip(why) | Missing::Fail(why)) => {
            if ctx.out.json {
                super::print_json(&json!({"tool": spec.name, "path": null, "why": why}))?;
            } else {
                eprintln!("bgrun: {why}");
            }
            Ok(Exit::WorkFailed)
        }
    }
}

/// The managed tools this project's analyzers use (when no TOOL is named).
fn needed(ctx: &Ctx) -> Vec<&'static str> {
    crate::analyzers::tools_needed(&ctx.repo)
}

fn install(ctx: &Ctx, names: &[String]) -> Result<Exit> {
    let s = settings(ctx);
    let c = cache()?;
    let specs: Vec<&'static Spec> = if names.is_empty() {
        needed(ctx)
            .into_iter()
            .filter_map(tools::spec)
            .filter(|sp| s.source_of(sp.name) == Source::Managed)
            .collect()
    } else {
        names.iter().map(|n| spec_arg(n)).collect::<Result<_>>()?
    };
    if specs.is_empty() {
        ctx.out
            .say("nothing to install: no analyzer of this project uses a managed tool");
    }
    // In parallel: one thread per tool, each with its own lock and deadline.
    let results: Vec<(&Spec, String, Result<tools::Installed, tools::Error>)> =
        std::thread::scope(|sc| {
            let handles: Vec<_> = specs
                .iter()
                .map(|sp| {
                    let version = s.version_of(sp);
                    let c = &c;
                    let timeout = s.install_timeout;
                    if sp.ecosystem != Ecosystem::Rustup
                        && c.installed(sp, &version).is_none()
                        && !ctx.out.quiet()
                    {
                        eprintln!("bgrun: installing {} {version}...", sp.name);
                    }
                    sc.spawn(move || {
                        let r = c.install(sp, &version, timeout);
                        (*sp, version, r)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
    let mut failed = 0;
    let mut rows = Vec::new();
    for (sp, version, r) in results {
        match r {
            Ok(done) => {
                rows.push(json!({"tool": sp.name, "version": version, "path": done.exe, "installed_now": done.fresh, "seconds": done.seconds}));
                ctx.out.say(if done.fresh {
                    format!("installed {} {version} ({:.1}s)", sp.name, done.seconds)
                } else {
                    format!("{} {version} already installed", sp.name)
                });
            }
            Err(why) => {
                failed += 1;
                rows.push(json!({"tool": sp.name, "version": version, "error": why.to_string()}));
                eprintln!(
                    "bgrun: could not install {} {version} ({why}; retry: bgrun tools install {})",
                    sp.name, sp.name
                );
            }
        }
    }
    if ctx.out.json {
        super::print_json(&json!({"installed": rows}))?;
    }
    Ok(if failed > 0 {
        Exit::WorkFailed
    } else {
        Exit::Ok
    })
}

/// The team config `tools update` writes: `--config`/`$BGRUN_CONFIG` when given, else
/// `<repo>/bgrun.json`.
fn team_config(ctx: &Ctx) -> PathBuf {
    // A config file outside the chain was given by --config or $BGRUN_CONFIG.
    if let crate::config::Source::File(p) = &ctx.config_source
        && !crate::config::CHAIN
            .iter()
            .any(|rel| ctx.repo.join(rel) == *p)
    {
        return p.clone();
    }
    ctx.repo.join(crate::config::TEAM_CONFIG)
}

/// Move every pin (the tools this project uses and the ones already pinned) to the newest
/// release and rewrite the team config.
fn update(ctx: &Ctx) -> Result<Exit> {
    let s = settings(ctx);
    let mut names: Vec<&'static str> = needed(ctx);
    for k in ctx.config.analysis.tools.keys() {
        if let Some(sp) = tools::spec(k)
            && !names.contains(&sp.name)
        {
            names.push(sp.name);
        }
    }
    let specs: Vec<&'static Spec> = names
        .into_iter()
        .filter_map(tools::spec)
        .filter(|sp| sp.ecosystem != Ecosystem::Rustup)
        .collect();
    let timeout = Duration::from_secs(ctx.config.analysis.install_timeout_seconds.clamp(1, 120));
    let latest: Vec<(&Spec, Result<String, tools::Error>)> = std::thread::scope(|sc| {
        let hs: Vec<_> = specs
            .iter()
            .map(|sp| sc.spawn(move || (*sp, tools::latest_version(sp, timeout))))
            .collect();
        hs.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let path = team_config(ctx);
    let mut changes = Vec::new();
    let mut failed = 0;
    for (sp, r) in &latest {
        let old = s.version_of(sp);
        match r {
            Ok(new) => {
                if *new != old {
                    ctx.out.say(format!("{}: {old} -> {new}", sp.name));
                } else {
                    ctx.out.say(format!("{}: {old} (newest)", sp.name));
                }
                changes.push((sp.name, old, new.clone()));
            }
            Err(why) => {
                failed += 1;
                eprintln!(
                    "bgrun: {}: cannot find the newest release ({why}); pin kept at {old}",
                    sp.name
                );
            }
        }
    }
    let pins: Vec<(&str, &str)> = changes.iter().map(|(n, _, v)| (*n, v.as_str())).collect();
    if !pins.is_empty() {
        crate::config::write_pins(&path, &pins)?;
        ctx.out.say(format!("pins written to {}", path.display()));
    }
    if ctx.out.json {
        let rows: Vec<Value> = changes
            .iter()
            .map(|(n, o, v)| json!({"tool": n, "from": o, "to": v}))
            .collect();
        super::print_json(&json!({"config": path, "pins": rows, "failed": failed}))?;
    }
    Ok(if failed > 0 {
        Exit::WorkFailed
    } else {
        Exit::Ok
    })
}

/// Remove incomplete environments and debris, and complete ones unused for `days` days
/// (never this project's current pins).
fn prune(ctx: &Ctx, days: u64) -> Result<Exit> {
    let s = settings(ctx);
    let c = cache()?;
    let keep: Vec<(String, String)> = tools::TABLE
        .iter()
        .map(|sp| (sp.name.to_string(), s.version_of(sp)))
        .collect();
    let removed = c.prune(&keep, Duration::from_secs(days.saturating_mul(86_400)));
    let mut freed = 0u64;
    for (p, bytes) in &removed {
        freed = freed.saturating_add(*bytes);
        ctx.out.say(format!("removed {}", p.display()));
    }
    if ctx.out.json {
        let rows: Vec<Value> = removed
            .iter()
            .map(|(p, b)| json!({"path": p, "bytes": b}))
            .collect();
        super::print_json(&json!({"removed": rows, "freed_bytes": freed}))?;
    } else {
        ctx.out.say(format!(
            "pruned {} environment(s), {:.1} MB freed",
            removed.len(),
            freed as f64 / 1e6
        ));
    }
    Ok(Exit::Ok)
}

//! What `bgrun tools list|install|update|which|prune|dir` prints (text or JSON). The
//! tools and their cache are `crate::tools`', several at once `tools::batch`'s.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use super::print_json;
use crate::output::Output;
use crate::tools::batch::{Install, Latest};
use crate::tools::{self, Cache, Ecosystem, Located, Missing, Settings, Spec};

/// `dir`: the cache's root.
pub fn dir(out: &Output, c: &Cache) -> Result<()> {
    if out.json {
        print_json(&json!({ "dir": c.root }))?;
    } else {
        println!("{}", c.root.display());
    }
    Ok(())
}

/// `list`: every known tool, this project's version and source, and whether it is installed.
pub fn list(out: &Output, s: &Settings, c: &Cache) -> Result<()> {
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
    if out.json {
        return print_json(&json!({"dir": c.root, "tools": rows}));
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
    Ok(())
}

/// `which`: the executable, or why there is none; true when found.
pub fn which(out: &Output, spec: &Spec, found: &Result<Located, Missing>) -> Result<bool> {
    match found {
        Ok(l) => {
            if out.json {
                print_json(&json!({
                    "tool": spec.name, "path": l.exe, "source": l.source.as_str(),
                    "version": l.version,
                }))?;
            } else {
                println!("{}", l.exe.display());
            }
            Ok(true)
        }
        Err(Missing::Skip(why) | Missing::Fail(why)) => {
            if out.json {
                print_json(&json!({"tool": spec.name, "path": null, "why": why}))?;
            } else {
                eprintln!("bgrun: {why}");
            }
            Ok(false)
        }
    }
}

/// `install` found nothing to install.
pub fn nothing_to_install(out: &Output) {
    out.say("nothing to install: no analyzer of this project uses a managed tool");
}

/// `install` starts installing `spec` at `version`.
pub fn installing(out: &Output, spec: &Spec, version: &str) {
    if !out.quiet() {
        eprintln!("bgrun: installing {} {version}...", spec.name);
    }
}

/// `install`'s outcomes; true when one failed.
pub fn installed(out: &Output, results: Vec<Install>) -> Result<bool> {
    let mut failed = 0;
    let mut rows = Vec::new();
    for (sp, version, r) in results {
        match r {
            Ok(done) => {
                rows.push(json!({"tool": sp.name, "version": version, "path": done.exe, "installed_now": done.fresh, "seconds": done.seconds}));
                out.say(if done.fresh {
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
    if out.json {
        print_json(&json!({"installed": rows}))?;
    }
    Ok(failed > 0)
}

/// `update`: each tool's newest release beside its pin (or why it is unknown).
pub fn latest(out: &Output, latest: &[Latest]) {
    for l in latest {
        let (name, old) = (l.spec.name, &l.old);
        match &l.new {
            Ok(new) if new != old => out.say(format!("{name}: {old} -> {new}")),
            Ok(_) => out.say(format!("{name}: {old} (newest)")),
            Err(why) => eprintln!(
                "bgrun: {name}: cannot find the newest release ({why}); pin kept at {old}"
            ),
        }
    }
}

/// `update` wrote the pins into `path` (`written`: there were some).
pub fn updated(out: &Output, path: &Path, latest: &[Latest], written: bool) -> Result<()> {
    if written {
        out.say(format!("pins written to {}", path.display()));
    }
    if out.json {
        let rows: Vec<Value> = latest
            .iter()
            .filter_map(|l| {
                let v = l.new.as_ref().ok()?;
                Some(json!({"tool": l.spec.name, "from": l.old, "to": v}))
            })
            .collect();
        let failed = latest.iter().filter(|l| l.new.is_err()).count();
        print_json(&json!({"config": path, "pins": rows, "failed": failed}))?;
    }
    Ok(())
}

/// `prune`: each environment removed and what was freed.
pub fn pruned(out: &Output, removed: &[(std::path::PathBuf, u64)]) -> Result<()> {
    let mut freed = 0u64;
    for (p, bytes) in removed {
        freed = freed.saturating_add(*bytes);
        out.say(format!("removed {}", p.display()));
    }
    if out.json {
        let rows: Vec<Value> = removed
            .iter()
            .map(|(p, b)| json!({"path": p, "bytes": b}))
            .collect();
        print_json(&json!({"removed": rows, "freed_bytes": freed}))?;
    } else {
        out.say(format!(
            "pruned {} environment(s), {:.1} MB freed",
            removed.len(),
            freed as f64 / 1e6
        ));
    }
    Ok(())
}

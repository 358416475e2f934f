//! cargo-audit (`cargo-audit audit --json`): RustSec advisories for a Cargo.lock.

use serde_json::Value;

use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct CargoAudit;

impl Tool for CargoAudit {
    fn name(&self) -> &'static str {
        "cargo-audit"
    }
    fn kind(&self) -> Kind {
        Kind::Security
    }
    fn applies(&self, p: &Project) -> bool {
        p.has("Cargo.lock")
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        if o.tools.source_of("cargo-audit") != crate::tools::Source::System {
            return match super::locate(p, o, "cargo-audit", "cargo install cargo-audit --locked") {
                Ok(exe) => Plan::Run(Invocation::located(
                    &exe,
                    "cargo-audit",
                    &["audit", "--json"],
                    &p.root,
                )),
                Err(plan) => *plan,
            };
        }
        // System: PATH, then ~/.cargo/bin (where `cargo install` puts it).
        let found = p.find_tool("cargo-audit").or_else(|| {
            let home = std::env::var_os("CARGO_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo"))
                })?;
            let p = home.join("bin/cargo-audit");
            p.is_file().then_some(p)
        });
        let Some(exe) = found else {
            return super::not_installed("cargo-audit", "cargo install cargo-audit --locked");
        };
        Plan::Run(Invocation::new(&exe, &["audit", "--json"], &p.root).version(&exe, "cargo-audit"))
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        let stderr = String::from_utf8_lossy(&raw.stderr);
        if raw.stdout.iter().all(u8::is_ascii_whitespace)
            && let Some(why) = super::pip_audit::unreachable(&stderr).or_else(|| {
                stderr
                    .lines()
                    .find(|l| l.contains("advisory"))
                    .map(str::to_string)
            })
        {
            return Err(Error::Unreachable {
                service: "RustSec advisory database",
                why,
            });
        }
        let v = super::json_of("cargo-audit", &raw.stdout, raw)?;
        parse_json(&v, p)
    }
}

pub fn parse_json(v: &Value, p: &Project) -> Result<Parsed, Error> {
    let list = v
        .pointer("/vulnerabilities/list")
        .and_then(Value::as_array)
        .ok_or(Error::Output(
            "cargo-audit's JSON has no `vulnerabilities.list`",
        ))?;
    let lock = p.rel("Cargo.lock");
    let mut out = Vec::new();
    for item in list {
        let adv = item.get("advisory").cloned().unwrap_or(Value::Null);
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let pkg = item.get("package").cloned().unwrap_or(Value::Null);
        let score = adv.get("cvss").and_then(Value::as_str).and_then(cvss_base);
        let sev = score.map(Severity::from_score).unwrap_or(Severity::High);
        let patched: Vec<&str> = item
            .pointer("/versions/patched")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let fix = if patched.is_empty() {
            "no patched version: consider replacing the crate".to_string()
        } else {
            format!("upgrade {} to {}", s(&pkg, "name"), patched.join(" or "))
        };
        out.push(
            Finding::new(
                "cargo-audit",
                &s(&adv, "id"),
                sev,
                &lock,
                &format!(
                    "{} {}: {}",
                    s(&pkg, "name"),
                    s(&pkg, "version"),
                    s(&adv, "title")
                ),
            )
            .fix(fix)
            .named(None, Some(&s(&adv, "url"))),
        );
    }
    if let Some(warnings) = v.get("warnings").and_then(Value::as_object) {
        for (kind, items) in warnings {
            for w in items.as_array().into_iter().flatten() {
                let adv = w.get("advisory").cloned().unwrap_or(Value::Null);
                let id = adv.get("id").and_then(Value::as_str).unwrap_or(kind);
                let name = w
                    .pointer("/package/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let title = adv.get("title").and_then(Value::as_str).unwrap_or(kind);
                out.push(
                    Finding::new(
                        "cargo-audit",
                        id,
                        Severity::Low,
                        &lock,
                        &format!("{name}: {kind}: {title}"),
                    )
                    .fix(format!("replace or update {name}")),
                );
            }
        }
    }
    Ok(Parsed::findings(out))
}

/// A rough CVSS v3 base score from a vector: cargo-audit gives the vector, not the score.
/// Only the impact metrics are read: C/I/A high -> 9+, any high -> 7.5, low -> 5.
fn cvss_base(vector: &str) -> Option<f64> {
    if !vector.starts_with("CVSS:3") {
        return None;
    }
    let get = |m: &str| {
        vector
            .split('/')
            .find_map(|part| part.strip_prefix(&format!("{m}:")))
            .unwrap_or("N")
    };
    let highs = ["C", "I", "A"].iter().filter(|m| get(m) == "H").count();
    let lows = ["C", "I", "A"].iter().filter(|m| get(m) == "L").count();
    Some(match (highs, lows, get("AV"), get("PR")) {
        (3, _, "N", "N") => 9.8,
        (h, _, _, _) if h > 0 => 7.5,
        (_, l, _, _) if l > 0 => 5.0,
        _ => 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cargo-audit's documented JSON shape (it is not installed here to capture real output).
    #[test]
    fn advisories_and_warnings() {
        let v = serde_json::json!({"vulnerabilities": {"found": true, "count": 1, "list": [
            {"advisory": {"id": "RUSTSEC-2020-0071", "title": "Potential segfault in the time crate",
              "url": "https://github.com/time-rs/time/issues/293", "cvss": "CVSS:3.1/AV:L/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H"},
             "versions": {"patched": [">=0.2.23"]}, "package": {"name": "time", "version": "0.1.45"}}]},
            "warnings": {"unmaintained": [{"advisory": {"id": "RUSTSEC-2021-0145", "title": "unmaintained"}, "package": {"name": "atty"}}]}});
        let p = Project::scan(
            std::path::Path::new("/nonexistent/r"),
            std::path::Path::new("/nonexistent/r"),
        );
        let f = parse_json(&v, &p).unwrap().findings;
        assert_eq!(
            (f[0].rule.as_str(), f[0].severity, f[0].file.as_str()),
            ("RUSTSEC-2020-0071", Severity::High, "Cargo.lock")
        );
        assert_eq!(
            (f[1].rule.as_str(), f[1].severity),
            ("RUSTSEC-2021-0145", Severity::Low)
        );
    }
}

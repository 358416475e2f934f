//! pip-audit (`-f json`): known vulnerabilities in Python dependencies, from PyPI's
//! vulnerability data. Without that data (offline, a mirror without PyPI's JSON API) it
//! says `failed: cannot reach ...` rather than passing silently.

use serde_json::Value;

use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct PipAudit;

const REQ: &str = "requirements.txt";

impl Tool for PipAudit {
    fn name(&self) -> &'static str {
        "pip-audit"
    }
    fn kind(&self) -> Kind {
        Kind::Security
    }
    fn applies(&self, p: &Project) -> bool {
        p.has(REQ) || p.has("pyproject.toml")
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        let exe = match super::locate(p, o, "pip-audit", "pip install pip-audit") {
            Ok(l) => l,
            Err(plan) => return *plan,
        };
        let base = Invocation::located(
            &exe,
            "pip-audit",
            &["-f", "json", "--progress-spinner", "off"],
            &p.root,
        );
        if let Some(text) = p.read(REQ) {
            let inv = base.args(["-r", REQ]);
            // Fully pinned: audit exactly those versions without resolving through pip.
            if all_pinned(&text) {
                Plan::Run(inv.args(["--no-deps", "--disable-pip"]))
            } else {
                Plan::Run(inv)
            }
        } else {
            Plan::Run(base.arg("."))
        }
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        let stderr = String::from_utf8_lossy(&raw.stderr);
        if let Some(why) = unreachable(&stderr) {
            return Err(Error::Unreachable {
                service: "vulnerability service (PyPI)",
                why,
            });
        }
        let v = super::json_of("pip-audit", &raw.stdout, raw)?;
        let file = if p.has(REQ) { REQ } else { "pyproject.toml" };
        parse_json(&v, p, file)
    }
}

fn all_pinned(text: &str) -> bool {
    let reqs: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    !reqs.is_empty() && reqs.iter().all(|l| l.contains("==") && !l.starts_with('-'))
}

/// A network failure in a tool's error output, summarized; None when there is none.
pub fn unreachable(text: &str) -> Option<String> {
    const SIGNS: &[&str] = &[
        "Max retries exceeded",
        "NameResolutionError",
        "Failed to establish a new connection",
        "ProxyError",
        "ConnectionError",
        "ECONNREFUSED",
        "ENOTFOUND",
        "EAI_AGAIN",
        "ETIMEDOUT",
        "ECONNRESET",
        "Temporary failure in name resolution",
        "Network is unreachable",
        "Could not resolve host",
        "failed to fetch advisory database",
    ];
    let line = text
        .lines()
        .rev()
        .find(|l| SIGNS.iter().any(|s| l.contains(s)))?;
    let line = line.trim();
    Some(line.chars().take(300).collect())
}

pub fn parse_json(v: &Value, p: &Project, file: &str) -> Result<Parsed, Error> {
    // pip-audit < 2.5 printed a bare list; newer ones {"dependencies": [...]}.
    let deps = v
        .get("dependencies")
        .or(Some(v))
        .and_then(Value::as_array)
        .ok_or(Error::Output(
            "pip-audit's JSON has no `dependencies` array",
        ))?;
    let manifest = p.read(file).unwrap_or_default();
    let mut out = Vec::new();
    let mut not_audited = Vec::new();
    for d in deps {
        let name = d.get("name").and_then(Value::as_str).unwrap_or("?");
        let version = d.get("version").and_then(Value::as_str).unwrap_or("");
        if let Some(why) = d.get("skip_reason").and_then(Value::as_str) {
            not_audited.push(why.to_string());
            continue;
        }
        let line = line_of(&manifest, name);
        for vuln in d
            .get("vulns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = vuln.get("id").and_then(Value::as_str).unwrap_or("?");
            let aliases: Vec<&str> = vuln
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let fixes: Vec<&str> = vuln
                .get("fix_versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let desc = vuln
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            let first: String = desc
                .split(". ")
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            let alias = if aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", aliases.join(", "))
            };
            let fix = match fixes.first() {
                Some(f) => format!("upgrade {name} to {f} or later"),
                None => format!("no fixed release of {name} yet: consider replacing it"),
            };
            out.push(
                Finding::new(
                    "pip-audit",
                    id,
                    Severity::High,
                    &p.rel(file),
                    &format!("{name} {version}: {id}{alias}: {first}"),
                )
                .at(line, None)
                .fix(fix)
                .named(None, Some(&format!("https://osv.dev/vulnerability/{id}"))),
            );
        }
    }
    if !deps.is_empty() && not_audited.len() == deps.len() {
        return Err(Error::NoneAudited {
            first: not_audited[0].to_string(),
        });
    }
    Ok(Parsed {
        findings: out,
        metrics: serde_json::json!({"dependencies": deps.len(), "not_audited": not_audited}),
        ..Parsed::default()
    })
}

/// The 1-based line that names `pkg` in a requirements file.
fn line_of(text: &str, pkg: &str) -> Option<u64> {
    let want = pkg.to_ascii_lowercase().replace('_', "-");
    text.lines()
        .position(|l| {
            let name: String = l
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            name.to_ascii_lowercase().replace('_', "-") == want
        })
        .map(|i| i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn project() -> Project {
        Project::scan(Path::new("/nonexistent/p"), Path::new("/nonexistent/p"))
    }

    #[test]
    fn every_dependency_unaudited_is_a_failure_not_a_pass() {
        let v: Value = serde_json::from_str(include_str!(
            "../../fixtures/tool-output/pip-audit-not-found.json"
        ))
        .unwrap();
        let e = parse_json(&v, &project(), REQ).unwrap_err();
        assert!(matches!(e, Error::NoneAudited { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot reach the vulnerability data"),
            "{e}"
        );
    }

    #[test]
    fn a_connection_error_says_cannot_reach() {
        let why = unreachable(include_str!(
            "../../fixtures/tool-output/pip-audit-unreachable.stderr"
        ))
        .unwrap();
        assert!(why.contains("Max retries exceeded"), "{why}");
        assert_eq!(unreachable("all good"), None);
    }

    /// The shape pip-audit documents for a vulnerable dependency (no network here to
    /// capture one for real: see the test above).
    #[test]
    fn vulnerabilities_become_high_findings() {
        let v = serde_json::json!({"dependencies": [{"name": "requests", "version": "2.19.0", "vulns": [
            {"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"],
             "description": "The Requests package before 2.20.0 sends an HTTP Authorization header. More."}]}],
            "fixes": []});
        let f = parse_json(&v, &project(), REQ).unwrap().findings;
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].rule.as_str(), f[0].severity),
            ("PYSEC-2018-28", Severity::High)
        );
        assert_eq!(f[0].fix, "upgrade requests to 2.20.0 or later");
        assert!(f[0].message.contains("CVE-2018-18074"));
    }

    #[test]
    fn pinned_detection() {
        assert!(all_pinned("requests==2.19.0\n# c\n"));
        assert!(!all_pinned("requests>=2\n"));
        assert_eq!(line_of("# x\nRequests==1\n", "requests"), Some(2));
    }
}

//! npm audit (`--json`): known vulnerabilities in Node dependencies (needs a lockfile and
//! the registry's advisory endpoint).

use serde_json::Value;

use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct NpmAudit;

impl Tool for NpmAudit {
    fn name(&self) -> &'static str {
        "npm-audit"
    }
    fn kind(&self) -> Kind {
        Kind::Security
    }
    fn applies(&self, p: &Project) -> bool {
        p.has("package.json")
    }
    fn plan(&self, p: &Project, _o: &Options) -> Plan {
        if !p.has("package-lock.json") && !p.has("npm-shrinkwrap.json") {
            return Plan::Skip(
                "no package-lock.json: npm audit needs one (npm install --package-lock-only)"
                    .to_string(),
            );
        }
        let Some(exe) = p.find_tool("npm") else {
            return super::not_installed("npm", "install Node.js and npm");
        };
        Plan::Run(
            Invocation::new(&exe, &["audit", "--json", "--fetch-retries=0"], &p.root)
                .version(&exe, "npm"),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        let v = super::json_of("npm audit", &raw.stdout, raw)?;
        parse_json(&v, p)
    }
}

fn severity(word: &str) -> Severity {
    match word {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "moderate" => Severity::Medium,
        "low" => Severity::Low,
        _ => Severity::Info,
    }
}

pub fn parse_json(v: &Value, p: &Project) -> Result<Parsed, Error> {
    if let Some(err) = v.get("error") {
        let msg = v
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| err.get("summary").and_then(Value::as_str))
            .unwrap_or("no detail");
        return Err(Error::Unreachable {
            service: "npm advisory service",
            why: msg.to_string(),
        });
    }
    let vulns = v.get("vulnerabilities").and_then(Value::as_object).ok_or({
        Error::Output("npm audit's JSON has no `vulnerabilities` object (npm 7 or later is needed)")
    })?;
    let lock = if p.has("package-lock.json") {
        "package-lock.json"
    } else {
        "npm-shrinkwrap.json"
    };
    let mut out = Vec::new();
    for (name, info) in vulns {
        let sev = severity(info.get("severity").and_then(Value::as_str).unwrap_or(""));
        let via = info
            .get("via")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let advisory = via.iter().find(|x| x.is_object());
        let (rule, title, url) = match advisory {
            Some(a) => {
                let url = a.get("url").and_then(Value::as_str).unwrap_or("");
                let id = url
                    .rsplit('/')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("npm-advisory");
                (
                    id.to_string(),
                    a.get("title")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    url.to_string(),
                )
            }
            None => {
                let deps: Vec<&str> = via.iter().filter_map(Value::as_str).collect();
                (
                    "vulnerable-dependency".to_string(),
                    format!("depends on vulnerable {}", deps.join(", ")),
                    String::new(),
                )
            }
        };
        let range = info.get("range").and_then(Value::as_str).unwrap_or("");
        let fix = match info.get("fixAvailable") {
            Some(Value::Bool(true)) => "run `npm audit fix`".to_string(),
            Some(Value::Object(f)) => format!(
                "upgrade {} to {}{}",
                f.get("name").and_then(Value::as_str).unwrap_or(name),
                f.get("version")
                    .and_then(Value::as_str)
                    .unwrap_or("a fixed version"),
                if f.get("isSemVerMajor").and_then(Value::as_bool) == Some(true) {
                    " (a breaking major version)"
                } else {
                    ""
                }
            ),
            _ => "no fix available yet: consider replacing the package".to_string(),
        };
        out.push(
            Finding::new(
                "npm-audit",
                &rule,
                sev,
                &p.rel(lock),
                &format!("{name} {range}: {title}"),
            )
            .fix(fix)
            .named(None, Some(&url)),
        );
    }
    Ok(Parsed::findings(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn project() -> Project {
        Project::scan(Path::new("/nonexistent/p"), Path::new("/nonexistent/p"))
    }

    #[test]
    fn unreachable_advisory_service_is_a_clear_failure() {
        for text in [
            include_str!("../../fixtures/tool-output/npm-audit-405.json"),
            include_str!("../../fixtures/tool-output/npm-audit-unreachable.json"),
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            let e = parse_json(&v, &project()).unwrap_err();
            assert!(matches!(e, Error::Unreachable { .. }), "{e}");
            assert!(
                e.to_string()
                    .starts_with("cannot reach the npm advisory service: "),
                "{e}"
            );
        }
    }

    /// npm 7+'s documented report shape (the advisory endpoint is not reachable here).
    #[test]
    fn vulnerabilities_map_npm_severities() {
        let v = serde_json::json!({"auditReportVersion": 2, "vulnerabilities": {
            "minimist": {"name": "minimist", "severity": "critical", "range": "<1.2.6",
              "via": [{"source": 1, "title": "Prototype Pollution in minimist", "url": "https://github.com/advisories/GHSA-xvch-5gv4-984h", "severity": "critical"}],
              "fixAvailable": true},
            "mkdirp": {"name": "mkdirp", "severity": "moderate", "range": "0.4.1 - 0.5.1", "via": ["minimist"], "fixAvailable": false}}});
        let f = parse_json(&v, &project()).unwrap().findings;
        assert_eq!(
            (f[0].rule.as_str(), f[0].severity),
            ("GHSA-xvch-5gv4-984h", Severity::Critical)
        );
        assert_eq!(f[0].fix, "run `npm audit fix`");
        assert_eq!(
            (f[1].rule.as_str(), f[1].severity),
            ("vulnerable-dependency", Severity::Medium)
        );
    }
}

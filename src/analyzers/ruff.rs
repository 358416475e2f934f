//! Ruff (`check --output-format json`): fast Python lint.

use serde_json::Value;

use super::bandit::dot;
use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct Ruff;

impl Tool for Ruff {
    fn name(&self) -> &'static str {
        "ruff"
    }
    fn kind(&self) -> Kind {
        Kind::Code
    }
    fn applies(&self, p: &Project) -> bool {
        p.has_lang("python")
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        let exe = match super::locate(p, o, "ruff", "pip install ruff") {
            Ok(l) => l,
            Err(plan) => return *plan,
        };
        Plan::Run(
            Invocation::located(
                &exe,
                "ruff",
                &[
                    "check",
                    "--output-format",
                    "json",
                    "--no-cache",
                    "--exit-zero",
                    // Named files are still subject to the project's own `exclude`.
                    "--force-exclude",
                ],
                &p.root,
            )
            .args(p.files_of("python").into_iter().map(dot)),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        if raw.code != Some(0) {
            return Err(Error::Ended {
                tool: "ruff",
                exit: raw.exit(),
                note: "",
                output: raw.tail(),
            });
        }
        let v = super::json_of("ruff", &raw.stdout, raw)?;
        parse_json(&v, p)
    }
}

fn severity(code: &str) -> Severity {
    let high = ["E9", "F63", "F7", "F82"];
    if code.is_empty() || high.iter().any(|h| code.starts_with(h)) {
        Severity::High
    } else if code.starts_with('F') || code.starts_with('S') {
        Severity::Medium
    } else {
        Severity::Low
    }
}

pub fn parse_json(v: &Value, p: &Project) -> Result<Parsed, Error> {
    let items = v
        .as_array()
        .ok_or(Error::Output("ruff's JSON is not an array of diagnostics"))?;
    let mut out = Vec::with_capacity(items.len());
    for d in items {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
        let code = s("code");
        let rule = if code.is_empty() {
            "syntax-error"
        } else {
            code
        };
        let fix = d
            .pointer("/fix/message")
            .and_then(Value::as_str)
            .map(|m| format!("{m} (`ruff check --fix`)"))
            .unwrap_or_default();
        out.push(
            Finding::new(
                "ruff",
                rule,
                severity(code),
                &p.rel(s("filename")),
                s("message"),
            )
            .at(
                d.pointer("/location/row").and_then(Value::as_u64),
                d.pointer("/location/column").and_then(Value::as_u64),
            )
            .fix(fix)
            .named(
                d.get("name").and_then(Value::as_str),
                d.get("url").and_then(Value::as_str),
            ),
        );
    }
    Ok(Parsed::findings(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_output() {
        let p = Project::scan(
            std::path::Path::new("/src/fixtures/python-app"),
            std::path::Path::new("/src/fixtures/python-app"),
        );
        let v: Value =
            serde_json::from_str(include_str!("../../fixtures/tool-output/ruff.json")).unwrap();
        let f = parse_json(&v, &p).unwrap().findings;
        assert_eq!(f.len(), 1);
        assert_eq!(
            (
                f[0].rule.as_str(),
                f[0].file.as_str(),
                f[0].line,
                f[0].column,
                f[0].severity
            ),
            ("F401", "app/runner.py", Some(2), Some(8), Severity::Medium)
        );
        assert_eq!(f[0].fix, "Remove unused import: `os` (`ruff check --fix`)");
        assert_eq!(severity(""), Severity::High);
        assert_eq!(severity("E501"), Severity::Low);
    }
}

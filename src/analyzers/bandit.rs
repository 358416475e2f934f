//! Bandit (`bandit -f json`): Python security issues.

use serde_json::Value;

use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct Bandit;

impl Tool for Bandit {
    fn name(&self) -> &'static str {
        "bandit"
    }
    fn kind(&self) -> Kind {
        Kind::Security
    }
    fn applies(&self, p: &Project) -> bool {
        p.has_lang("python")
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        let exe = match super::locate(p, o, "bandit", "pip install bandit") {
            Ok(l) => l,
            Err(plan) => return *plan,
        };
        Plan::Run(
            Invocation::located(&exe, "bandit", &["-f", "json", "-q"], &p.root)
                .args(config_args(p))
                .args(p.files_of("python").into_iter().map(dot)),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        if !matches!(raw.code, Some(0) | Some(1)) && raw.stdout.is_empty() {
            return Err(Error::Ended {
                tool: "bandit",
                exit: raw.exit(),
                note: "",
                output: raw.tail(),
            });
        }
        let v = super::json_of("bandit", &raw.stdout, raw)?;
        parse_json(&v, p)
    }
}

/// Bandit reads its config only when told: `.bandit` (`--ini`), `bandit.yaml`/`.yml` or a
/// `pyproject.toml` with `[tool.bandit]` (`-c`). With it, its `exclude_dirs`/`exclude`
/// apply to the named files too.
fn config_args(p: &Project) -> Vec<&'static str> {
    let mut a = Vec::new();
    if p.has(".bandit") {
        a.extend(["--ini", ".bandit"]);
    }
    if p.has("bandit.yaml") {
        a.extend(["-c", "bandit.yaml"]);
    } else if p.has("bandit.yml") {
        a.extend(["-c", "bandit.yml"]);
    } else if p.read("pyproject.toml").is_some_and(|t| {
        t.lines()
            .any(|l| l.trim_start().starts_with("[tool.bandit"))
    }) {
        a.extend(["-c", "pyproject.toml"]);
    }
    a
}

/// `./x.py` so that a file named like an option is not read as one.
pub fn dot(rel: &std::path::Path) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from("./");
    s.push(rel.as_os_str());
    s
}

fn fix_hint(test_id: &str) -> &'static str {
    match test_id {
        "B602" | "B604" | "B605" | "B609" => {
            "pass the command as a list of arguments and drop shell=True"
        }
        "B603" | "B607" => "run a fixed, fully qualified program and validate its arguments",
        "B404" => "check that the subprocess calls in this module never take untrusted input",
        "B105" | "B106" | "B107" => {
            "read the secret from the environment or a secret store instead of the source"
        }
        "B301" | "B403" => "do not unpickle untrusted data; use JSON or another safe format",
        "B608" => "use query parameters instead of building SQL from strings",
        "B101" => "raise an exception instead of assert for checks that must hold in production",
        "B506" => "use yaml.safe_load",
        "B324" => "use hashlib.sha256 (or pass usedforsecurity=False)",
        _ => "",
    }
}

pub fn parse_json(v: &Value, p: &Project) -> Result<Parsed, Error> {
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or(Error::Output("bandit's JSON has no `results` array"))?;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let severity = match s("issue_severity") {
            "HIGH" => Severity::High,
            "MEDIUM" => Severity::Medium,
            "LOW" => Severity::Low,
            _ => Severity::Info,
        };
        let test_id = s("test_id");
        let message = format!(
            "{} (confidence {})",
            s("issue_text"),
            s("issue_confidence").to_lowercase()
        );
        let hint = fix_hint(test_id);
        let fix = if hint.is_empty() {
            format!("see {}", s("more_info"))
        } else {
            hint.to_string()
        };
        out.push(
            Finding::new("bandit", test_id, severity, &p.rel(s("filename")), &message)
                .at(
                    r.get("line_number").and_then(Value::as_u64),
                    r.get("col_offset").and_then(Value::as_u64).map(|c| c + 1),
                )
                .fix(fix)
                .named(Some(s("test_name")), Some(s("more_info"))),
        );
    }
    for e in v
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        out.push(
            Finding::new(
                "bandit",
                "scan-error",
                Severity::Info,
                &p.rel(s("filename")),
                &format!("bandit could not scan this file: {}", s("reason")),
            )
            .fix("fix the syntax error so the file can be scanned"),
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
            serde_json::from_str(include_str!("../../fixtures/tool-output/bandit.json")).unwrap();
        let f = parse_json(&v, &p).unwrap().findings;
        let got = crate::analyzers::rows(&f);
        assert_eq!(
            got,
            vec![
                ("B404", "app/runner.py", Severity::Low, Some(3), Some(1)),
                ("B105", "app/runner.py", Severity::Low, Some(5), Some(12)),
                ("B602", "app/runner.py", Severity::High, Some(10), Some(12)),
            ]
        );
        assert_eq!(
            f[2].fix,
            "pass the command as a list of arguments and drop shell=True"
        );
        assert_eq!(
            f[2].rule_name.as_deref(),
            Some("subprocess_popen_with_shell_equals_true")
        );
    }
}

//! Radon: cyclomatic complexity (`cc -j`), maintainability index (`mi -j`) and raw
//! metrics (`raw -j`), three runs in parallel, each its own entry in the report.

use serde_json::{Value, json};

use super::bandit::dot;
use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Cc,
    Mi,
    Raw,
}

pub struct Radon(pub Mode);

impl Tool for Radon {
    fn name(&self) -> &'static str {
        match self.0 {
            Mode::Cc => "radon-cc",
            Mode::Mi => "radon-mi",
            Mode::Raw => "radon-raw",
        }
    }
    fn kind(&self) -> Kind {
        Kind::Performance
    }
    fn applies(&self, p: &Project) -> bool {
        p.has_lang("python")
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        let exe = match super::locate(p, o, "radon", "pip install radon") {
            Ok(l) => l,
            Err(plan) => return *plan,
        };
        let sub = match self.0 {
            Mode::Cc => "cc",
            Mode::Mi => "mi",
            Mode::Raw => "raw",
        };
        Plan::Run(
            Invocation::located(&exe, "radon", &[sub, "-j"], &p.root)
                .args(p.files_of("python").into_iter().map(dot)),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, o: &Options) -> Result<Parsed, Error> {
        if raw.code != Some(0) {
            return Err(Error::Ended {
                tool: "radon",
                exit: raw.exit(),
                note: "",
                output: raw.tail(),
            });
        }
        let v = super::json_of("radon", &raw.stdout, raw)?;
        match self.0 {
            Mode::Cc => parse_cc(&v, p, o.complexity_threshold),
            Mode::Mi => parse_mi(&v, p),
            Mode::Raw => parse_raw(&v),
        }
    }
}

fn files(v: &Value) -> Result<&serde_json::Map<String, Value>, Error> {
    v.as_object()
        .ok_or(Error::Output("radon's JSON is not an object of files"))
}

/// A file radon could not parse: an info finding, so it is not silently left out.
fn file_error(p: &Project, tool: &str, file: &str, v: &Value) -> Option<Finding> {
    let err = v.get("error")?.as_str()?;
    Some(
        Finding::new(
            tool,
            "parse-error",
            Severity::Info,
            &p.rel(file),
            &format!("radon could not analyze this file: {err}"),
        )
        .fix("fix the syntax error so the file can be measured"),
    )
}

pub fn parse_cc(v: &Value, p: &Project, threshold: u64) -> Result<Parsed, Error> {
    let mut out = Vec::new();
    let mut recs = Vec::new();
    let mut functions = 0u64;
    let mut total = 0u64;
    for (file, blocks) in files(v)? {
        if let Some(f) = file_error(p, "radon-cc", file, blocks) {
            out.push(f);
            continue;
        }
        let mut stack: Vec<&Value> = blocks.as_array().into_iter().flatten().collect();
        while let Some(b) = stack.pop() {
            stack.extend(
                b.get("closures")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
            if b.get("type").and_then(Value::as_str) == Some("class") {
                continue; // its methods are listed on their own
            }
            let cc = b.get("complexity").and_then(Value::as_u64).unwrap_or(0);
            functions += 1;
            total += cc;
            if cc <= threshold {
                continue;
            }
            let name = match b.get("classname").and_then(Value::as_str) {
                Some(c) => format!(
                    "{c}.{}",
                    b.get("name").and_then(Value::as_str).unwrap_or("?")
                ),
                None => b
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            };
            let rank = b.get("rank").and_then(Value::as_str).unwrap_or("?");
            let sev = match rank {
                "D" => Severity::Medium,
                "E" | "F" => Severity::High,
                _ => Severity::Low,
            };
            let line = b.get("lineno").and_then(Value::as_u64);
            let rel = p.rel(file);
            let fix = format!(
                "split `{name}` into smaller functions (extract branches, use early returns or a lookup table) to bring its complexity to {threshold} or less"
            );
            recs.push(format!(
                "refactor `{name}` ({rel}:{}): cyclomatic complexity {cc} is above {threshold}",
                line.unwrap_or(0)
            ));
            out.push(
                Finding::new("radon-cc", "cyclomatic-complexity", sev, &rel,
                    &format!("`{name}` has cyclomatic complexity {cc} (rank {rank}), above the threshold {threshold}"))
                    .at(line, b.get("col_offset").and_then(Value::as_u64).map(|c| c + 1))
                    .fix(fix)
                    .named(Some("high-complexity"), Some("https://radon.readthedocs.io/en/latest/intro.html#cyclomatic-complexity")),
            );
        }
    }
    let avg = if functions > 0 {
        total as f64 / functions as f64
    } else {
        0.0
    };
    Ok(Parsed {
        findings: out,
        metrics: json!({"functions": functions, "average_complexity": (avg * 100.0).round() / 100.0, "threshold": threshold}),
        recommendations: recs,
        ..Parsed::default()
    })
}

pub fn parse_mi(v: &Value, p: &Project) -> Result<Parsed, Error> {
    let mut out = Vec::new();
    let mut recs = Vec::new();
    let mut sum = 0.0;
    let mut n = 0u64;
    for (file, m) in files(v)? {
        if let Some(f) = file_error(p, "radon-mi", file, m) {
            out.push(f);
            continue;
        }
        let mi = m.get("mi").and_then(Value::as_f64).unwrap_or(100.0);
        sum += mi;
        n += 1;
        if m.get("rank").and_then(Value::as_str) == Some("C") {
            let rel = p.rel(file);
            recs.push(format!(
                "split or simplify {rel}: maintainability index {mi:.1} (rank C)"
            ));
            out.push(
                Finding::new(
                    "radon-mi",
                    "maintainability-index",
                    Severity::Medium,
                    &rel,
                    &format!("maintainability index {mi:.1} is very low (rank C, below 10)"),
                )
                .fix("split the module and simplify its most complex functions")
                .named(
                    Some("low-maintainability"),
                    Some("https://radon.readthedocs.io/en/latest/intro.html#maintainability-index"),
                ),
            );
        }
    }
    let avg = if n > 0 { sum / n as f64 } else { 0.0 };
    Ok(Parsed {
        findings: out,
        metrics: json!({"files": n, "average_mi": (avg * 100.0).round() / 100.0}),
        recommendations: recs,
        ..Parsed::default()
    })
}

pub fn parse_raw(v: &Value) -> Result<Parsed, Error> {
    let mut totals = serde_json::Map::new();
    let mut n = 0u64;
    for (_file, m) in files(v)? {
        let Some(obj) = m.as_object() else { continue };
        if obj.contains_key("error") {
            continue;
        }
        n += 1;
        for (k, val) in obj {
            let add = val.as_u64().unwrap_or(0);
            let cur = totals.get(k).and_then(Value::as_u64).unwrap_or(0);
            totals.insert(k.clone(), json!(cur + add));
        }
    }
    totals.insert("files".into(), json!(n));
    Ok(Parsed {
        metrics: Value::Object(totals),
        ..Parsed::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn project() -> Project {
        Project::scan(Path::new("/nonexistent/app"), Path::new("/nonexistent/app"))
    }

    #[test]
    fn cc_reports_functions_above_the_threshold() {
        let v: Value =
            serde_json::from_str(include_str!("../../fixtures/tool-output/radon-cc.json")).unwrap();
        let parsed = parse_cc(&v, &project(), 10).unwrap();
        let f = &parsed.findings;
        assert_eq!(f.len(), 1);
        assert_eq!(
            (
                f[0].rule.as_str(),
                f[0].file.as_str(),
                f[0].line,
                f[0].severity
            ),
            (
                "cyclomatic-complexity",
                "app/runner.py",
                Some(13),
                Severity::Low
            )
        );
        assert!(
            f[0].message
                .contains("`classify` has cyclomatic complexity 15")
        );
        assert!(parsed.recommendations[0].contains("refactor `classify` (app/runner.py:13)"));
        assert_eq!(parse_cc(&v, &project(), 20).unwrap().findings.len(), 0);
    }

    #[test]
    fn mi_and_raw() {
        let v: Value =
            serde_json::from_str(include_str!("../../fixtures/tool-output/radon-mi.json")).unwrap();
        let parsed = parse_mi(&v, &project()).unwrap();
        assert!(parsed.findings.is_empty());
        assert_eq!(parsed.metrics["files"], 2);
        let v: Value =
            serde_json::from_str(include_str!("../../fixtures/tool-output/radon-raw.json"))
                .unwrap();
        let m = parse_raw(&v).unwrap().metrics;
        assert_eq!(
            (m["loc"].as_u64(), m["sloc"].as_u64(), m["files"].as_u64()),
            (Some(40), Some(31), Some(2))
        );
    }

    #[test]
    fn a_file_radon_cannot_parse_is_reported() {
        let v = serde_json::json!({"bad.py": {"error": "invalid syntax (<unknown>, line 1)"}});
        let f = parse_cc(&v, &project(), 10).unwrap().findings;
        assert_eq!(
            (f[0].rule.as_str(), f[0].severity),
            ("parse-error", Severity::Info)
        );
    }
}

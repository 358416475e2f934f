//! GitLab Code Quality JSON (`artifacts:reports:codequality`): an array of issues with the
//! fields GitLab's documentation requires (description, check_name, fingerprint, severity,
//! location.path, location.lines.begin). Severities map onto GitLab's scale: critical →
//! blocker, high → critical, medium → major, low → minor, info → info. Fingerprints are
//! unique within the report (a repeated identical finding gets an occurrence suffix).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::ci_common::{arr, fingerprint, s, u};

fn severity(s: &str) -> &'static str {
    match s {
        "critical" => "blocker",
        "high" => "critical",
        "medium" => "major",
        "low" => "minor",
        _ => "info",
    }
}

pub fn to_codequality(report: &Value) -> Value {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let issues: Vec<Value> = arr(report, "findings")
        .iter()
        .map(|f| {
            let mut fp = fingerprint(f);
            let n = seen.entry(fp.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                fp = format!(
                    "{:032x}",
                    xxhash_rust::xxh3::xxh3_128(format!("{fp}#{n}").as_bytes())
                );
            }
            let path = match s(f, "file") {
                "" => ".",
                p => p,
            };
            let mut lines = json!({"begin": u(f, "line").unwrap_or(1).max(1)});
            if let Some(end) = u(f, "end_line") {
                lines["end"] = json!(end);
            }
            json!({
                "description": format!("{} {}: {}", s(f, "tool"), s(f, "rule"), s(f, "message")),
                "check_name": format!("{}/{}", s(f, "tool"), s(f, "rule")),
                "fingerprint": fp,
                "severity": severity(s(f, "severity")),
                "location": {"path": path, "lines": lines},
            })
        })
        .collect();
    Value::Array(issues)
}

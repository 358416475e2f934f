//! SARIF 2.1.0: writing a report as one log with one run per tool (rules with help text,
//! repo-relative URIs under the `%SRCROOT%` base, stable partial fingerprints, so GitHub
//! code scanning accepts it), and reading a SARIF log a custom analyzer printed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use super::baseline::Lines;
use super::findings::{Finding, Report, Severity, Status, ToolRun};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
const BASE: &str = "%SRCROOT%";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
        Severity::Info => "none",
    }
}

/// GitHub's `security-severity` score for a security finding.
fn security_score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn information_uri(tool: &str) -> &'static str {
    match tool {
        "bandit" => "https://bandit.readthedocs.io/",
        "pip-audit" => "https://pypi.org/project/pip-audit/",
        "npm-audit" => "https://docs.npmjs.com/cli/commands/npm-audit",
        "cargo-audit" => "https://rustsec.org/",
        "radon-cc" | "radon-mi" | "radon-raw" => "https://radon.readthedocs.io/",
        "pylint" => "https://pylint.readthedocs.io/",
        "ruff" => "https://docs.astral.sh/ruff/",
        "eslint" => "https://eslint.org/",
        "clippy" => "https://rust-lang.github.io/rust-clippy/",
        "pytest" => "https://docs.pytest.org/",
        "unittest" => "https://docs.python.org/3/library/unittest.html",
        "npm-test" => "https://docs.npmjs.com/cli/commands/npm-test",
        "cargo-test" => "https://doc.rust-lang.org/cargo/commands/cargo-test.html",
        "maven" => "https://maven.apache.org/surefire/maven-surefire-plugin/",
        "gradle" => "https://docs.gradle.org/",
        _ => "https://github.com/bgrun/bgrun",
    }
}

/// Percent-encode a relative path for a URI reference (`/` kept).
pub fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_path(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 64-bit FNV-1a: a hash whose value never changes between builds (unlike std's).
fn fnv(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A fingerprint that survives code moving up or down: tool, rule, file, the finding's
/// source line with whitespace squeezed (not its number), and which occurrence it is.
fn fingerprint(f: &Finding, line_text: &str, occurrence: usize) -> String {
    let squeezed: String = line_text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = if squeezed.is_empty() {
        f.message.as_str()
    } else {
        squeezed.as_str()
    };
    let occ = occurrence.to_string();
    let parts: [&[u8]; 5] = [
        f.tool.as_bytes(),
        f.rule.as_bytes(),
        f.file.as_bytes(),
        text.as_bytes(),
        occ.as_bytes(),
    ];
    format!(
        "{:016x}{:016x}",
        fnv(0, &parts),
        fnv(0x9e37_79b9_7f4a_7c15, &parts)
    )
}

/// The report as one SARIF 2.1.0 log: one run per tool in the report.
pub fn to_sarif(report: &Report, repo: &Path) -> Value {
    let mut lines = Lines::new(repo);
    let base_uri = format!(
        "file://{}/",
        encode_path(repo.to_string_lossy().trim_end_matches('/'))
    );
    let runs: Vec<Value> = report
        .tools
        .iter()
        .map(|t| {
            // Findings now, then the baseline's that are gone (`baselineState: absent`).
            let findings: Vec<&Finding> = report
                .findings
                .iter()
                .chain(&report.fixed)
                .filter(|f| f.tool == t.name)
                .collect();
            run_of(t, &findings, &base_uri, &mut lines)
        })
        .collect();
    json!({"$schema": SCHEMA, "version": "2.1.0", "runs": runs})
}

fn run_of(t: &ToolRun, findings: &[&Finding], base_uri: &str, lines: &mut Lines) -> Value {
    let security = t.kind == "security";
    // Rules, in order of first appearance.
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules: Vec<Value> = Vec::new();
    for f in findings {
        if rule_index.contains_key(f.rule.as_str()) {
            continue;
        }
        rule_index.insert(&f.rule, rules.len());
        let short = f.rule_name.clone().unwrap_or_else(|| f.rule.clone());
        let help = match (&f.fix, &f.help_uri) {
            (fix, Some(u)) if !fix.is_empty() => format!("{fix}. More: {u}"),
            (fix, None) if !fix.is_empty() => fix.clone(),
            (_, Some(u)) => format!("See {u}"),
            _ => format!("{} rule {}", t.name, f.rule),
        };
        let mut rule = json!({
            "id": f.rule,
            "shortDescription": {"text": short},
            "fullDescription": {"text": f.message},
            "help": {"text": help},
            "defaultConfiguration": {"level": level(f.severity)},
            "properties": {"tags": [t.kind.clone()]},
        });
        if let Some(name) = &f.rule_name {
            rule["name"] = json!(name);
        }
        if let Some(u) = f.help_uri.as_deref().filter(|u| u.starts_with("http")) {
            rule["helpUri"] = json!(u);
        }
        if security {
            rule["properties"]["security-severity"] = json!(security_score(f.severity));
            rule["properties"]["tags"] = json!(["security"]);
        }
        rules.push(rule);
    }
    let mut seen: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let text = lines.get(&f.file, f.line);
            let key = (f.tool.clone(), f.rule.clone(), f.file.clone(), text.clone());
            let occ = seen.entry(key).or_insert(0);
            *occ += 1;
            let mut r = json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index[f.rule.as_str()],
                "level": level(f.severity),
                "message": {"text": if f.message.is_empty() { f.rule.clone() } else { f.message.clone() }},
                "partialFingerprints": {"bgrunFindingHash/v1": fingerprint(f, &text, *occ)},
                "properties": {"severity": f.severity.as_str()},
            });
            if !f.fix.is_empty() {
                r["properties"]["fix"] = json!(f.fix);
            }
            if !f.fingerprint.is_empty() {
                r["partialFingerprints"]["primaryLocationLineHash"] = json!(f.fingerprint);
            }
            if let Some(b) = f.baseline {
                r["baselineState"] = json!(b.as_str());
            }
            if !f.file.is_empty() {
                let mut phys = json!({"artifactLocation": {"uri": encode_path(&f.file), "uriBaseId": BASE}});
                if let Some(line) = f.line {
                    let mut region = Map::new();
                    region.insert("startLine".into(), json!(line));
                    if let Some(c) = f.column {
                        region.insert("startColumn".into(), json!(c));
                    }
                    phys["region"] = Value::Object(region);
                }
                r["locations"] = json!([{"physicalLocation": phys}]);
            }
            r
        })
        .collect();
    let mut driver =
        json!({"name": t.name, "informationUri": information_uri(&t.name), "rules": rules});
    if let Some(v) = &t.version {
        driver["version"] = json!(v);
    }
    let mut invocation = json!({"executionSuccessful": t.status == Status::Ran});
    if t.status != Status::Ran {
        invocation["toolExecutionNotifications"] = json!([{
            "level": if t.status == Status::Failed { "error" } else { "note" },
            "message": {"text": t.status_line()},
        }]);
    }
    let mut props = json!({"status": t.status, "duration_s": t.duration_s, "counts": t.counts});
    if let Some(tests) = &t.tests {
        props["tests"] = json!(tests);
    }
    json!({
        "tool": {"driver": driver},
        "originalUriBaseIds": {BASE: {"uri": base_uri}},
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": props,
    })
}

/// Read a SARIF log into a report: each run's driver is a tool, each result a finding.
pub fn ingest(stdout: &[u8], repo: &Path) -> Result<Report> {
    let v: Value = serde_json::from_slice(stdout)
        .map_err(|e| anyhow::anyhow!("the output is not JSON: {e}"))?;
    let Some(runs) = v.get("runs").and_then(Value::as_array) else {
        bail!("not a SARIF log: no `runs` array");
    };
    let mut report = super::empty_report("ingest");
    let repo_uri = format!("file://{}/", repo.to_string_lossy().trim_end_matches('/'));
    for (ri, run) in runs.iter().enumerate() {
        let tool = run
            .pointer("/tool/driver/name")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("runs[{ri}].tool.driver.name: missing"))?
            .to_string();
        let rules: Vec<Value> = run
            .pointer("/tool/driver/rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rule_of = |id: &str, idx: Option<u64>| -> Option<&Value> {
            idx.and_then(|i| rules.get(i as usize)).or_else(|| {
                rules
                    .iter()
                    .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
            })
        };
        for (i, r) in run
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let rule_id = r
                .get("ruleId")
                .or_else(|| r.pointer("/rule/id"))
                .and_then(Value::as_str)
                .unwrap_or("sarif-result");
            let rule = rule_of(rule_id, r.get("ruleIndex").and_then(Value::as_u64));
            let score = rule
                .and_then(|x| x.pointer("/properties/security-severity"))
                .and_then(|s| {
                    s.as_str()
                        .and_then(|s| s.parse::<f64>().ok())
                        .or_else(|| s.as_f64())
                });
            let lvl = r
                .get("level")
                .and_then(Value::as_str)
                .or_else(|| {
                    rule.and_then(|x| x.pointer("/defaultConfiguration/level"))
                        .and_then(Value::as_str)
                })
                .unwrap_or("warning");
            let severity = match score {
                Some(s) if s > 0.0 => Severity::from_score(s),
                _ => match lvl {
                    "error" => Severity::High,
                    "warning" => Severity::Medium,
                    "note" => Severity::Low,
                    "none" => Severity::Info,
                    other => bail!(
                        "runs[{ri}].results[{i}].level: {other:?} is not error, warning, note or none"
                    ),
                },
            };
            let message = r
                .pointer("/message/text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let loc = r.pointer("/locations/0/physicalLocation");
            let uri = loc
                .and_then(|l| l.pointer("/artifactLocation/uri"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let file = relative_uri(uri, &repo_uri);
            let line = loc
                .and_then(|l| l.pointer("/region/startLine"))
                .and_then(Value::as_u64);
            let col = loc
                .and_then(|l| l.pointer("/region/startColumn"))
                .and_then(Value::as_u64);
            let fix = rule
                .and_then(|x| {
                    x.pointer("/help/text")
                        .or_else(|| x.pointer("/fullDescription/text"))
                })
                .and_then(Value::as_str)
                .unwrap_or("");
            let help_uri = rule.and_then(|x| x.get("helpUri")).and_then(Value::as_str);
            report.findings.push(
                Finding::new(&tool, rule_id, severity, &file, &message)
                    .at(line, col)
                    .fix(fix)
                    .named(
                        rule.and_then(|x| x.get("name")).and_then(Value::as_str),
                        help_uri,
                    ),
            );
        }
        let ok = run
            .pointer("/invocations/0/executionSuccessful")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mut t = ToolRun::new(
            &tool,
            "custom",
            if ok { Status::Ran } else { Status::Failed },
            "",
        );
        if !ok {
            t.why = run
                .pointer("/invocations/0/toolExecutionNotifications/0/message/text")
                .and_then(Value::as_str)
                .unwrap_or("the tool reported an unsuccessful run")
                .to_string();
        }
        t.version = run
            .pointer("/tool/driver/version")
            .and_then(Value::as_str)
            .map(str::to_string);
        report.tools.push(t);
    }
    report.finish();
    Ok(report)
}

/// A result URI as a repo-relative path.
fn relative_uri(uri: &str, repo_uri: &str) -> String {
    let rest = uri.strip_prefix(repo_uri).unwrap_or(uri);
    let rest = rest.strip_prefix("file://").unwrap_or(rest);
    decode_path(rest.trim_start_matches("./"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut r = super::super::empty_report("security");
        let mut t = ToolRun::new("bandit", "security", Status::Ran, "");
        t.version = Some("1.9.4".into());
        r.tools.push(t);
        r.tools.push(ToolRun::new(
            "pip-audit",
            "security",
            Status::Failed,
            "cannot reach PyPI",
        ));
        r.findings.push(
            Finding::new(
                "bandit",
                "B602",
                Severity::High,
                "app/run me.py",
                "shell=True",
            )
            .at(Some(2), Some(5))
            .fix("use a list")
            .named(
                Some("subprocess_popen_with_shell_equals_true"),
                Some("https://bandit.readthedocs.io/x.html"),
            ),
        );
        r.finish();
        r
    }

    #[test]
    fn one_run_per_tool_with_rules_and_relative_uris() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("app")).unwrap();
        std::fs::write(
            d.path().join("app/run me.py"),
            "import subprocess\nsubprocess.call(c, shell=True)\n",
        )
        .unwrap();
        let s = to_sarif(&report(), d.path());
        assert_eq!(s["version"], "2.1.0");
        assert_eq!(s["runs"].as_array().unwrap().len(), 2);
        let run = &s["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "B602");
        assert_eq!(
            run["tool"]["driver"]["rules"][0]["properties"]["security-severity"],
            "8.0"
        );
        let loc = &run["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "app/run%20me.py");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(loc["region"]["startLine"], 2);
        assert_eq!(s["runs"][1]["invocations"][0]["executionSuccessful"], false);
        // The fingerprint does not depend on the line number: move the code down a line.
        let fp = run["results"][0]["partialFingerprints"]["bgrunFindingHash/v1"].clone();
        std::fs::write(
            d.path().join("app/run me.py"),
            "import subprocess\n\nsubprocess.call(c, shell=True)\n",
        )
        .unwrap();
        let mut moved = report();
        moved.findings[0].line = Some(3);
        let s2 = to_sarif(&moved, d.path());
        assert_eq!(
            s2["runs"][0]["results"][0]["partialFingerprints"]["bgrunFindingHash/v1"],
            fp
        );
    }

    #[test]
    fn a_finding_at_line_0_is_written_without_its_source_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("app")).unwrap();
        std::fs::write(d.path().join("app/run me.py"), "x = 1\n").unwrap();
        let mut r = report();
        r.findings[0].line = Some(0);
        let s = to_sarif(&r, d.path());
        assert_eq!(s["runs"][0]["results"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn round_trip_through_ingest() {
        let d = tempfile::tempdir().unwrap();
        let s = to_sarif(&report(), d.path());
        let r = ingest(serde_json::to_string(&s).unwrap().as_bytes(), d.path()).unwrap();
        assert_eq!(r.findings.len(), 1);
        let f = &r.findings[0];
        assert_eq!(
            (
                f.tool.as_str(),
                f.rule.as_str(),
                f.severity,
                f.file.as_str(),
                f.line
            ),
            ("bandit", "B602", Severity::High, "app/run me.py", Some(2))
        );
        assert_eq!(r.tools[1].status, Status::Failed);
    }

    #[test]
    fn ingest_maps_levels_and_absolute_uris() {
        let sarif = json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "semgrep", "rules": [{"id": "r1", "properties": {"security-severity": "9.1"}}]}},
            "results": [
                {"ruleId": "r1", "message": {"text": "bad"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "file:///repo/src/a.py"}, "region": {"startLine": 4}}}]},
                {"ruleId": "r2", "level": "note", "message": {"text": "meh"}}]}]});
        let r = ingest(sarif.to_string().as_bytes(), Path::new("/repo")).unwrap();
        assert_eq!(
            (r.findings[0].severity, r.findings[0].file.as_str()),
            (Severity::Critical, "src/a.py")
        );
        assert_eq!(r.findings[1].severity, Severity::Low);
        assert!(
            ingest(b"{}", Path::new("/repo"))
                .unwrap_err()
                .to_string()
                .contains("no `runs`")
        );
    }
}

//! The built-in, tool-free size pass for every language: files, lines, lines of code,
//! average file size, the largest files; files above `analysis.large_file_lines` are
//! findings with a recommendation to split them.

use serde_json::json;

use super::{Error, Finding, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool};

pub struct Sizes;

impl Tool for Sizes {
    fn name(&self) -> &'static str {
        "sizes"
    }
    fn kind(&self) -> Kind {
        Kind::Performance
    }
    fn applies(&self, p: &Project) -> bool {
        !p.files.is_empty()
    }
    fn plan(&self, _p: &Project, _o: &Options) -> Plan {
        Plan::Builtin
    }
    fn parse(&self, _raw: &Raw, _p: &Project, _o: &Options) -> Result<Parsed, Error> {
        Ok(Parsed::default())
    }
    fn builtin(&self, p: &Project, o: &Options) -> Parsed {
        measure(p, o.large_file_lines)
    }
}

/// Lines and non-blank lines of a text.
fn count(bytes: &[u8]) -> (u64, u64) {
    let mut lines = 0u64;
    let mut code = 0u64;
    for l in bytes.split(|b| *b == b'\n') {
        lines += 1;
        if l.iter().any(|b| !b.is_ascii_whitespace()) {
            code += 1;
        }
    }
    if bytes.last() == Some(&b'\n') || bytes.is_empty() {
        lines -= 1;
    }
    (lines, code)
}

pub fn measure(p: &Project, large: u64) -> Parsed {
    let mut rows: Vec<(String, &str, u64, u64, u64)> = Vec::with_capacity(p.files.len());
    for f in &p.files {
        let Ok(bytes) = std::fs::read(p.root.join(&f.rel)) else {
            continue;
        };
        let (lines, code) = count(&bytes);
        rows.push((
            p.rel(&f.rel.to_string_lossy()),
            f.lang,
            lines,
            code,
            bytes.len() as u64,
        ));
    }
    let files = rows.len() as u64;
    let lines: u64 = rows.iter().map(|r| r.2).sum();
    let code: u64 = rows.iter().map(|r| r.3).sum();
    let mut by_lang = serde_json::Map::new();
    for r in &rows {
        let e = by_lang
            .entry(r.1.to_string())
            .or_insert_with(|| json!({"files": 0, "lines": 0, "code": 0}));
        e["files"] = json!(e["files"].as_u64().unwrap_or(0) + 1);
        e["lines"] = json!(e["lines"].as_u64().unwrap_or(0) + r.2);
        e["code"] = json!(e["code"].as_u64().unwrap_or(0) + r.3);
    }
    let mut largest: Vec<&(String, &str, u64, u64, u64)> = rows.iter().collect();
    largest.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let mut findings = Vec::new();
    let mut recs = Vec::new();
    for r in largest.iter().filter(|r| r.2 > large) {
        let sev = if r.2 > 2 * large {
            Severity::Medium
        } else {
            Severity::Low
        };
        recs.push(format!(
            "split {} ({} lines, above {large}) into smaller modules",
            r.0, r.2
        ));
        findings.push(
            Finding::new(
                "sizes",
                "large-file",
                sev,
                &r.0,
                &format!("{} lines, above the large-file threshold of {large}", r.2),
            )
            .fix("split the file into smaller modules by responsibility")
            .named(Some("large-file"), None),
        );
    }
    let avg = if files > 0 {
        lines as f64 / files as f64
    } else {
        0.0
    };
    Parsed {
        findings,
        metrics: json!({
            "files": files, "lines": lines, "code_lines": code,
            "average_file_lines": (avg * 10.0).round() / 10.0,
            "by_language": by_lang,
            "largest": largest.iter().take(10).map(|r| json!({"file": r.0, "lines": r.2, "bytes": r.4})).collect::<Vec<_>>(),
            "large_file_lines": large,
        }),
        recommendations: recs,
        ..Parsed::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines() {
        assert_eq!(count(b""), (0, 0));
        assert_eq!(count(b"a\n\n  \nb\n"), (4, 2));
        assert_eq!(count(b"a\nb"), (2, 2));
    }

    #[test]
    fn large_files_are_findings() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("big.py"), "x = 1\n".repeat(25)).unwrap();
        std::fs::write(d.path().join("huge.js"), "x;\n".repeat(41)).unwrap();
        std::fs::write(d.path().join("small.rs"), "fn main() {}\n").unwrap();
        let p = Project::scan(d.path(), d.path());
        let parsed = measure(&p, 20);
        let f: Vec<(&str, Severity)> = parsed
            .findings
            .iter()
            .map(|f| (f.file.as_str(), f.severity))
            .collect();
        assert_eq!(
            f,
            vec![("huge.js", Severity::Medium), ("big.py", Severity::Low)]
        );
        assert_eq!(parsed.metrics["files"], 3);
        assert_eq!(parsed.metrics["lines"], 67);
        assert_eq!(parsed.metrics["largest"][0]["file"], "huge.js");
    }
}

//! Clippy (`cargo clippy --message-format=json`): Rust lint.

use serde_json::Value;

use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct Clippy;

impl Tool for Clippy {
    fn name(&self) -> &'static str {
        "clippy"
    }
    fn kind(&self) -> Kind {
        Kind::Code
    }
    fn applies(&self, p: &Project) -> bool {
        p.has("Cargo.toml")
    }
    fn plan(&self, p: &Project, _o: &Options) -> Plan {
        let (Some(cargo), Some(clippy)) = (p.find_tool("cargo"), p.find_tool("cargo-clippy"))
        else {
            return super::not_installed("clippy", "rustup component add clippy");
        };
        Plan::Run(
            Invocation::new(
                &cargo,
                &["clippy", "--message-format=json", "--quiet"],
                &p.root,
            )
            .version(&clippy, "clippy"),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        let parsed = parse_lines(&raw.stdout, p);
        if raw.code != Some(0) && !parsed.findings.iter().any(|f| f.severity == Severity::High) {
            return Err(Error::Ended {
                tool: "cargo clippy",
                exit: raw.exit(),
                note: "",
                output: raw.tail(),
            });
        }
        Ok(parsed)
    }
}

pub fn parse_lines(stdout: &[u8], p: &Project) -> Parsed {
    let mut out: Vec<Finding> = Vec::new();
    for line in stdout.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if v.get("reason").and_then(Value::as_str) != Some("compiler-message") {
            continue;
        }
        let Some(m) = v.get("message") else { continue };
        let sev = match m.get("level").and_then(Value::as_str) {
            Some("error") => Severity::High,
            Some("warning") => Severity::Medium,
            _ => Severity::Low,
        };
        let spans = m
            .get("spans")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(span) = spans
            .iter()
            .find(|s| s.get("is_primary").and_then(Value::as_bool) == Some(true))
            .or(spans.first())
        else {
            continue; // "aborting due to ..." and summaries carry no span
        };
        let rule = m
            .pointer("/code/code")
            .and_then(Value::as_str)
            .unwrap_or("rustc");
        let children = m
            .get("children")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut url = None;
        let mut fix = Vec::new();
        for c in &children {
            let msg = c.get("message").and_then(Value::as_str).unwrap_or("");
            if let Some(u) = msg.strip_prefix("for further information visit ") {
                url = Some(u.to_string());
            } else if c.get("level").and_then(Value::as_str) == Some("help") {
                let repl = c
                    .pointer("/spans/0/suggested_replacement")
                    .and_then(Value::as_str)
                    .map(|r| format!(": `{r}`"))
                    .unwrap_or_default();
                fix.push(format!("{msg}{repl}"));
            }
        }
        let f = Finding::new(
            "clippy",
            rule,
            sev,
            &p.rel(span.get("file_name").and_then(Value::as_str).unwrap_or("")),
            m.get("message").and_then(Value::as_str).unwrap_or(""),
        )
        .at(
            span.get("line_start").and_then(Value::as_u64),
            span.get("column_start").and_then(Value::as_u64),
        )
        .fix(fix.join("; "))
        .named(None, url.as_deref());
        if !out.iter().any(|o| {
            o.rule == f.rule && o.file == f.file && o.line == f.line && o.column == f.column
        }) {
            out.push(f);
        }
    }
    Parsed::findings(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_output() {
        let p = Project::scan(
            std::path::Path::new("/src/fixtures/rust-crate"),
            std::path::Path::new("/src/fixtures/rust-crate"),
        );
        let f = parse_lines(
            include_bytes!("../../fixtures/tool-output/clippy.jsonl"),
            &p,
        )
        .findings;
        assert_eq!(f.len(), 1);
        assert_eq!(
            (
                f[0].rule.as_str(),
                f[0].file.as_str(),
                f[0].line,
                f[0].column,
                f[0].severity
            ),
            (
                "clippy::needless_return",
                "src/lib.rs",
                Some(5),
                Some(5),
                Severity::Medium
            )
        );
        assert_eq!(f[0].fix, "remove `return`: `y`");
        assert!(
            f[0].help_uri
                .as_deref()
                .unwrap_or("")
                .contains("needless_return")
        );
    }
}

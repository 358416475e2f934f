//! Pylint (`--output-format=json`): Python code quality.

use serde_json::Value;

use super::bandit::dot;
use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct Pylint;

/// Python code that pylint runs before it reads its config (`--init-hook`): the cycle collector
/// tuned the way mypy tunes its own (`gc.freeze()` puts pylint's own modules out of its
/// reach; a young-generation threshold of 100,000 allocations instead of 700). astroid
/// builds a tree of every module a checked file imports (82 modules for one click file)
/// and keeps them all, so with the default thresholds the collector walks that growing heap
/// again and again and finds almost nothing: about 30% of pylint's CPU time on one file and
/// on a full run alike (2.1 s -> 1.45 s on click's `_compat.py`, 11.4 s -> 8.5 s on all of
/// click, peak memory 155 -> 157 MB; the findings compared equal, see the README). A hook
/// from the command line does not replace the project's own `init-hook` (a `sys.path`
/// setting in its `.pylintrc` or `pyproject.toml`): pylint runs both, this one first.
/// (Either call is skipped where Python lacks it: `gc.freeze` is 3.7's; PyPy's `gc` has
/// no thresholds.)
pub const GC_HOOK: &str = concat!(
    "import gc; hasattr(gc, 'freeze') and gc.freeze(); ",
    "hasattr(gc, 'set_threshold') and gc.set_threshold(100000, 100, 100)"
);

impl Tool for Pylint {
    fn name(&self) -> &'static str {
        "pylint"
    }
    fn kind(&self) -> Kind {
        Kind::Code
    }
    fn applies(&self, p: &Project) -> bool {
        p.has_lang("python")
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        let exe = match super::locate(p, o, "pylint", "pip install pylint") {
            Ok(l) => l,
            Err(plan) => return *plan,
        };
        Plan::Run(
            Invocation::located(
                &exe,
                "pylint",
                &["--output-format=json", "--persistent=n", "--score=n"],
                &p.root,
            )
            .arg(format!("--init-hook={GC_HOOK}"))
            .args(p.files_of("python").into_iter().map(dot)),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        // Exit status is a bit mask of message kinds; 32 is a usage error.
        if raw.code.is_some_and(|c| c & 32 != 0) || raw.signal.is_some() {
            return Err(Error::Ended {
                tool: "pylint",
                exit: raw.exit(),
                note: "",
                output: raw.tail(),
            });
        }
        let v = super::json_of("pylint", &raw.stdout, raw)?;
        parse_json(&v, p)
    }
}

pub fn parse_json(v: &Value, p: &Project) -> Result<Parsed, Error> {
    let items = v
        .as_array()
        .ok_or(Error::Output("pylint's JSON is not an array of messages"))?;
    let mut out = Vec::with_capacity(items.len());
    for m in items {
        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
        let kind = s("type");
        let sev = match kind {
            "fatal" | "error" => Severity::High,
            "warning" => Severity::Medium,
            "refactor" | "convention" => Severity::Low,
            _ => Severity::Info,
        };
        let symbol = s("symbol");
        let url = format!(
            "https://pylint.readthedocs.io/en/stable/user_guide/messages/{kind}/{symbol}.html"
        );
        out.push(
            Finding::new(
                "pylint",
                s("message-id"),
                sev,
                &p.rel(s("path")),
                &format!("{symbol}: {}", s("message")),
            )
            .at(
                m.get("line").and_then(Value::as_u64),
                m.get("column").and_then(Value::as_u64).map(|c| c + 1),
            )
            .fix(format!(
                "see {url} (or disable it with `# pylint: disable={symbol}` where intended)"
            ))
            .named(Some(symbol), Some(&url)),
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
            std::path::Path::new("/nonexistent/app"),
            std::path::Path::new("/nonexistent/app"),
        );
        let v: Value =
            serde_json::from_str(include_str!("../../fixtures/tool-output/pylint.json")).unwrap();
        let f = parse_json(&v, &p).unwrap().findings;
        let got: Vec<(&str, &str, Severity, Option<u64>)> = f
            .iter()
            .map(|f| (f.rule.as_str(), f.file.as_str(), f.severity, f.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("C0103", "app/runner.py", Severity::Low, Some(5)),
                ("W0611", "app/runner.py", Severity::Medium, Some(2)),
            ]
        );
        assert_eq!(f[1].rule_name.as_deref(), Some("unused-import"));
    }
}

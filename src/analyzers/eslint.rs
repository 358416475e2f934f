//! ESLint (`-f json`, flat config): JavaScript and TypeScript lint. A project without an
//! `eslint.config.*` is skipped with the reason, not run into a crash.

use serde_json::Value;

use super::{
    Error, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity, Tool,
};

pub struct Eslint;

const FLAT: &[&str] = &[
    "eslint.config.js",
    "eslint.config.mjs",
    "eslint.config.cjs",
    "eslint.config.ts",
    "eslint.config.mts",
    "eslint.config.cts",
];
const LEGACY: &[&str] = &[
    ".eslintrc",
    ".eslintrc.js",
    ".eslintrc.cjs",
    ".eslintrc.json",
    ".eslintrc.yml",
    ".eslintrc.yaml",
];

impl Tool for Eslint {
    fn name(&self) -> &'static str {
        "eslint"
    }
    fn kind(&self) -> Kind {
        Kind::Code
    }
    fn applies(&self, p: &Project) -> bool {
        p.has_lang("javascript") || p.has_lang("typescript")
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        if !FLAT.iter().any(|f| p.has(f)) {
            let legacy = LEGACY.iter().find(|f| p.has(f));
            return Plan::Skip(match legacy {
                Some(l) => format!("{l} is a legacy ESLint config: ESLint 9+ reads eslint.config.js (npx @eslint/migrate-config {l})"),
                None => "no ESLint config (eslint.config.js) in the project: add one to lint JavaScript (https://eslint.org/docs/latest/use/configure/configuration-files)".to_string(),
            });
        }
        let exe = match super::locate(p, o, "eslint", "npm install --save-dev eslint") {
            Ok(l) => l,
            Err(plan) => return *plan,
        };
        Plan::Run(
            // The files of the walk, named: the project's ignores still apply to them
            // (`--no-warn-ignored` keeps an ignored one from becoming a warning).
            Invocation::located(
                &exe,
                "eslint",
                &[
                    "-f",
                    "json",
                    "--no-error-on-unmatched-pattern",
                    "--no-warn-ignored",
                ],
                &p.root,
            )
            .args(
                p.files_of("javascript")
                    .into_iter()
                    .chain(p.files_of("typescript"))
                    .map(super::bandit::dot),
            ),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        if !matches!(raw.code, Some(0) | Some(1)) {
            return Err(Error::Ended {
                tool: "eslint",
                exit: raw.exit(),
                note: " (a config error or crash)",
                output: raw.tail(),
            });
        }
        let v = super::json_of("eslint", &raw.stdout, raw)?;
        parse_json(&v, p)
    }
}

pub fn parse_json(v: &Value, p: &Project) -> Result<Parsed, Error> {
    let files = v
        .as_array()
        .ok_or(Error::Output("eslint's JSON is not an array of files"))?;
    let mut out = Vec::new();
    for f in files {
        let file = p.rel(f.get("filePath").and_then(Value::as_str).unwrap_or(""));
        for m in f
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let fatal = m.get("fatal").and_then(Value::as_bool) == Some(true);
            let rule = m.get("ruleId").and_then(Value::as_str);
            let sev = match (fatal, m.get("severity").and_then(Value::as_u64)) {
                (true, _) => Severity::High,
                (_, Some(2)) => Severity::Medium,
                _ => Severity::Low,
            };
            let fix = if m.get("fix").is_some() {
                "fixable: `eslint --fix`".to_string()
            } else {
                m.pointer("/suggestions/0/desc")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let url = rule
                .filter(|r| !r.contains('/'))
                .map(|r| format!("https://eslint.org/docs/latest/rules/{r}"));
            out.push(
                Finding::new(
                    "eslint",
                    rule.unwrap_or("parse-error"),
                    sev,
                    &file,
                    m.get("message").and_then(Value::as_str).unwrap_or(""),
                )
                .at(
                    m.get("line").and_then(Value::as_u64),
                    m.get("column").and_then(Value::as_u64),
                )
                .fix(fix)
                .named(None, url.as_deref()),
            );
        }
    }
    Ok(Parsed::findings(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_output() {
        let p = Project::scan(
            std::path::Path::new("/src/fixtures/js-app"),
            std::path::Path::new("/src/fixtures/js-app"),
        );
        let v: Value =
            serde_json::from_str(include_str!("../../fixtures/tool-output/eslint.json")).unwrap();
        let f = parse_json(&v, &p).unwrap().findings;
        let got = crate::analyzers::rows(&f);
        assert_eq!(
            got,
            vec![
                (
                    "no-unused-vars",
                    "src/index.js",
                    Severity::Medium,
                    Some(1),
                    Some(7)
                ),
                ("eqeqeq", "src/index.js", Severity::Low, Some(4), Some(13)),
                (
                    "no-undef",
                    "src/index.js",
                    Severity::Medium,
                    Some(5),
                    Some(12)
                ),
            ]
        );
        assert_eq!(f[1].fix, "Use '===' instead of '=='.");
    }
}

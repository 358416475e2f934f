//! JUnit XML, the machine-readable result most runners write (pytest's `--junitxml`,
//! Maven Surefire, Gradle), and the Maven and Gradle runners that are read through it.

use std::path::Path;
use std::time::SystemTime;

use super::{
    Error, FailedTest, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity,
    TestCounts, Tool,
};

/// Counts and failures of one JUnit XML document. `runner` names the findings' tool.
pub fn parse(xml: &str, runner: &str, p: &Project) -> Result<(TestCounts, Vec<Finding>), Error> {
    let doc = roxmltree::Document::parse(xml).map_err(Error::BadXml)?;
    let mut c = TestCounts::default();
    let mut out = Vec::new();
    for tc in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let bad = tc
            .children()
            .find(|n| n.has_tag_name("failure") || n.has_tag_name("error"));
        if tc.children().any(|n| n.has_tag_name("skipped")) && bad.is_none() {
            c.skipped += 1;
            continue;
        }
        let Some(bad) = bad else {
            c.passed += 1;
            continue;
        };
        if bad.has_tag_name("error") {
            c.errors += 1;
        } else {
            c.failed += 1;
        }
        let name = tc.attribute("name").unwrap_or("?");
        let class = tc.attribute("classname").unwrap_or("");
        let file = tc.attribute("file");
        let full = match file {
            Some(f) => format!("{f}::{name}"),
            None if class.is_empty() => name.to_string(),
            None => format!("{class}.{name}"),
        };
        let text = bad.text().unwrap_or("");
        let message = bad
            .attribute("message")
            .filter(|m| !m.is_empty())
            .map(|m| m.lines().next().unwrap_or("").to_string())
            .unwrap_or_else(|| {
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_string()
            });
        // The failing line: `file:LINE: Error` at the end of the traceback, else the test's line.
        let line = file
            .and_then(|f| {
                text.lines().rev().find_map(|l| {
                    let rest = l.strip_prefix(f)?.strip_prefix(':')?;
                    rest.split(':').next()?.parse::<u64>().ok()
                })
            })
            .or_else(|| {
                tc.attribute("line")
                    .and_then(|l| l.parse::<u64>().ok())
                    .map(|l| l + 1)
            });
        let rel = file.map(|f| p.rel(f));
        let kind = if bad.has_tag_name("error") {
            "test-error"
        } else {
            "test-failure"
        };
        c.failures.push(FailedTest {
            name: full.clone(),
            message: message.clone(),
            file: rel.clone(),
            line,
        });
        out.push(
            Finding::new(
                runner,
                kind,
                Severity::High,
                rel.as_deref().unwrap_or(""),
                &format!("{full} failed: {message}"),
            )
            .at(line, None)
            .fix("fix the code or the test so that it passes"),
        );
    }
    Ok((c, out))
}

/// Parse every `*.xml` in `dir` written since `since` (older ones are from earlier runs).
pub fn parse_dir(
    dir: &Path,
    since: Option<SystemTime>,
    runner: &str,
    p: &Project,
) -> Result<Parsed, Error> {
    let mut total = TestCounts::default();
    let mut findings = Vec::new();
    let mut read = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| Error::NoResultsDir {
            dir: p.rel(&dir.to_string_lossy()),
            source,
        })?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "xml"))
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let fresh = match (since, e.metadata().and_then(|m| m.modified())) {
            (Some(s), Ok(m)) => m >= s,
            _ => true,
        };
        if !fresh {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).map_err(|source| Error::Io {
            path: e.path(),
            source,
        })?;
        let (c, f) = parse(&text, runner, p)?;
        read += 1;
        total.passed += c.passed;
        total.failed += c.failed;
        total.skipped += c.skipped;
        total.errors += c.errors;
        total.failures.extend(c.failures);
        findings.extend(f);
    }
    if read == 0 {
        return Err(Error::NoFreshResults {
            dir: p.rel(&dir.to_string_lossy()),
        });
    }
    Ok(Parsed {
        findings,
        tests: Some(total),
        ..Parsed::default()
    })
}

pub struct Maven;

impl Tool for Maven {
    fn name(&self) -> &'static str {
        "maven"
    }
    fn kind(&self) -> Kind {
        Kind::Tests
    }
    fn applies(&self, p: &Project) -> bool {
        p.has("pom.xml")
    }
    fn plan(&self, p: &Project, _o: &Options) -> Plan {
        let exe = Some(p.root.join("mvnw"))
            .filter(|w| w.is_file())
            .or_else(|| p.find_tool("mvn"));
        let Some(exe) = exe else {
            return super::not_installed("maven", "install Maven, or add the Maven wrapper mvnw");
        };
        Plan::Run(
            Invocation::new(
                &exe,
                &["-B", "test", "-Dmaven.test.failure.ignore=true"],
                &p.root,
            )
            .version(&exe, "maven"),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        parse_dir(
            &p.root.join("target/surefire-reports"),
            raw.started,
            "maven",
            p,
        )
        .map_err(|e| Error::NoResultsOf {
            tool: "mvn",
            exit: raw.exit(),
            output: raw.tail(),
            source: Box::new(e),
        })
    }
}

pub struct Gradle;

impl Tool for Gradle {
    fn name(&self) -> &'static str {
        "gradle"
    }
    fn kind(&self) -> Kind {
        Kind::Tests
    }
    fn applies(&self, p: &Project) -> bool {
        p.has("build.gradle") || p.has("build.gradle.kts")
    }
    fn plan(&self, p: &Project, _o: &Options) -> Plan {
        let exe = Some(p.root.join("gradlew"))
            .filter(|w| w.is_file())
            .or_else(|| p.find_tool("gradle"));
        let Some(exe) = exe else {
            return super::not_installed(
                "gradle",
                "install Gradle, or add the Gradle wrapper gradlew",
            );
        };
        Plan::Run(
            Invocation::new(&exe, &["test", "--continue", "--console=plain"], &p.root)
                .version(&exe, "gradle"),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        parse_dir(
            &p.root.join("build/test-results/test"),
            raw.started,
            "gradle",
            p,
        )
        .map_err(|e| Error::NoResultsOf {
            tool: "gradle",
            exit: raw.exit(),
            output: raw.tail(),
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pytest_junit() {
        let p = Project::scan(
            Path::new("/src/fixtures/pytest-fail"),
            Path::new("/src/fixtures/pytest-fail"),
        );
        let (c, f) = parse(
            include_str!("../../fixtures/tool-output/pytest-junit.xml"),
            "pytest",
            &p,
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (1, 1, 1));
        assert_eq!(c.failures[0].name, "tests/test_mixed.py::test_broken");
        assert_eq!(c.failures[0].message, "AssertionError: arithmetic is off");
        assert_eq!(
            (
                f[0].rule.as_str(),
                f[0].file.as_str(),
                f[0].line,
                f[0].severity
            ),
            (
                "test-failure",
                "tests/test_mixed.py",
                Some(9),
                Severity::High
            )
        );
    }

    #[test]
    fn errors_are_counted_apart_from_failures() {
        let p = Project::scan(Path::new("/r"), Path::new("/r"));
        let xml = r#"<testsuites><testsuite>
            <testcase classname="t" name="ok" file="t.py" line="1"/>
            <testcase classname="t" name="bad" file="t.py" line="4"><failure message="assert 1 == 2">t.py:5: AssertionError</failure></testcase>
            <testcase classname="t" name="broken" file="t.py" line="8"><error message="failed on setup with &quot;fixture 'db' not found&quot;">t.py:8</error></testcase>
        </testsuite></testsuites>"#;
        let (c, f) = parse(xml, "pytest", &p).unwrap();
        assert_eq!((c.passed, c.failed, c.errors), (1, 1, 1));
        assert_eq!(c.failures.len(), 2);
        assert_eq!(f[1].rule, "test-error");
    }

    #[test]
    fn bad_xml_is_an_error() {
        let p = Project::scan(Path::new("/nonexistent"), Path::new("/nonexistent"));
        let e = parse("<testsuite", "x", &p).unwrap_err();
        assert!(matches!(e, Error::BadXml(_)), "{e}");
        assert!(e.to_string().contains("not valid"), "{e}");
    }
}

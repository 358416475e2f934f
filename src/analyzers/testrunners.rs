//! Test runners: pytest (read through its JUnit XML), unittest, npm test (TAP, Jest or
//! Mocha summaries) and cargo test (its own output), each into passed / failed / skipped
//! counts and the failing tests with their messages. A failing test is a `high` finding.

use std::path::PathBuf;

use super::{
    Error, FailedTest, Finding, Invocation, Kind, Options, Parsed, Plan, Project, Raw, Severity,
    TestCounts, Tool,
};

fn python_tests(p: &Project) -> bool {
    p.files_of("python").iter().any(|f| {
        let n = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (n.starts_with("test_") || n.ends_with("_test.py")) && n.ends_with(".py")
    }) || p.has("pytest.ini")
        || p.has("conftest.py")
}

fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("bgrun-{}-{nanos}-{name}", std::process::id()))
}

fn failure_finding(runner: &str, t: &FailedTest) -> Finding {
    Finding::new(
        runner,
        "test-failure",
        Severity::High,
        t.file.as_deref().unwrap_or(""),
        &format!("{} failed: {}", t.name, t.message),
    )
    .at(t.line, None)
    .fix("fix the code or the test so that it passes")
}

/// Why the Python tests do not run without a project environment, and how to make one.
const NO_ENV: &str = "no project environment: the tests run in the project's own interpreter \
so that the project and its dependencies import; make one: python3 -m venv .venv && \
.venv/bin/pip install -r requirements.txt (or -e .), or set analysis.python";

/// The project's interpreter for its tests (`analysis.python`, else its `.venv`/`venv`),
/// or the plan that says why there is none. `None`: the source is `system` (PATH, as
/// before issue 13).
fn project_python(p: &Project, o: &Options) -> Option<Result<PathBuf, Plan>> {
    if o.tools.source_of("pytest") == crate::tools::Source::System {
        return None;
    }
    let Some(py) = crate::tools::project_python(o.python.as_deref(), &p.dirs()) else {
        return Some(Err(Plan::Skip(NO_ENV.into())));
    };
    if !crate::tools::is_executable(&py) {
        return Some(Err(Plan::Fail(format!(
            "analysis.python {}: not an executable interpreter (give the project's python, \
             e.g. .venv/bin/python)",
            py.display()
        ))));
    }
    Some(Ok(py))
}

/// How pytest runs in the project's interpreter `py`: its own pytest (source project),
/// else the managed one put on PYTHONPATH (source managed), else None.
fn pytest_in(py: &std::path::Path, o: &Options) -> Result<Option<Invocation>, Box<Plan>> {
    let base = |exe: &std::path::Path| {
        Invocation::new(
            py,
            &[
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "junit_family=xunit1",
            ],
            std::path::Path::new("."),
        )
        .version(exe, "pytest")
    };
    let own = py.with_file_name("pytest");
    if crate::tools::is_executable(&own) {
        let mut inv = base(&own);
        inv.source = Some(crate::tools::Source::Project);
        return Ok(Some(inv));
    }
    if o.tools.source_of("pytest") != crate::tools::Source::Managed {
        return Ok(None);
    }
    let Some(spec) = crate::tools::spec("pytest") else {
        return Ok(None);
    };
    let loc = o.tools.managed(spec).map_err(|m| {
        Box::new(match m {
            crate::tools::Missing::Skip(why) => Plan::Skip(why),
            crate::tools::Missing::Fail(why) => Plan::Fail(why),
        })
    })?;
    let env = loc.exe.parent().and_then(|b| b.parent());
    let Some(site) = env.and_then(crate::tools::site_packages) else {
        return Err(Box::new(Plan::Fail(format!(
            "the managed pytest at {} has no site-packages (bgrun tools prune --days 0, then retry)",
            loc.exe.display()
        ))));
    };
    let mut inv = base(&loc.exe).env("PYTHONPATH", site);
    inv.source = Some(crate::tools::Source::Managed);
    Ok(Some(inv))
}

pub struct Pytest;

impl Tool for Pytest {
    fn name(&self) -> &'static str {
        "pytest"
    }
    fn kind(&self) -> Kind {
        Kind::Tests
    }
    fn applies(&self, p: &Project) -> bool {
        python_tests(p)
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        let xml = scratch("junit.xml");
        let mut junit = std::ffi::OsString::from("--junitxml=");
        junit.push(&xml);
        if let Some(py) = project_python(p, o) {
            let py = match py {
                Ok(py) => py,
                Err(plan) => return plan,
            };
            return match pytest_in(&py, o) {
                Ok(Some(mut inv)) => {
                    inv.cwd = p.root.clone();
                    let mut inv = inv.arg(junit);
                    inv.result_file = Some(xml);
                    Plan::Run(inv)
                }
                Ok(None) => Plan::Skip(format!(
                    "pytest not in the project's environment ({}; {} -m pip install pytest); \
                     unittest runs the tests instead",
                    py.display(),
                    py.display()
                )),
                Err(plan) => *plan,
            };
        }
        let Some(exe) = p.find_tool("pytest") else {
            return Plan::Skip(
                "pytest not installed (pip install pytest); unittest runs the tests instead".into(),
            );
        };
        let mut inv = Invocation::new(
            &exe,
            &["-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1"],
            &p.root,
        )
        .arg(junit)
        .version(&exe, "pytest");
        inv.result_file = Some(xml);
        Plan::Run(inv)
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        // 5: no tests collected; 3 and 4: internal or usage error.
        // No tests found is not a pass: nothing was checked.
        if raw.code == Some(5) {
            return Err(Error::NoTests {
                tool: "pytest",
                found: "collected",
                exit: raw.exit(),
                output: raw.tail(),
            });
        }
        let Some(xml) = raw
            .result_file
            .as_ref()
            .filter(|_| matches!(raw.code, Some(0..=2)))
        else {
            return Err(Error::Ended {
                tool: "pytest",
                exit: raw.exit(),
                note: " without results",
                output: raw.tail(),
            });
        };
        let (counts, findings) = super::junit::parse(&String::from_utf8_lossy(xml), "pytest", p)?;
        Ok(Parsed {
            findings,
            tests: Some(counts),
            ..Parsed::default()
        })
    }
}

pub struct Unittest;

impl Tool for Unittest {
    fn name(&self) -> &'static str {
        "unittest"
    }
    fn kind(&self) -> Kind {
        Kind::Tests
    }
    fn applies(&self, p: &Project) -> bool {
        python_tests(p) && p.find_tool("pytest").is_none()
    }
    fn plan(&self, p: &Project, o: &Options) -> Plan {
        if let Some(py) = project_python(p, o) {
            let py = match py {
                Ok(py) => py,
                Err(plan) => return plan,
            };
            let pytest_runs = crate::tools::is_executable(&py.with_file_name("pytest"))
                || o.tools.source_of("pytest") == crate::tools::Source::Managed;
            if pytest_runs {
                return Plan::Skip("pytest runs these tests (unittest ones included)".into());
            }
            let mut inv = Invocation::new(&py, &["-m", "unittest", "discover", "-v"], &p.root)
                .version(&py, "python");
            inv.source = Some(crate::tools::Source::Project);
            return Plan::Run(inv);
        }
        let Some(py) = p.find_tool("python").or_else(|| p.find_tool("python3")) else {
            return super::not_installed("python", "install Python 3");
        };
        Plan::Run(
            Invocation::new(&py, &["-m", "unittest", "discover", "-v"], &p.root)
                .version(&py, "python"),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        let text = String::from_utf8_lossy(&raw.stderr);
        let counts = parse_unittest(&text, p).ok_or_else(|| Error::NoSummary {
            tool: "unittest",
            line: "`Ran N tests`",
            exit: raw.exit(),
            output: raw.tail(),
        })?;
        if counts.passed + counts.failed + counts.errors + counts.skipped == 0 {
            return Err(Error::NoTests {
                tool: "unittest",
                found: "found",
                exit: raw.exit(),
                output: raw.tail(),
            });
        }
        let findings = counts
            .failures
            .iter()
            .map(|t| failure_finding("unittest", t))
            .collect();
        Ok(Parsed {
            findings,
            tests: Some(counts),
            ..Parsed::default()
        })
    }
}

/// unittest's verbose text: `Ran N tests`, `FAILED (failures=1, errors=1, skipped=1)`, and
/// one `FAIL:`/`ERROR:` block per failing test.
pub fn parse_unittest(text: &str, p: &Project) -> Option<TestCounts> {
    let ran: u64 = text.lines().find_map(|l| {
        l.strip_prefix("Ran ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })?;
    let mut c = TestCounts::default();
    let status = text
        .lines()
        .rev()
        .find(|l| l.starts_with("OK") || l.starts_with("FAILED"))
        .unwrap_or("");
    let num = |key: &str| -> u64 {
        status
            .split(['(', ')', ','])
            .filter_map(|part| {
                part.trim()
                    .strip_prefix(key)?
                    .strip_prefix('=')?
                    .parse()
                    .ok()
            })
            .next()
            .unwrap_or(0)
    };
    let failed = num("failures") + num("errors") + num("unexpected successes");
    c.skipped = num("skipped");
    c.failed = failed;
    c.passed = ran.saturating_sub(failed + c.skipped);
    let blocks: Vec<&str> = text
        .split("\n======================================================================\n")
        .collect();
    for b in blocks.iter().skip(1) {
        let mut lines = b.lines();
        let Some(head) = lines.next() else { continue };
        let Some(name) = head
            .strip_prefix("FAIL: ")
            .or_else(|| head.strip_prefix("ERROR: "))
        else {
            continue;
        };
        let body: Vec<&str> = b
            .split("\n----------------------------------------------------------------------\n")
            .nth(1)
            .unwrap_or("")
            .lines()
            .collect();
        let message = body
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&"")
            .trim()
            .to_string();
        let loc = body.iter().rev().find_map(|l| {
            let rest = l.trim().strip_prefix("File \"")?;
            let (file, after) = rest.split_once("\", line ")?;
            let line = after.split(',').next()?.parse::<u64>().ok()?;
            Some((p.rel(file), line))
        });
        c.failures.push(FailedTest {
            name: name.trim().to_string(),
            message,
            file: loc.as_ref().map(|l| l.0.clone()),
            line: loc.map(|l| l.1),
        });
    }
    Some(c)
}

pub struct NpmTest;

impl Tool for NpmTest {
    fn name(&self) -> &'static str {
        "npm-test"
    }
    fn kind(&self) -> Kind {
        Kind::Tests
    }
    fn applies(&self, p: &Project) -> bool {
        let Some(text) = p.read("package.json") else {
            return false;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return false;
        };
        v.pointer("/scripts/test")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| !t.contains("no test specified"))
    }
    fn plan(&self, p: &Project, _o: &Options) -> Plan {
        let Some(exe) = p.find_tool("npm") else {
            return super::not_installed("npm", "install Node.js and npm");
        };
        Plan::Run(
            Invocation::new(&exe, &["test"], &p.root)
                .env("CI", "true")
                .version(&exe, "npm"),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        let mut text = String::from_utf8_lossy(&raw.stdout).into_owned();
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(&raw.stderr));
        let counts = parse_npm_output(&text, p).unwrap_or_else(|| {
            // No summary we know: the script's exit status is the result.
            let mut c = TestCounts::default();
            if raw.code == Some(0) {
                c.passed = 1;
            } else {
                c.failed = 1;
                c.failures.push(FailedTest {
                    name: "npm test".into(),
                    message: format!("{}: {}", raw.exit(), raw.tail()),
                    file: None,
                    line: None,
                });
            }
            c
        });
        let findings = counts
            .failures
            .iter()
            .map(|t| failure_finding("npm-test", t))
            .collect();
        Ok(Parsed {
            findings,
            tests: Some(counts),
            ..Parsed::default()
        })
    }
}

/// Summaries of node's test runner (TAP `# pass N`), Jest (`Tests: 1 failed, 2 passed`)
/// and Mocha (`2 passing`, `1 failing`, `1 pending`); failing names from TAP `not ok`.
pub fn parse_npm_output(text: &str, p: &Project) -> Option<TestCounts> {
    let mut c = TestCounts::default();
    let mut found = false;
    let lines: Vec<&str> = text.lines().collect();
    for l in &lines {
        let t = l.trim();
        let tap = |key: &str| {
            t.strip_prefix(key)
                .and_then(|n| n.trim().parse::<u64>().ok())
        };
        if let Some(n) = tap("# pass").or_else(|| tap("ℹ pass")) {
            c.passed = n;
            found = true;
        } else if let Some(n) = tap("# fail").or_else(|| tap("ℹ fail")) {
            c.failed = n;
        } else if let Some(n) = tap("# skipped").or_else(|| tap("ℹ skipped")) {
            c.skipped = n;
        } else if let Some(rest) = t.strip_prefix("Tests:") {
            found = true;
            for part in rest.split(',') {
                let mut w = part.split_whitespace();
                let (Some(n), Some(what)) =
                    (w.next().and_then(|n| n.parse::<u64>().ok()), w.next())
                else {
                    continue;
                };
                match what {
                    "passed" => c.passed = n,
                    "failed" => c.failed = n,
                    "skipped" | "todo" => c.skipped += n,
                    _ => {}
                }
            }
        } else if let Some((n, what)) = t.split_once(' ')
            && let Ok(n) = n.parse::<u64>()
        {
            match what.split_whitespace().next() {
                Some("passing") => {
                    c.passed = n;
                    found = true;
                }
                Some("failing") => c.failed = n,
                Some("pending") => c.skipped = n,
                _ => {}
            }
        }
    }
    if !found {
        return None;
    }
    // TAP: a top-level `not ok N - name`, with `error:` and `location:` in its YAML block.
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("not ok ") else {
            continue;
        };
        let name = rest
            .split_once(" - ")
            .map(|x| x.1)
            .unwrap_or(rest)
            .trim()
            .to_string();
        let mut message = String::new();
        let mut loc = None;
        for y in lines[i + 1..].iter().take_while(|y| y.starts_with("  ")) {
            let y = y.trim();
            if let Some(l) = y.strip_prefix("location: ") {
                let l = l.trim_matches('\'');
                let mut parts = l.rsplitn(3, ':');
                let (_col, line, file) = (parts.next(), parts.next(), parts.next());
                if let (Some(file), Some(line)) = (file, line.and_then(|x| x.parse::<u64>().ok())) {
                    loc = Some((p.rel(file), line));
                }
            }
        }
        if let Some(pos) = lines[i + 1..]
            .iter()
            .position(|y| y.trim_start().starts_with("error:"))
        {
            let after = &lines[i + 1 + pos..];
            let first = after[0]
                .trim()
                .trim_start_matches("error:")
                .trim()
                .trim_matches('\'');
            message = if first.is_empty() || first == "|-" {
                after
                    .get(1)
                    .map(|x| x.trim().to_string())
                    .unwrap_or_default()
            } else {
                first.to_string()
            };
        }
        c.failures.push(FailedTest {
            name,
            message,
            file: loc.as_ref().map(|l| l.0.clone()),
            line: loc.map(|l| l.1),
        });
    }
    Some(c)
}

pub struct CargoTest;

impl Tool for CargoTest {
    fn name(&self) -> &'static str {
        "cargo-test"
    }
    fn kind(&self) -> Kind {
        Kind::Tests
    }
    fn applies(&self, p: &Project) -> bool {
        p.has("Cargo.toml")
    }
    fn plan(&self, p: &Project, _o: &Options) -> Plan {
        let Some(exe) = p.find_tool("cargo") else {
            return super::not_installed("cargo", "install Rust with rustup");
        };
        Plan::Run(
            Invocation::new(
                &exe,
                &["test", "--no-fail-fast", "--color", "never"],
                &p.root,
            )
            .env("RUST_BACKTRACE", "0")
            .version(&exe, "cargo"),
        )
    }
    fn parse(&self, raw: &Raw, p: &Project, _o: &Options) -> Result<Parsed, Error> {
        let text = String::from_utf8_lossy(&raw.stdout);
        let counts = parse_cargo_test(&text, p).ok_or_else(|| {
            let stderr = String::from_utf8_lossy(&raw.stderr);
            let err = stderr
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or("");
            Error::NoTests {
                tool: "cargo test",
                found: "ran",
                exit: raw.exit(),
                output: format!("{err} {}", raw.tail()),
            }
        })?;
        let findings = counts
            .failures
            .iter()
            .map(|t| failure_finding("cargo-test", t))
            .collect();
        Ok(Parsed {
            findings,
            tests: Some(counts),
            ..Parsed::default()
        })
    }
}

/// cargo test's libtest output: `test NAME ... ok|FAILED|ignored` lines, and a
/// `---- NAME stdout ----` block per failure with the panic's place and message.
pub fn parse_cargo_test(text: &str, p: &Project) -> Option<TestCounts> {
    if !text.lines().any(|l| l.starts_with("test result: ")) {
        return None;
    }
    let mut c = TestCounts::default();
    let mut failed_names = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("test ") else {
            continue;
        };
        let Some((name, outcome)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        match outcome.trim() {
            "ok" => c.passed += 1,
            "FAILED" => {
                c.failed += 1;
                failed_names.push(name.to_string());
            }
            o if o.starts_with("ignored") => c.skipped += 1,
            _ => {}
        }
    }
    for name in failed_names {
        let marker = format!("---- {name} stdout ----");
        let block: Vec<&str> = text
            .split(&marker)
            .nth(1)
            .unwrap_or("")
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("---- ") && !l.starts_with("failures:"))
            .collect();
        let mut loc = None;
        let mut msg = Vec::new();
        let mut in_msg = false;
        for l in &block {
            if let Some(i) = l.find("panicked at ") {
                let at = l[i + "panicked at ".len()..].trim_end_matches(':');
                let mut parts = at.rsplitn(3, ':');
                let (_col, line, file) = (parts.next(), parts.next(), parts.next());
                if let (Some(file), Some(line)) = (file, line.and_then(|x| x.parse::<u64>().ok())) {
                    loc = Some((p.rel(file), line));
                }
                in_msg = true;
                continue;
            }
            if in_msg {
                if l.starts_with("note:")
                    || l.starts_with("stack backtrace:")
                    || l.trim().is_empty()
                {
                    break;
                }
                msg.push(l.trim());
            }
        }
        c.failures.push(FailedTest {
            name,
            message: msg.join(" "),
            file: loc.as_ref().map(|l| l.0.clone()),
            line: loc.map(|l| l.1),
        });
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn project(root: &str) -> Project {
        Project::scan(Path::new(root), Path::new(root))
    }

    #[test]
    fn unittest_real_output() {
        let c = parse_unittest(
            include_str!("../../fixtures/tool-output/unittest.txt"),
            &project("/src/fixtures/unittest-app"),
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (1, 2, 1));
        let names: Vec<&str> = c.failures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "test_div (test_calc.CalcTest.test_div)",
                "test_sub (test_calc.CalcTest.test_sub)"
            ]
        );
        assert_eq!(c.failures[0].message, "ZeroDivisionError: division by zero");
        assert_eq!(
            c.failures[1].message,
            "AssertionError: 2 != 1 : subtraction is off"
        );
        assert_eq!(
            (c.failures[1].file.as_deref(), c.failures[1].line),
            (Some("test_calc.py"), Some(9))
        );
    }

    #[test]
    fn cargo_test_real_output() {
        let c = parse_cargo_test(
            include_str!("../../fixtures/tool-output/cargo-test.txt"),
            &project("/src/fixtures/rust-crate"),
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (1, 1, 0));
        assert_eq!(c.failures[0].name, "tests::broken");
        assert_eq!(
            (c.failures[0].file.as_deref(), c.failures[0].line),
            (Some("src/lib.rs"), Some(19))
        );
        assert!(
            c.failures[0]
                .message
                .starts_with("assertion `left == right` failed: two doubled is not five"),
            "{}",
            c.failures[0].message
        );
        assert!(parse_cargo_test("error: could not compile", &project("/x")).is_none());
    }

    #[test]
    fn node_test_runner_real_output() {
        let c = parse_npm_output(
            include_str!("../../fixtures/tool-output/npm-test.txt"),
            &project("/src/fixtures/npm-test-app"),
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (1, 1, 1));
        assert_eq!(c.failures[0].name, "subtracts");
        assert_eq!(c.failures[0].message, "subtraction is off");
        assert_eq!(
            (c.failures[0].file.as_deref(), c.failures[0].line),
            (Some("math.test.js"), Some(8))
        );
    }

    #[test]
    fn jest_and_mocha_summaries() {
        let c =
            parse_npm_output("Tests:       1 failed, 2 passed, 3 total\n", &project("/x")).unwrap();
        assert_eq!((c.passed, c.failed), (2, 1));
        let c = parse_npm_output("  3 passing (5ms)\n  1 failing\n", &project("/x")).unwrap();
        assert_eq!((c.passed, c.failed), (3, 1));
        assert!(parse_npm_output("hello", &project("/x")).is_none());
    }
}

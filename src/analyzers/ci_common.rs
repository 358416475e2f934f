//! Shared reading of a normalized report (as JSON, so that fields added later, such as a
//! finding's `fingerprint` and `baseline`, are used when present) for the CI writers
//! (`junit_report`, `github`, `codequality`).

use serde_json::Value;

/// A string field, or "".
pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// An unsigned field.
pub fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

/// The array under `k` (empty when missing).
pub fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `file:line` (or `file`, or "").
pub fn loc(f: &Value) -> String {
    match u(f, "line") {
        Some(l) => format!("{}:{l}", s(f, "file")),
        None => s(f, "file").to_string(),
    }
}

/// The failing tests of a report (from each test runner's `tests.failures`), with the tool.
pub fn failing_tests(report: &Value) -> Vec<(&str, &Value)> {
    arr(report, "tools")
        .iter()
        .flat_map(|t| {
            t.pointer("/tests/failures")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |f| (s(t, "name"), f))
        })
        .collect()
}

/// A finding's stable identity: its `fingerprint` when the report has one, else a hash of
/// tool, rule, file and message (not the line: moving code does not make it new).
pub fn fingerprint(f: &Value) -> String {
    let given = s(f, "fingerprint");
    if !given.is_empty() {
        return given.to_string();
    }
    let key = format!(
        "{}\0{}\0{}\0{}",
        s(f, "tool"),
        s(f, "rule"),
        s(f, "file"),
        s(f, "message")
    );
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

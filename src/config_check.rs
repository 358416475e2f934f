//! Config validation beyond types (issue 14): every number has a documented range (the
//! README's "Config value ranges" table is this `RANGES` list), duplicate JSON keys and
//! keys close to a known one are reported, and a cron expression that can never fire is
//! a warning. `config check --strict` turns warnings into exit 2.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// An inclusive range of a numeric setting.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", num(self.min), num(self.max))
    }
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

const fn r(min: f64, max: f64) -> Range {
    Range { min, max }
}

/// Every numeric setting and its range. `task_types.*` applies to each task type.
pub const RANGES: &[(&str, Range)] = &[
    ("execution.max_concurrent_tasks", r(1.0, 1024.0)),
    ("execution.task_timeout_seconds", r(1.0, 604_800.0)),
    ("execution.max_retries", r(0.0, 100.0)),
    ("execution.retry_delay_seconds", r(0.0, 86_400.0)),
    ("execution.max_queue_size", r(1.0, 1_000_000.0)),
    ("execution.kill_grace_seconds", r(0.0, 3600.0)),
    ("execution.log_max_kb", r(1.0, 1_048_576.0)),
    ("execution.lock_timeout_seconds", r(0.0, 3600.0)),
    ("resource_limits.max_memory_mb", r(1.0, 16_777_216.0)),
    ("resource_limits.max_cpu_percent", r(0.1, 100.0)),
    ("task_types.*.priority", r(-1_000_000.0, 1_000_000.0)),
    ("task_types.*.timeout_seconds", r(1.0, 604_800.0)),
    ("task_types.*.debounce_seconds", r(0.0, 3600.0)),
    ("task_types.*.max_retries", r(0.0, 100.0)),
    (
        "task_types.*.auto_trigger.interval_minutes",
        r(1.0, 525_600.0),
    ),
    (
        "triggers.file_watch.check_interval_seconds",
        r(0.05, 3600.0),
    ),
    ("triggers.file_watch.debounce_seconds", r(0.0, 3600.0)),
    (
        "notifications.channels.desktop.timeout_ms",
        r(0.0, 600_000.0),
    ),
    ("notifications.channels.desktop.retries", r(0.0, 10.0)),
    (
        "notifications.channels.file.max_size_kb",
        r(1.0, 1_048_576.0),
    ),
    ("notifications.channels.file.keep_files", r(0.0, 1000.0)),
    (
        "notifications.channels.file.retention_days",
        r(0.0, 36_500.0),
    ),
    ("notifications.channels.email.smtp_port", r(1.0, 65_535.0)),
    (
        "notifications.channels.email.timeout_seconds",
        r(1.0, 600.0),
    ),
    (
        "notifications.channels.webhook.timeout_seconds",
        r(1.0, 600.0),
    ),
    ("metrics.retention_days", r(0.0, 36_500.0)),
    ("results.retention_days", r(0.0, 36_500.0)),
    ("analysis.complexity_threshold", r(1.0, 10_000.0)),
    ("analysis.large_file_lines", r(1.0, 10_000_000.0)),
    ("analysis.tool_timeout_seconds", r(1.0, 86_400.0)),
    ("analysis.cache_max_mb", r(1.0, 1_048_576.0)),
];

/// Check every numeric setting of a config (as its JSON value) against its range:
/// `file: key: V is out of range (A to B)`.
pub fn check_ranges(v: &Value, file: &str, errors: &mut Vec<String>) {
    for (key, range) in RANGES {
        let parts: Vec<&str> = key.split('.').collect();
        let mut found: Vec<(String, &Value)> = Vec::new();
        collect(v, &parts, String::new(), &mut found);
        for (path, x) in found {
            let Some(n) = x.as_f64() else {
                continue; // null: unset
            };
            if !(n.is_finite() && n >= range.min && n <= range.max) {
                errors.push(format!(
                    "{file}: {path}: {x} is out of range ({range}); see \"Config value ranges\" in the README"
                ));
            }
        }
    }
}

fn collect<'a>(v: &'a Value, parts: &[&str], at: String, out: &mut Vec<(String, &'a Value)>) {
    let Some((first, rest)) = parts.split_first() else {
        out.push((at, v));
        return;
    };
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (*first, v) {
        ("*", Value::Object(m)) => {
            for (k, x) in m {
                collect(x, rest, join(k), out);
            }
        }
        (k, Value::Object(m)) => {
            if let Some(x) = m.get(k) {
                collect(x, rest, join(k), out);
            }
        }
        _ => {}
    }
}

/// Paths of keys that appear twice in one object (the last one is taken).
pub fn duplicate_keys(text: &str) -> Vec<String> {
    let out = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = Dup {
        path: String::new(),
        out: &out,
    }
    .deserialize(&mut de);
    out.into_inner()
}

struct Dup<'a> {
    path: String,
    out: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Dup<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Dup<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                k.clone()
            } else {
                format!("{}.{k}", self.path)
            };
            if !seen.insert(k) {
                self.out.borrow_mut().push(path.clone());
            }
            map.next_value_seed(Dup {
                path,
                out: self.out,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Dup {
                path: format!("{}[{i}]", self.path),
                out: self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Add "did you mean" to each unknown-key warning whose key is close to a known key at the
/// same place (`known` is the merged config, every default filled in).
pub fn suggest_near_keys(warnings: &mut [String], known: &Value, file: &str) {
    for w in warnings.iter_mut() {
        let Some(path) = w
            .strip_prefix(&format!("{file}: "))
            .and_then(|r| r.strip_suffix(": unknown key (ignored)"))
        else {
            continue;
        };
        let (parent, key) = match path.rsplit_once('.') {
            Some((p, k)) => (p, k),
            None => ("", path),
        };
        let mut node = known;
        for part in parent.split('.').filter(|p| !p.is_empty()) {
            match node.get(part) {
                Some(n) => node = n,
                None => break,
            }
        }
        let Some(obj) = node.as_object() else {
            continue;
        };
        let best = obj
            .keys()
            .map(|k| (distance(k, key), k))
            .filter(|(d, k)| *d > 0 && *d <= (k.len() / 4).max(1) + 1)
            .min();
        if let Some((_, k)) = best {
            w.push_str(&format!("; did you mean `{k}`?"));
        }
    }
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_with_their_path() {
        let d = duplicate_keys(r#"{"a": 1, "b": {"c": 1, "c": 2}, "a": [ {"x":1,"x":1} ]}"#);
        assert_eq!(d, ["b.c", "a", "a[0].x"]);
    }

    #[test]
    fn near_keys_are_suggested() {
        let known = serde_json::json!({"execution": {"max_concurrent_tasks": 2}});
        let mut w = vec!["f: execution.max_concurent_tasks: unknown key (ignored)".to_string()];
        suggest_near_keys(&mut w, &known, "f");
        assert!(
            w[0].ends_with("did you mean `max_concurrent_tasks`?"),
            "{}",
            w[0]
        );
        let mut w = vec!["f: execution.zzz: unknown key (ignored)".to_string()];
        suggest_near_keys(&mut w, &known, "f");
        assert!(!w[0].contains("did you mean"));
    }
}

#[cfg(test)]
mod closed_words {
    //! The config's closed word sets are serde enums: the same words in and out, and any
    //! other word an error naming the key and the words.

    use crate::config::{self, ChannelKind, EmailFormat, TlsMode};
    use crate::model::Level;

    fn errors(text: &str) -> Vec<String> {
        config::parse(text, "f").err().unwrap_or_default()
    }

    #[test]
    fn words_are_read_and_written_as_they_are_spelled() {
        let (c, _) = config::parse(
            r#"{"notifications": {"channels": {
                "email": {"tls": "implicit", "format": "html", "min_severity": "error"},
                "mine": {"type": "command", "command": ["true"], "min_severity": "critical"}}},
               "analysis": {"tools": {"ruff": {"source": "system"}}}}"#,
            "f",
        )
        .unwrap();
        let ch = &c.notifications.channels;
        assert_eq!(ch.email.tls, Some(TlsMode::Implicit));
        assert_eq!(ch.email.format, EmailFormat::Html);
        assert_eq!(ch.email.min_severity, Level::Error);
        assert_eq!(ch.custom["mine"].kind, ChannelKind::Command);
        assert_eq!(ch.custom["mine"].min_severity, Level::Critical);
        assert_eq!(
            c.analysis.tools["ruff"].source,
            Some(crate::tools::Source::System)
        );
        let v = serde_json::to_value(&c).unwrap();
        let chv = &v["notifications"]["channels"];
        assert_eq!(chv["email"]["tls"], "implicit");
        assert_eq!(chv["email"]["format"], "html");
        assert_eq!(chv["mine"]["type"], "command");
        assert_eq!(chv["mine"]["min_severity"], "critical");
        assert_eq!(chv["console"]["min_severity"], "info");
    }

    #[test]
    fn another_word_names_the_key_and_the_words() {
        assert_eq!(
            errors(r#"{"notifications": {"channels": {"console": {"min_severity": "loud"}}}}"#),
            [
                "f: notifications.channels.console.min_severity: expected info, warning, error or critical, found \"loud\""
            ]
        );
        assert_eq!(
            errors(r#"{"notifications": {"channels": {"email": {"tls": "ssl"}}}}"#),
            [
                "f: notifications.channels.email.tls: expected starttls, implicit or none, found \"ssl\""
            ]
        );
        assert_eq!(
            errors(r#"{"notifications": {"channels": {"email": {"format": "md"}}}}"#),
            ["f: notifications.channels.email.format: expected text, html or both"]
        );
        assert_eq!(
            errors(
                r#"{"notifications": {"channels": {"mine": {"type": "shell", "command": ["x"]}}}}"#
            ),
            [
                "f: notifications.channels.mine.type: expected \"command\" (the only custom channel type), found \"shell\""
            ]
        );
        // `warn` is a word of the command line, not of the config.
        assert_eq!(
            errors(
                r#"{"notifications": {"channels": {"mine": {"type": "command", "command": ["x"], "min_severity": "warn"}}}}"#
            ),
            [
                "f: notifications.channels.mine.min_severity: expected info, warning, error or critical, found \"warn\""
            ]
        );
        assert_eq!(
            errors(r#"{"analysis": {"tools": {"ruff": {"source": "pip"}}}}"#),
            ["f: analysis.tools.ruff.source: expected managed, project or system, found \"pip\""]
        );
    }

    #[test]
    fn an_unknown_key_in_a_named_channel_is_warned_about() {
        let (_, w) = config::parse(
            r#"{"notifications": {"channels": {"mine": {"type": "command", "command": ["x"], "bogus": 1}}}}"#,
            "f",
        )
        .unwrap();
        assert!(
            w.iter()
                .any(|w| w == "f: notifications.channels.mine.bogus: unknown key (ignored)"),
            "{w:?}"
        );
    }
}

#[cfg(test)]
mod fuzz {
    //! 2,000+ mutated configs through `parse` (and the schedule parser for those that
    //! pass): every one ends in a config or a list of errors, never a panic.

    use serde_json::{Value, json};

    use crate::config::{self, Config};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn hostile(rng: &mut Rng) -> Value {
        let pool = [
            Value::Null,
            json!(true),
            json!(-1),
            json!(0),
            json!(1),
            json!(1e20),
            json!(-1e308),
            json!(1.7e308),
            json!(9_223_372_036_854_775_808u64),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.5),
            json!(""),
            json!("x".repeat(5000)),
            json!("0 0 31 2 *"),
            json!("* * * * * * * *"),
            json!("@reboot"),
            json!("ünïcødé ☃ \u{0}"),
            json!([]),
            json!([1, "a", null]),
            json!({}),
            json!({"nested": {"deep": [1, 2, {"x": null}]}}),
            json!(["sh", "-c", "true"]),
            json!("critical"),
            json!(-1_000_000_000_000i64),
        ];
        pool[rng.below(pool.len())].clone()
    }

    /// Replace, delete or add at a random place.
    fn mutate(v: &mut Value, rng: &mut Rng, depth: usize) {
        match v {
            Value::Object(m) if !m.is_empty() && (depth < 4 && rng.below(3) > 0) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                let k = &keys[rng.below(keys.len())];
                match rng.below(10) {
                    0 => {
                        m.remove(k);
                    }
                    1 => {
                        m.insert(format!("{k}x"), hostile(rng));
                    }
                    _ => {
                        if let Some(x) = m.get_mut(k) {
                            mutate(x, rng, depth + 1);
                        }
                    }
                }
            }
            Value::Array(a) if !a.is_empty() && rng.below(2) == 0 => {
                let i = rng.below(a.len());
                mutate(&mut a[i], rng, depth + 1);
            }
            _ => *v = hostile(rng),
        }
    }

    #[test]
    fn two_thousand_mutated_configs_never_panic() {
        let base = serde_json::to_value(Config::embedded()).unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut ok, mut bad) = (0, 0);
        for i in 0..2500 {
            let mut v = base.clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut v, &mut rng, 0);
            }
            let mut text = serde_json::to_string(&v).unwrap();
            // Text-level damage now and then: a cut, a stray byte, a BOM, a duplicate key.
            match i % 9 {
                0 | 1 => {
                    let mut at = rng.below(text.len());
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    if i % 9 == 0 {
                        text.truncate(at);
                    } else {
                        text.insert(at, '}');
                    }
                }
                2 => text.insert(0, '\u{feff}'),
                3 => text = text.replacen('{', "{\"execution\": {}, ", 1),
                _ => {}
            }
            match config::parse(&text, "fuzz.json") {
                Ok((c, _)) => {
                    ok += 1;
                    let _ = crate::triggers::cron::schedules(&c);
                    let _ = c.resource_limits.nice_and_ioprio();
                    let _ = crate::runner::scrub::secret_vars(&c);
                }
                Err(errors) => {
                    bad += 1;
                    assert!(!errors.is_empty());
                }
            }
        }
        assert!(ok > 100 && bad > 100, "ok {ok}, bad {bad}");
    }
}

//! Schedules: which tasks fire when (cron expressions and `interval_minutes`), the
//! crontab block that makes the system cron call `bgrun tick`, and which due times a tick
//! owes. Pure: no I/O, no engine; `commands::cron` and `commands::tick` glue it in.
//!
//! Expressions are the five Vixie cron fields (names, ranges, lists, steps) or a nickname
//! (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`,
//! `@reboot`), validated with `croner`; `@reboot` has no next time and fires on the first
//! tick after the machine booted.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Local, TimeZone};
use croner::parser::{CronParser, Seconds, Year};

use crate::config::Config;

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// A cron expression, normalized to the five numeric fields cron understands.
    Cron { expr: String, fields: String },
    /// Every `minutes`, aligned to the epoch (what `*/N` does for N dividing 60).
    Every { minutes: u64 },
    /// Once per boot.
    Reboot,
}

/// One schedule: `schedule:NAME` for `triggers.scheduled.tasks`, `interval:TYPE` for an
/// `auto_trigger.interval_minutes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The key the tick bookkeeping uses, also the task trigger (`schedule:NAME`).
    pub key: String,
    pub name: String,
    pub task_type: String,
    pub when: When,
}

impl Schedule {
    /// The schedule as the user wrote it.
    pub fn describe(&self) -> String {
        match &self.when {
            When::Cron { expr, .. } => expr.clone(),
            When::Every { minutes } => format!("every {minutes} min"),
            When::Reboot => "@reboot".to_string(),
        }
    }

    /// The first due time strictly after `after` (None for `@reboot`).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match &self.when {
            When::Cron { fields, .. } => {
                let cron = parser().parse(fields).ok()?;
                let t = Local.timestamp_opt(after, 0).earliest()?;
                cron.find_next_occurrence(&t, false)
                    .ok()
                    .map(|d| d.timestamp())
            }
            When::Every { minutes } => {
                let p = (*minutes as i64) * 60;
                Some((after.div_euclid(p) + 1) * p)
            }
            When::Reboot => None,
        }
    }

    /// The latest due time in `(last, now]`, if any: what a tick owes.
    pub fn due_between(&self, last: i64, now: i64) -> Option<i64> {
        if now <= last {
            return None;
        }
        match &self.when {
            When::Every { minutes } => {
                let p = (*minutes as i64) * 60;
                let d = now.div_euclid(p) * p;
                (d > last).then_some(d)
            }
            When::Cron { fields, .. } => {
                let cron = parser().parse(fields).ok()?;
                let t = Local.timestamp_opt(now, 0).earliest()?;
                let prev: DateTime<Local> = cron.find_previous_occurrence(&t, true).ok()?;
                let d = prev.timestamp();
                (d > last && d <= now).then_some(d)
            }
            When::Reboot => None,
        }
    }

    /// The crontab time fields that wake `tick` for this schedule.
    pub fn crontab_time(&self) -> String {
        match &self.when {
            When::Cron { fields, expr } if expr.starts_with('@') => {
                let e = expr.to_ascii_lowercase();
                if e == "@midnight" {
                    "@daily".to_string()
                } else if [
                    "@yearly",
                    "@annually",
                    "@monthly",
                    "@weekly",
                    "@daily",
                    "@hourly",
                ]
                .contains(&e.as_str())
                {
                    e
                } else {
                    fields.clone()
                }
            }
            When::Cron { fields, .. } => fields.clone(),
            When::Every { minutes } => {
                let m = *minutes;
                if m < 60 && 60 % m == 0 {
                    if m == 1 {
                        "* * * * *".to_string()
                    } else {
                        format!("*/{m} * * * *")
                    }
                } else if m % 60 == 0 && 24 % (m / 60) == 0 {
                    let h = m / 60;
                    if h == 1 {
                        "0 * * * *".to_string()
                    } else {
                        format!("0 */{h} * * *")
                    }
                } else {
                    // Not expressible in cron: wake every minute, tick decides.
                    "* * * * *".to_string()
                }
            }
            When::Reboot => "@reboot".to_string(),
        }
    }
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parse one cron expression. The error names the field at fault.
pub fn parse_when(expr: &str) -> Result<When, String> {
    let e = expr.trim();
    if e.eq_ignore_ascii_case("@reboot") {
        return Ok(When::Reboot);
    }
    if e.starts_with('@') {
        let base = match e.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => {
                return Err(format!(
                    "unknown nickname {e:?} (use @yearly, @annually, @monthly, @weekly, @daily, \
                     @midnight, @hourly or @reboot)"
                ));
            }
        };
        return Ok(When::Cron {
            expr: e.to_string(),
            fields: base.to_string(),
        });
    }
    let parts: Vec<&str> = e.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week) or a nickname \
             like @daily, found {}",
            parts.len()
        ));
    }
    let mut norm = Vec::with_capacity(5);
    for (i, p) in parts.iter().enumerate() {
        let field = FIELDS[i];
        if let Some(c) = p
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "*,-/".contains(*c)))
        {
            return Err(format!(
                "{field} field {p:?}: character {c:?} is not allowed"
            ));
        }
        let names: &[&str] = match i {
            3 => &MONTHS,
            4 => &DAYS,
            _ => &[],
        };
        let n = normalize_names(p, names, if i == 3 { 1 } else { 0 })
            .map_err(|bad| format!("{field} field {p:?}: unknown name {bad:?}"))?;
        // Check this field alone (others as `*`), so the error can name it.
        let mut probe = ["*"; 5];
        probe[i] = &n;
        if let Err(err) = parser().parse(&probe.join(" ")) {
            return Err(format!("{field} field {p:?}: {}", describe_err(&err)));
        }
        norm.push(n);
    }
    let fields = norm.join(" ");
    if let Err(err) = parser().parse(&fields) {
        return Err(describe_err(&err));
    }
    Ok(When::Cron {
        expr: e.to_string(),
        fields,
    })
}

/// Replace month / weekday names by their numbers; Err(the bad word).
fn normalize_names(field: &str, names: &[&str], base: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| -> Result<(), String> {
        if word.is_empty() {
            return Ok(());
        }
        let up = word.to_ascii_uppercase();
        if up.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(word);
        } else if let Some(i) = names.iter().position(|n| *n == up) {
            out.push_str(&(i + base).to_string());
        } else {
            return Err(word.clone());
        }
        word.clear();
        Ok(())
    };
    for c in field.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out)?;
            out.push(c);
        }
    }
    flush(&mut word, &mut out)?;
    Ok(out)
}

fn describe_err(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match e {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => format!("{other:?}"),
    }
}

/// Every schedule of the config; errors name the task and the field.
pub fn schedules(c: &Config) -> Result<Vec<Schedule>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    if c.triggers.scheduled.enabled {
        for (i, s) in c.triggers.scheduled.tasks.iter().enumerate() {
            match parse_when(&s.schedule) {
                Ok(when) => out.push(Schedule {
                    key: format!("schedule:{}", s.name),
                    name: s.name.clone(),
                    task_type: s.task_type.clone(),
                    when,
                }),
                Err(e) => errors.push(format!(
                    "triggers.scheduled.tasks[{i}].schedule (task {:?}): {e}",
                    s.name
                )),
            }
        }
    }
    for (name, t) in &c.task_types {
        match t.auto_trigger.interval_minutes {
            Some(0) => errors.push(format!(
                "task_types.{name}.auto_trigger.interval_minutes: must be at least 1"
            )),
            Some(m) if t.enabled => out.push(Schedule {
                key: format!("interval:{name}"),
                name: format!("every {m} min"),
                task_type: name.clone(),
                when: When::Every { minutes: m },
            }),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

// ---------------------------------------------------------------------------------------
// The crontab block

/// The first and last line of this repo's block.
pub fn markers(repo: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut begin = b"# >>> bgrun schedules for ".to_vec();
    begin.extend_from_slice(repo.as_os_str().as_encoded_bytes());
    begin.extend_from_slice(
        b" >>> (managed by `bgrun cron install`; `bgrun cron uninstall` removes it)",
    );
    let mut end = b"# <<< bgrun schedules for ".to_vec();
    end.extend_from_slice(repo.as_os_str().as_encoded_bytes());
    end.extend_from_slice(b" <<<");
    (begin, end)
}

/// Quote bytes for cron's `/bin/sh -c` and escape cron's `%`.
pub fn sh_quote(b: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &c in b {
        match c {
            b'\'' => out.extend_from_slice(b"'\\''"),
            b'%' => out.extend_from_slice(b"\\%"),
            _ => out.push(c),
        }
    }
    out.push(b'\'');
    out
}

/// What goes into the block: one command line (argv) run for every schedule.
pub struct BlockSpec<'a> {
    pub repo: &'a Path,
    /// `bgrun` and its global options, then `tick`.
    pub argv: Vec<Vec<u8>>,
    pub path_env: Vec<u8>,
    pub log: &'a Path,
}

/// Render the block (with its trailing newline). Errors when a path holds a newline,
/// which a crontab line cannot carry.
pub fn render_block(spec: &BlockSpec, scheds: &[Schedule]) -> Result<Vec<u8>, String> {
    let mut all: Vec<&[u8]> = spec.argv.iter().map(Vec::as_slice).collect();
    all.push(&spec.path_env);
    all.push(spec.log.as_os_str().as_encoded_bytes());
    all.push(spec.repo.as_os_str().as_encoded_bytes());
    if all.iter().any(|a| a.contains(&b'\n') || a.contains(&b'\r')) {
        return Err(
            "a path (repo, state dir, bgrun or PATH) contains a newline, which a crontab line \
             cannot hold; move it"
                .to_string(),
        );
    }
    let mut cmd = b"PATH=".to_vec();
    cmd.extend(sh_quote(&spec.path_env));
    for a in &spec.argv {
        cmd.push(b' ');
        cmd.extend(sh_quote(a));
    }
    cmd.extend_from_slice(b" >>");
    cmd.extend(sh_quote(spec.log.as_os_str().as_encoded_bytes()));
    cmd.extend_from_slice(b" 2>&1");
    let (begin, end) = markers(spec.repo);
    let mut out = begin;
    out.push(b'\n');
    // One line per distinct wake-up time; tick decides what is due.
    let mut times: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in scheds {
        times.entry(s.crontab_time()).or_default().push(format!(
            "{} ({}: {})",
            s.key.replace(['\n', '\r'], " "),
            s.task_type,
            s.describe()
        ));
    }
    for (time, who) in &times {
        out.extend_from_slice(format!("# {}\n", who.join(", ").replace('%', "\\%")).as_bytes());
        out.extend_from_slice(time.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&cmd);
        out.push(b'\n');
    }
    out.extend_from_slice(&end);
    out.push(b'\n');
    Ok(out)
}

/// Split a crontab into (before, block, after) around this repo's block, by its markers.
fn find_block(tab: &[u8], repo: &Path) -> Option<(usize, usize)> {
    let (begin, end) = markers(repo);
    let lines = line_spans(tab);
    let start = lines
        .iter()
        .position(|&(s, e)| trim_eol(&tab[s..e]) == begin.as_slice())?;
    let stop = lines[start..]
        .iter()
        .position(|&(s, e)| trim_eol(&tab[s..e]) == end.as_slice())?
        + start;
    Some((lines[start].0, lines[stop].1))
}

fn line_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut s = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            v.push((s, i + 1));
            s = i + 1;
        }
    }
    if s < b.len() {
        v.push((s, b.len()));
    }
    v
}

fn trim_eol(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\n").unwrap_or(l)
}

/// The crontab with this repo's block replaced (or appended). Every other byte is kept.
pub fn with_block(tab: &[u8], repo: &Path, block: &[u8]) -> Vec<u8> {
    match find_block(tab, repo) {
        Some((s, e)) => {
            let mut out = tab[..s].to_vec();
            out.extend_from_slice(block);
            out.extend_from_slice(&tab[e..]);
            out
        }
        None => {
            let mut out = tab.to_vec();
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            out.extend_from_slice(block);
            out
        }
    }
}

/// The crontab without this repo's block; None when it has none.
pub fn without_block(tab: &[u8], repo: &Path) -> Option<Vec<u8>> {
    let (s, e) = find_block(tab, repo)?;
    let mut out = tab[..s].to_vec();
    out.extend_from_slice(&tab[e..]);
    Some(out)
}

/// This repo's block as it is in the crontab.
pub fn current_block<'a>(tab: &'a [u8], repo: &Path) -> Option<&'a [u8]> {
    find_block(tab, repo).map(|(s, e)| &tab[s..e])
}

// ---------------------------------------------------------------------------------------
// The due-time policy of `bgrun tick`: which schedules are due since the last tick, at most
// once per due time, kept in `<state>/schedule.json`.

/// The bookkeeping file in the state dir.
pub const BOOK_FILE: &str = "schedule.json";

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Book {
    pub schema_version: u32,
    /// Boot time (Unix seconds) seen by the last tick.
    pub boot_time: Option<i64>,
    /// Schedule key -> the tick time up to which its due times are accounted for.
    pub last: std::collections::BTreeMap<String, i64>,
}

/// The machine's boot time from /proc/stat.
pub fn boot_time() -> Option<i64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Which schedules are due now; updates the book.
pub fn due(book: &mut Book, scheds: &[Schedule], now: i64, boot: Option<i64>) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    let rebooted = match (book.boot_time, boot) {
        (Some(old), Some(b)) => (old - b).abs() > 5,
        // First tick ever: a boot in the last 10 minutes counts.
        (None, Some(b)) => now - b < 600,
        _ => false,
    };
    for (i, s) in scheds.iter().enumerate() {
        // A schedule seen for the first time owes the last minute (so a tick at 02:00:03
        // fires `0 2 * * *`); a long gap is capped to two days of history.
        let last = book
            .last
            .get(&s.key)
            .copied()
            .unwrap_or(now - 60)
            .max(now - 2 * 86_400);
        if now < last {
            continue; // the clock went back: wait until it catches up
        }
        let d = match s.when {
            When::Reboot => rebooted.then_some(boot.unwrap_or(now)),
            _ => s.due_between(last, now),
        };
        if let Some(d) = d {
            out.push((i, d));
        }
    }
    if boot.is_some() {
        book.boot_time = boot;
    }
    let keys: std::collections::BTreeSet<&str> = scheds.iter().map(|s| s.key.as_str()).collect();
    book.last.retain(|k, _| keys.contains(k.as_str()));
    for s in scheds {
        let e = book.last.entry(s.key.clone()).or_insert(now);
        *e = (*e).max(now);
    }
    out
}

impl Book {
    /// Read the bookkeeping (absent: empty); unreadable is a state error naming the way out.
    pub fn load(path: &Path) -> anyhow::Result<Book> {
        let mut book: Book = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                crate::error::state(format!(
                    "{}: unreadable ({e}); delete it to start the schedule bookkeeping afresh \
                     (due times since the last tick are then forgotten)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Book::default(),
            Err(e) => {
                return Err(crate::error::state(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        book.schema_version = 1;
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_names_steps_and_nicknames() {
        assert!(matches!(parse_when("0 2 * * *"), Ok(When::Cron { .. })));
        assert!(matches!(parse_when("@daily"), Ok(When::Cron { .. })));
        assert!(matches!(parse_when("@reboot"), Ok(When::Reboot)));
        match parse_when("*/15 9-17 * jan-mar Mon-Fri") {
            Ok(When::Cron { fields, .. }) => assert_eq!(fields, "*/15 9-17 * 1-3 1-5"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_when("0 25 * * *").unwrap_err();
        assert!(e.starts_with("hour field"), "{e}");
        let e = parse_when("61 * * * *").unwrap_err();
        assert!(e.starts_with("minute field"), "{e}");
        let e = parse_when("* * * foo *").unwrap_err();
        assert!(e.starts_with("month field"), "{e}");
        let e = parse_when("* * * * * *").unwrap_err();
        assert!(e.contains("5 fields"), "{e}");
        let e = parse_when("* * L * *").unwrap_err();
        assert!(e.starts_with("day-of-month"), "{e}");
        assert!(parse_when("@sometimes").is_err());
    }

    #[test]
    fn due_at_most_once_per_due_time() {
        let s = Schedule {
            key: "interval:x".into(),
            name: "x".into(),
            task_type: "x".into(),
            when: When::Every { minutes: 5 },
        };
        let t0 = 1_700_000_100; // a multiple of 300
        assert_eq!(s.due_between(t0 - 10, t0 + 5), Some(t0));
        assert_eq!(s.due_between(t0 + 5, t0 + 20), None);
        // A missed tick: only the latest due time, once.
        assert_eq!(s.due_between(t0 - 10, t0 + 900), Some(t0 + 900));
        let c = Schedule {
            when: parse_when("* * * * *").unwrap(),
            ..s.clone()
        };
        assert_eq!(c.due_between(t0 - 1, t0 + 1), Some(t0));
        assert_eq!(c.due_between(t0, t0 + 59), None);
        assert_eq!(c.next_after(t0), Some(t0 + 60));
    }

    #[test]
    fn block_replaces_only_itself() {
        let repo = Path::new("/r p");
        let (b, e) = markers(repo);
        let mut block = b.clone();
        block.extend_from_slice(b"\nX\n");
        block.extend_from_slice(&e);
        block.push(b'\n');
        let tab = b"A\n# other\nB".to_vec();
        let with = with_block(&tab, repo, &block);
        assert!(with.starts_with(b"A\n# other\nB\n"));
        let again = with_block(&with, repo, &block);
        assert_eq!(with, again);
        let mut sand = b"top\n".to_vec();
        sand.extend_from_slice(&block);
        sand.extend_from_slice(b"bottom\n");
        assert_eq!(
            without_block(&sand, repo).unwrap(),
            b"top\nbottom\n".to_vec()
        );
    }

    #[test]
    fn quoting_escapes_percent_and_quotes() {
        assert_eq!(sh_quote(b"a b'%c"), b"'a b'\\''\\%c'".to_vec());
    }
}

#[cfg(test)]
mod tick_tests {
    use super::*;

    fn sched(key: &str, when: When) -> Schedule {
        Schedule {
            key: key.into(),
            name: key.into(),
            task_type: "t".into(),
            when,
        }
    }

    #[test]
    fn overlapping_and_missed_ticks_fire_once_per_due_time() {
        let s = vec![
            sched("every", When::Every { minutes: 5 }),
            sched("cron", parse_when("*/10 * * * *").unwrap()),
        ];
        let t0 = 1_700_000_400; // a multiple of 600
        let mut book = Book::default();
        // First sight: the last minute is owed.
        assert_eq!(due(&mut book, &s, t0 + 3, None).len(), 2);
        // An overlapping tick a second later owes nothing.
        assert!(due(&mut book, &s, t0 + 4, None).is_empty());
        // A tick 2 h later (many missed due times): each fires once.
        assert_eq!(due(&mut book, &s, t0 + 7200 + 1, None).len(), 2);
        assert!(due(&mut book, &s, t0 + 7200 + 30, None).is_empty());
    }

    #[test]
    fn reboot_fires_once_per_boot() {
        let s = vec![sched("r", When::Reboot)];
        let mut book = Book {
            boot_time: Some(1000),
            ..Book::default()
        };
        assert!(due(&mut book, &s, 5000, Some(1000)).is_empty());
        assert_eq!(due(&mut book, &s, 9000, Some(8000)).len(), 1);
        assert!(due(&mut book, &s, 9060, Some(8000)).is_empty());
    }
}

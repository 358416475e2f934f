//! Wall-clock time as RFC 3339 strings and Unix seconds.

use chrono::{DateTime, Local, Utc};

/// Now as Unix seconds with a fraction.
pub fn now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_secs_f64()
}

/// Unix seconds to RFC 3339 (UTC, millisecond precision, trailing zeros of the fraction
/// dropped: `2026-11-30T02:57:48.49Z`, `...:48Z`), as results and logs have always had it.
pub fn rfc3339(ts: f64) -> String {
    let ms = if ts.is_finite() { (ts * 1e3) as i64 } else { 0 };
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH);
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// RFC 3339 to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map(|n| n as f64 / 1e9)
}

/// The local wall-clock time of day, `HH:MM:SS`.
pub fn clock() -> String {
    Local::now().format("%H:%M:%S").to_string()
}

/// A short human duration: 850ms, 12.3s, 4m05s, 2h10m.
pub fn human_duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0}ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_keeps_the_old_shape_and_round_trips() {
        assert_eq!(rfc3339(1796007468.49), "2026-11-30T02:57:48.49Z");
        assert_eq!(rfc3339(1796007468.487), "2026-11-30T02:57:48.487Z");
        assert_eq!(rfc3339(1796007468.0), "2026-11-30T02:57:48Z");
        assert_eq!(rfc3339(0.5), "1970-01-01T00:00:00.5Z");
        for ts in [0.0, 1.25, 1796007468.716, 2e9 + 0.001] {
            let back = parse_rfc3339(&rfc3339(ts)).unwrap();
            assert!((back - ts).abs() < 1e-3, "{ts} -> {back}");
        }
        assert_eq!(
            parse_rfc3339("2026-11-30T02:57:48.487Z"),
            Some(1796007468.487)
        );
        assert_eq!(parse_rfc3339("not a time"), None);
    }
}

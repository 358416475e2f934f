//! Wall-clock time as RFC 3339 strings and Unix seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now as Unix seconds with a fraction.
pub fn now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_secs_f64()
}

/// Unix seconds to RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ts: f64) -> String {
    let nanos = (ts * 1e9) as i128;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos - nanos % 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339).unwrap_or_default()
}

/// RFC 3339 to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
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

//! Analyzers: wrap the field's own tools and normalize their findings (issue 5).
//!
//! Contract with the engine: `bgrun analyze KIND --format json --output FILE` writes a
//! report whose top-level `findings` array holds objects with a `severity`; a custom
//! analyzer's stdout is turned into the same report by [`ingest`].

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

/// Turn a custom analyzer's stdout (`format`: `sarif` or `findings`) into a report.
pub fn ingest(format: &str, _stdout: &[u8], _repo: &Path) -> Result<Value> {
    Err(crate::error::not_yet(&format!(
        "ingesting {format} reports"
    )))
}

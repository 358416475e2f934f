//! What `bgrun enqueue` says of each request: the id it was queued under (or a JSON
//! object), a duplicate, or a task dropped because the queue is full.

use anyhow::Result;
use serde_json::json;

use super::print_json;
use crate::engine::Submitted;
use crate::output::Output;

/// One request's fate (`max_queue`: `execution.max_queue_size`, named when it was dropped).
pub fn submitted(out: &Output, s: &Submitted, max_queue: usize) -> Result<()> {
    match s {
        Submitted::Queued { id, dropped } => {
            if let Some(d) = dropped {
                // The victim is the queued task of the lowest base priority (the newest
                // among equals): `queue::overflow_victim`.
                eprintln!(
                    "bgrun: queue full: dropped task {} ({} {:?}, the lowest priority)",
                    d.id, d.task_type, d.name
                );
            }
            if out.json {
                let dropped = dropped.as_ref().map(|d| &d.id);
                print_json(&json!({"queued": true, "id": id, "dropped": dropped}))?;
            } else {
                println!("{id}");
            }
        }
        Submitted::Duplicate { id } => {
            if out.json {
                print_json(&json!({"queued": false, "duplicate_of": id}))?;
            } else {
                println!("{id}");
                eprintln!("bgrun: not added: the same task is already queued as {id}");
            }
        }
        Submitted::Dropped { result } => {
            if out.json {
                print_json(&json!({"queued": false, "dropped": true, "id": result.id}))?;
            } else {
                eprintln!(
                    "bgrun: dropped: the queue is full ({max_queue} tasks) of tasks with higher priority; recorded as {}",
                    result.id
                );
            }
        }
    }
    Ok(())
}

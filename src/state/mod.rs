//! Persisted state: the task model, the journal store and its lock, the process registry.

pub mod lock;
pub mod procs;
pub mod store;
pub mod task;

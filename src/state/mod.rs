//! Persisted state: the task model, the journal store and its lock, the process registry.

pub mod lock;
pub mod owner;
pub mod procs;
pub mod safe_fs;
pub mod stamp;
pub mod store;
pub mod task;

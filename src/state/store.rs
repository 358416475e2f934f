//! The old home of the journal, kept as re-exports: the journal now lives in
//! [`crate::store`] (its model in `store::journal`, its file I/O in `store::jsonl`) and the
//! file helpers in [`crate::fsutil`].

pub use crate::fsutil::{ensure_private_dir, write_atomic};
pub use crate::store::journal::*;
pub use crate::store::jsonl::{Cache, Handles, JOURNAL, JournalFile, adopt, reset};

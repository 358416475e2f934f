//! The process pool's parts: spawn a task in its own session with nice/ioprio, capture its
//! output to a capped log, watch its tree's memory and CPU, stop it TERM-then-KILL.

pub mod escape;
pub mod limits;
pub mod logs;
pub mod process;
pub mod scrub;

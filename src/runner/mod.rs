//! Processes: spawn a task in its own process group with nice/ioprio, capture its output to
//! a capped log, watch its tree's memory and CPU, stop it TERM-then-KILL (`process`,
//! `limits`, `logs`), start bgrun's own detached children (`detach`), and run a short-lived child with a
//! deadline, its output captured (`capture`: the analyzers' tools, the tool installer).

pub mod capture;
pub mod detach;
pub mod escape;
pub mod limits;
pub mod logs;
pub mod process;
pub mod scrub;
pub mod spawner;
pub mod workdir;

//! Link the `bgrun` executable at a fixed address (non-PIE) on Linux.
//!
//! A position-independent bgrun carries 14,000 relative relocations that the dynamic loader
//! applies at every start, writing 54 pages of `.data.rel.ro` and reading a 340 KB table:
//! 0.4 ms of CPU out of 1.6 ms for `bgrun --version` (`perf stat -r 300`, 266 page faults
//! against 212). Every git command with bgrun's hooks pays a start, so it is worth more than
//! ASLR of the executable's own code (shared libraries, heap and stack stay randomized).
//! Only the binaries are linked this way; the code itself is compiled as usual.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

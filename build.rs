//! Link the `bgrun` executable at a fixed address (non-PIE) on Linux.
//!
//! A position-independent bgrun carries 14,000 relative relocations that the dynamic loader
//! applies at every start, writing 54 pages of `.data.rel.ro` and reading a 340 KB table:
//! 0.4 ms of CPU out of 1.6 ms for `bgrun --version` (`perf stat -r 300`, 266 page faults
//! against 212). Every git command with bgrun's hooks pays a start, so it is worth more than
//! ASLR of the executable's own code (shared libraries, heap and stack stay randomized).
//! Only the binaries are linked this way; the code itself is compiled as usual.
//!
//! The shipped build (`scripts/shipped.toml`, used by `scripts/build-release` and
//! `scripts/install`) also links glibc statically (`-C target-feature=+crt-static -C
//! relocation-model=static`), where rustc itself asks for a non-PIE executable. A static
//! build asked for without `relocation-model=static` is a static-pie, and `-no-pie` on top
//! of that links an executable that crashes at start, so the flag is only added to dynamic
//! builds.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    if linux && !static_crt {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

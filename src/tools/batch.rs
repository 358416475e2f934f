//! Several tools at once, the work of `bgrun tools install|update|prune|which`: which tools
//! a project installs or updates, installing them or looking up their newest releases in
//! parallel (one thread per tool, each with its own lock and deadline), the pins an update
//! writes, which environments pruning keeps, and a lookup that installs nothing. What is
//! printed is the caller's.

use std::path::Path;
use std::time::Duration;

use super::{
    Cache, Ecosystem, Error, Installed, Located, Missing, Settings, Source, Spec, TABLE, spec,
};

/// One tool's install: the tool, the version asked for, the outcome.
pub type Install = (&'static Spec, String, Result<Installed, Error>);

/// The managed tools among `needed` (the tools a project's analyzers use).
pub fn managed_of(s: &Settings, needed: &[&str]) -> Vec<&'static Spec> {
    needed
        .iter()
        .filter_map(|n| spec(n))
        .filter(|sp| s.source_of(sp.name) == Source::Managed)
        .collect()
}

/// Install `specs` at their pinned versions, in parallel; `announce` is told first of each
/// one that is not installed yet (with its version). Outcomes in the order of `specs`.
pub fn install_all(
    c: &Cache,
    s: &Settings,
    specs: &[&'static Spec],
    announce: impl Fn(&Spec, &str),
) -> Vec<Install> {
    std::thread::scope(|sc| {
        let handles: Vec<_> = specs
            .iter()
            .map(|sp| {
                let version = s.version_of(sp);
                let timeout = s.install_timeout;
                if sp.ecosystem != Ecosystem::Rustup && c.installed(sp, &version).is_none() {
                    announce(sp, &version);
                }
                sc.spawn(move || {
                    let r = c.install(sp, &version, timeout);
                    (*sp, version, r)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// The tools to update: those of `needed`, then those `pinned` besides (rustup's excepted).
pub fn updatable(
    needed: Vec<&'static str>,
    pinned: impl Iterator<Item = impl AsRef<str>>,
) -> Vec<&'static Spec> {
    let mut names = needed;
    for k in pinned {
        if let Some(sp) = spec(k.as_ref())
            && !names.contains(&sp.name)
        {
            names.push(sp.name);
        }
    }
    names
        .into_iter()
        .filter_map(spec)
        .filter(|sp| sp.ecosystem != Ecosystem::Rustup)
        .collect()
}

/// One tool's newest release beside its pin.
pub struct Latest {
    pub spec: &'static Spec,
    /// The version pinned now.
    pub old: String,
    pub new: Result<String, Error>,
}

/// The newest release of each of `specs`, looked up in parallel (each within `timeout`).
pub fn latest_all(s: &Settings, specs: &[&'static Spec], timeout: Duration) -> Vec<Latest> {
    std::thread::scope(|sc| {
        let hs: Vec<_> = specs
            .iter()
            .map(|sp| sc.spawn(move || (*sp, super::latest_version(sp, timeout))))
            .collect();
        hs.into_iter()
            .filter_map(|h| h.join().ok())
            .collect::<Vec<_>>()
    })
    .into_iter()
    .map(|(spec, new)| Latest {
        spec,
        old: s.version_of(spec),
        new,
    })
    .collect()
}

/// The pins an update writes: each tool whose newest release was found, at it.
pub fn new_pins(latest: &[Latest]) -> Vec<(&str, &str)> {
    latest
        .iter()
        .filter_map(|l| Some((l.spec.name, l.new.as_ref().ok()?.as_str())))
        .collect()
}

/// Where `spec`'s tool is for the project in `repo`, installing nothing (`bgrun tools
/// which`); looked up `repeat` times (at least once: the cost of one lookup, for the bench).
pub fn which(s: Settings, spec: &Spec, repo: &Path, repeat: u32) -> Result<Located, Missing> {
    let s = Settings {
        install: false,
        ..s
    };
    let hint = format!("bgrun tools install {}", spec.name);
    let mut found = s.locate(spec.name, &[repo], &hint);
    for _ in 1..repeat {
        found = s.locate(spec.name, &[repo], &hint);
    }
    found
}

/// What pruning never removes: every tool at this project's pinned version.
pub fn kept(s: &Settings) -> Vec<(String, String)> {
    TABLE
        .iter()
        .map(|sp| (sp.name.to_string(), s.version_of(sp)))
        .collect()
}

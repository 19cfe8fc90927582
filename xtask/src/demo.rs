//! `cargo xtask demo`: builds and runs the demo driver (`tests/src/bin/demo.rs`, package `it`):
//! a seeded Japanese org in sf-sim, `callsync serve` on SQLite, OAuth connect, import, a morning
//! of call webhooks and a readable report. `--exit` ends after the report (for scripts).

use crate::util;
use anyhow::Result;

pub(crate) fn run(args: &[String]) -> Result<()> {
    util::step("cargo build (demo driver, callsync)", || {
        util::run(util::cargo().args([
            "build", "-p", "it", "--bin", "demo", "-p", "app", "--bin", "callsync",
        ]))?;
        Ok(((), String::new()))
    })?;
    let root = util::workspace_root();
    util::run(
        std::process::Command::new(root.join("target/debug/demo"))
            .args(args)
            .current_dir(&root),
    )
}

//! `cargo xtask soak`: builds the release `callsync` binary and the soak driver
//! (`tests/src/bin/soak.rs`, package `it`), starts a throwaway PostgreSQL for the two-instance
//! scenario, and runs the driver: 10,000 signed webhooks per scenario while `callsync serve` is
//! killed with SIGKILL and restarted (SQLite), with Salesforce faults switched on at random
//! (SQLite), and with two instances on one PostgreSQL database. The driver prints
//! `processed/lost/duplicates` per scenario and fails on any loss, duplicate, leftover queue
//! item or leaked secret. Extra arguments go to the driver (`--quick`, `--events N`,
//! `--kills N`, `--only crash|faults|pg`, `--dir DIR`); `--no-pg` skips PostgreSQL.

use crate::pg::PgServer;
use crate::util::{self, Apt};
use anyhow::Result;

pub(crate) fn run(args: &[String]) -> Result<()> {
    util::step("cargo build --release (callsync, soak driver)", || {
        util::run(util::cargo().args([
            "build",
            "--release",
            "-p",
            "app",
            "--bin",
            "callsync",
            "-p",
            "it",
            "--bin",
            "soak",
        ]))?;
        Ok(((), String::new()))
    })?;
    let no_pg = args.iter().any(|a| a == "--no-pg");
    let only_sqlite = args.windows(2).any(|w| w[0] == "--only" && w[1] != "pg");
    let mut apt = Apt::default();
    let pg = if no_pg || only_sqlite {
        None
    } else {
        match PgServer::start(&mut apt) {
            Ok(pg) => Some(pg),
            Err(e) if !util::is_ci() => {
                eprintln!(
                    "xtask soak: PostgreSQL not available ({e:#}); the two-instance scenario is skipped"
                );
                None
            }
            Err(e) => return Err(e),
        }
    };
    let root = util::workspace_root();
    let mut cmd = std::process::Command::new(root.join("target/release/soak"));
    cmd.args(args.iter().filter(|a| *a != "--no-pg"))
        .arg("--bin")
        .arg(root.join("target/release/callsync"))
        .current_dir(&root)
        .env_remove("CALLSYNC_TEST_PG_URL");
    if let Some(pg) = &pg {
        cmd.env("CALLSYNC_TEST_PG_URL", &pg.url);
    }
    let result = util::run(&mut cmd);
    if let Some(pg) = pg {
        pg.stop()?;
    }
    result
}

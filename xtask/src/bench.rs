//! `cargo xtask bench`: builds the release binaries, starts a throwaway PostgreSQL, and runs
//! the benchmark driver (`tests/src/bin/bench.rs`, package `it`), which prints one table and
//! writes `target/bench/report.json`. Extra arguments go to the driver (`--quick` for smaller
//! counts, `--only NAME`).

use crate::pg::PgServer;
use crate::util::{self, Apt};
use anyhow::Result;

pub(crate) fn run(args: &[String]) -> Result<()> {
    util::step(
        "cargo build --release (bench driver, callsync, sf-sim)",
        || {
            util::run(util::cargo().args(["build", "--release", "-p", "it", "--bin", "bench"]))?;
            Ok(((), String::new()))
        },
    )?;
    let mut apt = Apt::default();
    let pg = if args.iter().any(|a| a == "--no-pg") {
        None
    } else {
        match PgServer::start(&mut apt) {
            Ok(pg) => Some(pg),
            Err(e) if !util::is_ci() => {
                eprintln!(
                    "xtask bench: PostgreSQL not available ({e:#}); PostgreSQL rows are skipped"
                );
                None
            }
            Err(e) => return Err(e),
        }
    };
    let root = util::workspace_root();
    let exe = root.join("target/release/bench");
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(args.iter().filter(|a| *a != "--no-pg"))
        .current_dir(&root);
    if let Some(pg) = &pg {
        cmd.env("CALLSYNC_TEST_PG_URL", &pg.url);
    }
    let result = util::run(&mut cmd);
    if let Some(pg) = pg {
        pg.stop()?;
    }
    result
}

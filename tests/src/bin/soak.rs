//! The crash-soak driver (`cargo xtask soak`): runs the scenarios of `it::soak` against the
//! release `callsync` binary and prints `processed/lost/duplicates` for each; exits non-zero
//! when anything was lost, duplicated, left in the queue or leaked.
//!
//! ```text
//! soak [--quick] [--events N] [--kills N] [--only crash|faults|pg] [--bin PATH] [--dir DIR]
//! ```
//! PostgreSQL scenarios use `CALLSYNC_TEST_PG_URL` (skipped without it, unless CI is set).

use anyhow::{Context, Result, bail};
use it::soak::{Database, Options, run};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    quick: bool,
    events: Option<usize>,
    kills: Option<usize>,
    only: Option<String>,
    bin: PathBuf,
    dir: PathBuf,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        quick: false,
        events: None,
        kills: None,
        only: None,
        bin: PathBuf::from("target/release/callsync"),
        dir: std::env::temp_dir().join(format!("callsync-soak-{}", std::process::id())),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--events" => a.events = Some(value()?.parse()?),
            "--kills" => a.kills = Some(value()?.parse()?),
            "--only" => a.only = Some(value()?),
            "--bin" => a.bin = PathBuf::from(value()?),
            "--dir" => a.dir = PathBuf::from(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(soak(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn soak(args: Args) -> Result<bool> {
    let (events, kills) = if args.quick { (1_000, 3) } else { (10_000, 6) };
    let events = args.events.unwrap_or(events);
    let kills = args.kills.unwrap_or(kills);
    let wanted = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    let mut scenarios = Vec::new();
    if wanted("crash") {
        let mut o = Options::new("crash/sqlite", args.bin.clone(), args.dir.join("crash"));
        o.events = events;
        o.kills = kills;
        scenarios.push(o);
    }
    if wanted("faults") {
        let mut o = Options::new("faults/sqlite", args.bin.clone(), args.dir.join("faults"));
        o.events = events;
        o.kills = kills / 2;
        o.faults = true;
        o.seed = 7;
        scenarios.push(o);
    }
    if wanted("pg") {
        match it::pg_url() {
            Some(url) => {
                let mut o = Options::new(
                    "two-instances/postgres",
                    args.bin.clone(),
                    args.dir.join("pg"),
                );
                o.events = events;
                o.kills = kills;
                o.instances = 2;
                o.database = Database::Postgres(url);
                o.seed = 11;
                scenarios.push(o);
            }
            None => println!("[two-instances/postgres] skipped: CALLSYNC_TEST_PG_URL is not set"),
        }
    }
    let mut ok = true;
    let mut reports = Vec::new();
    for mut o in scenarios {
        o.drain_timeout = Duration::from_secs(if args.quick { 600 } else { 1_800 });
        let report = run(o).await?;
        println!("{report}");
        ok &= report.ok();
        reports.push(report);
    }
    println!(
        "\nsoak summary (logs, config and databases under {}):",
        args.dir.display()
    );
    for r in &reports {
        println!(
            "  {:<24} processed/lost/duplicates {}/{}/{}  kills {}  faults {}  leaks {}  {}",
            r.name,
            r.processed,
            r.lost,
            r.duplicates,
            r.kills,
            r.faults_switched,
            r.leaks.len(),
            if r.ok() { "OK" } else { "FAILED" }
        );
    }
    Ok(ok)
}

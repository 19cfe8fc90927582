//! The benchmark driver behind `cargo xtask bench`: measures callsync against its performance
//! goals, prints one table and writes `target/bench/report.json`. Benchmarks are not tests
//! (ENGINEERING.md practice 14): nothing here fails a build; a missed goal shows as `NO`.
//!
//! Flags: `--quick` (smaller counts, for a fast check), `--only <substring>` (run the
//! measurement groups whose name or description contains it; repeatable). Hidden
//! subcommands re-execute this binary as the simulator host (`sim-host`) and as the
//! importing process (`import-child`) for the end-to-end import, so that its peak RSS is
//! the importer's own. What each row measures: `docs/performance.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../bench/calls.rs"]
mod calls;
#[path = "../bench/import.rs"]
mod import;
#[path = "../bench/intake.rs"]
mod intake;
#[path = "../bench/report.rs"]
mod report;
#[path = "../bench/store.rs"]
mod store;
#[path = "../bench/util.rs"]
mod util;

use it::Db;
use report::Row;
use std::time::Instant;

struct Plan {
    quick: bool,
    only: Vec<String>,
}

impl Plan {
    fn wants(&self, group: &str, about: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| group.contains(o.as_str()) || about.contains(o.as_str()))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("sim-host") => return rt.block_on(import::sim_host(&args[1..])),
        Some("import-child") => return rt.block_on(import::import_child(&args[1..])),
        _ => {}
    }
    let mut plan = Plan {
        quick: false,
        only: vec![],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => plan.quick = true,
            "--only" => plan.only.push(
                it.next()
                    .ok_or_else(|| anyhow::anyhow!("--only needs a value"))?
                    .clone(),
            ),
            "-h" | "--help" => {
                println!("usage: bench [--quick] [--only SUBSTRING]...");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let load_start = report::loadavg();
    let rows = rt.block_on(run(&plan))?;
    let table = report::table(&rows);
    println!("\n{table}");
    let machine = report::Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        uptime: report::uptime(),
        load_start,
        load_end: report::loadavg(),
        date: chrono::Utc::now().to_rfc3339(),
        args,
    };
    println!(
        "{} cores; load at start {}, at end {}",
        machine.cores, machine.load_start, machine.load_end
    );
    let path = std::path::Path::new("target/bench/report.json");
    report::write_json(path, &machine, &rows)?;
    println!("wrote {}", path.display());
    Ok(())
}

type Group = (&'static str, &'static str);

const GROUPS: [Group; 6] = [
    ("seed", "sf-sim seeding"),
    (
        "store",
        "store import and caller-ID lookup, SQLite and PostgreSQL",
    ),
    (
        "e2e",
        "end-to-end import: sync over the Salesforce client into SQLite",
    ),
    ("requests", "Salesforce requests per call event"),
    ("intake", "webhook intake throughput and latency"),
    ("latency", "call-end to Task latency at 100 events/s"),
];

async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let q = plan.quick;
    let mut rows: Vec<Row> = vec![];
    let selected: Vec<&Group> = GROUPS.iter().filter(|(g, a)| plan.wants(g, a)).collect();
    let on = |g: &str| selected.iter().any(|(name, _)| *name == g);
    let mut step = 0;
    let mut progress = |what: &str| {
        step += 1;
        println!("[{step}] {what}");
        Instant::now()
    };

    if on("seed") {
        let n = if q { 100_000 } else { 1_000_000 };
        let began = progress(&format!("sf-sim: seed_japanese({n})"));
        let sim = sf_sim::SfSim::start().await?;
        let org = sim.add_org(sf_sim::OrgSpec::default());
        let summary = org.seed_japanese(n, 42);
        let secs = began.elapsed().as_secs_f64();
        let goal = 30.0 * n as f64 / 1e6;
        rows.push(
            Row::new(
                format!("sf-sim seed {} records", store::human(n as u64)),
                secs,
                "s",
            )
            .below(goal, false, format!("< {goal:.0} s"))
            .note(format!(
                "{} Leads, {} Contacts, {} Accounts, {} Tasks{}",
                summary.leads,
                summary.contacts,
                summary.accounts,
                summary.tasks,
                if q {
                    "; goal scaled from 30 s per 1M"
                } else {
                    ""
                }
            )),
        );
        sim.shutdown().await;
        println!("  {secs:.1} s");
    }

    if on("store") {
        let n: u64 = if q { 100_000 } else { 1_000_000 };
        let goal = 10.0 * n as f64 / 1e6;
        progress(&format!(
            "store: import {n} customers + 10,000 lookups (SQLite)"
        ));
        rows.extend(store::run(Db::Sqlite, n, Some(goal)).await?);
        progress(&format!(
            "store: import {n} customers + 10,000 lookups (PostgreSQL)"
        ));
        rows.extend(store::run(Db::Postgres, n, None).await?);
    }

    if on("e2e") {
        let sizes: &[u64] = if q {
            &[20_000, 100_000]
        } else {
            &[100_000, 1_000_000]
        };
        for &n in sizes {
            progress(&format!(
                "e2e import of {n} records (sim and importer in child processes)"
            ));
            // The goals are for 1M; a run far beyond them is stopped rather than waited for.
            let cap = std::time::Duration::from_secs(if q { 300 } else { 900 });
            rows.extend(import::run(n, n == 1_000_000, cap).await?);
        }
    }

    if on("requests") {
        progress("requests per call event: isolated, bursts, baseline");
        rows.extend(calls::run(if q { 2_000 } else { 10_000 }).await?);
    }

    if on("intake") {
        let n = if q { 1_000 } else { 5_000 };
        progress(&format!("webhook intake: {n} signed POSTs, 16 senders"));
        rows.extend(intake::throughput(n).await?);
    }

    if on("latency") {
        progress("call-end → Task latency at 100 events/s, 2 workers (SQLite)");
        rows.extend(intake::latency(if q { 3 } else { 10 }).await?);
    }
    Ok(rows)
}

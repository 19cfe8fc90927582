//! Row 5: Salesforce requests per call event, counted by the simulator
//! (`Org::api_requests_used` deltas): isolated calls, a burst drained by the default worker,
//! the same burst with batch size 1 (the baseline: one request per Task insert), and a mixed
//! burst where some numbers are unknown and need a search.

use super::report::Row;
use super::util::{call_ended, mobile};
use chrono::Utc;
use domain::IntegrationSettings;
use domain::ports::{EventLog, RawPayload, SyncKind};
use event_ingest::worker::{StepReport, Worker};
use it::{Db, World};
use std::time::Instant;
use store_adapter::CustomerFilter;

/// Steps until a step claims nothing (no cap: the batch-1 baseline takes one step per event).
async fn drain(worker: &Worker) -> anyhow::Result<StepReport> {
    let mut total = StepReport::default();
    loop {
        let r = worker.step().await?;
        if r.claimed == 0 {
            return Ok(total);
        }
        total.claimed += r.claimed;
        total.done += r.done;
        total.retried += r.retried;
        total.dead += r.dead;
        total.held += r.held;
    }
}

struct Calls {
    world: World,
    known: Vec<String>,
    next_call: u64,
}

impl Calls {
    async fn post(&mut self, number: &str) -> anyhow::Result<()> {
        self.next_call += 1;
        let body = call_ended(&format!("b{}", self.next_call), number);
        let event = event_ingest::parse_form(body.as_bytes())
            .map_err(|e| anyhow::anyhow!("bad webhook body: {e:?}"))?;
        let raw = RawPayload {
            content_type: "application/x-www-form-urlencoded".into(),
            body: body.into_bytes(),
            request_id: None,
        };
        self.world
            .store
            .accept(&self.world.t, &raw, &event, Utc::now())
            .await?;
        Ok(())
    }

    fn used(&self) -> u64 {
        self.world.org.api_requests_used()
    }

    /// Posts `n` events (every `unknown_every`-th from a number nobody has), drains them
    /// with a worker of `batch`, and returns (requests per event, tasks created, seconds).
    async fn burst(
        &mut self,
        n: usize,
        batch: u32,
        unknown_every: Option<usize>,
    ) -> anyhow::Result<(f64, usize, f64, StepReport)> {
        for i in 0..n {
            let number = match unknown_every {
                Some(k) if i % k == 0 => mobile(80_000_000 + self.next_call, i as u64),
                _ => self.known[i % self.known.len()].clone(),
            };
            self.post(&number).await?;
        }
        let worker = self.world.worker(&format!("burst-{batch}"), batch, None);
        let tasks = self.world.org.count("Task");
        let before = self.used();
        let began = Instant::now();
        let report = drain(&worker).await?;
        let secs = began.elapsed().as_secs_f64();
        let per = (self.used() - before) as f64 / n as f64;
        Ok((per, self.world.org.count("Task") - tasks, secs, report))
    }
}

/// A SQLite world whose customer book holds the imported records of an org seeded with
/// `records`, with an API allowance that never throttles; returns linked numbers in use.
pub(crate) async fn linked_world(records: usize) -> anyhow::Result<(World, Vec<String>)> {
    let world = World::on(Db::Sqlite)
        .await
        .ok_or_else(|| anyhow::anyhow!("no SQLite world"))?;
    world.org.set_daily_api_limit(1_000_000_000);
    world.org.seed_japanese(records, 11);
    world
        .settings(IntegrationSettings {
            import_window_days: 3650,
            ..Default::default()
        })
        .await;
    world
        .sync()
        .run(&world.t, SyncKind::Initial, &|_| {})
        .await?;
    let filter = CustomerFilter {
        linked: Some(true),
        limit: 2_000,
        ..Default::default()
    };
    let known: Vec<String> = world
        .store
        .customers(&world.t, &filter)
        .await?
        .into_iter()
        .map(|c| c.number.display())
        .collect();
    anyhow::ensure!(!known.is_empty(), "the import linked no customers");
    println!("  customer book: {} linked numbers in use", known.len());
    Ok((world, known))
}

pub(crate) async fn run(burst: usize) -> anyhow::Result<Vec<Row>> {
    let (world, known) = linked_world(3_000).await?;
    let mut c = Calls {
        world,
        known,
        next_call: 0,
    };
    let mut rows = vec![];

    // (a) isolated: one call at a time, one worker step each.
    let isolated = 200;
    let worker = c.world.worker("isolated", 1, None);
    let tasks = c.world.org.count("Task");
    let before = c.used();
    let began = Instant::now();
    for i in 0..isolated {
        let number = c.known[i % c.known.len()].clone();
        c.post(&number).await?;
        worker.step().await?;
    }
    let per = (c.used() - before) as f64 / isolated as f64;
    let created = c.world.org.count("Task") - tasks;
    rows.push(
        Row::new(
            "SF requests/event, isolated (200 calls, 1 step each)",
            per,
            "req/event",
        )
        .goal("report (1 insert per call)")
        .note(format!(
            "{created} Tasks created; {:.1} ms per call (post + step)",
            began.elapsed().as_secs_f64() * 1e3 / isolated as f64
        )),
    );
    println!("  isolated: {per:.3} req/event");

    // (b) burst, default worker (batch 200), against the batch-1 baseline.
    let (per, created, secs, _) = c.burst(burst, 200, None).await?;
    println!("  burst (batch 200): {per:.4} req/event, {created} Tasks, {secs:.1} s");
    let (base, base_created, base_secs, _) = c.burst(burst, 1, None).await?;
    println!("  baseline (batch 1): {base:.4} req/event, {base_created} Tasks, {base_secs:.1} s");
    rows.push(
        Row::new(
            format!("SF requests/event, burst {burst} (batch 200)"),
            per,
            "req/event",
        )
        .below(0.05, true, "≤ 0.05")
        .note(format!(
            "{created} Tasks; drained in {secs:.1} s ({:.0} events/s); {:.0}x fewer than the baseline",
            burst as f64 / secs,
            base / per.max(f64::MIN_POSITIVE)
        )),
    );
    rows.push(
        Row::new(
            format!("SF requests/event, burst {burst}, baseline batch 1"),
            base,
            "req/event",
        )
        .goal("baseline")
        .note(format!(
            "{base_created} Tasks; drained in {base_secs:.1} s ({:.0} events/s)",
            burst as f64 / base_secs
        )),
    );

    // Mixed: every 10th number is unknown (a search each; no match, so no Task).
    let (per, created, secs, report) = c.burst(burst, 200, Some(10)).await?;
    println!("  mixed burst: {per:.4} req/event, {created} Tasks, {secs:.1} s");
    let inserts = burst.div_ceil(200) as f64;
    let per_unknown = (per * burst as f64 - inserts) / (burst as f64 / 10.0);
    rows.push(
        Row::new(
            format!("SF requests/event, mixed burst {burst} (10% unknown)"),
            per,
            "req/event",
        )
        .goal("report")
        .note(format!(
            "{created} Tasks, {} items done, {} retried; drained in {secs:.1} s; \
             ≈ {per_unknown:.1} requests per unknown number (a miss tries every search term)",
            report.done, report.retried
        )),
    );
    Ok(rows)
}

//! Scale-out: two instances (each its own store connection pool and Salesforce client, as two
//! processes would have) on ONE database. Every event is processed once, every call has exactly
//! one Task (R25), a killed instance's batch is finished by the other once its lease expires,
//! and a tenant's customer sync runs once at a time across instances.
//!
//! PostgreSQL (the multi-instance deployment) and SQLite (two connections to one file). The
//! PostgreSQL variants skip only when `CALLSYNC_TEST_PG_URL` is unset outside CI ([`it::pg_url`]).

use crate::post;
use chrono::{Duration as ChronoDuration, Utc};
use domain::ports::{
    CallTaskStore, QueueDepth, SyncKind, SyncRunStore, SystemClock, WorkItem, WorkQueue,
};
use domain::usecases::call_logging::{
    CallLogger, CallLoggingOptions, CallLoggingPorts, FailPoint, FailPoints, NoFailPoints,
};
use domain::usecases::sync::{CustomerSync, SyncError, SyncOptions};
use domain::{CallId, IntegrationSettings, TenantId};
use event_ingest::worker::{StepReport, Worker, WorkerConfig};
use it::{Db, World, drain, install_crypto, pg_url};
use secrecy::SecretString;
use serde_json::json;
use sf_adapter::{SalesforceClient, SfConfig};
use sf_sim::{OrgSpec, SfSim, SimUser};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use store_adapter::{Keyring, Store};
use tokio::sync::Notify;

fn keys() -> Keyring {
    Keyring::new(("k1", &[7u8; 32]), &[]).unwrap()
}

/// A fresh, empty database's URL (`None`: PostgreSQL not configured, outside CI).
async fn fresh_url(db: Db) -> Option<String> {
    let name = format!("it_scale_{}", uuid::Uuid::new_v4().simple());
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join("callsync-it");
            std::fs::create_dir_all(&dir).unwrap();
            Some(format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{name}.sqlite")).display()
            ))
        }
        Db::Postgres => Some(
            Store::create_postgres_database(&pg_url()?, &name)
                .await
                .unwrap(),
        ),
    }
}

fn sf_client(sim: &SfSim, store: &Store) -> SalesforceClient {
    let (client_id, secret) = sim.client_credentials();
    let mut cfg = SfConfig::new(
        client_id,
        SecretString::from(secret),
        "http://127.0.0.1:1/oauth/callback",
    );
    cfg.login_url = sim.login_url();
    cfg.backoff_base = Duration::from_millis(1);
    cfg.timeout = Duration::from_secs(10);
    SalesforceClient::new(cfg, Arc::new(store.clone())).unwrap()
}

/// [`World::on`], on a database given by URL.
async fn world_on(url: &str) -> World {
    install_crypto();
    let store = Store::connect(url, keys()).await.unwrap();
    store.migrate().await.unwrap();
    let sim = SfSim::start().await.unwrap();
    let org = sim.add_org(OrgSpec {
        name: "株式会社スケール".into(),
        users: vec![SimUser::new("admin@sample.example.jp", "太郎", "管理")],
        ..Default::default()
    });
    let t = TenantId::parse("acme").unwrap();
    store.create_tenant(&t, "Acme", Utc::now()).await.unwrap();
    let sf = sf_client(&sim, &store);
    let secret = store.rotate_webhook_secret(&t).await.unwrap();
    let w = World {
        sim,
        org,
        store,
        sf,
        t,
        wake: Arc::new(Notify::new()),
        secret,
    };
    w.connect().await;
    w.settings(IntegrationSettings::default()).await;
    w
}

/// One instance of callsync: its own connection pool and Salesforce client.
struct Instance {
    store: Store,
    sf: SalesforceClient,
}

impl Instance {
    async fn connect(w: &World, url: &str) -> Instance {
        let store = Store::connect(url, keys()).await.unwrap();
        let sf = sf_client(&w.sim, &store);
        Instance { store, sf }
    }

    fn worker(&self, name: &str, batch: u32, fail: Arc<dyn FailPoints>) -> Arc<Worker> {
        let store = Arc::new(self.store.clone());
        let sf = Arc::new(self.sf.clone());
        let logger = CallLogger::new(
            CallLoggingPorts {
                sf_read: sf.clone(),
                sf_write: sf.clone(),
                usage: sf,
                customers: store.clone(),
                events: store.clone(),
                tasks: store.clone(),
                directory: store.clone(),
                settings: store.clone(),
                credentials: store.clone(),
                locks: store.clone(),
                clock: Arc::new(SystemClock),
            },
            CallLoggingOptions {
                holder: name.to_owned(),
                ..Default::default()
            },
            fail,
        );
        Arc::new(Worker::new(
            store.clone(),
            store,
            Arc::new(logger),
            WorkerConfig {
                name: name.to_owned(),
                batch_size: batch,
                ..Default::default()
            },
            Arc::new(Notify::new()),
        ))
    }

    fn sync(&self, holder: &str) -> CustomerSync {
        it::sync_over(
            &self.store,
            &self.sf,
            Arc::new(SystemClock),
            SyncOptions {
                holder: holder.to_owned(),
                ..Default::default()
            },
        )
    }
}

const CUSTOMERS: usize = 40;

fn number(i: usize) -> String {
    format!("03-6000-{:04}", i % CUSTOMERS)
}

/// Imports [`CUSTOMERS`] Contacts and posts `calls` calls with two events each (call ended,
/// then memo saved): `2 × calls` queue items.
async fn load(w: &World, calls: usize) {
    for i in 0..CUSTOMERS {
        w.org.insert(
            "Contact",
            json!({"LastName": format!("顧客{i}"), "Phone": number(i)}),
        );
    }
    w.sync()
        .run(&w.t, SyncKind::Initial, &|_| {})
        .await
        .unwrap();
    for c in 0..calls {
        let id = format!("sc-{c}");
        let n = number(c);
        let ended = crate::answered(&id, &n);
        assert_eq!(post(w, &ended).await.0, 202);
        let memo = vec![
            ("event", "memo_saved".to_owned()),
            ("contact[number]", n.clone()),
            ("record[id]", id.clone()),
            ("record[memo]", format!("メモ {c}")),
        ];
        assert_eq!(post(w, &memo).await.0, 202);
    }
}

/// Steps `worker` while there is work it can claim (bounded). Claims slightly ahead of the
/// clock so that short waits (another worker holds the call's lock: 2 s) do not stall the
/// loop, but far less than the lease, so a live worker's items are never taken. Returns when
/// nothing is ready or waiting (items leased by the other instance are its business), after
/// 100 idle rounds, or when a step crashed (the instance "died").
async fn run_until_empty(worker: Arc<Worker>, store: Store, t: TenantId) -> StepReport {
    let mut total = StepReport::default();
    let mut idle = 0;
    for _ in 0..5_000 {
        let r = worker
            .step_at(Utc::now() + ChronoDuration::seconds(5))
            .await
            .unwrap();
        add(&mut total, &r);
        if r.crashed > 0 {
            return total;
        }
        if r.claimed > 0 {
            idle = 0;
            continue;
        }
        let d = store.depth(&t).await.unwrap();
        idle += 1;
        if d.ready + d.waiting == 0 || idle >= 100 {
            return total;
        }
        tokio::task::yield_now().await;
    }
    panic!("the queue never drained: {total:?}");
}

fn add(total: &mut StepReport, r: &StepReport) {
    total.claimed += r.claimed;
    total.done += r.done;
    total.retried += r.retried;
    total.held += r.held;
    total.dead += r.dead;
    total.crashed += r.crashed;
}

/// Every call has exactly one Task, every event an outcome, the queue is empty.
async fn assert_exactly_once(w: &World, calls: usize) {
    let mut per_call: HashMap<String, usize> = HashMap::new();
    for t in w.tasks() {
        *per_call
            .entry(t["CallObject"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let dupes: Vec<_> = per_call.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "R25: duplicated Tasks {dupes:?}");
    assert_eq!(per_call.len(), calls, "every call has its Task");
    for c in 0..calls {
        let id = CallId::parse(&format!("sc-{c}")).unwrap();
        let task = w.store.call_task(&w.t, &id).await.unwrap();
        let task = task.unwrap_or_else(|| panic!("sc-{c} has no recorded Task"));
        assert!(
            task.description.contains(&format!("メモ {c}")),
            "the memo reached the Task of sc-{c}"
        );
    }
    assert_eq!(
        w.store.depth(&w.t).await.unwrap(),
        QueueDepth::default(),
        "nothing pending, held or dead"
    );
}

/// A fresh database with `calls` calls queued, and two instances on it; `None` (skipped)
/// without PostgreSQL.
async fn two_instances_with_calls(db: Db, calls: usize) -> Option<(World, Instance, Instance)> {
    let Some(url) = fresh_url(db).await else {
        eprintln!("skipped: no PostgreSQL (set CALLSYNC_TEST_PG_URL)");
        return None;
    };
    let w = world_on(&url).await;
    load(&w, calls).await;
    let (a, b) = (
        Instance::connect(&w, &url).await,
        Instance::connect(&w, &url).await,
    );
    Some((w, a, b))
}

async fn two_workers_split_the_queue(db: Db, calls: usize) {
    let Some((w, a, b)) = two_instances_with_calls(db, calls).await else {
        return;
    };
    let (wa, wb) = (
        a.worker("inst-a", 50, Arc::new(NoFailPoints)),
        b.worker("inst-b", 50, Arc::new(NoFailPoints)),
    );
    let ja = tokio::spawn(run_until_empty(wa.clone(), a.store.clone(), w.t.clone()));
    let jb = tokio::spawn(run_until_empty(wb, b.store.clone(), w.t.clone()));
    let (mut ra, rb) = (ja.await.unwrap(), jb.await.unwrap());
    // Both stopped: whatever is left (a retry scheduled further out) is mopped up.
    add(&mut ra, &drain(&wa).await);
    assert!(
        ra.done > 0 && rb.done > 0,
        "both instances worked: {ra:?} {rb:?}"
    );
    assert_eq!(
        ra.done + rb.done,
        2 * calls,
        "each event processed exactly once: {ra:?} {rb:?}"
    );
    assert_eq!(ra.dead + rb.dead + ra.held + rb.held, 0);
    assert_exactly_once(&w, calls).await;
}

/// Once `after` items have been claimed, every later item crashes after its Salesforce call
/// (the write is out, nothing recorded) — the process dies mid-batch.
struct DieMidRun {
    after: usize,
    seen: AtomicUsize,
    dead: AtomicBool,
}

impl FailPoints for DieMidRun {
    fn crash(&self, point: FailPoint, _: &WorkItem) -> bool {
        match point {
            FailPoint::AfterClaim => {
                if self.seen.fetch_add(1, Ordering::SeqCst) >= self.after {
                    self.dead.store(true, Ordering::SeqCst);
                }
                false
            }
            FailPoint::AfterSalesforceCall => self.dead.load(Ordering::SeqCst),
            FailPoint::BeforeCommit => false,
        }
    }
}

async fn killed_instance_is_taken_over(db: Db, calls: usize) {
    let Some((w, a, b)) = two_instances_with_calls(db, calls).await else {
        return;
    };
    let die = Arc::new(DieMidRun {
        after: calls / 2,
        seen: AtomicUsize::new(0),
        dead: AtomicBool::new(false),
    });
    let wa = a.worker("inst-a", 50, Arc::new(NoFailPoints));
    let wb = b.worker("inst-b", 50, die.clone());
    let ja = tokio::spawn(run_until_empty(wa.clone(), a.store.clone(), w.t.clone()));
    let jb = tokio::spawn(run_until_empty(wb, b.store.clone(), w.t.clone()));
    let rb = jb.await.unwrap();
    // B is dead: it never steps again. A works on; B's leased items wait for their lease.
    let mut ra = ja.await.unwrap();
    assert!(
        rb.crashed > 0,
        "instance B never died (A took everything first): {ra:?} {rb:?}"
    );
    // The takeover: A claims with a `now` past B's lease (120 s), as it would two minutes on.
    let leased = w.store.depth(&w.t).await.unwrap().leased;
    assert!(leased > 0, "B died holding leases");
    add(&mut ra, &drain(&wa).await);
    assert_eq!(
        ra.done + rb.done,
        2 * calls,
        "every event done once; B's crashed ones by A: {ra:?} {rb:?}"
    );
    assert_exactly_once(&w, calls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r25_two_instances_on_postgres_process_each_event_once() {
    two_workers_split_the_queue(Db::Postgres, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r25_two_instances_on_one_sqlite_file_process_each_event_once() {
    two_workers_split_the_queue(Db::Sqlite, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r25_killed_instance_on_postgres_is_finished_by_the_other() {
    killed_instance_is_taken_over(Db::Postgres, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r25_killed_instance_on_sqlite_is_finished_by_the_other() {
    killed_instance_is_taken_over(Db::Sqlite, 500).await;
}

async fn one_sync_per_tenant(db: Db) {
    let Some(url) = fresh_url(db).await else {
        eprintln!("skipped: no PostgreSQL (set CALLSYNC_TEST_PG_URL)");
        return;
    };
    let w = world_on(&url).await;
    for i in 0..CUSTOMERS {
        w.org.insert(
            "Contact",
            json!({"LastName": format!("同期{i}"), "Phone": number(i)}),
        );
    }
    let (a, b) = (
        Instance::connect(&w, &url).await,
        Instance::connect(&w, &url).await,
    );
    // Each request takes a while, so the first run is surely still going when the second
    // asks for the lease.
    w.org
        .set_fault(sf_sim::Fault::Latency(Duration::from_millis(150)));
    let (sa, sb) = (a.sync("sync-inst-a"), b.sync("sync-inst-b"));
    let (ra, rb) = tokio::join!(
        sa.run(&w.t, SyncKind::Initial, &|_| {}),
        sb.run(&w.t, SyncKind::Initial, &|_| {})
    );
    let (ok, refused) = match (ra, rb) {
        (Ok(o), Err(e)) | (Err(e), Ok(o)) => (o, e),
        other => panic!("expected one run and one AlreadyRunning, got {other:?}"),
    };
    assert_eq!(refused, SyncError::AlreadyRunning);
    assert_eq!(ok.report.created, CUSTOMERS as u64);
    let runs = w.store.runs(&w.t, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "one run recorded: {runs:?}");
    // The lease is released: the next run (either instance) may start.
    w.org.clear_faults();
    sb.run(&w.t, SyncKind::Incremental, &|_| {}).await.unwrap();
    assert_eq!(w.store.runs(&w.t, 10).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r16_one_sync_per_tenant_across_two_instances_on_postgres() {
    one_sync_per_tenant(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r16_one_sync_per_tenant_across_two_instances_on_sqlite() {
    one_sync_per_tenant(Db::Sqlite).await;
}

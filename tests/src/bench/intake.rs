//! Rows 6 and 7: the webhook intake (`POST /webhooks/{tenant}/calls`, signed and
//! form-encoded as the phone system sends it) served by `event_ingest::webhook_router` on
//! 127.0.0.1:0, and the latency from a call-end webhook's response to its Task's insert with
//! two workers running.

use super::calls::linked_world;
use super::report::Row;
use super::util::{call_ended, mobile, ms, percentile};
use async_trait::async_trait;
use chrono::Utc;
use domain::fakes::InMemoryStore;
use domain::ports::{
    EventLog, NewRecord, RecordUpdate, SalesforceWriter, SystemClock, TaskDraft, TaskPatch,
};
use domain::usecases::call_logging::{CallLogger, CallLoggingOptions, NoFailPoints};
use domain::{SalesforceId, SfError, StoreError, TenantId};
use event_ingest::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use event_ingest::worker::{Worker, WorkerConfig};
use event_ingest::{IntakeState, TenantSecrets, webhook_router};
use it::Db;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store_adapter::Store;

const SENDERS: usize = 16;

/// The tenant's webhook secret from the store, as `app` would serve it.
struct StoreSecrets(Store);

#[async_trait]
impl TenantSecrets for StoreSecrets {
    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError> {
        match self.0.webhook_secret(t).await {
            Ok(s) => Ok(Some(s.into_iter().collect())),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One fixed secret (for the in-memory baseline).
struct FixedSecret(SecretString);

#[async_trait]
impl TenantSecrets for FixedSecret {
    async fn webhook_secrets(&self, _: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError> {
        Ok(Some(vec![self.0.clone()]))
    }
}

/// Serves the intake on 127.0.0.1:0; returns the tenant's webhook URL.
async fn serve(state: IntakeState, t: &TenantId) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, webhook_router(state)).await;
    });
    Ok(format!("http://{addr}/webhooks/{t}/calls"))
}

fn client() -> anyhow::Result<reqwest::Client> {
    it::install_crypto();
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(SENDERS)
        .build()?)
}

/// Posts one signed call-end webhook; `Ok(status)`.
async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &SecretString,
    call_id: &str,
    number: &str,
) -> anyhow::Result<u16> {
    let body = call_ended(call_id, number);
    let ts = Utc::now().timestamp();
    let sig = sign(secret, ts, body.as_bytes());
    let r = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await?;
    Ok(r.status().as_u16())
}

struct Blast {
    events_per_sec: f64,
    p50: Duration,
    p99: Duration,
    failed: usize,
}

/// `n` POSTs from 16 concurrent senders; each call id is new, numbers repeat.
async fn blast(url: &str, secret: &SecretString, n: usize, tag: &str) -> anyhow::Result<Blast> {
    let client = client()?;
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let mut tasks = vec![];
    for _ in 0..SENDERS {
        let (client, next, url, secret, tag) = (
            client.clone(),
            next.clone(),
            url.to_owned(),
            secret.clone(),
            tag.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return (lat, failed);
                }
                let number = mobile((i % 20_000) as u64, i as u64);
                let t0 = Instant::now();
                match post(&client, &url, &secret, &format!("{tag}{i}"), &number).await {
                    Ok(202) => lat.push(t0.elapsed()),
                    _ => failed += 1,
                }
            }
        }));
    }
    let mut lat = vec![];
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await?;
        lat.extend(l);
        failed += f;
    }
    let secs = began.elapsed().as_secs_f64();
    lat.sort();
    Ok(Blast {
        events_per_sec: lat.len() as f64 / secs,
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        failed,
    })
}

fn intake_row(name: &str, b: &Blast, n: usize, baseline: Option<f64>) -> Row {
    let row = Row::new(
        format!("webhook intake, {SENDERS} senders ({name})"),
        b.events_per_sec,
        "events/s",
    );
    let versus = baseline
        .map(|base| {
            format!(
                "; {:.0}% of the in-memory baseline",
                100.0 * b.events_per_sec / base
            )
        })
        .unwrap_or_default();
    let row = if baseline.is_some() {
        row.goal("report (no goal); vs baseline")
    } else {
        row.goal("baseline")
    };
    row.note(format!(
        "p50 {:.1} ms, p99 {:.1} ms; {n} POSTs, {} not 202{versus}",
        ms(b.p50),
        ms(b.p99),
        b.failed
    ))
}

pub(crate) async fn throughput(n: usize) -> anyhow::Result<Vec<Row>> {
    let t = TenantId::parse("acme")?;
    let mut rows = vec![];

    let secret = SecretString::from("bench-secret-0123456789abcdef".to_owned());
    let memory: Arc<dyn EventLog> = Arc::new(InMemoryStore::new());
    let state = IntakeState::new(
        memory,
        Arc::new(FixedSecret(secret.clone())),
        Arc::new(SystemClock),
    );
    let url = serve(state, &t).await?;
    let base = blast(&url, &secret, n, "m").await?;
    println!(
        "  in-memory: {:.0} events/s, p99 {:.1} ms",
        base.events_per_sec,
        ms(base.p99)
    );
    rows.push(intake_row("in-memory EventLog", &base, n, None));

    for (db, name) in [(Db::Sqlite, "SQLite"), (Db::Postgres, "PostgreSQL")] {
        let Some(store) = it::fresh_store(db).await else {
            println!("  {name}: no server (CALLSYNC_TEST_PG_URL unset), skipped");
            continue;
        };
        store.create_tenant(&t, "Acme", Utc::now()).await?;
        let secret = store.rotate_webhook_secret(&t).await?;
        let state = IntakeState::new(
            Arc::new(store.clone()),
            Arc::new(StoreSecrets(store.clone())),
            Arc::new(SystemClock),
        );
        let url = serve(state, &t).await?;
        let b = blast(&url, &secret, n, "s").await?;
        println!(
            "  {name}: {:.0} events/s, p99 {:.1} ms",
            b.events_per_sec,
            ms(b.p99)
        );
        rows.push(intake_row(name, &b, n, Some(base.events_per_sec)));
        let _ = store.close().await;
    }
    Ok(rows)
}

/// Wraps the Salesforce client's writer: notes when each Task's insert returned.
struct TimedWriter {
    inner: Arc<dyn SalesforceWriter>,
    done: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl SalesforceWriter for TimedWriter {
    async fn create_tasks(
        &self,
        t: &TenantId,
        tasks: &[TaskDraft],
    ) -> Result<Vec<Result<SalesforceId, SfError>>, SfError> {
        let r = self.inner.create_tasks(t, tasks).await;
        let now = Instant::now();
        if let Ok(results) = &r {
            let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
            for (task, result) in tasks.iter().zip(results) {
                if result.is_ok() {
                    done.entry(task.call_object.clone()).or_insert(now);
                }
            }
        }
        r
    }
    async fn update_task(
        &self,
        t: &TenantId,
        id: &SalesforceId,
        patch: &TaskPatch,
    ) -> Result<(), SfError> {
        self.inner.update_task(t, id, patch).await
    }
    async fn find_task_by_call_object(
        &self,
        t: &TenantId,
        call_object: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        self.inner.find_task_by_call_object(t, call_object).await
    }
    async fn find_tasks_by_call_objects(
        &self,
        t: &TenantId,
        call_objects: &[String],
    ) -> Result<std::collections::HashMap<String, SalesforceId>, SfError> {
        self.inner.find_tasks_by_call_objects(t, call_objects).await
    }
    async fn find_account(
        &self,
        t: &TenantId,
        name: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        self.inner.find_account(t, name).await
    }
    async fn create_account(&self, t: &TenantId, name: &str) -> Result<SalesforceId, SfError> {
        self.inner.create_account(t, name).await
    }
    async fn create_record(
        &self,
        t: &TenantId,
        record: &NewRecord,
        allow_duplicate_save: bool,
    ) -> Result<SalesforceId, SfError> {
        self.inner
            .create_record(t, record, allow_duplicate_save)
            .await
    }
    async fn update_records(
        &self,
        t: &TenantId,
        updates: &[RecordUpdate],
    ) -> Result<Vec<Result<(), SfError>>, SfError> {
        self.inner.update_records(t, updates).await
    }
}

/// Webhooks at a steady 100/s for `secs` seconds through the intake (SQLite), two workers
/// (`Worker::run`, woken by the intake's notifier, default linger). Latency per event: from
/// the POST's response to the return of the Task insert that carried it.
pub(crate) async fn latency(secs: u64) -> anyhow::Result<Vec<Row>> {
    let (world, known) = linked_world(3_000).await?;
    let secret = world.store.rotate_webhook_secret(&world.t).await?;
    let timed = Arc::new(TimedWriter {
        inner: Arc::new(world.sf.clone()),
        done: Mutex::new(HashMap::new()),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = vec![];
    for name in ["worker-1", "worker-2"] {
        let mut ports = world.call_logging_ports();
        ports.sf_write = timed.clone();
        let logger = CallLogger::new(
            ports,
            CallLoggingOptions {
                holder: name.to_owned(),
                ..Default::default()
            },
            Arc::new(NoFailPoints),
        );
        let store = Arc::new(world.store.clone());
        let worker = Arc::new(Worker::new(
            store.clone(),
            store,
            Arc::new(logger),
            WorkerConfig {
                name: name.to_owned(),
                ..Default::default()
            },
            world.wake.clone(),
        ));
        workers.push(tokio::spawn(worker.run(stopped.clone())));
    }
    let state = IntakeState::new(
        Arc::new(world.store.clone()),
        Arc::new(StoreSecrets(world.store.clone())),
        Arc::new(SystemClock),
    )
    .with_notifier(world.wake.clone());
    let url = serve(state, &world.t).await?;
    let client = client()?;

    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let total = (secs * 100) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut sends = vec![];
    let began = Instant::now();
    for i in 0..total {
        tick.tick().await;
        let call_id = format!("lat{i}");
        let number = known[i % known.len()].clone();
        let (client, url, secret, answered, failed) = (
            client.clone(),
            url.clone(),
            secret.clone(),
            answered.clone(),
            failed.clone(),
        );
        sends.push(tokio::spawn(async move {
            match post(&client, &url, &secret, &call_id, &number).await {
                Ok(202) => {
                    let now = Instant::now();
                    answered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(call_id, now);
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for s in sends {
        s.await?;
    }
    let rate = total as f64 / began.elapsed().as_secs_f64();
    let expected = answered.lock().unwrap_or_else(|e| e.into_inner()).len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while timed.done.lock().unwrap_or_else(|e| e.into_inner()).len() < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    world.wake.notify_waiters();
    for w in workers {
        let _ = w.await;
    }
    let answered = answered.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let done = timed.done.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut lat = vec![];
    let mut before_response = 0;
    let mut missing = 0;
    for (call, at) in &answered {
        match done.get(call) {
            Some(t) if t >= at => lat.push(*t - *at),
            Some(_) => {
                // The worker was woken before the client had read the response.
                before_response += 1;
                lat.push(Duration::ZERO);
            }
            None => missing += 1,
        }
    }
    lat.sort();
    let p50 = ms(percentile(&lat, 50.0));
    let p99 = ms(percentile(&lat, 99.0));
    println!(
        "  p50 {p50:.0} ms, p99 {p99:.0} ms over {} events",
        lat.len()
    );
    let note = format!(
        "{} events at {rate:.0}/s, 2 workers, linger 50 ms; {} not 202, {missing} without a Task \
         after 60 s, {before_response} written before the response was read (counted 0)",
        lat.len(),
        failed.load(Ordering::Relaxed)
    );
    Ok(vec![
        Row::new("call-end → Task latency p50 @100/s (SQLite)", p50, "ms")
            .goal("report (no goal)")
            .note(note.clone()),
        Row::new("call-end → Task latency p99 @100/s (SQLite)", p99, "ms")
            .goal("report (no goal)")
            .note(format!(
                "max {:.0} ms",
                ms(*lat.last().unwrap_or(&Duration::ZERO))
            )),
    ])
}

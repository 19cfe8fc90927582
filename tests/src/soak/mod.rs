//! The crash soak: the real `callsync serve` binary (one instance on SQLite, or several on one
//! PostgreSQL database) against an in-process sf-sim org, fed thousands of signed webhooks
//! while instances are killed with SIGKILL and restarted, and (optionally) while Salesforce
//! faults switch on and off. Afterwards every call must have exactly one Task in the org, the
//! queue must be empty, and no secret may appear in the logs or in clear in the database.
//!
//! Driven by `tests/src/bin/soak.rs` (`cargo xtask soak`). The sender behaves like the phone
//! system: it retries a webhook (signed afresh) until it gets a 2xx; a 2xx means stored.

mod instance;
mod verify;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use chrono::Utc;
use event_ingest::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use instance::Instance;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use serde_json::{Value, json};
use sf_sim::{Fault, Org, OrgSpec, SfSim, SimUser};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub use verify::Report;

/// Which database the instances share.
#[derive(Debug, Clone)]
pub enum Database {
    /// One SQLite file (one instance: SQLite is the single-instance deployment).
    Sqlite,
    /// A fresh database on this PostgreSQL server (`postgres://…/anydb`).
    Postgres(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Name printed with the results.
    pub name: String,
    /// The `callsync` binary.
    pub bin: PathBuf,
    /// Webhooks to post (events, several per call).
    pub events: usize,
    /// SIGKILLs (each followed by a restart of the killed instance).
    pub kills: usize,
    /// Switch sf-sim faults on and off at random while sending.
    pub faults: bool,
    /// `callsync serve` processes sharing the database.
    pub instances: usize,
    pub database: Database,
    /// Concurrent webhook senders.
    pub senders: usize,
    pub seed: u64,
    /// How long the queue may take to drain after the last webhook.
    pub drain_timeout: Duration,
    /// Where the config, database and logs go (kept for inspection).
    pub dir: PathBuf,
}

impl Options {
    pub fn new(name: &str, bin: PathBuf, dir: PathBuf) -> Options {
        Options {
            name: name.to_owned(),
            bin,
            events: 10_000,
            kills: 5,
            faults: false,
            instances: 1,
            database: Database::Sqlite,
            senders: 16,
            seed: 42,
            drain_timeout: Duration::from_secs(15 * 60),
            dir,
        }
    }
}

/// The secrets of one run, to look for in logs and the database.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    pub operator_key: String,
    pub token_key_b64: String,
    pub client_secret: String,
    pub admin_token: String,
    pub webhook_secret: String,
}

/// One call of the load.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub id: String,
    pub known: bool,
}

/// One webhook to send: the index of its call and its form fields.
type Post = (usize, Vec<(String, String)>);

const KNOWN: usize = 300;
/// The shortest time faults are switched on and off.
const FAULT_PHASE: Duration = Duration::from_secs(30);
const UNKNOWN: usize = 400;

fn known_number(i: usize) -> String {
    format!("03-5100-{i:04}")
}

fn unknown_number(i: usize) -> String {
    format!("090-8{:03}-{:04}", i / 10_000, i % 10_000)
}

fn random_token(rng: &mut StdRng, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.random()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Builds the load: `events` webhooks for calls with one or two events each (ended or
/// missed, then maybe memo saved), some delivered twice.
fn plan(rng: &mut StdRng, events: usize) -> (Vec<Call>, Vec<Post>) {
    let mut calls = Vec::new();
    let mut posts = Vec::new();
    while posts.len() < events {
        let c = calls.len();
        let known = rng.random_bool(0.7);
        let number = if known {
            known_number(rng.random_range(0..KNOWN))
        } else {
            unknown_number(rng.random_range(0..UNKNOWN))
        };
        let id = format!("soak-{c}");
        let answered = rng.random_bool(0.6);
        let mut first = vec![
            (
                "event".to_owned(),
                if answered { "call_ended" } else { "missed" }.to_owned(),
            ),
            ("record[id]".to_owned(), id.clone()),
            ("record[direction]".to_owned(), "inbound".to_owned()),
            ("contact[number]".to_owned(), number.clone()),
            (
                "record[started_at]".to_owned(),
                "2026-11-25T09:30:00.000+09:00".to_owned(),
            ),
            (
                "record[duration]".to_owned(),
                if answered { "95" } else { "0" }.to_owned(),
            ),
            ("user[id]".to_owned(), "17".to_owned()),
            ("user[email]".to_owned(), "admin@soak.example.jp".to_owned()),
        ];
        if !known {
            first.push(("contact[name]".to_owned(), format!("新規 {c}")));
        }
        posts.push((c, first.clone()));
        if posts.len() < events && rng.random_bool(0.5) {
            posts.push((
                c,
                vec![
                    ("event".to_owned(), "memo_saved".to_owned()),
                    ("record[id]".to_owned(), id.clone()),
                    ("contact[number]".to_owned(), number.clone()),
                    ("record[memo]".to_owned(), format!("メモ {c}")),
                ],
            ));
        }
        // The phone system delivers some webhooks twice (R27).
        if posts.len() < events && rng.random_bool(0.1) {
            posts.push((c, first));
        }
        calls.push(Call { id, known });
    }
    // A little disorder, as concurrent senders and the phone system's own retries give.
    for i in 0..posts.len() {
        if rng.random_bool(0.05) {
            let j = (i + rng.random_range(0..8)).min(posts.len() - 1);
            posts.swap(i, j);
        }
    }
    (calls, posts)
}

/// Runs one soak scenario and returns its report (never panics on a finding; see
/// [`Report::ok`]).
pub async fn run(opts: Options) -> Result<Report> {
    crate::install_crypto();
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    std::fs::create_dir_all(&opts.dir)?;
    let sim = SfSim::start().await.context("starting sf-sim")?;
    let org = sim.add_org(OrgSpec {
        name: "株式会社ソーク".into(),
        daily_api_limit: 10_000_000,
        users: vec![SimUser::new("admin@soak.example.jp", "太郎", "管理")],
        ..Default::default()
    });
    for i in 0..KNOWN {
        org.insert(
            "Lead",
            json!({"LastName": format!("既存{i}"), "Company": "ソーク株式会社", "Phone": known_number(i)}),
        );
    }
    org.index_now();
    let (client_id, client_secret) = sim.client_credentials();
    let secrets = Secrets {
        operator_key: random_token(&mut rng, 36),
        token_key_b64: base64::engine::general_purpose::STANDARD
            .encode((0..32).map(|_| rng.random::<u8>()).collect::<Vec<u8>>()),
        client_secret,
        admin_token: String::new(),
        webhook_secret: String::new(),
    };
    let db_url = match &opts.database {
        Database::Sqlite => {
            if opts.instances > 1 {
                bail!("several instances need PostgreSQL");
            }
            format!(
                "sqlite://{}?mode=rwc",
                opts.dir.join("callsync.sqlite").display()
            )
        }
        Database::Postgres(admin) => {
            let name = format!("soak_{}", uuid::Uuid::new_v4().simple());
            store_adapter::Store::create_postgres_database(admin, &name)
                .await
                .map_err(|e| anyhow!("creating the soak database: {e}"))?
        }
    };
    let config_dir = opts.dir.join("config");
    instance::write_config(&config_dir, &db_url, &client_id, &sim.login_url(), &secrets)?;
    let mut instances = Vec::new();
    for i in 0..opts.instances {
        instances.push(Instance::new(i, &opts.bin, &config_dir, &opts.dir)?);
    }
    if matches!(opts.database, Database::Postgres(_)) {
        instances[0].migrate()?;
    }
    for inst in &mut instances {
        inst.start().await?;
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = instances[0].base();
    let (admin_token, webhook_secret) = setup_tenant(&http, &base, &secrets).await?;
    let secrets = Secrets {
        admin_token,
        webhook_secret,
        ..secrets
    };
    let (calls, posts) = plan(&mut rng, opts.events);
    println!(
        "[{}] {} events for {} calls ({} known numbers, {} unknown), {} instance(s), {} kills{}",
        opts.name,
        posts.len(),
        calls.len(),
        calls.iter().filter(|c| c.known).count(),
        calls.iter().filter(|c| !c.known).count(),
        opts.instances,
        opts.kills,
        if opts.faults {
            ", Salesforce faults"
        } else {
            ""
        }
    );

    // Send, kill and fault concurrently.
    let instances = Arc::new(Mutex::new(instances));
    let bases: Vec<String> = instances.lock().await.iter().map(Instance::base).collect();
    let queue = Arc::new(Mutex::new(posts.into_iter()));
    let sent = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let done_sending = Arc::new(AtomicBool::new(false));
    let secret = SecretString::from(secrets.webhook_secret.clone());
    let mut senders = Vec::new();
    for s in 0..opts.senders {
        let (http, queue, sent, retries, bases, secret) = (
            http.clone(),
            queue.clone(),
            sent.clone(),
            retries.clone(),
            bases.clone(),
            secret.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().await.next();
                let Some((_, pairs)) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                deliver(&http, &bases, s, &secret, &pairs, &retries).await?;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let killer = {
        let (instances, done, kills, sent, total) = (
            instances.clone(),
            done_sending.clone(),
            opts.kills,
            sent.clone(),
            opts.events,
        );
        let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x5eed);
        tokio::spawn(async move {
            // Kill points spread over the sending, at random.
            let mut at: Vec<usize> = (0..kills)
                .map(|_| rng.random_range(total / 20..total.max(2) * 19 / 20))
                .collect();
            at.sort_unstable();
            let mut killed = 0;
            for point in at {
                while sent.load(Ordering::Relaxed) < point && !done.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(rng.random_range(5..40))).await;
                }
                let mut insts = instances.lock().await;
                let n = insts.len();
                let victim = &mut insts[rng.random_range(0..n)];
                victim.kill()?;
                killed += 1;
                println!(
                    "  SIGKILL instance {} at {} webhooks sent",
                    victim.index,
                    sent.load(Ordering::Relaxed)
                );
                // Down for a moment: webhooks to it fail and are retried (or go elsewhere).
                tokio::time::sleep(Duration::from_millis(rng.random_range(50..800))).await;
                victim.start().await?;
            }
            Ok::<usize, anyhow::Error>(killed)
        })
    };
    let faulter = opts.faults.then(|| {
        let (org, done) = (org.clone(), done_sending.clone());
        let mut rng = StdRng::seed_from_u64(opts.seed ^ 0xfa17);
        tokio::spawn(async move { toggle_faults(&org, &done, &mut rng).await })
    });
    for s in senders {
        s.await??;
    }
    done_sending.store(true, Ordering::Relaxed);
    let killed = killer.await??;
    let faults_switched = match faulter {
        Some(f) => f.await?,
        None => 0,
    };
    org.clear_faults();
    let send_time = started.elapsed();
    println!(
        "  sent {} webhooks in {:.1} s ({} retried deliveries); waiting for the queue",
        sent.load(Ordering::Relaxed),
        send_time.as_secs_f64(),
        retries.load(Ordering::Relaxed)
    );

    let mut insts = Arc::try_unwrap(instances)
        .map_err(|_| anyhow!("instances still shared"))?
        .into_inner();
    let logs: Vec<PathBuf> = insts.iter().map(|i| i.log.clone()).collect();
    let queue = wait_for_queue(
        &http,
        &bases,
        &logs,
        &secrets.admin_token,
        opts.drain_timeout,
    )
    .await;
    for inst in &mut insts {
        inst.stop()?;
    }
    let mut report = verify::verify(&opts, &org, &calls, &secrets, &db_url, &logs, queue).await?;
    report.kills = killed;
    report.faults_switched = faults_switched;
    report.webhook_retries = retries.load(Ordering::Relaxed);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Posts one webhook until it is stored (2xx). Tries the instances in turn (a load balancer).
async fn deliver(
    http: &reqwest::Client,
    bases: &[String],
    sender: usize,
    secret: &SecretString,
    pairs: &[(String, String)],
    retries: &AtomicUsize,
) -> Result<()> {
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = crate::form(&borrowed);
    for attempt in 0..2_000usize {
        let base = &bases[(sender + attempt) % bases.len()];
        let ts = Utc::now().timestamp();
        let sig = sign(secret, ts, body.as_bytes());
        let res = http
            .post(format!("{base}/webhooks/acme/calls"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sig)
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_client_error() => {
                bail!(
                    "webhook refused with {}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )
            }
            _ => {
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20 + 10 * attempt.min(20) as u64)).await;
            }
        }
    }
    bail!("a webhook was never accepted")
}

/// Switches random faults on for a moment, while sending and for at least [`FAULT_PHASE`]
/// (the workers lag behind the intake; they must meet the faults too). Returns how many.
async fn toggle_faults(org: &Org, done: &AtomicBool, rng: &mut StdRng) -> usize {
    let started = Instant::now();
    let mut n = 0;
    let mut limit_used = false;
    while !done.load(Ordering::Relaxed) || started.elapsed() < FAULT_PHASE {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_200))).await;
        let fault = match rng.random_range(0..10) {
            0..=2 => Fault::ServerError {
                times: rng.random_range(1..6),
            },
            3..=4 => Fault::Latency(Duration::from_millis(rng.random_range(50..600))),
            5..=6 => Fault::LockRow {
                times: rng.random_range(1..6),
            },
            7..=8 => Fault::SessionExpired,
            // C3: once per run (each refusal parks the affected calls for 5 minutes).
            _ if !limit_used => {
                limit_used = true;
                Fault::RequestLimitExceeded
            }
            _ => Fault::SessionExpired,
        };
        println!("  fault on: {fault:?}");
        org.set_fault(fault);
        n += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..900))).await;
        org.clear_faults();
    }
    n
}

/// Creates tenant `acme`, connects it to the org through the real OAuth flow, and turns
/// record creation on (Leads) so unknown numbers get a record and a Task too.
async fn setup_tenant(
    http: &reqwest::Client,
    base: &str,
    secrets: &Secrets,
) -> Result<(String, String)> {
    let r = http
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(&secrets.operator_key)
        .json(&json!({"id": "acme", "name": "Soak 株式会社"}))
        .send()
        .await?;
    if r.status() != 201 {
        bail!("creating the tenant: {} {}", r.status(), r.text().await?);
    }
    let v: Value = r.json().await?;
    let admin = v["admin_token"].as_str().unwrap_or_default().to_owned();
    let secret = v["webhook_secret"].as_str().unwrap_or_default().to_owned();
    let r = http
        .get(format!("{base}/api/v1/tenants/acme/salesforce/connect"))
        .bearer_auth(&admin)
        .send()
        .await?;
    let authorize = location(&r)?;
    let r = http.get(&authorize).send().await?;
    let back = location(&r)?;
    let query = url::Url::parse(&back)?
        .query()
        .unwrap_or_default()
        .to_owned();
    let r = http
        .get(format!("{base}/oauth/callback?{query}"))
        .send()
        .await?;
    let done = location(&r)?;
    if !done.ends_with("connect=connected") {
        bail!("connecting the org failed: {done}");
    }
    let r = http
        .put(format!("{base}/api/v1/tenants/acme/settings"))
        .bearer_auth(&admin)
        .json(&json!({"create_customers": true, "create_as": "Lead"}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("saving settings: {} {}", r.status(), r.text().await?);
    }
    Ok((admin, secret))
}

fn location(r: &reqwest::Response) -> Result<String> {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("expected a redirect, got {}", r.status()))
}

/// The queue as the status API shows it, once it has nothing pending (or at the timeout).
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueState {
    pub ready: u64,
    pub leased: u64,
    pub waiting: u64,
    pub held: u64,
    pub dead: u64,
    pub drained: bool,
}

/// Polls the queue until it is empty, `timeout` passes, or an instance logs a panic (its
/// workers may be gone; waiting longer would only hide the finding).
async fn wait_for_queue(
    http: &reqwest::Client,
    bases: &[String],
    logs: &[PathBuf],
    token: &str,
    timeout: Duration,
) -> QueueState {
    let deadline = Instant::now() + timeout;
    let mut last_print = Instant::now();
    let mut q = QueueState::default();
    while Instant::now() < deadline {
        for base in bases {
            let Ok(r) = http
                .get(format!("{base}/api/v1/tenants/acme/status"))
                .bearer_auth(token)
                .send()
                .await
            else {
                continue;
            };
            let Ok(v) = r.json::<Value>().await else {
                continue;
            };
            let n = |k: &str| v["queue"][k].as_u64().unwrap_or(u64::MAX);
            q = QueueState {
                ready: n("ready"),
                leased: n("leased"),
                waiting: n("waiting"),
                held: n("held"),
                dead: n("dead"),
                drained: false,
            };
            if q.ready + q.leased + q.waiting + q.held == 0 {
                q.drained = true;
                return q;
            }
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            if logs
                .iter()
                .any(|l| verify::panics_in(&read_lossy(l)).next().is_some())
            {
                println!("  an instance panicked; not waiting for the queue any longer");
                return q;
            }
            println!(
                "  queue: ready {} leased {} waiting {} held {} dead {}",
                q.ready, q.leased, q.waiting, q.held, q.dead
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    q
}

pub(crate) fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

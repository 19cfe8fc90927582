//! Row 4: the end-to-end initial import (`CustomerSync::run(Initial)` over the real
//! `SalesforceClient`, into SQLite) with the simulator and the import each in their own
//! process, so the importing process's peak RSS means something.
//!
//! The parent re-executes this binary twice: `bench sim-host` seeds an org and serves it
//! (its stdin takes commands: `used` answers the org's API request counter), and
//! `bench import-child <json>` runs the import and prints its result as one JSON line.

use super::report::Row;
use super::store::{human, remove_sqlite};
use super::util::{cpu_secs, peak_rss_kib};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{
    CredentialStore, Credentials, CustomerChanges, CustomerStore, DeletedRecord, PageCursor,
    RecordPage, RecordQuery, SettingsStore, SyncKind, SystemClock,
};
use domain::usecases::sync::{CustomerSync, RunStatus, SyncOptions, SyncPorts};
use domain::{
    ConnectedUser, Customer, CustomerId, EmailAddress, IntegrationSettings, PhoneNumber,
    SalesforceId, SalesforceRecordRef, SfError, SfLink, SfObject, SfRecord, SfUser, StoreError,
    SyncTargets, TenantId,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sf_adapter::{SalesforceClient, SfConfig};
use sf_sim::{OrgSpec, SfSim, SimOptions};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store_adapter::{Keyring, Store};

/// How the import child reaches the simulator's org.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SimInfo {
    pub(crate) login_url: String,
    pub(crate) instance_url: String,
    pub(crate) org_id: String,
    pub(crate) admin_user_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) seed_secs: f64,
    pub(crate) leads: usize,
    pub(crate) contacts: usize,
}

/// What the import child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImportResult {
    pub(crate) secs: f64,
    pub(crate) fetch_secs: f64,
    /// `apply_changes` (the page's transaction).
    pub(crate) apply_secs: f64,
    /// The sync's per-page reads of the book (`find_by_records`, `find_by_numbers`).
    pub(crate) lookup_secs: f64,
    pub(crate) seen: u64,
    pub(crate) created: u64,
    pub(crate) duplicates: u64,
    pub(crate) skipped: u64,
    pub(crate) client_requests: u64,
    pub(crate) completed: bool,
    pub(crate) peak_rss_kib: u64,
    /// CPU seconds (user + system) the importing process used, all its threads.
    pub(crate) cpu_secs: f64,
}

/// `bench sim-host --records N --seed S`: seed, print [`SimInfo`] as one line, then answer
/// `used` with the org's API counter until stdin closes.
pub(crate) async fn sim_host(args: &[String]) -> anyhow::Result<()> {
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let records: usize = arg("--records").context("--records")?.parse()?;
    let seed: u64 = arg("--seed").unwrap_or_else(|| "7".into()).parse()?;
    let sim = SfSim::start_with(SimOptions::default()).await?;
    let org = sim.add_org(OrgSpec::sample());
    org.set_daily_api_limit(1_000_000_000);
    let began = Instant::now();
    let summary = org.seed_japanese(records, seed);
    let seed_secs = began.elapsed().as_secs_f64();
    let (client_id, client_secret) = sim.client_credentials();
    let (access_token, refresh_token) = org.issue_tokens();
    let info = SimInfo {
        login_url: sim.login_url(),
        instance_url: org.instance_url(),
        org_id: org.org_id(),
        admin_user_id: org.admin_user_id(),
        client_id,
        client_secret,
        access_token,
        refresh_token,
        seed_secs,
        leads: summary.leads,
        contacts: summary.contacts,
    };
    println!("{}", serde_json::to_string(&info)?);
    // Blocking stdin on its own thread; the runtime keeps serving.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(cmd) = rx.recv().await {
        match cmd.trim() {
            "used" => println!("{}", org.api_requests_used()),
            "rss" => println!("{}", peak_rss_kib().unwrap_or(0)),
            // Centiseconds, so the answer stays an integer like the others.
            "cpu" => println!("{:.0}", cpu_secs().unwrap_or(0.0) * 100.0),
            _ => println!("?"),
        }
    }
    sim.shutdown().await;
    Ok(())
}

struct SimProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl SimProcess {
    fn start(records: u64) -> anyhow::Result<(SimProcess, SimInfo)> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["sim-host", "--records", &records.to_string(), "--seed", "7"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().context("sim stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("sim stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let info: SimInfo = serde_json::from_str(&line).context("sim-host did not start")?;
        Ok((
            SimProcess {
                child,
                stdin,
                stdout,
            },
            info,
        ))
    }

    fn ask(&mut self, cmd: &str) -> anyhow::Result<u64> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        Ok(line.trim().parse()?)
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// Last progress line of the import child: (records read, seconds, VmHWM KiB).
type Progress = Arc<std::sync::Mutex<(u64, f64, u64)>>;

/// Runs `bench import-child`, relaying its progress; kills it after `cap`.
fn import_child_process(
    info: &SimInfo,
    cap: Duration,
) -> anyhow::Result<(Option<ImportResult>, Progress)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["import-child", &serde_json::to_string(info)?])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let progress: Progress = Arc::default();
    let stderr = child.stderr.take().context("child stderr")?;
    let relay = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let parts: Vec<&str> = line.split_whitespace().collect();
                match parts.as_slice() {
                    ["progress", seen, secs, rss] => {
                        let p = (
                            seen.parse().unwrap_or(0),
                            secs.parse().unwrap_or(0.0),
                            rss.parse().unwrap_or(0),
                        );
                        println!(
                            "  import-child: {} records read, {:.1} s, peak RSS {:.0} MiB",
                            p.0,
                            p.1,
                            p.2 as f64 / 1024.0
                        );
                        *progress.lock().unwrap_or_else(|e| e.into_inner()) = p;
                    }
                    _ => eprintln!("  import-child: {line}"),
                }
            }
        })
    };
    let deadline = Instant::now() + cap;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = relay.join();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        stdout.read_to_string(&mut out)?;
    }
    match status {
        None => Ok((None, progress)),
        Some(s) if s.success() => {
            let r: ImportResult = serde_json::from_str(out.lines().last().unwrap_or_default())
                .context("import-child printed no result")?;
            Ok((Some(r), progress))
        }
        Some(s) => anyhow::bail!("import-child failed ({s}): {out}"),
    }
}

/// Runs the import of an org seeded with `n` records in child processes. Rows: time,
/// Salesforce requests, peak RSS. An import still running after `cap` is stopped and
/// reported as such, with how far it got.
pub(crate) async fn run(n: u64, goals: bool, cap: Duration) -> anyhow::Result<Vec<Row>> {
    let (mut sim, info) = SimProcess::start(n)?;
    println!(
        "  sim-host seeded {} records in {:.1} s ({} Leads, {} Contacts)",
        n, info.seed_secs, info.leads, info.contacts
    );
    let before = sim.ask("used")?;
    let sim_cpu_before = sim.ask("cpu")?;
    let (result, progress) = import_child_process(&info, cap)?;
    let used = sim.ask("used")? - before;
    let sim_cpu = sim.ask("cpu")?.saturating_sub(sim_cpu_before) as f64 / 100.0;
    let sim_rss = sim.ask("rss")?;
    sim.stop();
    let label = human(n);
    let limit = n.div_ceil(2000) + 10;
    let (mut time, requests, rss_kib) = match result {
        Some(r) => {
            anyhow::ensure!(r.completed, "the import was deferred: {r:?}");
            // The sync reads the next pages while it stores the previous ones, so fetch time
            // overlaps the store's; what is left of the wall time after the store's share is
            // deciding (normalize, dedupe) plus any fetch the store did not hide.
            let rest = (r.secs - r.apply_secs - r.lookup_secs).max(0.0);
            let time = Row::new(format!("e2e import {label} records (SQLite)"), r.secs, "s").note(
                format!(
                    "{:.0} records/s; {} read, {} customers created, {} duplicates, {} skipped; \
                     time: fetch {:.1} s (overlaps the store), store apply_changes {:.1} s, \
                     store lookups {:.1} s, decide and unhidden fetch {:.1} s; \
                     CPU: importer {:.1} s, sim {:.1} s (2 cores)",
                    r.seen as f64 / r.secs,
                    r.seen,
                    r.created,
                    r.duplicates,
                    r.skipped,
                    r.fetch_secs,
                    r.apply_secs,
                    r.lookup_secs,
                    rest,
                    r.cpu_secs,
                    sim_cpu
                ),
            );
            let requests = Row::new(
                format!("e2e import {label}: Salesforce requests"),
                used as f64,
                "req",
            )
            .below(limit as f64, true, format!("≤ ⌈N/2000⌉+10 = {limit}"))
            .note(format!(
                "sim's API counter; the client counted {}; Leads and Contacts page separately",
                r.client_requests
            ));
            println!(
                "  {:.1} s, {used} requests, peak RSS {:.0} MiB, CPU {:.1} s (sim {sim_cpu:.1} s)",
                r.secs,
                r.peak_rss_kib as f64 / 1024.0,
                r.cpu_secs
            );
            (time, requests, r.peak_rss_kib)
        }
        None => {
            let (seen, secs, rss) = *progress.lock().unwrap_or_else(|e| e.into_inner());
            let time = Row::new(
                format!("e2e import {label} records (SQLite)"),
                cap.as_secs_f64(),
                "s",
            )
            .note(format!(
                "STOPPED at the {:.0} s cap: {seen} records read after {secs:.0} s \
                 ({:.0} records/s, slowing as the book grows); did not finish",
                cap.as_secs_f64(),
                seen as f64 / secs.max(1e-9)
            ));
            let requests = Row::new(
                format!("e2e import {label}: Salesforce requests (partial)"),
                used as f64,
                "req",
            )
            .goal(format!("≤ ⌈N/2000⌉+10 = {limit}"))
            .note(format!("until stopped, for {seen} records read"));
            (time, requests, rss)
        }
    };
    let rss_mb = rss_kib as f64 / 1024.0;
    let mut rss = Row::new(format!("e2e import {label}: peak RSS"), rss_mb, "MiB").note(format!(
        "VmHWM of the importing process (sim in its own process: {:.0} MiB)",
        sim_rss as f64 / 1024.0
    ));
    if goals {
        time = time.below(20.0, false, "< 20 s");
        rss = rss.below(200.0, false, "< 200 MiB");
    } else {
        time = time.goal("report (goal is for 1M)");
        rss = rss.goal("report (goal is for 1M)");
    }
    Ok(vec![time, requests, rss])
}

/// `bench import-child <SimInfo json>`: one initial import into a fresh SQLite file.
pub(crate) async fn import_child(args: &[String]) -> anyhow::Result<()> {
    it::install_crypto();
    let info: SimInfo = serde_json::from_str(args.first().context("sim info")?)?;
    let path = std::env::temp_dir().join(format!(
        "callsync-bench-import-{}.sqlite",
        uuid::Uuid::new_v4().simple()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let result = import_into(&info, &url).await;
    remove_sqlite(&path);
    let r = result?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

async fn import_into(info: &SimInfo, url: &str) -> anyhow::Result<ImportResult> {
    let store = Store::connect(url, Keyring::new(("bench", &[9; 32]), &[])?).await?;
    store.migrate().await?;
    let t = TenantId::parse("acme")?;
    store.create_tenant(&t, "Acme 株式会社", Utc::now()).await?;
    let creds = Credentials {
        instance_url: info.instance_url.clone(),
        access_token: SecretString::from(info.access_token.clone()),
        refresh_token: SecretString::from(info.refresh_token.clone()),
        user: ConnectedUser {
            user_id: SalesforceId::parse(&info.admin_user_id)?,
            org_id: SalesforceId::parse(&info.org_id)?,
            email: EmailAddress::parse("admin@sample.example.jp").ok(),
            name: "管理 太郎".into(),
        },
        issued_at: Utc::now(),
    };
    store.save(&t, &creds).await?;
    // Every seeded record is in the window, so N means N records read.
    let settings = IntegrationSettings {
        import_window_days: 3650,
        ..Default::default()
    };
    store.save_settings(&t, &settings).await?;
    let mut cfg = SfConfig::new(
        info.client_id.clone(),
        SecretString::from(info.client_secret.clone()),
        "http://127.0.0.1:1/oauth/callback",
    );
    cfg.login_url = info.login_url.clone();
    cfg.timeout = Duration::from_secs(60);
    let sf = Arc::new(SalesforceClient::new(cfg, Arc::new(store.clone()))?);
    let reader = Arc::new(TimedReader {
        inner: sf.clone(),
        nanos: AtomicU64::new(0),
    });
    let customers = Arc::new(TimedCustomers {
        inner: store.clone(),
        apply: AtomicU64::new(0),
        lookups: AtomicU64::new(0),
    });
    let s = Arc::new(store.clone());
    let sync = CustomerSync::new(
        SyncPorts {
            reader: reader.clone(),
            writer: sf.clone(),
            usage: sf.clone(),
            customers: customers.clone(),
            runs: s.clone(),
            directory: s.clone(),
            locks: s.clone(),
            settings: s,
            clock: Arc::new(SystemClock),
        },
        SyncOptions::default(),
    );
    let began = Instant::now();
    let seen = AtomicU64::new(0);
    let before = AtomicU64::new(0);
    let outcome = sync
        .run(&t, SyncKind::Initial, &|p| {
            // Per object; the sync reports Leads first, then Contacts.
            let base = if p.object == SfObject::Lead {
                0
            } else {
                before.load(Ordering::Relaxed)
            };
            if p.object == SfObject::Lead {
                before.store(p.seen, Ordering::Relaxed);
            }
            let all = base + p.seen;
            if all / 50_000 > seen.swap(all, Ordering::Relaxed) / 50_000 {
                eprintln!(
                    "progress {all} {:.1} {}",
                    began.elapsed().as_secs_f64(),
                    peak_rss_kib().unwrap_or(0)
                );
            }
        })
        .await?;
    let secs = began.elapsed().as_secs_f64();
    let r = &outcome.report;
    let result = ImportResult {
        secs,
        fetch_secs: reader.nanos.load(Ordering::Relaxed) as f64 / 1e9,
        apply_secs: customers.apply.load(Ordering::Relaxed) as f64 / 1e9,
        lookup_secs: customers.lookups.load(Ordering::Relaxed) as f64 / 1e9,
        seen: r.seen,
        created: r.created,
        duplicates: r.duplicates,
        skipped: r.skipped.values().sum(),
        client_requests: r.api_requests,
        completed: outcome.status == RunStatus::Completed,
        peak_rss_kib: peak_rss_kib().unwrap_or(0),
        cpu_secs: cpu_secs().unwrap_or(0.0),
    };
    store.close().await?;
    Ok(result)
}

fn add(nanos: &AtomicU64, since: Instant) {
    nanos.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// Times `fetch_page` (request, transfer and parsing into domain records).
struct TimedReader {
    inner: Arc<SalesforceClient>,
    nanos: AtomicU64,
}

#[async_trait]
impl domain::ports::SalesforceReader for TimedReader {
    async fn check_field_access(&self, t: &TenantId, objects: &[SfObject]) -> Result<(), SfError> {
        self.inner.check_field_access(t, objects).await
    }
    async fn fetch_page(
        &self,
        t: &TenantId,
        query: &RecordQuery,
        cursor: Option<PageCursor>,
    ) -> Result<RecordPage, SfError> {
        let began = Instant::now();
        let r = self.inner.fetch_page(t, query, cursor).await;
        add(&self.nanos, began);
        r
    }
    async fn fetch_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<SfRecord>, SfError> {
        self.inner.fetch_records(t, records).await
    }
    async fn search_by_phone(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        targets: SyncTargets,
    ) -> Result<Vec<SfRecord>, SfError> {
        self.inner.search_by_phone(t, number, targets).await
    }
    async fn deleted_since(
        &self,
        t: &TenantId,
        object: SfObject,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, SfError> {
        self.inner.deleted_since(t, object, since, until).await
    }
    async fn active_users(&self, t: &TenantId) -> Result<Vec<SfUser>, SfError> {
        self.inner.active_users(t).await
    }
}

/// Times every customer-store call of the sync (page lookups and `apply_changes`).
struct TimedCustomers {
    inner: Store,
    apply: AtomicU64,
    lookups: AtomicU64,
}

#[async_trait]
impl CustomerStore for TimedCustomers {
    async fn find_by_number(
        &self,
        t: &TenantId,
        e164: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let began = Instant::now();
        let r = self.inner.find_by_number(t, e164).await;
        add(&self.lookups, began);
        r
    }
    async fn find_by_numbers(
        &self,
        t: &TenantId,
        e164: &[String],
    ) -> Result<Vec<Customer>, StoreError> {
        let began = Instant::now();
        let r = self.inner.find_by_numbers(t, e164).await;
        add(&self.lookups, began);
        r
    }
    async fn find_by_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<Customer>, StoreError> {
        let began = Instant::now();
        let r = self.inner.find_by_records(t, records).await;
        add(&self.lookups, began);
        r
    }
    async fn get(&self, t: &TenantId, id: CustomerId) -> Result<Option<Customer>, StoreError> {
        self.inner.get(t, id).await
    }
    async fn apply_changes(
        &self,
        t: &TenantId,
        changes: CustomerChanges,
    ) -> Result<(), StoreError> {
        let began = Instant::now();
        let r = self.inner.apply_changes(t, changes).await;
        add(&self.apply, began);
        r
    }
    async fn link(&self, t: &TenantId, id: CustomerId, link: &SfLink) -> Result<(), StoreError> {
        self.inner.link(t, id, link).await
    }
    async fn pending_write_back(
        &self,
        t: &TenantId,
        limit: u64,
    ) -> Result<Vec<Customer>, StoreError> {
        self.inner.pending_write_back(t, limit).await
    }
    async fn mark_written_back(
        &self,
        t: &TenantId,
        id: CustomerId,
        edited_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.inner.mark_written_back(t, id, edited_at).await
    }
    async fn watermark(
        &self,
        t: &TenantId,
        object: SfObject,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.inner.watermark(t, object).await
    }
}

//! Customer sync (R10–R17, C3): the initial import, the hourly incremental sync and the
//! write-back of phone-system edits, as one service that only talks to ports.
//!
//! # Shape of a run
//! 1. One run per tenant at a time: a lease on the `sync` lock, renewed as it ages (checked
//!    before every page and commit) and released at the end, also on failure.
//! 2. C3: background work defers first. The budget is checked before the run and before every
//!    page; a deferral (or Salesforce's own `REQUEST_LIMIT_EXCEEDED`) ends the run as
//!    [`RunStatus::Deferred`] after the last committed page. Nothing is lost: the next run
//!    resumes from the committed watermark.
//! 3. R10 preflight (`check_field_access`) before any page: a hidden field stops the run with
//!    the explanation of what to change in Salesforce; nothing is imported.
//! 4. The User directory is refreshed for owner resolution (R23).
//! 5. Per object: deletions and merges first (incremental, R16), then every page of changed
//!    records. Whole pages up to [`SyncOptions::records_per_commit`] records become one
//!    [`CustomerChanges`] applied in one store transaction together with the object's
//!    watermark, so a run that fails half-way resumes after its last commit. While one batch
//!    is stored, the next is fetched, looked up and decided, except its records that share a
//!    number or record with a row that commit writes: those are decided after it, on a fresh
//!    read (see `dependent`). Memory is bounded by two such batches plus a small per-run
//!    index of numbers (see below), never by all records.
//! 6. Write-back (R11) of customers edited in the phone system.
//!
//! # Dedupe across pages (R14)
//! R14 says the record *already linked* to a number's customer wins. "Already" means before
//! this run: a link this run made itself must not win merely because its page came first,
//! or the result would depend on page order. The run therefore keeps:
//! - `fresh`: the records it linked to a customer they were not linked to before the run;
//! - `seen`: per normalized number, every record of this run that carries it (id, object,
//!   `LastModifiedDate`, `SystemModstamp` — a few dozen bytes each, no field data).
//!
//! For a number, the candidates are all `seen` records (not linked) plus the customer's current
//! link, which counts as linked only when it is not `fresh`. `choose_winner` is a total order,
//! so the winner among this run's records is the same whatever order their pages came in; the
//! losers are (re-)recorded as duplicates of the current winner each time it changes.
//!
//! Within a page, records already linked to a customer are decided first, so that a record
//! moving away from a number frees it before the page's newcomers to that number are decided.
//!
//! A customer follows its record: when the linked record's Phone changes to a number no other
//! customer holds, the customer's number changes with it. When the new number already belongs
//! to another customer, R18 forbids a second one: the record competes for that number (R14)
//! and its old customer is unlinked.
//!
//! Known limit: a run that fails half-way and resumes sees the links of its own earlier pages
//! as "before this run"; the winner is still deterministic for that history, but may differ
//! from a run that never failed. And when a winner leaves a number (Phone changed, deleted),
//! duplicates recorded by *earlier* runs are not promoted to winner, because no port lists
//! duplicates by number; they stay listed for admins (nothing is lost) until their own record
//! changes and is read again.

use crate::ports::{
    ApiUsageView, Clock, CustomerChanges, CustomerStore, CustomerUpdate, DirectoryStore,
    DuplicateEntry, Locks, NewCustomer, PageCursor, RecordQuery, RecordUpdate, SalesforceReader,
    SalesforceWriter, SettingsStore, SyncKind, SyncReport, SyncRunStore,
};
use crate::rules::budget::{Priority, Spend, may_spend};
use crate::rules::dedupe::{Candidate, choose_winner};
use crate::rules::explain::explain;
use crate::rules::sync_fields::{
    Conversion, follow_conversion, merge_incoming, write_back_changes,
};
use crate::{
    Customer, CustomerFields, CustomerId, IntegrationSettings, PhoneError, PhoneNumber,
    SalesforceRecordRef, SfError, SfLink, SfObject, SfRecord, StoreError, SyncedField, TenantId,
};
use chrono::{DateTime, TimeDelta, Utc};
// The run index and a page's book hash a million keys per large import: a fast hasher.
use foldhash::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The name of the per-tenant lease that keeps runs from overlapping.
pub const LOCK_KEY: &str = "sync";

/// C3: how long an observation of the org's API usage (`Sforce-Limit-Info`) is trusted. The
/// allowance is a rolling 24 hours, and a deferred run sends nothing that would refresh the
/// observation: trusted forever, one "nearly out" would defer background work until some
/// other request (a call activity) happened to refresh it. Older than this it counts as
/// unknown, so the next run sends its first request and decides on that response.
pub const USAGE_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Skip reasons recorded in [`SyncReport::skipped`] (R17).
pub mod skip {
    /// R12: the record's Phone is empty.
    pub const NO_PHONE: &str = "no_phone";
    /// R13: the Phone is not a valid number.
    pub const INVALID_NUMBER: &str = "invalid_number";
    /// R15: a converted Lead that is not imported (or no longer linked).
    pub const CONVERTED: &str = "converted";
    /// R14: another record won the number (records of this run that are duplicates at its end).
    pub const DUPLICATE: &str = "duplicate";
    /// R11: a dirty customer with no linked record has nowhere to be written.
    pub const NOT_LINKED: &str = "not_linked";
}

/// The ports the sync needs.
#[derive(Clone)]
pub struct SyncPorts {
    pub reader: Arc<dyn SalesforceReader>,
    pub writer: Arc<dyn SalesforceWriter>,
    pub usage: Arc<dyn ApiUsageView>,
    pub customers: Arc<dyn CustomerStore>,
    pub runs: Arc<dyn SyncRunStore>,
    pub directory: Arc<dyn DirectoryStore>,
    pub locks: Arc<dyn Locks>,
    pub settings: Arc<dyn SettingsStore>,
    pub clock: Arc<dyn Clock>,
}

/// Tuning that is not per-tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// R16: how far before the watermark an incremental run starts reading, so that changes
    /// committed late in Salesforce (SystemModstamp earlier than their visibility) are not
    /// missed. Re-reading is harmless: an unchanged record is counted `unchanged`.
    pub overlap: Duration,
    /// Lease on the tenant's `sync` lock; renewed, once a third of it has passed, before a
    /// commit or a page read, so it only needs to outlast one page's fetch or one commit.
    pub lock_ttl: Duration,
    /// Who holds the lease. Must be unique per process (e.g. host name + pid or a uuid):
    /// two processes with the same holder would both "renew" one lease.
    pub holder: String,
    /// Customers written back per round (the Salesforce adapter splits them into requests of
    /// at most 200).
    pub write_back_limit: u64,
    /// Records decided and committed together: pages (at most 2,000 records each) are read
    /// until this many, then decided and stored in one transaction with the watermark of the
    /// last record. Fewer, larger commits write each index page of the book once per commit
    /// instead of once per page (a large import is bound by that); a failed run still
    /// resumes after its last commit. The default, 12,000 (six pages), imported 1M records
    /// in 17–18 s against 19–20 s with 8,000, at a peak RSS of ~175 MiB against ~160;
    /// 16,000 was no faster and peaked near 200 MiB (docs/performance.md).
    pub records_per_commit: usize,
    /// Read, look up and decide the next batch while the previous one is being stored (both
    /// cores work). Off: one batch at a time, for diagnosis.
    pub read_ahead: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            overlap: Duration::from_secs(10 * 60),
            lock_ttl: Duration::from_secs(5 * 60),
            holder: format!("customer-sync-{}", std::process::id()),
            write_back_limit: 1_000,
            records_per_commit: 12_000,
            read_ahead: true,
        }
    }
}

/// Progress of a run, after every commit (for progress bars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    pub object: SfObject,
    /// Records of `object` read so far in this run.
    pub seen: u64,
    /// Records of `object` matching the query, as Salesforce reports it.
    pub total: u64,
}

/// Why a run stopped early without an error (C3). The next run resumes where it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferReason {
    /// callsync's own ceiling for background work (or write-back) is reached.
    Budget,
    /// Salesforce refused: the org's allowance is spent.
    Throttled(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Completed,
    Deferred(DeferReason),
}

/// What a run did; the same report is stored with the run (R17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub run_id: i64,
    pub status: RunStatus,
    pub report: SyncReport,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// Another holder has the tenant's `sync` lease; nothing was done.
    #[error("a customer sync is already running for this tenant")]
    AlreadyRunning,
    /// The lease expired during the run and someone else took it; the run stopped after its
    /// last committed page.
    #[error("the customer sync lost its lease to another holder")]
    LockLost,
    #[error(transparent)]
    Salesforce(#[from] SfError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The customer-sync use case. Cheap to clone the ports into; holds no per-run state.
pub struct CustomerSync {
    ports: SyncPorts,
    options: SyncOptions,
}

impl CustomerSync {
    pub fn new(ports: SyncPorts, options: SyncOptions) -> Self {
        Self { ports, options }
    }

    /// One sync run for the tenant (R16): `Initial` imports the last `import_window_days`,
    /// `Incremental` reads what changed since the watermark, `WriteBack` only writes back.
    /// Every run ends with a write-back round, budget permitting (also when the import itself
    /// was deferred for budget, C3). A deferral ends the run as `Ok` with
    /// [`RunStatus::Deferred`], recorded with `ok = false` and the reason in `errors`.
    ///
    /// Errors: `AlreadyRunning` when another holder has the lease (nothing recorded); any
    /// other error is recorded in the run (R17) before it is returned, and what was committed
    /// page by page stays committed.
    pub async fn run(
        &self,
        t: &TenantId,
        kind: SyncKind,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncOutcome, SyncError> {
        self.locked(t, async {
            let mut run = self.start(t, kind).await?;
            let result = match kind {
                SyncKind::WriteBack => Ok(None),
                SyncKind::Initial | SyncKind::Incremental => {
                    self.import(t, kind, progress, &mut run).await
                }
            };
            // C3: write-back outranks background sync, so a budget deferral of the import
            // still lets it try (it has its own, higher ceiling). Salesforce's own refusal
            // (an error here) stops everything.
            let result = match result {
                Ok(deferred @ (None | Some(DeferReason::Budget))) => self
                    .write_back_round(t, &mut run)
                    .await
                    .map(|wb| deferred.or(wb)),
                other => other,
            };
            self.finish(t, run, result).await
        })
        .await
    }

    /// Writes back the phone system's edits (R11) in a run of its own (kind `WriteBack`).
    /// Takes the same lease as `run`, so it never interleaves with an import.
    pub async fn write_back(&self, t: &TenantId) -> Result<SyncOutcome, SyncError> {
        self.run(t, SyncKind::WriteBack, &|_| {}).await
    }

    /// Runs `work` under the tenant's lease and releases it afterwards, whatever happened.
    async fn locked<T>(
        &self,
        t: &TenantId,
        work: impl Future<Output = Result<T, SyncError>>,
    ) -> Result<T, SyncError> {
        let p = &self.ports;
        if !self.take_lease(t, p.clock.now()).await? {
            return Err(SyncError::AlreadyRunning);
        }
        let result = work.await;
        let released = p.locks.unlock(t, LOCK_KEY, &self.options.holder).await;
        match (result, released) {
            (Err(e), _) => Err(e),
            // The run is recorded; a failed unlock only delays the next run until the lease
            // expires, but the caller should hear that the store is failing.
            (Ok(_), Err(e)) => Err(e.into()),
            (Ok(v), Ok(())) => Ok(v),
        }
    }

    async fn start(&self, t: &TenantId, kind: SyncKind) -> Result<Run, SyncError> {
        let p = &self.ports;
        let settings = p.settings.settings(t).await?.unwrap_or_default();
        let requests_before = p.usage.requests_sent(t);
        let now = p.clock.now();
        let id = p.runs.start_run(t, kind, now).await?;
        Ok(Run {
            id,
            // `locked` took the lease just before.
            lease: Lease::new(now),
            settings,
            requests_before,
            report: SyncReport::default(),
            index: RunIndex::default(),
        })
    }

    /// Records the end of the run (R17) and turns Salesforce's refusal into a deferral (C3).
    async fn finish(
        &self,
        t: &TenantId,
        mut run: Run,
        result: Result<Option<DeferReason>, SyncError>,
    ) -> Result<SyncOutcome, SyncError> {
        let result = match result {
            Err(SyncError::Salesforce(SfError::Throttled { cause, .. })) => {
                Ok(Some(DeferReason::Throttled(cause)))
            }
            other => other,
        };
        let p = &self.ports;
        run.report.api_requests = p.usage.requests_sent(t).saturating_sub(run.requests_before);
        match result {
            Ok(deferred) => {
                if let Some(reason) = &deferred {
                    run.report.errors.push(defer_note(reason));
                }
                let ok = deferred.is_none();
                p.runs
                    .update_run(t, run.id, &run.report, Some((p.clock.now(), ok)))
                    .await?;
                Ok(SyncOutcome {
                    run_id: run.id,
                    status: deferred.map_or(RunStatus::Completed, RunStatus::Deferred),
                    report: run.report,
                })
            }
            Err(e) => {
                run.report.errors.push(describe(&e));
                // Best effort: the original error is what the caller must see.
                let _ = p
                    .runs
                    .update_run(t, run.id, &run.report, Some((p.clock.now(), false)))
                    .await;
                Err(e)
            }
        }
    }

    /// C3: may background (or write-back) work spend API requests now? "Ours" is what this
    /// process sent for the tenant over Salesforce's rolling 24 hours.
    ///
    /// An observation older than [`USAGE_MAX_AGE`] is not used (see there).
    fn budget(&self, t: &TenantId, priority: Priority, run: &Run) -> Option<DeferReason> {
        self.budget_at(t, priority, run.settings.api_budget_percent)
    }

    fn budget_at(&self, t: &TenantId, priority: Priority, percent: u8) -> Option<DeferReason> {
        let now = self.ports.clock.now();
        let max_age = TimeDelta::from_std(USAGE_MAX_AGE).unwrap_or(TimeDelta::MAX);
        let usage = self
            .ports
            .usage
            .usage(t)
            .filter(|u| now.signed_duration_since(u.observed_at) <= max_age);
        let ours = self.ports.usage.requests_last_24h(t);
        match may_spend(priority, usage, ours, percent) {
            Spend::Allowed => None,
            Spend::Defer => Some(DeferReason::Budget),
        }
    }

    /// Steps 2–7 of the run. `Ok(Some(_))` is a deferral.
    async fn import(
        &self,
        t: &TenantId,
        kind: SyncKind,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
        run: &mut Run,
    ) -> Result<Option<DeferReason>, SyncError> {
        if let Some(reason) = self.budget(t, Priority::Background, run) {
            return Ok(Some(reason));
        }
        let p = &self.ports;
        let objects = run.settings.sync_targets.objects();
        // R10: all or nothing, before any page.
        p.reader.check_field_access(t, &objects).await?;
        // R23: owners are resolved against the directory this refreshes.
        let users = p.reader.active_users(t).await?;
        p.directory.save_users(t, &users).await?;

        for object in objects {
            let watermark = p.customers.watermark(t, object).await?;
            let now = p.clock.now();
            // An incremental run without a watermark has never imported this object: it
            // imports it (window and filters of the initial import) instead of reading the
            // whole history.
            let query = match (kind, watermark) {
                (SyncKind::Incremental, Some(wm)) => {
                    let since = wm.checked_sub_signed(
                        TimeDelta::from_std(self.options.overlap).unwrap_or(TimeDelta::MAX),
                    );
                    if let Some(since) = since {
                        self.deletions(t, object, since, now, run).await?;
                    }
                    RecordQuery {
                        object,
                        since,
                        modified_after: None,
                        only_with_phone: false,
                        exclude_converted: false,
                    }
                }
                _ => RecordQuery {
                    object,
                    // Resuming an import: the committed watermark is where it stopped.
                    since: watermark,
                    modified_after: now.checked_sub_signed(TimeDelta::days(i64::from(
                        run.settings.import_window_days,
                    ))),
                    only_with_phone: true,
                    exclude_converted: true,
                },
            };
            // Incremental semantics (all changed records) also follow conversions (R15).
            let follow_conversions = !query.exclude_converted;
            if let Some(reason) = self
                .pages(t, &query, follow_conversions, watermark, progress, run)
                .await?
            {
                return Ok(Some(reason));
            }
        }
        Ok(None)
    }

    /// Pages through every record the query matches (R16: no 2,000 cap), committing every
    /// [`SyncOptions::records_per_commit`] records (whole pages) in one transaction.
    ///
    /// Pipelined: while one batch is stored, the next is fetched and read (the adapter parses
    /// off the async threads), looked up and mostly decided ([`Self::prepare`]), so
    /// Salesforce, the decisions and the store work at the same time. Pages are fetched ahead
    /// only while the budget (C3) and the cap allow reading them; a run that stops early
    /// drops what it read ahead, which the next run reads again from the committed watermark.
    async fn pages(
        &self,
        t: &TenantId,
        query: &RecordQuery,
        follow_conversions: bool,
        mut watermark: Option<DateTime<Utc>>,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
        run: &mut Run,
    ) -> Result<Option<DeferReason>, SyncError> {
        let p = &self.ports;
        let cap = if follow_conversions {
            None
        } else {
            run.settings.import_cap
        };
        let percent = run.settings.api_budget_percent;
        let mut ahead: Option<Result<(Batch, Early), SyncError>> = None;
        let mut cursor: Option<PageCursor> = None;
        let mut seen_here = 0u64;
        loop {
            self.renew(t, &run.lease).await?;
            if let Some(reason) = self.budget(t, Priority::Background, run) {
                return Ok(Some(reason));
            }
            let room = cap.map(|cap| cap.saturating_sub(run.report.seen));
            if room == Some(0) {
                return Ok(None);
            }
            let (batch, early) = match ahead.take() {
                Some(read) => read?,
                None => {
                    let batch = self
                        .read_batch(t, query, cursor.take(), room, percent, &run.lease)
                        .await?;
                    // Nothing is being stored: every record is decided now.
                    let early = self
                        .prepare(
                            t,
                            &batch,
                            follow_conversions,
                            &Touched::default(),
                            &mut run.index,
                        )
                        .await?;
                    (batch, early)
                }
            };
            let mut decided = self
                .finish_decide(t, &batch, early, follow_conversions, &mut run.index)
                .await?;
            let Batch {
                records,
                next,
                total_size,
                deferred,
                ..
            } = batch;
            seen_here += records.len() as u64;
            run.report.seen += records.len() as u64;
            // Records come ordered by (SystemModstamp, Id): the last one is how far we got.
            // Never move the watermark back (an incremental page may lie inside the overlap).
            if let Some(last) = records.last() {
                let next = watermark.map_or(last.system_modstamp, |w| w.max(last.system_modstamp));
                watermark = Some(next);
                decided.changes.watermark = Some((query.object, next));
            }
            drop(records);
            let room = cap.map(|cap| cap.saturating_sub(run.report.seen));
            let next = next.filter(|_| room != Some(0));
            let read_ahead = self.options.read_ahead
                && next.is_some()
                && deferred.is_none()
                && self.budget_at(t, Priority::Background, percent).is_none();

            let report = run.committed(&decided);
            let touched = std::mem::take(&mut decided.touched);
            let changes = decided.changes;
            let (run_id, requests_before) = (run.id, run.requests_before);
            let store = async move {
                p.customers.apply_changes(t, changes).await?;
                let mut report = report;
                report.api_requests = p.usage.requests_sent(t).saturating_sub(requests_before);
                p.runs.update_run(t, run_id, &report, None).await?;
                Ok::<SyncReport, SyncError>(report)
            };
            match next {
                Some(next) if read_ahead => {
                    // The next batch is read, looked up and mostly decided while this one is
                    // stored; `touched` says which of its records must wait for the commit.
                    let (index, lease) = (&mut run.index, &run.lease);
                    let read = async {
                        let batch = self
                            .read_batch(t, query, Some(next), room, percent, lease)
                            .await?;
                        let early = self
                            .prepare(t, &batch, follow_conversions, &touched, index)
                            .await?;
                        Ok((batch, early))
                    };
                    let (stored, read) = futures::future::join(store, read).await;
                    run.report = stored?;
                    ahead = Some(read);
                }
                Some(next) => {
                    run.report = store.await?;
                    cursor = Some(next);
                }
                None => run.report = store.await?,
            }
            progress(SyncProgress {
                object: query.object,
                seen: seen_here,
                total: total_size,
            });
            if let Some(reason) = deferred {
                return Ok(Some(reason));
            }
            if ahead.is_none() && cursor.is_none() {
                return Ok(None);
            }
        }
    }

    /// Takes or renews this holder's lease on the tenant's `sync` lock; `false` when another
    /// holder has it.
    async fn take_lease(&self, t: &TenantId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.ports
            .locks
            .try_lock(
                t,
                LOCK_KEY,
                &self.options.holder,
                self.options.lock_ttl,
                now,
            )
            .await
    }

    /// Renews the run's lease on the tenant's `sync` lock (R16: one run at a time) once a
    /// third of it has passed since it was last taken: the lease is a row the store writes,
    /// and renewing before every page made each page wait for the commit in progress.
    async fn renew(&self, t: &TenantId, lease: &Lease) -> Result<(), SyncError> {
        let now = self.ports.clock.now();
        let due = TimeDelta::from_std(self.options.lock_ttl / 3).unwrap_or(TimeDelta::MAX);
        if now.signed_duration_since(lease.taken_at()) < due {
            return Ok(());
        }
        if self.take_lease(t, now).await? {
            lease.taken(now);
            Ok(())
        } else {
            Err(SyncError::LockLost)
        }
    }

    /// Reads pages from `cursor` (the query's first page for `None`) until
    /// [`SyncOptions::records_per_commit`] records, the last page, `room` records (the cap),
    /// or until C3 says to stop spending; the rest stays behind `next`.
    async fn read_batch(
        &self,
        t: &TenantId,
        query: &RecordQuery,
        mut cursor: Option<PageCursor>,
        room: Option<u64>,
        percent: u8,
        lease: &Lease,
    ) -> Result<Batch, SyncError> {
        let limit = room.map_or(usize::MAX, |r| usize::try_from(r).unwrap_or(usize::MAX));
        // Room for a full commit and one more page, so the batch is never moved to grow.
        let expect = self
            .options
            .records_per_commit
            .saturating_add(2_000)
            .min(limit);
        let mut records: Vec<SfRecord> = Vec::with_capacity(expect);
        let mut phones: Vec<ParsedPhone> = Vec::with_capacity(expect);
        loop {
            if !records.is_empty() {
                // Several slow pages may go into one commit: the lease must outlast each.
                self.renew(t, lease).await?;
            }
            let page = self
                .ports
                .reader
                .fetch_page(t, query, cursor.take())
                .await?;
            phones.extend(parse_phones(&page.records));
            records.extend(page.records);
            let mut batch = Batch {
                records,
                phones,
                next: page.next,
                total_size: page.total_size,
                deferred: None,
            };
            if batch.records.len() >= limit {
                batch.records.truncate(limit);
                batch.phones.truncate(limit);
                batch.next = None;
                return Ok(batch);
            }
            if batch.next.is_none() || batch.records.len() >= self.options.records_per_commit {
                return Ok(batch);
            }
            batch.deferred = self.budget_at(t, Priority::Background, percent);
            if batch.deferred.is_some() {
                return Ok(batch);
            }
            cursor = batch.next;
            records = batch.records;
            phones = batch.phones;
        }
    }

    /// R16: records deleted or merged away since `since` unlink their customer. A merge
    /// loser's customer is relinked to the merge winner instead when the winner carries the
    /// customer's number and has no customer of its own (the same person, one record fewer);
    /// otherwise it is unlinked and the winner gets its customer from its own page.
    async fn deletions(
        &self,
        t: &TenantId,
        object: SfObject,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        run: &mut Run,
    ) -> Result<(), SyncError> {
        let p = &self.ports;
        let deleted = p.reader.deleted_since(t, object, since, until).await?;
        if deleted.is_empty() {
            return Ok(());
        }
        let refs: Vec<SalesforceRecordRef> = deleted.iter().map(|d| d.record.clone()).collect();
        let mut book = Book::default();
        book.load(p.customers.find_by_records(t, &refs).await?);
        let winners: Vec<SalesforceRecordRef> = deleted
            .iter()
            .filter(|d| book.linked(&d.record).is_some())
            .filter_map(|d| d.merged_into.clone())
            .map(|id| SalesforceRecordRef { object, id })
            .collect();
        let mut fetched = Vec::new();
        if !winners.is_empty() {
            book.load(p.customers.find_by_records(t, &winners).await?);
            fetched = p.reader.fetch_records(t, &winners).await?;
        }
        let mut page = PageOut::default();
        for d in &deleted {
            run.index.unsee(&d.record);
            page.clear_duplicate(&d.record, &mut run.index);
            let Some(ci) = book.linked(&d.record) else {
                continue;
            };
            let relink = d
                .merged_into
                .as_ref()
                .and_then(|w| fetched.iter().find(|r| &r.record.id == w))
                .filter(|w| book.linked(&w.record).is_none())
                .and_then(|w| Some((w, valid_number(w)?)))
                .filter(|(_, n)| n == &book.get(ci).number);
            match relink {
                Some((winner, number)) => {
                    let merged = merge_incoming(book.get(ci), winner, &number);
                    book.apply(
                        ci,
                        merged.number,
                        merged.fields,
                        Some(merged.link),
                        merged.dirty,
                    );
                    run.index.see(winner, number.e164());
                    page.clear_duplicate(&winner.record, &mut run.index);
                }
                None => book.unlink(ci),
            }
        }
        let decided = page.into_decided(book);
        let report = run.committed(&decided);
        p.customers.apply_changes(t, decided.changes).await?;
        run.report = report;
        Ok(())
    }

    /// Reads the book for the batch's records `idx`: the customers linked to them and the
    /// customers holding their numbers, and (following conversions, R15) the Contacts that
    /// linked converted Leads became. IO: one `find_by_records`, at most one
    /// `fetch_records`, one `find_by_numbers`.
    async fn load_book(
        &self,
        t: &TenantId,
        b: &Batch,
        idx: &[usize],
        follow_conversions: bool,
    ) -> Result<(Book, Vec<SfRecord>), SyncError> {
        let p = &self.ports;
        let records = &b.records;
        let mut book = Book::default();
        let mut refs: Vec<SalesforceRecordRef> =
            idx.iter().map(|&i| records[i].record.clone()).collect();
        if follow_conversions {
            refs.extend(
                idx.iter()
                    .map(|&i| &records[i])
                    .filter(|r| is_converted(r))
                    .filter_map(converted_to),
            );
        }
        if !refs.is_empty() {
            book.load(p.customers.find_by_records(t, &refs).await?);
        }

        // R15: only a converted Lead that is linked needs its Contact.
        let mut contacts: Vec<SfRecord> = Vec::new();
        if follow_conversions {
            let wanted: Vec<SalesforceRecordRef> = idx
                .iter()
                .map(|&i| &records[i])
                .filter(|r| is_converted(r) && book.linked(&r.record).is_some())
                .filter_map(converted_to)
                .collect();
            if !wanted.is_empty() {
                contacts = p.reader.fetch_records(t, &wanted).await?;
            }
        }

        let mut numbers: Vec<String> = idx
            .iter()
            .filter_map(|&i| b.phones[i].as_ref()?.as_ref().ok())
            .map(|n| n.e164().to_owned())
            .chain(
                contacts
                    .iter()
                    .filter_map(valid_number)
                    .map(|n| n.e164().to_owned()),
            )
            .collect();
        numbers.sort();
        numbers.dedup();
        if !numbers.is_empty() {
            book.load(p.customers.find_by_numbers(t, &numbers).await?);
        }
        Ok((book, contacts))
    }

    /// Reads the book for a batch and decides every record whose decision the commit in
    /// flight cannot change; the others wait for [`Self::finish_decide`]. `touched` holds the
    /// keys of the rows that commit writes (empty when nothing is being stored, and then
    /// everything is decided here).
    ///
    /// Sound because a lookup by a key no row of the commit had or gets returns the same
    /// rows, unchanged, before and after it, and records are decided early only when none of
    /// their keys, nor of the records they share a customer, number or record with, is
    /// touched ([`dependent`]).
    async fn prepare(
        &self,
        t: &TenantId,
        b: &Batch,
        follow_conversions: bool,
        touched: &Touched,
        ix: &mut RunIndex,
    ) -> Result<Early, SyncError> {
        let all: Vec<usize> = (0..b.records.len()).collect();
        if !touched.is_empty() && follow_conversions && b.records.iter().any(is_converted) {
            // A conversion's Contact, read later, may carry any number: decide the batch
            // after the commit.
            return Ok(Early {
                decided: Decided::default(),
                later: all,
            });
        }
        let (book, contacts) = self.load_book(t, b, &all, follow_conversions).await?;
        if touched.is_empty() {
            return Ok(Early {
                decided: decide_loaded(book, b, &all, &contacts, follow_conversions, ix),
                later: Vec::new(),
            });
        }
        let later = dependent(b, &book, touched, ix);
        let mut is_later = vec![false; all.len()];
        for &i in &later {
            is_later[i] = true;
        }
        let now: Vec<usize> = all.into_iter().filter(|&i| !is_later[i]).collect();
        Ok(Early {
            decided: decide_loaded(book, b, &now, &contacts, follow_conversions, ix),
            later,
        })
    }

    /// Decides the records [`Self::prepare`] left for after the previous commit, on a book
    /// read now, and adds them to the batch's decisions.
    async fn finish_decide(
        &self,
        t: &TenantId,
        b: &Batch,
        early: Early,
        follow_conversions: bool,
        ix: &mut RunIndex,
    ) -> Result<Decided, SyncError> {
        let mut decided = early.decided;
        if !early.later.is_empty() {
            let (book, contacts) = self
                .load_book(t, b, &early.later, follow_conversions)
                .await?;
            decided.merge(decide_loaded(
                book,
                b,
                &early.later,
                &contacts,
                follow_conversions,
                ix,
            ));
        }
        Ok(decided)
    }

    /// R11: one write-back round. `Ok(Some(_))` is a deferral (C3). Per-record failures are
    /// recorded with their explanation and stay dirty for the next round.
    async fn write_back_round(
        &self,
        t: &TenantId,
        run: &mut Run,
    ) -> Result<Option<DeferReason>, SyncError> {
        if let Some(reason) = self.budget(t, Priority::WriteBack, run) {
            return Ok(Some(reason));
        }
        let p = &self.ports;
        let pending = p
            .customers
            .pending_write_back(t, self.options.write_back_limit)
            .await?;
        let mut updates = Vec::new();
        let mut sent: Vec<(CustomerId, Option<DateTime<Utc>>)> = Vec::new();
        for c in pending {
            let Some(link) = &c.link else {
                *run.report
                    .skipped
                    .entry(skip::NOT_LINKED.to_owned())
                    .or_default() += 1;
                continue;
            };
            let changes = write_back_changes(&c, link.record.object);
            if changes.is_empty() {
                // Only import-only fields were dirty (a Contact's company): nothing to send,
                // and they must not stay pending forever.
                p.customers.mark_written_back(t, c.id, c.edited_at).await?;
                continue;
            }
            updates.push(RecordUpdate {
                record: link.record.clone(),
                changes,
            });
            sent.push((c.id, c.edited_at));
        }
        if updates.is_empty() {
            return Ok(None);
        }
        let results = p.writer.update_records(t, &updates).await?;
        for (i, (update, (id, edited_at))) in updates.iter().zip(sent).enumerate() {
            match results.get(i) {
                Some(Ok(())) => {
                    p.customers.mark_written_back(t, id, edited_at).await?;
                    run.report.written_back += 1;
                }
                Some(Err(e)) => {
                    let f = explain(e);
                    let fix = f.fix_en.map(|x| format!(" {x}")).unwrap_or_default();
                    run.report.errors.push(format!(
                        "write-back of customer {id} to {}: {}{fix}",
                        update.record, f.message_en
                    ));
                }
                None => run.report.errors.push(format!(
                    "write-back of customer {id} to {}: Salesforce returned no result; it stays pending",
                    update.record
                )),
            }
        }
        Ok(None)
    }
}

fn defer_note(reason: &DeferReason) -> String {
    match reason {
        DeferReason::Budget => "deferred (C3): callsync's share of the org's daily API allowance \
                                is used up for background work; the next run resumes from the \
                                last committed page"
            .to_owned(),
        DeferReason::Throttled(cause) => format!(
            "deferred (C3): Salesforce refused further requests ({cause}); the next run resumes \
             from the last committed page"
        ),
    }
}

/// The run's error text for admins: Salesforce errors with their explanation and the setting
/// to change (R10, R40), in English and Japanese.
fn describe(e: &SyncError) -> String {
    match e {
        SyncError::Salesforce(sf) => {
            let f = explain(sf);
            let en = match f.fix_en {
                Some(fix) => format!("{} {fix}", f.message_en),
                None => f.message_en,
            };
            let ja = match f.fix_ja {
                Some(fix) => format!("{}{fix}", f.message_ja),
                None => f.message_ja,
            };
            format!("{en} / {ja}")
        }
        other => other.to_string(),
    }
}

fn valid_number(r: &SfRecord) -> Option<PhoneNumber> {
    r.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok())
}

fn candidate(r: &SfRecord) -> Seen {
    Seen {
        candidate: Candidate {
            record: r.record.clone(),
            last_modified: r.last_modified,
            linked: false,
        },
        system_modstamp: r.system_modstamp,
    }
}

/// A record's Phone as normalized (R13): `None` when it has none.
type ParsedPhone = Option<Result<PhoneNumber, PhoneError>>;

/// Normalizing is the costly part of a record: once per record, as its page arrives.
fn parse_phones(records: &[SfRecord]) -> Vec<ParsedPhone> {
    records
        .iter()
        .map(|r| r.phone.as_deref().map(PhoneNumber::parse))
        .collect()
}

/// Pages read for one commit.
struct Batch {
    records: Vec<SfRecord>,
    /// `records[i]`'s Phone, normalized while the previous batch was being stored.
    phones: Vec<ParsedPhone>,
    /// Where reading goes on; `None` after the last page (or at the cap).
    next: Option<PageCursor>,
    total_size: u64,
    /// C3 stopped the reading before the batch was full: store it, then end the run.
    deferred: Option<DeferReason>,
}

/// A batch's decisions made before the previous commit was stored (see
/// [`CustomerSync::prepare`]), and the records left for after it.
struct Early {
    decided: Decided,
    /// Indexes into the batch's records, in page order.
    later: Vec<usize>,
}

fn is_converted(r: &SfRecord) -> bool {
    r.record.object == SfObject::Lead && r.is_converted
}

fn converted_to(r: &SfRecord) -> Option<SalesforceRecordRef> {
    r.converted_contact_id
        .clone()
        .map(|id| SalesforceRecordRef {
            object: SfObject::Contact,
            id,
        })
}

/// Decides the batch's records `idx` with the pure rules (R11–R15) on `book` (read by
/// [`CustomerSync::load_book`] for at least these records); returns the changes, unapplied.
fn decide_loaded(
    mut book: Book,
    b: &Batch,
    idx: &[usize],
    contacts: &[SfRecord],
    follow_conversions: bool,
    ix: &mut RunIndex,
) -> Decided {
    let records = &b.records;
    let mut page = PageOut::default();
    // Linked records first: a record moving away frees its number before newcomers to that
    // number are decided (see the module docs).
    let (linked, unlinked): (Vec<usize>, Vec<usize>) = idx
        .iter()
        .partition(|&&i| book.linked(&records[i].record).is_some());
    for i in linked.into_iter().chain(unlinked) {
        let r = &records[i];
        if is_converted(r) {
            let contact = converted_to(r).and_then(|c| contacts.iter().find(|x| x.record == c));
            match book.linked(&r.record) {
                Some(ci) if follow_conversions => {
                    page.conversion(&mut book, ci, r, contact, ix);
                }
                _ => {
                    ix.unsee(&r.record);
                    page.clear_duplicate(&r.record, ix);
                    page.skip(skip::CONVERTED);
                }
            }
            continue;
        }
        match &b.phones[i] {
            Some(Ok(number)) => page.incoming(&mut book, r, number, ix),
            Some(Err(PhoneError::Invalid(_))) => {
                page.numberless(&mut book, r, skip::INVALID_NUMBER, ix);
            }
            None | Some(Err(PhoneError::NoNumber)) => {
                page.numberless(&mut book, r, skip::NO_PHONE, ix);
            }
        }
    }
    page.into_decided(book)
}

/// The records of `b` whose decision may depend on the commit that writes `touched`, in
/// page order: those with a number or record in `touched`, and every record connected to
/// one of them through a number or record (the rules decide such records together: R14,
/// R18). A record's keys are its record, its number, the number the run last saw it with,
/// and the number and record of the customers `book` links to it or has holding its number.
///
/// `book` was read before that commit. A row the commit writes has all its numbers and
/// records, before and after, in `touched`, so any record that reaches such a row through
/// a key is dependent; the others only see rows the commit leaves as they are.
fn dependent(b: &Batch, book: &Book, touched: &Touched, ix: &RunIndex) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    enum Key {
        Number(u64),
        Record(RecKey),
    }
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let n = b.records.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut first: HashMap<Key, usize> = HashMap::default();
    let mut seeds = Vec::new();
    let mut keys = Vec::with_capacity(6);
    for (i, r) in b.records.iter().enumerate() {
        keys.clear();
        keys.push(Key::Record(RecKey::of(&r.record)));
        if let Some(Ok(number)) = &b.phones[i] {
            keys.push(Key::Number(number_key(number.e164())));
            if let Some(link) = book
                .holder(number.e164())
                .and_then(|h| book.get(h).link.as_ref())
            {
                keys.push(Key::Record(RecKey::of(&link.record)));
            }
        }
        if let Some(ci) = book.linked(&r.record) {
            keys.push(Key::Number(number_key(book.get(ci).number.e164())));
        }
        if let Some(last) = ix.number_of(&r.record) {
            keys.push(Key::Number(last));
        }
        let mut seed = false;
        for &k in &keys {
            seed |= match k {
                Key::Number(x) => touched.numbers.contains(&x),
                Key::Record(x) => touched.records.contains(&x),
            };
            match first.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, *o.get()));
                    parent[a] = b;
                }
            }
        }
        if seed {
            seeds.push(i);
        }
    }
    let seeded: HashSet<usize> = seeds.into_iter().map(|i| root(&mut parent, i)).collect();
    (0..n)
        .filter(|&i| seeded.contains(&root(&mut parent, i)))
        .collect()
}

/// When the run last took its lease, in milliseconds since the epoch; shared by the reads
/// and the commits that run side by side.
struct Lease(std::sync::atomic::AtomicI64);

impl Lease {
    fn new(at: DateTime<Utc>) -> Self {
        Self(std::sync::atomic::AtomicI64::new(at.timestamp_millis()))
    }
    fn taken_at(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(self.0.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
    fn taken(&self, at: DateTime<Utc>) {
        self.0
            .store(at.timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// The state of one run.
struct Run {
    id: i64,
    lease: Lease,
    settings: IntegrationSettings,
    requests_before: u64,
    report: SyncReport,
    index: RunIndex,
}

impl Run {
    /// The report once `d` is committed (R17 counts what was committed). Taken right after
    /// `d` is decided, before the next batch is decided while `d` is being stored.
    fn committed(&self, d: &Decided) -> SyncReport {
        let mut report = self.report.clone();
        let c = &d.changes;
        report.created += c.creates.len() as u64;
        report.updated += c.updates.len() as u64;
        report.unlinked += c.unlinks.len() as u64;
        report.unchanged += d.unchanged;
        for (reason, n) in &d.skipped {
            *report.skipped.entry((*reason).to_owned()).or_default() += n;
        }
        // Counted from the run's current duplicate set, not from loss events: which record
        // "lost" first depends on page order, the final set does not (R14).
        let duplicates = self.index.duplicates;
        report.duplicates = duplicates;
        if duplicates > 0 {
            report
                .skipped
                .insert(skip::DUPLICATE.to_owned(), duplicates);
        } else {
            report.skipped.remove(skip::DUPLICATE);
        }
        report
    }
}

#[derive(Debug, Clone)]
struct Seen {
    candidate: Candidate,
    system_modstamp: DateTime<Utc>,
}

/// What a run remembers across pages so that R14 does not depend on page order (module docs).
///
/// Kept compact because it holds an entry per record read (a million in a large initial
/// import): numbers are keyed by their E.164 digits as a `u64`, a number carried by a single
/// record holds that one entry inline (no list), records are kept as [`RecKey`] /
/// [`Packed`] (the 15 identifying characters of the id, times in milliseconds), and the
/// per-record facts (the number it was last seen with, `fresh`, duplicate) share one word.
#[derive(Default)]
struct RunIndex {
    /// E.164 digits → the records of this run that carry it.
    seen: Settling<u64, Carriers>,
    /// Record → what the run knows about it. Entries with nothing to say are removed.
    records: Settling<RecKey, Mark>,
    /// How many records have `Mark::duplicate` set.
    duplicates: u64,
}

/// A record reference in 16 bytes: the 15 characters that identify it, and its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RecKey {
    id: [u8; 15],
    object: SfObject,
}

impl Default for RecKey {
    /// A placeholder while [`Settling`] merges; never a record's key.
    fn default() -> Self {
        Self {
            id: [0; 15],
            object: SfObject::Lead,
        }
    }
}

impl RecKey {
    fn of(r: &SalesforceRecordRef) -> Self {
        Self {
            id: r.id.id15(),
            object: r.object,
        }
    }
}

/// A [`Seen`] as the index keeps it: 32 bytes instead of 48. Salesforce times have
/// millisecond precision, so nothing is lost.
#[derive(Debug, Clone, Copy)]
struct Packed {
    key: RecKey,
    last_modified_ms: i64,
    system_modstamp_ms: i64,
}

impl Packed {
    fn of(s: &Seen) -> Self {
        Self {
            key: RecKey::of(&s.candidate.record),
            last_modified_ms: s.candidate.last_modified.timestamp_millis(),
            system_modstamp_ms: s.system_modstamp.timestamp_millis(),
        }
    }

    fn seen(&self) -> Seen {
        let time =
            |ms| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC);
        Seen {
            candidate: Candidate {
                record: SalesforceRecordRef {
                    object: self.key.object,
                    id: crate::SalesforceId::from_id15(self.key.id),
                },
                last_modified: time(self.last_modified_ms),
                linked: false,
            },
            system_modstamp: time(self.system_modstamp_ms),
        }
    }
}

/// The records of this run that carry one number.
enum Carriers {
    One(Packed),
    Many(Vec<Packed>),
}

impl Default for Carriers {
    /// None: the number is free again.
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

/// An entry of a [`Settling`] map that may hold nothing (its default).
trait Slot: Default {
    fn is_vacant(&self) -> bool;
}

impl Slot for Carriers {
    fn is_vacant(&self) -> bool {
        list_is_empty(self)
    }
}

impl Slot for Mark {
    fn is_vacant(&self) -> bool {
        *self == Mark::default()
    }
}

/// A map for the run index's million small entries: most of them sit in a vector sorted by
/// key (no empty buckets, no control bytes), the newest in a small hash map that is merged
/// into the vector whenever it holds a sixteenth as many. A hash map of a million entries
/// doubles in one step, holding the old and the new table at once (+50% for an instant);
/// the vector grows by reallocation and the merge moves entries in place. Removed entries
/// of the vector stay as vacant slots until the next merge.
struct Settling<K, V> {
    recent: HashMap<K, V>,
    settled: Vec<(K, V)>,
    /// Every [`FENCE`]th key of `settled`: a search looks here first (small enough to stay
    /// in the CPU's cache), then in one stretch of `FENCE` entries.
    fences: Vec<K>,
}

const FENCE: usize = if cfg!(test) { 4 } else { 64 };

impl<K, V> Default for Settling<K, V> {
    fn default() -> Self {
        Self {
            recent: HashMap::default(),
            settled: Vec::new(),
            fences: Vec::new(),
        }
    }
}

impl<K: Copy + Default + Ord + std::hash::Hash, V: Slot> Settling<K, V> {
    /// Entries the hash map takes before it is merged, at least (tests merge often).
    const MIN_RECENT: usize = if cfg!(test) { 3 } else { 32_768 };

    fn find(&self, k: &K) -> Option<usize> {
        let stretch = self.fences.partition_point(|f| f <= k).checked_sub(1)?;
        let start = stretch * FENCE;
        let end = (start + FENCE).min(self.settled.len());
        let at = self.settled[start..end]
            .binary_search_by(|(x, _)| x.cmp(k))
            .ok()?;
        Some(start + at)
    }

    fn get(&self, k: &K) -> Option<&V> {
        match self.find(k) {
            Some(i) => Some(&self.settled[i].1),
            None => self.recent.get(k),
        }
        .filter(|v| !v.is_vacant())
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        match self.find(k) {
            Some(i) => Some(&mut self.settled[i].1),
            None => self.recent.get_mut(k),
        }
        .filter(|v| !v.is_vacant())
    }

    /// `k`'s entry, vacant when there was none.
    fn slot(&mut self, k: K) -> &mut V {
        self.settle();
        match self.find(&k) {
            Some(i) => &mut self.settled[i].1,
            None => self.recent.entry(k).or_default(),
        }
    }

    fn remove(&mut self, k: &K) {
        match self.find(k) {
            Some(i) => self.settled[i].1 = V::default(),
            None => {
                self.recent.remove(k);
            }
        }
    }

    /// Merges the hash map into the vector once it is large enough.
    fn settle(&mut self) {
        if self.recent.len() < (self.settled.len() / 16).max(Self::MIN_RECENT) {
            return;
        }
        self.settled.retain(|(_, v)| !v.is_vacant());
        let mut new: Vec<(K, V)> = self
            .recent
            .drain()
            .filter(|(_, v)| !v.is_vacant())
            .collect();
        new.sort_unstable_by_key(|e| e.0);
        // Merge from the back: [0, old) are the vector's entries not yet placed, [old, w)
        // placeholders, [w, ..) the merged tail. Keys are distinct: a key is in one part.
        let mut old = self.settled.len();
        let mut w = old + new.len();
        self.settled.reserve(new.len());
        self.settled.resize_with(w, || (K::default(), V::default()));
        while let Some(last) = new.last() {
            if old > 0 && self.settled[old - 1].0 > last.0 {
                self.settled.swap(old - 1, w - 1);
                old -= 1;
            } else if let Some(entry) = new.pop() {
                self.settled[w - 1] = entry;
            }
            w -= 1;
        }
        self.fences = self
            .settled
            .iter()
            .step_by(FENCE)
            .map(|(k, _)| *k)
            .collect();
    }
}

/// What the run knows about one record, in one word: the number it was last seen with
/// (`number_key`, 0 for none: E.164 digits never start with 0, and 15 digits need 50 bits),
/// whether this run linked it to a customer it was not linked to before (`fresh`), and
/// whether this run recorded it as a duplicate and it still is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mark(u64);

impl Mark {
    const FRESH: u64 = 1 << 62;
    const DUPLICATE: u64 = 1 << 63;
    const NUMBER: u64 = (1 << 62) - 1;

    fn take_number(&mut self) -> Option<u64> {
        let n = self.0 & Self::NUMBER;
        self.0 &= !Self::NUMBER;
        (n != 0).then_some(n)
    }
    fn set_number(&mut self, n: u64) {
        self.0 = (self.0 & !Self::NUMBER) | (n & Self::NUMBER);
    }
    fn flag(self, bit: u64) -> bool {
        self.0 & bit != 0
    }
    /// Sets `bit` to `on`; returns whether it was set before.
    fn set_flag(&mut self, bit: u64, on: bool) -> bool {
        let was = self.flag(bit);
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
        was
    }
}

/// E.164 (`+` and at most 15 digits, the first not 0) as a number; distinct E.164 strings
/// give distinct, non-zero keys.
fn number_key(e164: &str) -> u64 {
    e164.bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u64, |acc, b| {
            acc.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
        })
}

impl RunIndex {
    fn see(&mut self, r: &SfRecord, e164: &str) {
        self.unsee(&r.record);
        let key = number_key(e164);
        let packed = Packed::of(&candidate(r));
        let c = self.seen.slot(key);
        match c {
            Carriers::One(first) => {
                *c = Carriers::Many(vec![*first, packed]);
            }
            Carriers::Many(list) if list.is_empty() => *c = Carriers::One(packed),
            Carriers::Many(list) => list.push(packed),
        }
        self.records.slot(RecKey::of(&r.record)).set_number(key);
    }

    fn unsee(&mut self, record: &SalesforceRecordRef) {
        let Some(old) = self.update(record, Mark::take_number) else {
            return;
        };
        let rk = RecKey::of(record);
        if let Some(c) = self.seen.get_mut(&old) {
            let empty = match c {
                Carriers::One(s) => s.key == rk,
                Carriers::Many(list) => {
                    list.retain(|s| s.key != rk);
                    if list.len() == 1
                        && let Some(last) = list.pop()
                    {
                        *c = Carriers::One(last);
                    }
                    list_is_empty(c)
                }
            };
            if empty {
                self.seen.remove(&old);
            }
        }
    }

    /// The records of this run that carry `e164`.
    fn carriers(&self, e164: &str) -> Vec<Seen> {
        match self.seen.get(&number_key(e164)) {
            None => Vec::new(),
            Some(Carriers::One(s)) => vec![s.seen()],
            Some(Carriers::Many(list)) => list.iter().map(Packed::seen).collect(),
        }
    }

    /// Changes the record's mark; drops the entry when nothing is left to remember.
    fn update<T>(&mut self, record: &SalesforceRecordRef, f: impl FnOnce(&mut Mark) -> T) -> T {
        let rk = RecKey::of(record);
        match self.records.get_mut(&rk) {
            Some(m) => {
                let out = f(m);
                if m.is_vacant() {
                    self.records.remove(&rk);
                }
                out
            }
            None => {
                let mut m = Mark::default();
                let out = f(&mut m);
                if !m.is_vacant() {
                    *self.records.slot(rk) = m;
                }
                out
            }
        }
    }

    /// The number (`number_key`) this run last saw the record with.
    fn number_of(&self, record: &SalesforceRecordRef) -> Option<u64> {
        let m = self.records.get(&RecKey::of(record))?;
        let n = m.0 & Mark::NUMBER;
        (n != 0).then_some(n)
    }

    fn is_fresh(&self, record: &SalesforceRecordRef) -> bool {
        self.records
            .get(&RecKey::of(record))
            .is_some_and(|m| m.flag(Mark::FRESH))
    }

    fn set_fresh(&mut self, record: &SalesforceRecordRef, fresh: bool) {
        self.update(record, |m| m.set_flag(Mark::FRESH, fresh));
    }

    fn set_duplicate(&mut self, record: &SalesforceRecordRef, duplicate: bool) {
        let was = self.update(record, |m| m.set_flag(Mark::DUPLICATE, duplicate));
        match (was, duplicate) {
            (false, true) => self.duplicates += 1,
            (true, false) => self.duplicates -= 1,
            _ => {}
        }
    }
}

fn list_is_empty(c: &Carriers) -> bool {
    matches!(c, Carriers::Many(list) if list.is_empty())
}

/// The customers one page touches: loaded by the page's lookups, changed in memory, then
/// turned into one `CustomerChanges`. Keeps R18 (one customer per number) while deciding.
#[derive(Default)]
struct Book {
    entries: Vec<Entry>,
    by_number: HashMap<String, usize>,
    by_record: HashMap<SalesforceRecordRef, usize>,
    by_id: HashMap<CustomerId, usize>,
}

struct Entry {
    customer: Customer,
    /// As loaded; `None` for a customer created by this page.
    original: Option<Customer>,
}

impl Book {
    fn load(&mut self, customers: Vec<Customer>) {
        for c in customers {
            if self.by_id.contains_key(&c.id) {
                continue;
            }
            let i = self.entries.len();
            self.by_id.insert(c.id, i);
            self.index(i, &c);
            self.entries.push(Entry {
                original: Some(c.clone()),
                customer: c,
            });
        }
    }

    fn index(&mut self, i: usize, c: &Customer) {
        self.by_number.insert(c.number.e164().to_owned(), i);
        if let Some(link) = &c.link {
            self.by_record.insert(link.record.clone(), i);
        }
    }

    fn deindex(&mut self, i: usize) {
        let c = &self.entries[i].customer;
        if self.by_number.get(c.number.e164()) == Some(&i) {
            self.by_number.remove(c.number.e164());
        }
        if let Some(link) = &c.link
            && self.by_record.get(&link.record) == Some(&i)
        {
            self.by_record.remove(&link.record);
        }
    }

    fn get(&self, i: usize) -> &Customer {
        &self.entries[i].customer
    }

    fn holder(&self, e164: &str) -> Option<usize> {
        self.by_number.get(e164).copied()
    }

    fn linked(&self, record: &SalesforceRecordRef) -> Option<usize> {
        self.by_record.get(record).copied()
    }

    /// Sets a customer's number, fields, link and dirty set. The caller guarantees that no
    /// other customer holds `number` (R18) and no other customer is linked to `link`.
    fn apply(
        &mut self,
        i: usize,
        number: PhoneNumber,
        fields: CustomerFields,
        link: Option<SfLink>,
        dirty: Vec<SyncedField>,
    ) {
        self.deindex(i);
        let c = &mut self.entries[i].customer;
        c.number = number;
        c.fields = fields;
        c.link = link;
        c.dirty = dirty;
        let c = c.clone();
        self.index(i, &c);
    }

    fn unlink(&mut self, i: usize) {
        self.deindex(i);
        self.entries[i].customer.link = None;
        let c = self.entries[i].customer.clone();
        self.index(i, &c);
    }

    fn create(&mut self, number: PhoneNumber, fields: CustomerFields, link: SfLink) {
        let i = self.entries.len();
        // Never stored: creates are emitted as `NewCustomer`s without an id.
        let placeholder = CustomerId(-1 - i as i64);
        let c = Customer {
            id: placeholder,
            number,
            fields,
            link: Some(link),
            dirty: vec![],
            edited_at: None,
        };
        self.by_id.insert(placeholder, i);
        self.index(i, &c);
        self.entries.push(Entry {
            customer: c,
            original: None,
        });
    }
}

/// What one page decided besides the customers themselves.
#[derive(Default)]
struct PageOut {
    duplicates: Vec<DuplicateEntry>,
    clear_duplicates: Vec<SalesforceRecordRef>,
    /// The members of `clear_duplicates`, for constant-time membership.
    cleared: HashSet<SalesforceRecordRef>,
    /// R17 counts, added to the run's report when these changes are committed.
    skipped: HashMap<&'static str, u64>,
    unchanged: u64,
}

impl PageOut {
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    fn clear_duplicate(&mut self, record: &SalesforceRecordRef, ix: &mut RunIndex) {
        ix.set_duplicate(record, false);
        if self.cleared.insert(record.clone()) {
            self.clear_duplicates.push(record.clone());
        }
    }

    fn duplicate(
        &mut self,
        e164: &str,
        loser: &Seen,
        winner: &SalesforceRecordRef,
        ix: &mut RunIndex,
    ) {
        ix.set_duplicate(&loser.candidate.record, true);
        if self.cleared.remove(&loser.candidate.record) {
            self.clear_duplicates
                .retain(|r| r != &loser.candidate.record);
        }
        self.duplicates
            .retain(|d| d.record != loser.candidate.record);
        self.duplicates.push(DuplicateEntry {
            number: e164.to_owned(),
            record: loser.candidate.record.clone(),
            winner: winner.clone(),
            system_modstamp: loser.system_modstamp,
        });
    }

    /// R12/R13: a record without a usable number forms no customer; the customer linked to
    /// it (if any) is unlinked — unless a newer local edit of the Phone is waiting to be
    /// written back, which will give the record its number again (R11).
    fn numberless(
        &mut self,
        book: &mut Book,
        r: &SfRecord,
        reason: &'static str,
        ix: &mut RunIndex,
    ) {
        self.skip(reason);
        ix.unsee(&r.record);
        self.clear_duplicate(&r.record, ix);
        if let Some(ci) = book.linked(&r.record) {
            let c = book.get(ci);
            let local_phone_wins = c.dirty.contains(&SyncedField::Phone)
                && c.edited_at.is_some_and(|at| at > r.last_modified);
            if !local_phone_wins {
                book.unlink(ci);
                ix.set_fresh(&r.record, false);
            }
        }
    }

    /// R11/R14/R18: a record with a valid number.
    fn incoming(&mut self, book: &mut Book, r: &SfRecord, number: &PhoneNumber, ix: &mut RunIndex) {
        let cr = book.linked(&r.record);
        // The number the record ends up with: a newer local Phone edit keeps the customer's.
        let merged_cr = cr.map(|ci| merge_incoming(book.get(ci), r, number));
        let target = merged_cr
            .as_ref()
            .map_or_else(|| number.clone(), |m| m.number.clone());
        let e164 = target.e164().to_owned();
        ix.see(r, &e164);
        let holder = book.holder(&e164);

        // R14 first clause: linked to the number's customer → it keeps it.
        if let (Some(ci), Some(m)) = (cr, &merged_cr)
            && (holder == Some(ci) || holder.is_none())
        {
            if m.changed {
                book.apply(
                    ci,
                    m.number.clone(),
                    m.fields.clone(),
                    Some(m.link.clone()),
                    m.dirty.clone(),
                );
            } else {
                // The echo of our own write-back, or a re-read inside the overlap (R11).
                self.unchanged += 1;
            }
            self.clear_duplicate(&r.record, ix);
            return;
        }

        let mut candidates: Vec<Seen> = ix.carriers(&e164);
        if let Some(h) = holder
            && let Some(link) = book.get(h).link.clone()
        {
            let before_run = !ix.is_fresh(&link.record);
            match candidates
                .iter_mut()
                .find(|s| s.candidate.record == link.record)
            {
                Some(s) => s.candidate.linked = before_run,
                None => candidates.push(Seen {
                    candidate: Candidate {
                        record: link.record.clone(),
                        // Unknown for a record not seen this run; SystemModstamp bounds it.
                        last_modified: link.system_modstamp.unwrap_or(DateTime::<Utc>::MIN_UTC),
                        linked: before_run,
                    },
                    system_modstamp: link.system_modstamp.unwrap_or(DateTime::<Utc>::MIN_UTC),
                }),
            }
        }
        let plain: Vec<Candidate> = candidates.iter().map(|s| s.candidate.clone()).collect();
        let Some((winner, _)) = choose_winner(&plain) else {
            return;
        };

        if winner.record != r.record {
            if let Some(ci) = cr {
                // Its record now belongs to another number's customer.
                book.unlink(ci);
                ix.set_fresh(&r.record, false);
            }
            if let Some(me) = candidates.iter().find(|s| s.candidate.record == r.record) {
                let me = me.clone();
                self.duplicate(&e164, &me, &winner.record, ix);
            }
            return;
        }

        match holder {
            None => {
                let link = SfLink {
                    record: r.record.clone(),
                    system_modstamp: Some(r.system_modstamp),
                };
                book.create(number.clone(), r.customer_fields(), link);
                ix.set_fresh(&r.record, true);
            }
            Some(h) => {
                if let Some(ci) = cr {
                    book.unlink(ci);
                }
                if let Some(old) = book.get(h).link.clone() {
                    ix.set_fresh(&old.record, false);
                }
                let m = merge_incoming(book.get(h), r, number);
                book.apply(h, m.number, m.fields, Some(m.link), m.dirty);
                ix.set_fresh(&r.record, true);
            }
        }
        self.clear_duplicate(&r.record, ix);
        for loser in candidates.iter().filter(|s| s.candidate.record != r.record) {
            self.duplicate(&e164, loser, &r.record, ix);
        }
    }

    /// R15: a converted Lead linked to customer `ci`; `contact` is its ConvertedContactId as
    /// read now (`None`: gone or unreadable).
    fn conversion(
        &mut self,
        book: &mut Book,
        ci: usize,
        lead: &SfRecord,
        contact: Option<&SfRecord>,
        ix: &mut RunIndex,
    ) {
        ix.unsee(&lead.record);
        self.clear_duplicate(&lead.record, ix);
        ix.set_fresh(&lead.record, false);
        let (Conversion::Relink(merged), Some(contact)) =
            (follow_conversion(book.get(ci), contact), contact)
        else {
            book.unlink(ci);
            self.skip(skip::CONVERTED);
            return;
        };
        let e164 = merged.number.e164().to_owned();
        let contact_has_customer = book.linked(&contact.record).is_some_and(|x| x != ci);
        let number_taken = book.holder(&e164).is_some_and(|x| x != ci);
        if contact_has_customer {
            // The Contact already has its own customer: this one lost its record.
            book.unlink(ci);
            self.skip(skip::CONVERTED);
        } else if number_taken {
            // R18: another customer holds the Contact's number; the Contact competes for it
            // like any incoming record, and this customer is unlinked.
            book.unlink(ci);
            self.incoming(book, contact, &merged.number, ix);
        } else {
            // The same person, now a Contact: the link continues (it counts as linked before
            // this run for R14).
            book.apply(
                ci,
                merged.number,
                merged.fields,
                Some(merged.link),
                merged.dirty,
            );
            ix.see(contact, &e164);
            self.clear_duplicate(&contact.record, ix);
        }
    }

    /// The page's outcome: the book's changes, the counts to add when they are committed,
    /// and the keys of every customer row they write.
    fn into_decided(self, book: Book) -> Decided {
        let mut changes = CustomerChanges {
            duplicates: self.duplicates,
            clear_duplicates: self.clear_duplicates,
            ..CustomerChanges::default()
        };
        let mut touched = Touched::default();
        for e in book.entries {
            let c = e.customer;
            match e.original {
                None => {
                    // Created by this page; a create is always linked.
                    touched.add(&c);
                    changes.creates.push(NewCustomer {
                        number: c.number,
                        fields: c.fields,
                        link: c.link,
                    });
                }
                Some(o) if o == c => {}
                Some(o) => {
                    touched.add(&o);
                    touched.add(&c);
                    let relinked_or_edited = c.link.is_some()
                        || c.fields != o.fields
                        || c.number.e164() != o.number.e164()
                        || c.dirty != o.dirty;
                    if c.link.is_none() && o.link.is_some() {
                        changes.unlinks.push(c.id);
                    }
                    if relinked_or_edited {
                        changes.updates.push(CustomerUpdate {
                            id: c.id,
                            number: c.number,
                            fields: c.fields,
                            link: c.link,
                            dirty: c.dirty,
                        });
                    }
                }
            }
        }
        Decided {
            changes,
            skipped: self.skipped,
            unchanged: self.unchanged,
            touched,
        }
    }
}

/// The numbers and records of the customer rows one commit writes, before and after: the
/// only keys whose lookups that commit can change.
#[derive(Default)]
struct Touched {
    numbers: HashSet<u64>,
    records: HashSet<RecKey>,
}

impl Touched {
    fn add(&mut self, c: &Customer) {
        self.numbers.insert(number_key(c.number.e164()));
        if let Some(link) = &c.link {
            self.records.insert(RecKey::of(&link.record));
        }
    }

    fn is_empty(&self) -> bool {
        self.numbers.is_empty() && self.records.is_empty()
    }
}

/// Decided, not yet committed: the changes of a batch and the report counts that go with
/// them (R17 counts what was committed).
#[derive(Default)]
struct Decided {
    changes: CustomerChanges,
    skipped: HashMap<&'static str, u64>,
    unchanged: u64,
    touched: Touched,
}

impl Decided {
    /// Adds the decisions about other records of the same batch (no customer, number or
    /// record in common with these).
    fn merge(&mut self, other: Decided) {
        let c = &mut self.changes;
        c.creates.extend(other.changes.creates);
        c.updates.extend(other.changes.updates);
        c.unlinks.extend(other.changes.unlinks);
        c.duplicates.extend(other.changes.duplicates);
        c.clear_duplicates.extend(other.changes.clear_duplicates);
        for (reason, n) in other.skipped {
            *self.skipped.entry(reason).or_default() += n;
        }
        self.unchanged += other.unchanged;
        self.touched.numbers.extend(other.touched.numbers);
        self.touched.records.extend(other.touched.records);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        ApiUsage, DeletedRecord, FieldChange, MockLocks, MockSalesforceReader, NewRecord,
        RecordPage, SyncRun, TaskDraft, TaskPatch,
    };
    use crate::{Member, OrgProblem, SalesforceId, SfUser, SyncTargets};
    use async_trait::async_trait;
    use chrono::TimeZone;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll, Waker};

    // ------------------------------------------------------------------------------------------
    // Harness: an executor for ready futures and an in-memory world (Salesforce + store).
    // ------------------------------------------------------------------------------------------

    /// Every fake answers at once, so polling until ready never waits.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1_000 {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("a fake returned Pending");
    }

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().unwrap() + TimeDelta::minutes(minute)
    }

    const NOW: i64 = 10_000;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn sfid(object: SfObject, n: u32) -> SalesforceId {
        let prefix = match object {
            SfObject::Lead => "00Q",
            SfObject::Contact => "003",
        };
        SalesforceId::parse(&format!("{prefix}{n:012}")).unwrap()
    }

    fn rref(object: SfObject, n: u32) -> SalesforceRecordRef {
        SalesforceRecordRef {
            object,
            id: sfid(object, n),
        }
    }

    fn lead(n: u32) -> SalesforceRecordRef {
        rref(SfObject::Lead, n)
    }

    fn contact(n: u32) -> SalesforceRecordRef {
        rref(SfObject::Contact, n)
    }

    /// A record whose SystemModstamp and LastModifiedDate are both `minute`.
    fn rec(r: SalesforceRecordRef, phone: Option<&str>, minute: i64) -> SfRecord {
        SfRecord {
            last_name: Some(format!("姓{}", r.id.as_str())),
            first_name: Some("名".into()),
            company: Some("SF社".into()),
            email: Some("sf@example.jp".into()),
            address: Some("東京都".into()),
            description: Some("SFメモ".into()),
            record: r,
            phone: phone.map(Into::into),
            is_converted: false,
            converted_contact_id: None,
            system_modstamp: at(minute),
            last_modified: at(minute),
        }
    }

    fn num(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    /// A customer in the store as an earlier run left it, linked to `r` as it is now.
    fn customer_for(id: i64, r: &SfRecord) -> Customer {
        Customer {
            id: CustomerId(id),
            number: num(r.phone.as_deref().unwrap()),
            fields: r.customer_fields(),
            link: Some(SfLink {
                record: r.record.clone(),
                system_modstamp: Some(r.system_modstamp),
            }),
            dirty: vec![],
            edited_at: None,
        }
    }

    struct Sf {
        records: Vec<SfRecord>,
        deleted: Vec<(SfObject, DeletedRecord)>,
        page_size: usize,
        /// Fails the fetch_page call with this index (0-based) once.
        fail_fetch: Option<(usize, SfError)>,
        hidden: Option<(&'static str, &'static str)>,
        fail_updates: HashSet<SalesforceRecordRef>,
        fetches: Vec<(RecordQuery, Option<PageCursor>)>,
        fetch_records_calls: Vec<Vec<SalesforceRecordRef>>,
        deleted_calls: Vec<(SfObject, DateTime<Utc>, DateTime<Utc>)>,
        update_calls: Vec<Vec<RecordUpdate>>,
    }

    #[derive(Default)]
    struct Db {
        customers: BTreeMap<i64, Customer>,
        next_id: i64,
        duplicates: BTreeMap<String, DuplicateEntry>,
        watermarks: HashMap<SfObject, DateTime<Utc>>,
        runs: Vec<SyncRun>,
        users: Vec<SfUser>,
        lock: Option<String>,
    }

    struct World {
        sf: Mutex<Sf>,
        db: Mutex<Db>,
        requests: AtomicU64,
        usage: Mutex<Option<ApiUsage>>,
        settings: Mutex<IntegrationSettings>,
        /// `apply_changes` answers only after a few polls, so what runs beside a commit (the
        /// next batch's reads, lookups and early decisions) sees the store before it, as with
        /// a real database.
        slow_commits: std::sync::atomic::AtomicBool,
        /// The clock; each `fetch_page` moves it on by `page_minutes`.
        now: Mutex<DateTime<Utc>>,
        page_minutes: std::sync::atomic::AtomicI64,
        /// Another holder takes the `sync` lock during the `fetch_page` call with this index.
        takeover_at_fetch: Mutex<Option<usize>>,
        lock_calls: AtomicU64,
    }

    /// Pending the given number of times, then ready.
    struct Yield(u8);

    impl Future for Yield {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 == 0 {
                Poll::Ready(())
            } else {
                self.0 -= 1;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    impl World {
        fn new(records: Vec<SfRecord>) -> Arc<Self> {
            Arc::new(Self {
                sf: Mutex::new(Sf {
                    records,
                    deleted: vec![],
                    page_size: 2_000,
                    fail_fetch: None,
                    hidden: None,
                    fail_updates: HashSet::default(),
                    fetches: vec![],
                    fetch_records_calls: vec![],
                    deleted_calls: vec![],
                    update_calls: vec![],
                }),
                db: Mutex::new(Db {
                    next_id: 1_000,
                    ..Db::default()
                }),
                requests: AtomicU64::new(0),
                usage: Mutex::new(None),
                settings: Mutex::new(IntegrationSettings::default()),
                slow_commits: std::sync::atomic::AtomicBool::new(false),
                now: Mutex::new(at(NOW)),
                page_minutes: std::sync::atomic::AtomicI64::new(0),
                takeover_at_fetch: Mutex::new(None),
                lock_calls: AtomicU64::new(0),
            })
        }

        fn targets(self: &Arc<Self>, lead: bool, contact: bool) -> Arc<Self> {
            self.settings.lock().unwrap().sync_targets = SyncTargets { lead, contact };
            self.clone()
        }

        fn page_size(self: &Arc<Self>, n: usize) -> Arc<Self> {
            self.sf.lock().unwrap().page_size = n;
            self.clone()
        }

        fn with_customers(self: &Arc<Self>, cs: Vec<Customer>) -> Arc<Self> {
            let mut db = self.db.lock().unwrap();
            for c in cs {
                db.customers.insert(c.id.0, c);
            }
            drop(db);
            self.clone()
        }

        fn watermark(self: &Arc<Self>, object: SfObject, minute: i64) -> Arc<Self> {
            self.db
                .lock()
                .unwrap()
                .watermarks
                .insert(object, at(minute));
            self.clone()
        }

        fn ports(self: &Arc<Self>) -> SyncPorts {
            SyncPorts {
                reader: self.clone(),
                writer: self.clone(),
                usage: self.clone(),
                customers: self.clone(),
                runs: self.clone(),
                directory: self.clone(),
                locks: self.clone(),
                settings: self.clone(),
                clock: self.clone(),
            }
        }

        fn run(self: &Arc<Self>, kind: SyncKind) -> Result<SyncOutcome, SyncError> {
            run_with(self.ports(), kind)
        }

        fn customers(&self) -> Vec<Customer> {
            self.db
                .lock()
                .unwrap()
                .customers
                .values()
                .cloned()
                .collect()
        }

        fn by_number(&self, e164: &str) -> Customer {
            self.customers()
                .into_iter()
                .find(|c| c.number.e164() == e164)
                .unwrap_or_else(|| panic!("no customer with {e164}"))
        }

        fn get(&self, id: i64) -> Customer {
            self.db.lock().unwrap().customers[&id].clone()
        }

        fn duplicates(&self) -> Vec<(SalesforceRecordRef, SalesforceRecordRef)> {
            let db = self.db.lock().unwrap();
            db.duplicates
                .values()
                .map(|d| (d.record.clone(), d.winner.clone()))
                .collect()
        }

        fn last_run(&self) -> SyncRun {
            self.db.lock().unwrap().runs.last().cloned().unwrap()
        }

        fn hit(&self) {
            self.requests.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn options() -> SyncOptions {
        SyncOptions {
            holder: "test-holder".into(),
            // One commit per page, so a test can name the page a failure leaves committed;
            // commits spanning pages have their own tests.
            records_per_commit: 1,
            ..SyncOptions::default()
        }
    }

    fn run_with(ports: SyncPorts, kind: SyncKind) -> Result<SyncOutcome, SyncError> {
        let sync = CustomerSync::new(ports, options());
        block_on(sync.run(&tenant(), kind, &|_| {}))
    }

    fn fake_err() -> SfError {
        SfError::NotFound {
            cause: "not faked".into(),
        }
    }

    #[async_trait]
    impl SalesforceReader for World {
        async fn check_field_access(&self, _: &TenantId, _: &[SfObject]) -> Result<(), SfError> {
            self.hit();
            match self.sf.lock().unwrap().hidden {
                Some((object, field)) => Err(SfError::OrgConfig {
                    problem: OrgProblem::HiddenField,
                    code: "INVALID_FIELD".into(),
                    object: Some(object.into()),
                    field: Some(field.into()),
                    cause: "No such column".into(),
                }),
                None => Ok(()),
            }
        }

        async fn fetch_page(
            &self,
            _: &TenantId,
            q: &RecordQuery,
            cursor: Option<PageCursor>,
        ) -> Result<RecordPage, SfError> {
            self.hit();
            let mut sf = self.sf.lock().unwrap();
            let call = sf.fetches.len();
            sf.fetches.push((q.clone(), cursor.clone()));
            *self.now.lock().unwrap() +=
                TimeDelta::minutes(self.page_minutes.load(Ordering::SeqCst));
            if *self.takeover_at_fetch.lock().unwrap() == Some(call) {
                self.db.lock().unwrap().lock = Some("another-instance".into());
            }
            if sf.fail_fetch.as_ref().is_some_and(|(n, _)| *n == call) {
                let (_, e) = sf.fail_fetch.take().unwrap();
                return Err(e);
            }
            let mut matching: Vec<SfRecord> = sf
                .records
                .iter()
                .filter(|r| r.record.object == q.object)
                .filter(|r| q.since.is_none_or(|s| r.system_modstamp >= s))
                .filter(|r| q.modified_after.is_none_or(|s| r.last_modified >= s))
                .filter(|r| !q.only_with_phone || r.phone.as_deref().is_some_and(|p| !p.is_empty()))
                .filter(|r| !q.exclude_converted || !r.is_converted)
                .cloned()
                .collect();
            matching.sort_by(|a, b| {
                (a.system_modstamp, &a.record.id).cmp(&(b.system_modstamp, &b.record.id))
            });
            let start: usize = cursor.map_or(0, |c| c.0.parse().unwrap());
            let end = (start + sf.page_size).min(matching.len());
            Ok(RecordPage {
                records: matching[start..end].to_vec(),
                next: (end < matching.len()).then(|| PageCursor(end.to_string())),
                total_size: matching.len() as u64,
            })
        }

        async fn fetch_records(
            &self,
            _: &TenantId,
            refs: &[SalesforceRecordRef],
        ) -> Result<Vec<SfRecord>, SfError> {
            self.hit();
            let mut sf = self.sf.lock().unwrap();
            sf.fetch_records_calls.push(refs.to_vec());
            Ok(sf
                .records
                .iter()
                .filter(|r| refs.contains(&r.record))
                .cloned()
                .collect())
        }

        async fn search_by_phone(
            &self,
            _: &TenantId,
            _: &PhoneNumber,
            _: SyncTargets,
        ) -> Result<Vec<SfRecord>, SfError> {
            Err(fake_err())
        }

        async fn deleted_since(
            &self,
            _: &TenantId,
            object: SfObject,
            since: DateTime<Utc>,
            until: DateTime<Utc>,
        ) -> Result<Vec<DeletedRecord>, SfError> {
            self.hit();
            let mut sf = self.sf.lock().unwrap();
            sf.deleted_calls.push((object, since, until));
            Ok(sf
                .deleted
                .iter()
                .filter(|(o, _)| *o == object)
                .map(|(_, d)| d.clone())
                .collect())
        }

        async fn active_users(&self, _: &TenantId) -> Result<Vec<SfUser>, SfError> {
            self.hit();
            Ok(vec![SfUser {
                id: SalesforceId::parse("005000000000001").unwrap(),
                email: None,
                name: "営業 一郎".into(),
                active: true,
            }])
        }
    }

    #[async_trait]
    impl SalesforceWriter for World {
        async fn create_tasks(
            &self,
            _: &TenantId,
            _: &[TaskDraft],
        ) -> Result<Vec<Result<SalesforceId, SfError>>, SfError> {
            Err(fake_err())
        }
        async fn update_task(
            &self,
            _: &TenantId,
            _: &SalesforceId,
            _: &TaskPatch,
        ) -> Result<(), SfError> {
            Err(fake_err())
        }
        async fn find_task_by_call_object(
            &self,
            _: &TenantId,
            _: &str,
        ) -> Result<Option<SalesforceId>, SfError> {
            Err(fake_err())
        }
        async fn find_tasks_by_call_objects(
            &self,
            _: &TenantId,
            _: &[String],
        ) -> Result<std::collections::HashMap<String, SalesforceId>, SfError> {
            Err(fake_err())
        }
        async fn find_account(
            &self,
            _: &TenantId,
            _: &str,
        ) -> Result<Option<SalesforceId>, SfError> {
            Err(fake_err())
        }
        async fn create_account(&self, _: &TenantId, _: &str) -> Result<SalesforceId, SfError> {
            Err(fake_err())
        }
        async fn create_record(
            &self,
            _: &TenantId,
            _: &NewRecord,
            _: bool,
        ) -> Result<SalesforceId, SfError> {
            Err(fake_err())
        }

        /// Applies the update like Salesforce would, so the next read is the echo (R11).
        async fn update_records(
            &self,
            _: &TenantId,
            updates: &[RecordUpdate],
        ) -> Result<Vec<Result<(), SfError>>, SfError> {
            self.hit();
            let mut sf = self.sf.lock().unwrap();
            sf.update_calls.push(updates.to_vec());
            let mut results = Vec::new();
            for u in updates {
                if sf.fail_updates.contains(&u.record) {
                    results.push(Err(SfError::OrgConfig {
                        problem: OrgProblem::ValidationRule,
                        code: "FIELD_CUSTOM_VALIDATION_EXCEPTION".into(),
                        object: Some(u.record.object.to_string()),
                        field: None,
                        cause: "Email is required".into(),
                    }));
                    continue;
                }
                let r = sf
                    .records
                    .iter_mut()
                    .find(|r| r.record == u.record)
                    .unwrap();
                for change in &u.changes {
                    match change.clone() {
                        FieldChange::Phone(p) => r.phone = p,
                        FieldChange::Name {
                            last_name,
                            first_name,
                        } => {
                            r.last_name = Some(last_name);
                            r.first_name = first_name;
                        }
                        FieldChange::Email(e) => r.email = e,
                        FieldChange::Description(d) => r.description = d,
                        FieldChange::Company(c) => r.company = c,
                    }
                }
                r.system_modstamp = at(NOW);
                r.last_modified = at(NOW);
                results.push(Ok(()));
            }
            Ok(results)
        }
    }

    impl ApiUsageView for World {
        fn usage(&self, _: &TenantId) -> Option<ApiUsage> {
            *self.usage.lock().unwrap()
        }
        fn requests_sent(&self, _: &TenantId) -> u64 {
            self.requests.load(Ordering::SeqCst)
        }
        fn requests_last_24h(&self, _: &TenantId) -> u64 {
            self.requests.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl CustomerStore for World {
        async fn find_by_number(
            &self,
            _: &TenantId,
            e164: &str,
        ) -> Result<Option<Customer>, StoreError> {
            Ok(self
                .customers()
                .into_iter()
                .find(|c| c.number.e164() == e164))
        }
        async fn find_by_numbers(
            &self,
            _: &TenantId,
            e164: &[String],
        ) -> Result<Vec<Customer>, StoreError> {
            Ok(self
                .customers()
                .into_iter()
                .filter(|c| e164.iter().any(|n| n == c.number.e164()))
                .collect())
        }
        async fn find_by_records(
            &self,
            _: &TenantId,
            records: &[SalesforceRecordRef],
        ) -> Result<Vec<Customer>, StoreError> {
            Ok(self
                .customers()
                .into_iter()
                .filter(|c| c.link.as_ref().is_some_and(|l| records.contains(&l.record)))
                .collect())
        }
        async fn get(&self, _: &TenantId, id: CustomerId) -> Result<Option<Customer>, StoreError> {
            Ok(self.db.lock().unwrap().customers.get(&id.0).cloned())
        }

        /// All or nothing, and refuses any state that breaks R18 or links a record twice.
        async fn apply_changes(&self, _: &TenantId, ch: CustomerChanges) -> Result<(), StoreError> {
            if self.slow_commits.load(Ordering::SeqCst) {
                Yield(8).await;
            }
            let mut db = self.db.lock().unwrap();
            let mut customers = db.customers.clone();
            let mut next_id = db.next_id;
            for id in &ch.unlinks {
                let c = customers
                    .get_mut(&id.0)
                    .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
                c.link = None;
            }
            for u in &ch.updates {
                let c = customers
                    .get_mut(&u.id.0)
                    .ok_or_else(|| StoreError::NotFound(u.id.to_string()))?;
                c.number = u.number.clone();
                c.fields = u.fields.clone();
                c.link = u.link.clone();
                c.dirty = u.dirty.clone();
            }
            for n in &ch.creates {
                next_id += 1;
                customers.insert(
                    next_id,
                    Customer {
                        id: CustomerId(next_id),
                        number: n.number.clone(),
                        fields: n.fields.clone(),
                        link: n.link.clone(),
                        dirty: vec![],
                        edited_at: None,
                    },
                );
            }
            let mut numbers = HashSet::default();
            let mut links = HashSet::default();
            for c in customers.values() {
                if !numbers.insert(c.number.e164().to_owned()) {
                    return Err(StoreError::Conflict(format!(
                        "R18: two customers with {}",
                        c.number.e164()
                    )));
                }
                if let Some(l) = &c.link
                    && !links.insert(l.record.clone())
                {
                    return Err(StoreError::Conflict(format!("{} linked twice", l.record)));
                }
            }
            db.customers = customers;
            db.next_id = next_id;
            for r in &ch.clear_duplicates {
                db.duplicates.remove(&r.to_string());
            }
            for d in &ch.duplicates {
                db.duplicates.insert(d.record.to_string(), d.clone());
            }
            if let Some((object, wm)) = ch.watermark {
                db.watermarks.insert(object, wm);
            }
            Ok(())
        }
        async fn link(
            &self,
            _: &TenantId,
            id: CustomerId,
            link: &SfLink,
        ) -> Result<(), StoreError> {
            let mut db = self.db.lock().unwrap();
            if let Some(c) = db.customers.get_mut(&id.0) {
                c.link = Some(link.clone());
            }
            Ok(())
        }
        async fn pending_write_back(
            &self,
            _: &TenantId,
            limit: u64,
        ) -> Result<Vec<Customer>, StoreError> {
            Ok(self
                .customers()
                .into_iter()
                .filter(|c| !c.dirty.is_empty())
                .take(limit as usize)
                .collect())
        }
        async fn mark_written_back(
            &self,
            _: &TenantId,
            id: CustomerId,
            edited_at: Option<DateTime<Utc>>,
        ) -> Result<(), StoreError> {
            let mut db = self.db.lock().unwrap();
            if let Some(c) = db.customers.get_mut(&id.0)
                && c.edited_at <= edited_at
            {
                c.dirty.clear();
            }
            Ok(())
        }
        async fn watermark(
            &self,
            _: &TenantId,
            object: SfObject,
        ) -> Result<Option<DateTime<Utc>>, StoreError> {
            Ok(self.db.lock().unwrap().watermarks.get(&object).copied())
        }
    }

    #[async_trait]
    impl SyncRunStore for World {
        async fn start_run(
            &self,
            _: &TenantId,
            kind: SyncKind,
            now: DateTime<Utc>,
        ) -> Result<i64, StoreError> {
            let mut db = self.db.lock().unwrap();
            let id = db.runs.len() as i64 + 1;
            db.runs.push(SyncRun {
                id,
                kind,
                started_at: now,
                finished_at: None,
                ok: None,
                report: SyncReport::default(),
            });
            Ok(id)
        }
        async fn update_run(
            &self,
            _: &TenantId,
            run_id: i64,
            report: &SyncReport,
            finished: Option<(DateTime<Utc>, bool)>,
        ) -> Result<(), StoreError> {
            let mut db = self.db.lock().unwrap();
            let run = db.runs.iter_mut().find(|r| r.id == run_id).unwrap();
            run.report = report.clone();
            if let Some((at, ok)) = finished {
                run.finished_at = Some(at);
                run.ok = Some(ok);
            }
            Ok(())
        }
        async fn runs(&self, _: &TenantId, limit: u64) -> Result<Vec<SyncRun>, StoreError> {
            let db = self.db.lock().unwrap();
            Ok(db.runs.iter().rev().take(limit as usize).cloned().collect())
        }
    }

    #[async_trait]
    impl DirectoryStore for World {
        async fn save_users(&self, _: &TenantId, users: &[SfUser]) -> Result<(), StoreError> {
            self.db.lock().unwrap().users = users.to_vec();
            Ok(())
        }
        async fn users(&self, _: &TenantId) -> Result<Vec<SfUser>, StoreError> {
            Ok(self.db.lock().unwrap().users.clone())
        }
        async fn members(&self, _: &TenantId) -> Result<Vec<Member>, StoreError> {
            Ok(vec![])
        }
    }

    #[async_trait]
    impl Locks for World {
        async fn try_lock(
            &self,
            _: &TenantId,
            _: &str,
            holder: &str,
            _: Duration,
            _: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.lock_calls.fetch_add(1, Ordering::SeqCst);
            let mut db = self.db.lock().unwrap();
            match &db.lock {
                Some(h) if h != holder => Ok(false),
                _ => {
                    db.lock = Some(holder.to_owned());
                    Ok(true)
                }
            }
        }
        async fn unlock(&self, _: &TenantId, _: &str, holder: &str) -> Result<(), StoreError> {
            let mut db = self.db.lock().unwrap();
            if db.lock.as_deref() == Some(holder) {
                db.lock = None;
            }
            Ok(())
        }
    }

    #[async_trait]
    impl SettingsStore for World {
        async fn settings(&self, _: &TenantId) -> Result<Option<IntegrationSettings>, StoreError> {
            Ok(Some(self.settings.lock().unwrap().clone()))
        }
        async fn save_settings(
            &self,
            _: &TenantId,
            s: &IntegrationSettings,
        ) -> Result<(), StoreError> {
            *self.settings.lock().unwrap() = s.clone();
            Ok(())
        }
    }

    impl Clock for World {
        fn now(&self) -> DateTime<Utc> {
            *self.now.lock().unwrap()
        }
    }

    // ------------------------------------------------------------------------------------------
    // Tests
    // ------------------------------------------------------------------------------------------

    #[test]
    fn run_future_is_send_so_the_scheduler_can_spawn_it() {
        fn assert_send<T: Send>(_: &T) {}
        let w = World::new(vec![]);
        let sync = CustomerSync::new(w.ports(), options());
        let t = tenant();
        let fut = sync.run(&t, SyncKind::Incremental, &|_| {});
        assert_send(&fut);
    }

    #[test]
    fn lock_held_by_another_holder_is_already_running_and_nothing_else_happens() {
        let w = World::new(vec![rec(lead(1), Some("03-1234-5678"), 1)]);
        let mut locks = MockLocks::new();
        locks
            .expect_try_lock()
            .times(1)
            .returning(|_, _, _, _, _| Ok(false));
        locks.expect_unlock().never();
        let ports = SyncPorts {
            locks: Arc::new(locks),
            ..w.ports()
        };
        assert_eq!(
            run_with(ports, SyncKind::Incremental),
            Err(SyncError::AlreadyRunning)
        );
        assert!(w.db.lock().unwrap().runs.is_empty(), "no run recorded");
        assert!(w.sf.lock().unwrap().fetches.is_empty());
        assert_eq!(w.requests_sent(&tenant()), 0);
    }

    #[test]
    fn r10_hidden_field_stops_the_run_before_any_page_with_the_setting_to_change() {
        let w = World::new(vec![rec(lead(1), Some("03-1234-5678"), 1)]);
        let mut reader = MockSalesforceReader::new();
        reader
            .expect_check_field_access()
            .times(1)
            .returning(|_, objects| {
                assert_eq!(objects, [SfObject::Lead, SfObject::Contact]);
                Err(SfError::OrgConfig {
                    problem: OrgProblem::HiddenField,
                    code: "INVALID_FIELD".into(),
                    object: Some("Lead".into()),
                    field: Some("Email".into()),
                    cause: "No such column 'Email' on entity 'Lead'".into(),
                })
            });
        reader.expect_fetch_page().never();
        reader.expect_active_users().never();
        reader.expect_deleted_since().never();
        let ports = SyncPorts {
            reader: Arc::new(reader),
            ..w.ports()
        };
        let err = run_with(ports, SyncKind::Initial).unwrap_err();
        assert!(matches!(
            err,
            SyncError::Salesforce(SfError::OrgConfig {
                problem: OrgProblem::HiddenField,
                ..
            })
        ));
        let run = w.last_run();
        assert_eq!(run.ok, Some(false));
        assert!(run.finished_at.is_some());
        let text = run.report.errors.join("\n");
        assert!(text.contains("Lead.Email"), "{text}");
        assert!(text.contains("Set Field-Level Security"), "{text}");
        assert!(text.contains("項目レベルセキュリティ"), "{text}");
        assert!(w.customers().is_empty(), "no partial import");
        assert_eq!(w.db.lock().unwrap().lock, None, "lease released on error");
    }

    #[test]
    fn r12_records_without_phone_are_skipped_and_a_cleared_phone_unlinks() {
        let linked_before = rec(lead(1), Some("03-1111-1111"), 5);
        let mut cleared = linked_before.clone();
        cleared.phone = None;
        cleared.system_modstamp = at(20);
        cleared.last_modified = at(20);
        let w = World::new(vec![
            cleared,
            rec(lead(2), None, 21),
            rec(lead(3), Some(" "), 22),
            rec(lead(4), Some("03-2222-2222"), 23),
        ])
        .targets(true, false)
        .with_customers(vec![customer_for(1, &linked_before)])
        .watermark(SfObject::Lead, 10);

        let out = w.run(SyncKind::Incremental).unwrap();
        assert_eq!(out.report.skipped.get(skip::NO_PHONE), Some(&3));
        assert_eq!(out.report.unlinked, 1);
        assert_eq!(out.report.created, 1);
        let kept = w.get(1);
        assert_eq!(kept.link, None, "unlinked, but the customer stays (R18)");
        assert_eq!(kept.number.e164(), "+81311111111");
        assert_eq!(w.customers().len(), 2);
    }

    #[test]
    fn r13_numbers_are_compared_normalized_and_invalid_ones_skipped() {
        let w = World::new(vec![
            rec(lead(1), Some("03-1234-5678"), 1),
            rec(lead(2), Some("0312345678"), 2),
            rec(lead(3), Some("+81 3 1234 5678"), 3),
            rec(lead(4), Some("+81-(0)3-1234-5678"), 4),
            rec(lead(5), Some("12"), 5),
        ])
        .targets(true, false);
        let out = w.run(SyncKind::Initial).unwrap();
        let cs = w.customers();
        assert_eq!(cs.len(), 1, "one customer per normalized number (R18)");
        assert_eq!(cs[0].number.e164(), "+81312345678");
        // The most recently modified Lead won (R14); its text is kept for display.
        assert_eq!(cs[0].number.raw(), "+81-(0)3-1234-5678");
        assert_eq!(cs[0].link.as_ref().unwrap().record, lead(4));
        assert_eq!(out.report.skipped.get(skip::INVALID_NUMBER), Some(&1));
        assert_eq!(out.report.duplicates, 3);
    }

    /// Every order of `items` (Heap's algorithm, small n).
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        fn go<T: Clone>(k: usize, a: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
            if k <= 1 {
                out.push(a.clone());
                return;
            }
            for i in 0..k {
                go(k - 1, a, out);
                let j = if k.is_multiple_of(2) { i } else { 0 };
                a.swap(j, k - 1);
            }
        }
        let mut out = vec![];
        go(items.len(), &mut items.to_vec(), &mut out);
        out
    }

    #[test]
    fn r14_duplicates_across_pages_and_objects_one_winner_whatever_the_page_order() {
        // LastModifiedDate decides among equals; SystemModstamp decides the page order.
        let base = [
            (lead(1), 50), // newest, but a Lead
            (lead(2), 40),
            (contact(1), 10),
            (contact(2), 30), // the newest Contact: the winner
        ];
        let orders = permutations(&[0i64, 1, 2, 3]);
        assert_eq!(orders.len(), 24);
        for order in orders {
            let records: Vec<SfRecord> = base
                .iter()
                .zip(&order)
                .map(|((r, modified), page_pos)| {
                    let mut x = rec(r.clone(), Some("090-1234-5678"), 100 + page_pos);
                    x.last_modified = at(*modified);
                    x
                })
                .collect();
            let w = World::new(records).page_size(1);
            let out = w.run(SyncKind::Initial).unwrap();
            let cs = w.customers();
            assert_eq!(cs.len(), 1, "order {order:?}");
            assert_eq!(
                cs[0].link.as_ref().unwrap().record,
                contact(2),
                "order {order:?}"
            );
            assert_eq!(
                cs[0].fields.name.as_deref(),
                Some(format!("姓{} 名", contact(2).id).as_str())
            );
            let mut dups = w.duplicates();
            dups.sort_by_key(|(r, _)| r.to_string());
            assert_eq!(
                dups,
                vec![
                    (contact(1), contact(2)),
                    (lead(1), contact(2)),
                    (lead(2), contact(2)),
                ],
                "order {order:?}"
            );
            assert_eq!(out.report.duplicates, 3, "order {order:?}");
            assert_eq!(out.report.skipped.get(skip::DUPLICATE), Some(&3));
        }
    }

    #[test]
    fn r14_among_leads_most_recent_wins_ties_by_id_whatever_the_page_order() {
        let base = [(lead(3), 9), (lead(2), 9), (lead(1), 5)];
        for order in permutations(&[0i64, 1, 2]) {
            let records: Vec<SfRecord> = base
                .iter()
                .zip(&order)
                .map(|((r, modified), pos)| {
                    let mut x = rec(r.clone(), Some("03-5555-0000"), 100 + pos);
                    x.last_modified = at(*modified);
                    x
                })
                .collect();
            let w = World::new(records).page_size(1).targets(true, false);
            w.run(SyncKind::Initial).unwrap();
            let cs = w.customers();
            assert_eq!(cs.len(), 1);
            assert_eq!(
                cs[0].link.as_ref().unwrap().record,
                lead(2),
                "order {order:?}"
            );
            assert_eq!(w.duplicates().len(), 2);
        }
    }

    #[test]
    fn r14_record_linked_before_the_run_keeps_its_number_over_a_newer_contact() {
        let linked = rec(lead(1), Some("03-1234-5678"), 5);
        let w = World::new(vec![
            linked.clone(),
            rec(contact(9), Some("0312345678"), 50),
        ])
        .with_customers(vec![customer_for(1, &linked)])
        .watermark(SfObject::Lead, 10)
        .watermark(SfObject::Contact, 10);
        let out = w.run(SyncKind::Incremental).unwrap();
        assert_eq!(w.get(1).link.unwrap().record, lead(1));
        assert_eq!(w.duplicates(), vec![(contact(9), lead(1))]);
        assert_eq!(out.report.duplicates, 1);
        assert_eq!(w.customers().len(), 1);
    }

    #[test]
    fn r15_linked_converted_lead_relinks_to_its_contact_whose_data_wins() {
        let before = rec(lead(1), Some("03-1234-5678"), 5);
        let mut converted = before.clone();
        converted.is_converted = true;
        converted.converted_contact_id = Some(sfid(SfObject::Contact, 7));
        converted.system_modstamp = at(20);
        let mut the_contact = rec(contact(7), Some("090-8888-7777"), 20);
        the_contact.last_name = Some("転換".into());
        let mut local = customer_for(1, &before);
        local.dirty = vec![SyncedField::Name];
        local.edited_at = Some(at(15));
        local.fields.name = Some("ローカル 編集".into());
        let w = World::new(vec![converted, the_contact])
            .with_customers(vec![local])
            .watermark(SfObject::Lead, 10)
            .watermark(SfObject::Contact, 10);

        let out = w.run(SyncKind::Incremental).unwrap();
        let c = w.get(1);
        assert_eq!(c.link.as_ref().unwrap().record, contact(7));
        assert_eq!(
            c.number.e164(),
            "+819088887777",
            "the Contact's Phone is the number now"
        );
        assert_eq!(
            c.fields.name.as_deref(),
            Some("転換 名"),
            "the Contact's data wins"
        );
        assert!(c.dirty.is_empty());
        assert_eq!(
            w.sf.lock().unwrap().fetch_records_calls,
            vec![vec![contact(7)]],
            "one fetch for the page's conversions"
        );
        assert_eq!(
            w.customers().len(),
            1,
            "the Contact's own page does not create a second"
        );
        assert!(out.report.errors.is_empty(), "{:?}", out.report.errors);
        assert!(
            w.sf.lock().unwrap().update_calls.is_empty(),
            "converted Leads are never written"
        );
    }

    #[test]
    fn r15_lead_converted_to_a_contact_without_phone_unlinks() {
        let before = rec(lead(1), Some("03-1234-5678"), 5);
        let mut converted = before.clone();
        converted.is_converted = true;
        converted.converted_contact_id = Some(sfid(SfObject::Contact, 7));
        converted.system_modstamp = at(20);
        let w = World::new(vec![converted, rec(contact(7), None, 20)])
            .targets(true, false)
            .with_customers(vec![customer_for(1, &before)])
            .watermark(SfObject::Lead, 10);
        let out = w.run(SyncKind::Incremental).unwrap();
        assert_eq!(w.get(1).link, None);
        assert_eq!(out.report.unlinked, 1);
        assert_eq!(out.report.skipped.get(skip::CONVERTED), Some(&1));
    }

    #[test]
    fn r15_r16_initial_import_asks_for_a_year_of_records_with_phone_and_no_converted_leads() {
        let mut converted = rec(lead(2), Some("03-2222-2222"), 3);
        converted.is_converted = true;
        let w = World::new(vec![rec(lead(1), Some("03-1111-1111"), 2), converted]);
        w.run(SyncKind::Initial).unwrap();
        let fetches = w.sf.lock().unwrap().fetches.clone();
        assert_eq!(fetches.len(), 2, "one page per object");
        for (q, cursor) in fetches {
            assert_eq!(cursor, None);
            assert_eq!(q.since, None);
            assert_eq!(q.modified_after, Some(at(NOW) - TimeDelta::days(365)));
            assert!(q.only_with_phone && q.exclude_converted);
        }
        assert_eq!(w.customers().len(), 1);
    }

    #[test]
    fn r16_all_pages_are_fetched_with_progress_and_no_cap() {
        let records: Vec<SfRecord> = (1..=5)
            .map(|i| rec(lead(i), Some(&format!("03-1000-000{i}")), i64::from(i)))
            .collect();
        let w = World::new(records).page_size(2).targets(true, false);
        let sync = CustomerSync::new(w.ports(), options());
        let seen = Mutex::new(vec![]);
        let out = block_on(sync.run(&tenant(), SyncKind::Initial, &|p| {
            seen.lock().unwrap().push(p);
        }))
        .unwrap();
        let fetches = w.sf.lock().unwrap().fetches.clone();
        assert_eq!(fetches.len(), 3, "3 pages → 3 fetch calls");
        assert_eq!(
            fetches.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
            vec![
                None,
                Some(PageCursor("2".into())),
                Some(PageCursor("4".into()))
            ]
        );
        assert_eq!(w.customers().len(), 5);
        assert_eq!(out.report.created, 5);
        let progress: Vec<(u64, u64)> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|p| (p.seen, p.total))
            .collect();
        assert_eq!(progress, vec![(2, 5), (4, 5), (5, 5)]);
        assert_eq!(
            w.db.lock().unwrap().watermarks.get(&SfObject::Lead),
            Some(&at(5))
        );
        assert_eq!(
            w.db.lock().unwrap().users.len(),
            1,
            "User directory refreshed (R23)"
        );
    }

    proptest::proptest! {
        /// The run index's map answers like a hash map through inserts, changes, removals
        /// and merges (merged every few entries in tests), and keeps its vector sorted.
        #[test]
        fn the_settling_map_answers_like_a_hash_map(
            ops in proptest::collection::vec((0u8..3, 0u64..40, 1u64..5), 0..400),
        ) {
            let mut s: Settling<u64, Mark> = Settling::default();
            let mut m: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
            for (op, k, v) in ops {
                match op {
                    0 => {
                        *s.slot(k) = Mark(v);
                        m.insert(k, v);
                    }
                    1 => {
                        s.remove(&k);
                        m.remove(&k);
                    }
                    _ => {
                        if let Some(x) = s.get_mut(&k) {
                            x.0 += 1;
                        }
                        if let Some(x) = m.get_mut(&k) {
                            *x += 1;
                        }
                    }
                }
                for k in 0..40 {
                    proptest::prop_assert_eq!(s.get(&k).map(|x| x.0), m.get(&k).copied());
                }
                proptest::prop_assert!(s.settled.windows(2).all(|w| w[0].0 < w[1].0));
                // Merged as it grows: the hash map never holds more than its share.
                proptest::prop_assert!(s.recent.len() <= (s.settled.len() / 16).max(3));
            }
        }
    }

    #[test]
    fn the_run_index_keeps_a_record_in_a_few_dozen_bytes() {
        // One entry of each per record read: a 1M-record import holds a million of each.
        assert_eq!(std::mem::size_of::<RecKey>(), 16);
        assert_eq!(std::mem::size_of::<Packed>(), 32);
        assert!(std::mem::size_of::<Carriers>() <= 40);
        // Packing keeps what R14 compares: the id (all 18 characters), object and times.
        let r = rec(contact(7), Some("03-1000-0007"), 42);
        let back = Packed::of(&candidate(&r)).seen();
        assert_eq!(back.candidate.record, r.record);
        assert_eq!(back.candidate.last_modified, r.last_modified);
        assert_eq!(back.system_modstamp, r.system_modstamp);
    }

    /// Runs with commits of `records_per_commit` records, recording the progress reports.
    fn run_batched(
        w: &Arc<World>,
        kind: SyncKind,
        records_per_commit: usize,
    ) -> (Result<SyncOutcome, SyncError>, Vec<(u64, u64)>) {
        let seen = Mutex::new(Vec::new());
        let sync = CustomerSync::new(
            w.ports(),
            SyncOptions {
                records_per_commit,
                ..options()
            },
        );
        let out = block_on(sync.run(&tenant(), kind, &|p| {
            seen.lock().unwrap().push((p.seen, p.total));
        }));
        (out, seen.into_inner().unwrap())
    }

    #[test]
    fn r16_pages_are_committed_together_up_to_records_per_commit() {
        let records: Vec<SfRecord> = (1..=5)
            .map(|i| rec(lead(i), Some(&format!("03-1000-000{i}")), i64::from(i)))
            .collect();
        let w = World::new(records).page_size(2).targets(true, false);
        let (out, progress) = run_batched(&w, SyncKind::Initial, 4);
        let out = out.unwrap();
        // Pages {1,2} {3,4} are one commit, {5} the next: same requests, fewer commits.
        assert_eq!(w.sf.lock().unwrap().fetches.len(), 3);
        assert_eq!(progress, vec![(4, 5), (5, 5)]);
        assert_eq!(out.report.created, 5);
        assert_eq!(w.customers().len(), 5);
        assert_eq!(
            w.db.lock().unwrap().watermarks.get(&SfObject::Lead),
            Some(&at(5))
        );
    }

    #[test]
    fn r16_a_failure_inside_a_commit_leaves_only_whole_commits_and_the_next_run_resumes() {
        let records: Vec<SfRecord> = (1..=7)
            .map(|i| rec(lead(i), Some(&format!("03-1000-000{i}")), i64::from(i)))
            .collect();
        let w = World::new(records).page_size(2).targets(true, false);
        // Page 4 (record 7) fails while the second commit {5,6,7} is read ahead.
        w.sf.lock().unwrap().fail_fetch = Some((3, SfError::transient("HTTP_503", "unavailable")));
        let (out, _) = run_batched(&w, SyncKind::Initial, 4);
        assert!(matches!(
            out.unwrap_err(),
            SyncError::Salesforce(SfError::Transient { .. })
        ));
        assert_eq!(
            w.customers().len(),
            4,
            "only the first commit (records 1-4)"
        );
        assert_eq!(
            w.db.lock().unwrap().watermarks.get(&SfObject::Lead),
            Some(&at(4))
        );
        let (out, _) = run_batched(&w, SyncKind::Initial, 4);
        out.unwrap();
        let fetches = w.sf.lock().unwrap().fetches.clone();
        assert_eq!(fetches.last().map(|f| f.0.since), Some(Some(at(4))));
        assert_eq!(w.customers().len(), 7, "every record once");
    }

    #[test]
    fn r16_optional_import_cap_stops_at_a_committed_record_and_the_next_run_resumes() {
        let records: Vec<SfRecord> = (1..=5)
            .map(|i| rec(lead(i), Some(&format!("03-1000-000{i}")), i64::from(i)))
            .collect();
        let w = World::new(records).page_size(2).targets(true, false);
        w.settings.lock().unwrap().import_cap = Some(3);
        let out = w.run(SyncKind::Initial).unwrap();
        assert_eq!(out.report.seen, 3);
        assert_eq!(w.customers().len(), 3);
        assert_eq!(
            w.db.lock().unwrap().watermarks.get(&SfObject::Lead),
            Some(&at(3))
        );
        w.run(SyncKind::Initial).unwrap();
        assert_eq!(w.customers().len(), 5);
    }

    #[test]
    fn r16_failure_on_page_2_resumes_from_the_committed_watermark() {
        let records: Vec<SfRecord> = (1..=5)
            .map(|i| rec(lead(i), Some(&format!("03-1000-000{i}")), i64::from(i)))
            .collect();
        let w = World::new(records).page_size(2).targets(true, false);
        w.sf.lock().unwrap().fail_fetch = Some((1, SfError::transient("HTTP_503", "unavailable")));

        let err = w.run(SyncKind::Initial).unwrap_err();
        assert!(matches!(
            err,
            SyncError::Salesforce(SfError::Transient { .. })
        ));
        assert_eq!(w.customers().len(), 2, "page 1 stays committed");
        assert_eq!(
            w.db.lock().unwrap().watermarks.get(&SfObject::Lead),
            Some(&at(2))
        );
        let failed = w.last_run();
        assert_eq!(failed.ok, Some(false));
        assert_eq!(failed.report.created, 2);
        assert_eq!(failed.report.errors.len(), 1);
        assert_eq!(w.db.lock().unwrap().lock, None, "lease released on error");

        let out = w.run(SyncKind::Initial).unwrap();
        let fetches = w.sf.lock().unwrap().fetches.clone();
        assert_eq!(
            fetches[2].0.since,
            Some(at(2)),
            "resumes at the committed watermark"
        );
        assert_eq!(w.customers().len(), 5, "every record once");
        assert_eq!(out.report.created, 3);
        assert_eq!(
            out.report.unchanged, 1,
            "the boundary record is re-read, unchanged"
        );
        assert_eq!(w.last_run().ok, Some(true));
    }

    #[test]
    fn r16_incremental_subtracts_the_overlap_and_deletions_unlink_or_follow_the_merge() {
        let gone = rec(lead(1), Some("03-1111-1111"), 5);
        let merged_away = rec(lead(2), Some("03-2222-2222"), 5);
        let merged_elsewhere = rec(lead(3), Some("03-3333-3333"), 5);
        let survivor = rec(lead(20), Some("03-2222-2222"), 1); // same number as lead 2
        let other_number = rec(lead(30), Some("03-3030-3030"), 1);
        let w = World::new(vec![survivor, other_number])
            .targets(true, false)
            .with_customers(vec![
                customer_for(1, &gone),
                customer_for(2, &merged_away),
                customer_for(3, &merged_elsewhere),
            ])
            .watermark(SfObject::Lead, 1_000);
        w.sf.lock().unwrap().deleted = vec![
            (
                SfObject::Lead,
                DeletedRecord {
                    record: lead(1),
                    merged_into: None,
                },
            ),
            (
                SfObject::Lead,
                DeletedRecord {
                    record: lead(2),
                    merged_into: Some(sfid(SfObject::Lead, 20)),
                },
            ),
            (
                SfObject::Lead,
                DeletedRecord {
                    record: lead(3),
                    merged_into: Some(sfid(SfObject::Lead, 30)),
                },
            ),
        ];

        let out = w.run(SyncKind::Incremental).unwrap();
        let since = at(1_000) - TimeDelta::minutes(10);
        let sf = w.sf.lock().unwrap();
        assert_eq!(sf.deleted_calls, vec![(SfObject::Lead, since, at(NOW))]);
        assert_eq!(sf.fetches[0].0.since, Some(since), "overlap subtracted");
        assert!(!sf.fetches[0].0.only_with_phone && !sf.fetches[0].0.exclude_converted);
        drop(sf);
        assert_eq!(w.get(1).link, None, "deleted → unlinked");
        assert_eq!(
            w.get(2).link.unwrap().record,
            lead(20),
            "merged into a record with its number"
        );
        assert_eq!(
            w.get(3).link,
            None,
            "merged into a record with another number"
        );
        assert_eq!(out.report.unlinked, 2);
        assert_eq!(
            w.customers().len(),
            3,
            "lead 30 is old (before the window): not read"
        );
    }

    /// What a run leaves, without the store's ids (which depend on the order of creates).
    #[derive(Debug, PartialEq)]
    struct Outcome {
        customers: Vec<(String, CustomerFields, Option<SfLink>, Vec<SyncedField>)>,
        duplicates: Vec<(String, SalesforceRecordRef, SalesforceRecordRef)>,
        report: SyncReport,
    }

    fn outcome(w: &World, mut report: SyncReport) -> Outcome {
        let mut customers: Vec<_> = w
            .customers()
            .into_iter()
            .map(|c| (c.number.e164().to_owned(), c.fields, c.link, c.dirty))
            .collect();
        customers.sort_by(|a, b| a.0.cmp(&b.0));
        let db = w.db.lock().unwrap();
        let duplicates = db
            .duplicates
            .values()
            .map(|d| (d.number.clone(), d.record.clone(), d.winner.clone()))
            .collect();
        // Requests depend on how lookups are grouped, not on what was decided.
        report.api_requests = 0;
        Outcome {
            customers,
            duplicates,
            report,
        }
    }

    /// A run with commits of 4 records: pipelined (`read_ahead`) against commits that answer
    /// only after several polls, or one batch at a time.
    fn run_ahead_or_not(
        w: &Arc<World>,
        kind: SyncKind,
        read_ahead: bool,
    ) -> Result<SyncOutcome, SyncError> {
        w.slow_commits.store(read_ahead, Ordering::SeqCst);
        let sync = CustomerSync::new(
            w.ports(),
            SyncOptions {
                records_per_commit: 4,
                read_ahead,
                ..options()
            },
        );
        block_on(sync.run(&tenant(), kind, &|_| {}))
    }

    fn pool_number(i: usize) -> String {
        // The last one is not a valid number (R13).
        if i == 7 {
            "12".to_owned()
        } else {
            format!("03-5555-{i:04}")
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        /// R14–R18 decisions do not depend on pipelining: a batch read, looked up and decided
        /// while the previous one is being stored ends in the same book, duplicates and report
        /// as batches taken one at a time. The commits answer only after the next batch was
        /// looked up, so its early lookups see the store before the commit; numbers and
        /// records shared across batches, customers from earlier runs and conversions make
        /// some records depend on the commit in flight.
        #[test]
        fn r14_r16_deciding_the_next_batch_during_a_commit_changes_nothing(
            recs in proptest::collection::vec(
                (
                    proptest::bool::ANY,
                    0u32..12,
                    proptest::option::weighted(0.85, 0usize..8),
                    0i64..40,
                    proptest::bool::weighted(0.15),
                ),
                1..48,
            ),
            existing in proptest::collection::vec(
                (0usize..7, proptest::option::weighted(0.8, (proptest::bool::ANY, 0u32..12))),
                0..8,
            ),
            incremental in proptest::bool::ANY,
        ) {
            let mut ids = HashSet::default();
            let records: Vec<SfRecord> = recs
                .iter()
                .filter(|(is_lead, n, ..)| ids.insert((*is_lead, *n)))
                .map(|&(is_lead, n, phone, minute, converted)| {
                    let r = if is_lead { lead(n) } else { contact(n) };
                    let mut x = rec(r, phone.map(pool_number).as_deref(), minute);
                    x.last_modified = at(minute * 7 % 40);
                    if is_lead && converted {
                        x.is_converted = true;
                        x.converted_contact_id = Some(sfid(SfObject::Contact, n));
                    }
                    x
                })
                .collect();
            let (mut numbers, mut links) = (HashSet::default(), HashSet::default());
            let customers: Vec<Customer> = existing
                .iter()
                .filter(|(i, link)| {
                    numbers.insert(*i) && link.is_none_or(|l| links.insert(l))
                })
                .enumerate()
                .map(|(k, &(i, link))| Customer {
                    id: CustomerId(k as i64 + 1),
                    number: num(&pool_number(i)),
                    fields: CustomerFields {
                        name: Some(format!("既存{k}")),
                        ..CustomerFields::default()
                    },
                    link: link.map(|(is_lead, n)| SfLink {
                        record: if is_lead { lead(n) } else { contact(n) },
                        system_modstamp: Some(at(-1)),
                    }),
                    dirty: vec![],
                    edited_at: None,
                })
                .collect();
            let kind = if incremental { SyncKind::Incremental } else { SyncKind::Initial };
            let run = |read_ahead: bool| {
                let w = World::new(records.clone()).page_size(2).with_customers(customers.clone());
                if incremental {
                    w.watermark(SfObject::Lead, 0).watermark(SfObject::Contact, 0);
                }
                let out = run_ahead_or_not(&w, kind, read_ahead)
                    .unwrap_or_else(|e| panic!("read_ahead {read_ahead}: {e}"));
                outcome(&w, out.report)
            };
            proptest::prop_assert_eq!(run(true), run(false));
        }
    }

    /// The case behind [`dependent`]'s link keys: a Contact linked before the run to the
    /// customer of 0001 changes to 0002, which the previous commit gave a customer; another
    /// Contact now carries 0001. Decided one at a time, the linked Contact moves first and
    /// frees 0001 for the newcomer (R14, R18); the newcomer must therefore wait for the
    /// commit too, even though none of its own keys was written by it.
    #[test]
    fn r14_a_record_sharing_a_customer_with_one_that_waits_for_the_commit_waits_too() {
        let mut records: Vec<SfRecord> = (1..=4)
            .map(|n| rec(contact(n), Some(&pool_number(n as usize + 1)), i64::from(n)))
            .collect();
        records.push(rec(contact(5), Some(&pool_number(2)), 5));
        records.push(rec(contact(6), Some(&pool_number(1)), 6));
        let before = Customer {
            id: CustomerId(1),
            number: num(&pool_number(1)),
            fields: CustomerFields::default(),
            link: Some(SfLink {
                record: contact(5),
                system_modstamp: Some(at(-1)),
            }),
            dirty: vec![],
            edited_at: None,
        };
        let run = |read_ahead: bool| {
            let w = World::new(records.clone())
                .page_size(2)
                .with_customers(vec![before.clone()]);
            let out = run_ahead_or_not(&w, SyncKind::Initial, read_ahead).unwrap();
            (w, out)
        };
        let (w, out) = run(true);
        let h = w.get(1);
        assert_eq!(h.number.e164(), num(&pool_number(1)).e164());
        assert_eq!(h.link.map(|l| l.record), Some(contact(6)));
        assert_eq!(outcome(&w, out.report), {
            let (w, out) = run(false);
            outcome(&w, out.report)
        });
    }

    /// R16 (one run at a time): the lease is renewed as it ages, not at every page, and a run
    /// whose lease another instance took stops with `LockLost`, keeping only whole commits.
    #[test]
    fn r16_the_lease_is_renewed_as_it_ages_and_a_run_that_lost_it_stops() {
        let records: Vec<SfRecord> = (1..=12)
            .map(|n| rec(lead(n), Some(&format!("03-5555-{n:04}")), i64::from(n)))
            .collect();
        let quick = World::new(records.clone())
            .page_size(2)
            .targets(true, false);
        quick.run(SyncKind::Initial).unwrap();
        // Taken once, never renewed: no time passed (the default lease is 5 minutes).
        assert_eq!(quick.lock_calls.load(Ordering::SeqCst), 1);

        let slow = World::new(records.clone())
            .page_size(2)
            .targets(true, false);
        slow.page_minutes.store(1, Ordering::SeqCst);
        slow.run(SyncKind::Initial).unwrap();
        // Six pages of a minute each: renewed about every 100 s.
        let calls = slow.lock_calls.load(Ordering::SeqCst);
        assert!((3..=6).contains(&calls), "{calls} lock calls");

        let lost = World::new(records).page_size(2).targets(true, false);
        lost.page_minutes.store(2, Ordering::SeqCst);
        *lost.takeover_at_fetch.lock().unwrap() = Some(2);
        let err = lost.run(SyncKind::Initial).unwrap_err();
        assert!(matches!(err, SyncError::LockLost), "{err:?}");
        let committed = lost.customers().len();
        assert!(
            (2..=6).contains(&committed) && committed.is_multiple_of(2),
            "whole pages before the takeover, none after: {committed}"
        );
        assert_eq!(lost.last_run().ok, Some(false));
        assert_eq!(
            lost.db.lock().unwrap().lock.as_deref(),
            Some("another-instance")
        );
    }

    #[test]
    fn r17_the_run_records_exact_counts() {
        let same = rec(lead(1), Some("03-1000-0001"), 20);
        let stale = rec(lead(2), Some("03-1000-0002"), 5);
        let mut fresh = stale.clone();
        fresh.email = Some("new@example.jp".into());
        fresh.system_modstamp = at(21);
        fresh.last_modified = at(21);
        let linked_no_phone = rec(lead(3), Some("03-1000-0003"), 5);
        let mut cleared = linked_no_phone.clone();
        cleared.phone = None;
        cleared.system_modstamp = at(22);
        let mut converted = rec(lead(7), Some("03-1000-0007"), 26);
        converted.is_converted = true;
        let w = World::new(vec![
            same.clone(),
            fresh,
            cleared,
            rec(lead(4), Some("03-1000-0004"), 23),
            rec(lead(5), Some("not a number 12"), 24),
            rec(lead(6), Some("0310000004"), 25), // same number as lead 4, newer
            converted,
        ])
        .targets(true, false)
        .with_customers(vec![
            customer_for(1, &same),
            customer_for(2, &stale),
            customer_for(3, &linked_no_phone),
        ])
        .watermark(SfObject::Lead, 15);

        let out = w.run(SyncKind::Incremental).unwrap();
        let expected = SyncReport {
            seen: 7,
            created: 1,
            updated: 1,
            unlinked: 1,
            unchanged: 1,
            skipped: [
                (skip::NO_PHONE.to_owned(), 1),
                (skip::INVALID_NUMBER.to_owned(), 1),
                (skip::CONVERTED.to_owned(), 1),
                (skip::DUPLICATE.to_owned(), 1),
            ]
            .into_iter()
            .collect(),
            duplicates: 1,
            written_back: 0,
            // check_field_access, active_users, deleted_since, one page.
            api_requests: 4,
            errors: vec![],
        };
        assert_eq!(out.report, expected);
        assert_eq!(out.status, RunStatus::Completed);
        let run = w.last_run();
        assert_eq!(run.report, expected, "the stored run is the report");
        assert_eq!(run.kind, SyncKind::Incremental);
        assert_eq!(
            (run.started_at, run.finished_at, run.ok),
            (at(NOW), Some(at(NOW)), Some(true))
        );
        assert_eq!(w.by_number("+81310000004").link.unwrap().record, lead(6));
    }

    #[test]
    fn r11_write_back_sends_only_synced_fields_never_a_contacts_company_and_the_echo_does_not_bounce()
     {
        let c_rec = rec(contact(1), Some("03-1000-0001"), 5);
        let l_rec = rec(lead(1), Some("03-1000-0002"), 5);
        let only_company = rec(contact(2), Some("03-1000-0003"), 5);
        let mut a = customer_for(1, &c_rec);
        a.fields.name = Some("電話 花子".into());
        a.fields.company = Some("ローカル社".into());
        a.fields.address = Some("大阪府".into());
        a.fields.memo = Some("ローカルメモ".into());
        a.dirty = vec![SyncedField::Name, SyncedField::Company, SyncedField::Memo];
        a.edited_at = Some(at(50));
        let mut b = customer_for(2, &l_rec);
        b.number = num("090-1111-2222");
        b.fields.company = Some("新社名".into());
        b.dirty = vec![SyncedField::Company, SyncedField::Phone];
        b.edited_at = Some(at(50));
        let mut d = customer_for(3, &only_company);
        d.fields.company = Some("変更".into());
        d.dirty = vec![SyncedField::Company];
        d.edited_at = Some(at(50));
        let w = World::new(vec![c_rec, l_rec, only_company])
            .with_customers(vec![a, b, d])
            .watermark(SfObject::Lead, 10)
            .watermark(SfObject::Contact, 10);

        let out = block_on(CustomerSync::new(w.ports(), options()).write_back(&tenant())).unwrap();
        assert_eq!(out.report.written_back, 2);
        assert_eq!(w.last_run().kind, SyncKind::WriteBack);
        let calls = w.sf.lock().unwrap().update_calls.clone();
        assert_eq!(calls.len(), 1, "one batched call");
        assert_eq!(
            calls[0],
            vec![
                RecordUpdate {
                    record: contact(1),
                    changes: vec![
                        FieldChange::Name {
                            last_name: "電話".into(),
                            first_name: Some("花子".into())
                        },
                        FieldChange::Description(Some("ローカルメモ".into())),
                    ],
                },
                RecordUpdate {
                    record: lead(1),
                    changes: vec![
                        FieldChange::Phone(Some("090-1111-2222".into())),
                        FieldChange::Company(Some("新社名".into())),
                    ],
                },
            ]
        );
        assert!(
            w.customers().iter().all(|c| c.dirty.is_empty()),
            "a Contact's company is not kept pending"
        );

        // The echo: Salesforce now has our values (newer modstamp). Nothing is written again.
        let out = w.run(SyncKind::Incremental).unwrap();
        assert_eq!(w.sf.lock().unwrap().update_calls.len(), 1, "no bounce");
        assert_eq!(out.report.written_back, 0);
        assert!(w.customers().iter().all(|c| c.dirty.is_empty()));
        assert_eq!(w.get(1).fields.name.as_deref(), Some("電話 花子"));
        assert_eq!(
            w.get(1).fields.company.as_deref(),
            Some("SF社"),
            "import-only: Salesforce's"
        );
        assert_eq!(w.get(2).number.e164(), "+819011112222");
    }

    #[test]
    fn r11_local_edit_newer_than_the_salesforce_change_wins_an_older_one_loses() {
        let newer_local = rec(lead(1), Some("03-1000-0001"), 5);
        let older_local = rec(lead(2), Some("03-1000-0002"), 5);
        let mut a = customer_for(1, &newer_local);
        a.fields.email = Some("local@example.jp".into());
        a.dirty = vec![SyncedField::Email];
        a.edited_at = Some(at(500));
        let mut b = customer_for(2, &older_local);
        b.fields.email = Some("local@example.jp".into());
        b.dirty = vec![SyncedField::Email];
        b.edited_at = Some(at(300));
        let mut sf_a = newer_local.clone();
        sf_a.email = Some("sf-new@example.jp".into());
        sf_a.last_name = Some("改名".into());
        sf_a.system_modstamp = at(400);
        sf_a.last_modified = at(400);
        let mut sf_b = older_local.clone();
        sf_b.email = Some("sf-new@example.jp".into());
        sf_b.system_modstamp = at(400);
        sf_b.last_modified = at(400);
        let w = World::new(vec![sf_a, sf_b])
            .targets(true, false)
            .with_customers(vec![a, b])
            .watermark(SfObject::Lead, 10);

        let out = w.run(SyncKind::Incremental).unwrap();
        assert_eq!(out.report.updated, 2);
        let calls = w.sf.lock().unwrap().update_calls.clone();
        assert_eq!(
            calls,
            vec![vec![RecordUpdate {
                record: lead(1),
                changes: vec![FieldChange::Email(Some("local@example.jp".into()))],
            }]],
            "only the newer local edit is written back"
        );
        assert_eq!(
            w.get(1).fields.name.as_deref(),
            Some("改名 名"),
            "other fields take Salesforce's"
        );
        assert_eq!(w.get(2).fields.email.as_deref(), Some("sf-new@example.jp"));
        assert_eq!(out.report.written_back, 1);
    }

    #[test]
    fn r11_r40_a_rejected_write_back_is_explained_and_stays_pending() {
        let l1 = rec(lead(1), Some("03-1000-0001"), 5);
        let l2 = rec(lead(2), Some("03-1000-0002"), 5);
        let mut a = customer_for(1, &l1);
        a.fields.email = None;
        a.dirty = vec![SyncedField::Email];
        a.edited_at = Some(at(50));
        let mut b = customer_for(2, &l2);
        b.fields.memo = Some("メモ".into());
        b.dirty = vec![SyncedField::Memo];
        b.edited_at = Some(at(50));
        let w = World::new(vec![l1, l2]).with_customers(vec![a, b]);
        w.sf.lock().unwrap().fail_updates.insert(lead(1));

        let out = block_on(CustomerSync::new(w.ports(), options()).write_back(&tenant())).unwrap();
        assert_eq!(out.report.written_back, 1);
        assert_eq!(out.report.errors.len(), 1);
        assert!(
            out.report.errors[0].contains("validation rule"),
            "{:?}",
            out.report.errors
        );
        assert!(
            out.report.errors[0].contains("Validation Rules"),
            "says what to change"
        );
        assert_eq!(w.get(1).dirty, vec![SyncedField::Email], "still pending");
        assert!(w.get(2).dirty.is_empty());
    }

    #[test]
    fn c3_background_sync_defers_first_and_records_why() {
        let l1 = rec(lead(1), Some("03-1000-0001"), 5);
        let mut edited = customer_for(1, &l1);
        edited.fields.memo = Some("ローカル".into());
        edited.dirty = vec![SyncedField::Memo];
        edited.edited_at = Some(at(50));
        let w = World::new(vec![l1]).with_customers(vec![edited]);
        // 20 % of 100,000 = 20,000; background stops at 16,000, write-back at 18,000.
        *w.usage.lock().unwrap() = Some(ApiUsage {
            used: 50_000,
            max: 100_000,
            observed_at: at(NOW),
        });
        w.requests.store(16_500, Ordering::SeqCst);

        let out = w.run(SyncKind::Initial).unwrap();
        assert_eq!(out.status, RunStatus::Deferred(DeferReason::Budget));
        assert!(
            w.sf.lock().unwrap().fetches.is_empty(),
            "no background request"
        );
        // Write-back has the higher priority (ceiling 18,000): it still ran, one request.
        assert_eq!(out.report.written_back, 1);
        assert_eq!(out.report.api_requests, 1);
        assert!(w.get(1).dirty.is_empty());
        let run = w.last_run();
        assert_eq!(run.ok, Some(false));
        assert!(run.report.errors[0].starts_with("deferred (C3)"));
        assert_eq!(w.db.lock().unwrap().lock, None);

        // Past the write-back ceiling too: the edit waits, nothing is lost.
        w.requests.store(18_000, Ordering::SeqCst);
        let mut again = w.get(1);
        again.dirty = vec![SyncedField::Memo];
        w.db.lock().unwrap().customers.insert(1, again);
        let out = block_on(CustomerSync::new(w.ports(), options()).write_back(&tenant())).unwrap();
        assert_eq!(out.status, RunStatus::Deferred(DeferReason::Budget));
        assert_eq!(w.get(1).dirty, vec![SyncedField::Memo], "still pending");
    }

    #[test]
    fn c3_a_stale_usage_observation_does_not_defer_background_sync_forever() {
        let w = World::new(vec![rec(lead(1), Some("03-1000-0001"), 5)]).targets(true, false);
        // Seen nearly out two hours ago (a deferred run refreshes nothing): by now the
        // rolling window may have moved on, and only a request can tell.
        *w.usage.lock().unwrap() = Some(ApiUsage {
            used: 99_000,
            max: 100_000,
            observed_at: at(NOW - 120),
        });
        let out = w.run(SyncKind::Initial).unwrap();
        assert_eq!(out.status, RunStatus::Completed);
        assert_eq!(w.customers().len(), 1);

        // Seen nearly out just now: it defers.
        let w = World::new(vec![rec(lead(1), Some("03-1000-0001"), 5)]).targets(true, false);
        *w.usage.lock().unwrap() = Some(ApiUsage {
            used: 99_000,
            max: 100_000,
            observed_at: at(NOW - 1),
        });
        let out = w.run(SyncKind::Initial).unwrap();
        assert_eq!(out.status, RunStatus::Deferred(DeferReason::Budget));
        assert!(w.customers().is_empty());
    }

    #[test]
    fn c3_a_deferral_mid_run_keeps_committed_pages_and_the_next_run_resumes() {
        let records: Vec<SfRecord> = (1..=5)
            .map(|i| rec(lead(i), Some(&format!("03-1000-000{i}")), i64::from(i)))
            .collect();
        let w = World::new(records).page_size(2).targets(true, false);
        *w.usage.lock().unwrap() = Some(ApiUsage {
            used: 50_000,
            max: 100_000,
            observed_at: at(NOW),
        });
        // Preflight, users and page 1 bring us to the background ceiling of 16,000.
        w.requests.store(15_997, Ordering::SeqCst);
        let out = w.run(SyncKind::Initial).unwrap();
        assert_eq!(out.status, RunStatus::Deferred(DeferReason::Budget));
        assert_eq!(w.customers().len(), 2);
        assert_eq!(out.report.api_requests, 3);

        *w.usage.lock().unwrap() = None; // the rolling window moved on
        w.run(SyncKind::Initial).unwrap();
        assert_eq!(w.customers().len(), 5);
    }

    #[test]
    fn c3_salesforce_refusing_is_a_deferral_not_a_loss() {
        let w = World::new(vec![rec(lead(1), Some("03-1000-0001"), 5)]).targets(true, false);
        w.sf.lock().unwrap().fail_fetch = Some((
            0,
            SfError::Throttled {
                code: "REQUEST_LIMIT_EXCEEDED".into(),
                cause: "TotalRequests Limit exceeded".into(),
            },
        ));
        let out = w.run(SyncKind::Initial).unwrap();
        assert!(matches!(
            out.status,
            RunStatus::Deferred(DeferReason::Throttled(_))
        ));
        w.run(SyncKind::Initial).unwrap();
        assert_eq!(w.customers().len(), 1);
    }

    #[test]
    fn r14_r18_a_linked_record_moving_to_a_taken_number_competes_and_its_old_customer_is_unlinked()
    {
        let a_rec = rec(lead(1), Some("03-1000-0001"), 5);
        let b_rec = rec(contact(2), Some("03-1000-0002"), 5);
        let mut moved = a_rec.clone();
        moved.phone = Some("03-1000-0002".into());
        moved.system_modstamp = at(20);
        moved.last_modified = at(20);
        let w = World::new(vec![moved, b_rec.clone()])
            .with_customers(vec![customer_for(1, &a_rec), customer_for(2, &b_rec)])
            .watermark(SfObject::Lead, 10)
            .watermark(SfObject::Contact, 10);
        w.run(SyncKind::Incremental).unwrap();
        assert_eq!(
            w.get(1).link,
            None,
            "its record now carries another customer's number"
        );
        assert_eq!(
            w.get(2).link.unwrap().record,
            contact(2),
            "linked before the run: keeps it"
        );
        assert_eq!(w.duplicates(), vec![(lead(1), contact(2))]);
    }

    #[test]
    fn r11_a_linked_record_moving_to_a_free_number_takes_its_customer_along() {
        let a_rec = rec(lead(1), Some("03-1000-0001"), 5);
        let mut moved = a_rec.clone();
        moved.phone = Some("03-9999-0001".into());
        moved.system_modstamp = at(20);
        moved.last_modified = at(20);
        // A newcomer with the old number in the same page: it gets a new customer.
        let newcomer = rec(lead(2), Some("03-1000-0001"), 19);
        let w = World::new(vec![newcomer, moved])
            .targets(true, false)
            .with_customers(vec![customer_for(1, &a_rec)])
            .watermark(SfObject::Lead, 10);
        w.run(SyncKind::Incremental).unwrap();
        assert_eq!(w.get(1).number.e164(), "+81399990001");
        assert_eq!(w.by_number("+81310000001").link.unwrap().record, lead(2));
        assert!(w.duplicates().is_empty());
    }

    #[test]
    fn r16_a_page_inside_the_overlap_never_moves_the_watermark_back() {
        // Read again because of the overlap (SystemModstamp 5 minutes before the watermark).
        let r = rec(lead(1), Some("03-1000-0001"), 995);
        let w = World::new(vec![r.clone()])
            .targets(true, false)
            .with_customers(vec![customer_for(1, &r)])
            .watermark(SfObject::Lead, 1_000);
        let out = w.run(SyncKind::Incremental).unwrap();
        assert_eq!(
            out.report.unchanged, 1,
            "the re-read is an echo, not a change"
        );
        assert_eq!(
            w.db.lock().unwrap().watermarks.get(&SfObject::Lead),
            Some(&at(1_000))
        );
    }
}

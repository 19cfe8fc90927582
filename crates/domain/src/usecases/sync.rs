//! Customer sync (R10–R17, C3): the initial import, the hourly incremental sync and the
//! write-back of phone-system edits, as one service that only talks to ports.
//!
//! # Shape of a run
//! 1. One run per tenant at a time: a lease on the `sync` lock, renewed before every page and
//!    released at the end, also on failure.
//! 2. C3: background work defers first. The budget is checked before the run and before every
//!    page; a deferral (or Salesforce's own `REQUEST_LIMIT_EXCEEDED`) ends the run as
//!    [`RunStatus::Deferred`] after the last committed page. Nothing is lost: the next run
//!    resumes from the committed watermark.
//! 3. R10 preflight (`check_field_access`) before any page: a hidden field stops the run with
//!    the explanation of what to change in Salesforce; nothing is imported.
//! 4. The User directory is refreshed for owner resolution (R23).
//! 5. Per object: deletions and merges first (incremental, R16), then every page of changed
//!    records. Each page becomes one [`CustomerChanges`] applied in one store transaction
//!    together with the object's watermark, so a run that fails half-way resumes after its last
//!    committed page. Memory is bounded by the page plus a small per-run index of numbers (see
//!    below), never by all records.
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
//! duplicates recorded by *earlier* runs are not promoted, because no port lists duplicates
//! by number (see the report for the port that would close this).

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
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The name of the per-tenant lease that keeps runs from overlapping.
pub const LOCK_KEY: &str = "sync";

/// Skip reasons recorded in [`SyncReport::skipped`] (R17).
pub mod skip {
    /// R12: the record's Phone is empty.
    pub const NO_PHONE: &str = "no_phone";
    /// R13: the Phone is not a valid number.
    pub const INVALID_NUMBER: &str = "invalid_number";
    /// R15: a converted Lead that is not imported (or no longer linked).
    pub const CONVERTED: &str = "converted";
    /// R14: another record won the number.
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
    /// Lease on the tenant's `sync` lock; renewed before every page, so it only needs to
    /// outlast one page (fetch + store).
    pub lock_ttl: Duration,
    /// Who holds the lease. Must be unique per process (e.g. host name + pid or a uuid):
    /// two processes with the same holder would both "renew" one lease.
    pub holder: String,
    /// Customers written back per round (the Salesforce adapter splits them into requests of
    /// at most 200).
    pub write_back_limit: u64,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            overlap: Duration::from_secs(10 * 60),
            lock_ttl: Duration::from_secs(5 * 60),
            holder: format!("customer-sync-{}", std::process::id()),
            write_back_limit: 1_000,
        }
    }
}

/// Progress of a run, after every page (for progress bars).
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
    /// Every run ends with a write-back round, budget permitting.
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
            let result = match result {
                Ok(None) => self.write_back_round(t, &mut run).await,
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
        let now = p.clock.now();
        let acquired = p
            .locks
            .try_lock(
                t,
                LOCK_KEY,
                &self.options.holder,
                self.options.lock_ttl,
                now,
            )
            .await?;
        if !acquired {
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
        let id = p.runs.start_run(t, kind, p.clock.now()).await?;
        Ok(Run {
            id,
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

    /// C3: may background (or write-back) work spend API requests now?
    ///
    /// `ApiUsageView` gives the org's usage over Salesforce's rolling 24 h and this process's
    /// requests since it started; neither is exactly "ours in the last 24 h". The smaller of
    /// the two is an upper bound of it once the process is a day old, and never grows without
    /// bound the way the process counter alone would (which would defer sync forever).
    fn budget(&self, t: &TenantId, priority: Priority, run: &Run) -> Option<DeferReason> {
        let usage = self.ports.usage.usage(t);
        let sent = self.ports.usage.requests_sent(t);
        let ours = usage.map_or(sent, |u| sent.min(u.used));
        match may_spend(priority, usage, ours, run.settings.api_budget_percent) {
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

    /// Pages through every record the query matches (R16: no 2,000 cap), one committed
    /// transaction per page.
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
        let mut cursor: Option<PageCursor> = None;
        let mut seen_here = 0u64;
        loop {
            let now = p.clock.now();
            let renewed = p
                .locks
                .try_lock(
                    t,
                    LOCK_KEY,
                    &self.options.holder,
                    self.options.lock_ttl,
                    now,
                )
                .await?;
            if !renewed {
                return Err(SyncError::LockLost);
            }
            if let Some(reason) = self.budget(t, Priority::Background, run) {
                return Ok(Some(reason));
            }
            if cap.is_some_and(|cap| run.report.seen >= cap) {
                return Ok(None);
            }
            let page = p.reader.fetch_page(t, query, cursor.take()).await?;
            let mut records = page.records;
            let mut capped = false;
            if let Some(cap) = cap {
                let room = cap.saturating_sub(run.report.seen);
                if (records.len() as u64) > room {
                    records.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                    capped = true;
                }
            }
            seen_here += records.len() as u64;
            run.report.seen += records.len() as u64;

            let mut changes = self
                .decide_page(t, &records, follow_conversions, run)
                .await?;
            // Records come ordered by (SystemModstamp, Id): the last one is how far we got.
            // Never move the watermark back (an incremental page may lie inside the overlap).
            if let Some(last) = records.last() {
                let next = watermark.map_or(last.system_modstamp, |w| w.max(last.system_modstamp));
                watermark = Some(next);
                changes.watermark = Some((query.object, next));
            }
            p.customers.apply_changes(t, &changes).await?;
            run.count_committed(&changes);
            run.report.api_requests = p.usage.requests_sent(t).saturating_sub(run.requests_before);
            p.runs.update_run(t, run.id, &run.report, None).await?;
            progress(SyncProgress {
                object: query.object,
                seen: seen_here,
                total: page.total_size,
            });
            match page.next {
                Some(next) if !capped => cursor = Some(next),
                _ => return Ok(None),
            }
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
            page.clear_duplicate(&d.record, run);
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
                    page.clear_duplicate(&winner.record, run);
                }
                None => book.unlink(ci),
            }
        }
        let changes = page.into_changes(book);
        p.customers.apply_changes(t, &changes).await?;
        run.count_committed(&changes);
        Ok(())
    }

    /// Decides one page with the pure rules (R11–R15) and returns its changes, unapplied.
    /// IO: one `find_by_records`, at most one `fetch_records` (conversions), one
    /// `find_by_numbers`.
    async fn decide_page(
        &self,
        t: &TenantId,
        records: &[SfRecord],
        follow_conversions: bool,
        run: &mut Run,
    ) -> Result<CustomerChanges, SyncError> {
        let p = &self.ports;
        let mut book = Book::default();
        let converted_to = |r: &SfRecord| {
            r.converted_contact_id
                .clone()
                .map(|id| SalesforceRecordRef {
                    object: SfObject::Contact,
                    id,
                })
        };
        let is_converted = |r: &SfRecord| r.record.object == SfObject::Lead && r.is_converted;

        let mut refs: Vec<SalesforceRecordRef> = records.iter().map(|r| r.record.clone()).collect();
        if follow_conversions {
            refs.extend(
                records
                    .iter()
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
            let wanted: Vec<SalesforceRecordRef> = records
                .iter()
                .filter(|r| is_converted(r) && book.linked(&r.record).is_some())
                .filter_map(converted_to)
                .collect();
            if !wanted.is_empty() {
                contacts = p.reader.fetch_records(t, &wanted).await?;
            }
        }

        let mut numbers: Vec<String> = records
            .iter()
            .chain(contacts.iter())
            .filter_map(valid_number)
            .map(|n| n.e164().to_owned())
            .collect();
        numbers.sort();
        numbers.dedup();
        if !numbers.is_empty() {
            book.load(p.customers.find_by_numbers(t, &numbers).await?);
        }

        let mut page = PageOut::default();
        // Linked records first: a record moving away frees its number before newcomers to
        // that number are decided (see the module docs).
        let (linked, unlinked): (Vec<&SfRecord>, Vec<&SfRecord>) = records
            .iter()
            .partition(|r| book.linked(&r.record).is_some());
        for r in linked.into_iter().chain(unlinked) {
            if is_converted(r) {
                let contact = converted_to(r).and_then(|c| contacts.iter().find(|x| x.record == c));
                match book.linked(&r.record) {
                    Some(ci) if follow_conversions => {
                        page.conversion(&mut book, ci, r, contact, run);
                    }
                    _ => {
                        run.index.unsee(&r.record);
                        page.clear_duplicate(&r.record, run);
                        page.skip(skip::CONVERTED, run);
                    }
                }
                continue;
            }
            match r.phone.as_deref().map(PhoneNumber::parse) {
                Some(Ok(number)) => page.incoming(&mut book, r, &number, run),
                Some(Err(PhoneError::Invalid(_))) => {
                    page.numberless(&mut book, r, skip::INVALID_NUMBER, run);
                }
                None | Some(Err(PhoneError::NoNumber)) => {
                    page.numberless(&mut book, r, skip::NO_PHONE, run);
                }
            }
        }
        Ok(page.into_changes(book))
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

/// The state of one run.
struct Run {
    id: i64,
    settings: IntegrationSettings,
    requests_before: u64,
    report: SyncReport,
    index: RunIndex,
}

impl Run {
    /// R17 counts of customers, from what was actually committed.
    fn count_committed(&mut self, c: &CustomerChanges) {
        self.report.created += c.creates.len() as u64;
        self.report.updated += c.updates.len() as u64;
        self.report.unlinked += c.unlinks.len() as u64;
        self.report.duplicates = self.index.duplicates.len() as u64;
    }
}

#[derive(Debug, Clone)]
struct Seen {
    candidate: Candidate,
    system_modstamp: DateTime<Utc>,
}

/// What a run remembers across pages so that R14 does not depend on page order (module docs).
#[derive(Default)]
struct RunIndex {
    /// E.164 → the records of this run that carry it.
    seen: HashMap<String, Vec<Seen>>,
    /// Record → the number it was last seen with.
    seen_at: HashMap<SalesforceRecordRef, String>,
    /// Records this run linked to a customer they were not linked to before.
    fresh: HashSet<SalesforceRecordRef>,
    /// Records this run recorded as duplicates and that still are.
    duplicates: HashSet<SalesforceRecordRef>,
}

impl RunIndex {
    fn see(&mut self, r: &SfRecord, e164: &str) {
        self.unsee(&r.record);
        self.seen
            .entry(e164.to_owned())
            .or_default()
            .push(candidate(r));
        self.seen_at.insert(r.record.clone(), e164.to_owned());
    }

    fn unsee(&mut self, record: &SalesforceRecordRef) {
        if let Some(old) = self.seen_at.remove(record)
            && let Some(list) = self.seen.get_mut(&old)
        {
            list.retain(|s| &s.candidate.record != record);
            if list.is_empty() {
                self.seen.remove(&old);
            }
        }
    }
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
}

impl PageOut {
    fn skip(&mut self, reason: &str, run: &mut Run) {
        *run.report.skipped.entry(reason.to_owned()).or_default() += 1;
    }

    fn clear_duplicate(&mut self, record: &SalesforceRecordRef, run: &mut Run) {
        run.index.duplicates.remove(record);
        if !self.clear_duplicates.contains(record) {
            self.clear_duplicates.push(record.clone());
        }
    }

    fn duplicate(&mut self, e164: &str, loser: &Seen, winner: &SalesforceRecordRef, run: &mut Run) {
        run.index.duplicates.insert(loser.candidate.record.clone());
        self.clear_duplicates
            .retain(|r| r != &loser.candidate.record);
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
    fn numberless(&mut self, book: &mut Book, r: &SfRecord, reason: &str, run: &mut Run) {
        self.skip(reason, run);
        run.index.unsee(&r.record);
        self.clear_duplicate(&r.record, run);
        if let Some(ci) = book.linked(&r.record) {
            let c = book.get(ci);
            let local_phone_wins = c.dirty.contains(&SyncedField::Phone)
                && c.edited_at.is_some_and(|at| at > r.last_modified);
            if !local_phone_wins {
                book.unlink(ci);
                run.index.fresh.remove(&r.record);
            }
        }
    }

    /// R11/R14/R18: a record with a valid number.
    fn incoming(&mut self, book: &mut Book, r: &SfRecord, number: &PhoneNumber, run: &mut Run) {
        let cr = book.linked(&r.record);
        // The number the record ends up with: a newer local Phone edit keeps the customer's.
        let merged_cr = cr.map(|ci| merge_incoming(book.get(ci), r, number));
        let target = merged_cr
            .as_ref()
            .map_or_else(|| number.clone(), |m| m.number.clone());
        let e164 = target.e164().to_owned();
        run.index.see(r, &e164);
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
                run.report.unchanged += 1;
            }
            self.clear_duplicate(&r.record, run);
            return;
        }

        let mut candidates: Vec<Seen> = run.index.seen.get(&e164).cloned().unwrap_or_default();
        if let Some(h) = holder
            && let Some(link) = book.get(h).link.clone()
        {
            let before_run = !run.index.fresh.contains(&link.record);
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
                run.index.fresh.remove(&r.record);
            }
            if let Some(me) = candidates.iter().find(|s| s.candidate.record == r.record) {
                let me = me.clone();
                self.duplicate(&e164, &me, &winner.record, run);
            }
            self.skip(skip::DUPLICATE, run);
            return;
        }

        match holder {
            None => {
                let link = SfLink {
                    record: r.record.clone(),
                    system_modstamp: Some(r.system_modstamp),
                };
                book.create(number.clone(), r.customer_fields(), link);
                run.index.fresh.insert(r.record.clone());
            }
            Some(h) => {
                if let Some(ci) = cr {
                    book.unlink(ci);
                }
                if let Some(old) = book.get(h).link.clone() {
                    run.index.fresh.remove(&old.record);
                }
                let m = merge_incoming(book.get(h), r, number);
                book.apply(h, m.number, m.fields, Some(m.link), m.dirty);
                run.index.fresh.insert(r.record.clone());
            }
        }
        self.clear_duplicate(&r.record, run);
        for loser in candidates.iter().filter(|s| s.candidate.record != r.record) {
            self.duplicate(&e164, loser, &r.record, run);
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
        run: &mut Run,
    ) {
        run.index.unsee(&lead.record);
        self.clear_duplicate(&lead.record, run);
        run.index.fresh.remove(&lead.record);
        let (Conversion::Relink(merged), Some(contact)) =
            (follow_conversion(book.get(ci), contact), contact)
        else {
            book.unlink(ci);
            self.skip(skip::CONVERTED, run);
            return;
        };
        let e164 = merged.number.e164().to_owned();
        let contact_has_customer = book.linked(&contact.record).is_some_and(|x| x != ci);
        let number_taken = book.holder(&e164).is_some_and(|x| x != ci);
        if contact_has_customer {
            // The Contact already has its own customer: this one lost its record.
            book.unlink(ci);
            self.skip(skip::CONVERTED, run);
        } else if number_taken {
            // R18: another customer holds the Contact's number; the Contact competes for it
            // like any incoming record, and this customer is unlinked.
            book.unlink(ci);
            self.incoming(book, contact, &merged.number, run);
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
            run.index.see(contact, &e164);
            self.clear_duplicate(&contact.record, run);
        }
    }

    fn into_changes(self, book: Book) -> CustomerChanges {
        let mut changes = CustomerChanges {
            duplicates: self.duplicates,
            clear_duplicates: self.clear_duplicates,
            ..CustomerChanges::default()
        };
        for e in book.entries {
            let c = e.customer;
            match e.original {
                None => {
                    // Created by this page; a create is always linked.
                    changes.creates.push(NewCustomer {
                        number: c.number,
                        fields: c.fields,
                        link: c.link,
                    });
                }
                Some(o) if o == c => {}
                Some(o) => {
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
        changes
    }
}

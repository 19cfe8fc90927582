//! Turning stored call events into exactly one Salesforce activity per call (R20–R27,
//! R30–R35, R6, C3).
//!
//! The worker (in `event-ingest`) claims queue items and hands them here in batches;
//! [`CallLogger::process`] decides each item with the pure rules, talks to Salesforce and the
//! store through the ports, and returns what should happen to each item (done, retry, hold,
//! dead-letter). Task inserts of one batch and tenant go to Salesforce in one request.
//!
//! Exactly once (R25): a call's Task id is stored against the call; an item that is retried
//! (it may have created the Task before a crash) first asks Salesforce for a Task with its
//! `CallObject`. Events of one call, and unknown numbers (R34), are serialized with leases.

use crate::ports::*;
use crate::rules::budget::{Priority, Spend, may_spend};
use crate::rules::create::{CreationPlan, plan_creation};
use crate::rules::explain::explain;
use crate::rules::folding::{TaskAction, fold, merge_call};
use crate::rules::notify::should_process;
use crate::rules::owner::resolve_owner;
use crate::rules::routing::{LocalRoute, SearchRoute, route_after_search, route_local};
use crate::rules::task::{TaskContext, compose_task, description, patch_task};
use crate::rules::transcript::{
    DESCRIPTION_LIMIT, continuation_call_object, continuation_subject, render_lines,
    split_descriptions,
};
use crate::{
    CallEvent, Customer, CustomerFields, ErrorClass, EventKind, IntegrationSettings, OrgProblem,
    PhoneNumber, SalesforceId, SalesforceRecordRef, SfError, SfLink, SfObject, SfUser, StoreError,
    TenantId,
};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The ports the call logger uses.
#[derive(Clone)]
pub struct CallLoggingPorts {
    pub sf_read: Arc<dyn SalesforceReader>,
    pub sf_write: Arc<dyn SalesforceWriter>,
    pub usage: Arc<dyn ApiUsageView>,
    pub customers: Arc<dyn CustomerStore>,
    pub events: Arc<dyn EventLog>,
    pub tasks: Arc<dyn CallTaskStore>,
    pub directory: Arc<dyn DirectoryStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub locks: Arc<dyn Locks>,
    pub clock: Arc<dyn Clock>,
}

/// Named points where tests make the step "crash" (nothing after the point is recorded and
/// the item keeps its lease, as if the process died there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailPoint {
    /// The item is claimed, nothing has been sent.
    AfterClaim,
    /// Salesforce accepted the write; callsync has not recorded it.
    AfterSalesforceCall,
    /// Everything is recorded except the queue item's completion.
    BeforeCommit,
}

/// Test hook; production uses [`NoFailPoints`].
pub trait FailPoints: Send + Sync {
    /// `true` to crash at this point for this item.
    fn crash(&self, point: FailPoint, item: &WorkItem) -> bool;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct NoFailPoints;
impl FailPoints for NoFailPoints {
    fn crash(&self, _: FailPoint, _: &WorkItem) -> bool {
        false
    }
}

/// What should happen to a claimed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    /// Finished: record the outcome and complete the item.
    Done(EventOutcome),
    /// Try again later (counts as an attempt).
    RetryAt(DateTime<Utc>, Failure),
    /// Run again later without counting an attempt: the item waited for another worker.
    Wait(DateTime<Utc>, Failure),
    /// Hold until the cause is fixed (reconnect).
    Hold(HoldReason, Failure),
    /// Dead-letter with the cause (admin can retry, R40).
    Dead(Failure),
    /// A fail point fired: leave the item as a crashed worker would.
    Crashed(FailPoint),
}

#[derive(Debug, Clone)]
pub struct CallLoggingOptions {
    /// Lease on per-call and per-number locks.
    pub lock_ttl: Duration,
    /// Transient failures before an item is dead-lettered (admins can still retry it).
    pub max_transient_attempts: u32,
    /// How often a transcription waits for its call's Task before writing one itself.
    pub max_transcript_waits: u32,
    /// Name of this worker, for leases.
    pub holder: String,
}

impl Default for CallLoggingOptions {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_secs(60),
            max_transient_attempts: 20,
            max_transcript_waits: 8,
            holder: "worker".to_owned(),
        }
    }
}

/// A Task waiting to go out in the batch insert.
struct PendingCreate {
    index: usize,
    draft: TaskDraft,
    continuations: Vec<TaskDraft>,
    event_id: i64,
    /// The per-call lease, released once the create is recorded.
    call_key: String,
    /// What adoption of an earlier attempt's Task needs (R25).
    merged: Box<CallEvent>,
    parts: Vec<String>,
    /// A Task for this call may exist unrecorded (see `Decided::Create`).
    check_existing: bool,
}

/// Per-tenant context loaded once per batch.
struct TenantCtx {
    settings: IntegrationSettings,
    connecting_user: SalesforceId,
    users: Vec<SfUser>,
}

pub struct CallLogger {
    ports: CallLoggingPorts,
    options: CallLoggingOptions,
    fail: Arc<dyn FailPoints>,
}

fn store_failure(e: &StoreError) -> Failure {
    Failure {
        class: ErrorClass::Transient,
        code: "STORE".to_owned(),
        message_en: format!("callsync's database was unavailable ({e}); retrying."),
        message_ja: format!(
            "callsyncのデータベースが一時的に利用できませんでした（{e}）。再試行します。"
        ),
        fix_en: None,
        fix_ja: None,
    }
}

fn waiting(en: &str, ja: &str) -> Failure {
    Failure {
        class: ErrorClass::Transient,
        code: "WAITING".to_owned(),
        message_en: en.to_owned(),
        message_ja: ja.to_owned(),
        fix_en: None,
        fix_ja: None,
    }
}

/// Exponential backoff with a deterministic per-item jitter (spreads retries of a burst
/// without a random source in the core): 2 s · 2^attempts, capped at 1 h, plus up to 1 s.
pub fn backoff(item_id: i64, attempts: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let base_ms: i64 = 2_000i64
        .saturating_mul(1i64 << attempts.min(11))
        .min(3_600_000);
    let jitter = (item_id
        .wrapping_mul(2_654_435_761)
        .wrapping_add(i64::from(attempts)))
    .rem_euclid(1_000);
    now + ChronoDuration::milliseconds(base_ms + jitter)
}

type Flow<T> = Result<T, ItemResult>;

impl CallLogger {
    pub fn new(
        ports: CallLoggingPorts,
        options: CallLoggingOptions,
        fail: Arc<dyn FailPoints>,
    ) -> Self {
        Self {
            ports,
            options,
            fail,
        }
    }

    fn on_sf_error(&self, e: &SfError, item: &WorkItem) -> ItemResult {
        let failure = explain(e);
        let now = self.ports.clock.now();
        match e.class() {
            ErrorClass::Transient if item.attempts + 1 >= self.options.max_transient_attempts => {
                ItemResult::Dead(failure)
            }
            ErrorClass::Transient => {
                ItemResult::RetryAt(backoff(item.id, item.attempts, now), failure)
            }
            // C3: Salesforce refused; wait for the rolling allowance (5 min, growing to 1 h).
            ErrorClass::Throttled => ItemResult::RetryAt(
                now + ChronoDuration::minutes(
                    5i64.saturating_mul(1 << item.attempts.min(4)).min(60),
                ),
                failure,
            ),
            ErrorClass::NeedsReconnect => ItemResult::Hold(HoldReason::NeedsReconnect, failure),
            ErrorClass::OrgConfig | ErrorClass::BadData => ItemResult::Dead(failure),
        }
    }

    fn on_store_error(&self, e: &StoreError, item: &WorkItem) -> ItemResult {
        ItemResult::RetryAt(
            backoff(item.id, item.attempts, self.ports.clock.now()),
            store_failure(e),
        )
    }

    /// Takes the lease `key` for this worker, or asks for the item to be retried shortly
    /// (with `busy_en`/`busy_ja` as the reason admins see) when another worker holds it.
    async fn lease(
        &self,
        t: &TenantId,
        item: &WorkItem,
        key: &str,
        busy_en: &str,
        busy_ja: &str,
    ) -> Flow<()> {
        let now = self.ports.clock.now();
        let locked = self
            .ports
            .locks
            .try_lock(t, key, &self.options.holder, self.options.lock_ttl, now)
            .await
            .map_err(|e| self.on_store_error(&e, item))?;
        if locked {
            Ok(())
        } else {
            Err(ItemResult::Wait(
                now + ChronoDuration::seconds(2),
                waiting(busy_en, busy_ja),
            ))
        }
    }

    /// Processes a batch of claimed items and returns each with its result, in input order.
    pub async fn process(&self, items: &[WorkItem]) -> Vec<ItemResult> {
        let mut results: Vec<Option<ItemResult>> = vec![None; items.len()];
        let mut by_tenant: BTreeMap<TenantId, Vec<usize>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            if self.fail.crash(FailPoint::AfterClaim, item) {
                results[i] = Some(ItemResult::Crashed(FailPoint::AfterClaim));
                continue;
            }
            by_tenant.entry(item.tenant.clone()).or_default().push(i);
        }
        for (tenant, indices) in by_tenant {
            self.process_tenant(&tenant, items, &indices, &mut results)
                .await;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    ItemResult::Wait(
                        self.ports.clock.now(),
                        waiting(
                            "not processed in this batch",
                            "このバッチでは処理されませんでした",
                        ),
                    )
                })
            })
            .collect()
    }

    async fn tenant_ctx(&self, t: &TenantId) -> Result<Option<TenantCtx>, ItemResultFactory> {
        let settings = self
            .ports
            .settings
            .settings(t)
            .await
            .map_err(ItemResultFactory::Store)?
            .unwrap_or_default();
        let Some(creds) = self
            .ports
            .credentials
            .load(t)
            .await
            .map_err(ItemResultFactory::Store)?
        else {
            return Ok(None);
        };
        let mut users = self
            .ports
            .directory
            .users(t)
            .await
            .map_err(ItemResultFactory::Store)?;
        if users.is_empty() {
            // First calls before the first sync: load the directory once (R23); the sync
            // refreshes it afterwards.
            users = self
                .ports
                .sf_read
                .active_users(t)
                .await
                .map_err(ItemResultFactory::Sf)?;
            self.ports
                .directory
                .save_users(t, &users)
                .await
                .map_err(ItemResultFactory::Store)?;
        }
        Ok(Some(TenantCtx {
            settings,
            connecting_user: creds.user.user_id,
            users,
        }))
    }

    async fn process_tenant(
        &self,
        t: &TenantId,
        items: &[WorkItem],
        indices: &[usize],
        results: &mut [Option<ItemResult>],
    ) {
        let ctx = match self.tenant_ctx(t).await {
            Ok(Some(ctx)) => ctx,
            Ok(None) => {
                let f = explain(&SfError::NeedsReconnect {
                    code: "NOT_CONNECTED".into(),
                    cause: "the tenant has no Salesforce connection".into(),
                });
                for &i in indices {
                    results[i] = Some(ItemResult::Hold(HoldReason::NeedsReconnect, f.clone()));
                }
                return;
            }
            Err(factory) => {
                for &i in indices {
                    results[i] = Some(factory.result(self, &items[i]));
                }
                return;
            }
        };

        let mut pending: Vec<PendingCreate> = Vec::new();
        let mut calls_seen: HashSet<String> = HashSet::new();
        for &i in indices {
            let item = &items[i];
            let WorkKind::CallEvent {
                event_id, call_id, ..
            } = &item.kind;
            // One call's events are decided one at a time, in order: a second event of the
            // same call in this batch waits for the next round (R25).
            if !calls_seen.insert(call_id.as_str().to_owned()) {
                results[i] = Some(ItemResult::Wait(
                    self.ports.clock.now(),
                    waiting(
                        "another event of this call is in progress",
                        "同じ通話の別イベントを処理中です",
                    ),
                ));
                continue;
            }
            match self.decide(t, &ctx, item, *event_id).await {
                Ok(Decided::Finished(r)) => results[i] = Some(r),
                Ok(Decided::Create {
                    draft,
                    continuations,
                    merged,
                    parts,
                    check_existing,
                }) => pending.push(PendingCreate {
                    index: i,
                    draft,
                    continuations,
                    event_id: *event_id,
                    call_key: call_key(call_id.as_str()),
                    merged,
                    parts,
                    check_existing,
                }),
                Err(r) => results[i] = Some(r),
            }
        }
        if pending.is_empty() {
            return;
        }
        let keys: Vec<String> = pending.iter().map(|p| p.call_key.clone()).collect();
        // C3: activities are the last to defer.
        let usage = self.ports.usage.usage(t);
        let ours = self.ports.usage.requests_last_24h(t);
        if may_spend(
            Priority::Activity,
            usage,
            ours,
            ctx.settings.api_budget_percent,
        ) == Spend::Defer
        {
            let f = explain(&SfError::Throttled {
                code: "CALLSYNC_BUDGET".into(),
                cause: format!(
                    "callsync's share ({}%) of the daily allowance is used",
                    ctx.settings.api_budget_percent
                ),
            });
            let at = self.ports.clock.now() + ChronoDuration::minutes(15);
            for p in &pending {
                results[p.index] = Some(ItemResult::RetryAt(at, f.clone()));
            }
        } else {
            self.create_batch(t, &ctx, items, pending, results).await;
        }
        // The call leases taken in `decide` end with the batch, whatever it did.
        for key in keys {
            let _ = self.ports.locks.unlock(t, &key, &self.options.holder).await;
        }
    }

    async fn create_batch(
        &self,
        t: &TenantId,
        ctx: &TenantCtx,
        items: &[WorkItem],
        pending: Vec<PendingCreate>,
        results: &mut [Option<ItemResult>],
    ) {
        let pending = self
            .adopt_earlier_attempts(t, ctx, items, pending, results)
            .await;
        if pending.is_empty() {
            return;
        }
        let drafts: Vec<TaskDraft> = pending.iter().map(|p| p.draft.clone()).collect();
        let created = match self.ports.sf_write.create_tasks(t, &drafts).await {
            Ok(r) => r,
            Err(e) => {
                for p in &pending {
                    results[p.index] = Some(self.on_sf_error(&e, &items[p.index]));
                }
                return;
            }
        };
        for (p, outcome) in pending.into_iter().zip(created) {
            let item = &items[p.index];
            let r = match outcome {
                Ok(task_id) => {
                    if self.fail.crash(FailPoint::AfterSalesforceCall, item) {
                        results[p.index] =
                            Some(ItemResult::Crashed(FailPoint::AfterSalesforceCall));
                        continue;
                    }
                    self.record_created(t, item, p.event_id, &p.draft, task_id, p.continuations)
                        .await
                }
                Err(e) => self.on_sf_error(&e, item),
            };
            results[p.index] = Some(r);
        }
    }

    /// R25: an item that ran before may have created its Task before it crashed (or before
    /// a failed response). One query finds such Tasks for the whole batch; they are adopted
    /// and brought up to date instead of being created again. Returns what remains to create.
    async fn adopt_earlier_attempts(
        &self,
        t: &TenantId,
        ctx: &TenantCtx,
        items: &[WorkItem],
        pending: Vec<PendingCreate>,
        results: &mut [Option<ItemResult>],
    ) -> Vec<PendingCreate> {
        let retried: Vec<String> = pending
            .iter()
            .filter(|p| p.check_existing)
            .map(|p| p.draft.call_object.clone())
            .collect();
        if retried.is_empty() {
            return pending;
        }
        let found = match self
            .ports
            .sf_write
            .find_tasks_by_call_objects(t, &retried)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                for p in pending.iter().filter(|p| p.check_existing) {
                    results[p.index] = Some(self.on_sf_error(&e, &items[p.index]));
                }
                return pending.into_iter().filter(|p| !p.check_existing).collect();
            }
        };
        let mut remaining = Vec::with_capacity(pending.len());
        for p in pending {
            let Some(task_id) = found.get(&p.draft.call_object).cloned() else {
                remaining.push(p);
                continue;
            };
            let item = &items[p.index];
            let call_task = CallTask {
                call_id: p.merged.call_id.clone(),
                task_id,
                who: p.draft.who.clone(),
                owner: p.draft.owner.clone(),
                description: p.draft.description.clone(),
                continuation_task_ids: vec![],
            };
            let r = match self.ports.tasks.save_call_task(t, &call_task).await {
                Err(e) => self.on_store_error(&e, item),
                Ok(()) => match self
                    .update_existing(
                        t,
                        &ctx.settings,
                        item,
                        p.event_id,
                        &p.merged,
                        call_task,
                        p.parts,
                    )
                    .await
                {
                    Ok(Decided::Finished(r)) | Err(r) => r,
                    Ok(Decided::Create { .. }) => self.on_sf_error(
                        &SfError::transient("ADOPT", "unexpected create while adopting a Task"),
                        item,
                    ),
                },
            };
            results[p.index] = Some(r);
        }
        remaining
    }

    async fn record_created(
        &self,
        t: &TenantId,
        item: &WorkItem,
        event_id: i64,
        draft: &TaskDraft,
        task_id: SalesforceId,
        continuations: Vec<TaskDraft>,
    ) -> ItemResult {
        let WorkKind::CallEvent { call_id, .. } = &item.kind;
        let mut call_task = CallTask {
            call_id: call_id.clone(),
            task_id: task_id.clone(),
            who: draft.who.clone(),
            owner: draft.owner.clone(),
            description: draft.description.clone(),
            continuation_task_ids: vec![],
        };
        // Record the main Task first: if continuations fail, a retry updates instead of
        // creating the call's Task again.
        if let Err(e) = self.ports.tasks.save_call_task(t, &call_task).await {
            return self.on_store_error(&e, item);
        }
        if !continuations.is_empty() {
            match self.ports.sf_write.create_tasks(t, &continuations).await {
                Ok(results) => {
                    for r in results {
                        match r {
                            Ok(id) => call_task.continuation_task_ids.push(id),
                            Err(e) => return self.on_sf_error(&e, item),
                        }
                    }
                }
                Err(e) => return self.on_sf_error(&e, item),
            }
            if let Err(e) = self.ports.tasks.save_call_task(t, &call_task).await {
                return self.on_store_error(&e, item);
            }
        }
        let outcome = EventOutcome::TaskCreated {
            task_id,
            who: draft.who.clone(),
        };
        if let Err(e) = self.ports.events.set_outcome(t, event_id, &outcome).await {
            return self.on_store_error(&e, item);
        }
        if self.fail.crash(FailPoint::BeforeCommit, item) {
            return ItemResult::Crashed(FailPoint::BeforeCommit);
        }
        ItemResult::Done(outcome)
    }

    async fn finish(
        &self,
        t: &TenantId,
        item: &WorkItem,
        event_id: i64,
        o: EventOutcome,
    ) -> Flow<Decided> {
        self.ports
            .events
            .set_outcome(t, event_id, &o)
            .await
            .map_err(|e| self.on_store_error(&e, item))?;
        if self.fail.crash(FailPoint::BeforeCommit, item) {
            return Ok(Decided::Finished(ItemResult::Crashed(
                FailPoint::BeforeCommit,
            )));
        }
        Ok(Decided::Finished(ItemResult::Done(o)))
    }

    /// Decides one item: finished (skipped, updated) or a Task to create in the batch.
    async fn decide(
        &self,
        t: &TenantId,
        ctx: &TenantCtx,
        item: &WorkItem,
        event_id: i64,
    ) -> Flow<Decided> {
        let s = &ctx.settings;
        let stored = self
            .ports
            .events
            .event(t, event_id)
            .await
            .map_err(|e| self.on_store_error(&e, item))?
            .ok_or_else(|| {
                ItemResult::Dead(Failure {
                    class: ErrorClass::BadData,
                    code: "EVENT_MISSING".into(),
                    message_en: format!("stored event {event_id} is missing"),
                    message_ja: format!("保存済みイベント {event_id} が見つかりません"),
                    fix_en: None,
                    fix_ja: None,
                })
            })?;
        let event = &stored.event;
        if let Err(reason) = should_process(event.kind, s) {
            return self
                .finish(t, item, event_id, EventOutcome::Skipped { reason })
                .await;
        }
        // R27: no number, no customer, no activity.
        let Some(number) = event.party.number().cloned() else {
            return self
                .finish(
                    t,
                    item,
                    event_id,
                    EventOutcome::Skipped {
                        reason: SkipReason::NoNumber,
                    },
                )
                .await;
        };
        // One call at a time across workers and processes (R25).
        let call_key = call_key(event.call_id.as_str());
        self.lease(
            t,
            item,
            &call_key,
            "another worker is writing this call",
            "別のワーカーがこの通話を処理中です",
        )
        .await?;
        let result = self
            .decide_locked(t, ctx, item, event_id, &stored, number)
            .await;
        // The call lock is released once the decision is recorded; a pending create keeps
        // the lease until it expires, which outlives the batch insert.
        if matches!(result, Ok(Decided::Finished(_)) | Err(_)) {
            let _ = self
                .ports
                .locks
                .unlock(t, &call_key, &self.options.holder)
                .await;
        }
        result
    }

    async fn decide_locked(
        &self,
        t: &TenantId,
        ctx: &TenantCtx,
        item: &WorkItem,
        event_id: i64,
        stored: &StoredEvent,
        number: PhoneNumber,
    ) -> Flow<Decided> {
        let s = &ctx.settings;
        let event = &stored.event;
        let existing = self
            .ports
            .tasks
            .call_task(t, &event.call_id)
            .await
            .map_err(|e| self.on_store_error(&e, item))?;
        let all = self
            .ports
            .events
            .call_events(t, &event.call_id)
            .await
            .map_err(|e| self.on_store_error(&e, item))?;
        let events: Vec<CallEvent> = all.iter().map(|e| e.event.clone()).collect();
        let merged = merge_call(&events).unwrap_or_else(|| event.clone());
        let notify_pending = events.iter().any(|e| {
            e.kind != EventKind::TranscriptionCompleted && should_process(e.kind, s).is_ok()
        });
        let action = match fold(event.kind, existing.as_ref(), notify_pending) {
            TaskAction::WaitForTask if item.attempts >= self.options.max_transcript_waits => {
                TaskAction::Create
            }
            other => other,
        };
        let base = description(&merged, s.language, s.tz());
        let with_transcript = s.write_transcription && merged.transcript.is_some();
        let parts = match (&merged.transcript, with_transcript) {
            (Some(tr), true) => split_descriptions(
                &base,
                &render_lines(tr, s.language),
                s.language,
                DESCRIPTION_LIMIT,
            ),
            _ => vec![base],
        };
        match action {
            TaskAction::WaitForTask => Err(ItemResult::RetryAt(
                backoff(item.id, item.attempts, self.ports.clock.now()),
                waiting(
                    "the transcription waits for the call's activity to be written (R26)",
                    "文字起こしは通話の活動履歴が書き出されるのを待っています",
                ),
            )),
            TaskAction::Update | TaskAction::AttachTranscript => {
                let Some(existing) = existing else {
                    return Err(ItemResult::RetryAt(
                        self.ports.clock.now(),
                        waiting("task vanished", "タスクが見つかりません"),
                    ));
                };
                self.update_existing(t, s, item, event_id, &merged, existing, parts)
                    .await
            }
            TaskAction::Create => {
                let check_existing = item.attempts > 0
                    || all.iter().any(|e| e.id != event_id && e.outcome.is_none());
                self.plan_create(t, ctx, item, event_id, stored, &merged, number, parts)
                    .await
                    .map(|d| match d {
                        Decided::Create {
                            draft,
                            continuations,
                            merged,
                            parts,
                            ..
                        } => Decided::Create {
                            draft,
                            continuations,
                            merged,
                            parts,
                            check_existing,
                        },
                        finished => finished,
                    })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_existing(
        &self,
        t: &TenantId,
        s: &IntegrationSettings,
        item: &WorkItem,
        event_id: i64,
        merged: &CallEvent,
        mut existing: CallTask,
        parts: Vec<String>,
    ) -> Flow<Decided> {
        let lang = s.language;
        let first = parts.first().cloned().unwrap_or_default();
        let patch = patch_task(merged, lang, first.clone());
        self.ports
            .sf_write
            .update_task(t, &existing.task_id, &patch)
            .await
            .map_err(|e| self.on_sf_error(&e, item))?;
        if self.fail.crash(FailPoint::AfterSalesforceCall, item) {
            return Ok(Decided::Finished(ItemResult::Crashed(
                FailPoint::AfterSalesforceCall,
            )));
        }
        existing.description = first;
        // Continuation Tasks (R26): update those that exist, create the missing ones.
        let total = parts.len();
        let subject = patch.subject.clone().unwrap_or_default();
        for (n, text) in parts.iter().enumerate().skip(1) {
            let part = n + 1;
            let subj = continuation_subject(&subject, part, total, lang);
            match existing.continuation_task_ids.get(n - 1).cloned() {
                Some(id) => {
                    let p = TaskPatch {
                        subject: Some(subj),
                        description: Some(text.clone()),
                        ..Default::default()
                    };
                    self.ports
                        .sf_write
                        .update_task(t, &id, &p)
                        .await
                        .map_err(|e| self.on_sf_error(&e, item))?;
                }
                None => {
                    let call_object = continuation_call_object(existing.call_id.as_str(), part);
                    let found = self
                        .ports
                        .sf_write
                        .find_task_by_call_object(t, &call_object)
                        .await
                        .map_err(|e| self.on_sf_error(&e, item))?;
                    let id = match found {
                        Some(id) => id,
                        None => {
                            let draft = TaskDraft {
                                who: existing.who.clone(),
                                owner: existing.owner.clone(),
                                subject: subj,
                                description: text.clone(),
                                call_type: crate::rules::task::direction(merged),
                                duration_secs: None,
                                call_object,
                                disposition: crate::rules::task::outcome(merged)
                                    .as_str()
                                    .to_owned(),
                                activity_date: crate::rules::task::activity_date(
                                    merged,
                                    s.tz(),
                                    self.ports.clock.now(),
                                ),
                            };
                            let mut r = self
                                .ports
                                .sf_write
                                .create_tasks(t, std::slice::from_ref(&draft))
                                .await
                                .map_err(|e| self.on_sf_error(&e, item))?;
                            match r.pop() {
                                Some(Ok(id)) => id,
                                Some(Err(e)) => return Err(self.on_sf_error(&e, item)),
                                None => {
                                    return Err(self.on_sf_error(
                                        &SfError::transient("EMPTY", "no result"),
                                        item,
                                    ));
                                }
                            }
                        }
                    };
                    existing.continuation_task_ids.push(id);
                }
            }
        }
        self.ports
            .tasks
            .save_call_task(t, &existing)
            .await
            .map_err(|e| self.on_store_error(&e, item))?;
        self.finish(
            t,
            item,
            event_id,
            EventOutcome::TaskUpdated {
                task_id: existing.task_id.clone(),
            },
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_create(
        &self,
        t: &TenantId,
        ctx: &TenantCtx,
        item: &WorkItem,
        event_id: i64,
        stored: &StoredEvent,
        merged: &CallEvent,
        number: PhoneNumber,
        parts: Vec<String>,
    ) -> Flow<Decided> {
        let s = &ctx.settings;
        let who = match self.resolve_who(t, s, item, merged, &number).await? {
            Ok(who) => who,
            Err(reason) => {
                return self
                    .finish(t, item, event_id, EventOutcome::Skipped { reason })
                    .await;
            }
        };
        let member_email = merged.member.as_ref().and_then(|m| m.email.as_deref());
        let owner = resolve_owner(member_email, &ctx.users, &ctx.connecting_user);
        let tctx = TaskContext {
            who: who.clone(),
            owner: Some(owner.user_id().clone()),
            language: s.language,
            tz: s.tz(),
            received_at: stored.received_at,
        };
        let draft = compose_task(merged, &tctx, parts.first().cloned().unwrap_or_default());
        let rest: Vec<String> = parts.iter().skip(1).cloned().collect();
        let total = rest.len() + 1;
        let continuations = rest
            .into_iter()
            .enumerate()
            .map(|(n, text)| TaskDraft {
                subject: continuation_subject(&draft.subject, n + 2, total, s.language),
                description: text,
                call_object: continuation_call_object(merged.call_id.as_str(), n + 2),
                duration_secs: None,
                ..draft.clone()
            })
            .collect();
        Ok(Decided::Create {
            draft,
            continuations,
            merged: Box::new(merged.clone()),
            parts,
            check_existing: false,
        })
    }

    /// The customer with this number, and its record when it is linked (R20).
    async fn local(
        &self,
        t: &TenantId,
        item: &WorkItem,
        number: &PhoneNumber,
    ) -> Flow<(Option<Customer>, Option<SalesforceRecordRef>)> {
        let customer = self
            .ports
            .customers
            .find_by_number(t, number.e164())
            .await
            .map_err(|e| self.on_store_error(&e, item))?;
        let linked = match route_local(customer.as_ref()) {
            LocalRoute::Linked(record) => Some(record),
            LocalRoute::Search => None,
        };
        Ok((customer, linked))
    }

    /// R20–R22, R30–R35: the record the activity goes to, or why there is none.
    async fn resolve_who(
        &self,
        t: &TenantId,
        s: &IntegrationSettings,
        item: &WorkItem,
        merged: &CallEvent,
        number: &PhoneNumber,
    ) -> Flow<Result<SalesforceRecordRef, SkipReason>> {
        if let (_, Some(record)) = self.local(t, item, number).await? {
            return Ok(Ok(record));
        }
        // Single flight per number (R34): one worker resolves an unknown number at a time.
        let key = format!("number:{}", number.e164());
        self.lease(
            t,
            item,
            &key,
            "another call from this number is being resolved (R34)",
            "同じ番号の別の通話を処理中です",
        )
        .await?;
        let r = self.resolve_unlinked(t, s, item, merged, number).await;
        let _ = self.ports.locks.unlock(t, &key, &self.options.holder).await;
        r
    }

    async fn resolve_unlinked(
        &self,
        t: &TenantId,
        s: &IntegrationSettings,
        item: &WorkItem,
        merged: &CallEvent,
        number: &PhoneNumber,
    ) -> Flow<Result<SalesforceRecordRef, SkipReason>> {
        // Another worker may have linked it while we waited for the lock.
        let (customer, linked) = self.local(t, item, number).await?;
        if let Some(record) = linked {
            return Ok(Ok(record));
        }
        let hits = self
            .ports
            .sf_read
            .search_by_phone(t, number, s.sync_targets)
            .await
            .map_err(|e| self.on_sf_error(&e, item))?;
        let record = match route_after_search(&hits, number, s) {
            SearchRoute::Found { winner, .. } => SfLink {
                record: winner.record.clone(),
                system_modstamp: Some(winner.system_modstamp),
            },
            SearchRoute::Skip(reason) => return Ok(Err(reason)),
            SearchRoute::Create(object) => {
                let fields = match &customer {
                    Some(c) => c.fields.clone(),
                    None => CustomerFields {
                        name: merged.contact.name.clone(),
                        company: merged.contact.company.clone(),
                        email: merged.contact.email.clone(),
                        address: merged.contact.address.clone(),
                        memo: None,
                    },
                };
                let id = self
                    .create_record(t, s, item, object, number, &fields)
                    .await?;
                SfLink {
                    record: SalesforceRecordRef { object, id },
                    system_modstamp: None,
                }
            }
        };
        // R21/R33: link at once so the next call needs no search.
        if let Some(c) = &customer {
            self.ports
                .customers
                .link(t, c.id, &record)
                .await
                .map_err(|e| self.on_store_error(&e, item))?;
        }
        Ok(Ok(record.record))
    }

    /// R30–R32 and R35.
    async fn create_record(
        &self,
        t: &TenantId,
        s: &IntegrationSettings,
        item: &WorkItem,
        object: SfObject,
        number: &PhoneNumber,
        fields: &CustomerFields,
    ) -> Flow<SalesforceId> {
        let record = match plan_creation(object, number, fields, &s.placeholder_account) {
            CreationPlan::Lead(r) => r,
            CreationPlan::Contact {
                account_name,
                mut record,
            } => {
                record.account_id =
                    Some(self.find_or_create_account(t, item, &account_name).await?);
                record
            }
        };
        match self
            .ports
            .sf_write
            .create_record(t, &record, s.duplicate_allow_save)
            .await
        {
            Ok(id) => Ok(id),
            // R35: link the record the duplicate rule points at, same object type first.
            Err(SfError::Duplicate { matches, cause }) => {
                let pick = matches
                    .iter()
                    .find(|m| m.object == object.as_str())
                    .or_else(|| {
                        matches
                            .iter()
                            .find(|m| SfObject::parse(&m.object).is_some())
                    });
                match pick {
                    Some(m) if m.object == object.as_str() => Ok(m.id.clone()),
                    _ => Err(self.on_sf_error(
                        &SfError::OrgConfig {
                            problem: OrgProblem::DuplicateRule,
                            code: "DUPLICATES_DETECTED".into(),
                            object: Some(object.as_str().into()),
                            field: None,
                            cause,
                        },
                        item,
                    )),
                }
            }
            Err(e) => Err(self.on_sf_error(&e, item)),
        }
    }

    /// R31/R32: find-or-create serialized per tenant and Account name.
    async fn find_or_create_account(
        &self,
        t: &TenantId,
        item: &WorkItem,
        name: &str,
    ) -> Flow<SalesforceId> {
        let key = format!("account:{name}");
        self.lease(
            t,
            item,
            &key,
            "the Account is being created by another worker",
            "別のワーカーが取引先を作成中です",
        )
        .await?;
        let r = async {
            if let Some(id) = self
                .ports
                .sf_write
                .find_account(t, name)
                .await
                .map_err(|e| self.on_sf_error(&e, item))?
            {
                return Ok(id);
            }
            self.ports
                .sf_write
                .create_account(t, name)
                .await
                .map_err(|e| self.on_sf_error(&e, item))
        }
        .await;
        let _ = self.ports.locks.unlock(t, &key, &self.options.holder).await;
        r
    }
}

fn call_key(call_id: &str) -> String {
    format!("call:{call_id}")
}

enum Decided {
    Finished(ItemResult),
    Create {
        draft: TaskDraft,
        continuations: Vec<TaskDraft>,
        merged: Box<CallEvent>,
        parts: Vec<String>,
        /// This item ran before, or another event of the call has no outcome yet (queued, or
        /// its worker died after Salesforce created the Task and before it was recorded):
        /// ask Salesforce before creating (R25).
        check_existing: bool,
    },
}

enum ItemResultFactory {
    Store(StoreError),
    Sf(SfError),
}

impl ItemResultFactory {
    fn result(&self, logger: &CallLogger, item: &WorkItem) -> ItemResult {
        match self {
            Self::Store(e) => logger.on_store_error(e, item),
            Self::Sf(e) => logger.on_sf_error(e, item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeSalesforce, InMemoryStore, ManualClock, QState};
    use crate::{
        CallId, ContactInfo, Direction, MemberInfo, PartyNumber, Recording, TranscribeDirection,
        Transcript, Utterance,
    };
    use chrono::TimeZone;
    use std::collections::HashSet;
    use std::sync::Mutex;

    struct Harness {
        t: TenantId,
        store: Arc<InMemoryStore>,
        sf: Arc<FakeSalesforce>,
        clock: Arc<ManualClock>,
        logger: CallLogger,
        admin: SalesforceId,
    }

    struct CrashOnce(Mutex<HashSet<FailPoint>>);
    impl FailPoints for CrashOnce {
        fn crash(&self, p: FailPoint, _: &WorkItem) -> bool {
            self.0.lock().unwrap().remove(&p)
        }
    }

    fn harness_with(settings: IntegrationSettings, fail: Arc<dyn FailPoints>) -> Harness {
        let t = TenantId::parse("acme").unwrap();
        let store = Arc::new(InMemoryStore::new());
        let sf = Arc::new(FakeSalesforce::new());
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap(),
        ));
        let admin = sf.add_user("admin@example.jp", true);
        let ports = CallLoggingPorts {
            sf_read: sf.clone(),
            sf_write: sf.clone(),
            usage: sf.clone(),
            customers: store.clone(),
            events: store.clone(),
            tasks: store.clone(),
            directory: store.clone(),
            settings: store.clone(),
            credentials: store.clone(),
            locks: store.clone(),
            clock: clock.clone(),
        };
        let logger = CallLogger::new(ports, CallLoggingOptions::default(), fail);
        let h = Harness {
            t,
            store,
            sf,
            clock,
            logger,
            admin,
        };
        futures_block(h.store.save_settings(&h.t, &settings)).unwrap();
        let creds = h.sf.credentials(&h.admin);
        futures_block(h.store.save(&h.t, &creds)).unwrap();
        h
    }

    fn harness(settings: IntegrationSettings) -> Harness {
        harness_with(settings, Arc::new(NoFailPoints))
    }

    /// Runs a future to completion on the current thread (the fakes never wait).
    fn futures_block<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn call(id: &str, kind: EventKind, number: &str) -> CallEvent {
        let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
        CallEvent {
            call_id: CallId::parse(id).unwrap(),
            kind,
            direction: Some(Direction::Inbound),
            status_code: None,
            party: PartyNumber::classify(number),
            contact: ContactInfo {
                name: Some("電話 太郎".into()),
                ..Default::default()
            },
            member: Some(MemberInfo {
                external_id: Some("17".into()),
                name: Some("営業 一郎".into()),
                email: Some("Ichiro.Eigyo@example.jp".into()),
            }),
            started_at: Some(jst.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap()),
            answered_at: None,
            ended_at: None,
            duration_secs: Some(if kind == EventKind::CallEnded { 192 } else { 0 }),
            memo: None,
            call_url: None,
            recording_url: None,
            transcript: None,
            extra: Default::default(),
        }
    }

    impl Harness {
        fn post(&self, e: &CallEvent) -> Accepted {
            let raw = RawPayload {
                content_type: "application/json".into(),
                body: vec![],
                request_id: None,
            };
            futures_block(self.store.accept(&self.t, &raw, e, self.clock.now())).unwrap()
        }
        /// One worker step: claim, process, record — what `event-ingest`'s worker does.
        fn step(&self) -> Vec<ItemResult> {
            let items = futures_block(self.store.claim(
                "w",
                200,
                Duration::from_secs(60),
                self.clock.now(),
            ))
            .unwrap();
            let results = futures_block(self.logger.process(&items));
            for (item, r) in items.iter().zip(results.iter()) {
                let _ = match r {
                    ItemResult::Done(_) => futures_block(self.store.complete(item)),
                    ItemResult::RetryAt(at, f) => futures_block(self.store.retry_at(item, *at, f)),
                    ItemResult::Wait(at, f) => futures_block(self.store.defer(item, *at, f)),
                    ItemResult::Hold(reason, f) => futures_block(self.store.hold(item, *reason, f)),
                    ItemResult::Dead(f) => {
                        futures_block(self.store.dead_letter(item, f, self.clock.now()))
                    }
                    ItemResult::Crashed(_) => Ok(()),
                };
            }
            results
        }
        /// Steps until the queue has nothing due, moving the clock past every retry.
        fn drain(&self) {
            for _ in 0..50 {
                let results = self.step();
                if results.is_empty() {
                    let pending = self
                        .store
                        .queue_items()
                        .iter()
                        .any(|q| matches!(q.state, QState::Ready | QState::Leased));
                    if !pending {
                        return;
                    }
                    self.clock.advance(chrono::Duration::minutes(90));
                }
            }
            panic!("queue did not drain");
        }
        fn outcomes(&self) -> Vec<Option<EventOutcome>> {
            self.store
                .outcomes(&self.t)
                .into_iter()
                .map(|(_, o)| o)
                .collect()
        }
    }

    fn linked_customer(h: &Harness, number: &str) -> SalesforceRecordRef {
        let r =
            h.sf.add_record(SfObject::Contact, number, "既存", h.clock.now());
        h.store.insert_customer(
            &h.t,
            PhoneNumber::parse(number).unwrap(),
            Some(SfLink {
                record: r.clone(),
                system_modstamp: None,
            }),
        );
        r
    }

    #[test]
    fn r20_r23_r24_linked_customer_gets_one_task_owned_by_the_member() {
        let h = harness(IntegrationSettings::default());
        let ichiro = h.sf.add_user("ichiro.eigyo@example.jp", true);
        let who = linked_customer(&h, "03-5555-0101");
        let before = h.sf.requests();
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0101"));
        h.drain();
        let tasks = h.sf.tasks();
        assert_eq!(tasks.len(), 1);
        let task = &tasks[0].1;
        assert_eq!(task.who, who, "R20: the linked record");
        assert_eq!(
            task.owner.as_ref(),
            Some(&ichiro),
            "R23: matched by email, case-insensitively"
        );
        assert_eq!(task.subject, "着信 03-5555-0101 (3:12)");
        assert_eq!(task.call_object, "c1");
        // Directory load (first call ever) + one Task insert; no search for a linked number.
        assert_eq!(h.sf.requests() - before, 2);
    }

    #[test]
    fn r23_unknown_member_falls_back_to_connecting_user() {
        let h = harness(IntegrationSettings::default());
        linked_customer(&h, "03-5555-0101");
        h.post(&call("c1", EventKind::Missed, "03-5555-0101"));
        h.drain();
        assert_eq!(h.sf.tasks()[0].1.owner.as_ref(), Some(&h.admin));
    }

    #[test]
    fn r21_r33_unlinked_number_is_searched_once_then_linked() {
        let h = harness(IntegrationSettings::default());
        let lead =
            h.sf.add_record(SfObject::Lead, "(03) 5555-0102", "検索", h.clock.now());
        h.post(&call("c1", EventKind::CallEnded, "0355550102"));
        h.drain();
        assert_eq!(h.sf.tasks()[0].1.who, lead);
        let c = h.store.customers(&h.t);
        assert_eq!(
            c[0].link.as_ref().map(|l| &l.record),
            Some(&lead),
            "R21: the customer is linked"
        );
        let before = h.sf.requests();
        h.post(&call("c2", EventKind::CallEnded, "03-5555-0102"));
        h.drain();
        assert_eq!(
            h.sf.requests() - before,
            1,
            "the second call needs no search"
        );
    }

    #[test]
    fn r22_not_found_is_skipped_when_creation_is_off() {
        let h = harness(IntegrationSettings::default());
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0199"));
        h.drain();
        assert!(h.sf.tasks().is_empty());
        assert_eq!(
            h.outcomes(),
            vec![Some(EventOutcome::Skipped {
                reason: SkipReason::NoMatch
            })]
        );
    }

    #[test]
    fn r22_r30_not_found_creates_a_lead_then_writes() {
        let s = IntegrationSettings {
            create_customers: true,
            create_as: Some(SfObject::Lead),
            ..Default::default()
        };
        let h = harness(s);
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0103"));
        h.drain();
        let records = h.sf.records();
        let lead = records
            .iter()
            .find(|r| r.record.object == SfObject::Lead)
            .expect("a Lead");
        assert_eq!(lead.last_name.as_deref(), Some("電話"));
        assert_eq!(lead.first_name.as_deref(), Some("太郎"));
        assert_eq!(lead.company.as_deref(), Some("CallConnect 取引先"));
        assert_eq!(h.sf.tasks()[0].1.who, lead.record);
    }

    #[test]
    fn r31_r32_contacts_share_one_placeholder_account_created_once() {
        let s = IntegrationSettings {
            create_customers: true,
            create_as: Some(SfObject::Contact),
            ..Default::default()
        };
        let h = harness(s);
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0104"));
        h.post(&call("c2", EventKind::CallEnded, "03-5555-0105"));
        h.drain();
        let accounts = h.sf.accounts();
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].1, "CallConnect 取引先");
        assert_eq!(h.sf.tasks().len(), 2);
    }

    #[test]
    fn r34_burst_from_one_unknown_number_creates_one_record() {
        let s = IntegrationSettings {
            create_customers: true,
            create_as: Some(SfObject::Lead),
            ..Default::default()
        };
        let h = harness(s);
        for i in 0..20 {
            h.post(&call(
                &format!("burst{i}"),
                EventKind::Missed,
                "090-1111-2222",
            ));
        }
        h.drain();
        let leads =
            h.sf.records()
                .into_iter()
                .filter(|r| r.record.object == SfObject::Lead)
                .count();
        assert_eq!(leads, 1);
        assert_eq!(h.sf.tasks().len(), 20, "every call still gets its activity");
    }

    #[test]
    fn r35_duplicate_rule_links_the_existing_record() {
        let s = IntegrationSettings {
            create_customers: true,
            create_as: Some(SfObject::Lead),
            ..Default::default()
        };
        let h = harness(s);
        let existing = SalesforceRecordRef {
            object: SfObject::Lead,
            id: SalesforceId::parse("00Q999999999999").unwrap(),
        };
        h.sf.set_duplicate_rule("+81355550106", existing.clone());
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0106"));
        h.drain();
        assert_eq!(h.sf.tasks()[0].1.who, existing);
        assert_eq!(
            h.store.customers(&h.t)[0]
                .link
                .as_ref()
                .map(|l| l.record.clone()),
            Some(existing)
        );
    }

    #[test]
    fn r25_later_events_update_the_same_task_and_redelivery_adds_nothing() {
        let h = harness(IntegrationSettings::default());
        linked_customer(&h, "03-5555-0101");
        let ended = call("c1", EventKind::CallEnded, "03-5555-0101");
        assert!(matches!(h.post(&ended), Accepted::New { .. }));
        assert!(
            matches!(h.post(&ended), Accepted::Duplicate { .. }),
            "R27: delivered twice, stored once"
        );
        let mut memo = call("c1", EventKind::MemoSaved, "03-5555-0101");
        memo.memo = Some("見積の件で折り返し希望".into());
        h.post(&memo);
        h.drain();
        let tasks = h.sf.tasks();
        assert_eq!(tasks.len(), 1, "one call, one Task");
        assert!(
            tasks[0]
                .1
                .description
                .contains("メモ: 見積の件で折り返し希望")
        );
        assert_eq!(
            tasks[0].1.subject, "着信 03-5555-0101 (3:12)",
            "the memo keeps the call's outcome"
        );
    }

    #[test]
    fn r25_crash_at_each_fail_point_still_means_exactly_one_task() {
        for point in [
            FailPoint::AfterClaim,
            FailPoint::AfterSalesforceCall,
            FailPoint::BeforeCommit,
        ] {
            let fail = Arc::new(CrashOnce(Mutex::new([point].into_iter().collect())));
            let h = harness_with(IntegrationSettings::default(), fail);
            linked_customer(&h, "03-5555-0101");
            h.post(&call("c1", EventKind::CallEnded, "03-5555-0101"));
            h.drain(); // the lease expires (clock moves), the item runs again
            assert_eq!(h.sf.tasks().len(), 1, "{point:?}: exactly one Task");
            let done = h
                .store
                .queue_items()
                .iter()
                .all(|q| q.state == QState::Done);
            assert!(done, "{point:?}: every item processed");
        }
    }

    #[test]
    fn r25_another_event_of_a_call_whose_worker_died_adopts_its_task() {
        // call_ended's worker dies after Salesforce created the Task; the memo of the same
        // call runs first (its own first attempt) and must find that Task, not make another.
        let fail = Arc::new(CrashOnce(Mutex::new(
            [FailPoint::AfterSalesforceCall].into_iter().collect(),
        )));
        let h = harness_with(IntegrationSettings::default(), fail);
        linked_customer(&h, "03-5555-0101");
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0101"));
        let mut memo = call("c1", EventKind::MemoSaved, "03-5555-0101");
        memo.memo = Some("折り返し".into());
        h.post(&memo);
        let first = h.step();
        assert!(
            first.iter().any(|r| matches!(r, ItemResult::Crashed(_))),
            "{first:?}"
        );
        let second = h.step(); // the memo, while call_ended is still leased by the dead worker
        assert!(
            matches!(second.as_slice(), [ItemResult::Done(_)]),
            "{second:?}"
        );
        h.drain();
        let tasks = h.sf.tasks();
        assert_eq!(tasks.len(), 1, "one call, one Task");
        assert!(tasks[0].1.description.contains("折り返し"));
    }

    fn transcript(lines: usize, len: usize) -> Transcript {
        Transcript {
            direction: TranscribeDirection::InboundOperatorRight,
            recordings: vec![Recording {
                key: "RE1".into(),
                utterances: (0..lines)
                    .map(|i| Utterance {
                        channel: (i % 2) as u8,
                        text: "あ".repeat(len),
                        offset_secs: i as f64,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn r26_transcription_waits_for_the_task_then_is_added() {
        let h = harness(IntegrationSettings {
            write_transcription: true,
            ..Default::default()
        });
        linked_customer(&h, "03-5555-0101");
        let mut tr = call("c1", EventKind::TranscriptionCompleted, "03-5555-0101");
        tr.transcript = Some(transcript(2, 10));
        h.post(&tr);
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0101"));
        h.drain();
        let tasks = h.sf.tasks();
        assert_eq!(tasks.len(), 1);
        assert!(tasks[0].1.description.contains("--- 文字起こし ---"));
        assert!(tasks[0].1.description.contains("00:01 お客様: "));
    }

    #[test]
    fn r26_long_transcript_continues_in_follow_up_tasks() {
        let h = harness(IntegrationSettings {
            write_transcription: true,
            ..Default::default()
        });
        linked_customer(&h, "03-5555-0101");
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0101"));
        h.drain();
        let mut tr = call("c1", EventKind::TranscriptionCompleted, "03-5555-0101");
        tr.transcript = Some(transcript(100, 500)); // ~50,000 characters
        h.post(&tr);
        h.drain();
        let tasks = h.sf.tasks();
        assert_eq!(tasks.len(), 2, "the text continues in one follow-up Task");
        let follow = &tasks[1].1;
        assert_eq!(follow.call_object, "c1:2");
        assert!(
            follow.subject.ends_with("(文字起こし 2/2)"),
            "{}",
            follow.subject
        );
        assert!(
            tasks
                .iter()
                .all(|(_, t)| t.description.chars().count() <= 32_000)
        );
    }

    #[test]
    fn r27_withheld_number_is_stored_and_skipped() {
        let h = harness(IntegrationSettings::default());
        h.post(&call("c1", EventKind::Missed, "非通知"));
        h.drain();
        assert!(h.sf.tasks().is_empty());
        assert!(h.store.customers(&h.t).is_empty(), "no customer identity");
        assert_eq!(
            h.outcomes(),
            vec![Some(EventOutcome::Skipped {
                reason: SkipReason::NoNumber
            })]
        );
    }

    #[test]
    fn r6_events_not_in_notify_on_are_skipped() {
        let h = harness(IntegrationSettings {
            notify_on: [EventKind::Missed].into_iter().collect(),
            ..Default::default()
        });
        linked_customer(&h, "03-5555-0101");
        h.post(&call("c1", EventKind::CallEnded, "03-5555-0101"));
        h.post(&call("c2", EventKind::Missed, "03-5555-0101"));
        h.drain();
        assert_eq!(h.sf.tasks().len(), 1);
        assert_eq!(h.sf.tasks()[0].1.call_object, "c2");
    }

    #[test]
    fn c3_a_burst_of_known_numbers_goes_out_in_one_request() {
        let h = harness(IntegrationSettings::default());
        linked_customer(&h, "03-5555-0101");
        h.step(); // nothing queued
        futures_block(h.store.save_users(&h.t, &[])).unwrap();
        h.sf.add_user("x@example.jp", true);
        for i in 0..150 {
            h.post(&call(&format!("b{i}"), EventKind::Missed, "03-5555-0101"));
        }
        let before = h.sf.requests();
        h.step();
        assert_eq!(h.sf.tasks().len(), 150);
        // One directory load (empty cache) and one batched insert.
        assert_eq!(h.sf.requests() - before, 2);
    }

    #[test]
    fn failures_retry_hold_or_dead_letter_never_drop() {
        let h = harness(IntegrationSettings::default());
        linked_customer(&h, "03-5555-0101");
        futures_block(h.store.save_users(
            &h.t,
            &[SfUser {
                id: h.admin.clone(),
                email: None,
                name: "a".into(),
                active: true,
            }],
        ))
        .unwrap();
        // Transient: retried, then written.
        h.sf.fail_next(SfError::transient("UNABLE_TO_LOCK_ROW", "locked"));
        h.post(&call("t1", EventKind::Missed, "03-5555-0101"));
        let r = h.step();
        assert!(matches!(r[0], ItemResult::RetryAt(..)), "{r:?}");
        h.drain();
        assert_eq!(h.sf.tasks().len(), 1);
        // Revoked: held, not dead.
        h.sf.fail_next(SfError::NeedsReconnect {
            code: "invalid_grant".into(),
            cause: "expired".into(),
        });
        h.post(&call("t2", EventKind::Missed, "03-5555-0101"));
        let r = h.step();
        assert!(
            matches!(r[0], ItemResult::Hold(HoldReason::NeedsReconnect, _)),
            "{r:?}"
        );
        assert_eq!(
            futures_block(h.store.release_held(&h.t, HoldReason::NeedsReconnect)).unwrap(),
            1
        );
        h.drain();
        assert_eq!(h.sf.tasks().len(), 2, "resumed after reconnect");
        // Bad data: dead-lettered with its cause, retryable.
        h.sf.fail_next(SfError::BadData {
            code: "STRING_TOO_LONG".into(),
            object: Some("Task".into()),
            field: Some("Subject".into()),
            cause: "too long".into(),
        });
        h.post(&call("t3", EventKind::Missed, "03-5555-0101"));
        h.step();
        let failed = futures_block(h.store.failed(&h.t, 10)).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].failure.code, "STRING_TOO_LONG");
        assert!(!failed[0].failure.message_ja.is_empty());
        assert!(futures_block(h.store.retry_dead(&h.t, failed[0].id)).unwrap());
        h.drain();
        assert_eq!(h.sf.tasks().len(), 3);
    }

    #[test]
    fn r25_a_failed_batch_is_checked_with_one_query_not_one_per_call() {
        let h = harness(IntegrationSettings::default());
        linked_customer(&h, "03-5555-0101");
        futures_block(h.store.save_users(
            &h.t,
            &[SfUser {
                id: h.admin.clone(),
                email: None,
                name: "a".into(),
                active: true,
            }],
        ))
        .unwrap();
        for i in 0..50 {
            h.post(&call(&format!("f{i}"), EventKind::Missed, "03-5555-0101"));
        }
        h.sf.fail_next(SfError::transient("SERVER_ERROR", "500"));
        let r = h.step();
        assert!(r.iter().all(|x| matches!(x, ItemResult::RetryAt(..))));
        let before = h.sf.requests();
        h.drain();
        assert_eq!(h.sf.tasks().len(), 50);
        assert_eq!(
            h.sf.requests() - before,
            2,
            "one lookup for the retried batch, one insert"
        );
    }

    #[test]
    fn c3_activities_defer_when_callsyncs_share_is_spent() {
        let h = harness(IntegrationSettings::default());
        linked_customer(&h, "03-5555-0101");
        futures_block(h.store.save_users(
            &h.t,
            &[SfUser {
                id: h.admin.clone(),
                email: None,
                name: "a".into(),
                active: true,
            }],
        ))
        .unwrap();
        h.sf.set_usage(0, 4); // 20 % of 4 requests rounds down to none
        h.post(&call("c1", EventKind::Missed, "03-5555-0101"));
        let r = h.step();
        assert!(
            matches!(&r[0], ItemResult::RetryAt(_, f) if f.class == ErrorClass::Throttled),
            "{r:?}"
        );
        assert!(h.sf.tasks().is_empty());
    }
}

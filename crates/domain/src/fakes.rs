//! In-memory fakes of the ports (feature `fakes`): a store and a Salesforce org that behave
//! like the real ones in the ways the use cases depend on, for fast tests of the use cases
//! and of the crates above `domain`. Not for production.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::ports::*;
use crate::{
    CallEvent, CallId, ConnectedUser, Customer, CustomerId, EmailAddress, IntegrationSettings,
    Member, PhoneNumber, SalesforceId, SalesforceRecordRef, SfError, SfLink, SfObject, SfRecord,
    SfUser, StoreError, SyncTargets, TenantId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }
    pub fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
}
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QState {
    Ready,
    Leased,
    Held(HoldReason),
    Dead,
    Done,
}

#[derive(Debug, Clone)]
pub struct QItem {
    pub id: i64,
    pub tenant: TenantId,
    pub kind: WorkKind,
    pub state: QState,
    pub attempts: u32,
    pub due: DateTime<Utc>,
    pub lease_token: String,
    pub lease_expires: DateTime<Utc>,
    pub failure: Option<Failure>,
    pub failed_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct StoreState {
    next_id: i64,
    customers: BTreeMap<(TenantId, i64), Customer>,
    duplicates: Vec<(TenantId, DuplicateEntry)>,
    events: Vec<(TenantId, StoredEvent, Option<EventOutcome>)>,
    queue: Vec<QItem>,
    tasks: HashMap<(TenantId, CallId), CallTask>,
    users: HashMap<TenantId, Vec<SfUser>>,
    members: HashMap<TenantId, Vec<Member>>,
    settings: HashMap<TenantId, IntegrationSettings>,
    credentials: HashMap<TenantId, Credentials>,
    locks: HashMap<(TenantId, String), (String, DateTime<Utc>)>,
    runs: Vec<(TenantId, SyncRun)>,
    watermarks: HashMap<(TenantId, SfObject), DateTime<Utc>>,
}

impl StoreState {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Every storage port in memory, behind one mutex.
#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<StoreState>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn queue_items(&self) -> Vec<QItem> {
        self.state.lock().unwrap().queue.clone()
    }
    pub fn outcomes(&self, t: &TenantId) -> Vec<(CallEvent, Option<EventOutcome>)> {
        let s = self.state.lock().unwrap();
        s.events
            .iter()
            .filter(|(tt, ..)| tt == t)
            .map(|(_, e, o)| (e.event.clone(), o.clone()))
            .collect()
    }
    pub fn customers(&self, t: &TenantId) -> Vec<Customer> {
        let s = self.state.lock().unwrap();
        s.customers
            .iter()
            .filter(|((tt, _), _)| tt == t)
            .map(|(_, c)| c.clone())
            .collect()
    }
    pub fn duplicates(&self, t: &TenantId) -> Vec<DuplicateEntry> {
        let s = self.state.lock().unwrap();
        s.duplicates
            .iter()
            .filter(|(tt, _)| tt == t)
            .map(|(_, d)| d.clone())
            .collect()
    }
    /// Adds a customer directly (as an import would).
    pub fn insert_customer(
        &self,
        t: &TenantId,
        number: PhoneNumber,
        link: Option<SfLink>,
    ) -> CustomerId {
        let mut s = self.state.lock().unwrap();
        let id = s.id();
        s.customers.insert(
            (t.clone(), id),
            Customer {
                id: CustomerId(id),
                number,
                fields: Default::default(),
                link,
                dirty: vec![],
                edited_at: None,
            },
        );
        CustomerId(id)
    }
    /// Edits a customer as the phone system's admin would (R11): marks synced fields dirty.
    pub fn edit_customer(
        &self,
        t: &TenantId,
        id: CustomerId,
        f: impl FnOnce(&mut Customer),
        at: DateTime<Utc>,
    ) {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.customers.get_mut(&(t.clone(), id.0)) {
            f(c);
            c.edited_at = Some(at);
        }
    }
}

fn upsert_customer_from_event(s: &mut StoreState, t: &TenantId, e: &CallEvent) {
    let Some(number) = e.party.number() else {
        return;
    };
    let key = s
        .customers
        .iter()
        .find(|((tt, _), c)| tt == t && c.number.e164() == number.e164())
        .map(|(k, _)| k.clone());
    let fill = |slot: &mut Option<String>, v: &Option<String>| {
        if slot.as_deref().is_none_or(str::is_empty) {
            slot.clone_from(v);
        }
    };
    match key {
        Some(k) => {
            let c = s.customers.get_mut(&k).unwrap();
            fill(&mut c.fields.name, &e.contact.name);
            fill(&mut c.fields.company, &e.contact.company);
            fill(&mut c.fields.email, &e.contact.email);
            fill(&mut c.fields.address, &e.contact.address);
        }
        None => {
            let id = s.id();
            let mut fields = crate::CustomerFields::default();
            fill(&mut fields.name, &e.contact.name);
            fill(&mut fields.company, &e.contact.company);
            fill(&mut fields.email, &e.contact.email);
            fill(&mut fields.address, &e.contact.address);
            s.customers.insert(
                (t.clone(), id),
                Customer {
                    id: CustomerId(id),
                    number: number.clone(),
                    fields,
                    link: None,
                    dirty: vec![],
                    edited_at: None,
                },
            );
        }
    }
}

#[async_trait]
impl EventLog for InMemoryStore {
    async fn accept(
        &self,
        t: &TenantId,
        raw: &RawPayload,
        event: &CallEvent,
        now: DateTime<Utc>,
    ) -> Result<Accepted, StoreError> {
        let mut s = self.state.lock().unwrap();
        if let Some((_, e, _)) = s.events.iter().find(|(tt, e, _)| {
            tt == t && e.event.call_id == event.call_id && e.event.kind == event.kind
        }) {
            return Ok(Accepted::Duplicate { event_id: e.id });
        }
        let id = s.id();
        s.events.push((
            t.clone(),
            StoredEvent {
                id,
                event: event.clone(),
                received_at: now,
                request_id: raw.request_id.clone(),
                outcome: None,
            },
            None,
        ));
        upsert_customer_from_event(&mut s, t, event);
        let qid = s.id();
        s.queue.push(QItem {
            id: qid,
            tenant: t.clone(),
            kind: WorkKind::CallEvent {
                event_id: id,
                call_id: event.call_id.clone(),
                event: event.kind,
            },
            state: QState::Ready,
            attempts: 0,
            due: now,
            lease_token: String::new(),
            lease_expires: now,
            failure: None,
            failed_at: None,
        });
        Ok(Accepted::New { event_id: id })
    }
    async fn event(&self, t: &TenantId, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.events
            .iter()
            .find(|(tt, e, _)| tt == t && e.id == event_id)
            .map(|(_, e, o)| StoredEvent {
                outcome: o.clone(),
                ..e.clone()
            }))
    }
    async fn call_events(
        &self,
        t: &TenantId,
        call: &CallId,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.events
            .iter()
            .filter(|(tt, e, _)| tt == t && &e.event.call_id == call)
            .map(|(_, e, o)| StoredEvent {
                outcome: o.clone(),
                ..e.clone()
            })
            .collect())
    }
    async fn set_outcome(
        &self,
        t: &TenantId,
        event_id: i64,
        o: &EventOutcome,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        for (tt, e, out) in s.events.iter_mut() {
            if tt == t && e.id == event_id {
                *out = Some(o.clone());
            }
        }
        Ok(())
    }
}

static LEASES: AtomicU64 = AtomicU64::new(0);

#[async_trait]
impl WorkQueue for InMemoryStore {
    async fn claim(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let mut s = self.state.lock().unwrap();
        let lease = chrono::Duration::from_std(lease).unwrap_or_default();
        let mut out = Vec::new();
        for q in s.queue.iter_mut() {
            if out.len() as u32 >= limit {
                break;
            }
            let claimable = (q.state == QState::Ready && q.due <= now)
                || (q.state == QState::Leased && q.lease_expires <= now);
            if !claimable {
                continue;
            }
            if q.state == QState::Leased {
                q.attempts += 1; // the previous claimer crashed
            }
            q.state = QState::Leased;
            q.lease_token = format!("{worker}-{}", LEASES.fetch_add(1, Ordering::Relaxed));
            q.lease_expires = now + lease;
            out.push(WorkItem {
                id: q.id,
                tenant: q.tenant.clone(),
                kind: q.kind.clone(),
                attempts: q.attempts,
                lease_token: q.lease_token.clone(),
            });
        }
        Ok(out)
    }
    async fn complete(&self, item: &WorkItem) -> Result<(), StoreError> {
        self.with_lease(item, |q| q.state = QState::Done)
    }
    async fn retry_at(
        &self,
        item: &WorkItem,
        at: DateTime<Utc>,
        why: &Failure,
    ) -> Result<(), StoreError> {
        self.with_lease(item, |q| {
            q.state = QState::Ready;
            q.due = at;
            q.attempts += 1;
            q.failure = Some(why.clone());
        })
    }
    async fn defer(
        &self,
        item: &WorkItem,
        at: DateTime<Utc>,
        why: &Failure,
    ) -> Result<(), StoreError> {
        self.with_lease(item, |q| {
            q.state = QState::Ready;
            q.due = at;
            q.failure = Some(why.clone());
        })
    }
    async fn hold(
        &self,
        item: &WorkItem,
        reason: HoldReason,
        why: &Failure,
    ) -> Result<(), StoreError> {
        self.with_lease(item, |q| {
            q.state = QState::Held(reason);
            q.failure = Some(why.clone());
        })
    }
    async fn dead_letter(
        &self,
        item: &WorkItem,
        why: &Failure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with_lease(item, |q| {
            q.state = QState::Dead;
            q.attempts += 1;
            q.failure = Some(why.clone());
            q.failed_at = Some(now);
        })
    }
    async fn release_held(&self, t: &TenantId, reason: HoldReason) -> Result<u64, StoreError> {
        let mut s = self.state.lock().unwrap();
        let mut n = 0;
        for q in s
            .queue
            .iter_mut()
            .filter(|q| &q.tenant == t && q.state == QState::Held(reason))
        {
            q.state = QState::Ready;
            n += 1;
        }
        Ok(n)
    }
    async fn retry_dead(&self, t: &TenantId, item_id: i64) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        match s
            .queue
            .iter_mut()
            .find(|q| &q.tenant == t && q.id == item_id && q.state == QState::Dead)
        {
            Some(q) => {
                q.state = QState::Ready;
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn failed(&self, t: &TenantId, limit: u64) -> Result<Vec<FailedItem>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.queue
            .iter()
            .filter(|q| &q.tenant == t && q.state == QState::Dead)
            .take(limit as usize)
            .map(|q| FailedItem {
                id: q.id,
                kind: q.kind.clone(),
                attempts: q.attempts,
                failure: q.failure.clone().unwrap_or_else(unreachable_failure),
                failed_at: q.failed_at.unwrap_or(q.due),
            })
            .collect())
    }
    async fn depth(&self, t: &TenantId) -> Result<QueueDepth, StoreError> {
        let s = self.state.lock().unwrap();
        let mut d = QueueDepth::default();
        for q in s.queue.iter().filter(|q| &q.tenant == t) {
            match q.state {
                QState::Ready => d.ready += 1,
                QState::Leased => d.leased += 1,
                QState::Held(_) => d.held += 1,
                QState::Dead => d.dead += 1,
                QState::Done => {}
            }
        }
        Ok(d)
    }
}

fn unreachable_failure() -> Failure {
    Failure {
        class: crate::ErrorClass::BadData,
        code: "UNKNOWN".into(),
        message_en: String::new(),
        message_ja: String::new(),
        fix_en: None,
        fix_ja: None,
    }
}

impl InMemoryStore {
    fn with_lease(&self, item: &WorkItem, f: impl FnOnce(&mut QItem)) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        match s.queue.iter_mut().find(|q| q.id == item.id) {
            Some(q) if q.state == QState::Leased && q.lease_token == item.lease_token => {
                f(q);
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!(
                "lease on item {} was lost",
                item.id
            ))),
        }
    }
}

#[async_trait]
impl CallTaskStore for InMemoryStore {
    async fn call_task(&self, t: &TenantId, call: &CallId) -> Result<Option<CallTask>, StoreError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .tasks
            .get(&(t.clone(), call.clone()))
            .cloned())
    }
    async fn save_call_task(&self, t: &TenantId, task: &CallTask) -> Result<(), StoreError> {
        self.state
            .lock()
            .unwrap()
            .tasks
            .insert((t.clone(), task.call_id.clone()), task.clone());
        Ok(())
    }
}

#[async_trait]
impl DirectoryStore for InMemoryStore {
    async fn save_users(&self, t: &TenantId, users: &[SfUser]) -> Result<(), StoreError> {
        self.state
            .lock()
            .unwrap()
            .users
            .insert(t.clone(), users.to_vec());
        Ok(())
    }
    async fn users(&self, t: &TenantId) -> Result<Vec<SfUser>, StoreError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .users
            .get(t)
            .cloned()
            .unwrap_or_default())
    }
    async fn members(&self, t: &TenantId) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .members
            .get(t)
            .cloned()
            .unwrap_or_default())
    }
}

#[async_trait]
impl SettingsStore for InMemoryStore {
    async fn settings(&self, t: &TenantId) -> Result<Option<IntegrationSettings>, StoreError> {
        Ok(self.state.lock().unwrap().settings.get(t).cloned())
    }
    async fn save_settings(&self, t: &TenantId, s: &IntegrationSettings) -> Result<(), StoreError> {
        self.state
            .lock()
            .unwrap()
            .settings
            .insert(t.clone(), s.clone());
        Ok(())
    }
}

#[async_trait]
impl CredentialStore for InMemoryStore {
    async fn load(&self, t: &TenantId) -> Result<Option<Credentials>, StoreError> {
        Ok(self.state.lock().unwrap().credentials.get(t).cloned())
    }
    async fn save(&self, t: &TenantId, c: &Credentials) -> Result<(), StoreError> {
        self.state
            .lock()
            .unwrap()
            .credentials
            .insert(t.clone(), c.clone());
        Ok(())
    }
    async fn update_access_token(
        &self,
        t: &TenantId,
        access_token: &SecretString,
        instance_url: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.credentials.get_mut(t) {
            c.access_token = access_token.clone();
            c.instance_url = instance_url.to_owned();
        }
        Ok(())
    }
    async fn delete(&self, t: &TenantId) -> Result<(), StoreError> {
        self.state.lock().unwrap().credentials.remove(t);
        Ok(())
    }
}

#[async_trait]
impl Locks for InMemoryStore {
    async fn try_lock(
        &self,
        t: &TenantId,
        key: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        let k = (t.clone(), key.to_owned());
        let free = match s.locks.get(&k) {
            Some((h, exp)) => h == holder || *exp <= now,
            None => true,
        };
        if free {
            s.locks.insert(
                k,
                (
                    holder.to_owned(),
                    now + chrono::Duration::from_std(ttl).unwrap_or_default(),
                ),
            );
        }
        Ok(free)
    }
    async fn unlock(&self, t: &TenantId, key: &str, holder: &str) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        let k = (t.clone(), key.to_owned());
        if s.locks.get(&k).is_some_and(|(h, _)| h == holder) {
            s.locks.remove(&k);
        }
        Ok(())
    }
}

#[async_trait]
impl CustomerStore for InMemoryStore {
    async fn find_by_number(
        &self,
        t: &TenantId,
        e164: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.customers
            .iter()
            .find(|((tt, _), c)| tt == t && c.number.e164() == e164)
            .map(|(_, c)| c.clone()))
    }
    async fn find_by_numbers(
        &self,
        t: &TenantId,
        e164: &[String],
    ) -> Result<Vec<Customer>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.customers
            .iter()
            .filter(|((tt, _), c)| tt == t && e164.iter().any(|n| n == c.number.e164()))
            .map(|(_, c)| c.clone())
            .collect())
    }
    async fn find_by_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<Customer>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.customers
            .iter()
            .filter(|((tt, _), c)| {
                tt == t && c.link.as_ref().is_some_and(|l| records.contains(&l.record))
            })
            .map(|(_, c)| c.clone())
            .collect())
    }
    async fn get(&self, t: &TenantId, id: CustomerId) -> Result<Option<Customer>, StoreError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .customers
            .get(&(t.clone(), id.0))
            .cloned())
    }
    async fn apply_changes(&self, t: &TenantId, ch: CustomerChanges) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        // All or nothing, like the real store's transaction: check uniqueness first.
        let mut numbers: HashMap<String, i64> = s
            .customers
            .iter()
            .filter(|((tt, _), _)| tt == t)
            .map(|((_, id), c)| (c.number.e164().to_owned(), *id))
            .collect();
        for u in &ch.updates {
            numbers.retain(|_, id| *id != u.id.0);
            if numbers.insert(u.number.e164().to_owned(), u.id.0).is_some() {
                return Err(StoreError::Conflict(format!(
                    "number {} taken",
                    u.number.e164()
                )));
            }
        }
        for c in &ch.creates {
            if numbers.insert(c.number.e164().to_owned(), -1).is_some() {
                return Err(StoreError::Conflict(format!(
                    "number {} taken",
                    c.number.e164()
                )));
            }
        }
        for c in &ch.creates {
            let id = s.id();
            s.customers.insert(
                (t.clone(), id),
                Customer {
                    id: CustomerId(id),
                    number: c.number.clone(),
                    fields: c.fields.clone(),
                    link: c.link.clone(),
                    dirty: vec![],
                    edited_at: None,
                },
            );
        }
        for u in &ch.updates {
            if let Some(c) = s.customers.get_mut(&(t.clone(), u.id.0)) {
                c.number = u.number.clone();
                c.fields = u.fields.clone();
                c.link = u.link.clone();
                c.dirty = u.dirty.clone();
            }
        }
        for id in &ch.unlinks {
            if let Some(c) = s.customers.get_mut(&(t.clone(), id.0)) {
                c.link = None;
            }
        }
        s.duplicates
            .retain(|(tt, d)| !(tt == t && ch.clear_duplicates.contains(&d.record)));
        for d in &ch.duplicates {
            s.duplicates
                .retain(|(tt, x)| !(tt == t && x.record == d.record));
            s.duplicates.push((t.clone(), d.clone()));
        }
        if let Some((object, at)) = ch.watermark {
            s.watermarks.insert((t.clone(), object), at);
        }
        Ok(())
    }
    async fn link(&self, t: &TenantId, id: CustomerId, link: &SfLink) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        match s.customers.get_mut(&(t.clone(), id.0)) {
            Some(c) => {
                c.link = Some(link.clone());
                Ok(())
            }
            None => Err(StoreError::NotFound(format!("customer {id}"))),
        }
    }
    async fn pending_write_back(
        &self,
        t: &TenantId,
        limit: u64,
    ) -> Result<Vec<Customer>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.customers
            .iter()
            .filter(|((tt, _), c)| tt == t && !c.dirty.is_empty() && c.link.is_some())
            .take(limit as usize)
            .map(|(_, c)| c.clone())
            .collect())
    }
    async fn mark_written_back(
        &self,
        t: &TenantId,
        id: CustomerId,
        edited_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.customers.get_mut(&(t.clone(), id.0))
            && c.edited_at == edited_at
        {
            c.dirty.clear();
        }
        Ok(())
    }
    async fn watermark(
        &self,
        t: &TenantId,
        object: SfObject,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .watermarks
            .get(&(t.clone(), object))
            .copied())
    }
}

#[async_trait]
impl SyncRunStore for InMemoryStore {
    async fn start_run(
        &self,
        t: &TenantId,
        kind: SyncKind,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut s = self.state.lock().unwrap();
        let id = s.id();
        s.runs.push((
            t.clone(),
            SyncRun {
                id,
                kind,
                started_at: now,
                finished_at: None,
                ok: None,
                report: SyncReport::default(),
            },
        ));
        Ok(id)
    }
    async fn update_run(
        &self,
        t: &TenantId,
        run_id: i64,
        report: &SyncReport,
        finished: Option<(DateTime<Utc>, bool)>,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        for (tt, r) in s.runs.iter_mut() {
            if tt == t && r.id == run_id {
                r.report = report.clone();
                if let Some((at, ok)) = finished {
                    r.finished_at = Some(at);
                    r.ok = Some(ok);
                }
            }
        }
        Ok(())
    }
    async fn runs(&self, t: &TenantId, limit: u64) -> Result<Vec<SyncRun>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.runs
            .iter()
            .rev()
            .filter(|(tt, _)| tt == t)
            .take(limit as usize)
            .map(|(_, r)| r.clone())
            .collect())
    }
}

// ------------------------------------------------------------------------------------------
// A fake Salesforce org
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct OrgState {
    records: Vec<SfRecord>,
    tasks: Vec<(SalesforceId, TaskDraft)>,
    accounts: Vec<(SalesforceId, String)>,
    users: Vec<SfUser>,
    /// Errors returned by the next calls, in order.
    fail_next: Vec<SfError>,
    /// Numbers (E.164) a duplicate rule matches to an existing record on create.
    duplicate_rule: Vec<(String, SalesforceRecordRef)>,
    usage: Option<ApiUsage>,
}

/// One fake org for one or more tenants. Counts every request like the API allowance does.
#[derive(Default)]
pub struct FakeSalesforce {
    state: Mutex<OrgState>,
    requests: AtomicU64,
    next: AtomicI64,
}

impl FakeSalesforce {
    pub fn new() -> Self {
        Self::default()
    }
    fn new_id(&self, prefix: &str) -> SalesforceId {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        SalesforceId::parse(&format!("{prefix}{n:012}")).expect("valid id")
    }
    fn count(&self) -> Result<(), SfError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().unwrap();
        if s.fail_next.is_empty() {
            Ok(())
        } else {
            Err(s.fail_next.remove(0))
        }
    }
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn add_record(
        &self,
        object: SfObject,
        phone: &str,
        last_name: &str,
        modified: DateTime<Utc>,
    ) -> SalesforceRecordRef {
        let prefix = if object == SfObject::Lead {
            "00Q"
        } else {
            "003"
        };
        let r = SalesforceRecordRef {
            object,
            id: self.new_id(prefix),
        };
        self.state.lock().unwrap().records.push(SfRecord {
            record: r.clone(),
            phone: Some(phone.to_owned()),
            last_name: Some(last_name.to_owned()),
            first_name: None,
            company: None,
            email: None,
            address: None,
            description: None,
            is_converted: false,
            converted_contact_id: None,
            system_modstamp: modified,
            last_modified: modified,
        });
        r
    }
    pub fn add_user(&self, email: &str, active: bool) -> SalesforceId {
        let id = self.new_id("005");
        self.state.lock().unwrap().users.push(SfUser {
            id: id.clone(),
            email: EmailAddress::parse(email).ok(),
            name: email.to_owned(),
            active,
        });
        id
    }
    pub fn tasks(&self) -> Vec<(SalesforceId, TaskDraft)> {
        self.state.lock().unwrap().tasks.clone()
    }
    pub fn records(&self) -> Vec<SfRecord> {
        self.state.lock().unwrap().records.clone()
    }
    pub fn accounts(&self) -> Vec<(SalesforceId, String)> {
        self.state.lock().unwrap().accounts.clone()
    }
    pub fn fail_next(&self, e: SfError) {
        self.state.lock().unwrap().fail_next.push(e);
    }
    pub fn set_duplicate_rule(&self, e164: &str, existing: SalesforceRecordRef) {
        self.state
            .lock()
            .unwrap()
            .duplicate_rule
            .push((e164.to_owned(), existing));
    }
    pub fn set_usage(&self, used: u64, max: u64) {
        self.state.lock().unwrap().usage = Some(ApiUsage {
            used,
            max,
            observed_at: Utc::now(),
        });
    }
    /// Credentials for a tenant connected to this org.
    pub fn credentials(&self, connecting_user: &SalesforceId) -> Credentials {
        Credentials {
            instance_url: "https://fake.my.salesforce.com".into(),
            access_token: SecretString::from("fake-access"),
            refresh_token: SecretString::from("fake-refresh"),
            user: ConnectedUser {
                user_id: connecting_user.clone(),
                org_id: SalesforceId::parse("00D000000000001").expect("valid"),
                email: None,
                name: "Admin".into(),
            },
            issued_at: Utc::now(),
        }
    }
}

#[async_trait]
impl SalesforceReader for FakeSalesforce {
    async fn check_field_access(&self, _: &TenantId, _: &[SfObject]) -> Result<(), SfError> {
        self.count()
    }
    async fn fetch_page(
        &self,
        _: &TenantId,
        q: &RecordQuery,
        cursor: Option<PageCursor>,
    ) -> Result<RecordPage, SfError> {
        self.count()?;
        let s = self.state.lock().unwrap();
        let mut all: Vec<SfRecord> = s
            .records
            .iter()
            .filter(|r| r.record.object == q.object)
            .filter(|r| q.since.is_none_or(|t| r.system_modstamp >= t))
            .filter(|r| q.modified_after.is_none_or(|t| r.last_modified >= t))
            .filter(|r| !q.only_with_phone || r.phone.as_deref().is_some_and(|p| !p.is_empty()))
            .filter(|r| !q.exclude_converted || !r.is_converted)
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            a.system_modstamp
                .cmp(&b.system_modstamp)
                .then(a.record.id.cmp(&b.record.id))
        });
        let offset: usize = cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0);
        let total = all.len() as u64;
        let page: Vec<SfRecord> = all.into_iter().skip(offset).take(2000).collect();
        let next = (offset + page.len() < total as usize)
            .then(|| PageCursor((offset + page.len()).to_string()));
        Ok(RecordPage {
            records: page,
            next,
            total_size: total,
        })
    }
    async fn fetch_records(
        &self,
        _: &TenantId,
        refs: &[SalesforceRecordRef],
    ) -> Result<Vec<SfRecord>, SfError> {
        self.count()?;
        let s = self.state.lock().unwrap();
        Ok(s.records
            .iter()
            .filter(|r| refs.contains(&r.record))
            .cloned()
            .collect())
    }
    async fn search_by_phone(
        &self,
        _: &TenantId,
        number: &PhoneNumber,
        targets: SyncTargets,
    ) -> Result<Vec<SfRecord>, SfError> {
        self.count()?;
        let s = self.state.lock().unwrap();
        Ok(s.records
            .iter()
            .filter(|r| targets.contains(r.record.object) && !r.is_converted)
            .filter(|r| {
                r.phone
                    .as_deref()
                    .and_then(|p| PhoneNumber::parse(p).ok())
                    .as_ref()
                    == Some(number)
            })
            .cloned()
            .collect())
    }
    async fn deleted_since(
        &self,
        _: &TenantId,
        _: SfObject,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, SfError> {
        self.count()?;
        Ok(vec![])
    }
    async fn active_users(&self, _: &TenantId) -> Result<Vec<SfUser>, SfError> {
        self.count()?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .users
            .iter()
            .filter(|u| u.active)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl SalesforceWriter for FakeSalesforce {
    async fn create_tasks(
        &self,
        _: &TenantId,
        tasks: &[TaskDraft],
    ) -> Result<Vec<Result<SalesforceId, SfError>>, SfError> {
        let mut out = Vec::new();
        for chunk in tasks.chunks(200) {
            self.count()?;
            for t in chunk {
                let id = self.new_id("00T");
                self.state
                    .lock()
                    .unwrap()
                    .tasks
                    .push((id.clone(), t.clone()));
                out.push(Ok(id));
            }
        }
        Ok(out)
    }
    async fn update_task(
        &self,
        _: &TenantId,
        id: &SalesforceId,
        patch: &TaskPatch,
    ) -> Result<(), SfError> {
        self.count()?;
        let mut s = self.state.lock().unwrap();
        let Some((_, t)) = s.tasks.iter_mut().find(|(tid, _)| tid == id) else {
            return Err(SfError::NotFound {
                cause: format!("Task {id}"),
            });
        };
        if let Some(v) = &patch.subject {
            t.subject.clone_from(v);
        }
        if let Some(v) = &patch.description {
            t.description.clone_from(v);
        }
        if patch.duration_secs.is_some() {
            t.duration_secs = patch.duration_secs;
        }
        if let Some(v) = &patch.disposition {
            t.disposition.clone_from(v);
        }
        Ok(())
    }
    async fn find_task_by_call_object(
        &self,
        _: &TenantId,
        call_object: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        self.count()?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .tasks
            .iter()
            .find(|(_, t)| t.call_object == call_object)
            .map(|(id, _)| id.clone()))
    }
    async fn find_tasks_by_call_objects(
        &self,
        _: &TenantId,
        call_objects: &[String],
    ) -> Result<HashMap<String, SalesforceId>, SfError> {
        for _ in call_objects.chunks(100) {
            self.count()?;
        }
        let s = self.state.lock().unwrap();
        Ok(s.tasks
            .iter()
            .filter(|(_, t)| call_objects.contains(&t.call_object))
            .map(|(id, t)| (t.call_object.clone(), id.clone()))
            .collect())
    }
    async fn find_account(
        &self,
        _: &TenantId,
        name: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        self.count()?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .accounts
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id.clone()))
    }
    async fn create_account(&self, _: &TenantId, name: &str) -> Result<SalesforceId, SfError> {
        self.count()?;
        let id = self.new_id("001");
        self.state
            .lock()
            .unwrap()
            .accounts
            .push((id.clone(), name.to_owned()));
        Ok(id)
    }
    async fn create_record(
        &self,
        _: &TenantId,
        r: &NewRecord,
        allow: bool,
    ) -> Result<SalesforceId, SfError> {
        self.count()?;
        let e164 = PhoneNumber::parse(&r.phone)
            .map(|n| n.e164().to_owned())
            .unwrap_or_default();
        {
            let s = self.state.lock().unwrap();
            if !allow && let Some((_, existing)) = s.duplicate_rule.iter().find(|(n, _)| *n == e164)
            {
                return Err(SfError::Duplicate {
                    matches: vec![crate::DuplicateMatch {
                        object: existing.object.as_str().into(),
                        id: existing.id.clone(),
                    }],
                    cause: "Use one of these records?".into(),
                });
            }
        }
        let prefix = if r.object == SfObject::Lead {
            "00Q"
        } else {
            "003"
        };
        let id = self.new_id(prefix);
        let now = Utc::now();
        self.state.lock().unwrap().records.push(SfRecord {
            record: SalesforceRecordRef {
                object: r.object,
                id: id.clone(),
            },
            phone: Some(r.phone.clone()),
            last_name: Some(r.last_name.clone()),
            first_name: r.first_name.clone(),
            company: r.company.clone(),
            email: r.email.clone(),
            address: None,
            description: None,
            is_converted: false,
            converted_contact_id: None,
            system_modstamp: now,
            last_modified: now,
        });
        Ok(id)
    }
    async fn update_records(
        &self,
        _: &TenantId,
        updates: &[RecordUpdate],
    ) -> Result<Vec<Result<(), SfError>>, SfError> {
        for _ in updates.chunks(200) {
            self.count()?;
        }
        Ok(updates.iter().map(|_| Ok(())).collect())
    }
}

impl ApiUsageView for FakeSalesforce {
    fn usage(&self, _: &TenantId) -> Option<ApiUsage> {
        self.state.lock().unwrap().usage
    }
    fn requests_sent(&self, _: &TenantId) -> u64 {
        self.requests()
    }
    fn requests_last_24h(&self, _: &TenantId) -> u64 {
        self.requests()
    }
}

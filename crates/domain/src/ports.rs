//! Ports: the small traits the use cases need from the outside world.
//!
//! Adapters implement them (`sf-adapter` for Salesforce, `store-adapter` for storage); tests use
//! the mocks (feature `mocks`) or the in-memory fakes. Every method takes the tenant explicitly:
//! nothing crosses tenants, and there is no "all tenants" read except `WorkQueue::claim`, which
//! is how workers find work. Error contracts are stated per method.

use crate::{
    CallEvent, CallId, ConnectedUser, Customer, CustomerFields, CustomerId, Direction, ErrorClass,
    EventKind, IntegrationSettings, Member, PhoneNumber, SalesforceId, SalesforceRecordRef,
    SfError, SfLink, SfObject, SfRecord, SfUser, StoreError, SyncTargets, TenantId,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::time::Duration;

// ----------------------------------------------------------------------------------------------
// Salesforce
// ----------------------------------------------------------------------------------------------

/// Which Leads or Contacts to read, ordered by (`SystemModstamp`, `Id`) so that a run can resume
/// from the last page it committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    pub object: SfObject,
    /// `SystemModstamp >= since` (incremental sync, with the overlap already subtracted).
    pub since: Option<DateTime<Utc>>,
    /// `LastModifiedDate >= modified_after` (the initial import window, R16).
    pub modified_after: Option<DateTime<Utc>>,
    /// Only records whose `Phone` is non-empty (R12). Incremental runs read all changed
    /// records, so that a cleared Phone unlinks its customer.
    pub only_with_phone: bool,
    /// Leave converted Leads out (R15, import). Incremental runs keep them, to relink.
    pub exclude_converted: bool,
}

/// An opaque continuation (Salesforce's `nextRecordsUrl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPage {
    pub records: Vec<SfRecord>,
    pub next: Option<PageCursor>,
    /// Total matching rows as Salesforce reports it (the same on every page).
    pub total_size: u64,
}

/// A record deleted in Salesforce; `merged_into` is set when it lost a merge (R16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRecord {
    pub record: SalesforceRecordRef,
    pub merged_into: Option<SalesforceId>,
}

/// Reading from the connected org.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SalesforceReader: Send + Sync {
    /// R10 preflight: every field callsync reads on `objects` is visible to the connected
    /// user. Errors: `SfError::OrgConfig { problem: HiddenField, object, field }` naming the
    /// first hidden field; connection errors as usual.
    async fn check_field_access(&self, t: &TenantId, objects: &[SfObject]) -> Result<(), SfError>;

    /// One page of records. `cursor` is `None` for the first page. Costs one API request.
    async fn fetch_page(
        &self,
        t: &TenantId,
        query: &RecordQuery,
        cursor: Option<PageCursor>,
    ) -> Result<RecordPage, SfError>;

    /// The current state of specific records (any object mix), e.g. to follow a conversion.
    /// Records that no longer exist are absent from the result.
    async fn fetch_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<SfRecord>, SfError>;

    /// R21: Leads/Contacts within `targets` whose Phone is this number in any formatting.
    /// Implementations confirm every hit by normalized equality; converted Leads are excluded.
    async fn search_by_phone(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        targets: SyncTargets,
    ) -> Result<Vec<SfRecord>, SfError>;

    /// Records of `object` deleted or merged away in `[since, until]` (R16).
    async fn deleted_since(
        &self,
        t: &TenantId,
        object: SfObject,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, SfError>;

    /// Active Users with their emails, for owner resolution (R23).
    async fn active_users(&self, t: &TenantId) -> Result<Vec<SfUser>, SfError>;
}

/// A call activity to create (R24). Field names are domain names; the adapter maps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDraft {
    pub who: SalesforceRecordRef,
    /// `None`: let Salesforce default to the API (connecting) user.
    pub owner: Option<SalesforceId>,
    pub subject: String,
    pub description: String,
    pub call_type: Direction,
    pub duration_secs: Option<u32>,
    /// The phone system's call id (`<call id>` or `<call id>:<part>`, R25/R26).
    pub call_object: String,
    /// answered / missed / unanswered / voicemail
    pub disposition: String,
    pub activity_date: NaiveDate,
}

/// Changes to an existing call Task (later events of the same call, R25; transcripts, R26).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPatch {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub duration_secs: Option<u32>,
    pub disposition: Option<String>,
}

/// A Lead or Contact to create (R30–R32).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecord {
    pub object: SfObject,
    pub last_name: String,
    pub first_name: Option<String>,
    /// Lead only (required there).
    pub company: Option<String>,
    /// Contact only.
    pub account_id: Option<SalesforceId>,
    pub phone: String,
    pub email: Option<String>,
}

/// One synced field's new value for write-back (R11). `None` clears the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldChange {
    Phone(Option<String>),
    Name {
        last_name: String,
        first_name: Option<String>,
    },
    Email(Option<String>),
    Description(Option<String>),
    /// Lead only; a Contact's company is never written (R11).
    Company(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordUpdate {
    pub record: SalesforceRecordRef,
    pub changes: Vec<FieldChange>,
}

/// Writing to the connected org.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SalesforceWriter: Send + Sync {
    /// Creates Tasks, batched (up to 200 per request). The outer error is for the whole call
    /// (connection, throttling); the inner results are per Task, in input order.
    async fn create_tasks(
        &self,
        t: &TenantId,
        tasks: &[TaskDraft],
    ) -> Result<Vec<Result<SalesforceId, SfError>>, SfError>;

    async fn update_task(
        &self,
        t: &TenantId,
        id: &SalesforceId,
        patch: &TaskPatch,
    ) -> Result<(), SfError>;

    /// Finds a Task by `CallObject`, to stay exactly-once across crashes (R25).
    async fn find_task_by_call_object(
        &self,
        t: &TenantId,
        call_object: &str,
    ) -> Result<Option<SalesforceId>, SfError>;

    /// Tasks by `CallObject`, many at once: what a retried batch checks before creating
    /// again (R25). Returns the call objects that have a Task, with its id.
    async fn find_tasks_by_call_objects(
        &self,
        t: &TenantId,
        call_objects: &[String],
    ) -> Result<std::collections::HashMap<String, SalesforceId>, SfError>;

    /// The oldest Account with exactly this Name (R32).
    async fn find_account(&self, t: &TenantId, name: &str)
    -> Result<Option<SalesforceId>, SfError>;

    async fn create_account(&self, t: &TenantId, name: &str) -> Result<SalesforceId, SfError>;

    /// Creates a Lead or Contact. A blocking duplicate rule is `SfError::Duplicate` with the
    /// matches Salesforce listed (R35); with `allow_duplicate_save` the rule is asked to let
    /// the save through.
    async fn create_record(
        &self,
        t: &TenantId,
        record: &NewRecord,
        allow_duplicate_save: bool,
    ) -> Result<SalesforceId, SfError>;

    /// Write-back (R11), batched. Per-record results in input order.
    async fn update_records(
        &self,
        t: &TenantId,
        updates: &[RecordUpdate],
    ) -> Result<Vec<Result<(), SfError>>, SfError>;
}

/// The org's API usage as Salesforce last reported it (`Sforce-Limit-Info`), C3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
    pub observed_at: DateTime<Utc>,
}

/// Read-only view of the API budget the Salesforce adapter tracks per tenant (C3).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait ApiUsageView: Send + Sync {
    fn usage(&self, t: &TenantId) -> Option<ApiUsage>;
    /// Requests this process has sent for the tenant since it started (a counter: take
    /// differences to measure an operation).
    fn requests_sent(&self, t: &TenantId) -> u64;
    /// Requests this process sent for the tenant in the last 24 hours, the window Salesforce's
    /// allowance rolls over (C3: callsync's own share).
    fn requests_last_24h(&self, t: &TenantId) -> u64;
}

// ----------------------------------------------------------------------------------------------
// Storage
// ----------------------------------------------------------------------------------------------

/// The OAuth grant of a tenant. Never logged; stored encrypted (R7).
#[derive(Clone)]
pub struct Credentials {
    pub instance_url: String,
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub user: ConnectedUser,
    pub issued_at: DateTime<Utc>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("instance_url", &self.instance_url)
            .field("user", &self.user)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// Tokens at rest. Implementations encrypt; errors: `StoreError::Crypto` when the stored
/// tokens cannot be decrypted with the configured keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn load(&self, t: &TenantId) -> Result<Option<Credentials>, StoreError>;
    async fn save(&self, t: &TenantId, c: &Credentials) -> Result<(), StoreError>;
    /// After a refresh: the new access token and the (possibly new) instance URL.
    async fn update_access_token(
        &self,
        t: &TenantId,
        access_token: &SecretString,
        instance_url: &str,
    ) -> Result<(), StoreError>;
    async fn delete(&self, t: &TenantId) -> Result<(), StoreError>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The tenant's settings, or `None` when never saved.
    async fn settings(&self, t: &TenantId) -> Result<Option<IntegrationSettings>, StoreError>;
    async fn save_settings(&self, t: &TenantId, s: &IntegrationSettings) -> Result<(), StoreError>;
}

/// A new customer from an import or a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub number: PhoneNumber,
    pub fields: CustomerFields,
    pub link: Option<SfLink>,
}

/// A change to an existing customer from Salesforce. The number changes when the linked
/// record's Phone changed (or a relink brought another, R15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerUpdate {
    pub id: CustomerId,
    pub number: PhoneNumber,
    pub fields: CustomerFields,
    pub link: Option<SfLink>,
    /// Dirty fields that remain to be written back after this update.
    pub dirty: Vec<crate::SyncedField>,
}

/// A record that lost dedupe (R14), listed for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateEntry {
    /// E.164 of the shared number.
    pub number: String,
    pub record: SalesforceRecordRef,
    pub winner: SalesforceRecordRef,
    pub system_modstamp: DateTime<Utc>,
}

/// Everything one import page changes, applied in one transaction: nothing half-applied (R17).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChanges {
    pub creates: Vec<NewCustomer>,
    pub updates: Vec<CustomerUpdate>,
    /// Customers whose Salesforce record went away (deleted, merged, Phone cleared, converted
    /// to a Contact without Phone).
    pub unlinks: Vec<CustomerId>,
    pub duplicates: Vec<DuplicateEntry>,
    /// Records that are no longer duplicates (deleted, or now the winner).
    pub clear_duplicates: Vec<SalesforceRecordRef>,
    /// Progress committed with the page: the object's watermark (R16).
    pub watermark: Option<(SfObject, DateTime<Utc>)>,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Caller-ID lookup (R18): one indexed query on the E.164 number.
    async fn find_by_number(
        &self,
        t: &TenantId,
        e164: &str,
    ) -> Result<Option<Customer>, StoreError>;
    async fn find_by_numbers(
        &self,
        t: &TenantId,
        e164: &[String],
    ) -> Result<Vec<Customer>, StoreError>;
    async fn find_by_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<Customer>, StoreError>;
    async fn get(&self, t: &TenantId, id: CustomerId) -> Result<Option<Customer>, StoreError>;
    /// Applies an import page atomically (see `CustomerChanges`). Takes the changes, so an
    /// adapter can hand them to a task of its own without a copy.
    async fn apply_changes(&self, t: &TenantId, changes: CustomerChanges)
    -> Result<(), StoreError>;
    /// Links a customer to a record found by search or created (R21, R33).
    async fn link(&self, t: &TenantId, id: CustomerId, link: &SfLink) -> Result<(), StoreError>;
    /// Customers with fields edited in the phone system that still need write-back (R11).
    async fn pending_write_back(
        &self,
        t: &TenantId,
        limit: u64,
    ) -> Result<Vec<Customer>, StoreError>;
    /// Marks the given fields written back, unless the customer was edited again after
    /// `edited_at` (then they stay dirty for the next round).
    async fn mark_written_back(
        &self,
        t: &TenantId,
        id: CustomerId,
        edited_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    async fn watermark(
        &self,
        t: &TenantId,
        object: SfObject,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// A webhook as received, kept verbatim for audit and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPayload {
    pub content_type: String,
    pub body: Vec<u8>,
    pub request_id: Option<String>,
}

/// Result of storing a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored, with one queue item.
    New { event_id: i64 },
    /// The same (call id, event) was stored before; nothing new was queued.
    Duplicate { event_id: i64 },
}

/// What happened to an event, for the admin view (R17, R22, R27, R40).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EventOutcome {
    TaskCreated {
        task_id: SalesforceId,
        who: SalesforceRecordRef,
    },
    TaskUpdated {
        task_id: SalesforceId,
    },
    Skipped {
        reason: SkipReason,
    },
    Failed {
        class: ErrorClass,
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not in `notify_on` (R6).
    NotNotified,
    /// `write_activity` is off (R2).
    ActivityOff,
    /// `write_transcription` is off (R5).
    TranscriptionOff,
    /// Withheld / no number (R27).
    NoNumber,
    /// Not found and `create_customers` off (R22).
    NoMatch,
    /// The tenant has no Salesforce connection.
    NotConnected,
    /// A transcription with no text.
    EmptyTranscript,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub event: CallEvent,
    pub received_at: DateTime<Utc>,
    pub request_id: Option<String>,
    /// What processing it ended with; `None` while it is queued, in progress, or its worker
    /// died mid-step.
    pub outcome: Option<EventOutcome>,
}

/// Durable intake (SPEC "Call events"): the raw payload, the parsed event, the member and
/// customer it carries, and a queue item — committed together before the webhook is answered.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    async fn accept(
        &self,
        t: &TenantId,
        raw: &RawPayload,
        event: &CallEvent,
        now: DateTime<Utc>,
    ) -> Result<Accepted, StoreError>;
    async fn event(&self, t: &TenantId, event_id: i64) -> Result<Option<StoredEvent>, StoreError>;
    /// All stored events of a call, in the order received.
    async fn call_events(
        &self,
        t: &TenantId,
        call: &CallId,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    async fn set_outcome(
        &self,
        t: &TenantId,
        event_id: i64,
        o: &EventOutcome,
    ) -> Result<(), StoreError>;
}

/// A claimed unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub id: i64,
    pub tenant: TenantId,
    pub kind: WorkKind,
    /// Attempts before this one.
    pub attempts: u32,
    /// Identifies this claim; completing or failing with a stale token is refused.
    pub lease_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkKind {
    CallEvent {
        event_id: i64,
        call_id: CallId,
        event: EventKind,
    },
}

/// Why a failed item was set aside, with text for admins in both languages (R40).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub class: ErrorClass,
    pub code: String,
    pub message_en: String,
    pub message_ja: String,
    /// The Salesforce setting to change, when there is one.
    pub fix_en: Option<String>,
    pub fix_ja: Option<String>,
}

/// Why a tenant's items are held (not failed): they resume by themselves when the cause goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    NeedsReconnect,
    Throttled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedItem {
    pub id: i64,
    pub kind: WorkKind,
    pub attempts: u32,
    pub failure: Failure,
    pub failed_at: DateTime<Utc>,
}

/// Queue depth by state, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub ready: u64,
    pub leased: u64,
    pub waiting: u64,
    pub held: u64,
    pub dead: u64,
}

/// The work queue / outbox. Safe with several workers in several processes: a claimed item
/// is invisible to other claimers until its lease expires; a crashed worker's item runs again.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Claims up to `limit` due items of any tenant (the one cross-tenant read).
    async fn claim(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<WorkItem>, StoreError>;
    /// Done. Errors `Conflict` when the lease was lost (another worker has it now).
    async fn complete(&self, item: &WorkItem) -> Result<(), StoreError>;
    /// Try again at `at` (backoff chosen by the caller).
    async fn retry_at(
        &self,
        item: &WorkItem,
        at: DateTime<Utc>,
        why: &Failure,
    ) -> Result<(), StoreError>;
    /// Run again at `at` without counting this claim as an attempt: the item waited for
    /// another worker (a lease it needs was taken); it did not fail.
    async fn defer(
        &self,
        item: &WorkItem,
        at: DateTime<Utc>,
        why: &Failure,
    ) -> Result<(), StoreError>;
    /// Set aside until the tenant's hold is released (reconnect, budget).
    async fn hold(
        &self,
        item: &WorkItem,
        reason: HoldReason,
        why: &Failure,
    ) -> Result<(), StoreError>;
    /// Dead-letter with the cause; visible to admins, retryable (R40). Never deleted.
    async fn dead_letter(
        &self,
        item: &WorkItem,
        why: &Failure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Makes held items of the tenant due again. Returns how many.
    async fn release_held(&self, t: &TenantId, reason: HoldReason) -> Result<u64, StoreError>;
    /// An admin's retry of one dead item. `false` when no such dead item.
    async fn retry_dead(&self, t: &TenantId, item_id: i64) -> Result<bool, StoreError>;
    async fn failed(&self, t: &TenantId, limit: u64) -> Result<Vec<FailedItem>, StoreError>;
    async fn depth(&self, t: &TenantId) -> Result<QueueDepth, StoreError>;
}

/// The Task a call produced (R25), and what was written to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTask {
    pub call_id: CallId,
    pub task_id: SalesforceId,
    pub who: SalesforceRecordRef,
    pub owner: Option<SalesforceId>,
    /// The Description as last written, so later events can rebuild it.
    pub description: String,
    /// Follow-up Tasks holding transcript continuation (R26), in order.
    pub continuation_task_ids: Vec<SalesforceId>,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CallTaskStore: Send + Sync {
    async fn call_task(&self, t: &TenantId, call: &CallId) -> Result<Option<CallTask>, StoreError>;
    async fn save_call_task(&self, t: &TenantId, task: &CallTask) -> Result<(), StoreError>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Replaces the cached Salesforce User directory (refreshed with each sync, R23).
    async fn save_users(&self, t: &TenantId, users: &[SfUser]) -> Result<(), StoreError>;
    async fn users(&self, t: &TenantId) -> Result<Vec<SfUser>, StoreError>;
    async fn members(&self, t: &TenantId) -> Result<Vec<Member>, StoreError>;
}

/// Kinds of sync run (R16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    Initial,
    Incremental,
    WriteBack,
}

/// The record of one sync run (R17).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub seen: u64,
    pub created: u64,
    pub updated: u64,
    pub unlinked: u64,
    pub unchanged: u64,
    /// Reason → count (e.g. `no_phone`, `invalid_number`, `converted`).
    pub skipped: std::collections::BTreeMap<String, u64>,
    pub duplicates: u64,
    pub written_back: u64,
    pub api_requests: u64,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRun {
    pub id: i64,
    pub kind: SyncKind,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub ok: Option<bool>,
    pub report: SyncReport,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SyncRunStore: Send + Sync {
    async fn start_run(
        &self,
        t: &TenantId,
        kind: SyncKind,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// Progress so far (also on success or failure, with `finished`).
    async fn update_run(
        &self,
        t: &TenantId,
        run_id: i64,
        report: &SyncReport,
        finished: Option<(DateTime<Utc>, bool)>,
    ) -> Result<(), StoreError>;
    async fn runs(&self, t: &TenantId, limit: u64) -> Result<Vec<SyncRun>, StoreError>;
}

/// Named leases: a sync run per tenant (also across instances), single flight per number
/// (R34), Account find-or-create per name (R32).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Locks: Send + Sync {
    /// `true` when `holder` now holds `key` until `now + ttl` (acquired, or renewed by the
    /// same holder); `false` when someone else holds an unexpired lease.
    async fn try_lock(
        &self,
        t: &TenantId,
        key: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn unlock(&self, t: &TenantId, key: &str, holder: &str) -> Result<(), StoreError>;
}

/// Time, injectable so rules about dates and leases are testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

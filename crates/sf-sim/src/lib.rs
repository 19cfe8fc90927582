//! sf-sim: a stateful Salesforce simulator, faithful at the wire level, for tests, the demo and
//! benchmarks. Dev-only: it depends on no other callsync crate, and only tests, xtask and the
//! demo depend on it.
//!
//! [`SfSim::start`] binds a *login origin* on `127.0.0.1:0` (OAuth authorize/token/revoke,
//! userinfo, identity URLs `/id/{orgId}/{userId}`). [`SfSim::add_org`] creates an org with its
//! *own instance origin* (its own listener), so each org has a distinct `instance_url`, as My
//! Domain orgs do. The instance origin serves REST under `/services/data/vXX.X/` (versions list,
//! resources, query/queryAll with a SOQL subset and `nextRecordsUrl` paging, sObject CRUD,
//! describe, sObject Collections, Composite, SOSL search, updated/deleted, limits) and, like My
//! Domain, the OAuth endpoints too. Everything is in memory: records are compact structs and
//! JSON is built only when serving. Plain http only.
//!
//! ```no_run
//! # async fn demo() -> sf_sim::Result<()> {
//! let sim = sf_sim::SfSim::start().await?;
//! let org = sim.add_org(sf_sim::OrgSpec::default());
//! org.seed_japanese(1_000, 42);
//! let token = org.issue_token(); // or run the OAuth flow against sim.login_url()
//! let (client_id, client_secret) = sim.client_credentials();
//! # let _ = (token, client_id, client_secret); Ok(()) }
//! ```
//!
//! Tests drive the simulator through [`Org`]: seed records ([`Org::insert`],
//! [`Org::seed_japanese`]), read them back ([`Org::records`], [`Org::get`]), switch faults on
//! ([`Org::set_fault`]), move the sim clock ([`Org::set_time`], [`Org::advance`]) and inspect
//! every request ([`Org::requests`], [`Org::api_requests_used`]). The binary
//! (`cargo run -p sf-sim -- --port 8787 --seed demo`) starts one seeded demo org on
//! `--port` (login) and `--port + 1` (instance) and prints its URLs, credentials and a token.
//!
//! Behaviour worth knowing from outside:
//! - OAuth: one connected app for the whole simulator ([`SfSim::client_credentials`], same value
//!   from [`Org::client`]); any `redirect_uri` is accepted and must be repeated verbatim at the
//!   token endpoint. Authorize logs in the admin of the org whose origin received it (My Domain),
//!   else the user named by `login_hint`, else the admin of the newest org. PKCE: S256 only.
//!   Token responses have `issued_at` (ms, string) and no `expires_in`; a refresh returns no new
//!   refresh token. Revoke errors are urlencoded (`error=invalid_token&…`), as jsforce expects.
//! - Phone matching (SOSL `IN PHONE FIELDS`, duplicate rule): digits only (full-width folded),
//!   a leading `81`/`810` folded to the trunk `0`, then equality (trailing `*` = prefix). So
//!   `03-1234-5678`, `+81 3 1234 5678`, `(03)1234-5678` and `０３－１２３４－５６７８` all match
//!   `FIND {0312345678}`. Reserved SOSL characters (`+`, `-`, …) must be backslash-escaped.
//! - API counter: every authenticated `/services/data/vXX.X/…` call counts once (composite and
//!   collections count once); `/services/data/`, OAuth and identity calls do not. It never
//!   resets by itself (use [`Org::reset_request_log`] / [`Org::set_api_requests_used`]).
//! - Sim clock: real time by default; [`Org::set_time`] freezes it, [`Org::advance`] moves it.
//!   It stamps writes and drives date literals (UTC), replication windows and search lag.
//! - Dates are served as `2013-05-20T20:49:32.000+0000`; errors as `[{"message","errorCode",
//!   "fields"}]`; per-record collection errors with `statusCode`.
//!
//! Fidelity is proven in `tests/sim/clients.rs` with the real jsforce 3.10.16 (npm) and
//! simple-salesforce 1.12.10 (PyPI), installed on demand into `target/sf-clients/`.
//! simple-salesforce hard-codes `https://`; rather than serve TLS, its script rewrites the
//! client's `base_url`s to `http://` and follows `nextRecordsUrl` by locator (see the script).
//!
//! Where to start reading: this file (the public API), then `api.rs` (REST routing and the
//! per-request pipeline: auth → faults → limits → dispatch), `oauth.rs`, `soql.rs`/`sosl.rs`
//! (query engines), `store.rs` (records, write rules, undo log for all-or-none), `seed.rs`
//! (Japanese data generator), `phone.rs` (the matching rule). Wire facts follow
//! `/work/shared/reference/salesforce-api.md`; choices where Salesforce is undocumented are
//! noted at the point of use.

mod api;
mod ids;
mod oauth;
mod phone;
mod schema;
mod seed;
mod server;
mod soql;
mod sosl;
mod store;
mod value;

use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use seed::SeedSummary;
use server::{OrgInner, Shared, lock};

use crate::ids::SfId;
use crate::schema::Obj;
use crate::store::{ClockMode, WriteCtx};

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("binding a listener failed: {0}")]
    Bind(#[from] std::io::Error),
}

pub type Result<T, E = SimError> = std::result::Result<T, E>;

/// How the simulator starts.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Port of the login origin (0 = any free port).
    pub port: u16,
    /// When true (default), `/services/oauth2/authorize` redirects at once with `code` and `state`;
    /// when false it shows an HTML consent page with Allow/Deny buttons.
    pub auto_consent: bool,
    /// Supported API versions, e.g. `"62.0"` (default 20.0 … 65.0).
    pub api_versions: Vec<String>,
    /// Connected-app credentials (random when `None`).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            port: 0,
            auto_consent: true,
            api_versions: (20..=65).map(|v| format!("{v}.0")).collect(),
            client_id: None,
            client_secret: None,
        }
    }
}

/// An org to create.
#[derive(Clone, Debug)]
pub struct OrgSpec {
    pub name: String,
    /// Daily API request allocation reported in `Sforce-Limit-Info` (default 15,000).
    pub daily_api_limit: u64,
    /// The first user is the admin who connects. Empty: a default admin is created.
    pub users: Vec<SimUser>,
    /// Port for the org's instance origin (0 = any free port).
    pub port: u16,
}

impl Default for OrgSpec {
    fn default() -> Self {
        OrgSpec {
            name: "Sim Org".into(),
            daily_api_limit: 15_000,
            users: Vec::new(),
            port: 0,
        }
    }
}

impl OrgSpec {
    /// The Japanese sample org of the tests, benchmarks and examples: 株式会社サンプル, whose
    /// admin (管理 太郎, who connects) and one sales user (営業 一郎) are its Users.
    pub fn sample() -> Self {
        OrgSpec {
            name: "株式会社サンプル".into(),
            users: vec![
                SimUser::new("admin@sample.example.jp", "太郎", "管理"),
                SimUser::new("Ichiro.Eigyo@example.jp", "一郎", "営業"),
            ],
            ..Default::default()
        }
    }
}

/// A Salesforce user of an org.
#[derive(Clone, Debug)]
pub struct SimUser {
    /// An 18-char `005…` id to use, or `None` to generate one.
    pub id: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub active: bool,
}

impl SimUser {
    pub fn new(email: &str, first_name: &str, last_name: &str) -> Self {
        SimUser {
            id: None,
            email: email.into(),
            first_name: first_name.into(),
            last_name: last_name.into(),
            active: true,
        }
    }
}

/// Faults switchable per org at run time ([`Org::set_fault`]; [`Org::clear_faults`] resets the
/// switches).
#[derive(Clone, Debug)]
pub enum Fault {
    /// One-shot: every current access token of the org becomes invalid (401 INVALID_SESSION_ID);
    /// a refresh issues a new valid one. Not undone by `clear_faults`.
    SessionExpired,
    /// Every current refresh token of the org is revoked (permanent, like Salesforce), and while
    /// the switch is on refresh grants fail with `invalid_grant` / `expired access/refresh token`.
    RefreshRevoked,
    /// REST calls: 401 `This session is not valid for use with the REST API`; token endpoint:
    /// `invalid_grant` / `ip restricted`.
    IpRestricted,
    /// 403 `API_DISABLED_FOR_ORG`.
    ApiDisabled,
    /// 403 `REQUEST_LIMIT_EXCEEDED` (`TotalRequests Limit exceeded.`) regardless of the counter.
    RequestLimitExceeded,
    /// The next `times` record writes fail with `UNABLE_TO_LOCK_ROW` (per record in collections).
    LockRow { times: u32 },
    /// The next `times` REST requests answer 500 with an HTML body (not API-counted).
    ServerError { times: u32 },
    /// Every request to the org waits this long first.
    Latency(Duration),
    /// Field-level security hides the field: absent from describe and records, queries naming it
    /// fail with 400 INVALID_FIELD, writes naming it fail with INVALID_FIELD.
    HiddenField { object: String, field: String },
    /// Creating a record of `object` fails with FIELD_CUSTOM_VALIDATION_EXCEPTION and `message`.
    ValidationRule { object: String, message: String },
    /// Creating a record of `object` that matches a live record by normalized phone or by name
    /// fails with 400 DUPLICATES_DETECTED (`duplicateResut` names the matches, same type first),
    /// unless the request sends `Sforce-Duplicate-Rule-Header: allowSave=true`.
    DuplicateRule { object: String },
    /// SOSL does not return records created less than this long ago (sim clock), unless
    /// [`Org::index_now`] was called after they were created.
    SearchLag(Duration),
}

/// Which origin a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Login,
    Instance,
}

/// One request as the simulator saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Counted against the daily API allocation.
    pub api_counted: bool,
    pub status: u16,
    pub origin: Origin,
    /// Sim-clock time of the request.
    pub at: DateTime<Utc>,
}

/// A running simulator. Dropping it (or [`SfSim::shutdown`]) stops every listener.
pub struct SfSim {
    shared: Arc<Shared>,
}

impl SfSim {
    /// Start with default options: login origin on `127.0.0.1:0`, plain http, auto-consent.
    pub async fn start() -> Result<SfSim> {
        Self::start_with(SimOptions::default()).await
    }

    pub async fn start_with(opts: SimOptions) -> Result<SfSim> {
        let shared = server::start(opts).await?;
        Ok(SfSim { shared })
    }

    /// The login origin, e.g. `http://127.0.0.1:41234` (OAuth endpoints and identity URLs).
    pub fn login_url(&self) -> String {
        self.shared.login_url.clone()
    }

    /// `(client_id, client_secret)` of the connected app (one app, valid for every org).
    pub fn client_credentials(&self) -> (String, String) {
        (
            self.shared.client_id.clone(),
            self.shared.client_secret.clone(),
        )
    }

    /// Switch the authorize endpoint between auto-consent and the HTML consent page.
    pub fn set_auto_consent(&self, on: bool) {
        self.shared.auto_consent.store(on, AtomicOrdering::SeqCst);
    }

    /// Create an org with its own instance origin.
    ///
    /// # Panics
    /// When the org's listener cannot be bound (e.g. `spec.port` is taken).
    pub fn add_org(&self, spec: OrgSpec) -> Org {
        let inner = server::add_org(&self.shared, spec);
        Org {
            inner,
            shared: self.shared.clone(),
        }
    }

    /// The org with this id (15 or 18 chars).
    pub fn org(&self, org_id: &str) -> Option<Org> {
        let id = SfId::parse(org_id)?;
        let orgs = lock(&self.shared.orgs);
        orgs.iter().find(|o| o.org_id == id).map(|o| Org {
            inner: o.clone(),
            shared: self.shared.clone(),
        })
    }

    /// Every org, in creation order.
    pub fn orgs(&self) -> Vec<Org> {
        lock(&self.shared.orgs)
            .iter()
            .map(|o| Org {
                inner: o.clone(),
                shared: self.shared.clone(),
            })
            .collect()
    }

    /// Stop every listener and wait for the server tasks to end.
    pub async fn shutdown(self) {
        let tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for SfSim {
    fn drop(&mut self) {
        for t in lock(&self.shared.tasks).iter() {
            t.abort();
        }
    }
}

/// A cheap handle to one simulated org.
#[derive(Clone)]
pub struct Org {
    inner: Arc<OrgInner>,
    shared: Arc<Shared>,
}

fn obj(object: &str) -> Obj {
    match Obj::parse(object) {
        Some(o) => o,
        None => {
            panic!("sf-sim: unsupported object {object:?} (Lead, Contact, Account, Task, User)")
        }
    }
}

fn sfid(id: &str) -> SfId {
    match SfId::parse(id) {
        Some(i) => i,
        None => panic!("sf-sim: malformed id {id:?}"),
    }
}

impl Org {
    /// 18-char `00D…` id.
    pub fn org_id(&self) -> String {
        self.inner.org_id.to_string()
    }

    pub fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// `http://127.0.0.1:PORT` — this org's own origin.
    pub fn instance_url(&self) -> String {
        self.inner.instance_url.clone()
    }

    /// Identity URL of the admin on the login origin: `{login}/id/{orgId}/{userId}`.
    pub fn identity_url(&self) -> String {
        format!(
            "{}/id/{}/{}",
            self.shared.login_url, self.inner.org_id, self.inner.admin
        )
    }

    pub fn admin_user_id(&self) -> String {
        self.inner.admin.to_string()
    }

    /// `(client_id, client_secret)`; the connected app is global, so every org returns the same.
    pub fn client(&self) -> (String, String) {
        (
            self.shared.client_id.clone(),
            self.shared.client_secret.clone(),
        )
    }

    /// A valid access token for the admin user (skips OAuth).
    pub fn issue_token(&self) -> String {
        oauth::issue_access(&self.shared, &self.inner, self.inner.admin, None)
    }

    /// A valid `(access_token, refresh_token)` pair for the admin user (skips OAuth).
    pub fn issue_tokens(&self) -> (String, String) {
        let rt = oauth::issue_refresh(&self.shared, &self.inner, self.inner.admin);
        let at = oauth::issue_access(&self.shared, &self.inner, self.inner.admin, Some(&rt));
        (at, rt)
    }

    /// Add a user; returns its id.
    pub fn add_user(&self, user: SimUser) -> String {
        let mut st = lock(&self.inner.state);
        server::insert_user(&mut st.data, &user).to_string()
    }

    /// Seed a record and return its 18-char id. Lenient like a data import with "Create Audit
    /// Fields": read-only fields (`IsConverted`, `ConvertedContactId`, …) and `CreatedDate`,
    /// `LastModifiedDate`, `SystemModstamp` may be set; required fields are not enforced.
    ///
    /// # Panics
    /// On an unknown object or field, or a value of the wrong type.
    pub fn insert(&self, object: &str, fields: serde_json::Value) -> String {
        let o = obj(object);
        let mut st = lock(&self.inner.state);
        let map = fields.as_object().cloned().unwrap_or_default();
        let ctx = WriteCtx {
            user: self.inner.admin,
            seeding: true,
            allow_duplicates: true,
        };
        match st.data.create(o, &map, ctx) {
            Ok(id) => id.to_string(),
            Err(e) => panic!("sf-sim: insert {object} failed: {} {}", e.code, e.message),
        }
    }

    /// Edit one field directly (as an admin in the UI would): bumps LastModifiedDate and
    /// SystemModstamp to the sim clock's now, unless `field` is one of those dates itself.
    ///
    /// # Panics
    /// On an unknown object, record or field.
    pub fn set_field(&self, object: &str, id: &str, field: &str, value: serde_json::Value) {
        let o = obj(object);
        let id = sfid(id);
        let mut st = lock(&self.inner.state);
        let mut map = serde_json::Map::new();
        map.insert(field.to_string(), value);
        let ctx = WriteCtx {
            user: self.inner.admin,
            seeding: true,
            allow_duplicates: true,
        };
        let now = st.data.now();
        let is_date = ["LastModifiedDate", "SystemModstamp", "CreatedDate"]
            .iter()
            .any(|d| d.eq_ignore_ascii_case(field));
        if let Err(e) = st.data.update(o, id, &map, ctx) {
            panic!(
                "sf-sim: set_field {object}.{field} failed: {} {}",
                e.code, e.message
            );
        }
        if !is_date && let Ok(idx) = st.data.live_index(o, id) {
            let r = &mut st.data.tables[o.index()].recs[idx as usize];
            r.modified = now;
            r.modstamp = now;
        }
    }

    /// Delete a record (to the recycle bin: visible to queryAll and `deleted/`).
    ///
    /// # Panics
    /// On an unknown object or record.
    pub fn delete(&self, object: &str, id: &str) {
        let mut st = lock(&self.inner.state);
        if let Err(e) = st.data.delete(obj(object), sfid(id)) {
            panic!("sf-sim: delete {object} {id} failed: {}", e.code);
        }
    }

    /// Merge `loser` into `winner`: the loser is deleted with `MasterRecordId = winner`, its
    /// Tasks move to the winner.
    ///
    /// # Panics
    /// On an unknown object or record.
    pub fn merge(&self, object: &str, winner: &str, loser: &str) {
        let mut st = lock(&self.inner.state);
        if let Err(e) = st.data.merge(obj(object), sfid(winner), sfid(loser)) {
            panic!("sf-sim: merge failed: {}", e.code);
        }
    }

    /// Every record of `object` (deleted ones included, with `IsDeleted: true`), all fields, as
    /// Salesforce would serve them (hidden fields included: this is the admin's view).
    pub fn records(&self, object: &str) -> Vec<serde_json::Value> {
        let o = obj(object);
        let st = lock(&self.inner.state);
        st.data
            .table(o)
            .recs
            .iter()
            .filter(|r| !r.purged)
            .map(|r| server::full_record(&st.data, o, r).to_value())
            .collect()
    }

    /// Number of records of `object` that are not deleted.
    pub fn count(&self, object: &str) -> usize {
        let o = obj(object);
        let st = lock(&self.inner.state);
        st.data.table(o).recs.iter().filter(|r| r.is_live()).count()
    }

    /// One record by id (15 or 18 chars), deleted ones included.
    pub fn get(&self, object: &str, id: &str) -> Option<serde_json::Value> {
        let o = obj(object);
        let id = SfId::parse(id)?;
        let st = lock(&self.inner.state);
        st.data
            .find(o, id)
            .map(|(_, r)| server::full_record(&st.data, o, r).to_value())
    }

    /// Seed a realistic Japanese org: `n` Leads and Contacts (plus Accounts, users and converted
    /// Leads), deterministic from `seed`.
    pub fn seed_japanese(&self, n: usize, seed: u64) -> SeedSummary {
        let mut st = lock(&self.inner.state);
        let admin = self.inner.admin;
        seed::seed_japanese(&mut st.data, admin, n, seed)
    }

    pub fn set_fault(&self, fault: Fault) {
        match fault {
            Fault::SessionExpired => oauth::expire_sessions(&self.shared, &self.inner),
            Fault::RefreshRevoked => {
                oauth::revoke_refresh_tokens(&self.shared, &self.inner);
                lock(&self.inner.state).data.faults.refresh_revoked = true;
            }
            other => {
                let mut st = lock(&self.inner.state);
                let f = &mut st.data.faults;
                match other {
                    Fault::IpRestricted => f.ip_restricted = true,
                    Fault::ApiDisabled => f.api_disabled = true,
                    Fault::RequestLimitExceeded => f.limit_exceeded = true,
                    Fault::LockRow { times } => f.lock_row = times,
                    Fault::ServerError { times } => f.server_error = times,
                    Fault::Latency(d) => f.latency = d,
                    Fault::HiddenField { object, field } => {
                        let o = obj(&object);
                        match o.field_idx(&field) {
                            Some(i) => f.hidden.push((o, i)),
                            None => panic!("sf-sim: no field {object}.{field}"),
                        }
                    }
                    Fault::ValidationRule { object, message } => {
                        f.validation.push((obj(&object), message))
                    }
                    Fault::DuplicateRule { object } => f.duplicate.push(obj(&object)),
                    Fault::SearchLag(d) => f.search_lag_ms = d.as_millis() as i64,
                    Fault::SessionExpired | Fault::RefreshRevoked => {}
                }
            }
        }
    }

    /// Turn every fault switch off (expired sessions and revoked refresh tokens stay invalid).
    pub fn clear_faults(&self) {
        lock(&self.inner.state).data.faults = Default::default();
    }

    /// Every request this org saw (instance origin, and token calls on the login origin).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.state).log.clone()
    }

    /// API requests counted against today's allocation.
    pub fn api_requests_used(&self) -> u64 {
        lock(&self.inner.state).api_used
    }

    /// Set the counter (e.g. close to the limit).
    pub fn set_api_requests_used(&self, n: u64) {
        lock(&self.inner.state).api_used = n;
    }

    pub fn set_daily_api_limit(&self, max: u64) {
        lock(&self.inner.state).api_max = max;
    }

    /// Clear the request log and reset the API counter to 0.
    pub fn reset_request_log(&self) {
        let mut st = lock(&self.inner.state);
        st.log.clear();
        st.api_used = 0;
    }

    /// Freeze the sim clock at `t` (dates of writes, date literals, search lag, replication windows).
    pub fn set_time(&self, t: DateTime<Utc>) {
        lock(&self.inner.state).data.clock = ClockMode::Frozen(t.timestamp_millis());
    }

    /// Move the sim clock forward (a frozen clock stays frozen; a real clock gets an offset).
    pub fn advance(&self, d: Duration) {
        let mut st = lock(&self.inner.state);
        let ms = d.as_millis() as i64;
        st.data.clock = match st.data.clock {
            ClockMode::Real { offset_ms } => ClockMode::Real {
                offset_ms: offset_ms + ms,
            },
            ClockMode::Frozen(t) => ClockMode::Frozen(t + ms),
        };
    }

    /// The sim clock's now.
    pub fn now(&self) -> DateTime<Utc> {
        let ms = lock(&self.inner.state).data.now();
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    /// Make every record existing now searchable regardless of [`Fault::SearchLag`].
    pub fn index_now(&self) {
        let mut st = lock(&self.inner.state);
        st.data.indexed_through = st.data.now();
    }

    /// Cap query pages below the requested batch size (Salesforce may return fewer than asked).
    pub fn set_page_size_cap(&self, cap: Option<usize>) {
        lock(&self.inner.state).page_cap = cap;
    }

    /// Serve one bodiless request (e.g. `GET /services/data/v62.0/query?q=…`) on this org's
    /// instance origin in-process: the same handler, request log and JSON writer as HTTP, without
    /// a socket. Returns `(status, body)`. For measuring the simulator's own cost
    /// (`examples/page_speed.rs`).
    #[doc(hidden)]
    pub fn serve_in_process(
        &self,
        method: &str,
        path_and_query: &str,
        access_token: &str,
    ) -> (u16, Vec<u8>) {
        server::serve_in_process(
            &self.shared,
            &self.inner,
            method,
            path_and_query,
            access_token,
        )
    }

    /// Whether inserting a Task bumps its Who's SystemModstamp and LastActivityDate (default on).
    pub fn set_task_bumps_who(&self, on: bool) {
        lock(&self.inner.state).data.task_bumps_who = on;
    }
}

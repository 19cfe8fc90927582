//! The one place that talks HTTP: owns the reqwest client, per-tenant sessions (cached
//! credentials, coalesced refresh), request ids, timeouts, retries with backoff and jitter,
//! `Sforce-Limit-Info` tracking and masked logging.
//!
//! Invariants:
//! - at most one token refresh per request; a 401 right after a refresh is final;
//! - refreshes of one tenant are serialized, and a request that waited for someone else's
//!   refresh uses its result instead of refreshing again (generation counter);
//! - a request Salesforce may already have acted on (a create) is resent only when the error
//!   proves it was refused first (`UNABLE_TO_LOCK_ROW`, connection refused…);
//! - no token, query text or response body reaches a log line.

use crate::config::{ConfigError, SfConfig};
use crate::errors::{
    is_transient, map_error_body, map_oauth_error, map_transport, refused_before_processing,
};
use crate::transformers::{TokenResponseDto, bad_response, parse_limit_info};
use chrono::Utc;
use domain::ports::{ApiUsage, CredentialStore, Credentials};
use domain::{OrgProblem, SfError, StoreError, TenantId};
use rand::Rng;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `f` with `id` as the request id sent to Salesforce (`X-Request-Id`) and logged with
/// every request it makes. Without it, each operation gets a fresh random id.
pub async fn with_request_id<F: Future>(id: impl Into<String>, f: F) -> F::Output {
    REQUEST_ID.scope(id.into(), f).await
}

/// `tokio::spawn` that keeps the caller's request id (a task-local) for the new task.
pub(crate) fn spawn_keeping_request_id<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let id = REQUEST_ID.try_with(Clone::clone).ok();
    tokio::spawn(async move {
        match id {
            Some(id) => REQUEST_ID.scope(id, f).await,
            None => f.await,
        }
    })
}

fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|s| {
            let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
            ok.then(|| s.clone())
        })
        .ok()
        .flatten()
        .unwrap_or_else(new_request_id)
}

fn new_request_id() -> String {
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a request goes on the tenant's instance.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Relative to `/services/data/v{version}/`, e.g. `query` or `sobjects/Task`.
    Data(String),
    /// An absolute path Salesforce gave us (`nextRecordsUrl`).
    Path(String),
}

/// One REST request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub target: Target,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// The sObject the request is about, for error messages.
    pub object: Option<&'static str>,
    /// Safe to resend after an ambiguous failure (timeout, 5xx).
    pub idempotent: bool,
}

impl Call {
    pub(crate) fn get(target: Target) -> Self {
        Self {
            method: Method::GET,
            target,
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            object: None,
            idempotent: true,
        }
    }
    pub(crate) fn query(path: &str, soql: String) -> Self {
        let mut c = Self::get(Target::Data(path.to_owned()));
        c.query.push(("q", soql));
        c
    }
    pub(crate) fn send(method: Method, path: String, body: Value) -> Self {
        // PATCH sets values (idempotent); POST creates (not).
        let idempotent = method != Method::POST;
        Self {
            method,
            target: Target::Data(path),
            query: Vec::new(),
            body: Some(body),
            headers: Vec::new(),
            object: None,
            idempotent,
        }
    }
    pub(crate) fn about(mut self, object: &'static str) -> Self {
        self.object = Some(object);
        self
    }
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct ApiResponse {
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, SfError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| bad_response(format!("unreadable Salesforce response: {e}")))
    }
}

#[derive(Default)]
struct Slot {
    creds: Option<Credentials>,
    /// Bumped whenever the cached credentials change (load, refresh, forget).
    generation: u64,
}

/// Everything the executor keeps per tenant.
#[derive(Default)]
pub(crate) struct TenantState {
    slot: Mutex<Slot>,
    /// Serializes loads and refreshes of this tenant's credentials.
    auth: tokio::sync::Mutex<()>,
    usage: Mutex<Option<ApiUsage>>,
    sent: AtomicU64,
    /// Requests per hour over the last 24 hours (C3), as (hour since epoch, count).
    hourly: Mutex<[(i64, u64); 24]>,
}

impl TenantState {
    fn count_request(&self, now: chrono::DateTime<chrono::Utc>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let hour = now.timestamp().div_euclid(3600);
        let mut buckets = lock(&self.hourly);
        let slot = &mut buckets[hour.rem_euclid(24) as usize];
        if slot.0 != hour {
            *slot = (hour, 0);
        }
        slot.1 += 1;
    }

    fn last_24h(&self, now: chrono::DateTime<chrono::Utc>) -> u64 {
        let hour = now.timestamp().div_euclid(3600);
        lock(&self.hourly)
            .iter()
            .filter(|(h, _)| hour - h < 24 && *h <= hour)
            .map(|(_, n)| n)
            .sum()
    }
}

struct Session {
    instance_url: String,
    token: SecretString,
    generation: u64,
}

impl TenantState {
    fn session(&self) -> Option<Session> {
        let slot = lock(&self.slot);
        slot.creds.as_ref().map(|c| Session {
            instance_url: c.instance_url.clone(),
            token: c.access_token.clone(),
            generation: slot.generation,
        })
    }
    fn put(&self, c: Credentials) -> Session {
        let mut slot = lock(&self.slot);
        slot.generation += 1;
        let s = Session {
            instance_url: c.instance_url.clone(),
            token: c.access_token.clone(),
            generation: slot.generation,
        };
        slot.creds = Some(c);
        s
    }
}

enum Failed {
    /// 401: the session was refused; the mapped error says whether a refresh may help.
    Unauthorized(SfError),
    Other(SfError),
}

/// Checks a base URL (login or instance) and returns it without a trailing slash.
pub(crate) fn base_url(field: &'static str, s: &str) -> Result<String, ConfigError> {
    let u = url::Url::parse(s).map_err(|e| ConfigError::Invalid {
        field,
        reason: format!("not a URL ({e})"),
    })?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(ConfigError::Invalid {
            field,
            reason: "must be an http(s) URL with a host".to_owned(),
        });
    }
    Ok(s.trim_end_matches('/').to_owned())
}

fn store_error(e: StoreError) -> SfError {
    match e {
        StoreError::Crypto(_) => SfError::NeedsReconnect {
            code: "CREDENTIALS_UNREADABLE".to_owned(),
            cause: "the stored Salesforce tokens cannot be decrypted with the configured key"
                .to_owned(),
        },
        other => SfError::transient("CREDENTIAL_STORE", other.to_string()),
    }
}

pub(crate) struct Executor {
    pub(crate) config: SfConfig,
    pub(crate) login_base: String,
    http: reqwest::Client,
    store: Arc<dyn CredentialStore>,
    tenants: Mutex<HashMap<TenantId, Arc<TenantState>>>,
}

impl Executor {
    pub(crate) fn new(
        config: SfConfig,
        store: Arc<dyn CredentialStore>,
    ) -> Result<Self, ConfigError> {
        let login_base = base_url("login_url", &config.login_url)?;
        base_url("redirect_url", &config.redirect_url)?;
        if config.client_id.trim().is_empty() {
            return Err(ConfigError::Invalid {
                field: "client_id",
                reason: "must not be empty".to_owned(),
            });
        }
        let v = &config.api_version;
        if v.split_once('.').is_none_or(|(a, b)| {
            a.is_empty() || b.is_empty() || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        }) {
            return Err(ConfigError::Invalid {
                field: "api_version",
                reason: format!("expected a version like 62.0 (got {v:?})"),
            });
        }
        if config.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                field: "max_attempts",
                reason: "must be at least 1".to_owned(),
            });
        }
        // reqwest is built without a TLS provider; ring is the one the workspace uses. The Err
        // only says a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("callsync-sf-adapter/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Self {
            config,
            login_base,
            http,
            store,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.store
    }

    pub(crate) fn tenant(&self, t: &TenantId) -> Arc<TenantState> {
        lock(&self.tenants).entry(t.clone()).or_default().clone()
    }

    pub(crate) fn usage(&self, t: &TenantId) -> Option<ApiUsage> {
        lock(&self.tenants).get(t).and_then(|s| *lock(&s.usage))
    }

    pub(crate) fn requests_last_24h(&self, t: &TenantId) -> u64 {
        lock(&self.tenants)
            .get(t)
            .map_or(0, |s| s.last_24h(chrono::Utc::now()))
    }

    pub(crate) fn requests_sent(&self, t: &TenantId) -> u64 {
        lock(&self.tenants)
            .get(t)
            .map_or(0, |s| s.sent.load(Ordering::Relaxed))
    }

    /// Drops the tenant's cached credentials (after disconnect or reconnect).
    pub(crate) fn forget(&self, t: &TenantId) {
        let st = self.tenant(t);
        let mut slot = lock(&st.slot);
        slot.creds = None;
        slot.generation += 1;
    }

    /// The tenant's credentials as cached (loading them on first use).
    pub(crate) async fn credentials(&self, t: &TenantId) -> Result<Credentials, SfError> {
        let st = self.tenant(t);
        self.session(t, &st).await?;
        lock(&st.slot).creds.clone().ok_or_else(not_connected)
    }

    async fn session(&self, t: &TenantId, st: &TenantState) -> Result<Session, SfError> {
        if let Some(s) = st.session() {
            return Ok(s);
        }
        let _g = st.auth.lock().await;
        if let Some(s) = st.session() {
            return Ok(s);
        }
        let c = self
            .store
            .load(t)
            .await
            .map_err(store_error)?
            .ok_or_else(not_connected)?;
        Ok(st.put(c))
    }

    /// Sends `call` for the tenant: session, one refresh on 401, retries for transient errors.
    pub(crate) async fn execute(&self, t: &TenantId, call: &Call) -> Result<ApiResponse, SfError> {
        let st = self.tenant(t);
        let rid = current_request_id();
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            let session = self.session(t, &st).await?;
            attempt += 1;
            match self
                .attempt(
                    Some(&st),
                    t.as_str(),
                    &session.instance_url,
                    &session.token,
                    call,
                    &rid,
                    attempt,
                )
                .await
            {
                Ok(r) => return Ok(r),
                Err(Failed::Unauthorized(e)) => {
                    if !matches!(e, SfError::NeedsReconnect { .. }) {
                        // IP-restricted session (C2): a new token would be refused the same way.
                        return Err(e);
                    }
                    if refreshed {
                        return Err(SfError::NeedsReconnect {
                            code: e.code().to_owned(),
                            cause: "Salesforce refused the session right after it was refreshed"
                                .to_owned(),
                        });
                    }
                    self.refresh(t, &st, session.generation).await?;
                    refreshed = true;
                    // The retry after a refresh does not use up a transient attempt.
                    attempt -= 1;
                }
                Err(Failed::Other(e)) => {
                    let retry = is_transient(&e)
                        && (call.idempotent || refused_before_processing(&e))
                        && attempt < self.config.max_attempts;
                    if !retry {
                        return Err(e);
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
            }
        }
    }

    /// Sends `call` with an explicit session (connect-time checks, before credentials are
    /// stored). Transient retries apply; a 401 is final.
    pub(crate) async fn execute_with(
        &self,
        tenant: Option<&TenantId>,
        instance_url: &str,
        token: &SecretString,
        call: &Call,
    ) -> Result<ApiResponse, SfError> {
        let st = tenant.map(|t| self.tenant(t));
        let rid = current_request_id();
        let label = tenant.map_or("-", |t| t.as_str());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .attempt(
                    st.as_deref(),
                    label,
                    instance_url,
                    token,
                    call,
                    &rid,
                    attempt,
                )
                .await
            {
                Ok(r) => return Ok(r),
                Err(Failed::Unauthorized(e)) => return Err(e),
                Err(Failed::Other(e)) => {
                    let retry = is_transient(&e)
                        && (call.idempotent || refused_before_processing(&e))
                        && attempt < self.config.max_attempts;
                    if !retry {
                        return Err(e);
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = u64::try_from(self.config.backoff_base.as_micros()).unwrap_or(u64::MAX);
        let exp = base
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
            .min(30_000_000);
        // "Equal jitter": half fixed, half random, so retries of many requests spread out.
        let jittered = rand::rng().random_range(exp / 2..=exp);
        Duration::from_micros(jittered)
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        st: Option<&TenantState>,
        tenant: &str,
        instance_url: &str,
        token: &SecretString,
        call: &Call,
        rid: &str,
        attempt: u32,
    ) -> Result<ApiResponse, Failed> {
        let base = instance_url.trim_end_matches('/');
        let (url, path) = match &call.target {
            Target::Data(p) => (
                format!("{base}/services/data/v{}/{p}", self.config.api_version),
                p.as_str(),
            ),
            Target::Path(p) => (format!("{base}{p}"), p.as_str()),
        };
        let mut rb = self
            .http
            .request(call.method.clone(), &url)
            .bearer_auth(token.expose_secret())
            .header("X-Request-Id", rid)
            .header(reqwest::header::ACCEPT, "application/json");
        if !call.query.is_empty() {
            rb = rb.query(&call.query);
        }
        for (k, v) in &call.headers {
            rb = rb.header(*k, v);
        }
        if let Some(b) = &call.body {
            rb = rb.json(b);
        }
        if let Some(st) = st {
            st.count_request(chrono::Utc::now());
        }
        let started = Instant::now();
        // Logged: method, path without query string (SOQL holds customer data), status.
        let log_path = path.split('?').next().unwrap_or_default();
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                let err = map_transport(&e);
                tracing::warn!(tenant, request_id = rid, method = %call.method, path = log_path, attempt, code = err.code(), "salesforce request failed");
                return Err(Failed::Other(err));
            }
        };
        let status = resp.status().as_u16();
        if let (Some(st), Some((used, max))) = (
            st,
            resp.headers()
                .get("sforce-limit-info")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_limit_info),
        ) {
            *lock(&st.usage) = Some(ApiUsage {
                used,
                max,
                observed_at: Utc::now(),
            });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => return Err(Failed::Other(map_transport(&e))),
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if (200..300).contains(&status) {
            tracing::debug!(tenant, request_id = rid, method = %call.method, path = log_path, status, elapsed_ms, attempt, "salesforce request");
            return Ok(ApiResponse { body });
        }
        let err = map_error_body(status, content_type.as_deref(), &body, call.object);
        tracing::info!(tenant, request_id = rid, method = %call.method, path = log_path, status, elapsed_ms, attempt, code = err.code(), "salesforce request refused");
        if status == 401 {
            Err(Failed::Unauthorized(err))
        } else {
            Err(Failed::Other(err))
        }
    }

    /// One refresh-token grant for the tenant, unless another request already refreshed since
    /// `used_generation`. Saves the new access token and instance URL.
    async fn refresh(
        &self,
        t: &TenantId,
        st: &TenantState,
        used_generation: u64,
    ) -> Result<(), SfError> {
        let _g = st.auth.lock().await;
        let current = {
            let slot = lock(&st.slot);
            // Someone refreshed, reloaded or forgot since this request's session was taken:
            // the retry uses whatever is current now instead of refreshing again.
            if slot.generation != used_generation {
                return Ok(());
            }
            slot.creds.clone()
        };
        let creds = match current {
            Some(c) => c,
            None => self
                .store
                .load(t)
                .await
                .map_err(store_error)?
                .ok_or_else(not_connected)?,
        };
        let tr = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.refresh_token.expose_secret()),
            ])
            .await?;
        let instance_url = base_url("instance_url", &tr.instance_url)
            .map_err(|_| bad_response("the refresh response has an unusable instance_url"))?;
        let rotated = tr.refresh_token.is_some();
        let issued_at = tr.issued_at().unwrap_or_else(Utc::now);
        let mut next = creds;
        next.access_token = tr.access_token;
        next.instance_url = instance_url;
        next.issued_at = issued_at;
        if let Some(rt) = tr.refresh_token {
            next.refresh_token = rt;
        }
        let saved = if rotated {
            self.store.save(t, &next).await
        } else {
            self.store
                .update_access_token(t, &next.access_token, &next.instance_url)
                .await
        };
        if let Err(e) = saved {
            // The request can still go on with the new token; the next process start will
            // refresh again (or, after a rotation, need a reconnect).
            tracing::warn!(tenant = t.as_str(), rotated, error = %e, "could not save the refreshed Salesforce token");
        }
        tracing::info!(tenant = t.as_str(), "salesforce session refreshed");
        st.put(next);
        Ok(())
    }

    /// POSTs a grant to `{login}/services/oauth2/token`.
    pub(crate) async fn token_request(
        &self,
        grant: &[(&str, &str)],
    ) -> Result<TokenResponseDto, SfError> {
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.push(("client_id", &self.config.client_id));
        form.push(("client_secret", self.config.client_secret.expose_secret()));
        form.push(("format", "json"));
        let (status, body) = self
            .post_form(&format!("{}/services/oauth2/token", self.login_base), &form)
            .await?;
        if !(200..300).contains(&status) {
            return Err(map_oauth_error(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|_| bad_response("unreadable token response from Salesforce"))
    }

    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), SfError> {
        let resp = self
            .http
            .post(url)
            .header("X-Request-Id", current_request_id())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| map_transport(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| map_transport(&e))?.to_vec();
        Ok((status, body))
    }

    /// `GET {url}` with a bearer token, outside the REST API (identity URL).
    pub(crate) async fn get_with_token(
        &self,
        url: &str,
        token: &SecretString,
    ) -> Result<(u16, Vec<u8>), SfError> {
        let resp = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header("X-Request-Id", current_request_id())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| map_transport(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| map_transport(&e))?.to_vec();
        Ok((status, body))
    }
}

pub(crate) fn not_connected() -> SfError {
    SfError::NeedsReconnect {
        code: "NOT_CONNECTED".to_owned(),
        cause: "the tenant has no Salesforce connection".to_owned(),
    }
}

/// True when `e` says the session may not use the REST API from here (C2).
pub(crate) fn is_ip_restricted(e: &SfError) -> bool {
    matches!(
        e,
        SfError::OrgConfig {
            problem: OrgProblem::IpRestricted,
            ..
        }
    )
}

#[cfg(test)]
mod rolling_window_tests {
    use super::TenantState;
    use chrono::{Duration, TimeZone, Utc};

    // C3: callsync's own share is counted over Salesforce's rolling 24 hours.
    #[test]
    fn c3_requests_are_counted_over_the_last_24_hours() {
        let st = TenantState::default();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        st.count_request(t0);
        st.count_request(t0 + Duration::minutes(30));
        st.count_request(t0 + Duration::hours(5));
        assert_eq!(st.last_24h(t0 + Duration::hours(5)), 3);
        assert_eq!(st.last_24h(t0 + Duration::hours(23)), 3);
        // The 09:00 hour has rolled out of the window a day later; the 14:00 one has not.
        assert_eq!(st.last_24h(t0 + Duration::hours(24)), 1);
        st.count_request(t0 + Duration::hours(24));
        assert_eq!(st.last_24h(t0 + Duration::hours(24)), 2);
        assert_eq!(st.last_24h(t0 + Duration::hours(30)), 1);
    }
}

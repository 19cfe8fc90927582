//! What the API and the admin page both do: read a tenant's status, save settings, start and
//! finish a Salesforce connection, disconnect, start a sync, retry a failed item. Handlers
//! only translate between these and JSON or HTML.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, FieldProblem};
use crate::security::{PendingAuth, after};
use crate::stats::HourCount;
use chrono::{DateTime, Utc};
use domain::ports::{ApiUsage, FailedItem, HoldReason, QueueDepth, SyncRun};
use domain::{ConnectedUser, IntegrationSettings, Member, TenantId};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Sync runs started from this process, one per tenant at a time.
#[derive(Default)]
pub struct SyncJobs {
    running: Mutex<HashSet<TenantId>>,
}

impl SyncJobs {
    /// `true` when the tenant was not running and now is.
    pub fn try_start(&self, t: &TenantId) -> bool {
        self.running
            .lock()
            .map(|mut s| s.insert(t.clone()))
            .unwrap_or(false)
    }
    pub fn finish(&self, t: &TenantId) {
        if let Ok(mut s) = self.running.lock() {
            s.remove(t);
        }
    }
    pub fn is_running(&self, t: &TenantId) -> bool {
        self.running.lock().map(|s| s.contains(t)).unwrap_or(false)
    }
}

/// The tenant's settings, or the defaults (with the configured placeholder account) when
/// never saved.
pub async fn settings(state: &AppState, t: &TenantId) -> ApiResult<IntegrationSettings> {
    Ok(state
        .ports
        .settings
        .settings(t)
        .await?
        .unwrap_or_else(|| default_settings(state)))
}

pub fn default_settings(state: &AppState) -> IntegrationSettings {
    IntegrationSettings {
        placeholder_account: state.settings.defaults.placeholder_account.clone(),
        ..Default::default()
    }
}

/// Validates (R1–R6) and saves.
pub async fn save_settings(
    state: &AppState,
    t: &TenantId,
    s: &IntegrationSettings,
    actor: &str,
) -> ApiResult<()> {
    s.validate()
        .map_err(|e| ApiError::Invalid(e.0.iter().map(FieldProblem::from).collect()))?;
    state.ports.settings.save_settings(t, s).await?;
    audit(state, t, actor, "settings.update", "").await;
    Ok(())
}

/// Records an audit entry; a failure to record is logged, not fatal to the action.
pub async fn audit(state: &AppState, t: &TenantId, actor: &str, action: &str, detail: &str) {
    if let Err(e) = state.ports.admin.audit(t, actor, action, detail).await {
        tracing::warn!(error = %e, action, "could not write the audit log");
    }
}

/// Starts an OAuth authorization (R7): remembers the PKCE verifier under a fresh `state` and
/// returns the org's authorize URL.
pub fn start_connect(state: &AppState, t: &TenantId) -> String {
    let (verifier, challenge) = pkce();
    let now = Utc::now();
    let s = state.oauth.insert(
        PendingAuth {
            tenant: t.clone(),
            verifier,
            expires: after(
                now,
                std::time::Duration::from_secs(state.settings.server.oauth_state_ttl_secs),
            ),
            return_to_admin: true,
        },
        now,
    );
    state.ports.connect.authorize_url(&s, &challenge)
}

fn pkce() -> (secrecy::SecretString, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = crate::security::random_token();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (secrecy::SecretString::from(verifier), challenge)
}

/// How a callback ended, for the admin page's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectResult {
    Connected,
    Denied,
    Failed(domain::ports::Failure),
}

impl ConnectResult {
    pub fn query_value(&self) -> String {
        match self {
            Self::Connected => "connected".into(),
            Self::Denied => "denied".into(),
            Self::Failed(f) => format!("failed:{}", f.code),
        }
    }
}

/// Finishes the connection: exchange, identity and C1 check (in the adapter), store the
/// credentials encrypted, release calls held for a reconnect, audit.
pub async fn finish_connect(
    state: &AppState,
    t: &TenantId,
    code: &str,
    verifier: &secrecy::SecretString,
) -> ConnectResult {
    match state.ports.connect.exchange_code(t, code, verifier).await {
        Ok(creds) => {
            if let Err(e) = state.ports.credentials.save(t, &creds).await {
                tracing::error!(error = %e, "could not store the Salesforce credentials");
                return ConnectResult::Failed(domain::ports::Failure {
                    class: domain::ErrorClass::Transient,
                    code: "STORE".into(),
                    message_en: "callsync could not save the connection; please try again.".into(),
                    message_ja: "連携情報を保存できませんでした。もう一度お試しください。".into(),
                    fix_en: None,
                    fix_ja: None,
                });
            }
            match state
                .ports
                .queue
                .release_held(t, HoldReason::NeedsReconnect)
                .await
            {
                Ok(n) if n > 0 => state.wake.notify_waiters(),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not release held items"),
            }
            state.oauth.set_failure(t, None);
            let detail = format!("org {} user {}", creds.user.org_id, creds.user.user_id);
            audit(state, t, "admin", "salesforce.connect", &detail).await;
            ConnectResult::Connected
        }
        Err(e) => {
            tracing::warn!(code = %e.code(), class = ?e.class(), "Salesforce connection failed");
            audit(state, t, "admin", "salesforce.connect_failed", e.code()).await;
            let f = domain::rules::explain::explain(&e);
            state.oauth.set_failure(t, Some(f.clone()));
            ConnectResult::Failed(f)
        }
    }
}

/// R7: revoke at Salesforce, delete locally. Returns (was connected, revoked there).
pub async fn disconnect(state: &AppState, t: &TenantId, actor: &str) -> ApiResult<(bool, bool)> {
    let Some(creds) = state.ports.credentials.load(t).await? else {
        return Ok((false, false));
    };
    let revoked = match state.ports.connect.revoke(t, &creds).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(code = %e.code(), "revoke failed; deleting the local grant anyway");
            false
        }
    };
    state.ports.credentials.delete(t).await?;
    audit(
        state,
        t,
        actor,
        "salesforce.disconnect",
        if revoked { "revoked" } else { "not revoked" },
    )
    .await;
    Ok((true, revoked))
}

/// Starts a sync in the background. `None` when one is already running for the tenant.
pub fn start_sync(state: &AppState, t: &TenantId, full: bool) -> Option<String> {
    if !state.jobs.try_start(t) {
        return None;
    }
    let job = uuid::Uuid::new_v4().to_string();
    let (sync, jobs, tenant) = (state.ports.sync.clone(), state.jobs.clone(), t.clone());
    let span = tracing::info_span!("sync", tenant = %t, job = %job, full);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let started = std::time::Instant::now();
            match sync.run(&tenant, full).await {
                Ok(Some(run)) => tracing::info!(run, "sync finished"),
                Ok(None) => tracing::info!("another run holds the tenant's sync lease"),
                Err(e) => tracing::warn!(error = %e, "sync failed"),
            }
            metrics::histogram!("callsync_sync_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            jobs.finish(&tenant);
        },
        span,
    ));
    Some(job)
}

/// The connected org and user, without tokens.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub instance_url: String,
    pub user: ConnectedUser,
    pub connected_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiBudget {
    /// What Salesforce last reported for the whole org (C3).
    pub org: Option<ApiUsage>,
    /// Requests this process sent for the tenant since it started.
    pub requests_sent: u64,
    /// The tenant's share of the org's daily allowance callsync may use.
    pub budget_percent: u8,
    /// `org.max * budget_percent / 100`, when the allowance is known.
    pub ceiling: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub tenant: TenantId,
    pub connection: Option<Connection>,
    pub sync_running: bool,
    pub last_runs: Vec<SyncRun>,
    pub api: ApiBudget,
    pub queue: QueueDepth,
    pub failures: Vec<FailedItem>,
    pub members_without_user: Vec<Member>,
    pub activities_per_hour: Vec<HourCount>,
    pub requests_per_hour: Vec<HourCount>,
}

pub async fn api_budget(state: &AppState, t: &TenantId) -> ApiResult<ApiBudget> {
    let percent = settings(state, t).await?.api_budget_percent;
    let org = state.ports.usage.usage(t);
    Ok(ApiBudget {
        org,
        requests_sent: state.ports.usage.requests_sent(t),
        budget_percent: percent,
        ceiling: org.map(|u| u.max.saturating_mul(u64::from(percent)) / 100),
    })
}

/// R41: members whose email matches no active Salesforce User (their calls fall back to the
/// connecting user, R23).
pub async fn members_without_user(state: &AppState, t: &TenantId) -> ApiResult<Vec<Member>> {
    let users = state.ports.directory.users(t).await?;
    let emails: HashSet<String> = users
        .iter()
        .filter(|u| u.active)
        .filter_map(|u| u.email.as_ref().map(|e| e.key().to_owned()))
        .collect();
    Ok(state
        .ports
        .directory
        .members(t)
        .await?
        .into_iter()
        .filter(|m| m.email.as_ref().is_none_or(|e| !emails.contains(e.key())))
        .collect())
}

/// R40: everything the status view shows.
pub async fn status(state: &AppState, t: &TenantId) -> ApiResult<Status> {
    let now = Utc::now();
    let connection = state.ports.credentials.load(t).await?.map(|c| Connection {
        instance_url: c.instance_url.clone(),
        user: c.user.clone(),
        connected_at: c.issued_at,
    });
    state
        .stats
        .sample_requests(t, state.ports.usage.requests_sent(t), now);
    Ok(Status {
        tenant: t.clone(),
        connection,
        sync_running: state.jobs.is_running(t),
        last_runs: state.ports.runs.runs(t, 10).await?,
        api: api_budget(state, t).await?,
        queue: state.ports.queue.depth(t).await?,
        failures: state.ports.queue.failed(t, 100).await?,
        members_without_user: members_without_user(state, t).await?,
        activities_per_hour: state.stats.activities(t, now),
        requests_per_hour: state.stats.requests(t, now),
    })
}

/// R40: an admin's retry of a dead item. `false` when there is no such failed item.
pub async fn retry_failed(state: &AppState, t: &TenantId, id: i64, actor: &str) -> ApiResult<bool> {
    let ok = state.ports.queue.retry_dead(t, id).await?;
    if ok {
        state.wake.notify_waiters();
        audit(state, t, actor, "failed.retry", &id.to_string()).await;
    }
    Ok(ok)
}

/// Shared handle type for the jobs registry.
pub type Jobs = Arc<SyncJobs>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sync_per_tenant_in_this_process() {
        let jobs = SyncJobs::default();
        let a = TenantId::parse("a").unwrap();
        let b = TenantId::parse("b").unwrap();
        assert!(jobs.try_start(&a));
        assert!(!jobs.try_start(&a), "a second start is refused (409)");
        assert!(jobs.try_start(&b), "other tenants are independent");
        assert!(jobs.is_running(&a));
        jobs.finish(&a);
        assert!(!jobs.is_running(&a));
        assert!(jobs.try_start(&a));
    }
}

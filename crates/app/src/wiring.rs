//! Builds the adapters from configuration and hands them out as ports.
//!
//! [`assemble`] takes any storage (the real store, or the domain's in-memory fakes in tests)
//! and adds what does not depend on which: the Salesforce client, the customer-sync use case
//! and the webhook intake. [`connect`] is production's path: database first, then `assemble`.

use crate::config::Settings;
use crate::ports::{AdminStore, Ports, SalesforceConnect, SyncRunner};
use async_trait::async_trait;
use axum::Router;
use domain::ports::Credentials;
use domain::ports::{
    CallTaskStore, Clock, CredentialStore, CustomerStore, DirectoryStore, EventLog, Locks,
    SettingsStore, SyncKind, SyncRunStore, SystemClock, WorkQueue,
};
use domain::usecases::sync::{CustomerSync, SyncError, SyncOptions, SyncPorts};
use domain::{SfError, StoreError, TenantId};
use event_ingest::{IntakeState, TenantSecrets, webhook_router};
use secrecy::{ExposeSecret, SecretString};
use sf_adapter::{SalesforceClient, SfConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The wired service: ports plus the webhook intake router (given the workers' notifier).
pub struct Wired {
    pub ports: Ports,
    pub webhooks: WebhookRouter,
}

/// Builds the intake router from the workers' notifier and the event log to store into.
pub type WebhookRouter = Box<dyn FnOnce(Arc<Notify>, Arc<dyn EventLog>) -> Router + Send>;

/// The storage side, whatever implements it.
#[derive(Clone)]
pub struct Storage {
    pub admin: Arc<dyn AdminStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub customers: Arc<dyn CustomerStore>,
    pub events: Arc<dyn EventLog>,
    pub queue: Arc<dyn WorkQueue>,
    pub tasks: Arc<dyn CallTaskStore>,
    pub directory: Arc<dyn DirectoryStore>,
    pub runs: Arc<dyn SyncRunStore>,
    pub locks: Arc<dyn Locks>,
}

impl Storage {
    /// Every storage port from one value that implements them all (the store, or a fake).
    pub fn from_one<S>(store: Arc<S>, admin: Arc<dyn AdminStore>) -> Self
    where
        S: SettingsStore
            + CredentialStore
            + CustomerStore
            + EventLog
            + WorkQueue
            + CallTaskStore
            + DirectoryStore
            + SyncRunStore
            + Locks
            + 'static,
    {
        Self {
            admin,
            settings: store.clone(),
            credentials: store.clone(),
            customers: store.clone(),
            events: store.clone(),
            queue: store.clone(),
            tasks: store.clone(),
            directory: store.clone(),
            runs: store.clone(),
            locks: store,
        }
    }
}

/// The Salesforce client configuration from settings.
pub fn sf_config(settings: &Settings) -> SfConfig {
    let mut c = SfConfig::new(
        settings.salesforce.client_id.clone(),
        settings.salesforce.client_secret.clone(),
        settings.redirect_url(),
    );
    c.login_url = settings
        .salesforce
        .login_url
        .trim_end_matches('/')
        .to_owned();
    c.api_version = settings.salesforce.api_version.clone();
    c.timeout = Duration::from_secs(settings.salesforce.timeout_secs);
    c
}

/// Wires Salesforce, the sync use case and the intake around `storage`.
pub fn assemble(settings: &Settings, storage: Storage) -> anyhow::Result<Wired> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sf = SalesforceClient::new(sf_config(settings), storage.credentials.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sf = Arc::new(sf);
    let metered = Arc::new(crate::metered::MeteredSf {
        reader: sf.clone(),
        writer: sf.clone(),
    });
    let sync = CustomerSync::new(
        SyncPorts {
            reader: metered.clone(),
            writer: metered.clone(),
            usage: sf.clone(),
            customers: storage.customers.clone(),
            runs: storage.runs.clone(),
            directory: storage.directory.clone(),
            locks: storage.locks.clone(),
            settings: storage.settings.clone(),
            clock: clock.clone(),
        },
        SyncOptions {
            overlap: Duration::from_secs(settings.sync.overlap_secs),
            holder: format!("sync-{}", crate::startup::instance_name()),
            ..Default::default()
        },
    );
    let ports = Ports {
        admin: storage.admin.clone(),
        settings: storage.settings.clone(),
        credentials: storage.credentials.clone(),
        customers: storage.customers.clone(),
        events: storage.events.clone(),
        queue: storage.queue.clone(),
        tasks: storage.tasks.clone(),
        directory: storage.directory.clone(),
        runs: storage.runs.clone(),
        locks: storage.locks.clone(),
        sf_read: metered.clone(),
        sf_write: metered,
        usage: sf.clone(),
        connect: Arc::new(Connector(sf.as_ref().clone())),
        sync: Arc::new(Syncer {
            sync,
            customers: storage.customers.clone(),
            settings: storage.settings.clone(),
        }),
        clock: clock.clone(),
    };
    let secrets: Arc<dyn TenantSecrets> = Arc::new(Secrets(storage.admin.clone()));
    Ok(Wired {
        ports,
        webhooks: Box::new(move |wake, events| {
            webhook_router(IntakeState::new(events, secrets, clock).with_notifier(wake))
        }),
    })
}

/// The keyring from `security.token_keys` / `current_key_id`.
pub fn keyring(settings: &Settings) -> anyhow::Result<store_adapter::Keyring> {
    let sec = &settings.security;
    let current = sec.token_keys.get(&sec.current_key_id).ok_or_else(|| {
        anyhow::anyhow!("security.current_key_id: must name one of security.token_keys")
    })?;
    let previous: Vec<(String, SecretString)> = sec
        .token_keys
        .iter()
        .filter(|(id, _)| **id != sec.current_key_id)
        .map(|(id, k)| (id.clone(), k.clone()))
        .collect();
    store_adapter::Keyring::from_base64((sec.current_key_id.as_str(), current), &previous)
        .map_err(|e| anyhow::anyhow!("security.token_keys: {e}"))
}

/// Opens the database; an embedded SQLite database is migrated on the spot, PostgreSQL
/// expects `callsync migrate` (so several instances never race to migrate).
pub async fn open_store(
    settings: &Settings,
    migrate: bool,
) -> anyhow::Result<store_adapter::Store> {
    let url = settings.database.url.expose_secret();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .and_then(|p| p.split('?').next())
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let store = store_adapter::Store::connect(url, keyring(settings)?)
        .await
        .map_err(|e| anyhow::anyhow!("database.url: {e}"))?;
    if migrate || url.starts_with("sqlite:") {
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("migrating the database: {e}"))?;
    }
    Ok(store)
}

/// Production: connect the database and wire everything.
pub async fn connect(settings: &Settings) -> anyhow::Result<Wired> {
    let store = open_store(settings, false).await?;
    let admin = Arc::new(crate::store_admin::StoreAdmin::new(store.clone()));
    assemble(settings, Storage::from_one(Arc::new(store), admin))
}

/// Applies pending migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    open_store(settings, true).await.map(|_| ())
}

/// The OAuth flow of the Salesforce adapter behind the app's port.
struct Connector(SalesforceClient);

#[async_trait]
impl SalesforceConnect for Connector {
    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        self.0.authorize_url(state, code_challenge)
    }

    async fn exchange_code(
        &self,
        t: &TenantId,
        code: &str,
        verifier: &SecretString,
    ) -> Result<Credentials, SfError> {
        self.0.exchange_code(t, code, verifier).await
    }

    async fn revoke(&self, t: &TenantId, _credentials: &Credentials) -> Result<bool, SfError> {
        let r = self.0.revoke(t).await.map(|()| true);
        self.0.forget(t);
        r
    }
}

/// The customer-sync use case behind the app's port: the first run of a tenant (no
/// watermark yet) or `--full` is an initial import, later runs are incremental.
struct Syncer {
    sync: CustomerSync,
    customers: Arc<dyn CustomerStore>,
    settings: Arc<dyn SettingsStore>,
}

#[async_trait]
impl SyncRunner for Syncer {
    async fn run(&self, t: &TenantId, full: bool) -> anyhow::Result<Option<i64>> {
        let kind = if full {
            SyncKind::Initial
        } else {
            let targets = self
                .settings
                .settings(t)
                .await?
                .unwrap_or_default()
                .sync_targets
                .objects();
            let mut any = false;
            for o in targets {
                any |= self.customers.watermark(t, o).await?.is_some();
            }
            if any {
                SyncKind::Incremental
            } else {
                SyncKind::Initial
            }
        };
        let progress = |p: domain::usecases::sync::SyncProgress| {
            tracing::debug!(object = %p.object, seen = p.seen, total = p.total, "sync progress");
        };
        match self.sync.run(t, kind, &progress).await {
            Ok(outcome) => {
                metrics::counter!("callsync_sync_runs_total", "status" => format!("{:?}", outcome.status).to_lowercase().chars().take_while(|c| c.is_alphanumeric()).collect::<String>()).increment(1);
                Ok(Some(outcome.run_id))
            }
            Err(SyncError::AlreadyRunning) => Ok(None),
            Err(e) => {
                if let SyncError::Salesforce(sf) = &e {
                    metrics::counter!("callsync_sf_errors_total", "class" => format!("{:?}", sf.class())).increment(1);
                }
                Err(anyhow::Error::new(e))
            }
        }
    }
}

/// The intake's view of webhook secrets.
struct Secrets(Arc<dyn AdminStore>);

#[async_trait]
impl TenantSecrets for Secrets {
    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError> {
        self.0.webhook_secrets(t).await
    }
}

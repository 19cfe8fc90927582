//! callsync's integration harness: the real adapters (SQLite or PostgreSQL store, the
//! Salesforce client) against an in-process sf-sim org, wired the way `app` wires them.
//! Used by the acceptance suite (`tests/acceptance`), the benchmark driver and the demo.
//!
//! Start at [`World::new`]. Each world has its own database (a SQLite file under the system
//! temp dir, or a fresh PostgreSQL database from `CALLSYNC_TEST_PG_URL`) and its own org.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod soak;

use chrono::Utc;
use domain::StoreError;
use domain::ports::{CredentialStore, Credentials, SettingsStore, SystemClock};
use domain::usecases::call_logging::{
    CallLogger, CallLoggingOptions, CallLoggingPorts, FailPoints, NoFailPoints,
};
use domain::usecases::sync::{CustomerSync, SyncOptions, SyncPorts};
use domain::{ConnectedUser, EmailAddress, IntegrationSettings, SalesforceId, TenantId};
use event_ingest::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use event_ingest::worker::{Worker, WorkerConfig};
use event_ingest::{IntakeState, TenantSecrets, webhook_router};
use secrecy::SecretString;
use sf_adapter::{SalesforceClient, SfConfig};
use sf_sim::{Org, OrgSpec, SfSim};
use std::sync::Arc;
use std::time::Duration;
use store_adapter::{Keyring, Store};
use tokio::sync::Notify;

/// Which database a world runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// `CALLSYNC_TEST_PG_URL`, or `None` outside CI. In CI a missing URL is an error: the
/// PostgreSQL variants must not pass by skipping.
pub fn pg_url() -> Option<String> {
    match std::env::var("CALLSYNC_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but CALLSYNC_TEST_PG_URL is not: run the tests through `cargo xtask test`"
            );
            None
        }
    }
}

/// A fresh, migrated store.
pub async fn fresh_store(db: Db) -> Option<Store> {
    let keys = Keyring::new(("k1", &[7u8; 32]), &[]).unwrap();
    let name = format!("it_{}", uuid::Uuid::new_v4().simple());
    let url = match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join("callsync-it");
            std::fs::create_dir_all(&dir).unwrap();
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{name}.sqlite")).display()
            )
        }
        Db::Postgres => Store::create_postgres_database(&pg_url()?, &name)
            .await
            .unwrap(),
    };
    let store = Store::connect(&url, keys).await.unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One tenant connected to one sf-sim org, with the real store and Salesforce client.
pub struct World {
    pub sim: SfSim,
    pub org: Org,
    pub store: Store,
    pub sf: SalesforceClient,
    pub t: TenantId,
    pub wake: Arc<Notify>,
    /// The tenant's webhook secret (plaintext, as the phone system holds it).
    pub secret: SecretString,
}

impl World {
    /// A world on SQLite.
    pub async fn new() -> World {
        Self::on(Db::Sqlite)
            .await
            .expect("SQLite is always available")
    }

    /// A world on the given database; `None` for PostgreSQL when no server is configured
    /// (never in CI, see [`pg_url`]).
    pub async fn on(db: Db) -> Option<World> {
        install_crypto();
        let store = fresh_store(db).await?;
        let sim = SfSim::start().await.unwrap();
        let org = sim.add_org(OrgSpec::sample());
        let t = TenantId::parse("acme").unwrap();
        store
            .create_tenant(&t, "Acme 株式会社", Utc::now())
            .await
            .unwrap();
        let (client_id, secret) = sim.client_credentials();
        let mut cfg = SfConfig::new(
            client_id,
            SecretString::from(secret),
            "http://127.0.0.1:1/oauth/callback",
        );
        cfg.login_url = sim.login_url();
        cfg.backoff_base = Duration::from_millis(1);
        cfg.timeout = Duration::from_secs(5);
        let sf = SalesforceClient::new(cfg, Arc::new(store.clone())).unwrap();
        let secret = store.rotate_webhook_secret(&t).await.unwrap();
        let world = World {
            sim,
            org,
            store,
            sf,
            t,
            wake: Arc::new(Notify::new()),
            secret,
        };
        world.connect().await;
        world
            .store
            .save_settings(&world.t, &IntegrationSettings::default())
            .await
            .unwrap();
        Some(world)
    }

    /// Stores tokens for the org's admin, as the OAuth callback would.
    pub async fn connect(&self) {
        let (access, refresh) = self.org.issue_tokens();
        let creds = Credentials {
            instance_url: self.org.instance_url(),
            access_token: SecretString::from(access),
            refresh_token: SecretString::from(refresh),
            user: ConnectedUser {
                user_id: SalesforceId::parse(&self.org.admin_user_id()).unwrap(),
                org_id: SalesforceId::parse(&self.org.org_id()).unwrap(),
                email: EmailAddress::parse("admin@sample.example.jp").ok(),
                name: "管理 太郎".into(),
            },
            issued_at: Utc::now(),
        };
        self.store.save(&self.t, &creds).await.unwrap();
        self.sf.forget(&self.t);
    }

    pub async fn settings(&self, s: IntegrationSettings) {
        self.store.save_settings(&self.t, &s).await.unwrap();
    }

    pub fn call_logging_ports(&self) -> CallLoggingPorts {
        let store = Arc::new(self.store.clone());
        let sf = Arc::new(self.sf.clone());
        CallLoggingPorts {
            sf_read: sf.clone(),
            sf_write: sf.clone(),
            usage: sf,
            customers: store.clone(),
            events: store.clone(),
            tasks: store.clone(),
            directory: store.clone(),
            settings: store.clone(),
            credentials: store.clone(),
            locks: store,
            clock: Arc::new(SystemClock),
        }
    }

    /// A worker as `app` runs it, with optional fail points.
    pub fn worker(&self, name: &str, batch_size: u32, fail: Option<Arc<dyn FailPoints>>) -> Worker {
        let logger = CallLogger::new(
            self.call_logging_ports(),
            CallLoggingOptions {
                holder: name.to_owned(),
                ..Default::default()
            },
            fail.unwrap_or_else(|| Arc::new(NoFailPoints)),
        );
        let store = Arc::new(self.store.clone());
        Worker::new(
            store.clone(),
            store,
            Arc::new(logger),
            WorkerConfig {
                name: name.to_owned(),
                batch_size,
                ..Default::default()
            },
            self.wake.clone(),
        )
    }

    pub fn sync(&self) -> CustomerSync {
        sync_over(
            &self.store,
            &self.sf,
            Arc::new(SystemClock),
            SyncOptions::default(),
        )
    }

    /// Tasks in the org, as Salesforce serves them.
    pub fn tasks(&self) -> Vec<serde_json::Value> {
        self.org.records("Task")
    }
}

/// The customer sync wired over a store and a Salesforce client, as `app` wires it.
pub fn sync_over(
    store: &Store,
    sf: &SalesforceClient,
    clock: Arc<dyn domain::ports::Clock>,
    options: SyncOptions,
) -> CustomerSync {
    let store = Arc::new(store.clone());
    let sf = Arc::new(sf.clone());
    CustomerSync::new(
        SyncPorts {
            reader: sf.clone(),
            writer: sf.clone(),
            usage: sf,
            customers: store.clone(),
            runs: store.clone(),
            directory: store.clone(),
            locks: store.clone(),
            settings: store,
            clock,
        },
        options,
    )
}

/// Webhook secrets from the store, as `app` provides them to the intake.
pub struct StoreSecrets(pub Store);

#[async_trait::async_trait]
impl TenantSecrets for StoreSecrets {
    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError> {
        if self.0.tenant(t).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.0.webhook_secret(t).await?.into_iter().collect()))
    }
}

impl World {
    /// The webhook intake over this world's store, as `app` mounts it.
    pub fn intake(&self) -> axum::Router {
        let state = IntakeState::new(
            Arc::new(self.store.clone()),
            Arc::new(StoreSecrets(self.store.clone())),
            Arc::new(SystemClock),
        )
        .with_notifier(self.wake.clone());
        webhook_router(state)
    }

    /// Posts a signed, form-encoded webhook the way the phone system does.
    pub async fn post_form(&self, pairs: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let body = form(pairs);
        let ts = Utc::now().timestamp();
        let sig = sign(&self.secret, ts, body.as_bytes());
        self.post_raw(
            &format!("/webhooks/{}/calls", self.t),
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            Some((ts, sig)),
        )
        .await
    }

    /// Posts any body with the given signature headers (or none).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        signature: Option<(i64, String)>,
    ) -> (u16, serde_json::Value) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::post(path).header("content-type", content_type);
        if let Some((ts, sig)) = signature {
            req = req
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, sig);
        }
        let res = self
            .intake()
            .oneshot(req.body(axum::body::Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// `application/x-www-form-urlencoded` with bracket keys, as the phone system sends.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Steps the worker until nothing is due, also running retries scheduled up to an hour
/// ahead (claimed with a later "now", so nothing waits in real time). Held and dead items stay.
pub async fn drain(worker: &Worker) -> event_ingest::worker::StepReport {
    let mut total = event_ingest::worker::StepReport::default();
    for _ in 0..10_000 {
        let mut r = worker.step().await.unwrap();
        if r.claimed == 0 {
            r = worker
                .step_at(Utc::now() + chrono::Duration::hours(1))
                .await
                .unwrap();
        }
        if r.claimed == 0 {
            return total;
        }
        total.claimed += r.claimed;
        total.done += r.done;
        total.retried += r.retried;
        total.held += r.held;
        total.dead += r.dead;
        total.crashed += r.crashed;
    }
    panic!("the queue never drained");
}

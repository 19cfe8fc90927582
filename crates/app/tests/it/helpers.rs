//! `spawn_app()`: the real `Application` on 127.0.0.1, its own storage (a fresh in-memory
//! SQLite database, or a fresh PostgreSQL database), an sf-sim login host.

use app::Settings;
use app::http::AppState;
use event_ingest::worker::Worker;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) const OPERATOR_KEY: &str = "operator-key-for-tests-0123456789abcdef";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Which database the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Db {
    Sqlite,
    Postgres,
}

/// `CALLSYNC_TEST_PG_URL` (a PostgreSQL server whose user may `CREATE DATABASE`), or `None`
/// outside CI. In CI a missing URL is an error: the PostgreSQL variants must not pass by
/// skipping (the same rule as the `it` harness's `pg_url`).
pub(crate) fn pg_url() -> Option<String> {
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

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) sim: sf_sim::SfSim,
    /// The running app's shared state: its ports (store, Salesforce client) and settings.
    pub(crate) state: AppState,
    pub(crate) shutdown: app::startup::ShutdownHandle,
    pub(crate) done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub(crate) struct Tenant {
    pub(crate) token: String,
    pub(crate) webhook_secret: String,
}

pub(crate) fn settings(sim: &sf_sim::SfSim) -> Settings {
    let mut s = Settings::default();
    s.server.listen = "127.0.0.1:0".into();
    let (id, secret) = sim.client_credentials();
    s.salesforce.client_id = id;
    s.salesforce.client_secret = SecretString::from(secret);
    s.salesforce.login_url = sim.login_url();
    s.salesforce.timeout_secs = 10;
    s.security.operator_key = SecretString::from(OPERATOR_KEY);
    s.security.current_key_id = "k1".into();
    s.security.token_keys = BTreeMap::from([("k1".to_owned(), SecretString::from(KEY))]);
    s.workers.count = 0;
    s.sync.interval_secs = 0;
    s.log.level = "warn".into();
    s.validate().expect("test settings are valid");
    s
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(Db::Sqlite, sf_sim::SimOptions::default(), tweak)
        .await
        .expect("SQLite is always available")
}

/// A free port on 127.0.0.1 (the listener is closed again at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The app on `db` next to a simulator started with `sim`. `None` for PostgreSQL when no server
/// is configured (never in CI, see [`pg_url`]).
///
/// The port is chosen before the build, so `server.public_url` (and with it the OAuth
/// `redirect_uri` Salesforce sends the browser back to) names the port the app really listens
/// on. `tweak` sees those settings and may change them.
pub(crate) async fn spawn_app_on(
    db: Db,
    sim: sf_sim::SimOptions,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = sf_sim::SfSim::start_with(sim).await.expect("sim starts");
    let mut settings = settings(&sim);
    let url = match db {
        // A fresh database per test, through the production path (connect + migrate).
        Db::Sqlite => "sqlite::memory:".to_owned(),
        Db::Postgres => {
            let name = format!("app_{}", uuid::Uuid::new_v4().simple());
            store_adapter::Store::create_postgres_database(&pg_url()?, &name)
                .await
                .expect("CREATE DATABASE on CALLSYNC_TEST_PG_URL")
        }
    };
    settings.database.url = SecretString::from(url);
    if db == Db::Postgres {
        // `Application::build` migrates SQLite only; PostgreSQL is migrated as `callsync
        // migrate` does it.
        app::wiring::migrate(&settings)
            .await
            .expect("callsync migrate on PostgreSQL");
    }
    let port = free_port();
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.server.public_url = format!("http://127.0.0.1:{port}");
    tweak(&mut settings);
    // Another process may take the port between `free_port` and the build: try a new one.
    let mut attempts = 0;
    let app = loop {
        match app::Application::build(settings.clone()).await {
            Ok(app) => break app,
            Err(e) if attempts < 5 && is_addr_in_use(&e) => {
                attempts += 1;
                let old = settings.server.listen.clone();
                let port = free_port();
                settings.server.listen = format!("127.0.0.1:{port}");
                let old_port = old.rsplit(':').next().unwrap_or_default().to_owned();
                settings.server.public_url = settings
                    .server
                    .public_url
                    .replace(&format!(":{old_port}"), &format!(":{port}"));
            }
            Err(e) => panic!("app builds: {e:#}"),
        }
    };
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = app.shutdown_handle();
    let done = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Some(TestApp {
        base,
        http,
        sim,
        state,
        shutdown,
        done,
    })
}

fn is_addr_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn tenant_id(id: &str) -> domain::TenantId {
        domain::TenantId::parse(id).unwrap()
    }

    /// A call-event worker wired exactly like the app's pool, for tests to drive with
    /// `step()` (the app itself is spawned with `workers.count = 0`).
    pub(crate) fn worker(&self) -> Arc<Worker> {
        Arc::new(app::startup::make_worker(
            &self.state.settings,
            &self.state.ports,
            self.state.wake.clone(),
            0,
        ))
    }

    pub(crate) async fn create_tenant(&self, id: &str) -> Tenant {
        let r = self
            .http
            .post(self.url("/api/v1/tenants"))
            .bearer_auth(OPERATOR_KEY)
            .json(&json!({"id": id, "name": format!("Tenant {id}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        Tenant {
            token: v["admin_token"].as_str().unwrap().to_owned(),
            webhook_secret: v["webhook_secret"].as_str().unwrap().to_owned(),
        }
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn get_json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// Posts a form-encoded call webhook signed with the tenant's secret, as the phone system
    /// does.
    pub(crate) async fn post_webhook(
        &self,
        tenant: &str,
        secret: &str,
        body: &str,
    ) -> reqwest::Response {
        let ts = chrono::Utc::now().timestamp();
        let sig = event_ingest::sign(&SecretString::from(secret.to_owned()), ts, body.as_bytes());
        self.http
            .post(self.url(&format!("/webhooks/{tenant}/calls")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-callsync-timestamp", ts.to_string())
            .header("x-callsync-signature", sig)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

/// A form body from pairs (`record[id]` and so on, percent-encoded).
pub(crate) fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

//! `spawn_app()`: the real `Application` on 127.0.0.1:0, its own storage, an sf-sim login host.

use app::Settings;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) const OPERATOR_KEY: &str = "operator-key-for-tests-0123456789abcdef";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) sim: sf_sim::SfSim,
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = sf_sim::SfSim::start().await.expect("sim starts");
    let mut settings = settings(&sim);
    tweak(&mut settings);
    // A fresh database per test, through the production path (connect + migrate).
    settings.database.url = SecretString::from("sqlite::memory:");
    let app = app::Application::build(settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_handle();
    let done = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base,
        http,
        sim,
        shutdown,
        done,
    }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
}

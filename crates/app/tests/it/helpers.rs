//! `spawn_app()`: the real `Application` on 127.0.0.1:0, its own storage, an sf-sim login host.

use app::Settings;
use app::ports::{AdminStore, CustomerPatch, TenantInfo};
use app::wiring::{Storage, assemble};
use async_trait::async_trait;
use chrono::Utc;
use domain::fakes::InMemoryStore;
use domain::ports::{CustomerStore, DuplicateEntry};
use domain::{Customer, CustomerFields, CustomerId, PhoneNumber, StoreError, TenantId};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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
    let store = Arc::new(InMemoryStore::new());
    let admin = Arc::new(FakeAdmin {
        store: store.clone(),
        tenants: Mutex::default(),
    });
    let wired = assemble(&settings, Storage::from_one(store.clone(), admin)).expect("wired");
    let app = app::Application::build_with(settings, wired.ports, wired.webhooks)
        .await
        .expect("app builds");
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

/// (info, admin token hash, webhook secrets newest first)
type TenantRow = (TenantInfo, Option<String>, Vec<String>);

/// In-memory tenants, tokens and secrets (the store adapter's job in production).
pub(crate) struct FakeAdmin {
    store: Arc<InMemoryStore>,
    tenants: Mutex<BTreeMap<TenantId, TenantRow>>,
}

fn hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[async_trait]
impl AdminStore for FakeAdmin {
    async fn create_tenant(&self, id: &TenantId, name: &str) -> Result<TenantInfo, StoreError> {
        let mut m = self.tenants.lock().unwrap();
        if m.contains_key(id) {
            return Err(StoreError::Conflict(id.to_string()));
        }
        let info = TenantInfo {
            id: id.clone(),
            name: name.into(),
            created_at: Utc::now(),
        };
        m.insert(id.clone(), (info.clone(), None, vec![]));
        Ok(info)
    }
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantInfo>, StoreError> {
        Ok(self.tenants.lock().unwrap().get(id).map(|t| t.0.clone()))
    }
    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        Ok(self.tenants.lock().unwrap().keys().cloned().collect())
    }
    async fn rotate_admin_token(&self, t: &TenantId) -> Result<SecretString, StoreError> {
        let mut m = self.tenants.lock().unwrap();
        let e = m
            .get_mut(t)
            .ok_or_else(|| StoreError::NotFound(t.to_string()))?;
        let token = app::security::random_token();
        e.1 = Some(hash(&token));
        Ok(SecretString::from(token))
    }
    async fn verify_admin_token(&self, t: &TenantId, token: &str) -> Result<bool, StoreError> {
        let m = self.tenants.lock().unwrap();
        Ok(m.get(t)
            .and_then(|e| e.1.as_deref())
            .is_some_and(|h| app::security::secrets_equal(h, &hash(token))))
    }
    async fn rotate_webhook_secret(
        &self,
        t: &TenantId,
        grace: std::time::Duration,
    ) -> Result<SecretString, StoreError> {
        let mut m = self.tenants.lock().unwrap();
        let e = m
            .get_mut(t)
            .ok_or_else(|| StoreError::NotFound(t.to_string()))?;
        let s = app::security::random_token();
        if grace.is_zero() {
            e.2.clear();
        }
        e.2.insert(0, s.clone());
        e.2.truncate(2);
        Ok(SecretString::from(s))
    }
    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError> {
        let m = self.tenants.lock().unwrap();
        Ok(m.get(t)
            .map(|e| e.2.iter().map(|s| SecretString::from(s.clone())).collect()))
    }
    async fn create_customer(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        fields: &CustomerFields,
    ) -> Result<Customer, StoreError> {
        if self.store.find_by_number(t, number.e164()).await?.is_some() {
            return Err(StoreError::Conflict("number".into()));
        }
        let id = self.store.insert_customer(t, number.clone(), None);
        let f = fields.clone();
        self.store
            .edit_customer(t, id, move |c| c.fields = f, Utc::now());
        Ok(self.store.get(t, id).await?.expect("just inserted"))
    }
    async fn edit_customer(
        &self,
        t: &TenantId,
        id: CustomerId,
        p: &CustomerPatch,
    ) -> Result<Customer, StoreError> {
        self.store
            .get(t, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let p = p.clone();
        self.store.edit_customer(
            t,
            id,
            move |c| {
                let mut mark = |f: domain::SyncedField| {
                    if !c.dirty.contains(&f) {
                        c.dirty.push(f)
                    }
                };
                if let Some(n) = p.number {
                    c.number = n;
                    mark(domain::SyncedField::Phone);
                }
                if let Some(v) = p.name {
                    c.fields.name = v;
                    mark(domain::SyncedField::Name);
                }
                if let Some(v) = p.email {
                    c.fields.email = v;
                    mark(domain::SyncedField::Email);
                }
                if let Some(v) = p.memo {
                    c.fields.memo = v;
                    mark(domain::SyncedField::Memo);
                }
                if let Some(v) = p.company {
                    c.fields.company = v;
                }
                if let Some(v) = p.address {
                    c.fields.address = v;
                }
            },
            Utc::now(),
        );
        Ok(self.store.get(t, id).await?.expect("exists"))
    }
    async fn duplicates(
        &self,
        t: &TenantId,
        _limit: u64,
    ) -> Result<Vec<DuplicateEntry>, StoreError> {
        Ok(self.store.duplicates(t))
    }
    async fn audit(
        &self,
        _t: &TenantId,
        _actor: &str,
        _action: &str,
        _detail: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

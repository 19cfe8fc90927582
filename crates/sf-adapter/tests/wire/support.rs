//! Shared test setup: an in-memory credential store, wiremock servers, fixtures.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use domain::ports::{CredentialStore, Credentials};
use domain::{ConnectedUser, SalesforceId, StoreError, TenantId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sf_adapter::{SalesforceClient, SfConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::{Match, MockServer, Request, Respond, ResponseTemplate};

pub(crate) const V: &str = "/services/data/v62.0";

/// In-memory `CredentialStore` that records what the adapter saved.
#[derive(Default)]
pub(crate) struct MemStore {
    pub(crate) creds: Mutex<HashMap<TenantId, Credentials>>,
    /// (access token, instance url) per `update_access_token` call.
    pub(crate) updates: Mutex<Vec<(String, String)>>,
    pub(crate) saves: Mutex<Vec<String>>,
    pub(crate) loads: Mutex<u32>,
}

#[async_trait]
impl CredentialStore for MemStore {
    async fn load(&self, t: &TenantId) -> Result<Option<Credentials>, StoreError> {
        *self.loads.lock().unwrap() += 1;
        Ok(self.creds.lock().unwrap().get(t).cloned())
    }
    async fn save(&self, t: &TenantId, c: &Credentials) -> Result<(), StoreError> {
        self.saves
            .lock()
            .unwrap()
            .push(c.refresh_token.expose_secret().to_owned());
        self.creds.lock().unwrap().insert(t.clone(), c.clone());
        Ok(())
    }
    async fn update_access_token(
        &self,
        t: &TenantId,
        access_token: &SecretString,
        instance_url: &str,
    ) -> Result<(), StoreError> {
        self.updates.lock().unwrap().push((
            access_token.expose_secret().to_owned(),
            instance_url.to_owned(),
        ));
        if let Some(c) = self.creds.lock().unwrap().get_mut(t) {
            c.access_token = access_token.clone();
            c.instance_url = instance_url.to_owned();
        }
        Ok(())
    }
    async fn delete(&self, t: &TenantId) -> Result<(), StoreError> {
        self.creds.lock().unwrap().remove(t);
        Ok(())
    }
}

pub(crate) fn sid(s: &str) -> SalesforceId {
    SalesforceId::parse(s).unwrap()
}

pub(crate) fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub(crate) fn config(login: &str) -> SfConfig {
    SfConfig {
        login_url: login.to_owned(),
        client_id: "client-id".to_owned(),
        client_secret: SecretString::from("client-secret-XYZ"),
        redirect_url: "https://callsync.example/oauth/callback".to_owned(),
        api_version: "62.0".to_owned(),
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        backoff_base: Duration::from_millis(1),
    }
}

pub(crate) fn creds(instance: &str) -> Credentials {
    Credentials {
        instance_url: instance.to_owned(),
        access_token: SecretString::from("old-token"),
        refresh_token: SecretString::from("refresh-1"),
        user: ConnectedUser {
            user_id: sid("0055g00000Ab1CdAAJ"),
            org_id: sid("00D5g000004AbCdEAK"),
            email: None,
            name: "Admin".to_owned(),
        },
        issued_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
    }
}

pub(crate) struct Env {
    pub(crate) login: MockServer,
    pub(crate) instance: MockServer,
    pub(crate) store: Arc<MemStore>,
    pub(crate) client: SalesforceClient,
    pub(crate) t: TenantId,
}

pub(crate) async fn env() -> Env {
    env_with(|_| {}).await
}

pub(crate) async fn env_with(tweak: impl FnOnce(&mut SfConfig)) -> Env {
    let login = MockServer::start().await;
    let instance = MockServer::start().await;
    let store = Arc::new(MemStore::default());
    let t = tenant();
    store
        .creds
        .lock()
        .unwrap()
        .insert(t.clone(), creds(&instance.uri()));
    let mut cfg = config(&login.uri());
    tweak(&mut cfg);
    let client = SalesforceClient::new(cfg, store.clone()).unwrap();
    Env {
        login,
        instance,
        store,
        client,
        t,
    }
}

pub(crate) fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub(crate) fn sf_json(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("Sforce-Limit-Info", "api-usage=18/5000")
        .set_body_raw(body.to_string(), "application/json;charset=UTF-8")
}

pub(crate) fn token_body(access: &str, instance: &str) -> Value {
    json!({
        "access_token": access,
        "signature": "sig=",
        "scope": "refresh_token api",
        "instance_url": instance,
        "id": "https://login.salesforce.com/id/00D5g000004AbCdEAK/0055g00000Ab1CdAAJ",
        "token_type": "Bearer",
        "issued_at": "1676372418560"
    })
}

/// A Lead record as a query returns it; ids from a 15-digit counter (valid 15-char ids).
pub(crate) fn lead_json(i: usize) -> Value {
    json!({
        "attributes": {"type": "Lead", "url": format!("{V}/sobjects/Lead/00Q{i:012}")},
        "Id": format!("00Q{i:012}"),
        "Phone": "03-1234-5678",
        "LastName": format!("L{i}"),
        "FirstName": null,
        "Company": "Acme",
        "Email": null,
        "Address": null,
        "Description": null,
        "IsConverted": false,
        "ConvertedContactId": null,
        "SystemModstamp": "2025-03-04T05:06:07.000+0000",
        "LastModifiedDate": "2025-03-04T05:06:07.000+0000"
    })
}

/// Matches when the `q` query parameter contains the text.
pub(crate) struct QContains(pub &'static str);

impl Match for QContains {
    fn matches(&self, request: &Request) -> bool {
        request
            .url
            .query_pairs()
            .any(|(k, v)| k == "q" && v.contains(self.0))
    }
}

/// Answers a `/composite/sobjects` request with one success per record, ids counting up.
pub(crate) struct CollectionsOk;

impl Respond for CollectionsOk {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let n = body["records"].as_array().unwrap().len();
        let results: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("00T{i:012}"), "success": true, "errors": []}))
            .collect();
        sf_json(200, Value::Array(results))
    }
}

pub(crate) async fn count(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

//! Setup: an sf-sim with one org, and a `SalesforceClient` pointed at it.

use crate::support::MemStore;
use chrono::{DateTime, Utc};
use domain::ports::Credentials;
use domain::{ConnectedUser, EmailAddress, SalesforceId, SalesforceRecordRef, SfObject, TenantId};
use secrecy::SecretString;
use serde_json::Value;
use sf_adapter::{SalesforceClient, SfConfig};
use sf_sim::{Org, OrgSpec, SfSim, SimUser};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const ADMIN_EMAIL: &str = "admin@sim.example.jp";
pub(crate) const REDIRECT: &str = "https://callsync.example/oauth/callback";

pub(crate) struct SimEnv {
    pub(crate) sim: SfSim,
    pub(crate) org: Org,
    pub(crate) store: Arc<MemStore>,
    pub(crate) client: SalesforceClient,
    pub(crate) t: TenantId,
}

pub(crate) fn sim_config(sim: &SfSim) -> SfConfig {
    let (id, secret) = sim.client_credentials();
    SfConfig {
        login_url: sim.login_url(),
        client_id: id,
        client_secret: SecretString::from(secret),
        redirect_url: REDIRECT.to_owned(),
        api_version: "62.0".to_owned(),
        timeout: Duration::from_secs(10),
        max_attempts: 3,
        backoff_base: Duration::from_millis(1),
    }
}

fn users() -> Vec<SimUser> {
    vec![
        SimUser::new(ADMIN_EMAIL, "太郎", "管理者"),
        SimUser::new("Sales.Rep@Sim.Example.jp", "次郎", "営業"),
        SimUser {
            active: false,
            ..SimUser::new("gone@sim.example.jp", "花子", "退職")
        },
    ]
}

/// A simulator with one org, and a client whose store holds the admin's tokens (issued by the
/// simulator directly, skipping OAuth).
pub(crate) async fn sim_env() -> SimEnv {
    sim_env_with(|_| {}).await
}

pub(crate) async fn sim_env_with(tweak: impl FnOnce(&mut SfConfig)) -> SimEnv {
    let env = sim_env_disconnected_with(tweak).await;
    let (at, rt) = env.org.issue_tokens();
    let c = Credentials {
        instance_url: env.org.instance_url(),
        access_token: SecretString::from(at),
        refresh_token: SecretString::from(rt),
        user: ConnectedUser {
            user_id: sid(&env.org.admin_user_id()),
            org_id: sid(&env.org.org_id()),
            email: EmailAddress::parse(ADMIN_EMAIL).ok(),
            name: "管理者 太郎".to_owned(),
        },
        issued_at: Utc::now(),
    };
    env.store.creds.lock().unwrap().insert(env.t.clone(), c);
    env
}

/// A simulator with one org and a client with an empty credential store (for the OAuth flow).
pub(crate) async fn sim_env_disconnected_with(tweak: impl FnOnce(&mut SfConfig)) -> SimEnv {
    let sim = SfSim::start().await.unwrap();
    let org = sim.add_org(OrgSpec {
        name: "callsync テスト組織".into(),
        users: users(),
        ..OrgSpec::default()
    });
    let store = Arc::new(MemStore::default());
    let mut cfg = sim_config(&sim);
    tweak(&mut cfg);
    let client = SalesforceClient::new(cfg, store.clone()).unwrap();
    SimEnv {
        sim,
        org,
        store,
        client,
        t: TenantId::parse("sim-tenant").unwrap(),
    }
}

pub(crate) fn sid(s: &str) -> SalesforceId {
    SalesforceId::parse(s).unwrap()
}

pub(crate) fn rref(object: SfObject, id: &str) -> SalesforceRecordRef {
    SalesforceRecordRef {
        object,
        id: sid(id),
    }
}

/// Same record id, whatever the length (15 or 18 chars).
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    a.get(..15).is_some() && a.get(..15) == b.get(..15)
}

impl SimEnv {
    /// API requests the org counted while `f` ran.
    pub(crate) fn used(&self) -> u64 {
        self.org.api_requests_used()
    }

    /// How often the token endpoint was called (either origin).
    pub(crate) fn token_calls(&self) -> usize {
        self.org
            .requests()
            .iter()
            .filter(|r| r.path == "/services/oauth2/token")
            .count()
    }

    pub(crate) fn field(&self, object: &str, id: &str, field: &str) -> Value {
        self.org
            .get(object, id)
            .unwrap_or_else(|| panic!("no {object} {id} in the sim"))[field]
            .clone()
    }
}

pub(crate) fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

//! Every simulator fault, through the adapter: sessions and refresh (R7), C1, C2, C3, locks,
//! server errors, timeouts, validation rules.

use super::support::*;
use super::writes::draft;
use domain::ports::{
    ApiUsageView, CredentialStore, NewRecord, SalesforceReader, SalesforceWriter, TaskPatch,
};
use domain::{ErrorClass, OrgProblem, SfError, SfObject};
use secrecy::ExposeSecret;
use serde_json::json;
use sf_sim::Fault;
use std::time::Duration;

fn is_org(r: &Result<impl std::fmt::Debug, SfError>, p: OrgProblem) -> bool {
    matches!(r, Err(SfError::OrgConfig { problem, .. }) if *problem == p)
}

// R7: an expired session is refreshed once, the request succeeds, and the new token is saved.
#[tokio::test]
async fn r7_session_expired_refreshes_once_and_persists_the_token() {
    let e = sim_env().await;
    let old = e
        .store
        .load(&e.t)
        .await
        .unwrap()
        .unwrap()
        .access_token
        .expose_secret()
        .to_owned();
    e.client.active_users(&e.t).await.unwrap();
    e.org.set_fault(Fault::SessionExpired);
    let tokens_before = e.token_calls();
    e.client.active_users(&e.t).await.unwrap();
    assert_eq!(e.token_calls() - tokens_before, 1);
    let saved = e.store.load(&e.t).await.unwrap().unwrap();
    let new = saved.access_token.expose_secret().to_owned();
    assert_ne!(new, old);
    assert_eq!(saved.instance_url, e.org.instance_url());
    assert_eq!(
        *e.store.updates.lock().unwrap(),
        vec![(new, e.org.instance_url())]
    );
    // No refresh token rotation: the refresh token stays.
    assert!(e.store.saves.lock().unwrap().is_empty());

    // The new session keeps working without another refresh, also for a fresh client that
    // loads it from the store.
    e.client.active_users(&e.t).await.unwrap();
    assert_eq!(e.token_calls() - tokens_before, 1);
    let fresh = sf_adapter::SalesforceClient::new(sim_config(&e.sim), e.store.clone()).unwrap();
    fresh.active_users(&e.t).await.unwrap();
    assert_eq!(e.token_calls() - tokens_before, 1);
}

// R7 / reference §0.3: a revoked refresh token is permanent.
#[tokio::test]
async fn r7_refresh_revoked_needs_reconnect() {
    let e = sim_env().await;
    e.org.set_fault(Fault::RefreshRevoked);
    e.org.set_fault(Fault::SessionExpired);
    let before = e.token_calls();
    let r = e.client.active_users(&e.t).await;
    assert!(matches!(r, Err(SfError::NeedsReconnect { .. })), "{r:?}");
    assert_eq!(e.token_calls() - before, 1, "one refresh, no loop");
    // Permanent: clearing the switch does not bring the grant back.
    e.org.clear_faults();
    let r = e.client.active_users(&e.t).await;
    assert!(matches!(r, Err(SfError::NeedsReconnect { .. })), "{r:?}");
}

// C2: an IP-restricted session is named as such, without a refresh loop; at the token
// endpoint too.
#[tokio::test]
async fn c2_ip_restricted_on_rest_and_at_token_endpoint() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    e.org.set_fault(Fault::IpRestricted);
    let before = e.token_calls();
    let r = e.client.active_users(&e.t).await;
    assert!(is_org(&r, OrgProblem::IpRestricted), "{r:?}");
    assert_eq!(
        e.token_calls(),
        before,
        "no refresh for an IP-restricted session"
    );
    let w = e
        .client
        .create_tasks(&e.t, &[draft(rref(SfObject::Lead, &lead), "c")])
        .await;
    assert!(is_org(&w, OrgProblem::IpRestricted), "{w:?}");

    // Expired session + IP restriction: the refresh is refused with `ip restricted`.
    e.org.set_fault(Fault::SessionExpired);
    let r = e.client.active_users(&e.t).await;
    assert!(is_org(&r, OrgProblem::IpRestricted), "{r:?}");
    assert_eq!(e.token_calls() - before, 1);
}

// C1: no API access is an org-config problem that says so.
#[tokio::test]
async fn c1_api_disabled() {
    let e = sim_env().await;
    e.org.set_fault(Fault::ApiDisabled);
    let r = e.client.check_api_access(&e.t).await;
    assert!(is_org(&r, OrgProblem::ApiDisabled), "{r:?}");
    let r = e.client.active_users(&e.t).await;
    assert!(is_org(&r, OrgProblem::ApiDisabled), "{r:?}");
    let x = domain::rules::explain::explain(r.as_ref().unwrap_err());
    assert!(x.message_en.contains("REST API"), "{}", x.message_en);
}

// C3: REQUEST_LIMIT_EXCEEDED (forced, or the daily allowance used up) is Throttled, and the
// usage Salesforce reports is visible.
#[tokio::test]
async fn c3_request_limit_is_throttled_and_usage_is_tracked() {
    let e = sim_env().await;
    assert_eq!(e.client.usage(&e.t), None);
    e.client.active_users(&e.t).await.unwrap();
    e.client.check_api_access(&e.t).await.unwrap();
    let u = e.client.usage(&e.t).unwrap();
    assert_eq!(u.used, e.org.api_requests_used());
    assert_eq!(u.used, 2);
    assert_eq!(u.max, 15_000);
    assert_eq!(e.client.requests_sent(&e.t), 2);

    e.org.set_fault(Fault::RequestLimitExceeded);
    let r = e.client.active_users(&e.t).await;
    assert!(matches!(r, Err(SfError::Throttled { .. })), "{r:?}");
    e.org.clear_faults();

    e.org.set_daily_api_limit(5);
    e.org.set_api_requests_used(4);
    e.client.active_users(&e.t).await.unwrap();
    let u = e.client.usage(&e.t).unwrap();
    assert_eq!((u.used, u.max), (5, 5));
    let before = e.client.requests_sent(&e.t);
    let r = e.client.active_users(&e.t).await;
    assert!(matches!(r, Err(SfError::Throttled { .. })), "{r:?}");
    assert_eq!(r.unwrap_err().class(), ErrorClass::Throttled);
    // Throttled is not retried: retrying only spends what is not there.
    assert_eq!(e.client.requests_sent(&e.t) - before, 1);
    let u = e.client.usage(&e.t).unwrap();
    assert_eq!((u.used, u.max), (5, 5));

    // Writes in a batch are refused as a whole call.
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    let drafts = vec![
        draft(rref(SfObject::Lead, &lead), "a"),
        draft(rref(SfObject::Lead, &lead), "b"),
    ];
    let w = e.client.create_tasks(&e.t, &drafts).await;
    assert!(matches!(w, Err(SfError::Throttled { .. })), "{w:?}");
    assert_eq!(e.org.count("Task"), 0);
}

// UNABLE_TO_LOCK_ROW is transient and refused before any change: a create is retried.
#[tokio::test]
async fn lock_row_is_retried_then_succeeds() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    e.org.set_fault(Fault::LockRow { times: 2 });
    let before = e.used();
    let out = e
        .client
        .create_tasks(&e.t, &[draft(rref(SfObject::Lead, &lead), "lock-1")])
        .await
        .unwrap();
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(e.used() - before, 3);
    assert_eq!(e.org.count("Task"), 1);

    // A PATCH too.
    let id = out[0].as_ref().unwrap();
    e.org.set_fault(Fault::LockRow { times: 2 });
    e.client
        .update_task(
            &e.t,
            id,
            &TaskPatch {
                description: Some("更新".into()),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(e.field("Task", id.as_str(), "Description"), json!("更新"));

    // More locks than attempts: Transient, nothing created.
    e.org.set_fault(Fault::LockRow { times: 5 });
    let out = e
        .client
        .create_tasks(&e.t, &[draft(rref(SfObject::Lead, &lead), "lock-2")])
        .await;
    let err = match out {
        Ok(mut v) => v.remove(0).unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
    assert_eq!(err.code(), "UNABLE_TO_LOCK_ROW");
    assert_eq!(e.org.count("Task"), 1);
}

// A 500 with an HTML body is transient: retried for reads, and reported as Transient when it
// outlasts the attempts.
#[tokio::test]
async fn server_error_html_is_retried_then_transient() {
    let e = sim_env().await;
    e.org.set_fault(Fault::ServerError { times: 1 });
    let sent = e.client.requests_sent(&e.t);
    e.client.active_users(&e.t).await.unwrap();
    assert_eq!(e.client.requests_sent(&e.t) - sent, 2);

    e.org.set_fault(Fault::ServerError { times: 4 });
    let sent = e.client.requests_sent(&e.t);
    let r = e.client.active_users(&e.t).await;
    match &r {
        Err(SfError::Transient { cause, .. }) => {
            assert!(cause.contains("HTML"), "{cause}");
            assert!(!cause.contains("<html"), "the body is not echoed: {cause}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.client.requests_sent(&e.t) - sent, 3);
    // The fourth 500 is still pending; the next read retries through it.
    e.client.active_users(&e.t).await.unwrap();
}

// A create is not resent after an ambiguous 500: Salesforce may have acted on it.
#[tokio::test]
async fn server_error_on_create_is_not_resent() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    e.org.set_fault(Fault::ServerError { times: 1 });
    let sent = e.client.requests_sent(&e.t);
    let r = e
        .client
        .create_tasks(&e.t, &[draft(rref(SfObject::Lead, &lead), "s")])
        .await;
    assert!(matches!(&r, Err(SfError::Transient { .. })), "{r:?}");
    assert_eq!(e.client.requests_sent(&e.t) - sent, 1);
}

// A Salesforce slower than the client's timeout is Transient.
#[tokio::test]
async fn latency_beyond_timeout_is_transient() {
    let e = sim_env_with(|c| {
        c.timeout = Duration::from_millis(100);
        c.max_attempts = 2;
    })
    .await;
    e.org.set_fault(Fault::Latency(Duration::from_millis(400)));
    let r = e.client.active_users(&e.t).await;
    match &r {
        Err(SfError::Transient { code, .. }) => assert_eq!(code, "TIMEOUT"),
        other => panic!("{other:?}"),
    }
    e.org.clear_faults();
    e.client.active_users(&e.t).await.unwrap();
}

// A validation rule's admin text reaches the admin.
#[tokio::test]
async fn validation_rule_is_org_config_with_admin_text() {
    let e = sim_env().await;
    e.org.set_fault(Fault::ValidationRule {
        object: "Lead".into(),
        message: "メールアドレスを入力してください".into(),
    });
    let r = e
        .client
        .create_record(
            &e.t,
            &NewRecord {
                object: SfObject::Lead,
                last_name: "L".into(),
                first_name: None,
                company: Some("C".into()),
                account_id: None,
                phone: "03-1".into(),
                email: None,
            },
            false,
        )
        .await;
    match r {
        Err(SfError::OrgConfig {
            problem: OrgProblem::ValidationRule,
            object,
            cause,
            code,
            ..
        }) => {
            assert_eq!(code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
            assert_eq!(object.as_deref(), Some("Lead"));
            assert!(
                cause.contains("メールアドレスを入力してください"),
                "{cause}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.org.count("Lead"), 0);
}

// R7 executor invariant: requests that hit an expired session together share one refresh.
#[tokio::test]
async fn r7_concurrent_requests_share_one_refresh() {
    let e = sim_env().await;
    e.client.active_users(&e.t).await.unwrap();
    e.org.set_fault(Fault::SessionExpired);
    let before = e.token_calls();
    let results = futures::future::join_all((0..6).map(|_| e.client.active_users(&e.t))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(e.token_calls() - before, 1);
}

// C3: when the allowance runs out between two Collections chunks, the written chunk keeps its
// ids and the unsent Tasks fail as Throttled (nothing is silently dropped).
#[tokio::test]
async fn c3_throttled_midway_through_a_batch() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    e.org.set_daily_api_limit(e.org.api_requests_used() + 1);
    let drafts: Vec<_> = (0..250)
        .map(|i| draft(rref(SfObject::Lead, &lead), &format!("t-{i}")))
        .collect();
    let out = e.client.create_tasks(&e.t, &drafts).await.unwrap();
    assert_eq!(out.len(), 250);
    assert!(out[..200].iter().all(Result::is_ok));
    assert!(
        out[200..]
            .iter()
            .all(|r| matches!(r, Err(SfError::Throttled { .. })))
    );
    assert_eq!(e.org.count("Task"), 200);
}

// R7: a wrong consumer secret is a configuration problem, not a reconnect.
#[tokio::test]
async fn r7_wrong_client_secret_is_org_config() {
    let e = sim_env_disconnected_with(|c| {
        c.client_secret = secrecy::SecretString::from("wrong".to_owned());
    })
    .await;
    let (verifier, challenge) = sf_adapter::Pkce::generate();
    let _ = challenge;
    let r = e
        .client
        .exchange_code(&e.t, "no-such-code", &verifier)
        .await;
    assert!(is_org(&r, OrgProblem::MissingPermission), "{r:?}");
}

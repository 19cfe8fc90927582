//! R7 against the simulator: authorize → callback → code exchange → C1 check → disconnect.

use super::support::*;
use domain::ports::CredentialStore;
use domain::{OrgProblem, SfError};
use secrecy::ExposeSecret;
use sf_adapter::{Pkce, generate_state};
use sf_sim::Fault;
use std::collections::HashMap;

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows the authorize URL like the admin's browser would (auto-consent) and returns the
/// callback's query parameters.
async fn authorize(e: &SimEnv, state: &str, challenge: &str) -> HashMap<String, String> {
    let resp = http()
        .get(e.client.authorize_url(state, challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn r7_oauth_round_trip_connect_check_disconnect() {
    let e = sim_env_disconnected_with(|_| {}).await;
    let (verifier, challenge) = Pkce::generate();
    let state = generate_state();
    let cb = authorize(&e, &state, &challenge).await;
    assert_eq!(cb["state"], state);
    let code = &cb["code"];

    let creds = e.client.exchange_code(&e.t, code, &verifier).await.unwrap();
    assert_eq!(creds.instance_url, e.org.instance_url());
    assert!(same_id(creds.user.user_id.as_str(), &e.org.admin_user_id()));
    assert!(same_id(creds.user.org_id.as_str(), &e.org.org_id()));
    assert_eq!(
        creds.user.email.as_ref().map(|m| m.as_str().to_owned()),
        Some(ADMIN_EMAIL.to_owned())
    );
    assert!(!creds.user.name.is_empty());
    // The identity URL on the login origin answered (not only the User query fallback).
    assert!(
        e.org
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/id/") && r.status == 200),
        "{:?}",
        e.org.requests()
    );
    assert!(!creds.refresh_token.expose_secret().is_empty());
    // The access token is `00D…!…` like a real one.
    assert!(creds.access_token.expose_secret().starts_with("00D"));

    // A code is single-use.
    let again = e.client.exchange_code(&e.t, code, &verifier).await;
    assert!(
        matches!(again, Err(SfError::NeedsReconnect { .. })),
        "{again:?}"
    );

    e.store.save(&e.t, &creds).await.unwrap();
    e.client.check_api_access(&e.t).await.unwrap();

    let d = e.client.disconnect(&e.t).await.unwrap();
    assert!(d.revoked);
    assert!(e.store.load(&e.t).await.unwrap().is_none());
    let after = e.client.check_api_access(&e.t).await;
    assert!(
        matches!(after, Err(SfError::NeedsReconnect { .. })),
        "{after:?}"
    );

    // The grant is really gone at Salesforce: the old tokens no longer work, and the refresh
    // token is refused too.
    e.store.save(&e.t, &creds).await.unwrap();
    e.client.forget(&e.t);
    let revoked = e.client.check_api_access(&e.t).await;
    assert!(
        matches!(revoked, Err(SfError::NeedsReconnect { .. })),
        "{revoked:?}"
    );
}

#[tokio::test]
async fn r7_pkce_verifier_mismatch_is_refused() {
    let e = sim_env_disconnected_with(|_| {}).await;
    let (_, challenge) = Pkce::generate();
    let (other_verifier, _) = Pkce::generate();
    let cb = authorize(&e, "s", &challenge).await;
    let r = e
        .client
        .exchange_code(&e.t, &cb["code"], &other_verifier)
        .await;
    assert!(matches!(r, Err(SfError::NeedsReconnect { .. })), "{r:?}");
}

// C1 at connect time: an org without API access fails the connect step, and the new grant is
// not left behind.
#[tokio::test]
async fn c1_connect_to_org_without_api_access_fails_and_revokes() {
    let e = sim_env_disconnected_with(|_| {}).await;
    e.org.set_fault(Fault::ApiDisabled);
    let (verifier, challenge) = Pkce::generate();
    let cb = authorize(&e, "s", &challenge).await;
    let r = e.client.exchange_code(&e.t, &cb["code"], &verifier).await;
    assert!(
        matches!(
            r,
            Err(SfError::OrgConfig {
                problem: OrgProblem::ApiDisabled,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(
        e.org
            .requests()
            .iter()
            .any(|r| r.path == "/services/oauth2/revoke" && r.status == 200),
        "the grant was not revoked: {:?}",
        e.org.requests()
    );
}

// C2 at connect time: the token endpoint refuses the code from a restricted IP.
#[tokio::test]
async fn c2_connect_from_restricted_ip_is_org_config() {
    let e = sim_env_disconnected_with(|_| {}).await;
    e.org.set_fault(Fault::IpRestricted);
    let (verifier, challenge) = Pkce::generate();
    let cb = authorize(&e, "s", &challenge).await;
    let r = e.client.exchange_code(&e.t, &cb["code"], &verifier).await;
    assert!(
        matches!(
            r,
            Err(SfError::OrgConfig {
                problem: OrgProblem::IpRestricted,
                ..
            })
        ),
        "{r:?}"
    );
}

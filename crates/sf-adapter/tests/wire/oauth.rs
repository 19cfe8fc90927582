//! OAuth: authorize URL, PKCE, code exchange with identity and the C1 check, revoke.

use crate::support::*;
use domain::ports::CredentialStore;
use domain::{OrgProblem, SfError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sf_adapter::{Pkce, SalesforceClient, generate_state};
use std::sync::Arc;
use wiremock::Mock;
use wiremock::matchers::{body_string_contains, header, method, path};

#[test]
fn pkce_s256_matches_rfc7636_appendix_b() {
    assert_eq!(
        Pkce::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let (v, c) = Pkce::generate();
    assert_eq!(v.expose_secret().len(), 43);
    assert_eq!(Pkce::challenge(v.expose_secret()), c);
    let (v2, _) = Pkce::generate();
    assert_ne!(v.expose_secret(), v2.expose_secret());
    assert_ne!(generate_state(), generate_state());
}

// R7: the authorize URL carries every parameter, on any login host.
#[test]
fn r7_authorize_url() {
    for login in [
        "https://login.salesforce.com",
        "https://test.salesforce.com/",
        "https://acme.my.salesforce.com",
        "http://127.0.0.1:8443",
    ] {
        let c = SalesforceClient::new(config(login), Arc::new(MemStore::default())).unwrap();
        let u = url::Url::parse(&c.authorize_url("st&ate", "chal")).unwrap();
        assert_eq!(
            format!("{}{}", u.origin().ascii_serialization(), u.path()),
            format!("{}/services/oauth2/authorize", login.trim_end_matches('/'))
        );
        let q: std::collections::HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "client-id");
        assert_eq!(q["redirect_uri"], "https://callsync.example/oauth/callback");
        assert_eq!(q["state"], "st&ate");
        assert_eq!(q["scope"], "api refresh_token");
        assert_eq!(q["code_challenge"], "chal");
        assert_eq!(q["code_challenge_method"], "S256");
    }
}

#[test]
fn bad_config_names_the_setting() {
    let mut c = config("not a url");
    let e = SalesforceClient::new(c.clone(), Arc::new(MemStore::default())).unwrap_err();
    assert!(e.to_string().contains("login_url"), "{e}");
    c.login_url = "https://login.salesforce.com".into();
    c.api_version = "v62".into();
    let e = SalesforceClient::new(c, Arc::new(MemStore::default())).unwrap_err();
    assert!(e.to_string().contains("api_version"), "{e}");
}

fn id_url(login: &str) -> String {
    format!("{login}/id/00D5g000004AbCdEAK/0055g00000Ab1CdAAJ")
}

async fn mount_token(e: &Env, status: u16, body: serde_json::Value) {
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier=the-verifier"))
        .and(body_string_contains("client_secret=client-secret-XYZ"))
        .and(body_string_contains(
            "redirect_uri=https%3A%2F%2Fcallsync.example%2Foauth%2Fcallback",
        ))
        .respond_with(sf_json(status, body))
        .expect(1)
        .mount(&e.login)
        .await;
}

fn full_token(e: &Env) -> serde_json::Value {
    let mut t = token_body("fresh-access", &e.instance.uri());
    t["refresh_token"] = json!("fresh-refresh");
    t["id"] = json!(id_url(&e.login.uri()));
    t
}

// R7 + C1: exchange, identity, one REST call; credentials returned for the caller to save.
#[tokio::test]
async fn r7_exchange_code_learns_user_and_checks_api_access() {
    let e = env().await;
    mount_token(&e, 200, full_token(&e)).await;
    Mock::given(method("GET"))
        .and(path("/id/00D5g000004AbCdEAK/0055g00000Ab1CdAAJ"))
        .and(header("Authorization", "Bearer fresh-access"))
        .respond_with(sf_json(200, fixture("identity_response.json")))
        .expect(1)
        .mount(&e.login)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(QContains("FROM User WHERE Id = '0055g00000Ab1CdAAJ'"))
        .and(header("Authorization", "Bearer fresh-access"))
        .respond_with(sf_json(200, fixture("users_query.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let c = e
        .client
        .exchange_code(&e.t, "the-code", &SecretString::from("the-verifier"))
        .await
        .unwrap();
    assert_eq!(c.instance_url, e.instance.uri());
    assert_eq!(c.access_token.expose_secret(), "fresh-access");
    assert_eq!(c.refresh_token.expose_secret(), "fresh-refresh");
    assert_eq!(c.user.user_id, sid("0055g00000Ab1CdAAJ"));
    assert_eq!(c.user.org_id, sid("00D5g000004AbCdEAK"));
    assert_eq!(c.user.name, "Ichiro Eigyo");
    assert_eq!(
        c.user.email.map(|m| m.key().to_owned()).as_deref(),
        Some("ichiro.eigyo@acme.example")
    );
    assert_eq!(c.issued_at.timestamp_millis(), 1_676_372_418_560);
}

// Identity refused (no `id` scope): ids from the URL, email and name from the User query.
#[tokio::test]
async fn exchange_code_falls_back_when_identity_is_refused() {
    let e = env().await;
    mount_token(&e, 200, full_token(&e)).await;
    Mock::given(method("GET"))
        .and(path("/id/00D5g000004AbCdEAK/0055g00000Ab1CdAAJ"))
        .respond_with(sf_json(403, json!("Bad_OAuth_Token")))
        .mount(&e.login)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(sf_json(200, fixture("users_query.json")))
        .mount(&e.instance)
        .await;
    let c = e
        .client
        .exchange_code(&e.t, "the-code", &SecretString::from("the-verifier"))
        .await
        .unwrap();
    assert_eq!(c.user.user_id, sid("0055g00000Ab1CdAAJ"));
    assert_eq!(c.user.name, "Ichiro Eigyo");
}

// C1: an org without REST API access fails the connect step, saying so; the grant is revoked.
#[tokio::test]
async fn c1_api_disabled_fails_connect_and_revokes() {
    let e = env().await;
    mount_token(&e, 200, full_token(&e)).await;
    Mock::given(method("GET"))
        .and(path("/id/00D5g000004AbCdEAK/0055g00000Ab1CdAAJ"))
        .respond_with(sf_json(200, fixture("identity_response.json")))
        .mount(&e.login)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(sf_json(403, fixture("error_api_disabled.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/revoke"))
        .and(body_string_contains("token=fresh-refresh"))
        .respond_with(sf_json(200, json!({})))
        .expect(1)
        .mount(&e.login)
        .await;
    let err = e
        .client
        .exchange_code(&e.t, "the-code", &SecretString::from("the-verifier"))
        .await
        .unwrap_err();
    let SfError::OrgConfig {
        problem: OrgProblem::ApiDisabled,
        cause,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        cause.contains("REST API") && cause.contains("Enterprise"),
        "{cause}"
    );
    let x = domain::rules::explain::explain(&err);
    assert!(x.message_ja.contains("REST API"));
}

#[tokio::test]
async fn exchange_errors() {
    let e = env().await;
    mount_token(
        &e,
        400,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
    )
    .await;
    let err = e
        .client
        .exchange_code(&e.t, "the-code", &SecretString::from("the-verifier"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SfError::OrgConfig { code, .. } if code == "invalid_client"),
        "{err:?}"
    );

    let e = env().await;
    let mut no_rt = full_token(&e);
    no_rt.as_object_mut().unwrap().remove("refresh_token");
    mount_token(&e, 200, no_rt).await;
    let err = e
        .client
        .exchange_code(&e.t, "the-code", &SecretString::from("the-verifier"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SfError::OrgConfig { code, .. } if code == "NO_REFRESH_TOKEN"),
        "{err:?}"
    );
}

// C1 on a connected tenant.
#[tokio::test]
async fn c1_check_api_access() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(sf_json(403, fixture("error_api_disabled.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let err = e.client.check_api_access(&e.t).await.unwrap_err();
    assert!(matches!(
        err,
        SfError::OrgConfig {
            problem: OrgProblem::ApiDisabled,
            ..
        }
    ));
}

// R7: disconnect revokes the refresh token, deletes the stored tokens, forgets the cache.
#[tokio::test]
async fn r7_disconnect_revokes_and_deletes() {
    let e = env().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/revoke"))
        .and(body_string_contains("token=refresh-1"))
        .respond_with(sf_json(200, json!({})))
        .expect(1)
        .mount(&e.login)
        .await;
    let d = e.client.disconnect(&e.t).await.unwrap();
    assert!(d.revoked);
    assert!(e.store.load(&e.t).await.unwrap().is_none());

    // Already revoked tokens count as revoked.
    let e = env().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/revoke"))
        .respond_with(sf_json(
            400,
            json!({"error": "invalid_token", "error_description": "invalid token"}),
        ))
        .mount(&e.login)
        .await;
    e.client.revoke(&e.t).await.unwrap();
}

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::*;

fn location_params(r: &Resp) -> std::collections::HashMap<String, String> {
    let loc = r.header("location").expect("Location header");
    let q = loc.split_once('?').unwrap().1;
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

async fn authorize(e: &Env, challenge: &str) -> String {
    let (cid, _) = e.sim.client_credentials();
    let url = format!(
        "{}/services/oauth2/authorize?response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&state=xyz&scope=api%20refresh_token&code_challenge={challenge}&code_challenge_method=S256",
        e.sim.login_url()
    );
    let r = e.http.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("http://localhost/cb?"), "{loc}");
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(q["state"], "xyz");
    q["code"].clone()
}

async fn token(e: &Env, form: &[(&str, &str)]) -> (u16, Value) {
    let r = e
        .http
        .post(format!("{}/services/oauth2/token", e.sim.login_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    (s, r.json().await.unwrap())
}

fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_string();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh_then_revoke() {
    let e = env().await;
    let (cid, secret) = e.sim.client_credentials();
    let (verifier, challenge) = pkce();
    let code = authorize(&e, &challenge).await;
    let (s, t) = token(
        &e,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &cid),
            ("client_secret", &secret),
            ("redirect_uri", "http://localhost/cb"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let keys: Vec<&str> = t.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for k in [
        "access_token",
        "refresh_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    ] {
        assert!(keys.contains(&k), "{k} missing in {t}");
    }
    assert!(t.get("expires_in").is_none());
    assert_eq!(t["instance_url"], e.org.instance_url());
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(
        t["id"],
        format!(
            "{}/id/{}/{}",
            e.sim.login_url(),
            e.org.org_id(),
            e.org.admin_user_id()
        )
    );
    let issued = t["issued_at"].as_str().unwrap();
    assert!(issued.len() == 13 && issued.chars().all(|c| c.is_ascii_digit()));
    let at = t["access_token"].as_str().unwrap();
    assert!(at.starts_with(&e.org.org_id()[..15]) && at.contains('!'));

    // The code is single-use.
    let (s, err) = token(
        &e,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &cid),
            ("client_secret", &secret),
            ("redirect_uri", "http://localhost/cb"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((s, err["error"].as_str().unwrap()), (400, "invalid_grant"));

    // The access token works on the instance.
    let r = e
        .http
        .get(format!(
            "{}/services/data/v{V}/limits",
            e.org.instance_url()
        ))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Refresh: a new access token, no refresh_token.
    let rt = t["refresh_token"].as_str().unwrap();
    let (s, t2) = token(
        &e,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &cid),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert!(t2.get("refresh_token").is_none());
    assert_ne!(t2["access_token"], t["access_token"]);
    assert_eq!(t2["instance_url"], e.org.instance_url());

    // Revoke the refresh token: 200, then the refresh fails.
    let r = e
        .http
        .post(format!("{}/services/oauth2/revoke", e.sim.login_url()))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, err) = token(
        &e,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &cid),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        err,
        serde_json::json!({"error":"invalid_grant","error_description":"expired access/refresh token"})
    );
    let r = e
        .http
        .post(format!("{}/services/oauth2/revoke", e.sim.login_url()))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("error=invalid_token"));
    // Token calls are logged for the org, not API-counted.
    let reqs = e.org.requests();
    assert!(reqs.iter().any(|r| r.path == "/services/oauth2/token"
        && !r.api_counted
        && r.origin == sf_sim::Origin::Login));
}

#[tokio::test]
async fn pkce_mismatch_and_bad_client_are_rejected() {
    let e = env().await;
    let (cid, secret) = e.sim.client_credentials();
    let (_, challenge) = pkce();
    let code = authorize(&e, &challenge).await;
    let (s, err) = token(
        &e,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &cid),
            ("client_secret", &secret),
            ("redirect_uri", "http://localhost/cb"),
            ("code_verifier", "wrong"),
        ],
    )
    .await;
    assert_eq!(
        (
            s,
            err["error"].as_str().unwrap(),
            err["error_description"].as_str().unwrap()
        ),
        (400, "invalid_grant", "invalid code verifier")
    );
    let (s, err) = token(
        &e,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &cid),
            ("client_secret", "bad"),
        ],
    )
    .await;
    assert_eq!((s, err["error"].as_str().unwrap()), (400, "invalid_client"));
    let (s, err) = token(&e, &[("grant_type", "password"), ("client_id", &cid)]).await;
    assert_eq!(
        (s, err["error"].as_str().unwrap()),
        (400, "unsupported_grant_type")
    );
}

#[tokio::test]
async fn consent_page_allow_and_deny() {
    let e = env().await;
    e.sim.set_auto_consent(false);
    let (cid, _) = e.sim.client_credentials();
    let url = format!(
        "{}/services/oauth2/authorize?response_type=code&client_id={cid}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&state=s1",
        e.sim.login_url()
    );
    let r = e.http.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<form") && html.contains("name=\"approve\"") && html.contains("Test Org")
    );
    let base = [
        ("response_type", "code"),
        ("client_id", cid.as_str()),
        ("redirect_uri", "http://localhost/cb"),
        ("state", "s1"),
    ];
    let mut allow = base.to_vec();
    allow.push(("approve", "Allow"));
    let r = e
        .http
        .post(format!("{}/services/oauth2/authorize", e.sim.login_url()))
        .form(&allow)
        .send()
        .await
        .unwrap();
    let resp = Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: String::new(),
    };
    assert_eq!(resp.status, 302);
    let p = location_params(&resp);
    assert!(p.contains_key("code") && p["state"] == "s1");
    let mut deny = base.to_vec();
    deny.push(("deny", "Deny"));
    let r = e
        .http
        .post(format!("{}/services/oauth2/authorize", e.sim.login_url()))
        .form(&deny)
        .send()
        .await
        .unwrap();
    let resp = Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: String::new(),
    };
    assert_eq!(location_params(&resp)["error"], "access_denied");
}

#[tokio::test]
async fn identity_url_userinfo_and_versions() {
    let e = env().await;
    let id_url = e.org.identity_url();
    let r = e
        .http
        .get(format!("{id_url}?format=json&version=latest"))
        .bearer_auth(&e.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["user_id"], e.org.admin_user_id());
    assert_eq!(j["organization_id"], e.org.org_id());
    assert_eq!(j["email"], "admin@test.example.jp");
    assert!(
        j["urls"]["rest"]
            .as_str()
            .unwrap()
            .starts_with(&e.org.instance_url())
    );
    let r = e
        .http
        .get(format!("{id_url}?oauth_token={}", e.token))
        .send()
        .await
        .unwrap();
    let j: Value = r.json().await.unwrap();
    assert!(j["urls"]["query"].as_str().unwrap().contains("{version}"));
    let r = e
        .http
        .get(format!("{}/services/oauth2/userinfo", e.sim.login_url()))
        .bearer_auth(&e.token)
        .send()
        .await
        .unwrap();
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["user_id"], e.org.admin_user_id());
    assert_eq!(j["preferred_username"], "admin@test.example.jp");
    let r = e
        .http
        .get(format!("{}/services/oauth2/userinfo", e.sim.login_url()))
        .bearer_auth("bad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // Versions: no auth, no limit header, not counted.
    let r = e
        .http
        .get(format!("{}/services/data/", e.org.instance_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("sforce-limit-info").is_none());
    let j: Value = r.json().await.unwrap();
    assert!(j.as_array().unwrap().contains(
        &serde_json::json!({"label":"Winter '11","url":"/services/data/v20.0","version":"20.0"})
    ));
    assert!(
        j.as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == V && v["label"] == "Winter '25")
    );
    assert_eq!(e.org.api_requests_used(), 0);
    // Resources: identity on the login origin.
    let r = e.get("").await;
    assert_eq!(r.json()["identity"], id_url);
    assert_eq!(r.header("sforce-limit-info"), Some("api-usage=1/15000"));
}

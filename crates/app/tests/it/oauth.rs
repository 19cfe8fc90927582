//! R7 against sf-sim: connect (PKCE + state) → callback → stored grant → status → disconnect
//! (revoked at Salesforce). And the admin page: login, CSRF, the settings form.

use crate::helpers::{TestApp, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Starts the flow with the API and lets the simulator consent; returns the callback query.
pub(crate) async fn authorize(app: &TestApp, token: &str, tenant: &str) -> String {
    let r = app
        .get(
            token,
            &format!("/api/v1/tenants/{tenant}/salesforce/connect"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let authorize = location(&r);
    assert!(authorize.starts_with(&app.sim.login_url()), "{authorize}");
    let u = url::Url::parse(&authorize).unwrap();
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 32 && q["code_challenge"].len() == 43);
    let r = app.http.get(&authorize).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let back = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(back.path(), "/oauth/callback");
    back.query().unwrap().to_owned()
}

/// Connects the tenant to the sim's newest org through the real flow.
pub(crate) async fn connect(app: &TestApp, token: &str, tenant: &str) {
    let query = authorize(app, token, tenant).await;
    let r = app
        .http
        .get(app.url(&format!("/oauth/callback?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), format!("/admin/{tenant}?connect=connected"));
}

#[tokio::test]
async fn r7_connect_and_disconnect_revokes_and_deletes_tokens() {
    let app = spawn_app().await;
    let org = app.sim.add_org(sf_sim::OrgSpec::default());
    let t = app.create_tenant("acme").await;
    let tenant = TestApp::tenant_id("acme");
    let query = authorize(&app, &t.token, "acme").await;
    let r = app
        .http
        .get(app.url(&format!("/oauth/callback?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/acme?connect=connected");
    // The state is single-use.
    let r = app
        .http
        .get(app.url(&format!("/oauth/callback?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let s: Value = app
        .get(&t.token, "/api/v1/tenants/acme/status")
        .await
        .json()
        .await
        .unwrap();
    let org_id = domain::SalesforceId::parse(&org.org_id()).unwrap();
    assert_eq!(s["connection"]["user"]["org_id"], org_id.as_str());
    assert_eq!(s["connection"]["instance_url"], org.instance_url());
    // No token in the status.
    let text = s.to_string();
    assert!(!text.contains("access_token") && !text.contains("refresh_token"));
    // The grant is stored (encrypted) and works at Salesforce.
    let creds = app
        .state
        .ports
        .credentials
        .load(&tenant)
        .await
        .unwrap()
        .expect("stored credentials");
    assert_eq!(refresh(&app, &creds.refresh_token).await, StatusCode::OK);
    org.reset_request_log();
    // Disconnect: revoked at Salesforce, gone locally.
    let r = app
        .send(
            "POST",
            &t.token,
            "/api/v1/tenants/acme/salesforce/disconnect",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["was_connected"], true);
    assert_eq!(v["revoked"], true);
    let revokes: Vec<_> = org
        .requests()
        .into_iter()
        .filter(|r| r.path.trim_end_matches('/') == "/services/oauth2/revoke")
        .collect();
    assert_eq!(revokes.len(), 1, "{:?}", org.requests());
    assert_eq!(revokes[0].method, "POST");
    assert_eq!(revokes[0].status, 200);
    // Salesforce no longer honours the refresh token, and the store holds nothing.
    assert_eq!(
        refresh(&app, &creds.refresh_token).await,
        StatusCode::BAD_REQUEST
    );
    assert!(
        app.state
            .ports
            .credentials
            .load(&tenant)
            .await
            .unwrap()
            .is_none(),
        "credentials left in the store after disconnect"
    );
    let s: Value = app
        .get(&t.token, "/api/v1/tenants/acme/status")
        .await
        .json()
        .await
        .unwrap();
    assert!(s["connection"].is_null());
    // Disconnecting again: nothing to revoke.
    let v: Value = app
        .send(
            "POST",
            &t.token,
            "/api/v1/tenants/acme/salesforce/disconnect",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["was_connected"], false);
}

/// A refresh-token grant at the simulator's token endpoint; its status.
async fn refresh(app: &TestApp, token: &secrecy::SecretString) -> StatusCode {
    use secrecy::ExposeSecret as _;
    let (id, secret) = app.sim.client_credentials();
    app.http
        .post(format!("{}/services/oauth2/token", app.sim.login_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token.expose_secret()),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn access_denied_and_unknown_state_are_handled() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let r = app
        .get(&t.token, "/api/v1/tenants/acme/salesforce/connect")
        .await;
    let u = url::Url::parse(&location(&r)).unwrap();
    let state = u
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let r = app
        .http
        .get(app.url(&format!(
            "/oauth/callback?error=access_denied&error_description=end-user+denied&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/acme?connect=denied");
    let r = app
        .http
        .get(app.url("/oauth/callback?code=x&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "invalid_state");
}

fn session_cookie(r: &reqwest::Response) -> String {
    let c = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/admin/acme"),
        "{c}"
    );
    c.split(';').next().unwrap().to_owned()
}

pub(crate) fn csrf_of(html: &str) -> String {
    let i =
        html.find(r#"name="csrf" value=""#).expect("csrf field") + r#"name="csrf" value=""#.len();
    html[i..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn admin_page_login_csrf_and_settings_form() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    // Not logged in → login page.
    let r = app.http.get(app.url("/admin/acme")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/acme/login");
    // Wrong token.
    let r = app
        .http
        .post(app.url("/admin/acme/login"))
        .form(&[("token", other.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Right token → session cookie.
    let r = app
        .http
        .post(app.url("/admin/acme/login"))
        .form(&[("token", t.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&r);
    let r = app
        .http
        .get(app.url("/admin/acme"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    for needle in [
        "リード",
        "取引先責任者",
        "履歴オプション",
        "顧客作成",
        "録音テキスト変換",
        "通知イベント",
        "連携",
        "<svg",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    let csrf = csrf_of(&html);
    // The session does not open another tenant's page.
    let r = app
        .http
        .get(app.url("/admin/other"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A form without the CSRF token is refused and changes nothing.
    let r = app
        .http
        .post(app.url("/admin/acme/settings"))
        .header("cookie", &cookie)
        .form(&[("sync_lead", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Invalid settings: 422 with the field named in Japanese and English.
    let r = app
        .http
        .post(app.url("/admin/acme/settings"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("sync_lead", "on"),
            ("create_customers", "on"),
            ("create_as", "Contact"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("create_as"));
    // Valid settings are saved.
    let r = app
        .http
        .post(app.url("/admin/acme/settings"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("sync_contact", "on"),
            ("write_activity", "on"),
            ("notify_on", "missed"),
            ("api_budget_percent", "10"),
            ("placeholder_account", "仮 取引先"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let s: Value = app
        .get(&t.token, "/api/v1/tenants/acme/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["sync_targets"]["lead"], false);
    assert_eq!(s["api_budget_percent"], 10);
    assert_eq!(s["placeholder_account"], "仮 取引先");
    // Sync now from the page; a retry of an unknown item is 404; every form needs the token.
    let r = app
        .http
        .post(app.url("/admin/acme/sync"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/admin/acme?sync="));
    let r = app
        .http
        .post(app.url("/admin/acme/failed/12345/retry"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for action in ["sync", "connect", "disconnect", "logout", "failed/1/retry"] {
        let r = app
            .http
            .post(app.url(&format!("/admin/acme/{action}")))
            .header("cookie", &cookie)
            .form(&[("csrf", "forged")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{action}");
    }
    // Connect from the page goes to the org's authorize URL.
    let r = app
        .http
        .post(app.url("/admin/acme/connect"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with(&app.sim.login_url()));
}

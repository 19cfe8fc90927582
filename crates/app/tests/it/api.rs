//! The HTTP API end to end: auth, every tenant route, tenant isolation, errors.

use crate::helpers::{OPERATOR_KEY, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn health_ready_metrics_and_openapi() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let spec: Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.0.3");
    for (method, path, ..) in app::http::openapi::OPERATIONS {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
}

#[tokio::test]
async fn operator_routes_need_the_operator_key() {
    let app = spawn_app().await;
    let body = json!({"id": "acme"});
    let r = app
        .http
        .post(app.url("/api/v1/tenants"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "unauthorized");
    let r = app
        .http
        .post(app.url("/api/v1/tenants"))
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let t = app.create_tenant("acme").await;
    // A tenant token is not the operator.
    let r = app
        .http
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(&t.token)
        .json(&json!({"id":"x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Duplicate id.
    let r = app
        .http
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(OPERATOR_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Invalid id, named.
    let r = app
        .http
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(OPERATOR_KEY)
        .json(&json!({"id":"Bad Id"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["fields"][0]["field"], "id");
}

#[tokio::test]
async fn new_admin_token_replaces_the_old_one_and_webhook_secret_rotates() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    assert_eq!(
        app.get(&t.token, "/api/v1/tenants/acme/settings")
            .await
            .status(),
        StatusCode::OK
    );
    let r = app
        .send(
            "POST",
            OPERATOR_KEY,
            "/api/v1/tenants/acme/admin-token",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let new: Value = r.json().await.unwrap();
    let new = new["admin_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&t.token, "/api/v1/tenants/acme/settings")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&new, "/api/v1/tenants/acme/settings")
            .await
            .status(),
        StatusCode::OK
    );
    let r = app
        .send(
            "POST",
            OPERATOR_KEY,
            "/api/v1/tenants/acme/webhook-secret",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_ne!(v["webhook_secret"].as_str().unwrap(), t.webhook_secret);
    assert!(v["previous_valid_until"].is_string());
    // During the grace period both the previous and the new secret authenticate webhooks.
    for (i, secret) in [
        t.webhook_secret.clone(),
        v["webhook_secret"].as_str().unwrap().to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let body =
            format!("event=missed&record%5Bid%5D=grace-{i}&contact%5Bnumber%5D=03-5555-0101");
        let ts = chrono::Utc::now().timestamp();
        let sig = event_ingest::sign(&secrecy::SecretString::from(secret), ts, body.as_bytes());
        let r = app
            .http
            .post(app.url("/webhooks/acme/calls"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-callsync-timestamp", ts.to_string())
            .header("x-callsync-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "secret {i}");
    }
    // Unknown tenant.
    let r = app
        .send(
            "POST",
            OPERATOR_KEY,
            "/api/v1/tenants/ghost/admin-token",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn settings_are_validated_with_named_fields_in_english_and_japanese() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let s: Value = app
        .get(&t.token, "/api/v1/tenants/acme/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["placeholder_account"], "CallConnect 取引先");
    assert_eq!(s["sync_targets"], json!({"lead": true, "contact": true}));
    // R4: create_customers needs create_as within the targets.
    let bad = json!({"sync_targets": {"lead": true, "contact": false}, "create_customers": true, "create_as": "Contact"});
    let r = app
        .send("PUT", &t.token, "/api/v1/tenants/acme/settings", Some(bad))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "invalid");
    assert_eq!(v["fields"][0]["field"], "create_as");
    assert!(!v["fields"][0]["message"].as_str().unwrap().is_empty());
    assert!(!v["fields"][0]["message_ja"].as_str().unwrap().is_ascii());
    // Malformed JSON is a 422 too, never a 500.
    let r = app
        .http
        .put(app.url("/api/v1/tenants/acme/settings"))
        .bearer_auth(&t.token)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let good = json!({"sync_targets": {"lead": true, "contact": false}, "create_customers": true, "create_as": "Lead", "notify_on": ["missed"]});
    let r = app
        .send("PUT", &t.token, "/api/v1/tenants/acme/settings", Some(good))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = app
        .get(&t.token, "/api/v1/tenants/acme/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["create_as"], "Lead");
    assert_eq!(s["notify_on"], json!(["missed"]));
}

#[tokio::test]
async fn customers_create_lookup_by_any_formatting_and_edit() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let r = app
        .send(
            "POST",
            &t.token,
            "/api/v1/tenants/acme/customers",
            Some(json!({"number": "03-1234-5678", "name": "電話 太郎"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    let id = c["id"].as_i64().unwrap();
    // R18: any formatting finds it.
    for q in [
        "0312345678",
        "%2B81%203%201234%205678",
        "%2B81-(0)3-1234-5678",
    ] {
        let r = app
            .get(
                &t.token,
                &format!("/api/v1/tenants/acme/customers?number={q}"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{q}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["id"].as_i64(), Some(id));
    }
    // Same number again → 409.
    let r = app
        .send(
            "POST",
            &t.token,
            "/api/v1/tenants/acme/customers",
            Some(json!({"number": "+81 3 1234 5678"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Unknown number → 404; not a number → 422 naming it.
    assert_eq!(
        app.get(
            &t.token,
            "/api/v1/tenants/acme/customers?number=06-6123-4567"
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let r = app
        .get(&t.token, "/api/v1/tenants/acme/customers?number=12")
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // An edit in the phone system.
    let r = app
        .send(
            "PATCH",
            &t.token,
            &format!("/api/v1/tenants/acme/customers/{id}"),
            Some(json!({"name": "電話 花子", "memo": null})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["fields"]["name"], "電話 花子");
    // Unlinked: there is no Salesforce record to write back to.
    assert_eq!(v["dirty"], json!([]));
    let r = app
        .send(
            "PATCH",
            &t.token,
            &format!("/api/v1/tenants/acme/customers/{id}"),
            Some(json!({"colour": "red"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .send(
            "PATCH",
            &t.token,
            "/api/v1/tenants/acme/customers/999999",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn status_lists_and_usage_for_a_fresh_tenant() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let s: Value = app
        .get(&t.token, "/api/v1/tenants/acme/status")
        .await
        .json()
        .await
        .unwrap();
    assert!(s["connection"].is_null());
    assert_eq!(s["queue"]["dead"], 0);
    assert_eq!(s["activities_per_hour"].as_array().unwrap().len(), 24);
    for path in [
        "sync-runs",
        "duplicates",
        "failed",
        "members-without-user",
        "api-usage",
    ] {
        let r = app
            .get(&t.token, &format!("/api/v1/tenants/acme/{path}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = app
        .send(
            "POST",
            &t.token,
            "/api/v1/tenants/acme/failed/42/retry",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Sync now is accepted (it fails in the background: not connected).
    let r = app
        .send(
            "POST",
            &t.token,
            "/api/v1/tenants/acme/sync",
            Some(json!({"full": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert!(v["job_id"].is_string());
}

/// Every tenant route, with a body that would succeed for the right tenant.
fn tenant_routes() -> Vec<(&'static str, String, Option<Value>)> {
    let b = "/api/v1/tenants/beta";
    vec![
        ("GET", format!("{b}/settings"), None),
        (
            "PUT",
            format!("{b}/settings"),
            Some(json!({"write_activity": false})),
        ),
        ("GET", format!("{b}/salesforce/connect"), None),
        ("POST", format!("{b}/salesforce/disconnect"), None),
        ("POST", format!("{b}/sync"), None),
        ("GET", format!("{b}/sync-runs"), None),
        ("GET", format!("{b}/customers?number=03-1234-5678"), None),
        (
            "POST",
            format!("{b}/customers"),
            Some(json!({"number": "06-6123-4567"})),
        ),
        (
            "PATCH",
            format!("{b}/customers/1"),
            Some(json!({"name": "x"})),
        ),
        ("GET", format!("{b}/duplicates"), None),
        ("GET", format!("{b}/failed"), None),
        ("POST", format!("{b}/failed/1/retry"), None),
        ("GET", format!("{b}/members-without-user"), None),
        ("GET", format!("{b}/status"), None),
        ("GET", format!("{b}/api-usage"), None),
    ]
}

#[tokio::test]
async fn a_tenant_token_sees_only_its_tenant_every_route_404_elsewhere() {
    let app = spawn_app().await;
    let alpha = app.create_tenant("alpha").await;
    let beta = app.create_tenant("beta").await;
    let r = app
        .send(
            "POST",
            &beta.token,
            "/api/v1/tenants/beta/customers",
            Some(json!({"number": "03-1234-5678", "name": "B"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let before: Value = app
        .get(&beta.token, "/api/v1/tenants/beta/settings")
        .await
        .json()
        .await
        .unwrap();
    for (method, path, body) in tenant_routes() {
        // Alpha's token on beta's paths: 404, exactly like a tenant that does not exist.
        let r = app.send(method, &alpha.token, &path, body.clone()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "not_found", "{method} {path}");
        let ghost = path.replace("/beta/", "/ghost/");
        let r = app.send(method, &alpha.token, &ghost, body.clone()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {ghost}");
        // No token at all: 401.
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app.http.request(m, app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Nothing of beta changed.
    let after: Value = app
        .get(&beta.token, "/api/v1/tenants/beta/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    let c: Value = app
        .get(
            &beta.token,
            "/api/v1/tenants/beta/customers?number=0312345678",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["fields"]["name"], "B");
    assert_eq!(
        app.get(
            &beta.token,
            "/api/v1/tenants/beta/customers?number=0661234567"
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let runs: Value = app
        .get(&beta.token, "/api/v1/tenants/beta/sync-runs")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"], json!([]));
}

#[tokio::test]
async fn the_webhook_intake_is_mounted_and_checks_signatures() {
    let app = spawn_app().await;
    let _t = app.create_tenant("acme").await;
    let r = app
        .http
        .post(app.url("/webhooks/acme/calls"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("record%5Bid%5D=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let app = spawn_app().await;
    app.shutdown.shutdown();
    app.done.await.unwrap().unwrap();
}

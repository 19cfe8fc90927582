//! Whole flows through the real app and sf-sim: sync imports customers (R16, R18); a signed
//! webhook becomes one Task in Salesforce through the workers (R20, R24, R25).

use crate::helpers::{TestApp, spawn_app_with};
use crate::oauth::connect;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls `check` until it returns `Some`, for at most ~10 s (async work in the app).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn finished_run(app: &TestApp, token: &str) -> Value {
    eventually("a finished sync run", || async {
        let v: Value = app
            .get(token, "/api/v1/tenants/acme/sync-runs")
            .await
            .json()
            .await
            .ok()?;
        let run = v["runs"].as_array()?.first()?.clone();
        (!run["finished_at"].is_null()).then_some(run)
    })
    .await
}

#[tokio::test]
async fn sync_now_imports_salesforce_contacts_as_customers() {
    let app = spawn_app_with(|_| {}).await;
    let org = app.sim.add_org(sf_sim::OrgSpec::default());
    let account = org.insert("Account", json!({"Name": "株式会社テスト"}));
    org.insert(
        "Contact",
        json!({"LastName": "電話", "FirstName": "太郎", "Phone": "03-1234-5678", "AccountId": account, "Email": "taro@example.jp"}),
    );
    org.insert("Lead", json!({"LastName": "番号なし", "Company": "X"}));
    let t = app.create_tenant("acme").await;
    connect(&app, &t.token, "acme").await;
    let r = app
        .send("POST", &t.token, "/api/v1/tenants/acme/sync", None)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let run = finished_run(&app, &t.token).await;
    assert_eq!(run["ok"], true, "{run}");
    assert_eq!(run["kind"], "initial");
    assert_eq!(run["report"]["created"], 1, "{run}");
    let c: Value = app
        .get(
            &t.token,
            "/api/v1/tenants/acme/customers?number=%2B81%203%201234%205678",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["fields"]["name"], "電話 太郎");
    assert_eq!(c["fields"]["company"], "株式会社テスト");
    assert_eq!(c["link"]["record"]["object"], "Contact");
    // R11: editing a linked customer marks synced fields for write-back; address is import-only.
    let id = c["id"].as_i64().unwrap();
    let r = app
        .send(
            "PATCH",
            &t.token,
            &format!("/api/v1/tenants/acme/customers/{id}"),
            Some(json!({"name": "電話 花子", "address": "東京都"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["dirty"], json!(["name"]), "{v}");
}

#[tokio::test]
async fn a_signed_webhook_becomes_one_task_via_the_workers() {
    let app = spawn_app_with(|s| s.workers.count = 1).await;
    let org = app.sim.add_org(sf_sim::OrgSpec::default());
    let contact = org.insert(
        "Contact",
        json!({"LastName": "顧客", "Phone": "03-5555-0101"}),
    );
    let t = app.create_tenant("acme").await;
    connect(&app, &t.token, "acme").await;
    let body = "event=missed&record%5Bid%5D=22232&record%5Bdirection%5D=inbound&contact%5Bnumber%5D=03-5555-0101&record%5Bduration%5D=0";
    let post = || async {
        let ts = chrono::Utc::now().timestamp();
        let sig = event_ingest::sign(
            &SecretString::from(t.webhook_secret.clone()),
            ts,
            body.as_bytes(),
        );
        app.http
            .post(app.url("/webhooks/acme/calls"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-callsync-timestamp", ts.to_string())
            .header("x-callsync-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(post().await.status(), StatusCode::ACCEPTED);
    let tasks = eventually("the Task", || async {
        let tasks = org.records("Task");
        (!tasks.is_empty()).then_some(tasks)
    })
    .await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["WhoId"].as_str(), Some(contact.as_str()));
    assert_eq!(tasks[0]["CallObject"], "22232");
    // The same delivery again is acknowledged and writes nothing new (R25, R27).
    assert_eq!(post().await.status(), StatusCode::OK);
    let s: Value = app
        .get(&t.token, "/api/v1/tenants/acme/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["queue"]["dead"], 0);
    assert_eq!(org.records("Task").len(), 1);
    let m = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "callsync_events_received_total",
        "callsync_sf_calls_total",
        "callsync_events_processed_total",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
}

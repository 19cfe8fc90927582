//! Whole flows through the real app and sf-sim: sync imports customers (R16, R18); a signed
//! webhook becomes one Task in Salesforce through a worker (R20, R24, R25). Each flow runs on
//! SQLite and, when `CALLSYNC_TEST_PG_URL` is set (always in CI), on PostgreSQL.

use crate::helpers::{Db, TestApp, spawn_app_on, spawn_app_with};
use crate::oauth::connect;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls `check` until it returns `Some`, for at most ~10 s. Only for work the app runs in the
/// background by design (a sync started with `POST …/sync` answers 202 first; the worker pool
/// runs on its own tasks); everything else is driven directly.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
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

/// The newest sync run once it has finished. `POST …/sync` runs the sync on a background task
/// by design (it answers 202 at once), so this polls the API the way a client would.
pub(crate) async fn finished_run(app: &TestApp, token: &str, tenant: &str) -> Value {
    eventually("a finished sync run", || async {
        let v: Value = app
            .get(token, &format!("/api/v1/tenants/{tenant}/sync-runs"))
            .await
            .json()
            .await
            .ok()?;
        let run = v["runs"].as_array()?.first()?.clone();
        (!run["finished_at"].is_null()).then_some(run)
    })
    .await
}

/// Says why a PostgreSQL variant did not run (only possible outside CI, see `pg_url`).
fn skipped(test: &str) {
    eprintln!("{test}: skipped on PostgreSQL: CALLSYNC_TEST_PG_URL is not set");
}

async fn sync_now_imports(db: Db) {
    let Some(app) = spawn_app_on(db, sf_sim::SimOptions::default(), |_| {}).await else {
        return skipped("sync_now_imports_salesforce_contacts_as_customers");
    };
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
    let run = finished_run(&app, &t.token, "acme").await;
    assert_eq!(run["ok"], true, "{run}");
    assert_eq!(run["kind"], "initial");
    assert_eq!(run["report"]["created"], 1, "{run}");
    // R18: the caller-ID lookup finds it in another formatting.
    let c = app
        .get_json(
            &t.token,
            "/api/v1/tenants/acme/customers?number=%2B81%203%201234%205678",
        )
        .await;
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
async fn sync_now_imports_salesforce_contacts_as_customers() {
    sync_now_imports(Db::Sqlite).await;
}

#[tokio::test]
async fn sync_now_imports_salesforce_contacts_as_customers_on_postgres() {
    sync_now_imports(Db::Postgres).await;
}

const MISSED: &str = "event=missed&record%5Bid%5D=22232&record%5Bdirection%5D=inbound&contact%5Bnumber%5D=03-5555-0101&record%5Bduration%5D=0";

async fn webhook_becomes_one_task(db: Db) {
    let Some(app) = spawn_app_on(db, sf_sim::SimOptions::default(), |_| {}).await else {
        return skipped("a_signed_webhook_becomes_one_task_through_a_worker");
    };
    let org = app.sim.add_org(sf_sim::OrgSpec::default());
    let contact = org.insert(
        "Contact",
        json!({"LastName": "顧客", "Phone": "03-5555-0101"}),
    );
    let t = app.create_tenant("acme").await;
    connect(&app, &t.token, "acme").await;
    let r = app.post_webhook("acme", &t.webhook_secret, MISSED).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Nothing runs in the background (workers.count = 0): one step is the whole decision.
    let worker = app.worker();
    let step = worker.step().await.unwrap();
    assert_eq!((step.claimed, step.done), (1, 1), "{step:?}");
    let tasks = org.records("Task");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["WhoId"].as_str(), Some(contact.as_str()));
    assert_eq!(tasks[0]["CallObject"], "22232");
    // The same delivery again is acknowledged and writes nothing new (R25, R27).
    let r = app.post_webhook("acme", &t.webhook_secret, MISSED).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(worker.step().await.unwrap().claimed, 0);
    let s = app.get_json(&t.token, "/api/v1/tenants/acme/status").await;
    assert_eq!(s["queue"]["dead"], 0);
    assert_eq!(s["queue"]["ready"], 0);
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

#[tokio::test]
async fn a_signed_webhook_becomes_one_task_through_a_worker() {
    webhook_becomes_one_task(Db::Sqlite).await;
}

#[tokio::test]
async fn a_signed_webhook_becomes_one_task_through_a_worker_on_postgres() {
    webhook_becomes_one_task(Db::Postgres).await;
}

/// The app's own worker pool (not a test-driven worker): the intake wakes it and it writes
/// the Task. The pool runs on background tasks by design, so this is the one call-logging test
/// that waits for a condition.
#[tokio::test]
async fn the_worker_pool_is_woken_by_the_intake() {
    let app = spawn_app_with(|s| s.workers.count = 1).await;
    let org = app.sim.add_org(sf_sim::OrgSpec::default());
    org.insert(
        "Contact",
        json!({"LastName": "顧客", "Phone": "03-5555-0101"}),
    );
    let t = app.create_tenant("acme").await;
    connect(&app, &t.token, "acme").await;
    let r = app.post_webhook("acme", &t.webhook_secret, MISSED).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let tasks = eventually("the pool to write the Task", || async {
        let tasks = org.records("Task");
        (!tasks.is_empty()).then_some(tasks)
    })
    .await;
    assert_eq!(tasks.len(), 1);
}

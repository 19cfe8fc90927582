//! The admin page in headless Chromium, as an administrator uses it: log in with the tenant's
//! admin token, read the 連携 settings screen in Japanese, change settings and see them kept,
//! connect through Salesforce's consent page (sf-sim, Allow), read the status view, and
//! disconnect.
//!
//! The browser reaches the app as `localhost` and Salesforce (sf-sim) as `127.0.0.1`: two
//! different sites, as callsync and Salesforce are in production. That matters for cookies:
//! the return from the consent page is a navigation that another site started.
//! Screenshots for people land in `target/browser/`; the assertions read the DOM.

use crate::cdp::Browser;
use crate::e2e::finished_run;
use crate::helpers::{Db, form_body, spawn_app_on};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admin_page_in_chromium_login_settings_connect_and_status() {
    // Fail early and clearly when there is no browser (never skip).
    crate::cdp::chromium();
    let sim = sf_sim::SimOptions {
        auto_consent: false,
        ..Default::default()
    };
    let app = spawn_app_on(Db::Sqlite, sim, |s| {
        s.server.public_url = s.server.public_url.replace("127.0.0.1", "localhost");
    })
    .await
    .expect("SQLite");
    let public = app.state.settings.public_url().to_owned();
    assert!(public.starts_with("http://localhost:"), "{public}");
    let org = app.sim.add_org(sf_sim::OrgSpec {
        name: "株式会社サンプル".into(),
        ..Default::default()
    });
    org.insert(
        "Contact",
        json!({"LastName": "電話", "FirstName": "太郎", "Phone": "03-1234-5678"}),
    );
    let t = app.create_tenant("acme").await;
    // One call waiting in the queue (no worker runs here), so the queue depth shows it.
    let call = form_body(&[
        ("event", "missed"),
        ("record[id]", "b-1"),
        ("record[direction]", "inbound"),
        ("contact[number]", "03-1234-5678"),
    ]);
    let r = app.post_webhook("acme", &t.webhook_secret, &call).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let mut b = Browser::launch().await;

    // Log in with the admin token.
    b.goto(&format!("{public}/admin/acme")).await;
    assert_eq!(b.location().await.path(), "/admin/acme/login");
    assert!(b.text().await.contains("管理トークン"));
    b.type_into("input[name=token]", &t.token).await;
    b.click_and_wait("form[action='/admin/acme/login'] button[type=submit]")
        .await;
    assert_eq!(b.location().await.path(), "/admin/acme");

    // The 連携 settings screen, in Japanese.
    let text = b.text().await;
    for label in [
        "Salesforce 連携設定",
        "同期対象",
        "リード",
        "取引先責任者",
        "履歴オプション",
        "顧客作成",
        "作成先",
        "録音テキスト変換",
        "通知イベント",
        "連携状況",
        "未連携です",
    ] {
        assert!(text.contains(label), "{label} missing from:\n{text}");
    }
    b.screenshot("1-settings").await;

    // Change settings: transcripts on, create unknown callers as Contacts.
    let transcription = "input[name=write_transcription]";
    let create = "input[name=create_customers]";
    let create_as = "select[name=create_as]";
    assert_eq!(b.prop(transcription, "checked").await, false);
    assert_eq!(b.prop(create, "checked").await, false);
    b.click(transcription).await;
    b.click(create).await;
    b.select(create_as, "Contact").await;
    assert_eq!(b.prop(transcription, "checked").await, true);
    b.click_and_wait("form[action='/admin/acme/settings'] button[type=submit]")
        .await;
    assert_eq!(b.location().await.path(), "/admin/acme");
    assert!(b.text().await.contains("設定を保存しました"));
    // Kept: a fresh load shows them, and so does the API.
    b.reload().await;
    assert_eq!(b.prop(transcription, "checked").await, true);
    assert_eq!(b.prop(create, "checked").await, true);
    assert_eq!(b.prop(create_as, "value").await, "Contact");
    let s = app
        .get_json(&t.token, "/api/v1/tenants/acme/settings")
        .await;
    assert_eq!(s["write_transcription"], true, "{s}");
    assert_eq!(s["create_customers"], true, "{s}");
    assert_eq!(s["create_as"], "Contact", "{s}");
    assert_eq!(s["write_activity"], true, "untouched options stay: {s}");

    // [連携] → Salesforce's consent page → Allow → back on the admin page, connected.
    b.click_and_wait("form[action='/admin/acme/connect'] button[type=submit]")
        .await;
    let consent = b.location().await;
    assert!(
        consent.as_str().starts_with(&app.sim.login_url()),
        "{consent}"
    );
    assert_eq!(consent.path(), "/services/oauth2/authorize");
    let text = b.text().await;
    assert!(text.contains("Allow Access?"), "{text}");
    assert!(text.contains("株式会社サンプル"), "{text}");
    b.screenshot("2-consent").await;
    b.click_and_wait("#oaapprove").await;
    let back = b.location().await;
    assert_eq!(
        (back.host_str(), back.path(), back.query()),
        (Some("localhost"), "/admin/acme", Some("connect=connected")),
        "after Allow the admin lands on its page, still logged in"
    );
    let status = app.get_json(&t.token, "/api/v1/tenants/acme/status").await;
    let user = &status["connection"]["user"];
    let text = b.text().await;
    assert!(text.contains("Salesforceと連携しました"), "{text}");
    for shown in [
        user["org_id"].as_str().unwrap(),
        user["name"].as_str().unwrap(),
        org.instance_url().as_str(),
    ] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }
    assert!(text.contains("連携解除"), "the disconnect button: {text}");

    // Sync now from the page; the run shows in the status view with the API usage.
    b.click_and_wait("form[action='/admin/acme/sync'] button[type=submit]")
        .await;
    assert!(b.text().await.contains("同期を開始しました"));
    // The page's button starts the sync in the background by design (like `POST …/sync`);
    // the run is awaited through the API, then the page is reloaded.
    let run = finished_run(&app, &t.token, "acme").await;
    assert_eq!(run["ok"], true, "{run}");
    b.reload().await;
    let text = b.text().await;
    for shown in [
        "同期履歴",
        "成功 / ok",
        "seen 1",
        "API使用量",
        "組織全体",
        "キュー",
        "待機 1",
        "失敗 0",
    ] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }
    let shot = b.screenshot("3-status").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    // [連携解除]: revoked at Salesforce, and the page says it is no longer connected.
    org.reset_request_log();
    b.click_and_wait("form[action='/admin/acme/disconnect'] button[type=submit]")
        .await;
    assert_eq!(b.location().await.query(), Some("disconnected=1"));
    let text = b.text().await;
    assert!(text.contains("連携を解除しました"), "{text}");
    assert!(text.contains("未連携です"), "{text}");
    assert!(
        org.requests()
            .iter()
            .any(|r| r.path.trim_end_matches('/') == "/services/oauth2/revoke" && r.status == 200),
        "no revoke reached Salesforce"
    );
    b.close().await;
}

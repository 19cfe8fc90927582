//! Rules of `docs/specs/SPEC.md` checked through the app's API (and, for R40, its admin page),
//! one test per rule, named after it. Work is driven directly — the sync use case and a worker
//! step — so nothing here waits.

use crate::helpers::{TestApp, form_body, spawn_app};
use crate::oauth::{connect, csrf_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The form body of an inbound call of `number` by the phone system's member `user`
/// (`(id, name, email)`).
fn call(
    event: &str,
    call_id: &str,
    number: &str,
    user: Option<(&str, &str, Option<&str>)>,
) -> String {
    let mut pairs = vec![
        ("event", event),
        ("record[id]", call_id),
        ("record[direction]", "inbound"),
        ("record[started_at]", "2026-11-25T10:00:00.000+09:00"),
        ("contact[number]", number),
    ];
    if let Some((id, name, email)) = user {
        pairs.push(("user[id]", id));
        pairs.push(("user[name]", name));
        if let Some(e) = email {
            pairs.push(("user[email]", e));
        }
    }
    form_body(&pairs)
}

/// The path of a caller-ID lookup for `number`, percent-encoded.
fn lookup(number: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("number", number)
        .finish();
    format!("/api/v1/tenants/acme/customers?{q}")
}

#[tokio::test]
async fn r18_caller_id_lookup_any_formatting() {
    let app = spawn_app().await;
    let org = app.sim.add_org(sf_sim::OrgSpec::default());
    let contact = org.insert(
        "Contact",
        json!({"LastName": "電話", "FirstName": "太郎", "Phone": "(03) 1234-5678"}),
    );
    let t = app.create_tenant("acme").await;
    connect(&app, &t.token, "acme").await;
    // The import, run directly (what `POST …/sync` starts in the background).
    let run = app
        .state
        .ports
        .sync
        .run(&TestApp::tenant_id("acme"), false)
        .await
        .unwrap();
    assert!(run.is_some(), "the sync ran");
    // A customer the phone system created, in yet another formatting.
    let r = app
        .send(
            "POST",
            &t.token,
            "/api/v1/tenants/acme/customers",
            Some(json!({"number": "+81 6-6123-4567", "name": "大阪 花子"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for (number, name) in [
        ("03-1234-5678", "電話 太郎"),
        ("0312345678", "電話 太郎"),
        ("+81 3 1234 5678", "電話 太郎"),
        ("+81-(0)3-1234-5678", "電話 太郎"),
        ("+81312345678", "電話 太郎"),
        ("(03)1234-5678", "電話 太郎"),
        ("03 1234 5678", "電話 太郎"),
        ("０３－１２３４－５６７８", "電話 太郎"),
        ("06-6123-4567", "大阪 花子"),
        ("(06) 6123 4567", "大阪 花子"),
        ("０６６１２３４５６７", "大阪 花子"),
    ] {
        let r = app.get(&t.token, &lookup(number)).await;
        assert_eq!(r.status(), StatusCode::OK, "{number}");
        let c: Value = r.json().await.unwrap();
        assert_eq!(c["fields"]["name"], name, "{number}: {c}");
    }
    let c = app.get_json(&t.token, &lookup("+81 3-1234-5678")).await;
    assert_eq!(c["number"]["e164"], "+81312345678", "{c}");
    assert_eq!(c["link"]["record"]["id"], contact.as_str(), "{c}");
    // Another number is not found; something that is no phone number is named.
    let r = app.get(&t.token, &lookup("03-1234-5679")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.get(&t.token, &lookup("12")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["fields"][0]["field"], "number", "{v}");
}

#[tokio::test]
async fn r41_members_without_a_salesforce_user_are_listed() {
    let app = spawn_app().await;
    let org = app.sim.add_org(sf_sim::OrgSpec {
        users: vec![
            sf_sim::SimUser::new("admin@sample.example.jp", "太郎", "管理"),
            sf_sim::SimUser::new("Ichiro.Eigyo@example.jp", "一郎", "営業"),
        ],
        ..Default::default()
    });
    org.insert(
        "Contact",
        json!({"LastName": "顧客", "Phone": "03-5555-0101"}),
    );
    let t = app.create_tenant("acme").await;
    connect(&app, &t.token, "acme").await;
    // Three members take calls: one with a Salesforce user (email in another case), one whose
    // email matches nobody, one without an email.
    for (call_id, user) in [
        ("c-17", ("17", "営業 一郎", Some("ichiro.eigyo@EXAMPLE.jp"))),
        ("c-18", ("18", "未登録 次郎", Some("jiro@example.jp"))),
        ("c-19", ("19", "受付 三郎", None)),
    ] {
        let body = call("missed", call_id, "03-5555-0101", Some(user));
        let r = app.post_webhook("acme", &t.webhook_secret, &body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{call_id}");
    }
    let step = app.worker().step().await.unwrap();
    assert_eq!(step.done, 3, "{step:?}");
    let v = app
        .get_json(&t.token, "/api/v1/tenants/acme/members-without-user")
        .await;
    let mut listed: Vec<(String, Value, Value)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["external_id"].as_str().unwrap().to_owned(),
                m["name"].clone(),
                m["email"].clone(),
            )
        })
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed,
        vec![
            (
                "18".to_owned(),
                json!("未登録 次郎"),
                json!("jiro@example.jp")
            ),
            ("19".to_owned(), json!("受付 三郎"), Value::Null),
        ],
        "{v}"
    );
    // The status view lists the same members.
    let s = app.get_json(&t.token, "/api/v1/tenants/acme/status").await;
    assert_eq!(
        s["members_without_user"].as_array().unwrap().len(),
        2,
        "{s}"
    );
    // Their calls are owned by the connecting user (R23); the matched member's by its user.
    let owner = |call_id: &str| {
        org.records("Task")
            .into_iter()
            .find(|t| t["CallObject"] == call_id)
            .unwrap_or_else(|| panic!("no Task for {call_id}"))["OwnerId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ichiro = org
        .records("User")
        .into_iter()
        .find(|u| u["Email"] == "Ichiro.Eigyo@example.jp")
        .unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(owner("c-17"), ichiro);
    assert_eq!(owner("c-18"), org.admin_user_id());
    assert_eq!(owner("c-19"), org.admin_user_id());
}

/// Logs in to the admin page with the token; the session cookie (`name=value`).
async fn admin_login(app: &TestApp, token: &str) -> String {
    let r = app
        .http
        .post(app.url("/admin/acme/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = r.headers()["set-cookie"].to_str().unwrap();
    c.split(';').next().unwrap().to_owned()
}

async fn admin_page(app: &TestApp, cookie: &str) -> String {
    let r = app
        .http
        .get(app.url("/admin/acme"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

#[tokio::test]
async fn r40_failed_items_show_cause_in_japanese_and_english_with_retry() {
    use app::http::html::esc;
    let app = spawn_app().await;
    let org = app.sim.add_org(sf_sim::OrgSpec::default());
    org.insert(
        "Contact",
        json!({"LastName": "顧客", "Phone": "03-5555-0101"}),
    );
    let t = app.create_tenant("acme").await;
    connect(&app, &t.token, "acme").await;
    // A validation rule on Task rejects every call: a problem only the org's admin can fix.
    org.set_fault(sf_sim::Fault::ValidationRule {
        object: "Task".into(),
        message: "件名を入力してください".into(),
    });
    for call_id in ["f-1", "f-2"] {
        let body = call("missed", call_id, "03-5555-0101", None);
        let r = app.post_webhook("acme", &t.webhook_secret, &body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let worker = app.worker();
    let step = worker.step().await.unwrap();
    assert_eq!((step.claimed, step.dead), (2, 2), "{step:?}");
    assert!(org.records("Task").is_empty());

    // Through the API: the cause and the setting to change, in Japanese and English.
    let v = app.get_json(&t.token, "/api/v1/tenants/acme/failed").await;
    let failed = v["failed"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 2, "{v}");
    let mut ids = Vec::new();
    for item in &failed {
        let f = &item["failure"];
        assert_eq!(f["code"], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "{item}");
        let en = f["message_en"].as_str().unwrap();
        let ja = f["message_ja"].as_str().unwrap();
        assert!(
            en.contains("validation rule") && en.contains("件名を入力してください"),
            "{en}"
        );
        assert!(
            ja.contains("入力規則") && ja.contains("件名を入力してください"),
            "{ja}"
        );
        assert!(
            f["fix_en"].as_str().unwrap().contains("Validation Rules"),
            "{f}"
        );
        assert!(f["fix_ja"].as_str().unwrap().contains("入力規則"), "{f}");
        assert_eq!(item["kind"]["kind"], "call_event", "{item}");
        assert!(item["attempts"].as_u64().unwrap() >= 1, "{item}");
        ids.push((
            item["id"].as_i64().unwrap(),
            item["kind"]["call_id"].as_str().unwrap().to_owned(),
        ));
    }
    let s = app.get_json(&t.token, "/api/v1/tenants/acme/status").await;
    assert_eq!(s["queue"]["dead"], 2, "{s}");
    assert_eq!(s["failures"].as_array().unwrap().len(), 2, "{s}");

    // On the admin page: the same texts, the code, and a retry button per item.
    let cookie = admin_login(&app, &t.token).await;
    let html = admin_page(&app, &cookie).await;
    let f = &failed[0]["failure"];
    for key in ["message_ja", "message_en", "fix_ja", "fix_en", "code"] {
        let text = esc(f[key].as_str().unwrap());
        assert!(
            html.contains(&text),
            "{key} ({text}) missing from the admin page"
        );
    }
    for (id, call_id) in &ids {
        assert!(
            html.contains(&format!(r#"action="/admin/acme/failed/{id}/retry""#)),
            "no retry form for {id}"
        );
        assert!(
            html.contains(&format!("通話 {call_id}")),
            "{call_id} missing"
        );
    }
    assert!(html.contains("再試行"));

    // The admin fixes the rule in Salesforce and retries: one through the API, one on the page.
    org.clear_faults();
    let (api_id, page_id) = (ids[0].0, ids[1].0);
    let r = app
        .send(
            "POST",
            &t.token,
            &format!("/api/v1/tenants/acme/failed/{api_id}/retry"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"retried": api_id}));
    let r = app
        .http
        .post(app.url(&format!("/admin/acme/failed/{page_id}/retry")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/acme?retried=1");
    let step = worker.step().await.unwrap();
    assert_eq!((step.claimed, step.done), (2, 2), "{step:?}");
    let mut written: Vec<String> = org
        .records("Task")
        .iter()
        .map(|t| t["CallObject"].as_str().unwrap().to_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["f-1", "f-2"]);
    let v = app.get_json(&t.token, "/api/v1/tenants/acme/failed").await;
    assert_eq!(v["failed"], json!([]), "{v}");
    let html = admin_page(&app, &cookie).await;
    assert!(!html.contains("/retry\""), "no retry buttons left");
    // Retrying an item that is no longer failed is a 404.
    let r = app
        .send(
            "POST",
            &t.token,
            &format!("/api/v1/tenants/acme/failed/{api_id}/retry"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

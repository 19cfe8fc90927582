use std::time::Duration;

use serde_json::json;
use sf_sim::Fault;

use crate::helpers::*;

#[tokio::test]
async fn session_expired_then_refresh_gives_a_valid_token() {
    let e = env().await;
    let (old_at, rt) = e.org.issue_tokens();
    e.org.set_fault(Fault::SessionExpired);
    let r = e.get("limits").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])
    );
    assert!(r.header("sforce-limit-info").is_none());
    let r = e
        .http
        .get(e.url("limits"))
        .bearer_auth(&old_at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (cid, secret) = e.sim.client_credentials();
    let t: serde_json::Value = e
        .http
        .post(format!("{}/services/oauth2/token", e.sim.login_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", &cid),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = e
        .http
        .get(e.url("limits"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(e.org.api_requests_used(), 1);
}

#[tokio::test]
async fn refresh_revoked_and_ip_restricted() {
    let e = env().await;
    let (_, rt) = e.org.issue_tokens();
    let (cid, secret) = e.sim.client_credentials();
    let refresh = |rt: String| {
        let (cid, secret) = (cid.clone(), secret.clone());
        let http = e.http.clone();
        let url = format!("{}/services/oauth2/token", e.sim.login_url());
        async move {
            let r = http
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_id", &cid),
                    ("client_secret", &secret),
                ])
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    e.org.set_fault(Fault::IpRestricted);
    let r = e.get("limits").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!([{"message":"This session is not valid for use with the REST API","errorCode":"INVALID_SESSION_ID"}])
    );
    assert_eq!(
        refresh(rt.clone()).await,
        (
            400,
            json!({"error":"invalid_grant","error_description":"ip restricted"})
        )
    );
    e.org.clear_faults();
    assert_eq!(refresh(rt.clone()).await.0, 200);
    e.org.set_fault(Fault::RefreshRevoked);
    assert_eq!(
        refresh(rt.clone()).await,
        (
            400,
            json!({"error":"invalid_grant","error_description":"expired access/refresh token"})
        )
    );
    e.org.clear_faults();
    // Revocation is permanent for the tokens that existed; new grants work.
    assert_eq!(refresh(rt).await.0, 400);
    let (_, rt2) = e.org.issue_tokens();
    assert_eq!(refresh(rt2).await.0, 200);
}

#[tokio::test]
async fn request_limit_counter_and_fault() {
    let e = env().await;
    e.org.set_daily_api_limit(3);
    for n in 1..=3 {
        let r = e.get("limits").await;
        assert_eq!(
            r.header("sforce-limit-info"),
            Some(format!("api-usage={n}/3").as_str())
        );
    }
    let r = e.get("limits").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!([{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(r.header("sforce-limit-info"), Some("api-usage=3/3"));
    assert!(r.header("retry-after").is_none());
    e.org.reset_request_log();
    e.org.set_daily_api_limit(100);
    e.org.set_fault(Fault::RequestLimitExceeded);
    assert_eq!(e.get("limits").await.error_code(), "REQUEST_LIMIT_EXCEEDED");
    e.org.clear_faults();
    assert_eq!(e.get("limits").await.status, 200);
    let log = e.org.requests();
    assert_eq!(log.len(), 2);
    assert!(
        !log[0].api_counted
            && log[1].api_counted
            && log[1].status == 200
            && log[1].path == format!("/services/data/v{V}/limits")
    );
}

#[tokio::test]
async fn api_disabled() {
    let e = env().await;
    e.org.set_fault(Fault::ApiDisabled);
    let r = e.query("SELECT Id FROM Lead").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!([{"message":"The REST API is not enabled for this Organization.","errorCode":"API_DISABLED_FOR_ORG"}])
    );
}

#[tokio::test]
async fn lock_row_for_next_writes() {
    let e = env().await;
    e.org.set_fault(Fault::LockRow { times: 2 });
    let r = e
        .req("POST", "sobjects/Account", Some(json!({"Name":"a"})), &[])
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "UNABLE_TO_LOCK_ROW")
    );
    assert_eq!(r.json()[0]["fields"], json!([]));
    let j = e.req("POST", "composite/sobjects", Some(json!({"records":[{"attributes":{"type":"Account"},"Name":"b"},{"attributes":{"type":"Account"},"Name":"c"}]})), &[]).await.json();
    assert_eq!(j[0]["errors"][0]["statusCode"], "UNABLE_TO_LOCK_ROW");
    assert_eq!(j[1]["success"], true);
    // Reads are unaffected.
    assert_eq!(
        e.query("SELECT Id FROM Account").await.json()["totalSize"],
        1
    );
}

#[tokio::test]
async fn server_error_html_for_next_requests() {
    let e = env().await;
    e.org.set_fault(Fault::ServerError { times: 1 });
    let r = e.get("limits").await;
    assert_eq!(r.status, 500);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text.starts_with("<html>"));
    assert_eq!(e.get("limits").await.status, 200);
    assert_eq!(e.org.api_requests_used(), 1);
}

#[tokio::test]
async fn latency_delays_responses() {
    let e = env().await;
    e.org.set_fault(Fault::Latency(Duration::from_millis(150)));
    let t = std::time::Instant::now();
    assert_eq!(e.get("limits").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn hidden_field_is_invalid_in_queries_and_absent_from_describe() {
    let e = env().await;
    let id = e.org.insert(
        "Lead",
        json!({"LastName":"a","Company":"b","Email":"a@b.jp"}),
    );
    e.org.set_fault(Fault::HiddenField {
        object: "Lead".into(),
        field: "Email".into(),
    });
    let r = e.query("SELECT Id, Email FROM Lead").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "INVALID_FIELD"));
    assert!(
        r.json()[0]["message"]
            .as_str()
            .unwrap()
            .contains("No such column 'Email' on entity 'Lead'.")
    );
    let d = e.get("sobjects/Lead/describe").await.json();
    assert!(
        !d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Email")
    );
    let g = e.get(&format!("sobjects/Lead/{id}")).await.json();
    assert!(g.get("Email").is_none());
    let r = e
        .req(
            "PATCH",
            &format!("sobjects/Lead/{id}"),
            Some(json!({"Email":"x@y.jp"})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "INVALID_FIELD");
    // The admin's view still has it.
    assert_eq!(e.org.get("Lead", &id).unwrap()["Email"], "a@b.jp");
}

#[tokio::test]
async fn validation_rule_on_create() {
    let e = env().await;
    e.org.set_fault(Fault::ValidationRule {
        object: "Contact".into(),
        message: "電話番号は必須です".into(),
    });
    let r = e
        .req(
            "POST",
            "sobjects/Contact",
            Some(json!({"LastName":"a"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!([{"message":"電話番号は必須です","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","fields":[]}])
    );
    assert_eq!(
        e.req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"a","Company":"b"})),
            &[]
        )
        .await
        .status,
        201
    );
}

#[tokio::test]
async fn duplicate_rule_and_allow_save_header() {
    let e = env().await;
    let existing = e.org.insert(
        "Lead",
        json!({"LastName":"既存","Company":"X","Phone":"03-1234-5678"}),
    );
    let contact = e.org.insert(
        "Contact",
        json!({"LastName":"既存C","Phone":"+81 3 1234 5678"}),
    );
    e.org.set_fault(Fault::DuplicateRule {
        object: "Lead".into(),
    });
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"新規","Company":"Y","Phone":"0312345678"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j[0]["errorCode"], "DUPLICATES_DETECTED");
    let dr = &j[0]["duplicateResut"];
    assert_eq!(dr["duplicateRuleEntityType"], "Lead");
    assert_eq!(dr["matchResults"][0]["entityType"], "Lead");
    assert_eq!(
        dr["matchResults"][0]["matchRecords"][0]["record"]["Id"],
        existing
    );
    assert_eq!(
        dr["matchResults"][1]["matchRecords"][0]["record"]["Id"],
        contact
    );
    assert_eq!(
        dr["matchResults"][0]["matchRecords"][0]["record"]["attributes"]["url"],
        format!("/services/data/v{V}/sobjects/Lead/{existing}")
    );
    // Name match too.
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"既存","Company":"Z"})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "DUPLICATES_DETECTED");
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"新規","Company":"Y","Phone":"0312345678"})),
            &[("Sforce-Duplicate-Rule-Header", "allowSave=true")],
        )
        .await;
    assert_eq!(r.status, 201);
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"別人","Company":"Y","Phone":"0399999999"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn search_lag_with_controllable_clock() {
    let e = env().await;
    e.org.set_time("2025-03-01T09:00:00Z".parse().unwrap());
    e.org.set_fault(Fault::SearchLag(Duration::from_secs(60)));
    e.org
        .insert("Contact", json!({"LastName":"new","Phone":"090-1111-2222"}));
    let q: String = url::form_urlencoded::byte_serialize(
        b"FIND {09011112222} IN PHONE FIELDS RETURNING Contact(Id)",
    )
    .collect();
    let path = format!("search?q={q}");
    assert_eq!(
        e.get(&path).await.json()["searchRecords"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    e.org.advance(Duration::from_secs(61));
    assert_eq!(
        e.get(&path).await.json()["searchRecords"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e.org.insert(
        "Contact",
        json!({"LastName":"newer","Phone":"090-1111-2222"}),
    );
    assert_eq!(
        e.get(&path).await.json()["searchRecords"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e.org.index_now();
    assert_eq!(
        e.get(&path).await.json()["searchRecords"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn seeding_is_queryable_and_orgs_are_isolated() {
    let e = env().await;
    let s = e.org.seed_japanese(3000, 42);
    assert_eq!(s.leads + s.contacts, 3000);
    let r = e
        .query(
            "SELECT Id, Name, Phone, Company FROM Lead WHERE IsConverted = false AND Phone != null",
        )
        .await
        .json();
    assert!(r["totalSize"].as_i64().unwrap() > 1000);
    let users = e
        .query("SELECT Id, Email, IsActive FROM User WHERE IsActive = false")
        .await
        .json();
    assert!(users["totalSize"].as_i64().unwrap() >= 2);
    let other = e.sim.add_org(sf_sim::OrgSpec {
        name: "Other".into(),
        ..Default::default()
    });
    assert_ne!(other.instance_url(), e.org.instance_url());
    assert_ne!(other.org_id(), e.org.org_id());
    // A token of one org is not valid on another.
    let r = e
        .http
        .get(format!(
            "{}/services/data/v{V}/limits",
            other.instance_url()
        ))
        .bearer_auth(&e.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(other.records("Lead").len(), 0);
    assert!(e.sim.org(&other.org_id()).is_some());
}

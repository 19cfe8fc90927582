//! Executor behaviour: statuses, refresh, retries, limits, request ids.

use crate::support::*;
use domain::ports::{ApiUsageView, RecordQuery, SalesforceReader, SalesforceWriter, TaskPatch};
use domain::{OrgProblem, SfError, SfObject};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, header_exists, method, path};
use wiremock::{Mock, ResponseTemplate};

fn lead_query() -> RecordQuery {
    RecordQuery {
        object: SfObject::Lead,
        since: None,
        modified_after: None,
        only_with_phone: true,
        exclude_converted: true,
    }
}

fn empty_page() -> serde_json::Value {
    json!({"totalSize": 0, "done": true, "records": []})
}

#[tokio::test]
async fn ok_200_sends_bearer_and_request_id_and_tracks_usage() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(header("Authorization", "Bearer old-token"))
        .and(header_exists("X-Request-Id"))
        .respond_with(sf_json(200, fixture("query_lead_page1.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    assert_eq!(e.client.usage(&e.t), None);
    let page = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.total_size, 3);
    assert!(page.next.is_some());
    let usage = e.client.usage(&e.t).unwrap();
    assert_eq!((usage.used, usage.max), (18, 5000));
    assert_eq!(e.client.requests_sent(&e.t), 1);
}

#[tokio::test]
async fn caller_request_id_is_passed_through() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(header("X-Request-Id", "req-abc-123"))
        .respond_with(sf_json(200, empty_page()))
        .expect(1)
        .mount(&e.instance)
        .await;
    sf_adapter::with_request_id(
        "req-abc-123",
        e.client.fetch_page(&e.t, &lead_query(), None),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn created_201_and_no_content_204() {
    let e = env().await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/sobjects/Account")))
        .and(body_string_contains("\"Name\":\"CallConnect 取引先\""))
        .respond_with(sf_json(
            201,
            json!({"id": "0015g00000Q1w2EAAR", "success": true, "errors": []}),
        ))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/sobjects/Task/00T5g00000Ab1AAEAZ")))
        .and(body_string_contains("\"Description\":\"new\""))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&e.instance)
        .await;
    let id = e
        .client
        .create_account(&e.t, "CallConnect 取引先")
        .await
        .unwrap();
    assert_eq!(id, sid("0015g00000Q1w2EAAR"));
    let patch = TaskPatch {
        description: Some("new".into()),
        ..TaskPatch::default()
    };
    e.client
        .update_task(&e.t, &sid("00T5g00000Ab1AAEAZ"), &patch)
        .await
        .unwrap();
    // An empty patch sends nothing.
    e.client
        .update_task(&e.t, &sid("00T5g00000Ab1AAEAZ"), &TaskPatch::default())
        .await
        .unwrap();
    assert_eq!(e.client.requests_sent(&e.t), 2);
}

#[tokio::test]
async fn error_array_400_is_bad_data_naming_object_and_field() {
    let e = env().await;
    Mock::given(method("POST"))
        .respond_with(sf_json(400, fixture("error_required_missing.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let err = e.client.create_account(&e.t, "x").await.unwrap_err();
    assert!(
        matches!(&err, SfError::BadData { code, object: Some(o), field: Some(f), .. } if code == "REQUIRED_FIELD_MISSING" && o == "Account" && f == "Company"),
        "{err:?}"
    );
}

// R7/§1.5: a 401 refreshes once, retries with the new token on the new instance, saves both.
#[tokio::test]
async fn unauthorized_refreshes_once_and_retries_on_new_instance() {
    let e = env().await;
    let new_instance = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer old-token"))
        .respond_with(sf_json(401, fixture("error_session_expired.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .and(body_string_contains("client_id=client-id"))
        .respond_with(sf_json(200, token_body("new-token", &new_instance.uri())))
        .expect(1)
        .mount(&e.login)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(header("Authorization", "Bearer new-token"))
        .respond_with(sf_json(200, empty_page()))
        .expect(2)
        .mount(&new_instance)
        .await;
    e.client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    assert_eq!(
        *e.store.updates.lock().unwrap(),
        vec![("new-token".to_owned(), new_instance.uri())]
    );
    // The next request goes straight to the new instance with the new token.
    e.client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    assert_eq!(count(&e.login).await, 1);
}

// Refresh-token rotation: a returned refresh token is saved with the full credentials.
#[tokio::test]
async fn rotated_refresh_token_is_saved() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer old-token"))
        .respond_with(sf_json(401, fixture("error_session_expired.json")))
        .mount(&e.instance)
        .await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer new-token"))
        .respond_with(sf_json(200, empty_page()))
        .mount(&e.instance)
        .await;
    let mut body = token_body("new-token", &e.instance.uri());
    body["refresh_token"] = json!("refresh-2");
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(sf_json(200, body))
        .expect(1)
        .mount(&e.login)
        .await;
    e.client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    assert_eq!(*e.store.saves.lock().unwrap(), vec!["refresh-2".to_owned()]);
}

// §1.9: never a refresh loop; a 401 right after a refresh is final.
#[tokio::test]
async fn unauthorized_after_refresh_is_needs_reconnect_without_loop() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(sf_json(401, fixture("error_session_expired.json")))
        .expect(2)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(sf_json(200, token_body("new-token", &e.instance.uri())))
        .expect(1)
        .mount(&e.login)
        .await;
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SfError::NeedsReconnect { .. }), "{err:?}");
}

// C2: "This session is not valid for use with the REST API" after a refresh → IP restricted.
#[tokio::test]
async fn rest_session_refused_after_refresh_is_ip_restricted() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer old-token"))
        .respond_with(sf_json(401, fixture("error_session_expired.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer new-token"))
        .respond_with(sf_json(401, fixture("error_session_ip.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .respond_with(sf_json(200, token_body("new-token", &e.instance.uri())))
        .expect(1)
        .mount(&e.login)
        .await;
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SfError::OrgConfig {
                problem: OrgProblem::IpRestricted,
                ..
            }
        ),
        "{err:?}"
    );
}

// C2, jsforce's rule: a session refused for the REST API is not refreshed at all.
#[tokio::test]
async fn rest_session_refused_first_time_does_not_refresh() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(sf_json(401, fixture("error_session_ip.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .respond_with(sf_json(200, token_body("new-token", &e.instance.uri())))
        .expect(0)
        .mount(&e.login)
        .await;
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SfError::OrgConfig {
            problem: OrgProblem::IpRestricted,
            ..
        }
    ));
}

#[tokio::test]
async fn invalid_grant_on_refresh_is_needs_reconnect() {
    for (desc, ip) in [
        ("expired access/refresh token", false),
        ("ip restricted", true),
    ] {
        let e = env().await;
        Mock::given(method("GET"))
            .respond_with(sf_json(401, fixture("error_session_expired.json")))
            .expect(1)
            .mount(&e.instance)
            .await;
        Mock::given(method("POST"))
            .and(path("/services/oauth2/token"))
            .respond_with(sf_json(
                400,
                json!({"error": "invalid_grant", "error_description": desc}),
            ))
            .expect(1)
            .mount(&e.login)
            .await;
        let err = e
            .client
            .fetch_page(&e.t, &lead_query(), None)
            .await
            .unwrap_err();
        if ip {
            assert!(
                matches!(
                    err,
                    SfError::OrgConfig {
                        problem: OrgProblem::IpRestricted,
                        ..
                    }
                ),
                "{err:?}"
            );
        } else {
            assert!(matches!(err, SfError::NeedsReconnect { .. }), "{err:?}");
        }
        assert!(e.store.updates.lock().unwrap().is_empty());
    }
}

// C3: the daily allowance is spent → Throttled, not retried.
#[tokio::test]
async fn request_limit_exceeded_is_throttled_without_retry() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(sf_json(403, fixture("error_request_limit.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SfError::Throttled { .. }), "{err:?}");
    assert_eq!(e.client.usage(&e.t).map(|u| u.used), Some(18));
}

#[tokio::test]
async fn html_5xx_is_retried_then_transient() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_raw("<html><body>Maintenance</body></html>", "text/html"),
        )
        .expect(3)
        .mount(&e.instance)
        .await;
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SfError::Transient { code, .. } if code == "HTTP_503"),
        "{err:?}"
    );
    assert_eq!(e.client.requests_sent(&e.t), 3);
}

#[tokio::test]
async fn transient_5xx_then_success() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("GET"))
        .respond_with(sf_json(200, empty_page()))
        .mount(&e.instance)
        .await;
    e.client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    assert_eq!(count(&e.instance).await, 2);
}

// A create that may have been applied is not resent; a lock error proves it was not.
#[tokio::test]
async fn creates_are_resent_only_when_refused_before_processing() {
    let e = env().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&e.instance)
        .await;
    let err = e.client.create_account(&e.t, "x").await.unwrap_err();
    assert!(matches!(err, SfError::Transient { .. }));

    let e = env().await;
    Mock::given(method("POST"))
        .respond_with(sf_json(400, fixture("error_lock_row.json")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .respond_with(sf_json(
            201,
            json!({"id": "0015g00000Q1w2EAAR", "success": true, "errors": []}),
        ))
        .mount(&e.instance)
        .await;
    e.client.create_account(&e.t, "x").await.unwrap();
    assert_eq!(count(&e.instance).await, 2);
}

#[tokio::test]
async fn timeout_is_transient() {
    let e = env_with(|c| {
        c.timeout = Duration::from_millis(50);
        c.max_attempts = 2;
    })
    .await;
    Mock::given(method("GET"))
        .respond_with(sf_json(200, empty_page()).set_delay(Duration::from_secs(2)))
        .expect(2)
        .mount(&e.instance)
        .await;
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SfError::Transient { code, .. } if code == "TIMEOUT"),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let e = env().await;
    // A port nothing listens on: bind, read the port, drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    e.store
        .creds
        .lock()
        .unwrap()
        .insert(e.t.clone(), creds(&format!("http://127.0.0.1:{port}")));
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SfError::Transient { code, .. } if code == "CONNECTION"),
        "{err:?}"
    );
    assert_eq!(e.client.requests_sent(&e.t), 3);
}

// Concurrent 401s of one tenant share one refresh.
#[tokio::test]
async fn concurrent_refreshes_are_coalesced() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer old-token"))
        .respond_with(sf_json(401, fixture("error_session_expired.json")))
        .mount(&e.instance)
        .await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer new-token"))
        .respond_with(sf_json(200, empty_page()))
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(
            sf_json(200, token_body("new-token", &e.instance.uri()))
                .set_delay(Duration::from_millis(20)),
        )
        .expect(1)
        .mount(&e.login)
        .await;
    let q = lead_query();
    let calls = (0..8).map(|_| e.client.fetch_page(&e.t, &q, None));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(e.store.updates.lock().unwrap().len(), 1);
    // Credentials were loaded from the store once, then cached.
    assert_eq!(*e.store.loads.lock().unwrap(), 1);
}

#[tokio::test]
async fn tenant_without_credentials_is_not_connected_and_sends_nothing() {
    let e = env().await;
    e.store.creds.lock().unwrap().clear();
    let err = e
        .client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap_err();
    assert!(matches!(&err, SfError::NeedsReconnect { code, .. } if code == "NOT_CONNECTED"));
    assert_eq!(count(&e.instance).await, 0);
}

#[tokio::test]
async fn forget_reloads_credentials() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(sf_json(200, empty_page()))
        .mount(&e.instance)
        .await;
    e.client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    e.client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    assert_eq!(*e.store.loads.lock().unwrap(), 1);
    e.client.forget(&e.t);
    e.client
        .fetch_page(&e.t, &lead_query(), None)
        .await
        .unwrap();
    assert_eq!(*e.store.loads.lock().unwrap(), 2);
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let e = env().await;
    let dbg = format!(
        "{:?} {:?} {:?}",
        e.client,
        e.client.config(),
        creds("https://x.example")
    );
    for secret in ["old-token", "refresh-1", "client-secret-XYZ"] {
        assert!(!dbg.contains(secret), "{secret} leaked: {dbg}");
    }
}

// Whole-call errors of a single create are the outer error; record errors are inner.
#[tokio::test]
async fn single_task_errors_are_classified() {
    let e = env().await;
    Mock::given(method("POST"))
        .respond_with(sf_json(403, fixture("error_request_limit.json")))
        .mount(&e.instance)
        .await;
    let r = e
        .client
        .create_tasks(&e.t, &[crate::writes::draft(0)])
        .await;
    assert!(matches!(r, Err(SfError::Throttled { .. })), "{r:?}");
}

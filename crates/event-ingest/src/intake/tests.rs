//! The intake driven through its Router, with an in-memory event log and secret store.

use super::*;
use crate::parse::tests::{JSON_EXAMPLE, form_example};
use crate::signature::sign;
use axum::body::Body;
use chrono::{DateTime, TimeZone, Utc};
use domain::ports::{EventOutcome, StoredEvent};
use domain::{CallEvent, CallId, EventKind};
use futures::FutureExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

const TENANT: &str = "acme";
const SECRET: &str = "whsec_acme_1";
const FORM: &str = "application/x-www-form-urlencoded";

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_000_000, 0).unwrap()
}

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

/// Stores what `accept` is given, deduplicating on (tenant, call id, event) like the real store.
#[derive(Default)]
struct FakeLog {
    calls: AtomicUsize,
    fail: bool,
    stored: Mutex<Vec<(TenantId, RawPayload, CallEvent)>>,
    ids: Mutex<HashMap<(TenantId, CallId, EventKind), i64>>,
}

impl FakeLog {
    fn failing() -> Self {
        Self {
            fail: true,
            ..Self::default()
        }
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn stored(&self) -> Vec<(TenantId, RawPayload, CallEvent)> {
        self.stored.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventLog for FakeLog {
    async fn accept(
        &self,
        t: &TenantId,
        raw: &RawPayload,
        event: &CallEvent,
        _now: DateTime<Utc>,
    ) -> Result<Accepted, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        let mut ids = self.ids.lock().unwrap();
        let key = (t.clone(), event.call_id.clone(), event.kind);
        if let Some(&event_id) = ids.get(&key) {
            return Ok(Accepted::Duplicate { event_id });
        }
        let event_id = i64::try_from(ids.len()).unwrap() + 1;
        ids.insert(key, event_id);
        self.stored
            .lock()
            .unwrap()
            .push((t.clone(), raw.clone(), event.clone()));
        Ok(Accepted::New { event_id })
    }
    async fn event(&self, _: &TenantId, _: i64) -> Result<Option<StoredEvent>, StoreError> {
        unimplemented!("not used by the intake")
    }
    async fn call_events(&self, _: &TenantId, _: &CallId) -> Result<Vec<StoredEvent>, StoreError> {
        unimplemented!("not used by the intake")
    }
    async fn set_outcome(&self, _: &TenantId, _: i64, _: &EventOutcome) -> Result<(), StoreError> {
        unimplemented!("not used by the intake")
    }
}

#[derive(Default)]
struct FakeSecrets {
    fail: bool,
    tenants: HashMap<String, Vec<&'static str>>,
}

impl FakeSecrets {
    fn standard() -> Self {
        Self {
            fail: false,
            tenants: HashMap::from([
                (
                    TENANT.to_owned(),
                    vec!["whsec_old", SECRET, "whsec_your_tenant_secret"],
                ),
                ("other".to_owned(), vec!["whsec_other"]),
                ("mute".to_owned(), vec![]),
            ]),
        }
    }
}

#[async_trait]
impl TenantSecrets for FakeSecrets {
    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError> {
        if self.fail {
            return Err(StoreError::Unavailable("secrets table locked".into()));
        }
        Ok(self.tenants.get(t.as_str()).map(|secrets| {
            secrets
                .iter()
                .map(|s| SecretString::from((*s).to_owned()))
                .collect()
        }))
    }
}

struct Harness {
    log: Arc<FakeLog>,
    notify: Arc<Notify>,
    router: Router,
}

fn harness_with(log: FakeLog, secrets: FakeSecrets, limits: IntakeLimits) -> Harness {
    let log = Arc::new(log);
    let notify = Arc::new(Notify::new());
    let state = IntakeState::new(log.clone(), Arc::new(secrets), Arc::new(FixedClock))
        .with_limits(limits)
        .with_notifier(notify.clone());
    Harness {
        log,
        notify,
        router: webhook_router(state),
    }
}

fn harness() -> Harness {
    harness_with(
        FakeLog::default(),
        FakeSecrets::standard(),
        IntakeLimits::default(),
    )
}

fn signed(tenant: &str, content_type: &str, body: Vec<u8>, secret: &str) -> Request {
    let ts = now().timestamp();
    let sig = sign(&SecretString::from(secret.to_owned()), ts, &body);
    Request::post(format!("/webhooks/{tenant}/calls"))
        .header(CONTENT_TYPE, content_type)
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, sig)
        .body(Body::from(body))
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
    text: String,
}

async fn send(h: &Harness, request: Request) -> Answer {
    let response = h.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap();
    Answer {
        status,
        headers,
        json,
        text,
    }
}

/// Whether the worker was woken: `notify_one` stores a permit that makes `notified()` ready on
/// its first poll (and consumes it).
fn poked(notify: &Notify) -> bool {
    notify.notified().now_or_never().is_some()
}

#[tokio::test]
async fn r27_same_event_delivered_twice_is_acknowledged_2xx_both_times() {
    let h = harness();
    let first = send(&h, signed(TENANT, FORM, form_example(), SECRET)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    assert_eq!(first.json, json!({"status": "accepted", "event_id": 1}));
    assert!(poked(&h.notify), "a new event wakes the worker");

    let again = send(&h, signed(TENANT, FORM, form_example(), SECRET)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json, json!({"status": "duplicate", "event_id": 1}));
    assert!(!poked(&h.notify), "a duplicate queues nothing");
    assert_eq!(h.log.stored().len(), 1);
}

#[tokio::test]
async fn r25_the_same_call_with_another_event_is_a_new_event() {
    let h = harness();
    send(&h, signed(TENANT, FORM, form_example(), SECRET)).await;
    let body = String::from_utf8(form_example())
        .unwrap()
        .replace("event=call_ended", "event=memo_saved");
    let answer = send(&h, signed(TENANT, FORM, body.into_bytes(), SECRET)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.json["event_id"], 2);
}

#[tokio::test]
async fn stored_payload_is_the_raw_body_the_parsed_event_and_the_request_id() {
    let h = harness();
    let mut request = signed(
        TENANT,
        "application/x-www-form-urlencoded; charset=UTF-8",
        form_example(),
        SECRET,
    );
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-123"));
    let answer = send(&h, request).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.headers[REQUEST_ID_HEADER], "req-123");

    let stored = h.log.stored();
    let (tenant, raw, event) = &stored[0];
    assert_eq!(tenant.as_str(), TENANT);
    assert_eq!(raw.body, form_example());
    assert_eq!(
        raw.content_type,
        "application/x-www-form-urlencoded; charset=UTF-8"
    );
    assert_eq!(raw.request_id.as_deref(), Some("req-123"));
    assert_eq!(*event, parse::parse_form(&form_example()).unwrap());
}

#[tokio::test]
async fn a_request_id_is_generated_when_none_is_sent() {
    let h = harness();
    let answer = send(&h, signed(TENANT, FORM, form_example(), SECRET)).await;
    let generated = answer.headers[REQUEST_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!generated.is_empty());
    assert_eq!(
        h.log.stored()[0].1.request_id.as_deref(),
        Some(generated.as_str())
    );
}

#[tokio::test]
async fn r26_json_transcription_is_accepted() {
    let h = harness();
    let answer = send(
        &h,
        signed(
            TENANT,
            "application/json",
            JSON_EXAMPLE.as_bytes().to_vec(),
            SECRET,
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    let event = &h.log.stored()[0].2;
    assert_eq!(event.kind, EventKind::TranscriptionCompleted);
    assert_eq!(event.transcript.as_ref().unwrap().recordings.len(), 2);
}

#[tokio::test]
async fn r27_withheld_number_is_stored_and_acknowledged() {
    let h = harness();
    let body = "event=missed&record%5Bid%5D=900&contact%5Bnumber%5D=%E9%9D%9E%E9%80%9A%E7%9F%A5&record%5Bduration%5D=0";
    let answer = send(&h, signed(TENANT, FORM, body.into(), SECRET)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(
        h.log.stored()[0].2.party,
        domain::PartyNumber::NoNumber {
            raw: "非通知".into()
        }
    );
}

/// The README's curl example, with the signature its openssl line prints for this timestamp.
#[tokio::test]
async fn readme_curl_example_is_accepted() {
    let h = harness();
    let body = "event=missed&record%5Bid%5D=22232&record%5Bdirection%5D=inbound&contact%5Bnumber%5D=03-5555-0101&record%5Bduration%5D=0";
    let request = Request::post("/webhooks/acme/calls")
        .header(CONTENT_TYPE, FORM)
        .header("X-Callsync-Timestamp", "1795000000")
        .header(
            "X-Callsync-Signature",
            "v1=5a6d2814cf272bf246061407fc4800d999bfe7e8c5738d3df0dc6bf95b7b2a43",
        )
        .body(Body::from(body))
        .unwrap();
    let answer = send(&h, request).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(h.log.stored()[0].2.kind, EventKind::Missed);
}

#[tokio::test]
async fn the_tenants_rotated_secrets_each_authenticate() {
    let h = harness();
    let answer = send(&h, signed(TENANT, FORM, form_example(), "whsec_old")).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
}

/// Asserts the status and code, and that nothing reached the event log.
async fn refused(h: &Harness, request: Request, status: StatusCode, code: &str) -> Answer {
    let answer = send(h, request).await;
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json["code"], code, "{}", answer.text);
    assert!(
        answer.json["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(h.log.calls(), 0, "accept was called");
    assert!(!poked(&h.notify));
    answer
}

#[tokio::test]
async fn invalid_fields_get_400_naming_each_and_nothing_is_stored() {
    let h = harness();
    let body = "event=hangup&record%5Bid%5D=&record%5Bduration%5D=-1&record%5Bstarted_at%5D=noon";
    let answer = refused(
        &h,
        signed(TENANT, FORM, body.into(), SECRET),
        StatusCode::BAD_REQUEST,
        "invalid_fields",
    )
    .await;
    let fields: Vec<&str> = answer.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "event",
            "record[id]",
            "record[started_at]",
            "record[duration]"
        ]
    );
    assert!(answer.json["errors"][0]["problem"].as_str().is_some());
}

#[tokio::test]
async fn invalid_utf8_gets_400_not_a_panic() {
    let h = harness();
    let body = b"event=missed&record%5Bid%5D=1&contact%5Bname%5D=\xff\xfe".to_vec();
    refused(
        &h,
        signed(TENANT, FORM, body, SECRET),
        StatusCode::BAD_REQUEST,
        "invalid_fields",
    )
    .await;
    let body = b"{\"event\":\"missed\",\"record\":{\"id\":\"\xc3\x28\"}}".to_vec();
    refused(
        &h,
        signed(TENANT, "application/json", body, SECRET),
        StatusCode::BAD_REQUEST,
        "invalid_fields",
    )
    .await;
}

#[tokio::test]
async fn bad_signatures_get_401_without_detail_and_nothing_is_stored() {
    let h = harness();
    let body = form_example();
    let ts = now().timestamp();
    let good = sign(&SecretString::from(SECRET.to_owned()), ts, &body);
    let base = || Request::post(format!("/webhooks/{TENANT}/calls")).header(CONTENT_TYPE, FORM);
    let cases: Vec<(&str, Request)> = vec![
        ("no headers", base().body(Body::from(body.clone())).unwrap()),
        (
            "no signature",
            base()
                .header(TIMESTAMP_HEADER, ts.to_string())
                .body(Body::from(body.clone()))
                .unwrap(),
        ),
        (
            "no timestamp",
            base()
                .header(SIGNATURE_HEADER, &good)
                .body(Body::from(body.clone()))
                .unwrap(),
        ),
        (
            "another tenant's secret",
            signed(TENANT, FORM, body.clone(), "whsec_other"),
        ),
        (
            "tampered body",
            base()
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, &good)
                .body(Body::from(
                    String::from_utf8(body.clone())
                        .unwrap()
                        .replace("192", "193"),
                ))
                .unwrap(),
        ),
        (
            "expired",
            base()
                .header(TIMESTAMP_HEADER, (ts - 301).to_string())
                .header(
                    SIGNATURE_HEADER,
                    sign(&SecretString::from(SECRET.to_owned()), ts - 301, &body),
                )
                .body(Body::from(body.clone()))
                .unwrap(),
        ),
        (
            "from the future",
            base()
                .header(TIMESTAMP_HEADER, (ts + 301).to_string())
                .header(
                    SIGNATURE_HEADER,
                    sign(&SecretString::from(SECRET.to_owned()), ts + 301, &body),
                )
                .body(Body::from(body.clone()))
                .unwrap(),
        ),
        (
            "tenant with no secret",
            signed("mute", FORM, body.clone(), ""),
        ),
    ];
    for (what, request) in cases {
        let answer = refused(&h, request, StatusCode::UNAUTHORIZED, "invalid_signature").await;
        // Never says which secret, never echoes the signature.
        assert!(!answer.text.contains(SECRET), "{what}");
        assert!(!answer.text.contains("whsec"), "{what}");
        assert!(!answer.text.contains(&good[3..]), "{what}");
    }
}

#[tokio::test]
async fn unknown_or_invalid_tenants_get_404_and_nothing_is_stored() {
    let h = harness();
    for tenant in ["nobody", "Bad%20Tenant", "ACME", "%FF"] {
        refused(
            &h,
            signed(tenant, FORM, form_example(), SECRET),
            StatusCode::NOT_FOUND,
            "unknown_tenant",
        )
        .await;
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_nothing_is_stored() {
    let h = harness_with(
        FakeLog::default(),
        FakeSecrets::standard(),
        IntakeLimits {
            max_body_bytes: 100,
            ..IntakeLimits::default()
        },
    );
    let big = form_example();
    assert!(big.len() > 100);
    // Declared length over the limit.
    let mut request = signed(TENANT, FORM, big.clone(), SECRET);
    request
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(big.len()));
    refused(
        &h,
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    // No declared length: a streamed body is cut off at the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(16).map(|c| Ok(c.to_vec())).collect();
    let mut request = signed(TENANT, FORM, Vec::new(), SECRET);
    *request.body_mut() = Body::from_stream(futures::stream::iter(chunks));
    refused(
        &h,
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn wrong_content_types_get_415_and_nothing_is_stored() {
    let h = harness();
    for content_type in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json; charset=shift_jis",
        "application/x-www-form-urlencoded; charset=EUC-JP",
    ] {
        refused(
            &h,
            signed(TENANT, content_type, form_example(), SECRET),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    let mut request = signed(TENANT, FORM, form_example(), SECRET);
    request.headers_mut().remove(CONTENT_TYPE);
    refused(
        &h,
        request,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn content_types_with_charset_and_case_are_accepted() {
    let h = harness();
    let answer = send(
        &h,
        signed(
            TENANT,
            "Application/JSON; charset=\"utf-8\"",
            JSON_EXAMPLE.as_bytes().to_vec(),
            SECRET,
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
}

#[tokio::test]
async fn store_failure_gets_503_with_retry_after_and_nothing_is_accepted() {
    let h = harness_with(
        FakeLog::failing(),
        FakeSecrets::standard(),
        IntakeLimits::default(),
    );
    let answer = send(&h, signed(TENANT, FORM, form_example(), SECRET)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json["code"], "unavailable");
    assert_eq!(answer.headers[RETRY_AFTER], "30");
    assert!(
        !answer.text.contains("connection refused"),
        "internal error text leaked"
    );
    assert_eq!(h.log.calls(), 1);
    assert!(h.log.stored().is_empty());
    assert!(!poked(&h.notify));
}

#[tokio::test]
async fn secret_store_failure_gets_503_and_nothing_is_stored() {
    let h = harness_with(
        FakeLog::default(),
        FakeSecrets {
            fail: true,
            ..FakeSecrets::default()
        },
        IntakeLimits::default(),
    );
    let answer = refused(
        &h,
        signed(TENANT, FORM, form_example(), SECRET),
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert!(answer.headers.contains_key(RETRY_AFTER));
}

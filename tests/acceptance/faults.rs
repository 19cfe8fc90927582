//! Resilience under Salesforce faults (every `sf_sim::Fault` class) and crashes at each named
//! fail point, with the real store and Salesforce client. Nothing is dropped: every fault ends
//! with the item done, held until fixed, or dead-lettered with its cause in Japanese and
//! English and retryable — and with exactly one Task per call once the cause is gone (R25, R40,
//! C2, C3).

use crate::{answered, missed, post};
use chrono::{Duration as Days, Utc};
use domain::ports::{EventOutcome, HoldReason, QueueDepth, SyncKind, WorkItem, WorkQueue};
use domain::usecases::call_logging::{FailPoint, FailPoints};
use domain::{ErrorClass, IntegrationSettings, SfObject};
use it::{World, drain};
use serde_json::json;
use sf_sim::Fault;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NUMBER: &str = "03-5555-0201";

/// A world whose org has a Contact with [`NUMBER`], imported and linked.
async fn linked() -> World {
    let w = World::new().await;
    w.org.insert(
        "Contact",
        json!({"LastName": "耐障害", "FirstName": "花子", "Phone": NUMBER}),
    );
    w.sync()
        .run(&w.t, SyncKind::Initial, &|_| {})
        .await
        .unwrap();
    w
}

async fn depth(w: &World) -> QueueDepth {
    w.store.depth(&w.t).await.unwrap()
}

fn tasks_for(w: &World, call_object: &str) -> usize {
    w.tasks()
        .iter()
        .filter(|t| t["CallObject"] == call_object)
        .count()
}

/// The call's item is finished: nothing pending, held or dead, and the event is written
/// (created; or updated, when a rerun found the Task its crashed attempt created).
async fn assert_done(w: &World, event_id: i64) {
    assert_eq!(depth(w).await, QueueDepth::default(), "queue is empty");
    let outcome = w.store.event_outcome(&w.t, event_id).await.unwrap();
    assert!(
        matches!(
            outcome,
            Some(EventOutcome::TaskCreated { .. } | EventOutcome::TaskUpdated { .. })
        ),
        "{outcome:?}"
    );
}

async fn post_call(w: &World, call_id: &str) -> i64 {
    let (status, body) = post(w, &answered(call_id, NUMBER)).await;
    assert_eq!(status, 202, "{body}");
    body["event_id"].as_i64().unwrap()
}

fn count_requests(w: &World, pred: impl Fn(&sf_sim::RecordedRequest) -> bool) -> usize {
    w.org.requests().iter().filter(|r| pred(r)).count()
}

// ---------------------------------------------------------------------------------------------
// Survived with retry.

#[tokio::test]
async fn lock_row_is_retried_and_written_once() {
    let w = linked().await;
    let id = post_call(&w, "f-lock").await;
    w.org.set_fault(Fault::LockRow { times: 2 });
    drain(&w.worker("w1", 200, None)).await;
    assert_done(&w, id).await;
    assert_eq!(tasks_for(&w, "f-lock"), 1);
    let refused = count_requests(&w, |r| {
        r.method == "POST" && r.path.ends_with("/sobjects/Task") && r.status == 400
    });
    assert_eq!(refused, 2, "both locked inserts were retried");
}

#[tokio::test]
async fn server_errors_are_retried_and_written_once() {
    let w = linked().await;
    let id = post_call(&w, "f-500").await;
    w.org.set_fault(Fault::ServerError { times: 3 });
    drain(&w.worker("w1", 200, None)).await;
    assert_done(&w, id).await;
    assert_eq!(tasks_for(&w, "f-500"), 1);
    assert!(
        count_requests(&w, |r| r.status == 500) >= 1,
        "the fault fired"
    );
}

#[tokio::test]
async fn latency_below_the_timeout_is_only_slow() {
    let w = linked().await;
    let id = post_call(&w, "f-slow").await;
    w.org.set_fault(Fault::Latency(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    let r = drain(&w.worker("w1", 200, None)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((r.done, r.retried, r.dead), (1, 0, 0), "{r:?}");
    assert_done(&w, id).await;
    assert_eq!(tasks_for(&w, "f-slow"), 1);
}

#[tokio::test]
async fn expired_session_is_refreshed_and_written_once() {
    let w = linked().await;
    let id = post_call(&w, "f-sess").await;
    // The client holds a token from the import; expire every session of the org.
    w.org.set_fault(Fault::SessionExpired);
    let refreshes_before = count_requests(&w, |r| r.path.contains("/oauth2/token"));
    let r = drain(&w.worker("w1", 200, None)).await;
    assert_eq!((r.done, r.held, r.dead), (1, 0, 0), "{r:?}");
    assert_done(&w, id).await;
    assert_eq!(tasks_for(&w, "f-sess"), 1);
    assert!(
        count_requests(&w, |r| r.path.contains("/oauth2/token")) > refreshes_before,
        "refreshed"
    );
    assert!(
        count_requests(&w, |r| r.status == 401) >= 1,
        "the old session was refused first"
    );
}

// ---------------------------------------------------------------------------------------------
// Held until fixed.

#[tokio::test]
async fn revoked_refresh_token_holds_the_call_until_reconnect() {
    let w = linked().await;
    let id = post_call(&w, "f-revoked").await;
    w.org.set_fault(Fault::SessionExpired);
    w.org.set_fault(Fault::RefreshRevoked);
    let worker = w.worker("w1", 200, None);
    let r = drain(&worker).await;
    assert_eq!((r.held, r.dead), (1, 0), "{r:?}");
    let d = depth(&w).await;
    assert_eq!((d.held, d.dead, d.ready, d.waiting), (1, 0, 0, 0), "{d:?}");
    assert_eq!(tasks_for(&w, "f-revoked"), 0);
    // Held items are not retried by themselves.
    assert_eq!(drain(&worker).await.claimed, 0);
    // The admin reconnects (the OAuth callback stores new tokens and releases held calls).
    w.org.clear_faults();
    w.connect().await;
    assert_eq!(
        w.store
            .release_held(&w.t, HoldReason::NeedsReconnect)
            .await
            .unwrap(),
        1
    );
    drain(&worker).await;
    assert_done(&w, id).await;
    assert_eq!(tasks_for(&w, "f-revoked"), 1);
}

#[tokio::test]
async fn request_limit_exceeded_waits_never_dies_and_resumes() {
    let w = linked().await;
    let id = post_call(&w, "f-limit").await;
    w.org.set_fault(Fault::RequestLimitExceeded);
    let worker = w.worker("w1", 200, None);
    let r = worker.step().await.unwrap();
    assert_eq!((r.claimed, r.retried, r.dead), (1, 1, 0), "{r:?}");
    // C3: not due again at once — everything waits for the allowance.
    assert_eq!(worker.step().await.unwrap().claimed, 0);
    // However long Salesforce refuses, the call is never dead-lettered.
    let mut later = Utc::now();
    for round in 0..12 {
        later += Days::hours(2);
        let r = worker.step_at(later).await.unwrap();
        assert_eq!(r.dead, 0, "round {round}: {r:?}");
        let d = depth(&w).await;
        assert_eq!(d.dead, 0, "{d:?}");
        assert_eq!(d.ready + d.waiting + d.held, 1, "{d:?}");
    }
    assert_eq!(tasks_for(&w, "f-limit"), 0);
    w.org.clear_faults();
    for _ in 0..10 {
        later += Days::hours(2);
        worker.step_at(later).await.unwrap();
        if depth(&w).await == QueueDepth::default() {
            break;
        }
    }
    assert_done(&w, id).await;
    assert_eq!(tasks_for(&w, "f-limit"), 1);
}

// ---------------------------------------------------------------------------------------------
// Dead-lettered with the cause (R40), retryable, never dropped.

/// Drains with `fault` on, expects one dead item with a bilingual cause of `class`, then clears
/// the fault, retries the item as an admin would, and expects the call written once.
async fn dead_then_retried(w: &World, call_id: &str, event_id: i64, expect: &[&str]) {
    let worker = w.worker("w1", 200, None);
    let r = drain(&worker).await;
    assert_eq!((r.dead, r.done), (1, 0), "{r:?}");
    let d = depth(w).await;
    assert_eq!((d.dead, d.ready, d.waiting, d.held), (1, 0, 0, 0), "{d:?}");
    assert_eq!(tasks_for(w, call_id), 0);
    let failed = w.store.failed(&w.t, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    let f = &failed[0].failure;
    assert_eq!(f.class, ErrorClass::OrgConfig, "{f:?}");
    assert!(
        !f.message_en.is_empty() && !f.message_ja.is_empty(),
        "{f:?}"
    );
    assert!(!f.message_ja.is_ascii(), "Japanese text: {f:?}");
    assert!(
        f.fix_en.is_some() && f.fix_ja.is_some(),
        "says what to change: {f:?}"
    );
    let text = format!("{} {} {}", f.code, f.message_en, f.fix_en.clone().unwrap());
    for needle in expect {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let outcome = w.store.event_outcome(&w.t, event_id).await.unwrap();
    assert!(
        matches!(outcome, Some(EventOutcome::Failed { .. })),
        "{outcome:?}"
    );
    // The fault is fixed in Salesforce; the admin presses retry.
    w.org.clear_faults();
    assert!(w.store.retry_dead(&w.t, failed[0].id).await.unwrap());
    assert!(
        !w.store.retry_dead(&w.t, failed[0].id).await.unwrap(),
        "only dead items"
    );
    drain(&worker).await;
    assert_done(w, event_id).await;
    assert_eq!(tasks_for(w, call_id), 1);
}

#[tokio::test]
async fn r40_validation_rule_on_lead_create_is_dead_lettered_then_retried() {
    let w = World::new().await;
    w.settings(IntegrationSettings {
        create_customers: true,
        create_as: Some(SfObject::Lead),
        ..Default::default()
    })
    .await;
    w.org.set_fault(Fault::ValidationRule {
        object: "Lead".into(),
        message: "会社名は必須です / Company is required".into(),
    });
    let (status, body) = post(&w, &missed("f-vr", "090-7777-0001")).await;
    assert_eq!(status, 202);
    let id = body["event_id"].as_i64().unwrap();
    dead_then_retried(&w, "f-vr", id, &["Company is required"]).await;
    assert_eq!(w.org.records("Lead").len(), 1);
}

#[tokio::test]
async fn r40_c2_ip_restriction_is_dead_lettered_then_retried() {
    let w = linked().await;
    let id = post_call(&w, "f-ip").await;
    w.org.set_fault(Fault::IpRestricted);
    dead_then_retried(&w, "f-ip", id, &["IP"]).await;
}

#[tokio::test]
async fn r40_c1_api_disabled_is_dead_lettered_then_retried() {
    let w = linked().await;
    let id = post_call(&w, "f-api").await;
    w.org.set_fault(Fault::ApiDisabled);
    dead_then_retried(&w, "f-api", id, &["API"]).await;
}

#[tokio::test]
async fn r40_hidden_task_field_is_dead_lettered_then_retried() {
    let w = linked().await;
    let id = post_call(&w, "f-fls").await;
    w.org.set_fault(Fault::HiddenField {
        object: "Task".into(),
        field: "CallDisposition".into(),
    });
    dead_then_retried(&w, "f-fls", id, &["CallDisposition"]).await;
}

// ---------------------------------------------------------------------------------------------
// Crashes at each fail point (R25): crash once, then the expired lease runs the item again.

/// Crashes at `point` the first time only.
struct CrashOnce {
    point: FailPoint,
    fired: Mutex<HashSet<i64>>,
}

impl FailPoints for CrashOnce {
    fn crash(&self, point: FailPoint, item: &WorkItem) -> bool {
        point == self.point && self.fired.lock().unwrap().insert(item.id)
    }
}

async fn crash_once_at(point: FailPoint, create: bool) {
    let w = if create {
        let w = World::new().await;
        w.settings(IntegrationSettings {
            create_customers: true,
            create_as: Some(SfObject::Contact),
            ..Default::default()
        })
        .await;
        w
    } else {
        linked().await
    };
    let call = format!("crash-{point:?}-{create}");
    let number = if create { "080-3333-0101" } else { NUMBER };
    let (status, body) = post(&w, &answered(&call, number)).await;
    assert_eq!(status, 202);
    let id = body["event_id"].as_i64().unwrap();
    let fail = Arc::new(CrashOnce {
        point,
        fired: Mutex::new(HashSet::new()),
    });
    let worker = w.worker("w1", 200, Some(fail));
    let r = worker.step().await.unwrap();
    assert_eq!((r.claimed, r.crashed), (1, 1), "{point:?}: {r:?}");
    // The "dead" worker keeps its lease: nobody may take the item before it expires.
    assert_eq!(worker.step().await.unwrap().claimed, 0);
    assert_eq!(depth(&w).await.leased, 1);
    let expected_before = usize::from(point != FailPoint::AfterClaim);
    assert_eq!(tasks_for(&w, &call), expected_before, "{point:?}");
    // After the lease expires the item runs again (drain claims with a later now).
    let r = drain(&worker).await;
    assert_eq!((r.done, r.crashed), (1, 0), "{point:?}: {r:?}");
    assert_done(&w, id).await;
    assert_eq!(
        tasks_for(&w, &call),
        1,
        "R25: exactly one Task after a crash at {point:?}"
    );
    if create {
        assert_eq!(w.org.records("Contact").len(), 1, "one record created");
    }
}

#[tokio::test]
async fn r25_crash_after_claim_then_rerun_writes_one_task() {
    crash_once_at(FailPoint::AfterClaim, false).await;
}

#[tokio::test]
async fn r25_crash_after_the_salesforce_call_then_rerun_writes_one_task() {
    crash_once_at(FailPoint::AfterSalesforceCall, false).await;
}

#[tokio::test]
async fn r25_crash_before_commit_then_rerun_writes_one_task() {
    crash_once_at(FailPoint::BeforeCommit, false).await;
}

#[tokio::test]
async fn r25_r34_crash_at_each_point_while_creating_the_record_writes_one_of_each() {
    for point in [
        FailPoint::AfterClaim,
        FailPoint::AfterSalesforceCall,
        FailPoint::BeforeCommit,
    ] {
        crash_once_at(point, true).await;
    }
}

/// A call that waited for its lock (held by an instance that was killed: 60 s of 2 s waits)
/// and then meets one burst of 5xx must be retried, not dead-lettered: waiting is not failing
/// (`max_transient_attempts` counts transient failures).
/// Lock waits go back to the queue with `WorkQueue::defer`, which does not count an attempt.
#[tokio::test]
async fn waiting_for_a_dead_instances_call_lock_does_not_use_up_the_transient_retries() {
    use domain::ports::Locks;
    let w = linked().await;
    let id = post_call(&w, "f-wait").await;
    // The killed instance's lease on the call (the logger's key is `call:<call id>`).
    assert!(
        w.store
            .try_lock(
                &w.t,
                "call:f-wait",
                "killed-instance",
                Duration::from_secs(60),
                Utc::now()
            )
            .await
            .unwrap()
    );
    let worker = w.worker("w1", 200, None);
    let mut later = Utc::now();
    for _ in 0..25 {
        later += Days::seconds(3);
        let r = worker.step_at(later).await.unwrap();
        assert_eq!((r.claimed, r.retried), (1, 1), "{r:?}");
    }
    w.store
        .unlock(&w.t, "call:f-wait", "killed-instance")
        .await
        .unwrap();
    // One burst of 5xx, longer than the client's own retries.
    w.org.set_fault(Fault::ServerError { times: 20 });
    later += Days::seconds(3);
    let r = worker.step_at(later).await.unwrap();
    assert_eq!(
        (r.retried, r.dead),
        (1, 0),
        "a first transient failure: {r:?}"
    );
    w.org.clear_faults();
    drain(&worker).await;
    assert_done(&w, id).await;
    assert_eq!(tasks_for(&w, "f-wait"), 1);
}

//! SPEC "Writing calls to Salesforce" (R20–R27) and "Call events", end to end: signed webhook
//! → durable intake → worker → Task in sf-sim.

use crate::{answered, missed, post, task};
use domain::IntegrationSettings;
use domain::ports::SyncKind;
use domain::ports::{EventOutcome, SkipReason};
use it::{World, drain};
use serde_json::json;

async fn import(w: &World) {
    w.sync()
        .run(&w.t, SyncKind::Initial, &|_| {})
        .await
        .unwrap();
}

#[tokio::test]
async fn r20_r23_r24_answered_call_to_an_imported_contact() {
    let w = World::new().await;
    let contact = w.org.insert(
        "Contact",
        json!({"LastName": "電話", "FirstName": "太郎", "Phone": "03-5555-0101"}),
    );
    import(&w).await;
    let before = w.org.api_requests_used();
    let (status, body) = post(&w, &answered("22232", "03-5555-0101")).await;
    assert_eq!(status, 202, "{body}");
    drain(&w.worker("w1", 200, None)).await;
    // R20: linked → no search, one insert.
    assert_eq!(w.org.api_requests_used() - before, 1);
    let t = task(&w, "22232");
    assert_eq!(t["WhoId"], contact.as_str());
    // R23: Ichiro.Eigyo@example.jp matches the User case-insensitively.
    let ichiro = w
        .org
        .records("User")
        .into_iter()
        .find(|u| u["Email"] == "Ichiro.Eigyo@example.jp")
        .unwrap();
    assert_eq!(t["OwnerId"], ichiro["Id"]);
    // R24: the activity's fields.
    assert_eq!(t["TaskSubtype"], "Call");
    assert_eq!(t["CallType"], "Inbound");
    assert_eq!(t["CallDurationInSeconds"], 192);
    assert_eq!(t["CallDisposition"], "answered");
    assert_eq!(t["Status"], "Completed");
    assert_eq!(t["ActivityDate"], "2026-11-25");
    assert_eq!(t["Subject"], "着信 03-5555-0101 (3:12)");
    let desc = t["Description"].as_str().unwrap();
    assert!(
        desc.contains("見積の件で折り返し希望")
            && desc.contains("https://phone.example.jp/calls/22232/rec"),
        "{desc}"
    );
}

#[tokio::test]
async fn r23_member_without_a_user_falls_back_to_the_connecting_user() {
    let w = World::new().await;
    w.org.insert(
        "Lead",
        json!({"LastName": "不在", "Company": "X", "Phone": "0312340000"}),
    );
    import(&w).await;
    post(&w, &missed("m1", "03-1234-0000")).await;
    drain(&w.worker("w1", 200, None)).await;
    let t = task(&w, "m1");
    assert_eq!(t["OwnerId"], w.org.admin_user_id().as_str());
    assert_eq!(t["Subject"], "不在着信 03-1234-0000");
}

#[tokio::test]
async fn r21_unlinked_number_found_by_search_is_linked_for_the_next_call() {
    let w = World::new().await;
    let lead = w.org.insert(
        "Lead",
        json!({"LastName": "検索", "Company": "検索株式会社", "Phone": "(03)5555-0102"}),
    );
    w.org.index_now();
    post(&w, &missed("s1", "0355550102")).await;
    let worker = w.worker("w1", 200, None);
    drain(&worker).await;
    assert_eq!(task(&w, "s1")["WhoId"], lead.as_str());
    let c = domain::ports::CustomerStore::find_by_number(&w.store, &w.t, "+81355550102")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.link.unwrap().record.id.as_str(),
        lead.as_str(),
        "R21: linked"
    );
    let before = w.org.api_requests_used();
    post(&w, &missed("s2", "03-5555-0102")).await;
    drain(&worker).await;
    assert_eq!(
        w.org.api_requests_used() - before,
        1,
        "R33: the next call needs no search"
    );
}

#[tokio::test]
async fn r22_not_found_and_creation_off_is_skipped_no_match() {
    let w = World::new().await;
    let (_, body) = post(&w, &missed("n1", "03-9999-0001")).await;
    drain(&w.worker("w1", 200, None)).await;
    assert!(w.tasks().is_empty());
    let id = body["event_id"].as_i64().unwrap();
    assert_eq!(
        w.store.event_outcome(&w.t, id).await.unwrap(),
        Some(EventOutcome::Skipped {
            reason: SkipReason::NoMatch
        })
    );
}

#[tokio::test]
async fn r25_r27_redelivery_and_memo_update_one_task() {
    let w = World::new().await;
    w.org.insert(
        "Contact",
        json!({"LastName": "一件", "Phone": "03-5555-0103"}),
    );
    import(&w).await;
    let call = answered("c25", "03-5555-0103");
    assert_eq!(post(&w, &call).await.0, 202);
    let (status, body) = post(&w, &call).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "R27: acknowledged again"
    );
    let worker = w.worker("w1", 200, None);
    drain(&worker).await;
    let memo = vec![
        ("event", "memo_saved".to_owned()),
        ("contact[number]", "03-5555-0103".to_owned()),
        ("record[id]", "c25".to_owned()),
        ("record[memo]", "再見積を送付済み".to_owned()),
    ];
    post(&w, &memo).await;
    drain(&worker).await;
    let t = task(&w, "c25");
    assert!(
        t["Description"]
            .as_str()
            .unwrap()
            .contains("再見積を送付済み")
    );
    assert_eq!(
        t["Subject"], "着信 03-5555-0103 (3:12)",
        "the memo keeps the call's outcome"
    );
    assert_eq!(w.tasks().len(), 1, "R25: one call, one Task");
}

#[tokio::test]
async fn r26_late_transcription_is_added_as_dialogue() {
    let w = World::new().await;
    w.settings(IntegrationSettings {
        write_transcription: true,
        ..Default::default()
    })
    .await;
    w.org.insert(
        "Contact",
        json!({"LastName": "文字", "Phone": "03-5555-0101"}),
    );
    import(&w).await;
    post(&w, &answered("22232", "03-5555-0101")).await;
    let worker = w.worker("w1", 200, None);
    drain(&worker).await;
    // The transcription example of callconnect-webhook.md, as JSON.
    let body = json!({"event": "transcription_completed",
        "contact": {"id": "150", "number": "03-5555-0101"},
        "record": {"id": "22232", "direction": "inbound",
                   "transcribe_direction": "inbound_operator_right",
                   "transcribes": {"RE1a2b": [[0, "お電話ありがとうございます。", 1.2],
                                              [1, "先日の見積の件でお電話しました。", 4.8]],
                                   "RE9z8y": [[0, "お待たせいたしました。", 0.6]]}},
        "user": {"id": "17", "email": "ichiro.eigyo@example.jp"}});
    let raw = serde_json::to_vec(&body).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let sig = event_ingest::sign(&w.secret, ts, &raw);
    let (status, _) = w
        .post_raw(
            "/webhooks/acme/calls",
            "application/json",
            raw,
            Some((ts, sig)),
        )
        .await;
    assert_eq!(status, 202);
    drain(&worker).await;
    let desc = task(&w, "22232")["Description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        desc.contains("00:01 担当者: お電話ありがとうございます。"),
        "{desc}"
    );
    assert!(
        desc.contains("00:04 お客様: 先日の見積の件でお電話しました。"),
        "{desc}"
    );
    assert!(
        desc.contains("[録音 2]\n00:00 担当者: お待たせいたしました。"),
        "{desc}"
    );
}

#[tokio::test]
async fn r27_withheld_number_is_stored_and_writes_nothing() {
    let w = World::new().await;
    let (status, body) = post(&w, &missed("w27", "非通知")).await;
    assert_eq!(status, 202);
    drain(&w.worker("w1", 200, None)).await;
    assert!(w.tasks().is_empty());
    assert_eq!(
        w.store.customer_count(&w.t).await.unwrap(),
        0,
        "no customer identity"
    );
    let id = body["event_id"].as_i64().unwrap();
    assert_eq!(
        w.store.event_outcome(&w.t, id).await.unwrap(),
        Some(EventOutcome::Skipped {
            reason: SkipReason::NoNumber
        })
    );
}

#[tokio::test]
async fn r2_r6_settings_gate_what_is_written() {
    let w = World::new().await;
    w.org.insert(
        "Contact",
        json!({"LastName": "設定", "Phone": "03-5555-0104"}),
    );
    import(&w).await;
    w.settings(IntegrationSettings {
        notify_on: [domain::EventKind::Missed].into_iter().collect(),
        ..Default::default()
    })
    .await;
    post(&w, &answered("g1", "03-5555-0104")).await;
    post(&w, &missed("g2", "03-5555-0104")).await;
    let worker = w.worker("w1", 200, None);
    drain(&worker).await;
    assert_eq!(w.tasks().len(), 1, "R6: only notify_on events write");
    assert_eq!(task(&w, "g2")["CallDisposition"], "missed");
    w.settings(IntegrationSettings {
        write_activity: false,
        ..Default::default()
    })
    .await;
    post(&w, &missed("g3", "03-5555-0104")).await;
    drain(&worker).await;
    assert_eq!(w.tasks().len(), 1, "R2: activities off writes nothing");
}

#[tokio::test]
async fn call_events_bad_webhooks_are_refused_and_store_nothing() {
    let w = World::new().await;
    // Missing signature → 401; wrong tenant → 404; bad field → 400 naming it.
    let body = it::form(&[("event", "missed"), ("record[id]", "x1")]).into_bytes();
    assert_eq!(
        w.post_raw(
            "/webhooks/acme/calls",
            "application/x-www-form-urlencoded",
            body.clone(),
            None
        )
        .await
        .0,
        401
    );
    let ts = chrono::Utc::now().timestamp();
    let sig = event_ingest::sign(&w.secret, ts, &body);
    assert_eq!(
        w.post_raw(
            "/webhooks/other/calls",
            "application/x-www-form-urlencoded",
            body,
            Some((ts, sig))
        )
        .await
        .0,
        404
    );
    let bad = vec![
        ("event", "exploded".to_owned()),
        ("record[id]", "x2".to_owned()),
        ("record[duration]", "-3".to_owned()),
    ];
    let (status, err) = post(&w, &bad).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = err["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"event") && fields.contains(&"record[duration]"),
        "{err}"
    );
    let depth = domain::ports::WorkQueue::depth(&w.store, &w.t)
        .await
        .unwrap();
    assert_eq!(depth.ready + depth.leased + depth.dead, 0, "nothing stored");
}

//! Writes: Task batching and request counts, per-record results, duplicates, write-back.

use crate::support::*;
use chrono::NaiveDate;
use domain::ports::{
    ApiUsageView, FieldChange, NewRecord, RecordUpdate, SalesforceWriter, TaskDraft,
};
use domain::{Direction, OrgProblem, SalesforceRecordRef, SfError, SfObject};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, ResponseTemplate};

pub(crate) fn draft(i: usize) -> TaskDraft {
    TaskDraft {
        who: SalesforceRecordRef {
            object: SfObject::Lead,
            id: sid("00Q5g00000AbCdEEAV"),
        },
        owner: None,
        subject: format!("着信 03-1234-5678 ({i})"),
        description: "memo".into(),
        call_type: Direction::Inbound,
        duration_secs: Some(10),
        call_object: format!("call-{i}"),
        disposition: "answered".into(),
        activity_date: NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(),
    }
}

// C3: one Task = one request (single-record endpoint); k ≤ 200 = one collections request;
// 201..400 = two.
#[tokio::test]
async fn task_batches_cost_ceil_k_over_200_requests() {
    for (k, expected) in [
        (1usize, 1usize),
        (2, 1),
        (200, 1),
        (201, 2),
        (400, 2),
        (401, 3),
    ] {
        let e = env().await;
        Mock::given(method("POST"))
            .and(path(format!("{V}/sobjects/Task")))
            .and(body_string_contains("\"TaskSubtype\":\"Call\""))
            .respond_with(sf_json(
                201,
                json!({"id": "00T5g00000Ab1AAEAZ", "success": true, "errors": []}),
            ))
            .mount(&e.instance)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("{V}/composite/sobjects")))
            .and(body_string_contains("\"allOrNone\":false"))
            .respond_with(CollectionsOk)
            .mount(&e.instance)
            .await;
        let tasks: Vec<TaskDraft> = (0..k).map(draft).collect();
        let out = e.client.create_tasks(&e.t, &tasks).await.unwrap();
        assert_eq!(out.len(), k);
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(count(&e.instance).await, expected, "k={k}");
        assert_eq!(e.client.requests_sent(&e.t), expected as u64);
        let reqs = e.instance.received_requests().await.unwrap();
        for r in &reqs {
            if r.url.path().ends_with("composite/sobjects") {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                let recs = body["records"].as_array().unwrap();
                assert!(recs.len() <= 200);
                assert_eq!(recs[0]["attributes"]["type"], "Task");
            }
        }
    }
}

// Per-record results come back in input order with statusCode errors mapped.
#[tokio::test]
async fn task_collection_results_are_per_record_in_order() {
    let e = env().await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(sf_json(200, fixture("collections_results.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let tasks: Vec<TaskDraft> = (0..4).map(draft).collect();
    let out = e.client.create_tasks(&e.t, &tasks).await.unwrap();
    assert_eq!(out[0], Ok(sid("00T5g00000Ab1AAEAZ")));
    assert!(matches!(
        &out[1],
        Err(SfError::OrgConfig {
            problem: OrgProblem::ValidationRule,
            ..
        })
    ));
    assert!(matches!(&out[2], Err(SfError::Transient { .. })));
    assert!(matches!(
        &out[3],
        Err(SfError::OrgConfig {
            problem: OrgProblem::ConvertedLead,
            ..
        })
    ));
}

// A second chunk failing does not hide the ids the first chunk created.
#[tokio::test]
async fn a_failed_later_chunk_fails_only_its_records() {
    let e = env().await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(CollectionsOk)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(sf_json(403, fixture("error_request_limit.json")))
        .mount(&e.instance)
        .await;
    let tasks: Vec<TaskDraft> = (0..250).map(draft).collect();
    let out = e.client.create_tasks(&e.t, &tasks).await.unwrap();
    assert!(out[..200].iter().all(Result::is_ok));
    assert!(
        out[200..]
            .iter()
            .all(|r| matches!(r, Err(SfError::Throttled { .. })))
    );
}

// A batch refused for its content (a hidden Task field) is per-record, like a single create.
#[tokio::test]
async fn a_chunk_refused_for_content_fails_its_records_not_the_call() {
    let e = env().await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(sf_json(400, json!([{"errorCode": "INVALID_FIELD", "message": "No such column 'CallDisposition' on sobject of type Task"}])))
        .expect(1)
        .mount(&e.instance)
        .await;
    let out = e
        .client
        .create_tasks(&e.t, &[draft(0), draft(1)])
        .await
        .unwrap();
    for r in out {
        assert!(
            matches!(&r, Err(SfError::OrgConfig { problem: OrgProblem::HiddenField, object: Some(o), field: Some(f), .. }) if o == "Task" && f == "CallDisposition"),
            "{r:?}"
        );
    }
}

// R35: a blocking duplicate rule lists the matches; allowSave sends the header.
#[tokio::test]
async fn r35_duplicates_detected_and_allow_save_header() {
    let e = env().await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/sobjects/Lead")))
        .and(header("Sforce-Duplicate-Rule-Header", "allowSave=true"))
        .respond_with(sf_json(
            201,
            json!({"id": "00Q5g00000AbCdFEAV", "success": true, "errors": []}),
        ))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/sobjects/Lead")))
        .respond_with(sf_json(400, fixture("duplicates_detected.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let rec = NewRecord {
        object: SfObject::Lead,
        last_name: "03-1234-5678".into(),
        first_name: None,
        company: Some("CallConnect 取引先".into()),
        account_id: None,
        phone: "03-1234-5678".into(),
        email: None,
    };
    let err = e.client.create_record(&e.t, &rec, false).await.unwrap_err();
    let SfError::Duplicate { matches, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(matches[0].object, "Lead");
    assert_eq!(matches[0].id, sid("00Q5g00000AbCdEEAV"));
    assert_eq!(matches[1].object, "Contact");
    let id = e.client.create_record(&e.t, &rec, true).await.unwrap();
    assert_eq!(id, sid("00Q5g00000AbCdFEAV"));
}

// R11: write-back batches through collections; never Company on a Contact, never address.
#[tokio::test]
async fn r11_update_records_batched_company_only_on_leads() {
    let e = env().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(sf_json(200, json!([
            {"id": "00Q5g00000AbCdEEAV", "success": true, "errors": []},
            {"id": "0035g00000XyZaBAAV", "success": false, "errors": [{"statusCode": "STRING_TOO_LONG", "message": "Phone: data value too large", "fields": ["Phone"]}]}
        ])))
        .expect(1)
        .mount(&e.instance)
        .await;
    let updates = vec![
        RecordUpdate {
            record: SalesforceRecordRef {
                object: SfObject::Lead,
                id: sid("00Q5g00000AbCdEEAV"),
            },
            changes: vec![
                FieldChange::Company(Some("新社名".into())),
                FieldChange::Email(Some("a@b.jp".into())),
            ],
        },
        RecordUpdate {
            record: SalesforceRecordRef {
                object: SfObject::Contact,
                id: sid("0035g00000XyZaCAAV"),
            },
            changes: vec![FieldChange::Company(Some("ignored".into()))],
        },
        RecordUpdate {
            record: SalesforceRecordRef {
                object: SfObject::Contact,
                id: sid("0035g00000XyZaBAAV"),
            },
            changes: vec![
                FieldChange::Company(Some("ignored".into())),
                FieldChange::Phone(Some("0".repeat(50))),
            ],
        },
    ];
    let out = e.client.update_records(&e.t, &updates).await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok());
    assert!(out[1].is_ok(), "nothing to send for a Contact's company");
    assert!(
        matches!(&out[2], Err(SfError::BadData { object: Some(o), field: Some(f), .. }) if o == "Contact" && f == "Phone")
    );
    let body: Value =
        serde_json::from_slice(&e.instance.received_requests().await.unwrap()[0].body).unwrap();
    let recs = body["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[0],
        json!({"attributes": {"type": "Lead"}, "id": "00Q5g00000AbCdEEAV", "Company": "新社名", "Email": "a@b.jp"})
    );
    assert_eq!(
        recs[1],
        json!({"attributes": {"type": "Contact"}, "id": "0035g00000XyZaBAAV", "Phone": "0".repeat(50)})
    );
}

// One pending update uses the single-record PATCH; a converted Lead is an org-config error.
#[tokio::test]
async fn single_update_uses_patch_and_maps_converted_lead() {
    let e = env().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/sobjects/Lead/00Q5g00000AbCdEEAV")))
        .respond_with(sf_json(400, json!([{"errorCode": "CANNOT_UPDATE_CONVERTED_LEAD", "message": "cannot reference converted lead"}])))
        .expect(1)
        .mount(&e.instance)
        .await;
    let out = e
        .client
        .update_records(
            &e.t,
            &[RecordUpdate {
                record: SalesforceRecordRef {
                    object: SfObject::Lead,
                    id: sid("00Q5g00000AbCdEEAV"),
                },
                changes: vec![FieldChange::Description(None)],
            }],
        )
        .await
        .unwrap();
    assert!(matches!(
        &out[0],
        Err(SfError::OrgConfig {
            problem: OrgProblem::ConvertedLead,
            ..
        })
    ));
}

// R25 / R32 lookups.
#[tokio::test]
async fn find_task_and_account() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(QContains("FROM Task WHERE CallObject = 'call-1\\''"))
        .respond_with(sf_json(200, json!({"totalSize": 1, "done": true, "records": [{"attributes": {"type": "Task"}, "Id": "00T5g00000Ab1AAEAZ"}]})))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("GET"))
        .and(QContains(
            "FROM Account WHERE Name = '山田商事' ORDER BY CreatedDate, Id LIMIT 1",
        ))
        .respond_with(sf_json(
            200,
            json!({"totalSize": 0, "done": true, "records": []}),
        ))
        .expect(1)
        .mount(&e.instance)
        .await;
    assert_eq!(
        e.client
            .find_task_by_call_object(&e.t, "call-1'")
            .await
            .unwrap(),
        Some(sid("00T5g00000Ab1AAEAZ"))
    );
    assert_eq!(e.client.find_account(&e.t, "山田商事").await.unwrap(), None);
}

#[tokio::test]
async fn empty_batches_send_nothing() {
    let e = env().await;
    assert!(e.client.create_tasks(&e.t, &[]).await.unwrap().is_empty());
    assert!(e.client.update_records(&e.t, &[]).await.unwrap().is_empty());
    assert_eq!(count(&e.instance).await, 0);
    let _ = ResponseTemplate::new(200);
}

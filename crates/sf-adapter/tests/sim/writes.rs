//! Writes against the simulator: call Tasks (R24–R26), creating records (R30–R32, R35) and
//! write-back (R11).

use super::support::*;
use chrono::NaiveDate;
use domain::ports::{
    FieldChange, NewRecord, RecordUpdate, SalesforceReader, SalesforceWriter, TaskDraft, TaskPatch,
};
use domain::{Direction, SalesforceRecordRef, SfError, SfObject};
use serde_json::json;
use sf_sim::Fault;

pub(crate) fn draft(who: SalesforceRecordRef, call_object: &str) -> TaskDraft {
    TaskDraft {
        who,
        owner: None,
        subject: "着信 03-1234-5678 (3:12)".to_owned(),
        description: "担当: 営業 次郎".to_owned(),
        call_type: Direction::Inbound,
        duration_secs: Some(192),
        call_object: call_object.to_owned(),
        disposition: "answered".to_owned(),
        activity_date: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
    }
}

// R24/R25: 1, 150 and 250 Tasks cost 1, 1 and 2 requests; every field lands in Salesforce.
#[tokio::test]
async fn r24_create_tasks_batched_with_every_call_field() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    let contact = e
        .org
        .insert("Contact", json!({"LastName": "C", "Phone": "03-2"}));
    let rep = e
        .org
        .records("User")
        .into_iter()
        .find(|u| u["Email"] == json!("Sales.Rep@Sim.Example.jp"))
        .unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut n_call = 0;
    for (n, expected_requests) in [(1usize, 1u64), (150, 1), (250, 2)] {
        let drafts: Vec<TaskDraft> = (0..n)
            .map(|i| {
                n_call += 1;
                let mut d = if i % 2 == 0 {
                    draft(rref(SfObject::Lead, &lead), &format!("call-{n_call}"))
                } else {
                    draft(rref(SfObject::Contact, &contact), &format!("call-{n_call}"))
                };
                if i % 3 == 0 {
                    d.owner = Some(sid(&rep));
                    d.call_type = Direction::Outbound;
                    d.disposition = "unanswered".into();
                    d.duration_secs = None;
                }
                d
            })
            .collect();
        let before = e.used();
        let out = e.client.create_tasks(&e.t, &drafts).await.unwrap();
        assert_eq!(e.used() - before, expected_requests, "{n} tasks");
        assert_eq!(out.len(), n);
        for (d, r) in drafts.iter().zip(&out) {
            let id = r.as_ref().unwrap().as_str().to_owned();
            let t = e.org.get("Task", &id).unwrap();
            assert_eq!(t["TaskSubtype"], json!("Call"));
            assert_eq!(t["Status"], json!("Completed"));
            assert_eq!(t["IsClosed"], json!(true));
            assert_eq!(t["CallObject"], json!(d.call_object));
            assert_eq!(t["CallDisposition"], json!(d.disposition));
            assert_eq!(t["Subject"], json!(d.subject));
            assert_eq!(t["Description"], json!(d.description));
            assert_eq!(t["ActivityDate"], json!("2025-06-01"));
            assert!(same_id(t["WhoId"].as_str().unwrap(), d.who.id.as_str()));
            let owner = t["OwnerId"].as_str().unwrap();
            match &d.owner {
                Some(o) => assert!(same_id(owner, o.as_str())),
                // Defaulted by Salesforce to the API user (R23 fallback).
                None => assert!(same_id(owner, &e.org.admin_user_id())),
            }
            match d.call_type {
                Direction::Inbound => assert_eq!(t["CallType"], json!("Inbound")),
                Direction::Outbound => assert_eq!(t["CallType"], json!("Outbound")),
            }
            match d.duration_secs {
                Some(s) => assert_eq!(t["CallDurationInSeconds"], json!(s)),
                None => assert_eq!(t["CallDurationInSeconds"], json!(null)),
            }
        }
    }
    assert_eq!(e.org.count("Task"), 401);

    // R25: the Task is found again by its CallObject.
    let first = e
        .client
        .find_task_by_call_object(&e.t, "call-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e.field("Task", first.as_str(), "CallObject"),
        json!("call-1")
    );
    let last = e
        .client
        .find_task_by_call_object(&e.t, "call-401")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e.field("Task", last.as_str(), "CallObject"),
        json!("call-401")
    );
    assert_eq!(
        e.client
            .find_task_by_call_object(&e.t, "call-999")
            .await
            .unwrap(),
        None
    );
    // A CallObject with quotes is escaped, not injected.
    assert_eq!(
        e.client
            .find_task_by_call_object(&e.t, "x' OR CallObject != '")
            .await
            .unwrap(),
        None
    );
    // R25 retries: many at once, 100 per query.
    let wanted: Vec<String> = (150..=400)
        .map(|i| format!("call-{i}"))
        .chain(["call-999".to_owned(), "x' OR CallObject != '".to_owned()])
        .collect();
    let before = e.used();
    let found = e
        .client
        .find_tasks_by_call_objects(&e.t, &wanted)
        .await
        .unwrap();
    assert_eq!(e.used() - before, 3, "253 call objects → 3 queries");
    assert_eq!(found.len(), 251);
    assert_eq!(
        e.field("Task", found["call-150"].as_str(), "CallObject"),
        json!("call-150")
    );
    assert!(!found.contains_key("call-999"));
}

// R25/R26: later events update the Task; Description holds 32,000 characters, not one more.
#[tokio::test]
async fn r26_update_task_and_description_limit() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    let id = e
        .client
        .create_tasks(&e.t, &[draft(rref(SfObject::Lead, &lead), "call-u")])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let patch = TaskPatch {
        description: Some("担当: 営業 次郎\nメモ: 折り返し希望".into()),
        disposition: Some("voicemail".into()),
        ..TaskPatch::default()
    };
    let before = e.used();
    e.client.update_task(&e.t, &id, &patch).await.unwrap();
    assert_eq!(e.used() - before, 1);
    assert_eq!(
        e.field("Task", id.as_str(), "Description"),
        json!("担当: 営業 次郎\nメモ: 折り返し希望")
    );
    assert_eq!(
        e.field("Task", id.as_str(), "CallDisposition"),
        json!("voicemail")
    );
    assert_eq!(
        e.field("Task", id.as_str(), "Subject"),
        json!("着信 03-1234-5678 (3:12)")
    );

    // 32,000 characters (multi-byte) fit; 32,001 do not.
    let full = "あ".repeat(32_000);
    e.client
        .update_task(
            &e.t,
            &id,
            &TaskPatch {
                description: Some(full.clone()),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(e.field("Task", id.as_str(), "Description"), json!(full));
    let r = e
        .client
        .update_task(
            &e.t,
            &id,
            &TaskPatch {
                description: Some("あ".repeat(32_001)),
                ..TaskPatch::default()
            },
        )
        .await;
    match r {
        Err(SfError::BadData { code, field, .. }) => {
            assert_eq!(code, "STRING_TOO_LONG");
            assert_eq!(field.as_deref(), Some("Description"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.field("Task", id.as_str(), "Description"), json!(full));
}

fn new_lead(company: Option<&str>, phone: &str) -> NewRecord {
    NewRecord {
        object: SfObject::Lead,
        last_name: "電話".into(),
        first_name: Some("太郎".into()),
        company: company.map(str::to_owned),
        account_id: None,
        phone: phone.into(),
        email: Some("taro@example.jp".into()),
    }
}

// R30: a Lead needs Company; R31/R32: Accounts found (the oldest of a name) or created, and
// Contacts attached to them.
#[tokio::test]
async fn r30_r32_create_lead_account_contact() {
    let e = sim_env().await;
    let r = e
        .client
        .create_record(&e.t, &new_lead(None, "03-1234-5678"), false)
        .await;
    match r {
        Err(SfError::BadData { code, field, .. }) => {
            assert_eq!(code, "REQUIRED_FIELD_MISSING");
            assert_eq!(field.as_deref(), Some("Company"));
        }
        other => panic!("{other:?}"),
    }
    let lead = e
        .client
        .create_record(
            &e.t,
            &new_lead(Some("CallConnect 取引先"), "03-1234-5678"),
            false,
        )
        .await
        .unwrap();
    let l = e.org.get("Lead", lead.as_str()).unwrap();
    assert_eq!(l["LastName"], json!("電話"));
    assert_eq!(l["FirstName"], json!("太郎"));
    assert_eq!(l["Company"], json!("CallConnect 取引先"));
    assert_eq!(l["Phone"], json!("03-1234-5678"));
    assert_eq!(l["Email"], json!("taro@example.jp"));
    assert_eq!(l["Status"], json!("Open - Not Contacted"));

    // Two Accounts with one name: the oldest wins.
    let newer = e.org.insert(
        "Account",
        json!({"Name": "株式会社 O'Reilly", "CreatedDate": "2025-02-01T00:00:00.000+0000"}),
    );
    let older = e.org.insert(
        "Account",
        json!({"Name": "株式会社 O'Reilly", "CreatedDate": "2024-02-01T00:00:00.000+0000"}),
    );
    let before = e.used();
    let found = e
        .client
        .find_account(&e.t, "株式会社 O'Reilly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.used() - before, 1);
    assert!(same_id(found.as_str(), &older), "not {newer}");
    assert_eq!(e.client.find_account(&e.t, "株式会社").await.unwrap(), None);

    let placeholder = e
        .client
        .find_account(&e.t, "CallConnect 取引先")
        .await
        .unwrap();
    assert_eq!(placeholder, None);
    let acc = e
        .client
        .create_account(&e.t, "CallConnect 取引先")
        .await
        .unwrap();
    assert_eq!(
        e.field("Account", acc.as_str(), "Name"),
        json!("CallConnect 取引先")
    );
    assert_eq!(
        e.client
            .find_account(&e.t, "CallConnect 取引先")
            .await
            .unwrap(),
        Some(acc.clone())
    );

    let contact = e
        .client
        .create_record(
            &e.t,
            &NewRecord {
                object: SfObject::Contact,
                last_name: "山田".into(),
                first_name: None,
                // Ignored for a Contact: the company is the Account.
                company: Some("無視".into()),
                account_id: Some(found.clone()),
                phone: "090-1111-2222".into(),
                email: None,
            },
            false,
        )
        .await
        .unwrap();
    let c = e.org.get("Contact", contact.as_str()).unwrap();
    assert!(same_id(c["AccountId"].as_str().unwrap(), found.as_str()));
    assert_eq!(c["LastName"], json!("山田"));
    assert_eq!(c["FirstName"], json!(null));
    assert_eq!(c["Phone"], json!("090-1111-2222"));
}

// R35: a blocking duplicate rule names the existing record, same object type first; with
// allowSave the insert goes through.
#[tokio::test]
async fn r35_duplicate_rule_names_existing_record_and_allow_save_bypasses() {
    let e = sim_env().await;
    let existing_lead = e.org.insert(
        "Lead",
        json!({"LastName": "既存", "Company": "C", "Phone": "03-1234-5678"}),
    );
    let existing_contact = e.org.insert(
        "Contact",
        json!({"LastName": "既存", "Phone": "0312345678"}),
    );
    e.org.set_fault(Fault::DuplicateRule {
        object: "Lead".into(),
    });
    e.org.set_fault(Fault::DuplicateRule {
        object: "Contact".into(),
    });

    let r = e
        .client
        .create_record(&e.t, &new_lead(Some("C"), "+81 3 1234 5678"), false)
        .await;
    match r {
        Err(SfError::Duplicate { matches, .. }) => {
            assert_eq!(matches[0].object, "Lead");
            assert!(same_id(matches[0].id.as_str(), &existing_lead));
        }
        other => panic!("{other:?}"),
    }
    let contact = NewRecord {
        object: SfObject::Contact,
        account_id: None,
        company: None,
        ..new_lead(None, "03-1234-5678")
    };
    let r = e.client.create_record(&e.t, &contact, false).await;
    match r {
        Err(SfError::Duplicate { matches, .. }) => {
            assert_eq!(matches[0].object, "Contact");
            assert!(same_id(matches[0].id.as_str(), &existing_contact));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.org.count("Lead"), 1);

    let id = e
        .client
        .create_record(&e.t, &new_lead(Some("C"), "+81 3 1234 5678"), true)
        .await
        .unwrap();
    assert!(e.org.get("Lead", id.as_str()).is_some());
    assert_eq!(e.org.count("Lead"), 2);
}

// R11: write-back of the synced fields, batched; a Contact's company is never written.
#[tokio::test]
async fn r11_write_back_batch() {
    let e = sim_env().await;
    let acc = e.org.insert("Account", json!({"Name": "元の会社"}));
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "旧", "Company": "旧社", "Phone": "03-1", "Street": "住所1"}),
    );
    let contact = e.org.insert(
        "Contact",
        json!({"LastName": "旧", "AccountId": acc, "Phone": "03-2", "MailingCity": "大阪市"}),
    );
    let all = |company: &str| {
        vec![
            FieldChange::Phone(Some("03-9999-0001".into())),
            FieldChange::Name {
                last_name: "新".into(),
                first_name: Some("名".into()),
            },
            FieldChange::Email(Some("new@example.jp".into())),
            FieldChange::Description(Some("新メモ".into())),
            FieldChange::Company(Some(company.into())),
        ]
    };
    let before = e.used();
    let out = e
        .client
        .update_records(
            &e.t,
            &[
                RecordUpdate {
                    record: rref(SfObject::Lead, &lead),
                    changes: all("新社"),
                },
                RecordUpdate {
                    record: rref(SfObject::Contact, &contact),
                    changes: all("新しい会社"),
                },
                // Only a Contact's company: nothing to send.
                RecordUpdate {
                    record: rref(SfObject::Contact, &contact),
                    changes: vec![FieldChange::Company(Some("別の会社".into()))],
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(e.used() - before, 1);
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    let l = e.org.get("Lead", &lead).unwrap();
    assert_eq!(l["Phone"], json!("03-9999-0001"));
    assert_eq!(l["LastName"], json!("新"));
    assert_eq!(l["FirstName"], json!("名"));
    assert_eq!(l["Email"], json!("new@example.jp"));
    assert_eq!(l["Description"], json!("新メモ"));
    assert_eq!(l["Company"], json!("新社"));
    assert_eq!(l["Street"], json!("住所1"));
    let c = e.org.get("Contact", &contact).unwrap();
    assert_eq!(c["Phone"], json!("03-9999-0001"));
    assert_eq!(c["LastName"], json!("新"));
    assert_eq!(c["Email"], json!("new@example.jp"));
    assert_eq!(c["Description"], json!("新メモ"));
    assert_eq!(c["MailingCity"], json!("大阪市"));
    assert!(same_id(c["AccountId"].as_str().unwrap(), &acc));
    assert_eq!(e.field("Account", &acc, "Name"), json!("元の会社"));

    // Clearing a field sends null; one record is one PATCH.
    let before = e.used();
    let out = e
        .client
        .update_records(
            &e.t,
            &[RecordUpdate {
                record: rref(SfObject::Lead, &lead),
                changes: vec![FieldChange::Email(None), FieldChange::Description(None)],
            }],
        )
        .await
        .unwrap();
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(e.used() - before, 1);
    assert_eq!(e.field("Lead", &lead, "Email"), json!(null));
    assert_eq!(e.field("Lead", &lead, "Description"), json!(null));

    // 201 updates: two Collections requests.
    let leads: Vec<String> = (0..201)
        .map(|i| {
            e.org.insert(
                "Lead",
                json!({"LastName": format!("L{i}"), "Company": "C", "Phone": "03-1"}),
            )
        })
        .collect();
    let updates: Vec<RecordUpdate> = leads
        .iter()
        .map(|id| RecordUpdate {
            record: rref(SfObject::Lead, id),
            changes: vec![FieldChange::Description(Some("一括".into()))],
        })
        .collect();
    let before = e.used();
    let out = e.client.update_records(&e.t, &updates).await.unwrap();
    assert_eq!(e.used() - before, 2);
    assert!(out.iter().all(Result::is_ok));
    assert!(
        leads
            .iter()
            .all(|id| e.field("Lead", id, "Description") == json!("一括"))
    );
}

// R10/R11: writing a field the user cannot see is named (object and field), alone and in a
// batch; the other records of the batch are not lost.
#[tokio::test]
async fn r10_hidden_field_on_write_is_named() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    let contact = e
        .org
        .insert("Contact", json!({"LastName": "C", "Phone": "03-2"}));
    e.org.set_fault(Fault::HiddenField {
        object: "Lead".into(),
        field: "Email".into(),
    });
    let r = e
        .client
        .create_record(&e.t, &new_lead(Some("C"), "03-3"), false)
        .await;
    match r {
        Err(SfError::OrgConfig {
            problem: domain::OrgProblem::HiddenField,
            object,
            field,
            ..
        }) => {
            assert_eq!(object.as_deref(), Some("Lead"));
            assert_eq!(field.as_deref(), Some("Email"));
        }
        other => panic!("{other:?}"),
    }
    let email = |object, id: &str| RecordUpdate {
        record: rref(object, id),
        changes: vec![FieldChange::Email(Some("x@example.jp".into()))],
    };
    let out = e
        .client
        .update_records(
            &e.t,
            &[
                email(SfObject::Lead, &lead),
                email(SfObject::Contact, &contact),
            ],
        )
        .await
        .unwrap();
    match &out[0] {
        Err(SfError::OrgConfig {
            problem: domain::OrgProblem::HiddenField,
            object,
            field,
            ..
        }) => {
            assert_eq!(object.as_deref(), Some("Lead"));
            assert_eq!(field.as_deref(), Some("Email"));
        }
        other => panic!("{other:?}"),
    }
    assert!(out[1].is_ok(), "{out:?}");
    assert_eq!(e.field("Contact", &contact, "Email"), json!("x@example.jp"));
}

// R15: a Task on a converted Lead is refused as a converted-Lead problem (resolve to the
// Contact first), naming the Lead.
#[tokio::test]
async fn r15_task_on_converted_lead_is_refused() {
    let e = sim_env().await;
    let contact = e.org.insert("Contact", json!({"LastName": "C"}));
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "IsConverted": true, "ConvertedContactId": contact}),
    );
    let out = e
        .client
        .create_tasks(&e.t, &[draft(rref(SfObject::Lead, &lead), "conv")])
        .await
        .unwrap();
    match &out[0] {
        Err(SfError::OrgConfig {
            problem: domain::OrgProblem::ConvertedLead,
            object,
            ..
        }) => assert_eq!(object.as_deref(), Some("Lead")),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.org.count("Task"), 0);
}

// R16: a write to a record deleted in Salesforce is NotFound (the customer gets unlinked).
#[tokio::test]
async fn r16_write_to_deleted_record_is_not_found() {
    let e = sim_env().await;
    let a = e.org.insert(
        "Lead",
        json!({"LastName": "A", "Company": "C", "Phone": "03-1"}),
    );
    let b = e.org.insert(
        "Lead",
        json!({"LastName": "B", "Company": "C", "Phone": "03-2"}),
    );
    e.org.delete("Lead", &a);
    let upd = |id: &str| RecordUpdate {
        record: rref(SfObject::Lead, id),
        changes: vec![FieldChange::Description(Some("x".into()))],
    };
    let out = e.client.update_records(&e.t, &[upd(&a)]).await.unwrap();
    assert!(matches!(&out[0], Err(SfError::NotFound { .. })), "{out:?}");
    let out = e
        .client
        .update_records(&e.t, &[upd(&a), upd(&b)])
        .await
        .unwrap();
    assert!(matches!(&out[0], Err(SfError::NotFound { .. })), "{out:?}");
    assert!(out[1].is_ok());
    let got = e
        .client
        .fetch_records(&e.t, &[rref(SfObject::Lead, &a), rref(SfObject::Lead, &b)])
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "deleted records are absent");
}

// R32: Account names with SOQL metacharacters are escaped, found exactly.
#[tokio::test]
async fn r32_account_name_escaping() {
    let e = sim_env().await;
    for name in [r"A\B 商事", "100% _テスト_", "改行\nあり", r#"引用"符'"#] {
        let id = e.org.insert("Account", json!({ "Name": name }));
        let found = e.client.find_account(&e.t, name).await.unwrap();
        assert!(
            found.as_ref().is_some_and(|f| same_id(f.as_str(), &id)),
            "{name:?}: {found:?}"
        );
    }
    assert_eq!(e.client.find_account(&e.t, "100% _").await.unwrap(), None);
}

// UNABLE_TO_LOCK_ROW inside a Collections batch is per record: the locked ones fail with a
// transient error (the caller retries them), the others are created.
#[tokio::test]
async fn lock_row_in_batch_is_per_record_transient() {
    let e = sim_env().await;
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    e.org.set_fault(Fault::LockRow { times: 2 });
    let drafts: Vec<TaskDraft> = (0..5)
        .map(|i| draft(rref(SfObject::Lead, &lead), &format!("b-{i}")))
        .collect();
    let out = e.client.create_tasks(&e.t, &drafts).await.unwrap();
    let failed: Vec<&SfError> = out.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 2, "{out:?}");
    assert!(
        failed
            .iter()
            .all(|e| e.class() == domain::ErrorClass::Transient && e.code() == "UNABLE_TO_LOCK_ROW")
    );
    assert_eq!(e.org.count("Task"), 3);
}

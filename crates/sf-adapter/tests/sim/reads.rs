//! Reads against the simulator: import paging (R16), the R10 preflight, search by phone (R21),
//! converted Leads (R15), deletions and merges (R16), users (R23).

use super::support::*;
use chrono::Duration as ChronoDuration;
use domain::ports::{PageCursor, RecordQuery, SalesforceReader, SalesforceWriter};
use domain::{OrgProblem, PhoneNumber, SfError, SfObject, SyncTargets};
use serde_json::json;
use sf_sim::Fault;
use std::collections::HashSet;
use std::time::Duration;

fn lead_query() -> RecordQuery {
    RecordQuery {
        object: SfObject::Lead,
        since: None,
        modified_after: None,
        only_with_phone: false,
        exclude_converted: false,
    }
}

async fn fetch_all(e: &SimEnv, q: &RecordQuery) -> (Vec<domain::SfRecord>, u64) {
    let before = e.used();
    let mut out = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    let mut total = None;
    loop {
        let page = e.client.fetch_page(&e.t, q, cursor.take()).await.unwrap();
        // totalSize is the same on every page.
        assert_eq!(*total.get_or_insert(page.total_size), page.total_size);
        out.extend(page.records);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    (out, e.used() - before)
}

// R16: 4,500 Leads come back over ⌈4500/2000⌉ = 3 requests, mapped field by field.
#[tokio::test]
async fn r16_import_pages_through_all_leads_in_three_requests() {
    let e = sim_env().await;
    e.org.set_time(ts("2025-06-01T00:00:00Z"));
    let special = e.org.insert(
        "Lead",
        json!({
            "LastName": "電話", "FirstName": "太郎", "Company": "株式会社テスト",
            "Phone": "03-1234-5678", "Email": "taro@example.jp",
            "Street": "千代田1-1", "City": "千代田区", "State": "東京都", "PostalCode": "100-0001",
            "Country": "日本", "Description": "メモ",
            "SystemModstamp": "2025-05-20T20:49:32.000+0000",
            "LastModifiedDate": "2025-05-20T20:49:31.000+0000",
        }),
    );
    for i in 1..4500 {
        e.org.insert(
            "Lead",
            json!({"LastName": format!("リード{i}"), "Company": "会社", "Phone": format!("090-{:04}-{:04}", i / 10_000, i % 10_000)}),
        );
    }
    let (all, requests) = fetch_all(&e, &lead_query()).await;
    assert_eq!(all.len(), 4500);
    assert_eq!(requests, 3);
    let ids: HashSet<&str> = all.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(ids.len(), 4500, "no record twice");

    let r = all
        .iter()
        .find(|r| same_id(r.record.id.as_str(), &special))
        .unwrap();
    assert_eq!(r.record.object, SfObject::Lead);
    assert_eq!(r.last_name.as_deref(), Some("電話"));
    assert_eq!(r.first_name.as_deref(), Some("太郎"));
    assert_eq!(r.company.as_deref(), Some("株式会社テスト"));
    assert_eq!(r.phone.as_deref(), Some("03-1234-5678"));
    assert_eq!(r.email.as_deref(), Some("taro@example.jp"));
    assert_eq!(r.description.as_deref(), Some("メモ"));
    assert_eq!(
        r.address.as_deref(),
        Some("100-0001 東京都 千代田区 千代田1-1")
    );
    assert!(!r.is_converted);
    assert_eq!(r.system_modstamp, ts("2025-05-20T20:49:32Z"));
    assert_eq!(r.last_modified, ts("2025-05-20T20:49:31Z"));

    // Pages come in (SystemModstamp, Id) order: a resumed run can trust the order.
    let keys: Vec<_> = all
        .iter()
        .map(|r| (r.system_modstamp, r.record.id.as_str().to_owned()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // Salesforce may return fewer records than asked: the adapter just follows the pages.
    e.org.set_page_size_cap(Some(500));
    let (all, requests) = fetch_all(&e, &lead_query()).await;
    assert_eq!(all.len(), 4500);
    assert_eq!(requests, 9);
}

// R16 window, R12 phone filter, R15 converted Leads left out; Contacts with Account.Name and
// the mailing address (R10).
#[tokio::test]
async fn r16_r12_r15_filters_and_contact_mapping() {
    let e = sim_env().await;
    e.org.set_time(ts("2025-06-01T00:00:00Z"));
    let old = "2024-04-01T00:00:00.000+0000";
    let recent = "2025-05-01T00:00:00.000+0000";
    let mk = |phone: Option<&str>, modified: &str, converted: bool| {
        let mut v = json!({
            "LastName": "L", "Company": "C",
            "LastModifiedDate": modified, "SystemModstamp": modified,
        });
        if let Some(p) = phone {
            v["Phone"] = json!(p);
        }
        if converted {
            v["IsConverted"] = json!(true);
        }
        e.org.insert("Lead", v)
    };
    let keep = mk(Some("03-1111-2222"), recent, false);
    let _too_old = mk(Some("03-1111-3333"), old, false);
    let _no_phone = mk(None, recent, false);
    let _empty_phone = mk(Some(""), recent, false);
    let converted = mk(Some("03-1111-4444"), recent, true);

    let q = RecordQuery {
        modified_after: Some(ts("2025-06-01T00:00:00Z") - ChronoDuration::days(365)),
        only_with_phone: true,
        exclude_converted: true,
        ..lead_query()
    };
    let (got, requests) = fetch_all(&e, &q).await;
    assert_eq!(requests, 1);
    let ids: Vec<&str> = got.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(same_id(ids[0], &keep));

    // Incremental (`since`, converted kept so they can be relinked).
    let q = RecordQuery {
        since: Some(ts("2025-04-30T00:00:00Z")),
        ..lead_query()
    };
    let (got, _) = fetch_all(&e, &q).await;
    assert_eq!(got.len(), 4);
    assert!(
        got.iter()
            .any(|r| same_id(r.record.id.as_str(), &converted) && r.is_converted)
    );

    let acc = e.org.insert("Account", json!({"Name": "株式会社サンプル"}));
    let c = e.org.insert(
        "Contact",
        json!({
            "LastName": "山田", "FirstName": "花子", "AccountId": acc, "Phone": "+81 3 1234 5678",
            "Email": "hanako@example.jp", "MailingStreet": "梅田1-1", "MailingCity": "大阪市北区",
            "MailingState": "大阪府", "MailingPostalCode": "530-0001", "Description": "VIP",
        }),
    );
    let lone = e.org.insert(
        "Contact",
        json!({"LastName": "一人", "Phone": "06-1111-2222"}),
    );
    let (got, _) = fetch_all(
        &e,
        &RecordQuery {
            object: SfObject::Contact,
            ..lead_query()
        },
    )
    .await;
    assert_eq!(got.len(), 2);
    let r = got
        .iter()
        .find(|r| same_id(r.record.id.as_str(), &c))
        .unwrap();
    assert_eq!(r.record.object, SfObject::Contact);
    assert_eq!(r.company.as_deref(), Some("株式会社サンプル"));
    assert_eq!(r.last_name.as_deref(), Some("山田"));
    assert_eq!(r.first_name.as_deref(), Some("花子"));
    assert_eq!(r.email.as_deref(), Some("hanako@example.jp"));
    assert_eq!(r.description.as_deref(), Some("VIP"));
    assert_eq!(
        r.address.as_deref(),
        Some("530-0001 大阪府 大阪市北区 梅田1-1")
    );
    let r = got
        .iter()
        .find(|r| same_id(r.record.id.as_str(), &lone))
        .unwrap();
    assert_eq!(r.company, None);
    assert_eq!(r.address, None);
}

// R10: a field hidden by field-level security is named, object and field, by the preflight;
// an import that reads it anyway fails naming it too (never a silent partial import).
#[tokio::test]
async fn r10_hidden_field_is_named() {
    let e = sim_env().await;
    e.client
        .check_field_access(&e.t, &[SfObject::Lead, SfObject::Contact])
        .await
        .unwrap();
    e.org.set_fault(Fault::HiddenField {
        object: "Lead".into(),
        field: "Email".into(),
    });
    let r = e
        .client
        .check_field_access(&e.t, &[SfObject::Contact, SfObject::Lead])
        .await;
    match r {
        Err(SfError::OrgConfig {
            problem: OrgProblem::HiddenField,
            object,
            field,
            ..
        }) => {
            assert_eq!(object.as_deref(), Some("Lead"));
            assert_eq!(field.as_deref(), Some("Email"));
        }
        other => panic!("{other:?}"),
    }
    let r = e.client.fetch_page(&e.t, &lead_query(), None).await;
    match r {
        Err(SfError::OrgConfig {
            problem: OrgProblem::HiddenField,
            object,
            field,
            ..
        }) => {
            assert_eq!(object.as_deref(), Some("Lead"));
            assert_eq!(field.as_deref(), Some("Email"));
        }
        other => panic!("{other:?}"),
    }
}

// R13/R21: every formatting of the number is found with one request; converted Leads are not;
// targets are respected.
#[tokio::test]
async fn r21_search_by_phone_finds_every_formatting() {
    let e = sim_env().await;
    let l1 = e.org.insert(
        "Lead",
        json!({"LastName": "括弧", "Company": "C", "Phone": "(03)1234-5678"}),
    );
    let l2 = e.org.insert(
        "Lead",
        json!({"LastName": "全角", "Company": "C", "Phone": "０３－１２３４－５６７８"}),
    );
    let c1 = e.org.insert(
        "Contact",
        json!({"LastName": "国際", "Phone": "+81 3 1234 5678"}),
    );
    let contact = e.org.insert("Contact", json!({"LastName": "変換先"}));
    e.org.insert(
        "Lead",
        json!({"LastName": "変換済", "Company": "C", "Phone": "03-1234-5678",
               "IsConverted": true, "ConvertedContactId": contact}),
    );
    e.org.insert(
        "Lead",
        json!({"LastName": "別番号", "Company": "C", "Phone": "03-1234-5679"}),
    );
    let trunk = e.org.insert(
        "Contact",
        json!({"LastName": "国際括弧", "Phone": "+81-(0)3-1234-5678"}),
    );
    e.org.index_now();
    let n = PhoneNumber::parse("03-1234-5678").unwrap();

    let before = e.used();
    let hits = e
        .client
        .search_by_phone(&e.t, &n, SyncTargets::BOTH)
        .await
        .unwrap();
    assert_eq!(e.used() - before, 1);
    let mut found: Vec<(SfObject, String)> = hits
        .iter()
        .map(|r| (r.record.object, r.record.id.as_str().to_owned()))
        .collect();
    found.sort();
    assert_eq!(found.len(), 4, "{found:?}");
    for id in [&l1, &l2, &c1, &trunk] {
        assert!(found.iter().any(|(_, f)| same_id(f, id)), "{id} missing");
    }

    let leads_only = SyncTargets {
        lead: true,
        contact: false,
    };
    let hits = e
        .client
        .search_by_phone(&e.t, &n, leads_only)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|r| r.record.object == SfObject::Lead));
    let contacts_only = SyncTargets {
        lead: false,
        contact: true,
    };
    let hits = e
        .client
        .search_by_phone(&e.t, &n, contacts_only)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|r| r.record.object == SfObject::Contact));
}

// R13/R21 outside Japan: a number stored in international form is found through the second
// search term (E.164 digits), and its national form does not match other numbers.
#[tokio::test]
async fn r21_search_foreign_number() {
    let e = sim_env().await;
    let us = e.org.insert(
        "Contact",
        json!({"LastName": "US", "Phone": "+1 (415) 555-1212"}),
    );
    e.org.insert(
        "Lead",
        json!({"LastName": "JP", "Company": "C", "Phone": "415-555-1212"}),
    );
    e.org.index_now();
    let n = PhoneNumber::parse("+14155551212").unwrap();
    let before = e.used();
    let hits = e
        .client
        .search_by_phone(&e.t, &n, SyncTargets::BOTH)
        .await
        .unwrap();
    assert!(e.used() - before <= 2);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(same_id(hits[0].record.id.as_str(), &us));
}

// R21/R34: Salesforce's search index lags behind inserts; the simulator's clock moves it.
#[tokio::test]
async fn r21_search_lag_hides_new_records_until_indexed() {
    let e = sim_env().await;
    e.org.set_time(ts("2025-06-01T00:00:00Z"));
    e.org.set_fault(Fault::SearchLag(Duration::from_secs(120)));
    let id = e.org.insert(
        "Lead",
        json!({"LastName": "新規", "Company": "C", "Phone": "090-1234-5678"}),
    );
    let n = PhoneNumber::parse("09012345678").unwrap();
    let hits = e
        .client
        .search_by_phone(&e.t, &n, SyncTargets::BOTH)
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    e.org.advance(Duration::from_secs(121));
    let hits = e
        .client
        .search_by_phone(&e.t, &n, SyncTargets::BOTH)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(same_id(hits[0].record.id.as_str(), &id));

    let id2 = e.org.insert(
        "Contact",
        json!({"LastName": "新規2", "Phone": "090-1234-5678"}),
    );
    let hits = e
        .client
        .search_by_phone(&e.t, &n, SyncTargets::BOTH)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    e.org.index_now();
    let hits = e
        .client
        .search_by_phone(&e.t, &n, SyncTargets::BOTH)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().any(|r| same_id(r.record.id.as_str(), &id2)));
}

// R15: a converted Lead shows its Contact, and cannot be written.
#[tokio::test]
async fn r15_converted_lead_is_read_with_contact_and_refuses_writes() {
    let e = sim_env().await;
    let contact = e.org.insert(
        "Contact",
        json!({"LastName": "変換先", "Phone": "03-5555-0000"}),
    );
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "変換済", "Company": "C", "Phone": "03-5555-0000",
               "IsConverted": true, "ConvertedContactId": contact}),
    );
    let other = e.org.insert(
        "Lead",
        json!({"LastName": "普通", "Company": "C", "Phone": "03-5555-0001"}),
    );
    let got = e
        .client
        .fetch_records(
            &e.t,
            &[
                rref(SfObject::Lead, &lead),
                rref(SfObject::Contact, &contact),
                rref(SfObject::Lead, &other),
            ],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    let l = got
        .iter()
        .find(|r| same_id(r.record.id.as_str(), &lead))
        .unwrap();
    assert!(l.is_converted);
    assert!(same_id(
        l.converted_contact_id.as_ref().unwrap().as_str(),
        &contact
    ));

    let update = |id: &str| domain::ports::RecordUpdate {
        record: rref(SfObject::Lead, id),
        changes: vec![domain::ports::FieldChange::Phone(Some(
            "03-9999-9999".into(),
        ))],
    };
    // Alone (PATCH) and in a batch (Collections): the converted one fails, the other is written.
    for updates in [vec![update(&lead)], vec![update(&lead), update(&other)]] {
        let out = e.client.update_records(&e.t, &updates).await.unwrap();
        assert!(
            matches!(
                &out[0],
                Err(SfError::OrgConfig {
                    problem: OrgProblem::ConvertedLead,
                    ..
                })
            ),
            "{out:?}"
        );
        assert_eq!(e.field("Lead", &lead, "Phone"), json!("03-5555-0000"));
        if out.len() == 2 {
            assert!(out[1].is_ok(), "{out:?}");
            assert_eq!(e.field("Lead", &other, "Phone"), json!("03-9999-9999"));
        }
    }
}

// R16: deleted and merged-away records come back; the merged one names the winner.
#[tokio::test]
async fn r16_deleted_and_merged_records() {
    let e = sim_env().await;
    e.org.set_time(ts("2025-06-01T00:00:00Z"));
    let a = e.org.insert(
        "Lead",
        json!({"LastName": "A", "Company": "C", "Phone": "03-1"}),
    );
    let b = e.org.insert(
        "Lead",
        json!({"LastName": "B", "Company": "C", "Phone": "03-2"}),
    );
    let c = e.org.insert(
        "Lead",
        json!({"LastName": "C", "Company": "C", "Phone": "03-3"}),
    );
    let _alive = e.org.insert(
        "Lead",
        json!({"LastName": "D", "Company": "C", "Phone": "03-4"}),
    );
    e.org.advance(Duration::from_secs(60));
    e.org.delete("Lead", &a);
    e.org.merge("Lead", &b, &c);
    e.org.advance(Duration::from_secs(60));

    let since = ts("2025-06-01T00:00:30Z");
    let until = ts("2025-06-01T00:02:00Z");
    let got = e
        .client
        .deleted_since(&e.t, SfObject::Lead, since, until)
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    let da = got
        .iter()
        .find(|d| same_id(d.record.id.as_str(), &a))
        .unwrap();
    assert_eq!(da.merged_into, None);
    let dc = got
        .iter()
        .find(|d| same_id(d.record.id.as_str(), &c))
        .unwrap();
    assert!(same_id(dc.merged_into.as_ref().unwrap().as_str(), &b));

    // Outside the window: nothing.
    let got = e
        .client
        .deleted_since(&e.t, SfObject::Lead, ts("2025-06-01T00:00:00Z"), since)
        .await
        .unwrap();
    assert!(got.is_empty(), "{got:?}");
    let got = e
        .client
        .deleted_since(&e.t, SfObject::Contact, since, until)
        .await
        .unwrap();
    assert!(got.is_empty());
}

// R23: active users with parsed emails; inactive users excluded.
#[tokio::test]
async fn r23_active_users() {
    let e = sim_env().await;
    let users = e.client.active_users(&e.t).await.unwrap();
    let emails: Vec<String> = users
        .iter()
        .map(|u| u.email.as_ref().unwrap().as_str().to_lowercase())
        .collect();
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users.iter().all(|u| u.active));
    assert!(emails.contains(&ADMIN_EMAIL.to_owned()));
    assert!(emails.contains(&"sales.rep@sim.example.jp".to_owned()));
    assert!(!emails.iter().any(|m| m.starts_with("gone")));
    assert!(
        users
            .iter()
            .any(|u| same_id(u.id.as_str(), &e.org.admin_user_id()) && !u.name.is_empty())
    );
}

// Writes to a record another reader fetched stay consistent: the Task write bumps the Who's
// SystemModstamp, so an incremental sync sees the Lead again (R16, reference §2.5).
#[tokio::test]
async fn r16_task_insert_bumps_who_modstamp() {
    let e = sim_env().await;
    e.org.set_time(ts("2025-06-01T00:00:00Z"));
    let lead = e.org.insert(
        "Lead",
        json!({"LastName": "L", "Company": "C", "Phone": "03-1"}),
    );
    e.org.advance(Duration::from_secs(3600));
    let draft = super::writes::draft(rref(SfObject::Lead, &lead), "call-bump");
    e.client.create_tasks(&e.t, &[draft]).await.unwrap();
    let q = RecordQuery {
        since: Some(ts("2025-06-01T00:30:00Z")),
        ..lead_query()
    };
    let (got, _) = fetch_all(&e, &q).await;
    assert_eq!(got.len(), 1);
}

// R10 on reads other than the import: a search that returns a hidden field names it too.
#[tokio::test]
async fn r10_hidden_field_in_search_is_named() {
    let e = sim_env().await;
    e.org.set_fault(Fault::HiddenField {
        object: "Contact".into(),
        field: "Description".into(),
    });
    let n = PhoneNumber::parse("03-1234-5678").unwrap();
    let r = e.client.search_by_phone(&e.t, &n, SyncTargets::BOTH).await;
    match r {
        Err(SfError::OrgConfig {
            problem: OrgProblem::HiddenField,
            object,
            field,
            ..
        }) => {
            assert_eq!(object.as_deref(), Some("Contact"));
            assert_eq!(field.as_deref(), Some("Description"));
        }
        other => panic!("{other:?}"),
    }
}

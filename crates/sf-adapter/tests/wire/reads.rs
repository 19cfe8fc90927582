//! Reads: paging costs, phone search, field preflight, deletions, users.

use crate::support::*;
use chrono::{TimeZone, Utc};
use domain::ports::{ApiUsageView, PageCursor, RecordQuery, SalesforceReader};
use domain::{OrgProblem, PhoneNumber, SalesforceRecordRef, SfError, SfObject, SyncTargets};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer};

fn import_query() -> RecordQuery {
    RecordQuery {
        object: SfObject::Lead,
        since: None,
        modified_after: Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
        only_with_phone: true,
        exclude_converted: true,
    }
}

/// Serves `n` Leads in pages of 2000 via `nextRecordsUrl`.
async fn serve_leads(server: &MockServer, n: usize) {
    let pages = n.div_ceil(2000).max(1);
    for p in 0..pages {
        let records: Vec<Value> = (p * 2000..((p + 1) * 2000).min(n)).map(lead_json).collect();
        let last = p + 1 == pages;
        let mut body = json!({"totalSize": n, "done": last, "records": records});
        if !last {
            body["nextRecordsUrl"] =
                json!(format!("{V}/query/01gRO0000016PIAYA2-{}", (p + 1) * 2000));
        }
        let m = if p == 0 {
            Mock::given(method("GET"))
                .and(path(format!("{V}/query")))
                .and(QContains(
                    "FROM Lead WHERE LastModifiedDate >= 2025-01-01T00:00:00Z",
                ))
        } else {
            Mock::given(method("GET"))
                .and(path(format!("{V}/query/01gRO0000016PIAYA2-{}", p * 2000)))
        };
        m.respond_with(sf_json(200, body))
            .expect(1)
            .mount(server)
            .await;
    }
}

// R16 / C3: importing N records costs ⌈N/2000⌉ query requests, one page in memory at a time.
#[tokio::test]
async fn r16_import_costs_one_request_per_2000_records() {
    for n in [0usize, 1, 2000, 2001, 4500] {
        let e = env().await;
        serve_leads(&e.instance, n).await;
        let mut cursor = None;
        let mut seen = 0;
        loop {
            let page = e
                .client
                .fetch_page(&e.t, &import_query(), cursor)
                .await
                .unwrap();
            assert!(page.records.len() <= 2000);
            assert_eq!(page.total_size, n as u64);
            seen += page.records.len();
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, n);
        let expected = n.div_ceil(2000).max(1);
        assert_eq!(e.client.requests_sent(&e.t), expected as u64, "n={n}");
        assert_eq!(count(&e.instance).await, expected, "n={n}");
    }
}

// A cursor is a path on the instance; anything else never leaves the process with a token.
#[tokio::test]
async fn foreign_cursor_is_refused_without_a_request() {
    let e = env().await;
    for bad in [
        "https://evil.example/services/data/v62.0/query/x",
        "/services/data/../../x",
        "//evil.example/x",
    ] {
        let err = e
            .client
            .fetch_page(&e.t, &import_query(), Some(PageCursor(bad.to_owned())))
            .await
            .unwrap_err();
        assert!(matches!(err, SfError::BadData { .. }), "{bad}: {err:?}");
    }
    assert_eq!(count(&e.instance).await, 0);
}

// R21: national digits first; E.164 digits only when the first search confirms nothing.
#[tokio::test]
async fn r21_search_tries_e164_digits_only_after_an_empty_national_search() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/search")))
        .and(QContains("FIND {0312345678} IN PHONE FIELDS"))
        .respond_with(sf_json(200, json!({"searchRecords": []})))
        .expect(1)
        .mount(&e.instance)
        .await;
    let mut hit = lead_json(7);
    hit["Phone"] = json!("+81 3-1234-5678");
    let mut other = lead_json(8);
    other["Phone"] = json!("+81 3-1234-5679");
    Mock::given(method("GET"))
        .and(path(format!("{V}/search")))
        .and(QContains(
            "FIND {81312345678} IN PHONE FIELDS RETURNING Lead(",
        ))
        .respond_with(sf_json(200, json!({"searchRecords": [hit, other]})))
        .expect(1)
        .mount(&e.instance)
        .await;
    let n = PhoneNumber::parse("03-1234-5678").unwrap();
    let found = e
        .client
        .search_by_phone(&e.t, &n, SyncTargets::BOTH)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].phone.as_deref(), Some("+81 3-1234-5678"));
}

#[tokio::test]
async fn r21_search_found_by_national_digits_costs_one_request() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/search")))
        .and(QContains("{0312345678}"))
        .respond_with(sf_json(200, fixture("search_response.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let n = PhoneNumber::parse("0312345678").unwrap();
    let only_lead = SyncTargets {
        lead: true,
        contact: false,
    };
    let found = e.client.search_by_phone(&e.t, &n, only_lead).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(e.client.requests_sent(&e.t), 1);
    let q = e.instance.received_requests().await.unwrap()[0].url.clone();
    let sosl: String = q
        .query_pairs()
        .find(|(k, _)| k == "q")
        .unwrap()
        .1
        .into_owned();
    assert!(
        !sosl.contains("Contact("),
        "only the targeted objects: {sosl}"
    );
    assert!(sosl.contains("WHERE IsConverted = false"));
}

// R10: a hidden field fails the preflight, naming object, field and the Setup path.
#[tokio::test]
async fn r10_field_preflight_names_the_hidden_field() {
    let e = env().await;
    let lead_fields = [
        "Id",
        "Phone",
        "LastName",
        "FirstName",
        "Company",
        "Address",
        "Description",
        "IsConverted",
        "ConvertedContactId",
        "SystemModstamp",
        "LastModifiedDate",
    ];
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Lead/describe")))
        .respond_with(sf_json(200, json!({"name": "Lead", "fields": lead_fields.iter().map(|n| json!({"name": n, "type": "string"})).collect::<Vec<_>>()})))
        .expect(1)
        .mount(&e.instance)
        .await;
    let contact_fields = [
        "Id",
        "Phone",
        "LastName",
        "FirstName",
        "AccountId",
        "Email",
        "MailingAddress",
        "Description",
        "SystemModstamp",
        "LastModifiedDate",
    ];
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/describe")))
        .respond_with(sf_json(200, json!({"name": "Contact", "fields": contact_fields.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()})))
        .expect(1)
        .mount(&e.instance)
        .await;
    e.client
        .check_field_access(&e.t, &[SfObject::Contact])
        .await
        .unwrap();
    let err = e
        .client
        .check_field_access(&e.t, &[SfObject::Lead])
        .await
        .unwrap_err();
    let SfError::OrgConfig {
        problem: OrgProblem::HiddenField,
        object,
        field,
        cause,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (object.as_deref(), field.as_deref()),
        (Some("Lead"), Some("Email"))
    );
    assert!(cause.contains("Set Field-Level Security"), "{cause}");
}

// R10 at query time: INVALID_FIELD from SOQL is the same hidden-field error.
#[tokio::test]
async fn r10_invalid_field_on_query_is_hidden_field() {
    let e = env().await;
    Mock::given(method("GET"))
        .respond_with(sf_json(400, fixture("error_invalid_field.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let err = e
        .client
        .fetch_page(&e.t, &import_query(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SfError::OrgConfig { problem: OrgProblem::HiddenField, field: Some(f), .. } if f == "Email"),
        "{err:?}"
    );
}

// R16: deletions and merges via queryAll.
#[tokio::test]
async fn r16_deleted_and_merged_via_query_all() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(QContains(
            "FROM Contact WHERE IsDeleted = true AND SystemModstamp >= 2025-03-01T00:00:00Z",
        ))
        .respond_with(sf_json(200, fixture("deleted_query.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let since = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2025, 3, 6, 0, 0, 0).unwrap();
    let del = e
        .client
        .deleted_since(&e.t, SfObject::Contact, since, until)
        .await
        .unwrap();
    assert_eq!(del.len(), 2);
    assert_eq!(del[1].merged_into, Some(sid("0035g00000XyZaBAAV")));
}

// R23: active users, all pages.
#[tokio::test]
async fn r23_active_users_follow_pages() {
    let e = env().await;
    let mut first = fixture("users_query.json");
    first["done"] = json!(false);
    first["nextRecordsUrl"] = json!(format!("{V}/query/01gUSERS-2000"));
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(QContains("FROM User WHERE IsActive = true"))
        .respond_with(sf_json(200, first))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query/01gUSERS-2000")))
        .respond_with(sf_json(200, json!({"totalSize": 3, "done": true, "records": [
            {"attributes": {"type": "User"}, "Id": "005000000000003", "Email": "c@x.jp", "Name": "C", "IsActive": true}
        ]})))
        .expect(1)
        .mount(&e.instance)
        .await;
    let users = e.client.active_users(&e.t).await.unwrap();
    assert_eq!(users.len(), 3);
}

// Records by id: one query per object type present.
#[tokio::test]
async fn fetch_records_queries_each_object_once() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^{V}/query$")))
        .and(QContains("FROM Lead WHERE Id IN ('00Q000000000001"))
        .respond_with(sf_json(
            200,
            json!({"totalSize": 1, "done": true, "records": [lead_json(1)]}),
        ))
        .expect(1)
        .mount(&e.instance)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(QContains("FROM Contact WHERE Id IN ("))
        .respond_with(sf_json(200, fixture("query_contact_page.json")))
        .expect(1)
        .mount(&e.instance)
        .await;
    let refs = vec![
        SalesforceRecordRef {
            object: SfObject::Lead,
            id: sid("00Q000000000001"),
        },
        SalesforceRecordRef {
            object: SfObject::Contact,
            id: sid("0035g00000XyZaBAAV"),
        },
        SalesforceRecordRef {
            object: SfObject::Contact,
            id: sid("0035g00000XyZaCAAV"),
        },
    ];
    let recs = e.client.fetch_records(&e.t, &refs).await.unwrap();
    assert_eq!(recs.len(), 3);
    assert!(e.client.fetch_records(&e.t, &[]).await.unwrap().is_empty());
    assert_eq!(e.client.requests_sent(&e.t), 2);
}

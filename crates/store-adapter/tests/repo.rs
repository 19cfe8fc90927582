//! The repository suite: every test body runs against SQLite and (when configured)
//! PostgreSQL; see `common`. Test names cite the SPEC rules they cover.

// A test binary: helpers outside `#[test]` functions panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, Duration as CDuration, Utc};
use common::{KEY1, KEY2, TestDb, t0};
use domain::ports::*;
use domain::*;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use store_adapter::{CustomerEdit, CustomerFilter, Keyring, Store};

both_backends!(
    migrations_apply_and_rerun_as_noops,
    tenant_isolation_across_every_port,
    r25_r27_same_call_event_is_duplicate_with_one_queue_item,
    intake_upserts_member_and_customer_without_overwriting_salesforce_data,
    r27_withheld_number_forms_no_customer,
    queue_concurrent_claimers_never_share_or_lose_items,
    queue_expired_lease_is_claimed_again_and_stale_token_refused,
    queue_retry_hold_and_dead_letter_keep_items,
    r7_tokens_are_encrypted_at_rest,
    r7_decrypt_with_wrong_or_unknown_key_fails_naming_the_key,
    r7_key_rotation_reads_old_and_writes_current,
    r18_one_customer_per_number,
    r16_apply_changes_creates_updates_unlinks_and_moves_watermark,
    r17_apply_changes_is_all_or_nothing,
    r14_duplicates_are_listed_cleared_and_never_lost,
    r11_admin_edit_marks_only_synced_fields_dirty,
    r11_write_back_mark_respects_later_edits,
    r18_find_by_numbers_with_2000_numbers,
    r17_sync_runs_are_recorded,
    r34_locks_refuse_a_second_holder_until_expiry,
    r1_r6_settings_round_trip,
    r25_call_task_round_trip,
    r23_directory_users_and_members,
    tenants_webhook_secret_and_admin_token,
    audit_trail_newest_first,
    customer_list_filters_and_pages,
);

// ---------------------------------------------------------------------------------------------
// fixtures

fn tid(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn sfid(prefix: &str, n: u64) -> SalesforceId {
    SalesforceId::parse(&format!("{prefix}{n:012}")).unwrap()
}

fn lead(n: u64) -> SalesforceRecordRef {
    SalesforceRecordRef {
        object: SfObject::Lead,
        id: sfid("00Q", n),
    }
}

fn contact(n: u64) -> SalesforceRecordRef {
    SalesforceRecordRef {
        object: SfObject::Contact,
        id: sfid("003", n),
    }
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

/// A Tokyo landline per n: 03-5000-0000 + n.
fn number(n: u64) -> PhoneNumber {
    let d = 50_000_000 + n;
    phone(&format!("03-{}-{:04}", d / 10_000, d % 10_000))
}

fn link(r: SalesforceRecordRef, at: DateTime<Utc>) -> SfLink {
    SfLink {
        record: r,
        system_modstamp: Some(at),
    }
}

fn fields(name: &str) -> CustomerFields {
    CustomerFields {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn new_customer(n: u64, r: Option<SalesforceRecordRef>) -> NewCustomer {
    NewCustomer {
        number: number(n),
        fields: CustomerFields {
            name: Some(format!("顧客 {n}")),
            company: Some("株式会社テスト".into()),
            email: Some(format!("c{n}@example.jp")),
            address: Some("東京都千代田区".into()),
            memo: None,
        },
        link: r.map(|r| link(r, t0())),
    }
}

async fn tenant(s: &Store, id: &str) -> TenantId {
    let t = tid(id);
    s.create_tenant(&t, &format!("{id} inc"), t0())
        .await
        .unwrap();
    t
}

fn event(call: &str, kind: EventKind, party: &str) -> CallEvent {
    CallEvent {
        call_id: CallId::parse(call).unwrap(),
        kind,
        direction: Some(Direction::Inbound),
        status_code: None,
        party: PartyNumber::classify(party),
        contact: ContactInfo {
            name: Some("山田 花子".into()),
            email: Some("hanako@example.jp".into()),
            ..Default::default()
        },
        member: Some(MemberInfo {
            external_id: Some("u-1".into()),
            name: Some("担当 一郎".into()),
            email: Some("Ichiro@Example.jp".into()),
        }),
        started_at: None,
        answered_at: None,
        ended_at: None,
        duration_secs: Some(192),
        memo: None,
        call_url: None,
        recording_url: None,
        transcript: None,
        extra: BTreeMap::new(),
    }
}

fn raw(body: &str) -> RawPayload {
    RawPayload {
        content_type: "application/x-www-form-urlencoded".into(),
        body: body.as_bytes().to_vec(),
        request_id: Some("req-1".into()),
    }
}

fn failure(code: &str) -> Failure {
    Failure {
        class: ErrorClass::Transient,
        code: code.into(),
        message_en: "Salesforce is unavailable".into(),
        message_ja: "Salesforce に接続できません".into(),
        fix_en: None,
        fix_ja: None,
    }
}

fn creds(access: &str, refresh: &str) -> Credentials {
    Credentials {
        instance_url: "https://example.my.salesforce.com".into(),
        access_token: SecretString::from(access.to_owned()),
        refresh_token: SecretString::from(refresh.to_owned()),
        user: ConnectedUser {
            user_id: sfid("005", 1),
            org_id: sfid("00D", 1),
            email: Some(EmailAddress::parse("admin@example.jp").unwrap()),
            name: "管理者".into(),
        },
        issued_at: t0(),
    }
}

async fn accept(s: &Store, t: &TenantId, e: &CallEvent) -> Accepted {
    s.accept(t, &raw("x"), e, t0()).await.unwrap()
}

const LEASE: Duration = Duration::from_secs(60);

/// Raw bytes of the credentials row's columns (what a database dump would show).
async fn credential_bytes(s: &Store, t: &TenantId) -> (Vec<u8>, String, Vec<u8>, String) {
    let c = s.connection();
    let sql = match s.backend() {
        store_adapter::Backend::Postgres => {
            "SELECT access_token, access_key_id, refresh_token, refresh_key_id FROM credentials WHERE tenant_id = $1"
        }
        store_adapter::Backend::Sqlite => {
            "SELECT access_token, access_key_id, refresh_token, refresh_key_id FROM credentials WHERE tenant_id = ?"
        }
    };
    let row = c
        .query_one_raw(Statement::from_sql_and_values(
            c.get_database_backend(),
            sql,
            [t.as_str().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "access_token").unwrap(),
        row.try_get("", "access_key_id").unwrap(),
        row.try_get("", "refresh_token").unwrap(),
        row.try_get("", "refresh_key_id").unwrap(),
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// schema

async fn migrations_apply_and_rerun_as_noops(db: &TestDb) {
    let s = &db.store;
    // The helper migrated an empty database; again is a no-op, and so is a third time.
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    let t = tenant(s, "acme").await;
    assert_eq!(s.tenants().await.unwrap().len(), 1);
    assert_eq!(s.customer_count(&t).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// tenancy

async fn tenant_isolation_across_every_port(db: &TestDb) {
    let s = &db.store;
    let a = tenant(s, "tenant-a").await;
    let b = tenant(s, "tenant-b").await;

    let e = event("call-1", EventKind::CallEnded, "03-1234-5678");
    let Accepted::New { event_id } = accept(s, &a, &e).await else {
        panic!("first delivery must be new")
    };
    s.save_settings(&a, &IntegrationSettings::default())
        .await
        .unwrap();
    s.save(&a, &creds("a-access", "a-refresh")).await.unwrap();
    s.save_call_task(
        &a,
        &CallTask {
            call_id: e.call_id.clone(),
            task_id: sfid("00T", 1),
            who: lead(1),
            owner: None,
            description: "d".into(),
            continuation_task_ids: vec![],
        },
    )
    .await
    .unwrap();
    s.start_run(&a, SyncKind::Initial, t0()).await.unwrap();
    s.save_users(
        &a,
        &[SfUser {
            id: sfid("005", 9),
            email: None,
            name: "u".into(),
            active: true,
        }],
    )
    .await
    .unwrap();
    assert!(s.try_lock(&a, "sync", "w1", LEASE, t0()).await.unwrap());
    s.apply_changes(
        &a,
        CustomerChanges {
            creates: vec![new_customer(1, Some(lead(1)))],
            duplicates: vec![DuplicateEntry {
                number: number(1).e164().into(),
                record: lead(2),
                winner: lead(1),
                system_modstamp: t0(),
            }],
            watermark: Some((SfObject::Lead, t0())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let a_customer = s.find_by_number(&a, "+81312345678").await.unwrap().unwrap();

    // B sees none of it.
    assert_eq!(s.find_by_number(&b, "+81312345678").await.unwrap(), None);
    assert_eq!(s.get(&b, a_customer.id).await.unwrap(), None);
    assert!(
        s.find_by_numbers(&b, &[number(1).e164().into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.find_by_records(&b, &[lead(1)]).await.unwrap().is_empty());
    assert!(
        s.customers(&b, &CustomerFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.duplicates(&b, 10).await.unwrap().is_empty());
    assert_eq!(s.watermark(&b, SfObject::Lead).await.unwrap(), None);
    assert_eq!(s.event(&b, event_id).await.unwrap(), None);
    assert!(s.call_events(&b, &e.call_id).await.unwrap().is_empty());
    assert!(matches!(
        s.set_outcome(
            &b,
            event_id,
            &EventOutcome::Skipped {
                reason: SkipReason::NoMatch
            }
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.depth(&b).await.unwrap(), QueueDepth::default());
    assert_eq!(s.settings(&b).await.unwrap(), None);
    assert!(s.load(&b).await.unwrap().is_none());
    assert_eq!(s.call_task(&b, &e.call_id).await.unwrap(), None);
    assert!(s.runs(&b, 10).await.unwrap().is_empty());
    assert!(s.users(&b).await.unwrap().is_empty());
    assert!(s.members(&b).await.unwrap().is_empty());
    assert!(
        s.try_lock(&b, "sync", "w2", LEASE, t0()).await.unwrap(),
        "locks are per tenant"
    );
    // The same call id in B is a different event.
    assert!(matches!(accept(s, &b, &e).await, Accepted::New { .. }));
    // A link or edit aimed at A's customer through B finds nothing.
    assert!(matches!(
        s.link(&b, a_customer.id, &link(lead(5), t0())).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.edit_customer(&b, a_customer.id, &CustomerEdit::default(), t0())
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Claims are the one cross-tenant read, and carry their tenant.
    let items = s.claim("w", 10, LEASE, t0()).await.unwrap();
    let tenants: HashSet<_> = items.iter().map(|i| i.tenant.clone()).collect();
    assert_eq!(tenants, HashSet::from([a.clone(), b.clone()]));
    // Writing to an unknown tenant is refused, not created.
    assert!(matches!(
        s.save_settings(&tid("nobody"), &IntegrationSettings::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// intake

async fn r25_r27_same_call_event_is_duplicate_with_one_queue_item(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let e = event("22232", EventKind::CallEnded, "03-1234-5678");
    let Accepted::New { event_id } = accept(s, &t, &e).await else {
        panic!("first delivery must be new")
    };
    assert_eq!(accept(s, &t, &e).await, Accepted::Duplicate { event_id });
    // Another event of the same call is new.
    let memo = event("22232", EventKind::MemoSaved, "03-1234-5678");
    assert!(matches!(accept(s, &t, &memo).await, Accepted::New { .. }));
    assert_eq!(s.depth(&t).await.unwrap().ready, 2);

    let stored = s.event(&t, event_id).await.unwrap().unwrap();
    assert_eq!(stored.event, e);
    assert_eq!(stored.request_id.as_deref(), Some("req-1"));
    assert_eq!(stored.received_at, t0());
    let raw_back = s.raw_payload(&t, event_id).await.unwrap().unwrap();
    assert_eq!(raw_back.body, b"x");
    let all = s.call_events(&t, &e.call_id).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.event.kind).collect::<Vec<_>>(),
        vec![EventKind::CallEnded, EventKind::MemoSaved]
    );

    let items = s.claim("w", 10, LEASE, t0()).await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].kind,
        WorkKind::CallEvent {
            event_id,
            call_id: e.call_id.clone(),
            event: EventKind::CallEnded
        }
    );
    assert_eq!(items[0].attempts, 0);

    let outcome = EventOutcome::TaskCreated {
        task_id: sfid("00T", 1),
        who: lead(1),
    };
    s.set_outcome(&t, event_id, &outcome).await.unwrap();
    assert_eq!(s.event_outcome(&t, event_id).await.unwrap(), Some(outcome));

    // Concurrent deliveries of one new event: exactly one is new.
    let e2 = event("99999", EventKind::Missed, "03-1234-5678");
    let results = futures::future::join_all((0..6).map(|_| {
        let s = s.clone();
        let t = t.clone();
        let e2 = e2.clone();
        async move { s.accept(&t, &raw("y"), &e2, t0()).await.unwrap() }
    }))
    .await;
    let new = results
        .iter()
        .filter(|r| matches!(r, Accepted::New { .. }))
        .count();
    assert_eq!(new, 1, "{results:?}");
    assert_eq!(
        s.depth(&t).await.unwrap().ready,
        1,
        "only the missed call's item is still ready"
    );
}

async fn intake_upserts_member_and_customer_without_overwriting_salesforce_data(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    // A customer imported from Salesforce with a name and no email.
    s.apply_changes(
        &t,
        CustomerChanges {
            creates: vec![NewCustomer {
                number: phone("03-1234-5678"),
                fields: CustomerFields {
                    name: Some("Salesforce 名".into()),
                    ..Default::default()
                },
                link: Some(link(contact(1), t0())),
            }],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    accept(s, &t, &event("c1", EventKind::CallEnded, "+81 3 1234 5678")).await;
    let c = s.find_by_number(&t, "+81312345678").await.unwrap().unwrap();
    assert_eq!(
        c.fields.name.as_deref(),
        Some("Salesforce 名"),
        "never overwritten"
    );
    assert_eq!(
        c.fields.email.as_deref(),
        Some("hanako@example.jp"),
        "empty field filled"
    );
    assert_eq!(c.link.unwrap().record, contact(1));
    assert!(c.dirty.is_empty());

    // An unknown number creates a customer (R18: it gets a callsync id).
    accept(s, &t, &event("c2", EventKind::Missed, "090-1234-5678")).await;
    let c2 = s
        .find_by_number(&t, "+819012345678")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c2.number.raw(), "090-1234-5678");
    assert_eq!(c2.fields.name.as_deref(), Some("山田 花子"));
    assert!(c2.link.is_none());

    // The member, keyed by external id; a later webhook without email keeps the known one.
    let mut e3 = event("c3", EventKind::Missed, "090-1234-5678");
    e3.member = Some(MemberInfo {
        external_id: Some("u-1".into()),
        name: Some("担当 一郎 改".into()),
        email: None,
    });
    accept(s, &t, &e3).await;
    let members = s.members(&t).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].external_id, "u-1");
    assert_eq!(members[0].name.as_deref(), Some("担当 一郎 改"));
    assert_eq!(
        members[0].email.as_ref().map(|e| e.key()),
        Some("ichiro@example.jp")
    );
    // The admin's explicit upsert replaces.
    s.upsert_member(
        &t,
        &Member {
            external_id: "u-1".into(),
            name: None,
            email: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.members(&t).await.unwrap()[0].email, None);
}

async fn r27_withheld_number_forms_no_customer(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let e = event("anon-1", EventKind::Missed, "非通知");
    assert!(matches!(accept(s, &t, &e).await, Accepted::New { .. }));
    assert_eq!(s.customer_count(&t).await.unwrap(), 0);
    assert_eq!(
        s.depth(&t).await.unwrap().ready,
        1,
        "still queued, to record the skip"
    );
}

// ---------------------------------------------------------------------------------------------
// queue

async fn queue_concurrent_claimers_never_share_or_lose_items(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let mut all = HashSet::new();
    for i in 0..200 {
        let id = s
            .enqueue(
                &t,
                &WorkKind::CallEvent {
                    event_id: i,
                    call_id: CallId::parse(&format!("c{i}")).unwrap(),
                    event: EventKind::CallEnded,
                },
                t0(),
            )
            .await
            .unwrap();
        all.insert(id);
    }
    let workers = (0..4).map(|w| {
        let s = s.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let items = s.claim(&format!("w{w}"), 7, LEASE, t0()).await.unwrap();
                if items.is_empty() {
                    break;
                }
                for item in items {
                    s.complete(&item).await.unwrap();
                    got.push(item.id);
                }
            }
            got
        })
    });
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(unique.len(), claimed.len(), "an item was claimed twice");
    assert_eq!(unique, all, "an item was lost");
    assert_eq!(s.depth(&t).await.unwrap(), QueueDepth::default());
}

async fn queue_expired_lease_is_claimed_again_and_stale_token_refused(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    accept(s, &t, &event("c1", EventKind::CallEnded, "03-1234-5678")).await;
    let first = s.claim("w1", 10, LEASE, t0()).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(s.depth(&t).await.unwrap().leased, 1);
    // Within the lease nobody else gets it.
    assert!(
        s.claim("w2", 10, LEASE, t0() + CDuration::seconds(59))
            .await
            .unwrap()
            .is_empty()
    );
    // The worker "crashed": after expiry the item runs again, as a further attempt.
    let second = s
        .claim("w2", 10, LEASE, t0() + CDuration::seconds(61))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].attempts, 1);
    assert_ne!(second[0].lease_token, first[0].lease_token);
    for stale in [
        s.complete(&first[0]).await,
        s.retry_at(&first[0], t0(), &failure("X")).await,
        s.hold(&first[0], HoldReason::Throttled, &failure("X"))
            .await,
        s.dead_letter(&first[0], &failure("X"), t0()).await,
    ] {
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    }
    s.complete(&second[0]).await.unwrap();
    // Completing twice is refused too: the lease is gone.
    assert!(matches!(
        s.complete(&second[0]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.depth(&t).await.unwrap(), QueueDepth::default());
}

async fn queue_retry_hold_and_dead_letter_keep_items(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    for i in 0..3 {
        accept(
            s,
            &t,
            &event(&format!("c{i}"), EventKind::CallEnded, "03-1234-5678"),
        )
        .await;
    }
    let items = s.claim("w", 10, LEASE, t0()).await.unwrap();
    assert_eq!(items.len(), 3);
    let later = t0() + CDuration::minutes(5);
    s.retry_at(&items[0], later, &failure("TIMEOUT"))
        .await
        .unwrap();
    s.hold(
        &items[1],
        HoldReason::NeedsReconnect,
        &failure("INVALID_GRANT"),
    )
    .await
    .unwrap();
    s.dead_letter(
        &items[2],
        &failure("FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        t0(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.depth(&t).await.unwrap(),
        QueueDepth {
            ready: 0,
            leased: 0,
            waiting: 1,
            held: 1,
            dead: 1
        }
    );
    // Not due yet; then due.
    assert!(
        s.claim("w", 10, LEASE, later - CDuration::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );
    let retried = s.claim("w", 10, LEASE, later).await.unwrap();
    assert_eq!(
        retried.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![items[0].id]
    );
    assert_eq!(retried[0].attempts, 1);
    s.complete(&retried[0]).await.unwrap();
    // Held items wait for their cause to go, whatever the time.
    assert!(
        s.claim("w", 10, LEASE, later + CDuration::days(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.release_held(&t, HoldReason::Throttled).await.unwrap(), 0);
    assert_eq!(
        s.release_held(&t, HoldReason::NeedsReconnect)
            .await
            .unwrap(),
        1
    );
    let released = s.claim("w", 10, LEASE, later).await.unwrap();
    assert_eq!(
        released.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![items[1].id]
    );
    s.complete(&released[0]).await.unwrap();
    // Dead items are listed with their cause, survive a purge, and can be retried.
    let failed = s.failed(&t, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, items[2].id);
    assert_eq!(failed[0].failure.code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert_eq!(failed[0].failed_at, t0());
    assert_eq!(failed[0].attempts, 1);
    assert_eq!(
        s.purge_done(Utc::now() + CDuration::days(1)).await.unwrap(),
        2
    );
    assert_eq!(s.depth(&t).await.unwrap().dead, 1);
    assert!(!s.retry_dead(&t, items[0].id).await.unwrap(), "not dead");
    assert!(
        !s.retry_dead(&tid("other"), items[2].id).await.unwrap(),
        "other tenant"
    );
    assert!(s.retry_dead(&t, items[2].id).await.unwrap());
    let again = s.claim("w", 10, LEASE, later).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].attempts, 0,
        "an admin retry starts the attempts over"
    );
    assert!(s.failed(&t, 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// credentials

async fn r7_tokens_are_encrypted_at_rest(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let c = creds(
        "00Dxx!ACCESS-TOKEN-PLAINTEXT",
        "5Aep8-REFRESH-TOKEN-PLAINTEXT",
    );
    s.save(&t, &c).await.unwrap();
    let (access, access_key, refresh, refresh_key) = credential_bytes(s, &t).await;
    assert!(!contains(&access, b"ACCESS-TOKEN-PLAINTEXT"));
    assert!(!contains(&refresh, b"REFRESH-TOKEN-PLAINTEXT"));
    assert_eq!((access_key.as_str(), refresh_key.as_str()), ("k1", "k1"));
    let back = s.load(&t).await.unwrap().unwrap();
    assert_eq!(
        back.access_token.expose_secret(),
        "00Dxx!ACCESS-TOKEN-PLAINTEXT"
    );
    assert_eq!(
        back.refresh_token.expose_secret(),
        "5Aep8-REFRESH-TOKEN-PLAINTEXT"
    );
    assert_eq!(back.user, c.user);
    assert_eq!(back.issued_at, c.issued_at);
    // Same plaintext, fresh nonce: a second save writes different bytes.
    s.save(&t, &c).await.unwrap();
    assert_ne!(credential_bytes(s, &t).await.0, access);

    s.update_access_token(
        &t,
        &SecretString::from("NEW-ACCESS".to_owned()),
        "https://na1.salesforce.com",
    )
    .await
    .unwrap();
    let back = s.load(&t).await.unwrap().unwrap();
    assert_eq!(back.access_token.expose_secret(), "NEW-ACCESS");
    assert_eq!(back.instance_url, "https://na1.salesforce.com");
    assert_eq!(
        back.refresh_token.expose_secret(),
        "5Aep8-REFRESH-TOKEN-PLAINTEXT"
    );
    s.delete(&t).await.unwrap();
    assert!(s.load(&t).await.unwrap().is_none());
    assert!(matches!(
        s.update_access_token(&t, &SecretString::from("x".to_owned()), "u")
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn r7_decrypt_with_wrong_or_unknown_key_fails_naming_the_key(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    s.save(&t, &creds("a", "r")).await.unwrap();
    // Same id, different key material.
    let wrong = db.reopen(Keyring::new(("k1", &KEY2), &[]).unwrap()).await;
    match wrong.load(&t).await {
        Err(StoreError::Crypto(m)) => assert!(
            m.contains("\"k1\"") && m.contains("does not decrypt"),
            "{m}"
        ),
        other => panic!("expected a crypto error, got {other:?}"),
    }
    // The key that sealed it is not configured at all.
    let unknown = db.reopen(Keyring::new(("k2", &KEY2), &[]).unwrap()).await;
    match unknown.load(&t).await {
        Err(StoreError::Crypto(m)) => {
            assert!(m.contains("\"k1\"") && m.contains("not configured"), "{m}")
        }
        other => panic!("expected a crypto error, got {other:?}"),
    }
    wrong.close().await.unwrap();
    unknown.close().await.unwrap();
}

async fn r7_key_rotation_reads_old_and_writes_current(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    s.save(&t, &creds("access-1", "refresh-1")).await.unwrap();
    let secret = s.rotate_webhook_secret(&t).await.unwrap();

    let rotated = db
        .reopen(Keyring::new(("k2", &KEY2), &[("k1", &KEY1)]).unwrap())
        .await;
    let back = rotated.load(&t).await.unwrap().unwrap();
    assert_eq!(back.access_token.expose_secret(), "access-1");
    rotated
        .update_access_token(&t, &SecretString::from("access-2".to_owned()), "https://x")
        .await
        .unwrap();
    let (_, access_key, _, refresh_key) = credential_bytes(&rotated, &t).await;
    assert_eq!(
        (access_key.as_str(), refresh_key.as_str()),
        ("k2", "k1"),
        "new writes use the current key"
    );
    assert_eq!(
        rotated
            .webhook_secret(&t)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        secret.expose_secret()
    );
    // Re-encrypting moves everything to the current key; then the old key can go.
    assert_eq!(rotated.reencrypt_secrets(&t).await.unwrap(), 3);
    let (_, access_key, _, refresh_key) = credential_bytes(&rotated, &t).await;
    assert_eq!((access_key.as_str(), refresh_key.as_str()), ("k2", "k2"));
    let only_new = db.reopen(Keyring::new(("k2", &KEY2), &[]).unwrap()).await;
    let back = only_new.load(&t).await.unwrap().unwrap();
    assert_eq!(back.access_token.expose_secret(), "access-2");
    assert_eq!(back.refresh_token.expose_secret(), "refresh-1");
    assert_eq!(
        only_new
            .webhook_secret(&t)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        secret.expose_secret()
    );
    rotated.close().await.unwrap();
    only_new.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// customers

async fn r18_one_customer_per_number(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let c = s
        .create_customer(&t, &phone("03-1234-5678"), &fields("電話 太郎"), t0())
        .await
        .unwrap();
    assert_eq!(c.number.raw(), "03-1234-5678");
    for other in ["0312345678", "+81 3 1234 5678", "+81-(0)3-1234-5678"] {
        assert!(
            matches!(
                s.create_customer(&t, &phone(other), &fields("x"), t0())
                    .await,
                Err(StoreError::Conflict(_))
            ),
            "{other}"
        );
    }
    // Found by any formatting (the caller normalizes; the store looks up E.164).
    let found = s
        .find_by_number(&t, phone("０３－１２３４－５６７８").e164())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, c.id);
    // An import of the same number links that customer instead of adding one.
    s.apply_changes(
        &t,
        CustomerChanges {
            creates: vec![NewCustomer {
                number: phone("+81312345678"),
                fields: fields("Lead 名"),
                link: Some(link(lead(1), t0())),
            }],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.customer_count(&t).await.unwrap(), 1);
    let linked = s.get(&t, c.id).await.unwrap().unwrap();
    assert_eq!(linked.link.unwrap().record, lead(1));
    assert_eq!(linked.fields.name.as_deref(), Some("Lead 名"));
    // Editing another customer onto the number is refused.
    let other = s
        .create_customer(&t, &phone("03-9999-0000"), &fields("y"), t0())
        .await
        .unwrap();
    let edit = CustomerEdit {
        number: Some(phone("03-1234-5678")),
        ..Default::default()
    };
    assert!(matches!(
        s.edit_customer(&t, other.id, &edit, t0()).await,
        Err(StoreError::Conflict(_))
    ));
    // A page that creates one number twice is refused whole.
    let twice = CustomerChanges {
        creates: vec![
            new_customer(7, Some(lead(7))),
            new_customer(7, Some(lead(8))),
        ],
        ..Default::default()
    };
    assert!(matches!(
        s.apply_changes(&t, twice).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn r16_apply_changes_creates_updates_unlinks_and_moves_watermark(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    assert_eq!(s.watermark(&t, SfObject::Lead).await.unwrap(), None);
    let page1 = CustomerChanges {
        creates: (0..50)
            .map(|n| new_customer(n, Some(if n % 2 == 0 { lead(n) } else { contact(n) })))
            .collect(),
        watermark: Some((SfObject::Lead, t0())),
        ..Default::default()
    };
    s.apply_changes(&t, page1).await.unwrap();
    assert_eq!(s.customer_count(&t).await.unwrap(), 50);
    assert_eq!(s.watermark(&t, SfObject::Lead).await.unwrap(), Some(t0()));
    assert_eq!(s.watermark(&t, SfObject::Contact).await.unwrap(), None);

    let found = s
        .find_by_records(&t, &[lead(0), contact(1), lead(1), contact(0)])
        .await
        .unwrap();
    let mut got: Vec<_> = found
        .iter()
        .map(|c| c.link.clone().unwrap().record)
        .collect();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        got,
        vec![contact(1), lead(0)],
        "object and id must both match"
    );
    let c0 = s
        .find_by_number(&t, number(0).e164())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c0.fields, new_customer(0, None).fields);
    assert_eq!(c0.link.as_ref().unwrap().system_modstamp, Some(t0()));

    // Page 2: an update moves c0 to a new number with new data, and c1 is unlinked.
    let c1 = s
        .find_by_number(&t, number(1).e164())
        .await
        .unwrap()
        .unwrap();
    let later = t0() + CDuration::hours(1);
    let page2 = CustomerChanges {
        updates: vec![CustomerUpdate {
            id: c0.id,
            number: number(1000),
            fields: fields("改名"),
            link: Some(link(lead(0), later)),
            dirty: vec![SyncedField::Email],
        }],
        unlinks: vec![c1.id],
        watermark: Some((SfObject::Lead, later)),
        ..Default::default()
    };
    s.apply_changes(&t, page2).await.unwrap();
    assert_eq!(s.find_by_number(&t, number(0).e164()).await.unwrap(), None);
    let moved = s
        .find_by_number(&t, number(1000).e164())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.id, c0.id);
    assert_eq!(moved.fields, fields("改名"));
    assert_eq!(moved.dirty, vec![SyncedField::Email]);
    assert_eq!(moved.link.unwrap().system_modstamp, Some(later));
    let unlinked = s.get(&t, c1.id).await.unwrap().unwrap();
    assert_eq!(unlinked.link, None);
    assert_eq!(
        unlinked.fields, c1.fields,
        "unlinking keeps the customer and its data"
    );
    assert_eq!(s.watermark(&t, SfObject::Lead).await.unwrap(), Some(later));

    // Linking after a search (R21/R33).
    s.link(&t, c1.id, &link(contact(77), later)).await.unwrap();
    assert_eq!(
        s.find_by_records(&t, &[contact(77)]).await.unwrap()[0].id,
        c1.id
    );
}

async fn r17_apply_changes_is_all_or_nothing(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let bad = CustomerChanges {
        creates: vec![new_customer(1, Some(lead(1)))],
        updates: vec![CustomerUpdate {
            id: CustomerId(987_654),
            number: number(2),
            fields: fields("x"),
            link: None,
            dirty: vec![],
        }],
        watermark: Some((SfObject::Lead, t0())),
        ..Default::default()
    };
    assert!(matches!(
        s.apply_changes(&t, bad).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.customer_count(&t).await.unwrap(), 0);
    assert_eq!(s.watermark(&t, SfObject::Lead).await.unwrap(), None);
}

async fn r14_duplicates_are_listed_cleared_and_never_lost(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let n = number(5).e164().to_owned();
    s.apply_changes(
        &t,
        CustomerChanges {
            creates: vec![new_customer(5, Some(contact(5)))],
            duplicates: vec![
                DuplicateEntry {
                    number: n.clone(),
                    record: lead(5),
                    winner: contact(5),
                    system_modstamp: t0(),
                },
                DuplicateEntry {
                    number: n.clone(),
                    record: lead(6),
                    winner: contact(5),
                    system_modstamp: t0(),
                },
            ],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut d = s.duplicates(&t, 10).await.unwrap();
    d.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    assert_eq!(
        d.iter().map(|d| d.record.clone()).collect::<Vec<_>>(),
        vec![lead(5), lead(6)]
    );
    assert!(d.iter().all(|d| d.winner == contact(5) && d.number == n));
    // Re-recording is idempotent; clearing removes.
    s.apply_changes(
        &t,
        CustomerChanges {
            duplicates: vec![DuplicateEntry {
                number: n.clone(),
                record: lead(5),
                winner: contact(5),
                system_modstamp: t0(),
            }],
            clear_duplicates: vec![lead(6)],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.duplicates(&t, 10).await.unwrap().len(), 1);
    // A create that meets a customer linked to another record loses to it, recorded.
    s.apply_changes(
        &t,
        CustomerChanges {
            creates: vec![new_customer(5, Some(lead(9)))],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = s.find_by_number(&t, &n).await.unwrap().unwrap();
    assert_eq!(
        c.link.unwrap().record,
        contact(5),
        "the linked record keeps the customer"
    );
    let d = s.duplicates(&t, 10).await.unwrap();
    assert!(
        d.iter()
            .any(|d| d.record == lead(9) && d.winner == contact(5)),
        "{d:?}"
    );
}

async fn r11_admin_edit_marks_only_synced_fields_dirty(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    s.apply_changes(
        &t,
        CustomerChanges {
            creates: vec![
                new_customer(1, Some(lead(1))),
                new_customer(2, Some(contact(2))),
            ],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let on_lead = s
        .find_by_number(&t, number(1).e164())
        .await
        .unwrap()
        .unwrap();
    let on_contact = s
        .find_by_number(&t, number(2).e164())
        .await
        .unwrap()
        .unwrap();
    let unlinked = s
        .create_customer(&t, &number(3), &fields("z"), t0())
        .await
        .unwrap();
    let edit = CustomerEdit {
        company: Some(Some("新会社".into())),
        address: Some(Some("大阪府".into())),
        ..Default::default()
    };
    let at = t0() + CDuration::minutes(1);
    // Lead: Company syncs; address never.
    let c = s.edit_customer(&t, on_lead.id, &edit, at).await.unwrap();
    assert_eq!(c.dirty, vec![SyncedField::Company]);
    assert_eq!(c.fields.address.as_deref(), Some("大阪府"));
    assert_eq!(c.edited_at, Some(at));
    // Contact: its company (Account.Name) and address are import-only.
    let c = s.edit_customer(&t, on_contact.id, &edit, at).await.unwrap();
    assert!(c.dirty.is_empty());
    assert_eq!(c.edited_at, None);
    assert_eq!(c.fields.company.as_deref(), Some("新会社"));
    // Phone, Name, Email, Memo sync on both.
    let all = CustomerEdit {
        number: Some(number(200)),
        name: Some(Some("新 名前".into())),
        email: Some(None),
        memo: Some(Some("メモ".into())),
        ..Default::default()
    };
    let c = s.edit_customer(&t, on_contact.id, &all, at).await.unwrap();
    assert_eq!(
        c.dirty,
        vec![
            SyncedField::Phone,
            SyncedField::Name,
            SyncedField::Email,
            SyncedField::Memo
        ]
    );
    assert_eq!(c.number.e164(), number(200).e164());
    assert_eq!(c.fields.email, None);
    // An unchanged value is not an edit.
    let same = CustomerEdit {
        name: Some(Some("新 名前".into())),
        ..Default::default()
    };
    let c = s
        .edit_customer(&t, on_contact.id, &same, at + CDuration::minutes(1))
        .await
        .unwrap();
    assert_eq!(c.edited_at, Some(at));
    // An unlinked customer has nothing to write back to.
    let c = s
        .edit_customer(
            &t,
            unlinked.id,
            &CustomerEdit {
                number: Some(number(201)),
                ..all.clone()
            },
            at,
        )
        .await
        .unwrap();
    assert!(c.dirty.is_empty());
    let pending = s.pending_write_back(&t, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![on_lead.id, on_contact.id]
    );
    assert_eq!(s.get(&t, on_contact.id).await.unwrap().unwrap(), pending[1]);
}

async fn r11_write_back_mark_respects_later_edits(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    s.apply_changes(
        &t,
        CustomerChanges {
            creates: vec![new_customer(1, Some(lead(1)))],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = s
        .find_by_number(&t, number(1).e164())
        .await
        .unwrap()
        .unwrap();
    let t1 = t0() + CDuration::minutes(1);
    s.edit_customer(
        &t,
        c.id,
        &CustomerEdit {
            name: Some(Some("A".into())),
            ..Default::default()
        },
        t1,
    )
    .await
    .unwrap();
    let pending = s.pending_write_back(&t, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    let seen_at = pending[0].edited_at;
    assert_eq!(seen_at, Some(t1));
    // Edited again while the write-back was in flight: the mark must not clear it.
    let t2 = t1 + CDuration::seconds(1);
    s.edit_customer(
        &t,
        c.id,
        &CustomerEdit {
            email: Some(Some("new@example.jp".into())),
            ..Default::default()
        },
        t2,
    )
    .await
    .unwrap();
    s.mark_written_back(&t, c.id, seen_at).await.unwrap();
    let still = s.get(&t, c.id).await.unwrap().unwrap();
    assert_eq!(still.dirty, vec![SyncedField::Name, SyncedField::Email]);
    // The next round writes both and clears them.
    s.mark_written_back(&t, c.id, still.edited_at)
        .await
        .unwrap();
    assert!(s.get(&t, c.id).await.unwrap().unwrap().dirty.is_empty());
    assert!(s.pending_write_back(&t, 10).await.unwrap().is_empty());
}

async fn r18_find_by_numbers_with_2000_numbers(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    // One commit of the sync carries up to 10,000 records: the multi-row statements must stay
    // under SQLite's 32,766 bound values, counting the shared tenant and time at every row
    // (more than 2,520 customers or 4,095 duplicates in one statement failed).
    let creates: Vec<_> = (0..12_000)
        .map(|n| new_customer(n, Some(lead(n))))
        .collect();
    let duplicates: Vec<_> = (0..6_000)
        .map(|n| DuplicateEntry {
            number: number(n).e164().to_owned(),
            record: contact(n),
            winner: lead(n),
            system_modstamp: t0(),
        })
        .collect();
    s.apply_changes(
        &t,
        CustomerChanges {
            creates,
            duplicates,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.customer_count(&t).await.unwrap(), 12_000);
    assert_eq!(s.duplicates(&t, 10_000).await.unwrap().len(), 6_000);
    let users: Vec<SfUser> = (0..7_000)
        .map(|n| SfUser {
            id: sfid("005", n),
            email: None,
            name: format!("user {n}"),
            active: true,
        })
        .collect();
    s.save_users(&t, &users).await.unwrap();
    assert_eq!(s.users(&t).await.unwrap().len(), 7_000);
    let wanted: Vec<String> = (500..2500)
        .map(|n| number(n).e164().to_owned())
        .chain(["+81000000000".to_owned()])
        .collect();
    let found = s.find_by_numbers(&t, &wanted).await.unwrap();
    assert_eq!(found.len(), 2000);
    let records: Vec<_> = (0..2000).map(lead).collect();
    assert_eq!(s.find_by_records(&t, &records).await.unwrap().len(), 2000);
}

// ---------------------------------------------------------------------------------------------
// the rest

async fn r17_sync_runs_are_recorded(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let r1 = s.start_run(&t, SyncKind::Initial, t0()).await.unwrap();
    let mut report = SyncReport {
        seen: 2000,
        created: 1990,
        duplicates: 3,
        api_requests: 1,
        ..Default::default()
    };
    report.skipped.insert("no_phone".into(), 7);
    s.update_run(&t, r1, &report, None).await.unwrap();
    let runs = s.runs(&t, 10).await.unwrap();
    assert_eq!(runs[0].report, report);
    assert_eq!((runs[0].finished_at, runs[0].ok), (None, None));
    report.errors.push("Lead.Phone hidden".into());
    s.update_run(&t, r1, &report, Some((t0() + CDuration::minutes(3), false)))
        .await
        .unwrap();
    let r2 = s
        .start_run(&t, SyncKind::Incremental, t0() + CDuration::hours(1))
        .await
        .unwrap();
    let runs = s.runs(&t, 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r2, r1],
        "newest first"
    );
    assert_eq!(runs[1].kind, SyncKind::Initial);
    assert_eq!(runs[1].ok, Some(false));
    assert_eq!(runs[1].finished_at, Some(t0() + CDuration::minutes(3)));
    assert_eq!(runs[1].report.errors, vec!["Lead.Phone hidden".to_owned()]);
    assert_eq!(s.runs(&t, 1).await.unwrap().len(), 1);
    assert!(matches!(
        s.update_run(&tid("other"), r1, &report, None).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn r34_locks_refuse_a_second_holder_until_expiry(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let ttl = Duration::from_secs(30);
    assert!(
        s.try_lock(&t, "number:+81312345678", "w1", ttl, t0())
            .await
            .unwrap()
    );
    assert!(
        !s.try_lock(
            &t,
            "number:+81312345678",
            "w2",
            ttl,
            t0() + CDuration::seconds(29)
        )
        .await
        .unwrap()
    );
    // The holder renews.
    assert!(
        s.try_lock(
            &t,
            "number:+81312345678",
            "w1",
            ttl,
            t0() + CDuration::seconds(20)
        )
        .await
        .unwrap()
    );
    assert!(
        !s.try_lock(
            &t,
            "number:+81312345678",
            "w2",
            ttl,
            t0() + CDuration::seconds(49)
        )
        .await
        .unwrap()
    );
    // Expired: taken over.
    assert!(
        s.try_lock(
            &t,
            "number:+81312345678",
            "w2",
            ttl,
            t0() + CDuration::seconds(50)
        )
        .await
        .unwrap()
    );
    // Only the holder unlocks.
    s.unlock(&t, "number:+81312345678", "w1").await.unwrap();
    assert!(
        !s.try_lock(
            &t,
            "number:+81312345678",
            "w3",
            ttl,
            t0() + CDuration::seconds(51)
        )
        .await
        .unwrap()
    );
    s.unlock(&t, "number:+81312345678", "w2").await.unwrap();
    assert!(
        s.try_lock(
            &t,
            "number:+81312345678",
            "w3",
            ttl,
            t0() + CDuration::seconds(51)
        )
        .await
        .unwrap()
    );
    // Many contenders at once: one wins.
    let results = futures::future::join_all((0..8).map(|i| {
        let s = s.clone();
        let t = t.clone();
        async move {
            s.try_lock(
                &t,
                "account:CallConnect 取引先",
                &format!("h{i}"),
                ttl,
                t0(),
            )
            .await
            .unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|b| **b).count(), 1);
}

async fn r1_r6_settings_round_trip(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    assert_eq!(s.settings(&t).await.unwrap(), None);
    let mut v = IntegrationSettings {
        sync_targets: SyncTargets {
            lead: false,
            contact: true,
        },
        create_customers: true,
        create_as: Some(SfObject::Contact),
        write_transcription: true,
        notify_on: [EventKind::Missed, EventKind::TranscriptionCompleted]
            .into_iter()
            .collect(),
        import_cap: Some(10_000),
        ..Default::default()
    };
    s.save_settings(&t, &v).await.unwrap();
    assert_eq!(s.settings(&t).await.unwrap(), Some(v.clone()));
    v.write_activity = false;
    s.save_settings(&t, &v).await.unwrap();
    assert_eq!(s.settings(&t).await.unwrap(), Some(v));
}

async fn r25_call_task_round_trip(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let call = CallId::parse("22232").unwrap();
    assert_eq!(s.call_task(&t, &call).await.unwrap(), None);
    let mut task = CallTask {
        call_id: call.clone(),
        task_id: sfid("00T", 1),
        who: contact(1),
        owner: Some(sfid("005", 2)),
        description: "担当者: 一郎".into(),
        continuation_task_ids: vec![],
    };
    s.save_call_task(&t, &task).await.unwrap();
    assert_eq!(s.call_task(&t, &call).await.unwrap(), Some(task.clone()));
    task.description.push_str("\n文字起こし…");
    task.continuation_task_ids = vec![sfid("00T", 2), sfid("00T", 3)];
    task.owner = None;
    s.save_call_task(&t, &task).await.unwrap();
    assert_eq!(s.call_task(&t, &call).await.unwrap(), Some(task));
}

async fn r23_directory_users_and_members(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let user = |n, email: Option<&str>, active| SfUser {
        id: sfid("005", n),
        email: email.map(|e| EmailAddress::parse(e).unwrap()),
        name: format!("user {n}"),
        active,
    };
    s.save_users(
        &t,
        &[
            user(1, Some("Ichiro@Example.jp"), true),
            user(2, None, false),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.users(&t).await.unwrap(),
        vec![
            user(1, Some("Ichiro@Example.jp"), true),
            user(2, None, false)
        ]
    );
    // Replaced, not merged.
    s.save_users(&t, &[user(3, Some("c@example.jp"), true)])
        .await
        .unwrap();
    assert_eq!(
        s.users(&t).await.unwrap(),
        vec![user(3, Some("c@example.jp"), true)]
    );
    s.save_users(&t, &[]).await.unwrap();
    assert!(s.users(&t).await.unwrap().is_empty());

    let m = Member {
        external_id: "u-9".into(),
        name: Some("九".into()),
        email: Some(EmailAddress::parse("Nine@Example.jp").unwrap()),
    };
    s.upsert_member(&t, &m).await.unwrap();
    assert_eq!(s.members(&t).await.unwrap(), vec![m]);
}

async fn tenants_webhook_secret_and_admin_token(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    assert!(matches!(
        s.create_tenant(&t, "again", t0()).await,
        Err(StoreError::Conflict(_))
    ));
    let got = s.tenant(&t).await.unwrap().unwrap();
    assert_eq!(
        (
            got.name.as_str(),
            got.created_at,
            got.has_webhook_secret,
            got.has_admin_token
        ),
        ("acme inc", t0(), false, false)
    );
    assert_eq!(s.tenant(&tid("none")).await.unwrap(), None);
    tenant(s, "beta").await;
    assert_eq!(
        s.tenants()
            .await
            .unwrap()
            .iter()
            .map(|t| t.id.as_str().to_owned())
            .collect::<Vec<_>>(),
        vec!["acme", "beta"]
    );

    assert!(s.webhook_secret(&t).await.unwrap().is_none());
    let s1 = s.rotate_webhook_secret(&t).await.unwrap();
    assert!(s1.expose_secret().len() >= 40);
    assert_eq!(
        s.webhook_secret(&t).await.unwrap().unwrap().expose_secret(),
        s1.expose_secret()
    );
    let s2 = s.rotate_webhook_secret(&t).await.unwrap();
    assert_ne!(s1.expose_secret(), s2.expose_secret());
    assert_eq!(
        s.webhook_secret(&t).await.unwrap().unwrap().expose_secret(),
        s2.expose_secret()
    );
    assert!(matches!(
        s.rotate_webhook_secret(&tid("none")).await,
        Err(StoreError::NotFound(_))
    ));

    assert!(!s.verify_admin_token(&t, "anything").await.unwrap());
    let token = s.rotate_admin_token(&t).await.unwrap();
    assert!(
        s.verify_admin_token(&t, token.expose_secret())
            .await
            .unwrap()
    );
    assert!(!s.verify_admin_token(&t, "wrong").await.unwrap());
    assert!(
        !s.verify_admin_token(&tid("beta"), token.expose_secret())
            .await
            .unwrap()
    );
    let got = s.tenant(&t).await.unwrap().unwrap();
    assert!(got.has_webhook_secret && got.has_admin_token);
}

async fn audit_trail_newest_first(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let a = s
        .append_audit(
            &t,
            "admin@example.jp",
            "settings.save",
            &serde_json::json!({"write_activity": false}),
            t0(),
        )
        .await
        .unwrap();
    let b = s
        .append_audit(
            &t,
            "admin@example.jp",
            "queue.retry",
            &serde_json::json!({"item": 7}),
            t0() + CDuration::seconds(1),
        )
        .await
        .unwrap();
    let log = s.audit_log(&t, 10).await.unwrap();
    assert_eq!(log.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(log[1].detail, serde_json::json!({"write_activity": false}));
    assert_eq!(log[0].action, "queue.retry");
    assert!(s.audit_log(&tid("beta"), 10).await.unwrap().is_empty());
}

async fn customer_list_filters_and_pages(db: &TestDb) {
    let s = &db.store;
    let t = tenant(s, "acme").await;
    let creates: Vec<_> = (0..5).map(|n| new_customer(n, Some(lead(n)))).collect();
    s.apply_changes(
        &t,
        CustomerChanges {
            creates,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.create_customer(
        &t,
        &number(99),
        &CustomerFields {
            name: Some("Yamada_100%".into()),
            ..Default::default()
        },
        t0(),
    )
    .await
    .unwrap();
    let page1 = s
        .customers(
            &t,
            &CustomerFilter {
                limit: 4,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.len(), 4);
    let page2 = s
        .customers(
            &t,
            &CustomerFilter {
                limit: 4,
                after: Some(page1[3].id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.len(), 2);
    assert_eq!(
        s.customers(
            &t,
            &CustomerFilter {
                linked: Some(false),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .len(),
        1
    );
    assert_eq!(
        s.customers(
            &t,
            &CustomerFilter {
                linked: Some(true),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .len(),
        5
    );
    let by_number = s
        .customers(
            &t,
            &CustomerFilter {
                search: Some(number(3).raw().replace('-', "")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_number.len(), 1);
    assert_eq!(by_number[0].number, number(3));
    let by_text = s
        .customers(
            &t,
            &CustomerFilter {
                search: Some("yamada_100%".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_text.len(), 1);
    // LIKE wildcards in the search are literal.
    assert!(
        s.customers(
            &t,
            &CustomerFilter {
                search: Some("yamada%1".into()),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .is_empty()
    );
    let by_email = s
        .customers(
            &t,
            &CustomerFilter {
                search: Some("C3@EXAMPLE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_email.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// SQLite only

#[tokio::test]
async fn sqlite_file_uses_wal_normal_sync_and_foreign_keys() {
    let db = common::sqlite().await;
    let c = db.store.connection();
    let pragma = |name: &'static str| async move {
        let sql = format!("SELECT CAST({name} AS TEXT) AS v FROM pragma_{name}");
        let row = c
            .query_one_raw(Statement::from_string(c.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "v").unwrap()
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("synchronous").await, "1", "NORMAL");
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let db = common::sqlite().await;
    let s = &db.store;
    let mut progress = s.checkpoints().expect("a SQLite file has a checkpointer");
    let t = tenant(s, "acme").await;
    // A few hundred pages in the WAL: far below the threshold at which a commit would
    // checkpoint by itself.
    s.apply_changes(
        &t,
        CustomerChanges {
            creates: (0..2_000).map(|n| new_customer(n, Some(lead(n)))).collect(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let done = *tokio::time::timeout(
        std::time::Duration::from_secs(30),
        progress.wait_for(|c| c.frames > 0),
    )
    .await
    .expect("a background checkpoint within 30 s")
    .unwrap();
    assert!(done.runs >= 1, "{done:?}");
    assert_eq!(done.failures, 0);
    assert_eq!(s.customer_count(&t).await.unwrap(), 2_000);
    db.finish().await;
}

#[tokio::test]
async fn sqlite_in_memory_database_migrates_and_works() {
    let s = Store::connect("sqlite::memory:", common::keyring())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    assert!(s.checkpoints().is_none(), "no WAL in memory");
    let t = tenant(&s, "mem").await;
    accept(&s, &t, &event("c1", EventKind::CallEnded, "03-1234-5678")).await;
    assert_eq!(s.customer_count(&t).await.unwrap(), 1);
    assert_eq!(s.claim("w", 5, LEASE, t0()).await.unwrap().len(), 1);
}

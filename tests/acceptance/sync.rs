//! SPEC "Import and sync" (R10–R18, C3), end to end: the customer-sync use case over the real
//! store (SQLite, and PostgreSQL where it matters) and the real Salesforce client against an
//! sf-sim org.
//!
//! Time is the sim's: the sync runs with a clock that reads the sim clock, which the tests
//! freeze and move (`set_time`, `advance`), so record dates, watermarks and the run record are
//! exact. Nothing sleeps.

use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use domain::ports::{Clock, CustomerStore, DuplicateEntry, SyncKind, SyncReport, SyncRunStore};
use domain::usecases::sync::{
    CustomerSync, DeferReason, RunStatus, SyncOptions, SyncProgress, skip,
};
use domain::{Customer, CustomerFields, PhoneNumber, SalesforceId, SfObject};
use it::{Db, World};
use serde_json::{Map, Value, json};
use sf_sim::{Fault, Org};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_adapter::{CustomerEdit, CustomerFilter};

// ----------------------------------------------------------------------------------------------
// Harness
// ----------------------------------------------------------------------------------------------

/// The sim's clock, as the sync's `Clock` port.
struct SimClock(Org);

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

/// The customer sync as `World::sync` wires it, but on the sim's clock.
fn sync(w: &World) -> CustomerSync {
    it::sync_over(
        &w.store,
        &w.sf,
        Arc::new(SimClock(w.org.clone())),
        SyncOptions::default(),
    )
}

/// "Now" for these tests: the sim clock is frozen here before anything is seeded.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0)
        .single()
        .unwrap()
}

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

async fn world(db: Db) -> Option<World> {
    let w = World::on(db).await?;
    w.org.set_time(t0());
    Some(w)
}

async fn run(w: &World, kind: SyncKind) -> domain::usecases::sync::SyncOutcome {
    sync(w).run(&w.t, kind, &|_| {}).await.unwrap()
}

/// The whole customer book, by E.164.
async fn book(w: &World) -> BTreeMap<String, Customer> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = w
            .store
            .customers(
                &w.t,
                &CustomerFilter {
                    after,
                    limit: 1_000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        after = Some(last.id);
        for c in page {
            let e164 = c.number.e164().to_owned();
            assert!(
                out.insert(e164.clone(), c).is_none(),
                "R18: two customers hold {e164}"
            );
        }
    }
}

async fn duplicates(w: &World) -> BTreeSet<(String, String, String)> {
    w.store
        .duplicates(&w.t, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|d: DuplicateEntry| {
            (
                d.number,
                d.record.id.as_str().to_owned(),
                d.winner.id.as_str().to_owned(),
            )
        })
        .collect()
}

async fn last_run(w: &World) -> domain::ports::SyncRun {
    w.store.runs(&w.t, 1).await.unwrap().remove(0)
}

fn id(s: &str) -> String {
    SalesforceId::parse(s).unwrap().as_str().to_owned()
}

// ----------------------------------------------------------------------------------------------
// Numbers: number #k in five formattings (R13)
// ----------------------------------------------------------------------------------------------

fn subscriber(k: u32) -> (String, String) {
    let n = format!("{:08}", 50_000_000 + k);
    let (a, b) = n.split_at(4);
    (a.to_owned(), b.to_owned())
}

fn e164(k: u32) -> String {
    let (a, b) = subscriber(k);
    format!("+813{a}{b}")
}

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
            '-' => '－',
            '(' => '（',
            ')' => '）',
            c => c,
        })
        .collect()
}

/// Number #k as people type it: `03-5000-0001`, `0350000001`, `+81 3 5000 0001`,
/// `(03)5000-0001`, `０３－５０００－０００１`.
fn formatted(k: u32, style: u32) -> String {
    let (a, b) = subscriber(k);
    match style % 5 {
        0 => format!("03-{a}-{b}"),
        1 => format!("03{a}{b}"),
        2 => format!("+81 3 {a} {b}"),
        3 => format!("(03){a}-{b}"),
        _ => fullwidth(&format!("03-{a}-{b}")),
    }
}

fn invalid(j: u32) -> String {
    let s = match j % 3 {
        0 => format!("03-0000-{:04}", j),
        1 => format!("12{j}"),
        _ => format!("内線{j}"),
    };
    assert!(
        matches!(PhoneNumber::parse(&s), Err(domain::PhoneError::Invalid(_))),
        "{s} must be an invalid number"
    );
    s
}

// ----------------------------------------------------------------------------------------------
// A seeded org whose customer book is known exactly
// ----------------------------------------------------------------------------------------------

/// What one imported number must look like.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    raw: String,
    object: SfObject,
    id: String,
    fields: CustomerFields,
}

#[derive(Default)]
struct Seeded {
    /// E.164 → the customer the initial import must create.
    book: BTreeMap<String, Want>,
    /// (E.164, loser id, winner id), R14.
    dups: BTreeSet<(String, String, String)>,
    /// Numbers that must have no customer (R12, R15, R16).
    absent: Vec<String>,
    /// Record ids by group.
    accounts: Vec<String>,
    contacts: Vec<String>,
    leads: Vec<String>,
    /// (number k, lead id) of the unique Leads, and (k, contact id) of the unique Contacts.
    lead_k: Vec<u32>,
    lead_id: Vec<String>,
    contact_k: Vec<u32>,
    contact_id: Vec<String>,
    /// Next free number index.
    next: u32,
}

fn dt(t: DateTime<Utc>) -> Value {
    json!(t.to_rfc3339())
}

/// Inserts with audit dates: CreatedDate = LastModifiedDate = `modified`,
/// SystemModstamp = `modstamp` (≥ modified, as in Salesforce).
fn insert(
    org: &Org,
    object: &str,
    fields: Value,
    modified: DateTime<Utc>,
    modstamp: DateTime<Utc>,
) -> String {
    let mut m: Map<String, Value> = fields.as_object().cloned().unwrap();
    m.retain(|_, v| !v.is_null());
    m.insert("CreatedDate".into(), dt(modified));
    m.insert("LastModifiedDate".into(), dt(modified));
    m.insert("SystemModstamp".into(), dt(modstamp));
    id(&org.insert(object, Value::Object(m)))
}

fn first_name(k: u32) -> Option<String> {
    (!k.is_multiple_of(3)).then(|| "名".to_owned())
}

fn name(last: &str, first: Option<&str>) -> Option<String> {
    Some(match first {
        Some(f) => format!("{last} {f}"),
        None => last.to_owned(),
    })
}

fn memo(k: u32) -> Option<String> {
    (!k.is_multiple_of(6)).then(|| format!("メモ{k}\n二行目"))
}

/// Seeds `2 * unique + 13 * g` Leads and Contacts (+ 10 Accounts):
/// - `unique` Contacts and `unique` Leads with unique numbers in mixed formattings;
/// - `g` Contacts and `g` Leads with only a MobilePhone (R12: not imported);
/// - `g` Contacts and `g` Leads last modified 400 days ago (R16: outside the window);
/// - `g` Lead/Contact pairs on one number, the Lead newer (R14: the Contact wins);
/// - `g / 2` Lead/Lead pairs on one number, in different pages when `unique` is large
///   (R14: the more recently modified wins; every fifth pair ties, the smaller Id wins);
/// - `g` converted Leads with a Phone (R15: not imported);
/// - `g` Contacts and `g / 2` Leads with invalid numbers, `g / 2` Leads with `非通知`.
fn seed(org: &Org, unique: u32, g: u32) -> Seeded {
    let mut s = Seeded::default();
    let t0 = t0();
    for a in 0..10 {
        s.accounts.push(insert(
            org,
            "Account",
            json!({"Name": format!("取引先{a}")}),
            t0 - days(500),
            t0 - days(500),
        ));
    }
    let mut take = |n: u32| {
        let base = s.next;
        s.next += n;
        base
    };
    let c1 = take(unique);
    let l1 = take(unique);
    let shared = take(g);
    let pairs = take(g / 2);
    let converted = take(g);
    let old = take(2 * g);
    let mobile = take(2 * g);

    // Leads, in SystemModstamp order: half of L1, the shared-number Leads, the first of each
    // Lead pair, the other half of L1, invalid ones, the second of each pair. With
    // unique = 2,000 the pairs straddle the first page boundary.
    let lead = |s: &mut Seeded, k: u32, modified: DateTime<Utc>, modstamp: DateTime<Utc>| {
        let first = first_name(k);
        let addr = !k.is_multiple_of(4);
        let id = insert(
            org,
            "Lead",
            json!({
                "LastName": format!("姓{k}"),
                "FirstName": first,
                "Company": format!("会社{k}"),
                "Phone": formatted(k, k),
                "Email": format!("lead{k}@example.jp"),
                "PostalCode": addr.then_some("100-0001"),
                "State": addr.then_some("東京都"),
                "City": addr.then_some("千代田区"),
                "Street": addr.then(|| format!("丸の内{k}")),
                "Description": memo(k),
            }),
            modified,
            modstamp,
        );
        s.leads.push(id.clone());
        let want = Want {
            raw: formatted(k, k).trim().to_owned(),
            object: SfObject::Lead,
            id: id.clone(),
            fields: CustomerFields {
                name: name(&format!("姓{k}"), first.as_deref()),
                company: Some(format!("会社{k}")),
                email: Some(format!("lead{k}@example.jp")),
                address: addr.then(|| format!("100-0001 東京都 千代田区 丸の内{k}")),
                memo: memo(k),
            },
        };
        (id, want)
    };
    let half = unique / 2;
    let early = |i: u32| t0 - days(200) + mins(i64::from(i));
    for i in 0..half {
        let k = l1 + i;
        let (lid, want) = lead(&mut s, k, early(i), early(i));
        s.book.insert(e164(k), want);
        s.lead_k.push(k);
        s.lead_id.push(lid);
    }
    let mut shared_leads = Vec::new();
    for j in 0..g {
        let at = t0 - days(150) + mins(i64::from(j));
        let (lid, _) = lead(&mut s, shared + j, at, at);
        shared_leads.push(lid);
    }
    // Lead/Lead pairs: (modified of the first, modified of the second).
    let pair_dates = |p: u32| {
        let newer = t0 - days(20);
        let older = t0 - days(30);
        if p.is_multiple_of(5) {
            (t0 - days(25), t0 - days(25))
        } else if p.is_multiple_of(2) {
            (newer, older)
        } else {
            (older, newer)
        }
    };
    let mut first_of_pair = Vec::new();
    for p in 0..g / 2 {
        let (a, _) = pair_dates(p);
        first_of_pair.push(lead(&mut s, pairs + p, a, a));
    }
    for i in half..unique {
        let k = l1 + i;
        let at = t0 - days(15) + mins(i64::from(i));
        let (lid, want) = lead(&mut s, k, at, at);
        s.book.insert(e164(k), want);
        s.lead_k.push(k);
        s.lead_id.push(lid);
    }
    for j in 0..g {
        let phone = if j % 2 == 0 {
            invalid(j)
        } else {
            "非通知".to_owned()
        };
        let at = t0 - days(10) + mins(i64::from(j));
        s.leads.push(insert(
            org,
            "Lead",
            json!({"LastName": format!("無効{j}"), "Company": "無効社", "Phone": phone}),
            at,
            at,
        ));
    }
    for p in 0..g / 2 {
        let (_, b) = pair_dates(p);
        // A system bump (e.g. a logged Task) made its SystemModstamp late.
        let ms = t0 - days(1) + mins(i64::from(p));
        let k = pairs + p;
        let (bid, bwant) = lead(&mut s, k, b, ms);
        let (aid, awant) = first_of_pair[p as usize].clone();
        let a_wins = match pair_dates(p) {
            (a, b) if a == b => aid < bid,
            (a, b) => a > b,
        };
        let (win, lose) = if a_wins { (awant, bid) } else { (bwant, aid) };
        s.dups.insert((e164(k), lose, win.id.clone()));
        s.book.insert(e164(k), win);
    }

    // Contacts.
    let contact = |s: &mut Seeded, k: u32, modified: DateTime<Utc>| {
        let first = first_name(k);
        let acct = (k % 10 != 9).then(|| s.accounts[(k % 10) as usize].clone());
        let addr = k % 4 != 1;
        let id = insert(
            org,
            "Contact",
            json!({
                "LastName": format!("顧客{k}"),
                "FirstName": first,
                "AccountId": acct,
                "Phone": formatted(k, k + 2),
                "Email": format!("contact{k}@example.jp"),
                "MailingPostalCode": addr.then_some("530-0001"),
                "MailingState": addr.then_some("大阪府"),
                "MailingCity": addr.then_some("大阪市北区"),
                "MailingStreet": addr.then(|| format!("梅田{k}")),
                "Description": memo(k),
            }),
            modified,
            modified,
        );
        s.contacts.push(id.clone());
        Want {
            raw: formatted(k, k + 2).trim().to_owned(),
            object: SfObject::Contact,
            id,
            fields: CustomerFields {
                name: name(&format!("顧客{k}"), first.as_deref()),
                company: (k % 10 != 9).then(|| format!("取引先{}", k % 10)),
                email: Some(format!("contact{k}@example.jp")),
                address: addr.then(|| format!("530-0001 大阪府 大阪市北区 梅田{k}")),
                memo: memo(k),
            },
        }
    };
    for i in 0..unique {
        let k = c1 + i;
        let want = contact(&mut s, k, early(i));
        s.contact_id.push(want.id.clone());
        s.book.insert(e164(k), want);
        s.contact_k.push(k);
    }
    for j in 0..g {
        // Older than the Lead on the same number, and still the winner: Contact over Lead.
        let k = shared + j;
        let want = contact(&mut s, k, t0 - days(300) + mins(i64::from(j)));
        s.dups
            .insert((e164(k), shared_leads[j as usize].clone(), want.id.clone()));
        s.book.insert(e164(k), want);
    }
    for j in 0..g {
        let at = t0 - days(5) + mins(i64::from(j));
        s.contacts.push(insert(
            org,
            "Contact",
            json!({"LastName": format!("無効{j}"), "Phone": invalid(j + 1)}),
            at,
            at,
        ));
    }

    // Never imported.
    for j in 0..g {
        let k = converted + j;
        let at = t0 - days(90);
        s.leads.push(insert(
            org,
            "Lead",
            json!({
                "LastName": format!("転換済{j}"), "Company": "転換社", "Phone": formatted(k, j),
                "IsConverted": true,
                "ConvertedContactId": s.contacts[j as usize],
                "ConvertedAccountId": s.accounts[0],
            }),
            at,
            at,
        ));
        s.absent.push(e164(k));
    }
    // A Contact and a Lead each: outside the window (R16), or with only a MobilePhone (R12).
    for (base, age, name, field) in [
        (old, 400, "古い", "Phone"),
        (mobile, 80, "携帯", "MobilePhone"),
    ] {
        for j in 0..g {
            let at = t0 - days(age);
            let (kc, kl) = (base + 2 * j, base + 2 * j + 1);
            s.contacts.push(insert(
                org,
                "Contact",
                json!({"LastName": name, field: formatted(kc, j)}),
                at,
                at,
            ));
            s.leads.push(insert(
                org,
                "Lead",
                json!({"LastName": name, "Company": format!("{name}社"), field: formatted(kl, j)}),
                at,
                at,
            ));
            s.absent.extend([e164(kc), e164(kl)]);
        }
    }
    s
}

/// The book matches the seeded expectations exactly.
fn assert_book(book: &BTreeMap<String, Customer>, want: &BTreeMap<String, Want>) {
    let missing: Vec<&String> = want.keys().filter(|k| !book.contains_key(*k)).collect();
    let extra: Vec<&String> = book.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {} (e.g. {:?}), extra {} (e.g. {:?})",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
    for (e164, w) in want {
        let c = &book[e164];
        let link = c
            .link
            .as_ref()
            .unwrap_or_else(|| panic!("{e164} is not linked"));
        let got = Want {
            raw: c.number.raw().to_owned(),
            object: link.record.object,
            id: link.record.id.as_str().to_owned(),
            fields: c.fields.clone(),
        };
        assert_eq!(&got, w, "customer {e164}");
        assert!(c.dirty.is_empty(), "{e164} is dirty: {:?}", c.dirty);
    }
}

// ----------------------------------------------------------------------------------------------
// 1. The initial import of a 5,000-record org (R10, R12–R17)
// ----------------------------------------------------------------------------------------------

async fn initial_import_of_5000_records(db: Db) {
    let Some(w) = world(db).await else {
        return;
    };
    let s = seed(&w.org, 2_000, 100);
    assert_eq!(s.leads.len() + s.contacts.len(), 5_000);
    let before = w.org.api_requests_used();

    let progress = Mutex::new(Vec::new());
    let out = sync(&w)
        .run(&w.t, SyncKind::Initial, &|p: SyncProgress| {
            progress.lock().unwrap().push(p);
        })
        .await
        .unwrap();

    // R17: the run, exactly.
    let expected = SyncReport {
        // 2,300 Leads (2,000 unique + 100 shared + 100 paired + 100 invalid or 非通知) and
        // 2,200 Contacts (2,000 unique + 100 shared + 100 invalid). Not read at all: converted
        // Leads, records outside the window, records without a Phone.
        seen: 4_500,
        // 2,000 + 2,000 unique, 100 shared numbers (created for the Lead, which comes first),
        // 50 pairs (created for whichever of the pair came first).
        created: 4_150,
        // The shared numbers move to their Contact (100). The Lead pairs straddle the first
        // page boundary but not a commit (10,000 records), so each pair is decided at once
        // and its winner created directly (one commit per page made 20 more: the odd pairs
        // that do not tie were created for the first Lead, then moved to the second).
        updated: 100,
        unlinked: 0,
        unchanged: 0,
        skipped: [
            (skip::INVALID_NUMBER.to_owned(), 150),
            (skip::NO_PHONE.to_owned(), 50),
            (skip::DUPLICATE.to_owned(), 150),
        ]
        .into_iter()
        .collect(),
        duplicates: 150,
        written_back: 0,
        // 2 describes (R10 preflight), the Users, 2 pages of Leads, 2 pages of Contacts.
        api_requests: 7,
        errors: vec![],
    };
    assert_eq!(out.report, expected);
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(w.org.api_requests_used() - before, 7);
    let r = last_run(&w).await;
    assert_eq!(r.id, out.run_id);
    assert_eq!(r.kind, SyncKind::Initial);
    assert_eq!(r.report, expected, "the stored run is the report");
    assert_eq!(
        (r.started_at, r.finished_at, r.ok),
        (t0(), Some(t0()), Some(true))
    );
    let progress: Vec<(SfObject, u64, u64)> = progress
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|p| (p.object, p.seen, p.total))
        .collect();
    assert_eq!(
        progress,
        // After each commit: both pages of an object fit in one.
        vec![
            (SfObject::Lead, 2_300, 2_300),
            (SfObject::Contact, 2_200, 2_200),
        ]
    );

    // The book, exactly: every number, its record, name, company, email, address, memo.
    let b = book(&w).await;
    assert_eq!(b.len(), 4_150);
    assert_eq!(w.store.customer_count(&w.t).await.unwrap(), 4_150);
    assert_book(&b, &s.book);
    for e in &s.absent {
        assert!(!b.contains_key(e), "{e} must not be imported");
    }
    // R14: the losers, listed for admins.
    assert_eq!(duplicates(&w).await, s.dups);

    // A few by hand, so the generator is not the only oracle.
    let k = s.contact_k[2]; // full-width
    let c = &b[&e164(k)];
    assert_eq!(c.number.raw(), "０３－５０００－０００２");
    assert_eq!(c.fields.name.as_deref(), Some("顧客2 名"));
    assert_eq!(c.fields.company.as_deref(), Some("取引先2"));
    assert_eq!(
        c.fields.address.as_deref(),
        Some("530-0001 大阪府 大阪市北区 梅田2")
    );
    let k = s.lead_k[3];
    let c = &b[&e164(k)];
    assert_eq!(c.link.as_ref().unwrap().record.object, SfObject::Lead);
    assert_eq!(c.number.raw(), "(03)5000-2003");
    assert_eq!(c.fields.name.as_deref(), Some("姓2003 名"));
    assert_eq!(c.fields.company.as_deref(), Some("会社2003"));
    assert_eq!(c.fields.email.as_deref(), Some("lead2003@example.jp"));
    assert_eq!(c.fields.memo.as_deref(), Some("メモ2003\n二行目"));
}

#[tokio::test]
async fn r10_r12_r13_r14_r15_r16_r17_initial_import_of_a_5000_record_org_is_exact() {
    initial_import_of_5000_records(Db::Sqlite).await;
}

#[tokio::test]
async fn r14_r16_r17_initial_import_of_a_5000_record_org_on_postgres() {
    initial_import_of_5000_records(Db::Postgres).await;
}

// ----------------------------------------------------------------------------------------------
// 2. API requests per import (R16, C3)
// ----------------------------------------------------------------------------------------------

/// `leads` Leads and `contacts` Contacts with distinct numbers, modified a minute apart.
fn plain(org: &Org, leads: u32, contacts: u32) {
    let at = |k: u32| t0() - days(10) + mins(i64::from(k));
    for k in 0..leads {
        insert(
            org,
            "Lead",
            json!({"LastName": format!("姓{k}"), "Company": "社", "Phone": formatted(k, k)}),
            at(k),
            at(k),
        );
    }
    for k in 0..contacts {
        insert(
            org,
            "Contact",
            json!({"LastName": format!("姓{k}"), "Phone": formatted(leads + k, k)}),
            at(k),
            at(k),
        );
    }
}

#[tokio::test]
async fn r16_an_import_costs_one_request_per_2000_records_of_each_object_plus_three() {
    // 2 describes (R10 preflight) + the Users (R23) = 3; then ⌈n/2000⌉ pages per object, an
    // empty object costing its one (empty) page.
    for (leads, contacts, pages) in [(0, 0, 2), (2_000, 1, 2), (2_001, 4_000, 4), (4_001, 0, 4)] {
        let w = world(Db::Sqlite).await.unwrap();
        plain(&w.org, leads, contacts);
        let before = w.org.api_requests_used();
        let out = run(&w, SyncKind::Initial).await;
        let used = w.org.api_requests_used() - before;
        assert_eq!(used, 3 + pages, "{leads} Leads and {contacts} Contacts");
        assert_eq!(out.report.api_requests, used, "R17 records what was spent");
        assert_eq!(out.report.created, u64::from(leads + contacts));

        // An incremental run with nothing new: one page and one deleted-records query per
        // object; an object that had nothing to import has no watermark yet, so it is
        // imported again instead (one page, no deleted-records query).
        let per_object = |n: u32| if n > 0 { 2 } else { 1 };
        let expected = 3 + per_object(leads) + per_object(contacts);
        let before = w.org.api_requests_used();
        let out = run(&w, SyncKind::Incremental).await;
        assert_eq!(w.org.api_requests_used() - before, expected);
        assert_eq!(out.report.api_requests, expected);
        // R16: the 10-minute overlap re-reads the records stamped up to 10 minutes before
        // the watermark (one a minute here); re-reading is harmless.
        let overlap = |n: u32| u64::from(n.min(11));
        assert_eq!(out.report.seen, overlap(leads) + overlap(contacts));
        assert_eq!(out.report.unchanged, out.report.seen);
        assert_eq!((out.report.created, out.report.updated), (0, 0));
    }
}

// ----------------------------------------------------------------------------------------------
// 3. R10: a hidden field stops the sync, nothing partial
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn r10_a_field_hidden_by_field_level_security_fails_the_sync_naming_it_and_imports_nothing() {
    let w = world(Db::Sqlite).await.unwrap();
    let s = seed(&w.org, 20, 2);
    w.org.set_fault(Fault::HiddenField {
        object: "Lead".into(),
        field: "Email".into(),
    });
    let err = sync(&w)
        .run(&w.t, SyncKind::Initial, &|_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Lead.Email"), "{text}");
    let r = last_run(&w).await;
    assert_eq!(r.ok, Some(false));
    assert_eq!(r.report.errors.len(), 1);
    let recorded = &r.report.errors[0];
    assert!(recorded.contains("Lead.Email"), "{recorded}");
    assert!(
        recorded.contains("Setup > Object Manager > Lead > Fields & Relationships > Email"),
        "says where to make it visible: {recorded}"
    );
    assert_eq!(w.store.customer_count(&w.t).await.unwrap(), 0, "nothing");
    assert_eq!(r.report.created, 0);

    // Made visible again: the import runs whole.
    w.org.clear_faults();
    run(&w, SyncKind::Initial).await;
    assert_book(&book(&w).await, &s.book);

    // Later, a Contact field is hidden: an incremental run with pending changes fails before
    // any page, the book is unchanged.
    let before = book(&w).await;
    w.org.advance(Duration::from_secs(3_600));
    w.org
        .set_field("Lead", &s.leads[0], "LastName", json!("変更"));
    insert(
        &w.org,
        "Lead",
        json!({"LastName": "新規", "Company": "新", "Phone": formatted(9_000, 0)}),
        w.org.now(),
        w.org.now(),
    );
    w.org.set_fault(Fault::HiddenField {
        object: "Contact".into(),
        field: "MailingAddress".into(),
    });
    let err = sync(&w)
        .run(&w.t, SyncKind::Incremental, &|_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Contact.MailingAddress"), "{err}");
    assert_eq!(book(&w).await, before, "nothing partial");
}

// ----------------------------------------------------------------------------------------------
// 4. R15, R16: the incremental sync follows Salesforce
// ----------------------------------------------------------------------------------------------

fn hour() -> Duration {
    Duration::from_secs(3_600)
}

/// Customer ids must survive relinks: callsync ids are stable (R18).
fn same_customer(a: &Customer, b: &Customer) {
    assert_eq!(a.id, b.id, "{} and {}", a.number.e164(), b.number.e164());
}

async fn incremental_follows_salesforce(db: Db) {
    let Some(w) = world(db).await else {
        return;
    };
    let s = seed(&w.org, 40, 4);
    run(&w, SyncKind::Initial).await;
    let before = book(&w).await;
    assert_book(&before, &s.book);
    let org = &w.org;
    let (c, l) = (&s.contact_id, &s.lead_id);
    let (ck, lk) = (&s.contact_k, &s.lead_k);

    org.advance(hour());
    let now = org.now();
    // a. A Contact's Phone changes to a free number: its customer follows.
    org.set_field("Contact", &c[0], "Phone", json!(formatted(9_000, 0)));
    // b. A Lead is renamed.
    org.set_field("Lead", &l[1], "LastName", json!("改名"));
    org.set_field("Lead", &l[1], "FirstName", json!("花子"));
    // c. A new Lead.
    let new_lead = insert(
        org,
        "Lead",
        json!({"LastName": "新規", "FirstName": "太郎", "Company": "新規社",
               "Phone": formatted(9_001, 2), "Email": "new@example.jp"}),
        now,
        now,
    );
    // d. A Lead is deleted.
    org.delete("Lead", &l[2]);
    // e. Two Contacts with different numbers are merged: the loser's customer is unlinked.
    org.merge("Contact", &c[3], &c[4]);
    // f. A new Contact on an imported Contact's number: the linked one keeps it (R14).
    let dup = insert(
        org,
        "Contact",
        json!({"LastName": "重複", "FirstName": "次郎", "Phone": formatted(ck[5], 1),
               "AccountId": s.accounts[1]}),
        now,
        now,
    );
    // g. A Lead is converted to a Contact with a (new) Phone: relinked, the Contact wins.
    let converted = insert(
        org,
        "Contact",
        json!({"LastName": "転換", "FirstName": "一郎", "Phone": formatted(9_002, 3),
               "AccountId": s.accounts[0], "Email": "tenkan@example.jp"}),
        now,
        now,
    );
    org.set_field("Lead", &l[6], "IsConverted", json!(true));
    org.set_field("Lead", &l[6], "ConvertedContactId", json!(converted));
    // h. A Lead is converted to a Contact without a Phone: unlinked.
    let no_phone = insert(
        org,
        "Contact",
        json!({"LastName": "電話なし", "MobilePhone": formatted(9_003, 0)}),
        now,
        now,
    );
    org.set_field("Lead", &l[7], "IsConverted", json!(true));
    org.set_field("Lead", &l[7], "ConvertedContactId", json!(no_phone));

    let out = run(&w, SyncKind::Incremental).await;
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(out.report.created, 1, "{:?}", out.report);
    assert_eq!(out.report.unlinked, 3, "d, e, h: {:?}", out.report);
    assert!(out.report.errors.is_empty(), "{:?}", out.report.errors);
    let after = book(&w).await;
    assert_eq!(after.len(), before.len() + 1);

    // a.
    let moved = &after[&e164(9_000)];
    same_customer(moved, &before[&e164(ck[0])]);
    assert_eq!(moved.link.as_ref().unwrap().record.id.as_str(), c[0]);
    assert_eq!(moved.number.raw(), formatted(9_000, 0));
    assert!(!after.contains_key(&e164(ck[0])));
    // b.
    let renamed = &after[&e164(lk[1])];
    assert_eq!(renamed.fields.name.as_deref(), Some("改名 花子"));
    assert_eq!(renamed.link.as_ref().unwrap().record.id.as_str(), l[1]);
    // c.
    let created = &after[&e164(9_001)];
    assert_eq!(created.link.as_ref().unwrap().record.id.as_str(), new_lead);
    assert_eq!(created.fields.name.as_deref(), Some("新規 太郎"));
    assert_eq!(created.fields.company.as_deref(), Some("新規社"));
    // d. The customer stays (caller ID keeps working), unlinked.
    let deleted = &after[&e164(lk[2])];
    same_customer(deleted, &before[&e164(lk[2])]);
    assert_eq!(deleted.link, None);
    // e.
    assert_eq!(after[&e164(ck[4])].link, None);
    assert_eq!(
        after[&e164(ck[3])]
            .link
            .as_ref()
            .unwrap()
            .record
            .id
            .as_str(),
        c[3]
    );
    // f.
    assert_eq!(
        after[&e164(ck[5])]
            .link
            .as_ref()
            .unwrap()
            .record
            .id
            .as_str(),
        c[5]
    );
    let dups = duplicates(&w).await;
    assert!(
        dups.contains(&(e164(ck[5]), dup.clone(), c[5].clone())),
        "{dups:?}"
    );
    // g.
    let relinked = &after[&e164(9_002)];
    same_customer(relinked, &before[&e164(lk[6])]);
    let link = relinked.link.as_ref().unwrap();
    assert_eq!(
        (link.record.object, link.record.id.as_str()),
        (SfObject::Contact, converted.as_str())
    );
    assert_eq!(relinked.fields.name.as_deref(), Some("転換 一郎"));
    assert_eq!(relinked.fields.company.as_deref(), Some("取引先0"));
    assert_eq!(relinked.fields.email.as_deref(), Some("tenkan@example.jp"));
    assert!(!after.contains_key(&e164(lk[6])));
    // h.
    assert_eq!(after[&e164(lk[7])].link, None);
    // Everything else is as it was.
    let touched: BTreeSet<String> = [
        e164(ck[0]),
        e164(9_000),
        e164(lk[1]),
        e164(9_001),
        e164(lk[2]),
        e164(ck[3]),
        e164(ck[4]),
        e164(lk[6]),
        e164(9_002),
        e164(lk[7]),
    ]
    .into_iter()
    .collect();
    for (e, c) in &before {
        if !touched.contains(e) {
            assert_eq!(after.get(e), Some(c), "{e} must be unchanged");
        }
    }

    // Nothing changed: the overlap re-reads what the last run read, and nothing moves.
    let dups = duplicates(&w).await;
    let out = run(&w, SyncKind::Incremental).await;
    assert!(out.report.seen > 0, "the overlap re-reads");
    assert_eq!(
        (out.report.created, out.report.updated, out.report.unlinked),
        (0, 0, 0),
        "{:?}",
        out.report
    );
    assert_eq!(book(&w).await, after, "idempotent");
    assert_eq!(duplicates(&w).await, dups);

    // The duplicate Contact absorbs the linked one in a merge: the customer follows it.
    org.advance(hour());
    org.merge("Contact", &dup, &c[5]);
    run(&w, SyncKind::Incremental).await;
    let after_merge = book(&w).await;
    let merged = &after_merge[&e164(ck[5])];
    same_customer(merged, &before[&e164(ck[5])]);
    assert_eq!(merged.link.as_ref().unwrap().record.id.as_str(), dup);
    assert_eq!(merged.fields.name.as_deref(), Some("重複 次郎"));
    assert_eq!(merged.fields.company.as_deref(), Some("取引先1"));
    assert!(
        !duplicates(&w).await.iter().any(|d| d.1 == dup),
        "the winner is no longer a duplicate"
    );
    let out = run(&w, SyncKind::Incremental).await;
    assert_eq!(
        (out.report.created, out.report.updated, out.report.unlinked),
        (0, 0, 0)
    );
    assert_eq!(book(&w).await, after_merge, "idempotent");
}

#[tokio::test]
async fn r15_r16_incremental_sync_follows_edits_deletes_merges_and_conversions() {
    incremental_follows_salesforce(Db::Sqlite).await;
}

#[tokio::test]
async fn r15_r16_incremental_sync_follows_salesforce_on_postgres() {
    incremental_follows_salesforce(Db::Postgres).await;
}

// ----------------------------------------------------------------------------------------------
// 5. R11: write-back, its echo, and concurrent edits
// ----------------------------------------------------------------------------------------------

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

#[tokio::test]
async fn r11_phone_system_edits_are_written_back_import_only_fields_are_not_and_the_echo_does_not_bounce()
 {
    let w = world(Db::Sqlite).await.unwrap();
    let s = seed(&w.org, 40, 4);
    run(&w, SyncKind::Initial).await;
    let b = book(&w).await;
    let (lead_k, lead_id) = (s.lead_k[3], &s.lead_id[3]);
    let (contact_k, contact_id) = (s.contact_k[6], &s.contact_id[6]);
    let lead_before = w.org.get("Lead", lead_id).unwrap();
    let contact_before = w.org.get("Contact", contact_id).unwrap();

    w.org.advance(hour());
    let edit = |k: u32, who: &str| CustomerEdit {
        number: Some(PhoneNumber::parse(&formatted(k, 0)).unwrap()),
        name: Some(Some(format!("電話 {who}"))),
        company: Some(Some(format!("{who}商事"))),
        email: Some(Some(format!("{k}@example.jp"))),
        address: Some(Some("北海道札幌市".into())),
        memo: Some(Some(format!("{who}のメモ"))),
    };
    for (k, new_k, who) in [(lead_k, 9_100, "花子"), (contact_k, 9_101, "次郎")] {
        let c = w
            .store
            .edit_customer(&w.t, b[&e164(k)].id, &edit(new_k, who), w.org.now())
            .await
            .unwrap();
        assert!(!c.dirty.is_empty());
    }
    let out = sync(&w).write_back(&w.t).await.unwrap();
    assert_eq!(out.report.written_back, 2, "{:?}", out.report);
    assert_eq!(last_run(&w).await.kind, SyncKind::WriteBack);

    let lead = w.org.get("Lead", lead_id).unwrap();
    assert_eq!(text(&lead["Phone"]), Some("03-5000-9100"));
    assert_eq!(text(&lead["LastName"]), Some("電話"));
    assert_eq!(text(&lead["FirstName"]), Some("花子"));
    assert_eq!(text(&lead["Email"]), Some("9100@example.jp"));
    assert_eq!(text(&lead["Description"]), Some("花子のメモ"));
    assert_eq!(
        text(&lead["Company"]),
        Some("花子商事"),
        "a Lead's Company syncs"
    );
    for f in ["Street", "City", "State", "PostalCode"] {
        assert_eq!(
            lead[f], lead_before[f],
            "R11: the address is import-only ({f})"
        );
    }
    let contact = w.org.get("Contact", contact_id).unwrap();
    assert_eq!(text(&contact["Phone"]), Some("03-5000-9101"));
    assert_eq!(text(&contact["LastName"]), Some("電話"));
    assert_eq!(text(&contact["FirstName"]), Some("次郎"));
    assert_eq!(text(&contact["Email"]), Some("9101@example.jp"));
    assert_eq!(text(&contact["Description"]), Some("次郎のメモ"));
    assert_eq!(
        contact["AccountId"], contact_before["AccountId"],
        "R11: a Contact's company is import-only"
    );
    for f in [
        "MailingStreet",
        "MailingCity",
        "MailingState",
        "MailingPostalCode",
    ] {
        assert_eq!(contact[f], contact_before[f], "R11: import-only ({f})");
    }
    let after_write = book(&w).await;
    assert!(after_write.values().all(|c| c.dirty.is_empty()));

    // The echo: the next incremental run reads our own values back and writes nothing.
    w.org.advance(Duration::from_secs(60));
    let mark = w.org.requests().len();
    let out = run(&w, SyncKind::Incremental).await;
    let writes: Vec<String> = w.org.requests()[mark..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "no bounce: {writes:?}");
    assert_eq!(out.report.written_back, 0);
    let after_echo = book(&w).await;
    assert!(after_echo.values().all(|c| c.dirty.is_empty()));
    let lead_c = &after_echo[&e164(9_100)];
    assert_eq!(lead_c.id, b[&e164(lead_k)].id);
    assert_eq!(lead_c.fields.name.as_deref(), Some("電話 花子"));
    assert_eq!(lead_c.fields.email.as_deref(), Some("9100@example.jp"));
    assert_eq!(lead_c.fields.memo.as_deref(), Some("花子のメモ"));
    assert_eq!(lead_c.fields.company.as_deref(), Some("花子商事"));
    let contact_c = &after_echo[&e164(9_101)];
    assert_eq!(contact_c.id, b[&e164(contact_k)].id);
    assert_eq!(contact_c.fields.name.as_deref(), Some("電話 次郎"));
    // Import-only fields: once their record is read again, Salesforce's value is the
    // customer's (the local edit was never written anywhere).
    assert_eq!(lead_c.fields.address, s.book[&e164(lead_k)].fields.address);
    assert_eq!(
        contact_c.fields.company,
        s.book[&e164(contact_k)].fields.company
    );
    assert_eq!(
        contact_c.fields.address,
        s.book[&e164(contact_k)].fields.address
    );
    // Quiet afterwards.
    let out = run(&w, SyncKind::Incremental).await;
    assert_eq!((out.report.updated, out.report.written_back), (0, 0));
    assert_eq!(book(&w).await, after_echo);
}

#[tokio::test]
async fn r11_concurrent_edits_the_later_one_wins() {
    let w = world(Db::Sqlite).await.unwrap();
    let s = seed(&w.org, 40, 4);
    run(&w, SyncKind::Initial).await;
    let b = book(&w).await;
    let (x, z) = (&s.lead_id[8], &s.lead_id[9]);
    let (xc, zc) = (b[&e164(s.lead_k[8])].id, b[&e164(s.lead_k[9])].id);
    let email = |v: &str| CustomerEdit {
        email: Some(Some(v.to_owned())),
        ..Default::default()
    };

    w.org.advance(hour());
    // Z: edited in Salesforce BEFORE the local edit → the local edit wins.
    w.org
        .set_field("Lead", z, "Email", json!("sf-before@example.jp"));
    w.org.advance(Duration::from_secs(60));
    for (id, v) in [(xc, "local-x@example.jp"), (zc, "local-z@example.jp")] {
        w.store
            .edit_customer(&w.t, id, &email(v), w.org.now())
            .await
            .unwrap();
    }
    w.org.advance(Duration::from_secs(60));
    // X: edited in Salesforce AFTER the local edit → Salesforce wins.
    w.org
        .set_field("Lead", x, "Email", json!("sf-after@example.jp"));
    w.org.advance(Duration::from_secs(60));

    let out = run(&w, SyncKind::Incremental).await;
    assert_eq!(out.report.written_back, 1, "{:?}", out.report);
    let after = book(&w).await;
    let x_c = &after[&e164(s.lead_k[8])];
    assert_eq!(x_c.fields.email.as_deref(), Some("sf-after@example.jp"));
    assert!(x_c.dirty.is_empty());
    assert_eq!(
        w.org.get("Lead", x).unwrap()["Email"],
        "sf-after@example.jp"
    );
    let z_c = &after[&e164(s.lead_k[9])];
    assert_eq!(z_c.fields.email.as_deref(), Some("local-z@example.jp"));
    assert!(z_c.dirty.is_empty(), "written back in the same run");
    assert_eq!(w.org.get("Lead", z).unwrap()["Email"], "local-z@example.jp");
}

// ----------------------------------------------------------------------------------------------
// 6. R18: one customer per number, found by any formatting
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn r13_r18_caller_id_finds_the_one_customer_by_any_formatting() {
    let w = world(Db::Sqlite).await.unwrap();
    // A caller the phone system knew first (webhook), later imported from Salesforce.
    let (status, body) = crate::post(&w, &crate::answered("r18-1", &formatted(9_200, 3))).await;
    assert_eq!(status, 202, "{body}");
    let from_webhook = w
        .store
        .find_by_number(&w.t, &e164(9_200))
        .await
        .unwrap()
        .expect("the webhook created the customer");
    assert_eq!(from_webhook.link, None);
    let s = seed(&w.org, 40, 4);
    let lead = insert(
        &w.org,
        "Lead",
        json!({"LastName": "着信", "FirstName": "太郎", "Company": "着信社",
               "Phone": formatted(9_200, 4)}),
        t0() - days(1),
        t0() - days(1),
    );
    run(&w, SyncKind::Initial).await;
    let b = book(&w).await; // asserts one customer per number
    assert_eq!(b.len(), s.book.len() + 1);
    let imported = &b[&e164(9_200)];
    assert_eq!(imported.id, from_webhook.id, "the same callsync id");
    assert_eq!(imported.link.as_ref().unwrap().record.id.as_str(), lead);
    assert_eq!(imported.fields.name.as_deref(), Some("着信 太郎"));

    let mut ks: Vec<u32> = s.contact_k[..5].to_vec();
    ks.extend(&s.lead_k[..5]);
    ks.push(9_200);
    for k in ks {
        let (a, bb) = subscriber(k);
        let mut typed: Vec<String> = (0..5).map(|style| formatted(k, style)).collect();
        typed.push(format!("+81-(0)3-{a}-{bb}"));
        typed.push(format!(" 03 {a} {bb} "));
        for t in typed {
            let n = PhoneNumber::parse(&t).unwrap_or_else(|e| panic!("{t}: {e}"));
            let found = w
                .store
                .find_by_number(&w.t, n.e164())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{t} finds no customer"));
            assert_eq!(found.id, b[&e164(k)].id, "{t}");
            let listed = w
                .store
                .customers(
                    &w.t,
                    &CustomerFilter {
                        search: Some(t.clone()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(listed.len(), 1, "{t}");
            assert_eq!(listed[0].id, found.id);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// 7. C3: background sync defers near the allowance and resumes
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn c3_background_sync_defers_near_the_org_allowance_and_resumes_when_it_is_allowed() {
    let w = world(Db::Sqlite).await.unwrap();
    // Sim time ≈ real time here: the client stamps what it observes with the real clock.
    w.org.set_time(Utc::now());
    let s = seed(&w.org, 40, 4);
    run(&w, SyncKind::Initial).await;
    let before = book(&w).await;
    assert_book(&before, &s.book);

    // Other integrations use up the org's allowance (15,000 a day): 98.7 % used.
    w.org.advance(Duration::from_secs(60));
    let now = w.org.now();
    let new_lead = insert(
        &w.org,
        "Lead",
        json!({"LastName": "保留", "Company": "保留社", "Phone": formatted(9_300, 0)}),
        now,
        now,
    );
    w.org.set_daily_api_limit(15_000);
    w.org.set_api_requests_used(14_800);
    let out = run(&w, SyncKind::Incremental).await;
    assert_eq!(out.status, RunStatus::Deferred(DeferReason::Budget));
    let r = last_run(&w).await;
    assert_eq!(r.ok, Some(false));
    assert!(
        r.report.errors[0].starts_with("deferred (C3)"),
        "{:?}",
        r.report
    );
    assert_eq!(book(&w).await, before, "nothing imported, nothing lost");
    let spent = w.org.api_requests_used() - 14_800;
    assert!(spent <= 4, "it stops as soon as it sees the usage: {spent}");

    // The rolling 24 hours move on: the org's usage falls. The next background run resumes.
    w.org.advance(Duration::from_secs(2 * 3_600));
    w.org.set_api_requests_used(1_000);
    let out = run(&w, SyncKind::Incremental).await;
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.report);
    let after = book(&w).await;
    assert_eq!(
        after[&e164(9_300)]
            .link
            .as_ref()
            .unwrap()
            .record
            .id
            .as_str(),
        new_lead,
        "the deferred change arrives"
    );
    assert_eq!(after.len(), before.len() + 1);
}

#[tokio::test]
async fn c3_r14_r16_an_import_deferred_midway_resumes_and_ends_with_the_exact_book() {
    let w = world(Db::Sqlite).await.unwrap();
    w.org.set_time(Utc::now());
    let s = seed(&w.org, 2_000, 100);
    // After the last Lead page, other integrations use up the org's allowance.
    let org = w.org.clone();
    let out = sync(&w)
        .run(&w.t, SyncKind::Initial, &move |p: SyncProgress| {
            if p.object == SfObject::Lead && p.seen == p.total {
                org.set_api_requests_used(14_900);
            }
        })
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Deferred(DeferReason::Budget));
    // The first Contact page went out on the last (still low) observation; its response
    // showed the usage, and the run stopped before the second.
    assert_eq!(out.report.seen, 2_300 + 2_000, "{:?}", out.report);
    let partial = w.store.customer_count(&w.t).await.unwrap();
    assert!(partial < 4_150, "{partial}");

    w.org.advance(Duration::from_secs(3_600));
    w.org.set_api_requests_used(2_000);
    let out = run(&w, SyncKind::Incremental).await;
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.report);
    assert_book(&book(&w).await, &s.book);
    assert_eq!(duplicates(&w).await, s.dups);
}

#[tokio::test]
async fn r16_an_import_cap_limits_one_run_and_the_next_run_continues() {
    let w = world(Db::Sqlite).await.unwrap();
    plain(&w.org, 2_500, 1_000);
    w.settings(domain::IntegrationSettings {
        import_cap: Some(3_000),
        ..Default::default()
    })
    .await;
    let out = run(&w, SyncKind::Initial).await;
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!((out.report.seen, out.report.created), (3_000, 3_000));
    assert_eq!(w.store.customer_count(&w.t).await.unwrap(), 3_000);

    let out = run(&w, SyncKind::Initial).await;
    assert_eq!(out.report.created, 500, "{:?}", out.report);
    assert_eq!(w.store.customer_count(&w.t).await.unwrap(), 3_500);
    assert_eq!(book(&w).await.len(), 3_500);
}

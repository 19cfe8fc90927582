//! Attack surface through the real store: hostile webhooks are refused with a clear 4xx and
//! store nothing; hostile text (quotes, backslashes, SOSL/SOQL reserved characters, newlines)
//! reaches Salesforce only escaped, so the record created holds exactly the text sent.

use crate::missed;
use domain::ports::{QueueDepth, WorkQueue};
use domain::{IntegrationSettings, SfObject};
use event_ingest::sign;
use it::{World, drain, form};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

async fn nothing_stored(w: &World, what: &str) {
    assert_eq!(
        w.store.depth(&w.t).await.unwrap(),
        QueueDepth::default(),
        "{what}: no queue item"
    );
    assert_eq!(
        w.store.customer_count(&w.t).await.unwrap(),
        0,
        "{what}: no customer"
    );
}

fn signed(w: &World, body: &[u8]) -> Option<(i64, String)> {
    let ts = chrono::Utc::now().timestamp();
    Some((ts, sign(&w.secret, ts, body)))
}

fn valid_form() -> Vec<u8> {
    form(&[
        ("event", "missed"),
        ("record[id]", "atk-1"),
        ("contact[number]", "03-7777-0001"),
        ("contact[name]", "攻撃 太郎"),
    ])
    .into_bytes()
}

/// `(what, path, content type, body, signature) → expected status`.
struct Case {
    what: &'static str,
    path: String,
    content_type: String,
    body: Vec<u8>,
    signature: Option<(i64, String)>,
    status: u16,
}

#[tokio::test]
async fn hostile_webhooks_get_a_clear_4xx_and_store_nothing() {
    let w = World::new().await;
    let path = "/webhooks/acme/calls".to_owned();
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |what, path: &str, ct: &str, body: Vec<u8>, sig, status| {
        cases.push(Case {
            what,
            path: path.to_owned(),
            content_type: ct.to_owned(),
            body,
            signature: sig,
            status,
        })
    };

    // Malformed bodies.
    // (A stray `%` in a form is not an error: form decoding is lenient by the WHATWG rules.)
    let b = br#"{"event": "missed", "record": {"id": "x""#.to_vec();
    add(
        "truncated JSON",
        &path,
        JSON,
        b.clone(),
        signed(&w, &b),
        400,
    );
    let b = br#"["event", "missed"]"#.to_vec();
    add(
        "JSON that is not an object",
        &path,
        JSON,
        b.clone(),
        signed(&w, &b),
        400,
    );
    let b = b"".to_vec();
    add("empty body", &path, FORM, b.clone(), signed(&w, &b), 400);
    let b = form(&[("event", "missed"), ("contact[number]", "03-1")]).into_bytes();
    add("no record[id]", &path, FORM, b.clone(), signed(&w, &b), 400);
    let b = form(&[("event", "exploded"), ("record[id]", "x")]).into_bytes();
    add("unknown event", &path, FORM, b.clone(), signed(&w, &b), 400);
    // Invalid UTF-8, and charsets other than UTF-8.
    let mut b = b"event=missed&record%5Bid%5D=x&contact%5Bname%5D=".to_vec();
    b.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    add(
        "invalid UTF-8 (form, raw)",
        &path,
        FORM,
        b.clone(),
        signed(&w, &b),
        400,
    );
    let b = b"event=missed&record%5Bid%5D=x&contact%5Bname%5D=%FF%FE".to_vec();
    add(
        "invalid UTF-8 (form, %-escaped)",
        &path,
        FORM,
        b.clone(),
        signed(&w, &b),
        400,
    );
    let mut b = br#"{"event":"missed","record":{"id":"x"},"contact":{"name":""#.to_vec();
    b.extend_from_slice(&[0xc0, 0xaf]);
    b.extend_from_slice(br#""}}"#);
    add(
        "invalid UTF-8 (JSON)",
        &path,
        JSON,
        b.clone(),
        signed(&w, &b),
        400,
    );
    let b = valid_form();
    add(
        "charset=Shift_JIS",
        &path,
        "application/x-www-form-urlencoded; charset=Shift_JIS",
        b.clone(),
        signed(&w, &b),
        415,
    );
    add(
        "text/plain",
        &path,
        "text/plain",
        b.clone(),
        signed(&w, &b),
        415,
    );
    // Huge fields, many fields, deep JSON, oversize bodies.
    let huge = "a".repeat(40_000);
    let b = form(&[
        ("event", "missed"),
        ("record[id]", "x"),
        ("record[memo]", &huge),
    ])
    .into_bytes();
    add(
        "40,000-character memo",
        &path,
        FORM,
        b.clone(),
        signed(&w, &b),
        400,
    );
    let keys: Vec<(String, String)> = (0..600)
        .map(|i| (format!("x[{i}]"), "1".to_owned()))
        .collect();
    let mut pairs: Vec<(&str, &str)> = vec![("event", "missed"), ("record[id]", "x")];
    pairs.extend(keys.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let b = form(&pairs).into_bytes();
    add("600 fields", &path, FORM, b.clone(), signed(&w, &b), 400);
    let deep = format!(
        r#"{{"event":"missed","record":{{"id":"x","deep":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    )
    .into_bytes();
    add(
        "JSON nested 200 levels",
        &path,
        JSON,
        deep.clone(),
        signed(&w, &deep),
        400,
    );
    let very_deep = format!(
        r#"{{"event":"missed","record":{{"id":"x","deep":{}1{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    )
    .into_bytes();
    add(
        "JSON nested 100,000 levels (stack exhaustion attempt)",
        &path,
        JSON,
        very_deep.clone(),
        signed(&w, &very_deep),
        400,
    );
    let big = format!(
        "event=missed&record%5Bid%5D=x&record%5Bmemo%5D={}",
        "a".repeat(300 * 1024)
    )
    .into_bytes();
    add(
        "300 KiB body",
        &path,
        FORM,
        big.clone(),
        signed(&w, &big),
        413,
    );
    // Signatures: missing, wrong, malformed, replayed, for another body.
    let b = valid_form();
    add("no signature", &path, FORM, b.clone(), None, 401);
    let ts = chrono::Utc::now().timestamp();
    let wrong = sign(&secrecy::SecretString::from("not-the-secret"), ts, &b);
    add(
        "wrong secret",
        &path,
        FORM,
        b.clone(),
        Some((ts, wrong)),
        401,
    );
    add(
        "garbage signature",
        &path,
        FORM,
        b.clone(),
        Some((ts, "v1=zz".into())),
        401,
    );
    let right = sign(&w.secret, ts, &b);
    add(
        "other scheme",
        &path,
        FORM,
        b.clone(),
        Some((ts, right.replace("v1=", "v0="))),
        401,
    );
    let old = ts - 3_600;
    add(
        "replayed an hour later",
        &path,
        FORM,
        b.clone(),
        Some((old, sign(&w.secret, old, &b))),
        401,
    );
    let future = ts + 3_600;
    add(
        "timestamp from the future",
        &path,
        FORM,
        b.clone(),
        Some((future, sign(&w.secret, future, &b))),
        401,
    );
    let other = form(&[("event", "missed"), ("record[id]", "other")]).into_bytes();
    add(
        "signature of another body",
        &path,
        FORM,
        b.clone(),
        Some((ts, sign(&w.secret, ts, &other))),
        401,
    );
    // Unknown tenants.
    add(
        "unknown tenant",
        "/webhooks/nobody/calls",
        FORM,
        b.clone(),
        signed(&w, &b),
        404,
    );
    add(
        "invalid tenant slug",
        "/webhooks/ACME%27%3B--/calls",
        FORM,
        b.clone(),
        signed(&w, &b),
        404,
    );

    let mut wrong_answers = Vec::new();
    for c in &cases {
        let (status, body) = w
            .post_raw(
                &c.path,
                &c.content_type,
                c.body.clone(),
                c.signature.clone(),
            )
            .await;
        if status != c.status || !body["code"].is_string() {
            wrong_answers.push(format!(
                "{}: expected {}, got {status} {body}",
                c.what, c.status
            ));
        }
        nothing_stored(&w, c.what).await;
    }
    assert!(wrong_answers.is_empty(), "{wrong_answers:#?}");

    // The same request, correctly signed, is stored: the checks above could have failed.
    let b = valid_form();
    let sig = signed(&w, &b);
    let (status, _) = w.post_raw(&path, FORM, b.clone(), sig.clone()).await;
    assert_eq!(status, 202);
    // Replayed verbatim within the window: acknowledged, still one event (R27).
    let (status, body) = w.post_raw(&path, FORM, b, sig).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(w.store.depth(&w.t).await.unwrap().ready, 1);
}

// ---------------------------------------------------------------------------------------------
// Injection: hostile names, companies and number formats reach Salesforce only escaped.

/// Text made of what breaks naive SOQL/SOSL building: quotes, backslashes, every SOSL reserved
/// character, LIKE wildcards, a newline, a tab, plus ordinary Latin and Japanese.
fn hostile(max: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = "ab xZ太郎株式'\"\\?&|!{}[]()^~*:+-%_\n\t;=,."
        .chars()
        .collect();
    proptest::collection::vec(proptest::sample::select(chars), 1..max)
        .prop_map(|v| v.into_iter().collect::<String>())
}

/// One word: no spaces (the name is split at the first space, R30), not blank at either end.
fn word() -> impl Strategy<Value = String> {
    hostile(12).prop_map(|s| {
        let s: String = s.chars().filter(|c| *c != ' ').collect();
        let s = s.trim().to_owned();
        if s.is_empty() { "x".to_owned() } else { s }
    })
}

fn company() -> impl Strategy<Value = String> {
    hostile(24).prop_map(|s| {
        let s = s.trim().to_owned();
        if s.is_empty() { "社".to_owned() } else { s }
    })
}

/// Ways of writing the same number, with SOSL-reserved characters (`+ - ( )`).
fn formatted(n: u32, style: u8) -> String {
    match style % 4 {
        0 => format!("080-7{n:03}-0001"),
        1 => format!("+81 (0)80-7{n:03}-0001"),
        2 => format!("(080) 7{n:03} 0001"),
        _ => format!("+81-80-7{n:03}-0001"),
    }
}

#[test]
fn r30_r32_hostile_names_and_companies_reach_salesforce_exactly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(async {
        let w = World::new().await;
        w.settings(IntegrationSettings {
            create_customers: true,
            create_as: Some(SfObject::Contact),
            ..Default::default()
        })
        .await;
        w
    });
    let worker = w.worker("w1", 200, None);
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let counter = std::cell::Cell::new(0u32);
    let strategy = (word(), word(), company(), any::<bool>(), any::<u8>());
    let result = runner.run(&strategy, |(last, first, company, existing, style)| {
        let n = counter.get();
        counter.set(n + 1);
        // Unique per case, so earlier cases' Accounts do not count.
        let company = format!("{n}{company}");
        rt.block_on(async {
            let call = format!("inj-{n}");
            let number = formatted(n, style);
            let account = existing.then(|| w.org.insert("Account", json!({"Name": company})));
            let mut pairs = missed(&call, &number);
            pairs.push(("contact[name]", format!("{last} {first}")));
            pairs.push(("contact[company]", company.clone()));
            let (status, body) = crate::post(&w, &pairs).await;
            prop_assert_eq!(status, 202, "{}", body);
            let r = drain(&worker).await;
            prop_assert_eq!(
                (r.dead, r.held),
                (0, 0),
                "{:?} {:?}",
                r,
                w.store.failed(&w.t, 5).await
            );
            let contacts: Vec<_> = w
                .org
                .records("Contact")
                .into_iter()
                .filter(|c| c["Phone"] == number.as_str())
                .collect();
            prop_assert_eq!(contacts.len(), 1, "one Contact for {}", number);
            let c = &contacts[0];
            prop_assert_eq!(c["LastName"].as_str(), Some(last.as_str()));
            prop_assert_eq!(c["FirstName"].as_str(), Some(first.as_str()));
            let named: Vec<_> = w
                .org
                .records("Account")
                .into_iter()
                .filter(|a| a["Name"] == company.as_str())
                .collect();
            prop_assert_eq!(named.len(), 1, "R32: one Account named {:?}", company);
            prop_assert_eq!(&c["AccountId"], &named[0]["Id"]);
            if let Some(id) = account {
                prop_assert_eq!(
                    c["AccountId"].as_str(),
                    Some(id.as_str()),
                    "R32: found, not created"
                );
            }
            let tasks = w.tasks();
            let task = tasks.iter().find(|t| t["CallObject"] == call.as_str());
            prop_assert!(task.is_some_and(|t| t["WhoId"] == c["Id"]));
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets at rest: the database holds tokens and webhook secrets only sealed.

#[tokio::test]
async fn tokens_and_webhook_secrets_are_not_stored_in_clear() {
    use domain::ports::CredentialStore;
    use sea_orm::{ConnectionTrait, Statement};
    use secrecy::ExposeSecret;
    let w = World::new().await;
    let creds = w.store.load(&w.t).await.unwrap().unwrap();
    let secrets = [
        creds.access_token.expose_secret().to_owned(),
        creds.refresh_token.expose_secret().to_owned(),
        w.secret.expose_secret().to_owned(),
    ];
    assert!(secrets.iter().all(|s| s.len() >= 16), "real secrets");
    let db = w.store.connection();
    let mut raw = Vec::new();
    for sql in [
        "SELECT access_token AS v FROM credentials",
        "SELECT refresh_token AS v FROM credentials",
        "SELECT webhook_secret AS v FROM tenants",
    ] {
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{sql}");
        for row in rows {
            let bytes: Vec<u8> = row.try_get("", "v").unwrap();
            assert!(bytes.len() >= 16, "{sql}: something is stored");
            raw.extend(bytes);
        }
    }
    let raw = String::from_utf8_lossy(&raw);
    for s in &secrets {
        assert!(!raw.contains(s.as_str()), "a secret is stored in clear");
    }
}

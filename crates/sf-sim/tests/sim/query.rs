use serde_json::{Value, json};

use crate::helpers::*;

fn ids(r: &Value) -> Vec<String> {
    r["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["Id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pagination_with_batch_size_and_locators() {
    let e = env().await;
    for i in 0..450 {
        e.org.insert("Lead", json!({"LastName": format!("L{i:03}"), "Company": "C", "Phone": format!("03-0000-{i:04}")}));
    }
    let r = e
        .req(
            "GET",
            "query?q=SELECT+Id,+LastName+FROM+Lead+ORDER+BY+LastName",
            None,
            &[("Sforce-Query-Options", "batchSize=100")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    let p1 = r.json();
    // batchSize is clamped to at least 200.
    assert_eq!(p1["records"].as_array().unwrap().len(), 200);
    assert_eq!(p1["totalSize"], 450);
    assert_eq!(p1["done"], false);
    let next = p1["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(
        next.starts_with(&format!("/services/data/v{V}/query/01g")) && next.ends_with("-200"),
        "{next}"
    );
    let rec = &p1["records"][0];
    assert_eq!(rec["attributes"]["type"], "Lead");
    assert_eq!(
        rec["attributes"]["url"],
        format!(
            "/services/data/v{V}/sobjects/Lead/{}",
            rec["Id"].as_str().unwrap()
        )
    );
    assert_eq!(rec["LastName"], "L000");
    // Key order: attributes first, then the SELECT order.
    assert!(
        r.text
            .starts_with(r#"{"totalSize":450,"done":false,"nextRecordsUrl":"#)
    );
    assert!(r.text.contains(r#"{"attributes":{"type":"Lead","url":"#));
    let p2 = e.get(&next).await.json();
    assert_eq!(p2["totalSize"], 450);
    let p3 = e.get(p2["nextRecordsUrl"].as_str().unwrap()).await.json();
    assert_eq!(p3["done"], true);
    assert!(p3.get("nextRecordsUrl").is_none());
    assert_eq!(p3["records"].as_array().unwrap().len(), 50);
    assert_eq!(p3["records"][49]["LastName"], "L449");
    // Unknown locator.
    let r = e.get("query/01gNOPE-200").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "INVALID_QUERY_LOCATOR")
    );
    // Default page is 2000; a page-size cap returns fewer.
    e.org.set_page_size_cap(Some(300));
    let r = e.query("SELECT Id FROM Lead").await.json();
    assert_eq!(r["records"].as_array().unwrap().len(), 300);
    // Every counted call carried the header.
    assert_eq!(e.org.api_requests_used(), 5);
}

#[tokio::test]
async fn where_clauses_order_limit_offset() {
    let e = env().await;
    e.org.set_time("2025-06-15T12:00:00Z".parse().unwrap());
    e.org.insert("Lead", json!({"LastName":"O'Brien","FirstName":"Pat","Company":"Acme","Phone":"03-1111-2222","CreatedDate":"2025-06-10T00:00:00Z"}));
    e.org.insert("Lead", json!({"LastName":"山田","FirstName":"太郎","Company":"株式会社テスト","Email":"t@example.jp","CreatedDate":"2024-01-01T00:00:00Z"}));
    e.org.insert("Lead", json!({"LastName":"佐藤","Company":"株式会社テスト","Phone":"090-1234-5678","IsConverted":true}));
    e.org
        .insert("Lead", json!({"LastName":"50%","Company":"Pct"}));
    let e = &e;
    let names = |r: Value| -> Vec<String> {
        r["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["LastName"].as_str().unwrap().to_string())
            .collect()
    };
    let q = |s: &'static str| async move { e.query(s).await };
    assert_eq!(
        names(
            q(r"SELECT LastName FROM Lead WHERE LastName = 'o\'brien'")
                .await
                .json()
        ),
        ["O'Brien"]
    );
    assert_eq!(
        names(
            q("SELECT LastName FROM Lead WHERE Company LIKE '株式会社%' ORDER BY LastName DESC")
                .await
                .json()
        ),
        ["山田", "佐藤"]
    );
    assert_eq!(
        names(
            q(r"SELECT LastName FROM Lead WHERE LastName LIKE '50\%'")
                .await
                .json()
        ),
        ["50%"]
    );
    assert_eq!(
        names(
            q("SELECT LastName FROM Lead WHERE Phone = null ORDER BY LastName")
                .await
                .json()
        ),
        ["50%", "山田"]
    );
    assert_eq!(
        names(
            q("SELECT LastName FROM Lead WHERE Phone != null AND IsConverted = false")
                .await
                .json()
        ),
        ["O'Brien"]
    );
    assert_eq!(
        names(
            q("SELECT LastName FROM Lead WHERE LastName IN ('佐藤', '山田') AND NOT Email = null")
                .await
                .json()
        ),
        ["山田"]
    );
    assert_eq!(names(q("SELECT LastName FROM Lead WHERE LastName NOT IN ('佐藤', '山田') AND (Company = 'Acme' OR Company = 'Pct') ORDER BY Company").await.json()), ["O'Brien", "50%"]);
    assert_eq!(
        names(
            q("SELECT LastName FROM Lead WHERE CreatedDate < 2025-01-01T00:00:00Z")
                .await
                .json()
        ),
        ["山田"]
    );
    assert_eq!(names(q("SELECT LastName FROM Lead WHERE CreatedDate >= 2025-06-09T00:00:00+09:00 AND CreatedDate = LAST_N_DAYS:7 AND CreatedDate < TODAY").await.json()), ["O'Brien"]);
    assert_eq!(
        q("SELECT LastName FROM Lead WHERE CreatedDate = TODAY")
            .await
            .json()["totalSize"],
        2
    );
    assert_eq!(
        names(
            q("SELECT LastName FROM Lead ORDER BY Company ASC, LastName DESC LIMIT 2 OFFSET 1")
                .await
                .json()
        ),
        ["50%", "山田"]
    );
    let c = q("SELECT COUNT() FROM Lead WHERE IsConverted = true")
        .await
        .json();
    assert_eq!(c, json!({"totalSize":1,"done":true,"records":[]}));
    // Dates are served Salesforce-style.
    let r = q("SELECT CreatedDate, SystemModstamp, IsConverted FROM Lead WHERE LastName = '山田'")
        .await
        .json();
    assert_eq!(
        r["records"][0]["CreatedDate"],
        "2024-01-01T00:00:00.000+0000"
    );
    assert_eq!(
        r["records"][0]["SystemModstamp"],
        "2024-01-01T00:00:00.000+0000"
    );
    assert_eq!(r["records"][0]["IsConverted"], false);
}

#[tokio::test]
async fn relationships_and_compound_addresses() {
    let e = env().await;
    let acc = e.org.insert("Account", json!({"Name":"株式会社サクラ"}));
    e.org.insert("Contact", json!({"LastName":"鈴木","AccountId":acc,"MailingCity":"千代田区","MailingPostalCode":"100-0001","Phone":"03-5555-0000"}));
    e.org.insert("Contact", json!({"LastName":"無所属"}));
    let r = e.query("SELECT Id, Name, Account.Name, MailingAddress, Owner.Email FROM Contact ORDER BY LastName DESC").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let a = &j["records"][0];
    assert_eq!(a["Name"], "鈴木");
    assert_eq!(a["Account"]["attributes"]["type"], "Account");
    assert_eq!(a["Account"]["Name"], "株式会社サクラ");
    assert_eq!(a["Owner"]["Email"], "admin@test.example.jp");
    assert_eq!(
        a["MailingAddress"],
        json!({"city":"千代田区","country":null,"geocodeAccuracy":null,"latitude":null,"longitude":null,"postalCode":"100-0001","state":null,"street":null})
    );
    let b = &j["records"][1];
    assert_eq!(b["Account"], Value::Null);
    assert_eq!(b["MailingAddress"], Value::Null);
    // Filtering on a relationship field.
    let r = e
        .query("SELECT Id FROM Contact WHERE Account.Name = '株式会社サクラ'")
        .await
        .json();
    assert_eq!(r["totalSize"], 1);
}

#[tokio::test]
async fn query_errors() {
    let e = env().await;
    let r = e.query("SELECT Id, Foo FROM Lead").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "INVALID_FIELD"));
    let msg = r.json()[0]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("No such column 'Foo' on entity 'Lead'"),
        "{msg}"
    );
    assert!(
        msg.starts_with("\nSELECT Id, Foo FROM Lead\n           ^\nERROR at Row:1:Column:12\n"),
        "{msg:?}"
    );
    let r = e.query("SELECT Id FROM Widget").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "INVALID_TYPE"));
    let r = e.query("SELECT Id FROM Lead WHERE").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MALFORMED_QUERY")
    );
    let r = e
        .query("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01'")
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "INVALID_QUERY_FILTER_OPERATOR")
    );
    let r = e.get("query").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MALFORMED_QUERY")
    );
    let r = e.query("SELECT Id FROM Lead OFFSET 2001").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "NUMBER_OUTSIDE_VALID_RANGE")
    );
}

#[tokio::test]
async fn query_all_sees_deleted_and_merged() {
    let e = env().await;
    let a = e.org.insert("Contact", json!({"LastName":"A"}));
    let b = e.org.insert("Contact", json!({"LastName":"B"}));
    e.org.merge("Contact", &a, &b);
    assert_eq!(
        ids(&e.query("SELECT Id FROM Contact").await.json()),
        vec![a.to_string()]
    );
    let q: String = url::form_urlencoded::byte_serialize(
        b"SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE IsDeleted = true",
    )
    .collect();
    let r = e.get(&format!("queryAll?q={q}")).await.json();
    assert_eq!(r["records"][0]["Id"], b);
    assert_eq!(r["records"][0]["IsDeleted"], true);
    assert_eq!(r["records"][0]["MasterRecordId"], a);
}

#[tokio::test]
async fn sosl_phone_search_is_format_tolerant() {
    let e = env().await;
    let l1 = e.org.insert(
        "Lead",
        json!({"LastName":"全角","Company":"X","Phone":"０３－１２３４－５６７８"}),
    );
    let l2 = e.org.insert(
        "Lead",
        json!({"LastName":"変換済","Company":"X","Phone":"03-1234-5678","IsConverted":true}),
    );
    let c1 = e.org.insert(
        "Contact",
        json!({"LastName":"国際","Phone":"+81 3 1234 5678"}),
    );
    let _c2 = e.org.insert(
        "Contact",
        json!({"LastName":"携帯","MobilePhone":"(03)1234-5678"}),
    );
    e.org.insert(
        "Contact",
        json!({"LastName":"別番号","Phone":"03-1234-5679"}),
    );
    let e = &e;
    let search = |sosl: &str| {
        let q: String = url::form_urlencoded::byte_serialize(sosl.as_bytes()).collect();
        let path = format!("search?q={q}");
        async move { e.get(&path).await }
    };
    let r = search("FIND {0312345678} IN PHONE FIELDS RETURNING Lead(Id, Phone WHERE IsConverted = false), Contact(Id, Phone)").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let found: Vec<&str> = j["searchRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["Id"].as_str().unwrap())
        .collect();
    assert!(
        found.contains(&l1.as_str()) && found.contains(&c1.as_str()),
        "{j}"
    );
    assert!(!found.contains(&l2.as_str()));
    assert_eq!(found.len(), 3, "MobilePhone is a phone field too: {j}");
    assert_eq!(j["searchRecords"][0]["attributes"]["type"], "Lead");
    // Escaped E.164 works; unescaped reserved characters and missing braces do not.
    let r = search(r"FIND {\+81312345678} IN PHONE FIELDS RETURNING Contact(Id)").await;
    assert_eq!(r.json()["searchRecords"].as_array().unwrap().len(), 2);
    let r = search("FIND {+81312345678} IN PHONE FIELDS RETURNING Contact(Id)").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MALFORMED_SEARCH")
    );
    let r = search("FIND 0312345678 IN PHONE FIELDS").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MALFORMED_SEARCH")
    );
    assert_eq!(
        r.json()[0]["message"],
        "No search term found. The search term must be enclosed in braces."
    );
    // Before v36 the result is a bare array.
    let q: String = url::form_urlencoded::byte_serialize(
        b"FIND {0312345678} IN PHONE FIELDS RETURNING Contact(Id)",
    )
    .collect();
    let r = e.get(&format!("/services/data/v35.0/search?q={q}")).await;
    assert!(r.json().is_array());
}

#[tokio::test]
async fn updated_and_deleted_windows() {
    let e = env().await;
    e.org.set_time("2025-06-15T12:00:30Z".parse().unwrap());
    let a = e.org.insert("Lead", json!({"LastName":"A","Company":"C"}));
    let b = e.org.insert("Lead", json!({"LastName":"B","Company":"C","SystemModstamp":"2025-06-01T00:00:00Z","LastModifiedDate":"2025-06-01T00:00:00Z"}));
    e.org.advance(std::time::Duration::from_secs(120));
    e.org.delete("Lead", &a);
    let r = e.get("sobjects/Lead/updated/?start=2025-06-10T00%3A00%3A00%2B00%3A00&end=2025-06-20T00%3A00%3A00%2B00%3A00").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"ids":[], "latestDateCovered":"2025-06-15T12:02:00.000+0000"})
    );
    let r = e
        .get("sobjects/Lead/updated?start=2025-05-20T00:00:00Z&end=2025-06-02T00:00:00Z")
        .await
        .json();
    assert_eq!(r["ids"], json!([b]));
    let r = e
        .get("sobjects/Lead/deleted/?start=2025-06-14T00:00:00Z&end=2025-06-16T00:00:00Z")
        .await
        .json();
    assert_eq!(
        r["deletedRecords"],
        json!([{"id": a, "deletedDate": "2025-06-15T12:02:30.000+0000"}])
    );
    assert_eq!(r["latestDateCovered"], "2025-06-15T12:02:00.000+0000");
    assert_eq!(r["earliestDateAvailable"], "2025-05-31T12:02:00.000+0000");
    let r = e
        .get("sobjects/Lead/updated?start=2025-04-01T00:00:00Z&end=2025-06-02T00:00:00Z")
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "INVALID_REPLICATION_DATE")
    );
    let r = e
        .get("sobjects/Lead/deleted?start=2025-05-20T00:00:00Z&end=2025-06-02T00:00:00Z")
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "INVALID_REPLICATION_DATE")
    );
}

#[tokio::test]
async fn describe_and_limits() {
    let e = env().await;
    let d = e.get("sobjects/Lead/describe").await.json();
    assert_eq!(d["name"], "Lead");
    assert_eq!(d["keyPrefix"], "00Q");
    let f = |n: &str| {
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .cloned()
            .unwrap()
    };
    let desc = f("Description");
    assert_eq!(
        (
            desc["type"].as_str(),
            desc["length"].as_i64(),
            desc["createable"].as_bool(),
            desc["updateable"].as_bool()
        ),
        (Some("textarea"), Some(32000), Some(true), Some(true))
    );
    assert_eq!(f("Phone")["type"], "phone");
    assert_eq!(f("IsConverted")["updateable"], false);
    assert_eq!(f("Status")["picklistValues"][0]["defaultValue"], true);
    let task = e.get("sobjects/Task/describe").await.json();
    assert!(
        task["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "CallDurationInSeconds")
    );
    let g = e.get("sobjects").await.json();
    assert!(
        g["sobjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "Contact")
    );
    let l = e.get("limits").await.json();
    assert_eq!(
        l["DailyApiRequests"],
        json!({"Max":15000,"Remaining":14996})
    );
    let r = e.get("sobjects/Widget/describe").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn parameterized_search_escapes_the_term() {
    let e = env().await;
    let id = e
        .org
        .insert("Contact", json!({"LastName":"国際","Phone":"03-1234-5678"}));
    let r = e.get("parameterizedSearch?q=%2B81312345678&sobject=Contact&sobject=Lead&in=PHONE&fields=Id,Phone").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["searchRecords"][0]["Id"], id);
    assert_eq!(j["searchRecords"][0]["Phone"], "03-1234-5678");
}

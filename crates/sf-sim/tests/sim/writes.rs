use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn crud_lifecycle() {
    let e = env().await;
    let r = e
        .req(
            "POST",
            "sobjects/Lead/",
            Some(json!({"LastName":"山田","Company":"株式会社テスト","Phone":"03-1234-5678"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let j = r.json();
    let id = j["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("00Q") && id.len() == 18);
    assert_eq!(
        r.text,
        format!(r#"{{"id":"{id}","success":true,"errors":[]}}"#)
    );
    assert_eq!(
        r.header("location"),
        Some(format!("/services/data/v{V}/sobjects/Lead/{id}").as_str())
    );
    let g = e.get(&format!("sobjects/Lead/{id}")).await.json();
    assert_eq!(g["Status"], "Open - Not Contacted");
    assert_eq!(g["OwnerId"], e.org.admin_user_id());
    assert_eq!(g["Name"], "山田");
    assert_eq!(g["IsConverted"], false);
    assert_eq!(g["Address"], Value::Null);
    let created = g["CreatedDate"].as_str().unwrap().to_string();
    assert!(created.ends_with(".000+0000") || created.ends_with("+0000"));
    // 15-char ids work too.
    assert_eq!(
        e.get(&format!("sobjects/Lead/{}", &id[..15])).await.status,
        200
    );
    let f = e
        .get(&format!("sobjects/Lead/{id}?fields=Phone,Company"))
        .await
        .text;
    assert!(
        f.starts_with(r#"{"attributes":{"type":"Lead","url":"#)
            && f.ends_with(r#","Company":"株式会社テスト","Phone":"03-1234-5678"}"#),
        "{f}"
    );
    e.org.advance(std::time::Duration::from_secs(5));
    let r = e
        .req(
            "PATCH",
            &format!("sobjects/Lead/{id}"),
            Some(json!({"FirstName":"太郎","Phone":null})),
            &[],
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    let g2 = e.org.get("Lead", &id).unwrap();
    assert_eq!(g2["Name"], "山田 太郎");
    assert_eq!(g2["Phone"], Value::Null);
    assert_ne!(g2["SystemModstamp"], g["SystemModstamp"]);
    assert_eq!(g2["LastModifiedDate"], g2["SystemModstamp"]);
    let r = e
        .req("DELETE", &format!("sobjects/Lead/{id}"), None, &[])
        .await;
    assert_eq!(r.status, 204);
    let r = e.get(&format!("sobjects/Lead/{id}")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "ENTITY_IS_DELETED")
    );
    let r = e.get("sobjects/Lead/00Q000000000000").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NOT_FOUND"));
    assert_eq!(
        r.json(),
        json!([{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}])
    );
}

#[tokio::test]
async fn write_rules() {
    let e = env().await;
    let r = e
        .req("POST", "sobjects/Lead", Some(json!({"FirstName":"x"})), &[])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!([{"message":"Required fields are missing: [LastName, Company]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName","Company"]}])
    );
    let r = e
        .req(
            "POST",
            "sobjects/Contact",
            Some(json!({"FirstName":"x"})),
            &[],
        )
        .await;
    assert_eq!(r.json()[0]["fields"], json!(["LastName"]));
    let r = e
        .req("POST", "sobjects/Account", Some(json!({})), &[])
        .await;
    assert_eq!(r.json()[0]["fields"], json!(["Name"]));
    let long = "あ".repeat(32_001);
    let r = e
        .req(
            "POST",
            "sobjects/Task",
            Some(json!({"Subject":"x","Description": long})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "STRING_TOO_LONG")
    );
    assert_eq!(r.json()[0]["fields"], json!(["Description"]));
    let ok = e
        .req(
            "POST",
            "sobjects/Task",
            Some(json!({"Subject":"x","Description": "あ".repeat(32_000)})),
            &[],
        )
        .await;
    assert_eq!(ok.status, 201);
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"Id":"00Q000000000001","LastName":"a","Company":"b"})),
            &[],
        )
        .await;
    assert_eq!(
        r.json()[0]["message"],
        "The Id field should not be specified in the sobject data."
    );
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"a","Company":"b","Bogus":"1"})),
            &[],
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "INVALID_FIELD"));
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"a","Company":"b","Name":"x"})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "INVALID_FIELD_FOR_INSERT_UPDATE");
    let r = e
        .req(
            "POST",
            "sobjects/Lead",
            Some(json!({"LastName":"a","Company":"b","NumberOfEmployees":"many"})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "JSON_PARSER_ERROR");
    // Converted leads reject writes and cannot be a Task's Who.
    let conv = e.org.insert(
        "Lead",
        json!({"LastName":"c","Company":"d","IsConverted":true}),
    );
    let r = e
        .req(
            "PATCH",
            &format!("sobjects/Lead/{conv}"),
            Some(json!({"Phone":"1"})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "CANNOT_UPDATE_CONVERTED_LEAD")
    );
    let r = e
        .req(
            "POST",
            "sobjects/Task",
            Some(json!({"Subject":"x","WhoId":conv})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "CANNOT_UPDATE_CONVERTED_LEAD");
    let r = e
        .req(
            "POST",
            "sobjects/Task",
            Some(json!({"Subject":"x","WhoId":"003000000000000"})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "INVALID_CROSS_REFERENCE_KEY");
    let r = e
        .req(
            "PUT",
            &format!("sobjects/Lead/{conv}"),
            Some(json!({})),
            &[],
        )
        .await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn task_logging_bumps_who_modstamp() {
    let e = env().await;
    e.org.set_time("2025-01-01T00:00:00Z".parse().unwrap());
    let c = e.org.insert("Contact", json!({"LastName":"x"}));
    e.org.advance(std::time::Duration::from_secs(3600));
    let r = e
        .req("POST", "sobjects/Task", Some(json!({"Subject":"着信","WhoId":c,"TaskSubtype":"Call","CallType":"Inbound","CallDurationInSeconds":192,"Status":"Completed","ActivityDate":"2025-01-01"})), &[])
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let task = e.org.get("Task", r.json()["id"].as_str().unwrap()).unwrap();
    assert_eq!(task["IsClosed"], true);
    assert_eq!(task["Priority"], "Normal");
    assert_eq!(task["ActivityDate"], "2025-01-01");
    let contact = e.org.get("Contact", &c).unwrap();
    assert_eq!(contact["SystemModstamp"], "2025-01-01T01:00:00.000+0000");
    assert_eq!(contact["LastModifiedDate"], "2025-01-01T00:00:00.000+0000");
    assert_eq!(contact["LastActivityDate"], "2025-01-01");
    // TaskSubtype is create-only.
    let r = e
        .req(
            "PATCH",
            &format!("sobjects/Task/{}", task["Id"].as_str().unwrap()),
            Some(json!({"TaskSubtype":"Task"})),
            &[],
        )
        .await;
    assert_eq!(r.error_code(), "INVALID_FIELD_FOR_INSERT_UPDATE");
}

#[tokio::test]
async fn collections_create_update_delete_and_all_or_none() {
    let e = env().await;
    let body = json!({"allOrNone": false, "records": [
        {"attributes":{"type":"Lead"},"LastName":"a","Company":"c"},
        {"attributes":{"type":"Lead"},"LastName":"b"},
        {"attributes":{"type":"Contact"},"LastName":"c"}
    ]});
    let r = e.req("POST", "composite/sobjects", Some(body), &[]).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j[0]["success"], true);
    assert_eq!(
        j[1],
        json!({"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [Company]","fields":["Company"]}]})
    );
    assert_eq!(j[2]["errors"], json!([]));
    let lead = j[0]["id"].as_str().unwrap().to_string();
    let contact = j[2]["id"].as_str().unwrap().to_string();
    assert_eq!(e.org.count("Lead"), 1);

    let body = json!({"allOrNone": true, "records": [
        {"attributes":{"type":"Account"},"Name":"ok"},
        {"attributes":{"type":"Account"}}
    ]});
    let j = e
        .req("POST", "composite/sobjects", Some(body), &[])
        .await
        .json();
    assert_eq!(
        j[0],
        json!({"success":false,"errors":[{"statusCode":"ALL_OR_NONE_OPERATION_ROLLED_BACK","message":"Record rolled back because not all records were valid and the request was using AllOrNone header","fields":[]}]})
    );
    assert_eq!(j[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(e.org.count("Account"), 0);

    let body = json!({"allOrNone": true, "records": [
        {"attributes":{"type":"Lead"},"id":lead,"Phone":"03-0000-0000"},
        {"attributes":{"type":"Contact"},"id":contact,"LastName":null}
    ]});
    let j = e
        .req("PATCH", "composite/sobjects", Some(body), &[])
        .await
        .json();
    assert_eq!(j[0]["id"], lead);
    assert_eq!(
        j[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(e.org.get("Lead", &lead).unwrap()["Phone"], Value::Null);
    let body =
        json!({"records": [{"attributes":{"type":"Lead"},"id":lead,"Phone":"03-0000-0000"}]});
    let j = e
        .req("PATCH", "composite/sobjects", Some(body), &[])
        .await
        .json();
    assert_eq!(j, json!([{"id":lead,"success":true,"errors":[]}]));

    let j = e
        .req(
            "DELETE",
            &format!("composite/sobjects?ids={lead},{contact}&allOrNone=false"),
            None,
            &[],
        )
        .await
        .json();
    assert_eq!(j[1], json!({"id":contact,"success":true,"errors":[]}));
    assert_eq!(e.org.count("Lead") + e.org.count("Contact"), 0);

    let many: Vec<Value> = (0..201)
        .map(|i| json!({"attributes":{"type":"Account"},"Name":format!("{i}")}))
        .collect();
    let r = e
        .req(
            "POST",
            "composite/sobjects",
            Some(json!({"records": many})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    // Each collections call is one API request.
    assert_eq!(e.org.api_requests_used(), 6);
}

#[tokio::test]
async fn composite_references_halts_and_rollback() {
    let e = env().await;
    let body = json!({"allOrNone": false, "compositeRequest": [
        {"method":"POST","url":format!("/services/data/v{V}/sobjects/Account"),"referenceId":"acc","body":{"Name":"株式会社コンポジット"}},
        {"method":"POST","url":format!("/services/data/v{V}/sobjects/Contact"),"referenceId":"con","body":{"LastName":"山田","AccountId":"@{acc.id}"}},
        {"method":"GET","url":format!("/services/data/v{V}/query?q=SELECT+Id+FROM+Account+WHERE+Name='nothing'"),"referenceId":"q"},
        {"method":"POST","url":format!("/services/data/v{V}/sobjects/Task"),"referenceId":"t","body":{"Subject":"x","WhatId":"@{q.records[0].Id}"}},
        {"method":"GET","url":format!("/services/data/v{V}/query?q=SELECT+Id,Account.Name+FROM+Contact+WHERE+Id='@{{con.id}}'"),"referenceId":"cq"},
        {"method":"POST","url":format!("/services/data/v{V}/sobjects/Task"),"referenceId":"t2","body":{"Subject":"y","WhoId":"@{cq.records[0].Id}"}}
    ]});
    let r = e.req("POST", "composite", Some(body), &[]).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    let rs = j["compositeResponse"].as_array().unwrap();
    assert_eq!(rs[0]["httpStatusCode"], 201);
    assert_eq!(rs[0]["referenceId"], "acc");
    let acc = rs[0]["body"]["id"].as_str().unwrap();
    assert_eq!(
        rs[0]["httpHeaders"]["Location"],
        format!("/services/data/v{V}/sobjects/Account/{acc}")
    );
    assert_eq!(rs[1]["httpStatusCode"], 201);
    let con = e
        .org
        .get("Contact", rs[1]["body"]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(con["AccountId"], acc);
    assert_eq!(rs[2]["body"]["totalSize"], 0);
    assert_eq!(rs[3]["httpStatusCode"], 400);
    assert_eq!(rs[3]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert!(
        rs[3]["body"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid reference specified. No value for q.records[0].Id found in q.")
    );
    // A query page inside composite: embedded as is, and its records can be referenced.
    assert_eq!(
        rs[4]["body"]["records"][0]["Account"]["Name"],
        "株式会社コンポジット"
    );
    assert_eq!(rs[5]["httpStatusCode"], 201, "{}", rs[5]);
    let task = e
        .org
        .get("Task", rs[5]["body"]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(task["WhoId"], rs[1]["body"]["id"]);
    assert_eq!(e.org.api_requests_used(), 1);

    // allOrNone: a failure rolls back the earlier subrequests.
    let body = json!({"allOrNone": true, "compositeRequest": [
        {"method":"POST","url":format!("/services/data/v{V}/sobjects/Account"),"referenceId":"a1","body":{"Name":"rolled back"}},
        {"method":"POST","url":format!("/services/data/v{V}/sobjects/Lead"),"referenceId":"l1","body":{"LastName":"no company"}},
        {"method":"GET","url":format!("/services/data/v{V}/sobjects/Account/@{{a1.id}}"),"referenceId":"g1"}
    ]});
    let j = e.req("POST", "composite", Some(body), &[]).await.json();
    let rs = j["compositeResponse"].as_array().unwrap();
    assert_eq!(rs[0]["httpStatusCode"], 400);
    assert_eq!(rs[0]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(rs[1]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(rs[2]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(e.org.count("Account"), 1);

    let too_many: Vec<Value> = (0..26).map(|i| json!({"method":"GET","url":format!("/services/data/v{V}/limits"),"referenceId":format!("r{i}")})).collect();
    let r = e
        .req(
            "POST",
            "composite",
            Some(json!({"compositeRequest": too_many})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
}

//! SPEC "Creating records in Salesforce" (R30–R35).

use crate::{missed, post, task};
use domain::{IntegrationSettings, SfObject};
use it::{World, drain};
use serde_json::json;

fn create_as(object: SfObject) -> IntegrationSettings {
    IntegrationSettings {
        create_customers: true,
        create_as: Some(object),
        ..Default::default()
    }
}

fn call_with_contact(
    call_id: &str,
    number: &str,
    name: &str,
    company: &str,
) -> Vec<(&'static str, String)> {
    let mut c = missed(call_id, number);
    c.push(("contact[name]", name.into()));
    if !company.is_empty() {
        c.push(("contact[company]", company.into()));
    }
    c
}

#[tokio::test]
async fn r30_r33_unknown_caller_becomes_a_lead_linked_at_once() {
    let w = World::new().await;
    w.settings(create_as(SfObject::Lead)).await;
    post(
        &w,
        &call_with_contact("l1", "090-1234-0001", "電話　太郎", ""),
    )
    .await;
    let worker = w.worker("w1", 200, None);
    drain(&worker).await;
    let leads = w.org.records("Lead");
    assert_eq!(leads.len(), 1);
    let lead = &leads[0];
    assert_eq!(
        (lead["LastName"].as_str(), lead["FirstName"].as_str()),
        (Some("電話"), Some("太郎"))
    );
    assert_eq!(
        lead["Company"], "CallConnect 取引先",
        "R30: placeholder company"
    );
    assert_eq!(lead["Phone"], "090-1234-0001");
    assert_eq!(task(&w, "l1")["WhoId"], lead["Id"]);
    let before = w.org.api_requests_used();
    post(&w, &missed("l2", "09012340001")).await;
    drain(&worker).await;
    assert_eq!(
        w.org.api_requests_used() - before,
        1,
        "R33: linked at once, no search next time"
    );
}

#[tokio::test]
async fn r30_lead_without_a_name_is_named_by_its_number() {
    let w = World::new().await;
    w.settings(create_as(SfObject::Lead)).await;
    post(&w, &missed("l3", "03-1111-2222")).await;
    drain(&w.worker("w1", 200, None)).await;
    assert_eq!(w.org.records("Lead")[0]["LastName"], "03-1111-2222");
}

#[tokio::test]
async fn r31_contacts_without_company_share_one_placeholder_account() {
    let w = World::new().await;
    w.settings(create_as(SfObject::Contact)).await;
    post(&w, &call_with_contact("p1", "03-2222-0001", "一人目", "")).await;
    post(&w, &call_with_contact("p2", "03-2222-0002", "二人目", "")).await;
    drain(&w.worker("w1", 200, None)).await;
    let accounts = w.org.records("Account");
    let placeholder: Vec<_> = accounts
        .iter()
        .filter(|a| a["Name"] == "CallConnect 取引先")
        .collect();
    assert_eq!(placeholder.len(), 1, "created once");
    let contacts = w.org.records("Contact");
    assert_eq!(contacts.len(), 2);
    assert!(
        contacts
            .iter()
            .all(|c| c["AccountId"] == placeholder[0]["Id"])
    );
}

#[tokio::test]
async fn r32_contact_goes_under_the_oldest_account_of_that_name_or_a_new_one() {
    let w = World::new().await;
    w.settings(create_as(SfObject::Contact)).await;
    let oldest = w.org.insert("Account", json!({"Name": "株式会社サンプル"}));
    w.org.advance(std::time::Duration::from_secs(60));
    w.org.insert("Account", json!({"Name": "株式会社サンプル"}));
    post(
        &w,
        &call_with_contact("a1", "03-3333-0001", "山田 花子", "株式会社サンプル"),
    )
    .await;
    post(
        &w,
        &call_with_contact("a2", "03-3333-0002", "佐藤 次郎", "新規株式会社"),
    )
    .await;
    drain(&w.worker("w1", 200, None)).await;
    let contacts = w.org.records("Contact");
    let yamada = contacts.iter().find(|c| c["LastName"] == "山田").unwrap();
    assert_eq!(yamada["AccountId"], oldest.as_str());
    let created: Vec<_> = w
        .org
        .records("Account")
        .into_iter()
        .filter(|a| a["Name"] == "新規株式会社")
        .collect();
    assert_eq!(created.len(), 1);
    let sato = contacts.iter().find(|c| c["LastName"] == "佐藤").unwrap();
    assert_eq!(sato["AccountId"], created[0]["Id"]);
}

#[tokio::test]
async fn r34_a_burst_from_one_unknown_number_creates_one_record() {
    let w = World::new().await;
    w.settings(create_as(SfObject::Lead)).await;
    for i in 0..20 {
        post(&w, &missed(&format!("b{i}"), "080-5555-0000")).await;
    }
    // Two workers, as two processes would run them.
    let (w1, w2) = (w.worker("w1", 5, None), w.worker("w2", 5, None));
    for _ in 0..20 {
        let (a, b) = tokio::join!(w1.step(), w2.step());
        if a.unwrap().claimed + b.unwrap().claimed == 0 {
            break;
        }
    }
    drain(&w1).await;
    assert_eq!(w.org.records("Lead").len(), 1, "one record, not twenty");
    assert_eq!(w.tasks().len(), 20, "every call has its activity");
}

#[tokio::test]
async fn r35_duplicate_rule_links_the_record_it_points_at() {
    let w = World::new().await;
    w.settings(create_as(SfObject::Lead)).await;
    let existing = w.org.insert(
        "Lead",
        json!({"LastName": "既存", "Company": "既存社", "Phone": "0344440000"}),
    );
    w.org.set_fault(sf_sim::Fault::DuplicateRule {
        object: "Lead".into(),
    });
    w.org
        .set_fault(sf_sim::Fault::SearchLag(std::time::Duration::from_secs(
            3600,
        )));
    post(&w, &missed("d1", "03-4444-0000")).await;
    drain(&w.worker("w1", 200, None)).await;
    assert_eq!(w.org.records("Lead").len(), 1, "nothing new was created");
    assert_eq!(task(&w, "d1")["WhoId"], existing.as_str());
}

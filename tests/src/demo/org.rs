//! The Salesforce side: sf-sim in-process, one org seeded with ~3,000 Japanese Leads and
//! Contacts, plus hand-made records and users for the scenarios.

use anyhow::{Result, bail};
use serde_json::{Value, json};
use sf_sim::{Org, OrgSpec, SeedSummary, SfSim, SimOptions, SimUser};
use std::collections::{BTreeMap, HashMap};

/// How many Leads and Contacts the generator makes, and its fixed seed (same org every run).
pub(crate) const SEED_RECORDS: usize = 3_000;
pub(crate) const SEED: u64 = 20_261_125;

/// A member of the phone system (a person who takes and makes calls).
pub(crate) struct Member {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) email: &'static str,
}

/// Has a Salesforce user; the phone system sends the email in lower case, Salesforce has it
/// capitalised (R23 matches case-insensitively).
pub(crate) const ICHIRO: Member = Member {
    id: "17",
    name: "営業 一郎",
    email: "ichiro.eigyo@demo-sim.example.jp",
};
/// Has a Salesforce user.
pub(crate) const HANAKO: Member = Member {
    id: "18",
    name: "営業 花子",
    email: "hanako.eigyo@demo-sim.example.jp",
};
/// A new member without a Salesforce user (R41): the connecting user owns their calls (R23).
pub(crate) const JIRO: Member = Member {
    id: "21",
    name: "新人 次郎",
    email: "jiro.shinjin@demo-sim.example.jp",
};

pub(crate) const ADMIN_EMAIL: &str = "admin@demo-sim.example.jp";

/// The scenario numbers, as people type them.
pub(crate) mod numbers {
    /// Contact 山田 健一 (株式会社アオゾラ商事).
    pub(crate) const CONTACT: &str = "03-6800-1001";
    /// Lead 中村 美咲 (株式会社ひまわり企画).
    pub(crate) const LEAD: &str = "090-6800-1002";
    /// Contact 小林 誠 (浪速運輸株式会社), called by the member without a user.
    pub(crate) const OUTGOING: &str = "06-6800-1003";
    /// Contact and Lead 佐藤 直樹 share this number (typed differently on each).
    pub(crate) const SHARED_CONTACT: &str = "045-680-1004";
    pub(crate) const SHARED_LEAD: &str = "+81 45-680-1004";
    /// A converted Lead and the Contact it became.
    pub(crate) const CONVERTED: &str = "052-680-1005";
    /// Not in Salesforce: a caller who gives a name and company.
    pub(crate) const UNKNOWN_NAMED: &str = "080-6800-2001";
    /// Not in Salesforce: nothing known but the number.
    pub(crate) const UNKNOWN_BARE: &str = "03-6800-2002";
    /// Not in Salesforce: calls ten times in a row.
    pub(crate) const BURST: &str = "050-6800-3000";
    /// Withheld.
    pub(crate) const WITHHELD: &str = "非通知";
}

/// The org and the ids of everything the scenarios refer to.
pub(crate) struct Fixture {
    pub(crate) sim: SfSim,
    pub(crate) org: Org,
    pub(crate) seeded: SeedSummary,
    pub(crate) admin_user: String,
    pub(crate) ichiro_user: String,
    pub(crate) hanako_user: String,
    pub(crate) contact: String,
    pub(crate) lead: String,
    pub(crate) outgoing_contact: String,
    pub(crate) shared_contact: String,
    pub(crate) shared_lead: String,
    pub(crate) converted_lead: String,
    pub(crate) converted_contact: String,
}

impl Fixture {
    pub(crate) async fn start() -> Result<Fixture> {
        let sim = SfSim::start_with(SimOptions::default()).await?;
        let org = sim.add_org(OrgSpec {
            name: "株式会社デモ商事".into(),
            users: vec![
                SimUser::new(ADMIN_EMAIL, "太郎", "管理"),
                SimUser::new("Ichiro.Eigyo@demo-sim.example.jp", "一郎", "営業"),
                SimUser::new("Hanako.Eigyo@demo-sim.example.jp", "花子", "営業"),
            ],
            ..Default::default()
        });
        let seeded = org.seed_japanese(SEED_RECORDS, SEED);
        let users = users_by_email(&org);
        let user = |email: &str| -> Result<String> {
            match users.get(&email.to_lowercase()) {
                Some(id) => Ok(id.clone()),
                None => bail!("sf-sim has no user {email}"),
            }
        };
        let (admin_user, ichiro_user, hanako_user) =
            (user(ADMIN_EMAIL)?, user(ICHIRO.email)?, user(HANAKO.email)?);
        check_numbers_unused(&org)?;

        let account = |name: &str| org.insert("Account", json!({ "Name": name }));
        let aozora = account("株式会社アオゾラ商事");
        let naniwa = account("浪速運輸株式会社");
        let minato = account("株式会社みなと物流");
        let mizuho = account("瑞穂食品株式会社");
        let contact = |last: &str, first: &str, phone: &str, account: &str, email: &str| {
            org.insert(
                "Contact",
                json!({"LastName": last, "FirstName": first, "Phone": phone,
                       "AccountId": account, "Email": email}),
            )
        };
        let lead = |last: &str, first: &str, phone: &str, company: &str, extra: Value| {
            let mut v = json!({"LastName": last, "FirstName": first, "Phone": phone,
                               "Company": company, "Status": "Working - Contacted"});
            if let (Some(m), Some(x)) = (v.as_object_mut(), extra.as_object()) {
                m.extend(x.clone());
            }
            org.insert("Lead", v)
        };
        let c1 = contact(
            "山田",
            "健一",
            numbers::CONTACT,
            &aozora,
            "k.yamada@aozora.example.jp",
        );
        let l1 = lead(
            "中村",
            "美咲",
            numbers::LEAD,
            "株式会社ひまわり企画",
            json!({}),
        );
        let c2 = contact(
            "小林",
            "誠",
            numbers::OUTGOING,
            &naniwa,
            "m.kobayashi@naniwa.example.jp",
        );
        let c3 = contact(
            "佐藤",
            "直樹",
            numbers::SHARED_CONTACT,
            &minato,
            "n.sato@minato.example.jp",
        );
        let l2 = lead(
            "佐藤",
            "直樹",
            numbers::SHARED_LEAD,
            "株式会社みなと物流",
            json!({}),
        );
        let c4 = contact(
            "伊藤",
            "陽菜",
            numbers::CONVERTED,
            &mizuho,
            "h.ito@mizuho.example.jp",
        );
        let l3 = lead(
            "伊藤",
            "陽菜",
            numbers::CONVERTED,
            "瑞穂食品株式会社",
            json!({"IsConverted": true, "Status": "Closed - Converted",
                   "ConvertedContactId": c4, "ConvertedAccountId": mizuho}),
        );
        Ok(Fixture {
            sim,
            org,
            seeded,
            admin_user,
            ichiro_user,
            hanako_user,
            contact: c1,
            lead: l1,
            outgoing_contact: c2,
            shared_contact: c3,
            shared_lead: l2,
            converted_lead: l3,
            converted_contact: c4,
        })
    }

    /// Ids of every record of `object` right now (to tell what the demo created).
    pub(crate) fn ids(&self, object: &str) -> Vec<String> {
        self.org
            .records(object)
            .iter()
            .filter_map(|r| r["Id"].as_str().map(str::to_owned))
            .collect()
    }

    /// User id → display name (family name first, as in Japan).
    pub(crate) fn user_names(&self) -> HashMap<String, String> {
        self.org
            .records("User")
            .iter()
            .filter_map(|u| {
                let id = u["Id"].as_str()?.to_owned();
                Some((id, person_name(u)))
            })
            .collect()
    }
}

/// `LastName FirstName`, or whatever part exists.
pub(crate) fn person_name(r: &Value) -> String {
    let parts: Vec<&str> = ["LastName", "FirstName"]
        .iter()
        .filter_map(|f| r[*f].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    parts.join(" ")
}

fn users_by_email(org: &Org) -> BTreeMap<String, String> {
    org.records("User")
        .iter()
        .filter_map(|u| {
            Some((
                u["Email"].as_str()?.to_lowercase(),
                u["Id"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Digits of a Japanese number in national form: full-width folded, `+81`/`+81 (0)` → `0`.
pub(crate) fn national_digits(raw: &str) -> String {
    let d: String = raw
        .chars()
        .filter_map(|c| {
            let c = if ('０'..='９').contains(&c) {
                char::from_u32(c as u32 - '０' as u32 + '0' as u32)?
            } else {
                c
            };
            c.is_ascii_digit().then_some(c)
        })
        .collect();
    if let Some(rest) = d.strip_prefix("810") {
        format!("0{rest}")
    } else if let Some(rest) = d.strip_prefix("81") {
        format!("0{rest}")
    } else {
        d
    }
}

/// The generated data must not already use a scenario number (it is deterministic, so this
/// only fails if the generator changes).
fn check_numbers_unused(org: &Org) -> Result<()> {
    use numbers::*;
    let ours: Vec<String> = [
        CONTACT,
        LEAD,
        OUTGOING,
        SHARED_CONTACT,
        CONVERTED,
        UNKNOWN_NAMED,
        UNKNOWN_BARE,
        BURST,
    ]
    .iter()
    .map(|n| national_digits(n))
    .collect();
    for object in ["Lead", "Contact"] {
        for r in org.records(object) {
            if let Some(p) = r["Phone"].as_str()
                && ours.contains(&national_digits(p))
            {
                bail!(
                    "the generated org already uses the scenario number {p} ({object} {}); \
                     change the demo's numbers or seed",
                    r["Id"]
                );
            }
        }
    }
    Ok(())
}

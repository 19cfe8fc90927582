//! The report: what happened (read back from sf-sim's state and callsync's API) and one
//! ✔/✘ per scenario, each checked against what the SPEC says should happen.

use super::api::Tenant;
use super::calls::{Call, Morning, TRANSCRIPT_FIRST};
use super::org::{Fixture, HANAKO, ICHIRO, JIRO, Member, national_digits, numbers, person_name};
use super::text::{Out, cut, pad, thousands, width};
use anyhow::Result;
use serde_json::Value;
use std::collections::HashSet;

/// Ids that existed before the calls, to tell what the calls created.
pub(crate) struct Before {
    pub(crate) tasks: HashSet<String>,
    pub(crate) leads: HashSet<String>,
    pub(crate) contacts: HashSet<String>,
    pub(crate) accounts: HashSet<String>,
}

impl Before {
    pub(crate) fn take(fx: &Fixture) -> Before {
        let set = |o: &str| fx.ids(o).into_iter().collect::<HashSet<_>>();
        Before {
            tasks: set("Task"),
            leads: set("Lead"),
            contacts: set("Contact"),
            accounts: set("Account"),
        }
    }
}

/// sf-sim's API counter at the phase boundaries.
pub(crate) struct Requests {
    pub(crate) at_start: u64,
    pub(crate) before_import: u64,
    pub(crate) after_import: u64,
    pub(crate) end: u64,
}

/// One scenario's outcome.
struct Check {
    ja: &'static str,
    en: &'static str,
    ok: bool,
    detail: String,
}

/// Everything the report reads.
pub(crate) struct Inputs<'a> {
    pub(crate) fx: &'a Fixture,
    pub(crate) tenant: &'a Tenant,
    pub(crate) morning: &'a Morning,
    pub(crate) before: &'a Before,
    pub(crate) import: &'a Value,
    pub(crate) requests: &'a Requests,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn object_ja(id: &str) -> &'static str {
    match id.get(..3) {
        Some("00Q") => "リード Lead",
        Some("003") => "取引先責任者 Contact",
        Some("001") => "取引先 Account",
        _ => "?",
    }
}

fn object_of(id: &str) -> &'static str {
    match id.get(..3) {
        Some("00Q") => "Lead",
        Some("003") => "Contact",
        _ => "Account",
    }
}

/// Prints the report; returns whether every scenario passed.
pub(crate) async fn print(out: &mut Out, i: &Inputs<'_>) -> Result<bool> {
    let fx = i.fx;
    let m = i.morning;
    let users = fx.user_names();
    let user_name = |id: &str| users.get(id).cloned().unwrap_or_else(|| id.to_owned());

    let all_tasks = fx.org.records("Task");
    let tasks: Vec<&Value> = all_tasks
        .iter()
        .filter(|t| !i.before.tasks.contains(s(&t["Id"])))
        .collect();
    let new_of = |object: &str, before: &HashSet<String>| -> Vec<Value> {
        fx.org
            .records(object)
            .into_iter()
            .filter(|r| !before.contains(s(&r["Id"])))
            .collect()
    };
    let mut new_leads = new_of("Lead", &i.before.leads);
    new_leads.sort_by_key(|l| national_digits(s(&l["Phone"])));
    let new_contacts = new_of("Contact", &i.before.contacts);
    let new_accounts = new_of("Account", &i.before.accounts);
    let record = |id: &str| fx.org.get(object_of(id), id);

    let status = i.tenant.get("/status").await?;
    let usage = i.tenant.get("/api-usage").await?;
    let failed = i.tenant.get("/failed").await?;
    let dups = i.tenant.get("/duplicates").await?;
    let without = i.tenant.get("/members-without-user").await?;

    // ── import ──
    let rep = &i.import["report"];
    out.heading("取り込み", "Import (Salesforce → phone system)");
    out.kv(
        "生成した組織データ",
        "generated org",
        format!(
            "{} Leads, {} Contacts ({} converted Leads, {} without Phone) + 9 hand-made",
            thousands(fx.seeded.leads as u64),
            thousands(fx.seeded.contacts as u64),
            fx.seeded.converted_leads,
            fx.seeded.without_phone
        ),
    );
    out.kv(
        "取り込んだ顧客",
        "customers imported",
        format!(
            "{} of {} records seen, in {:.1} s",
            thousands(u(&rep["created"])),
            thousands(u(&rep["seen"])),
            run_secs(i.import)
        ),
    );
    let skipped: Vec<String> = rep["skipped"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| format!("{k} {}", u(v))).collect())
        .unwrap_or_default();
    out.kv(
        "スキップ",
        "skipped",
        if skipped.is_empty() {
            "none".into()
        } else {
            skipped.join(", ")
        },
    );
    let dup_list = dups["duplicates"].as_array().cloned().unwrap_or_default();
    out.kv(
        "重複レコード",
        "duplicates",
        format!(
            "{} records share a number with the one kept",
            u(&rep["duplicates"])
        ),
    );
    if let Some(d) = dup_list
        .iter()
        .find(|d| s(&d["record"]["id"]) == fx.shared_lead)
    {
        let name = |id: &str| person_name(&record(id).unwrap_or(Value::Null));
        out.kv(
            "",
            "",
            format!(
                "e.g. {}: Lead {} → Contact {} kept (R14)",
                s(&d["number"]),
                name(s(&d["record"]["id"])),
                name(s(&d["winner"]["id"]))
            ),
        );
    }
    if let Some(errors) = rep["errors"].as_array().filter(|e| !e.is_empty()) {
        out.kv("エラー", "errors", format!("{errors:?}"));
    }

    // ── calls ──
    out.heading("通話", "Calls (phone system → Salesforce)");
    out.kv(
        "Webhook 送信 / 受理",
        "webhooks sent / accepted",
        format!("{} / {}", m.sent, m.accepted),
    );
    // Records with Tasks: most Tasks first, then by number (workers finish in any order).
    let who_order: Vec<String> = {
        let mut seen = HashSet::new();
        let mut whos: Vec<(usize, String, String)> = tasks
            .iter()
            .map(|t| s(&t["WhoId"]).to_owned())
            .filter(|w| seen.insert(w.clone()))
            .map(|w| {
                let n = tasks.iter().filter(|t| s(&t["WhoId"]) == w).count();
                let phone = record(&w)
                    .map(|r| national_digits(s(&r["Phone"])))
                    .unwrap_or_default();
                (n, phone, w)
            })
            .collect();
        whos.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        whos.into_iter().map(|(_, _, w)| w).collect()
    };
    out.kv(
        "書き込んだ活動 (Task)",
        "Tasks written",
        format!("{} on {} records", tasks.len(), who_order.len()),
    );
    out.blank();
    out.line(format!(
        "    {} {} {} {}",
        pad("レコード Record", 44),
        pad("電話 Phone", 16),
        pad("件数", 5),
        "担当 Owner"
    ));
    for who in &who_order {
        let on: Vec<&&Value> = tasks.iter().filter(|t| s(&t["WhoId"]) == who).collect();
        let rec = record(who).unwrap_or(Value::Null);
        let mut owners: Vec<String> = on.iter().map(|t| user_name(s(&t["OwnerId"]))).collect();
        owners.sort();
        owners.dedup();
        let label = format!(
            "{} {}",
            object_ja(who),
            cut(
                &person_name(&rec),
                43usize.saturating_sub(width(object_ja(who)))
            )
        );
        out.line(format!(
            "    {} {} {} {}",
            pad(&label, 44),
            pad(&cut(s(&rec["Phone"]), 16), 16),
            pad(&on.len().to_string(), 5),
            owners.join(", ")
        ));
    }
    out.blank();
    out.kv(
        "作成したレコード",
        "records created",
        format!("{} Leads, {} Contacts", new_leads.len(), new_contacts.len()),
    );
    for l in &new_leads {
        out.kv(
            "",
            "",
            format!(
                "Lead {} / {} / {}",
                person_name(l),
                s(&l["Company"]),
                s(&l["Phone"])
            ),
        );
    }
    out.kv(
        "作成した取引先",
        "Accounts created",
        format!(
            "{} (unknown callers become Leads, which need no Account)",
            new_accounts.len()
        ),
    );
    let transcripts = tasks
        .iter()
        .filter(|t| s(&t["Description"]).contains("--- 文字起こし ---"))
        .count();
    out.kv(
        "文字起こしを追記",
        "transcripts attached",
        transcripts.to_string(),
    );

    // ── one Task in full ──
    if let Some(t) = tasks.iter().find(|t| s(&t["CallObject"]) == m.answered.id) {
        out.heading("活動の例", "one Task as Salesforce has it");
        let who = s(&t["WhoId"]);
        out.kv("件名", "Subject", s(&t["Subject"]));
        out.kv(
            "関連先",
            "Who",
            format!(
                "{} {}",
                object_ja(who),
                person_name(&record(who).unwrap_or(Value::Null))
            ),
        );
        out.kv("任命先", "Owner", user_name(s(&t["OwnerId"])));
        out.kv(
            "通話",
            "call fields",
            format!(
                "{} / {} / {} s / CallObject {} / {} / {}",
                s(&t["TaskSubtype"]),
                s(&t["CallType"]),
                t["CallDurationInSeconds"],
                s(&t["CallObject"]),
                s(&t["CallDisposition"]),
                s(&t["ActivityDate"])
            ),
        );
        out.kv("説明", "Description", "");
        for l in s(&t["Description"]).lines() {
            out.line(format!("      │ {}", cut(l, 90)));
        }
    }

    // ── Salesforce API ──
    out.heading("Salesforce API", "requests used");
    let r = i.requests;
    out.kv(
        "sf-sim が数えた要求",
        "requests sf-sim counted",
        format!(
            "{} (connect {}, import {}, calls {})",
            r.end - r.at_start,
            r.before_import - r.at_start,
            r.after_import - r.before_import,
            r.end - r.after_import
        ),
    );
    let api = &usage["api"];
    out.kv(
        "callsync の送信数",
        "requests callsync sent",
        format!(
            "{} (import run reported {})",
            u(&api["requests_sent"]),
            u(&rep["api_requests"])
        ),
    );
    if api["org"].is_object() {
        out.kv(
            "組織の API 使用量",
            "org usage (Limit-Info)",
            format!(
                "{} of {} today; callsync's ceiling {} ({}%)",
                thousands(u(&api["org"]["used"])),
                thousands(u(&api["org"]["max"])),
                thousands(u(&api["ceiling"])),
                u(&api["budget_percent"])
            ),
        );
    }

    // ── failures and members ──
    out.heading("管理者向け", "For the admin");
    let failed_list = failed["failed"].as_array().cloned().unwrap_or_default();
    if failed_list.is_empty() {
        out.kv("失敗した処理", "failed items", "なし / none");
    } else {
        out.kv(
            "失敗した処理",
            "failed items",
            failed_list.len().to_string(),
        );
        for f in &failed_list {
            let fl = &f["failure"];
            out.line(format!(
                "    call {} {}: {} — {} / {}",
                s(&f["kind"]["call_id"]),
                s(&f["kind"]["event"]),
                s(&fl["code"]),
                s(&fl["message_ja"]),
                s(&fl["message_en"])
            ));
            if let Some(fix) = fl["fix_ja"].as_str() {
                out.line(format!("      対処: {fix} / {}", s(&fl["fix_en"])));
            }
        }
    }
    let without_list = without["members"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = without_list
        .iter()
        .map(|m| format!("{} <{}>", s(&m["name"]), s(&m["email"])))
        .collect();
    out.kv(
        "ユーザー未登録のメンバー",
        "members without a user",
        if names.is_empty() {
            "なし / none".into()
        } else {
            format!(
                "{} (their calls are owned by the connecting user)",
                names.join(", ")
            )
        },
    );
    let q = &status["queue"];
    out.kv(
        "キュー",
        "queue",
        format!(
            "ready {} leased {} waiting {} held {} dead {}",
            u(&q["ready"]),
            u(&q["leased"]),
            u(&q["waiting"]),
            u(&q["held"]),
            u(&q["dead"])
        ),
    );

    // ── scenarios ──
    let for_call = |c: &Call| -> Vec<&Value> {
        tasks
            .iter()
            .copied()
            .filter(|t| s(&t["CallObject"]) == c.id)
            .collect()
    };
    let owner_of = |member: &Member| -> String {
        if member.email == ICHIRO.email {
            fx.ichiro_user.clone()
        } else if member.email == HANAKO.email {
            fx.hanako_user.clone()
        } else {
            fx.admin_user.clone()
        }
    };
    // One Task for the call, on `who`, owned by the member's user (or the connecting user).
    let one_task = |c: &Call, who: &str, subject: &str| -> (bool, String) {
        let ts = for_call(c);
        match ts.as_slice() {
            [t] => {
                let ok = s(&t["WhoId"]) == who
                    && s(&t["OwnerId"]) == owner_of(c.member)
                    && s(&t["Subject"]).starts_with(subject);
                (
                    ok,
                    format!(
                        "「{}」 on {} {}, owner {}",
                        s(&t["Subject"]),
                        object_of(s(&t["WhoId"])),
                        person_name(&record(s(&t["WhoId"])).unwrap_or(Value::Null)),
                        user_name(s(&t["OwnerId"]))
                    ),
                )
            }
            other => (false, format!("{} Tasks for call {}", other.len(), c.id)),
        }
    };
    let new_lead_with = |number: &str| -> Vec<&Value> {
        new_leads
            .iter()
            .filter(|l| national_digits(s(&l["Phone"])) == national_digits(number))
            .collect()
    };
    let mut checks: Vec<Check> = Vec::new();

    let import_ok = i.import["ok"] == Value::Bool(true) && u(&rep["created"]) > 2_000;
    checks.push(Check {
        ja: "初回取り込み",
        en: "initial import",
        ok: import_ok,
        detail: format!(
            "{} customers, {} duplicates, run ok = {}",
            thousands(u(&rep["created"])),
            u(&rep["duplicates"]),
            i.import["ok"]
        ),
    });

    let mut known_ok = !m.known.is_empty();
    let mut members_seen = HashSet::new();
    for (c, k) in &m.known {
        let subject = if c.inbound { "着信" } else { "発信" };
        let (ok, _) = one_task(c, &k.id, subject);
        known_ok &= ok;
        members_seen.insert(c.member.name);
    }
    checks.push(Check {
        ja: "既存顧客との通話",
        en: "calls with imported customers",
        ok: known_ok,
        detail: format!(
            "{} calls by {} members: one Task each on its record, owned by the member's \
             Salesforce user (the connecting user for 新人 次郎)",
            m.known.len(),
            members_seen.len()
        ),
    });

    let (ok, detail) = one_task(&m.answered, &fx.contact, "着信");
    checks.push(Check {
        ja: "着信 (応答)",
        en: "answered inbound",
        ok,
        detail,
    });

    let answered = for_call(&m.answered);
    let desc = answered.first().map(|t| s(&t["Description"])).unwrap_or("");
    checks.push(Check {
        ja: "通話後のメモ",
        en: "memo saved after the call",
        ok: answered.len() == 1 && desc.contains(&m.memo),
        detail: format!(
            "{} Task for the call, memo in its Description: {}",
            answered.len(),
            desc.contains(&m.memo)
        ),
    });

    let line = format!("担当者: {TRANSCRIPT_FIRST}");
    checks.push(Check {
        ja: "文字起こし (後から)",
        en: "late transcription",
        ok: answered.len() == 1
            && desc.contains("--- 文字起こし ---")
            && desc.contains(&line)
            && desc.contains("お客様: 先日の見積の件でお電話しました。"),
        detail: "the dialogue (担当者 / お客様, mm:ss per recording) is on the same Task".into(),
    });

    checks.push(Check {
        ja: "二重配信",
        en: "webhook delivered twice",
        ok: m.redelivery == 200 && answered.len() == 1,
        detail: format!(
            "second delivery answered {}, still {} Task",
            m.redelivery,
            answered.len()
        ),
    });

    let (ok, detail) = one_task(&m.missed, &fx.lead, "不在着信");
    checks.push(Check {
        ja: "不在着信",
        en: "missed call",
        ok,
        detail,
    });

    let (ok, detail) = one_task(&m.outgoing, &fx.outgoing_contact, "発信・不通");
    checks.push(Check {
        ja: "発信・不通 (ユーザーなし)",
        en: "outgoing unanswered, member w/o user",
        ok: ok && owner_of(&JIRO) == fx.admin_user,
        detail,
    });

    let (ok, detail) = one_task(&m.shared, &fx.shared_contact, "着信");
    let listed = dup_list.iter().any(|d| {
        s(&d["record"]["id"]) == fx.shared_lead && s(&d["winner"]["id"]) == fx.shared_contact
    });
    let on_lead = tasks
        .iter()
        .filter(|t| s(&t["WhoId"]) == fx.shared_lead)
        .count();
    checks.push(Check {
        ja: "重複番号",
        en: "number shared by Contact and Lead",
        ok: ok && listed && on_lead == 0,
        detail: format!("{detail}; the Lead is listed as its duplicate: {listed}"),
    });

    let (ok, detail) = one_task(&m.converted, &fx.converted_contact, "着信");
    let on_converted = tasks
        .iter()
        .filter(|t| s(&t["WhoId"]) == fx.converted_lead)
        .count();
    checks.push(Check {
        ja: "取引開始済みリード",
        en: "converted Lead's number",
        ok: ok && on_converted == 0,
        detail: format!("{detail}; {on_converted} on the converted Lead"),
    });

    let named = new_lead_with(numbers::UNKNOWN_NAMED);
    let named_ok = match named.as_slice() {
        [l] => {
            s(&l["LastName"]) == "高田"
                && s(&l["FirstName"]) == "美咲"
                && s(&l["Company"]) == "株式会社みらい企画"
                && one_task(&m.unknown_named, s(&l["Id"]), "着信").0
        }
        _ => false,
    };
    checks.push(Check {
        ja: "未登録の番号 → リード作成",
        en: "unknown caller → Lead created",
        ok: named_ok,
        detail: named
            .first()
            .map(|l| {
                format!(
                    "Lead {} / {} / {}, with the call's Task",
                    person_name(l),
                    s(&l["Company"]),
                    s(&l["Phone"])
                )
            })
            .unwrap_or_else(|| format!("{} new Leads with that number", named.len())),
    });

    let bare = new_lead_with(numbers::UNKNOWN_BARE);
    let placeholder = "CallConnect 取引先";
    let bare_ok = match bare.as_slice() {
        [l] => {
            s(&l["LastName"]) == numbers::UNKNOWN_BARE
                && s(&l["Company"]) == placeholder
                && one_task(&m.unknown_bare, s(&l["Id"]), "不在着信").0
        }
        _ => false,
    };
    checks.push(Check {
        ja: "名前のない番号 → リード作成",
        en: "nameless caller → Lead created",
        ok: bare_ok,
        detail: bare
            .first()
            .map(|l| {
                format!(
                    "LastName {} / Company {} (R30)",
                    s(&l["LastName"]),
                    s(&l["Company"])
                )
            })
            .unwrap_or_else(|| format!("{} new Leads with that number", bare.len())),
    });

    let withheld_tasks = for_call(&m.withheld).len();
    checks.push(Check {
        ja: "非通知",
        en: "withheld number",
        ok: m.withheld_status == 202 && withheld_tasks == 0,
        detail: format!(
            "acknowledged {}, {} Tasks, no record (R27)",
            m.withheld_status, withheld_tasks
        ),
    });

    let burst_leads = new_lead_with(numbers::BURST);
    let burst_ok = match burst_leads.as_slice() {
        [l] => {
            let on: usize = m
                .burst
                .iter()
                .map(|c| {
                    for_call(c)
                        .iter()
                        .filter(|t| s(&t["WhoId"]) == s(&l["Id"]))
                        .count()
                })
                .sum();
            on == m.burst.len() && m.burst.iter().all(|c| for_call(c).len() == 1)
        }
        _ => false,
    };
    let burst_tasks: usize = m.burst.iter().map(|c| for_call(c).len()).sum();
    checks.push(Check {
        ja: "同じ番号から10件連続",
        en: "burst of 10 calls, unknown number",
        ok: burst_ok,
        detail: format!(
            "{} Lead created, {} Tasks on it (R34)",
            burst_leads.len(),
            burst_tasks
        ),
    });

    checks.push(Check {
        ja: "作成したレコード",
        en: "records created, nothing else",
        ok: new_leads.len() == 3 && new_contacts.is_empty() && new_accounts.is_empty(),
        detail: format!(
            "{} Leads, {} Contacts, {} Accounts created",
            new_leads.len(),
            new_contacts.len(),
            new_accounts.len()
        ),
    });

    let without_ok =
        without_list.len() == 1 && s(&without_list[0]["email"]).eq_ignore_ascii_case(JIRO.email);
    checks.push(Check {
        ja: "ユーザーのいないメンバー",
        en: "members without a user",
        ok: without_ok,
        detail: format!("listed: {}", names.join(", ")),
    });

    checks.push(Check {
        ja: "失敗なし",
        en: "nothing failed",
        ok: failed_list.is_empty() && u(&q["dead"]) == 0 && u(&q["held"]) == 0,
        detail: format!("{} failed items", failed_list.len()),
    });

    out.heading("シナリオ", "Scenarios");
    let mut all = true;
    for c in &checks {
        all &= c.ok;
        let mark = if c.ok { "✔" } else { "✘" };
        out.line(format!("  {mark} {}  {}", c.ja, c.en));
        out.line(format!("      {}", c.detail));
    }
    let passed = checks.iter().filter(|c| c.ok).count();
    out.blank();
    out.line(format!("  {passed}/{} scenarios passed", checks.len()));
    Ok(all)
}

fn run_secs(run: &Value) -> f64 {
    let t = |k: &str| {
        run[k]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    };
    match (t("started_at"), t("finished_at")) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    }
}

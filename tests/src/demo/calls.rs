//! "A morning of calls": the phone system's webhooks (form-encoded, bracket keys, HMAC-signed
//! as `crates/event-ingest/README.md` describes), one scenario after another.

use super::api::Tenant;
use super::org::{Fixture, HANAKO, ICHIRO, JIRO, Member, national_digits, numbers};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use event_ingest::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Posts signed webhooks to one tenant's URL.
#[derive(Clone)]
pub(crate) struct Sender {
    http: reqwest::Client,
    url: String,
    secret: Arc<SecretString>,
}

impl Sender {
    pub(crate) fn new(http: reqwest::Client, url: &str, secret: &str) -> Sender {
        Sender {
            http,
            url: url.to_owned(),
            secret: Arc::new(SecretString::from(secret.to_owned())),
        }
    }

    /// Posts a body signed afresh; returns the status and the JSON answer.
    async fn post(&self, content_type: &str, body: Vec<u8>) -> Result<(u16, Value)> {
        let ts = Utc::now().timestamp();
        let sig = sign(&self.secret, ts, &body);
        let res = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await
            .context("posting a webhook")?;
        let status = res.status().as_u16();
        let v = res.json().await.unwrap_or(Value::Null);
        Ok((status, v))
    }

    pub(crate) async fn form(&self, pairs: &[(&str, String)]) -> Result<(u16, Value)> {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(
            "application/x-www-form-urlencoded",
            it::form(&refs).into_bytes(),
        )
        .await
    }

    pub(crate) async fn json(&self, v: &Value) -> Result<(u16, Value)> {
        self.post("application/json", serde_json::to_vec(v)?).await
    }
}

/// One call event as the phone system reports it.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) event: &'static str,
    pub(crate) inbound: bool,
    pub(crate) number: String,
    /// The phone system's customer book entry: name, company.
    pub(crate) contact: Option<(String, String)>,
    pub(crate) member: &'static Member,
    pub(crate) started: DateTime<FixedOffset>,
    /// Talk time; 0 = not answered.
    pub(crate) talk_secs: u32,
    pub(crate) memo: Option<String>,
}

impl Call {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("event", self.event.to_owned()),
            ("record[id]", self.id.clone()),
            (
                "record[direction]",
                if self.inbound { "inbound" } else { "outbound" }.to_owned(),
            ),
            ("record[number]", self.number.clone()),
            ("contact[number]", self.number.clone()),
            ("record[started_at]", iso(self.started)),
        ];
        if !self.inbound {
            p.push(("record[status]", "200".to_owned()));
        }
        if let Some((name, company)) = &self.contact {
            p.push(("contact[name]", name.clone()));
            if !company.is_empty() {
                p.push(("contact[company]", company.clone()));
            }
        }
        let ring = Duration::seconds(7);
        if self.talk_secs > 0 {
            p.push(("record[answered_at]", iso(self.started + ring)));
        }
        p.push((
            "record[ended_at]",
            iso(self.started + ring + Duration::seconds(i64::from(self.talk_secs))),
        ));
        p.push(("record[duration]", self.talk_secs.to_string()));
        if let Some(m) = &self.memo {
            p.push(("record[memo]", m.clone()));
        }
        p.push((
            "record[url]",
            format!("https://phone.example.jp/calls/{}", self.id),
        ));
        if self.talk_secs > 0 {
            p.push((
                "record[recording_url]",
                format!("https://phone.example.jp/calls/{}/rec", self.id),
            ));
        }
        p.push(("user[id]", self.member.id.to_owned()));
        p.push(("user[name]", self.member.name.to_owned()));
        p.push(("user[email]", self.member.email.to_owned()));
        p
    }
}

fn iso(t: DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// A customer from the generated data that callsync imported (found by caller-ID lookup).
#[derive(Clone)]
pub(crate) struct Known {
    pub(crate) object: String,
    pub(crate) id: String,
    pub(crate) phone: String,
    pub(crate) name: String,
}

/// Picks `n` generated Leads/Contacts whose number is theirs alone and that callsync's
/// caller-ID lookup (R18) links to them.
pub(crate) async fn pick_known(fx: &Fixture, tenant: &Tenant, n: usize) -> Result<Vec<Known>> {
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut candidates = Vec::new();
    for object in ["Contact", "Lead"] {
        for r in fx.org.records(object) {
            let live = r["IsDeleted"] != json!(true) && r["IsConverted"] != json!(true);
            let Some(phone) = r["Phone"].as_str().filter(|p| !p.trim().is_empty()) else {
                continue;
            };
            *count.entry(national_digits(phone)).or_default() += 1;
            if live {
                candidates.push(Known {
                    object: object.to_owned(),
                    id: r["Id"].as_str().unwrap_or_default().to_owned(),
                    phone: phone.to_owned(),
                    name: super::org::person_name(&r),
                });
            }
        }
    }
    // Alternate Contacts and Leads, spread over the data.
    let (contacts, leads): (Vec<Known>, Vec<Known>) =
        candidates.into_iter().partition(|k| k.object == "Contact");
    let mut picked = Vec::new();
    let step = 97;
    for i in 0..contacts.len().max(leads.len()) {
        for list in [&contacts, &leads] {
            let Some(k) = list.get((i * step) % list.len().max(1)) else {
                continue;
            };
            if picked.len() == n
                || count.get(&national_digits(&k.phone)) != Some(&1)
                || picked.iter().any(|p: &Known| p.id == k.id)
            {
                continue;
            }
            let q: String = url::form_urlencoded::byte_serialize(k.phone.as_bytes()).collect();
            let Some(c) = tenant.find(&format!("/customers?number={q}")).await? else {
                continue;
            };
            if c["link"]["record"]["id"].as_str() == Some(k.id.as_str()) {
                picked.push(k.clone());
            }
        }
        if picked.len() == n {
            return Ok(picked);
        }
    }
    bail!("found only {} imported customers to call", picked.len())
}

/// What was sent, for the checks.
pub(crate) struct Morning {
    /// (call, customer) for answered calls to generated customers.
    pub(crate) known: Vec<(Call, Known)>,
    /// Answered inbound to Contact 山田 健一; memo saved afterwards; transcription later.
    pub(crate) answered: Call,
    pub(crate) memo: String,
    pub(crate) missed: Call,
    pub(crate) outgoing: Call,
    pub(crate) shared: Call,
    pub(crate) converted: Call,
    pub(crate) unknown_named: Call,
    pub(crate) unknown_bare: Call,
    pub(crate) withheld: Call,
    pub(crate) burst: Vec<Call>,
    /// The status of delivering the answered call's `call_ended` a second time.
    pub(crate) redelivery: u16,
    /// Webhooks sent and answered 2xx.
    pub(crate) sent: usize,
    pub(crate) accepted: usize,
    /// Status of the withheld call's webhook.
    pub(crate) withheld_status: u16,
}

/// Sends the morning's webhooks (the transcription comes later: [`transcription`]).
pub(crate) async fn morning(sender: &Sender, known: Vec<Known>) -> Result<Morning> {
    let jst = FixedOffset::east_opt(9 * 3600).context("JST")?;
    let start = Utc::now().with_timezone(&jst) - Duration::hours(3);
    let mut seq = 0u32;
    let mut next = |event, inbound, number: &str, member, talk_secs| {
        seq += 1;
        Call {
            id: format!("{}", 880_000 + seq),
            event,
            inbound,
            number: number.to_owned(),
            contact: None,
            member,
            started: start + Duration::minutes(i64::from(seq) * 6),
            talk_secs,
            memo: None,
        }
    };
    let members: [&'static Member; 3] = [&HANAKO, &ICHIRO, &JIRO];
    let known: Vec<(Call, Known)> = known
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let mut c = next(
                "call_ended",
                i % 3 != 2,
                &k.phone,
                members[i % 3],
                95 + 40 * i as u32,
            );
            c.contact = Some((k.name.clone(), String::new()));
            (c, k)
        })
        .collect();
    let mut answered = next("call_ended", true, numbers::CONTACT, &ICHIRO, 192);
    answered.contact = Some(("山田 健一".into(), "株式会社アオゾラ商事".into()));
    let memo = "見積の件で折り返し希望。来週火曜に訪問予定".to_owned();
    let mut memo_saved = answered.clone();
    memo_saved.event = "memo_saved";
    memo_saved.memo = Some(memo.clone());
    let missed = next("missed", true, numbers::LEAD, &HANAKO, 0);
    let outgoing = next("unanswered", false, numbers::OUTGOING, &JIRO, 0);
    let shared = next("call_ended", true, numbers::SHARED_LEAD, &ICHIRO, 64);
    let converted = next("call_ended", true, numbers::CONVERTED, &HANAKO, 131);
    let mut unknown_named = next("call_ended", true, numbers::UNKNOWN_NAMED, &ICHIRO, 305);
    unknown_named.contact = Some(("高田 美咲".into(), "株式会社みらい企画".into()));
    let unknown_bare = next("missed", true, numbers::UNKNOWN_BARE, &HANAKO, 0);
    let withheld = next("missed", true, numbers::WITHHELD, &ICHIRO, 0);
    let burst: Vec<Call> = (0..10)
        .map(|i| {
            let (event, talk) = if i % 3 == 0 {
                ("call_ended", 20 + i)
            } else {
                ("missed", 0)
            };
            let mut c = next(event, true, numbers::BURST, members[i as usize % 3], talk);
            c.started = start + Duration::minutes(150) + Duration::seconds(i64::from(i) * 40);
            c
        })
        .collect();

    let mut sent = 0;
    let mut accepted = 0;
    let mut send = async |c: &Call| -> Result<u16> {
        let (s, v) = sender.form(&c.pairs()).await?;
        sent += 1;
        if (200..300).contains(&s) {
            accepted += 1;
        } else {
            eprintln!("  webhook {} {}: {s} {v}", c.id, c.event);
        }
        Ok(s)
    };
    for (c, _) in &known {
        send(c).await?;
    }
    send(&answered).await?;
    send(&memo_saved).await?;
    send(&missed).await?;
    send(&outgoing).await?;
    send(&shared).await?;
    send(&converted).await?;
    send(&unknown_named).await?;
    send(&unknown_bare).await?;
    let withheld_status = send(&withheld).await?;
    let redelivery = send(&answered).await?;
    // The burst arrives all at once: ten deliveries in flight together (R34).
    let mut set = tokio::task::JoinSet::new();
    for c in &burst {
        let (s, pairs) = (sender.clone(), c.pairs());
        set.spawn(async move { s.form(&pairs).await });
    }
    while let Some(r) = set.join_next().await {
        let (s, v) = r??;
        sent += 1;
        if (200..300).contains(&s) {
            accepted += 1;
        } else {
            eprintln!("  burst webhook: {s} {v}");
        }
    }
    Ok(Morning {
        known,
        answered,
        memo,
        missed,
        outgoing,
        shared,
        converted,
        unknown_named,
        unknown_bare,
        withheld,
        burst,
        redelivery,
        sent,
        accepted,
        withheld_status,
    })
}

/// The first utterance of the late transcription (the checks look for it on the Task).
pub(crate) const TRANSCRIPT_FIRST: &str = "お電話ありがとうございます。デモ商事の営業一郎です。";

/// The answered call's transcription, twenty minutes later, as JSON (R26).
pub(crate) async fn transcription(sender: &Sender, call: &Call) -> Result<u16> {
    let body = json!({
        "event": "transcription_completed",
        "contact": {"number": call.number},
        "record": {
            "id": call.id,
            "direction": "inbound",
            "transcribe_direction": "inbound_operator_right",
            "transcribes": {
                "RE1a2b": [[0, TRANSCRIPT_FIRST, 0.8],
                           [1, "アオゾラ商事の山田です。いつもお世話になっております。", 3.1],
                           [1, "先日の見積の件でお電話しました。", 6.4],
                           [0, "ありがとうございます。確認して折り返します。", 11.9]],
                "RE9z8y": [[0, "お待たせいたしました。来週火曜はいかがでしょうか。", 0.6],
                           [1, "はい、大丈夫です。", 4.2]]
            }
        },
        "user": {"id": call.member.id, "email": call.member.email}
    });
    let (s, v) = sender.json(&body).await?;
    if !(200..300).contains(&s) {
        bail!("transcription webhook: {s} {v}");
    }
    Ok(s)
}

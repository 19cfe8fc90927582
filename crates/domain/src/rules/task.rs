//! Task composition (R24): what a call looks like as a Salesforce activity.

use crate::ports::{TaskDraft, TaskPatch};
use crate::{CallEvent, Direction, EventKind, Language, SalesforceId, SalesforceRecordRef};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The call's outcome (CallDisposition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Missed,
    Unanswered,
    Voicemail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::Unanswered => "unanswered",
            Self::Voicemail => "voicemail",
        }
    }
}

/// The outcome of a call from one of its events. Events that do not say it (memo,
/// transcription) infer it from whether the call was answered.
pub fn outcome(e: &CallEvent) -> Outcome {
    match e.kind {
        EventKind::Missed => Outcome::Missed,
        EventKind::Unanswered => Outcome::Unanswered,
        EventKind::Voicemail => Outcome::Voicemail,
        EventKind::CallEnded => Outcome::Answered,
        EventKind::MemoSaved | EventKind::TranscriptionCompleted => {
            if e.answered_at.is_some() || e.duration_secs.is_some_and(|d| d > 0) {
                Outcome::Answered
            } else if direction(e) == Direction::Outbound {
                Outcome::Unanswered
            } else {
                Outcome::Missed
            }
        }
    }
}

/// Direction, defaulting by outcome when the webhook did not say (a `missed` call is inbound,
/// an `unanswered` one outbound), else inbound.
pub fn direction(e: &CallEvent) -> Direction {
    e.direction.unwrap_or(match e.kind {
        EventKind::Unanswered => Direction::Outbound,
        _ => Direction::Inbound,
    })
}

/// `3:12`, or `1:02:03` past an hour.
pub fn format_duration(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// R24 Subject: direction, outcome and the other party, e.g. `着信 03-1234-5678 (3:12)`,
/// `不在着信 090-1234-5678`, `発信・不通 0120-994-132`.
pub fn subject(e: &CallEvent, lang: Language) -> String {
    let party = e.party.display();
    let dir = direction(e);
    let label = match (lang, outcome(e), dir) {
        (Language::Ja, Outcome::Answered, Direction::Inbound) => "着信",
        (Language::Ja, Outcome::Answered, Direction::Outbound) => "発信",
        (Language::Ja, Outcome::Missed, _) => "不在着信",
        (Language::Ja, Outcome::Unanswered, _) => "発信・不通",
        (Language::Ja, Outcome::Voicemail, _) => "留守番電話",
        (Language::En, Outcome::Answered, Direction::Inbound) => "Inbound call",
        (Language::En, Outcome::Answered, Direction::Outbound) => "Outbound call",
        (Language::En, Outcome::Missed, _) => "Missed call",
        (Language::En, Outcome::Unanswered, _) => "Outbound call, no answer",
        (Language::En, Outcome::Voicemail, _) => "Voicemail",
    };
    match (outcome(e), e.duration_secs) {
        (Outcome::Answered | Outcome::Voicemail, Some(d)) if d > 0 => {
            format!("{label} {party} ({})", format_duration(d))
        }
        _ => format!("{label} {party}"),
    }
}

/// R24 ActivityDate: the date the call started, in the tenant's time zone (Asia/Tokyo by
/// default). Falls back to when it ended, then to when callsync received it.
pub fn activity_date(e: &CallEvent, tz: Tz, received_at: DateTime<Utc>) -> NaiveDate {
    e.started_at
        .or(e.answered_at)
        .or(e.ended_at)
        .map(|t| t.with_timezone(&tz).date_naive())
        .unwrap_or_else(|| received_at.with_timezone(&tz).date_naive())
}

/// R24 Description: the member, the call's memo and links back to the call and recording.
pub fn description(e: &CallEvent, lang: Language, tz: Tz) -> String {
    let (member_l, memo_l, call_l, rec_l, started_l, dir_l, dur_l) = match lang {
        Language::Ja => ("担当者", "メモ", "通話", "録音", "開始", "方向", "通話時間"),
        Language::En => (
            "Member",
            "Memo",
            "Call",
            "Recording",
            "Started",
            "Direction",
            "Duration",
        ),
    };
    let mut lines = Vec::new();
    if let Some(m) = &e.member {
        let who = match (&m.name, &m.email) {
            (Some(n), Some(em)) => Some(format!("{n} <{em}>")),
            (Some(n), None) => Some(n.clone()),
            (None, Some(em)) => Some(em.clone()),
            (None, None) => None,
        };
        if let Some(who) = who {
            lines.push(format!("{member_l}: {who}"));
        }
    }
    let dir = match (lang, direction(e)) {
        (Language::Ja, Direction::Inbound) => "着信",
        (Language::Ja, Direction::Outbound) => "発信",
        (Language::En, Direction::Inbound) => "inbound",
        (Language::En, Direction::Outbound) => "outbound",
    };
    lines.push(format!("{dir_l}: {dir} / {}", e.party.display()));
    if let Some(t) = e.started_at {
        lines.push(format!(
            "{started_l}: {}",
            t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z")
        ));
    }
    if let Some(d) = e.duration_secs.filter(|d| *d > 0) {
        lines.push(format!("{dur_l}: {}", format_duration(d)));
    }
    if let Some(memo) = e.memo.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        lines.push(format!("{memo_l}: {memo}"));
    }
    if let Some(u) = &e.call_url {
        lines.push(format!("{call_l}: {u}"));
    }
    if let Some(u) = &e.recording_url {
        lines.push(format!("{rec_l}: {u}"));
    }
    lines.join("\n")
}

/// Everything R24 needs besides the event.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub who: SalesforceRecordRef,
    pub owner: Option<SalesforceId>,
    pub language: Language,
    pub tz: Tz,
    pub received_at: DateTime<Utc>,
}

/// The Task for a call (R24). `e` is the call as known so far (see `folding::merge_call`);
/// `description` is the full Description (the transcript may have been added, R26).
pub fn compose_task(e: &CallEvent, ctx: &TaskContext, description: String) -> TaskDraft {
    TaskDraft {
        who: ctx.who.clone(),
        owner: ctx.owner.clone(),
        subject: subject(e, ctx.language),
        description,
        call_type: direction(e),
        duration_secs: e.duration_secs,
        call_object: e.call_id.as_str().to_owned(),
        disposition: outcome(e).as_str().to_owned(),
        activity_date: activity_date(e, ctx.tz, ctx.received_at),
    }
}

/// The update a later event makes to the call's Task (R25).
pub fn patch_task(e: &CallEvent, lang: Language, description: String) -> TaskPatch {
    TaskPatch {
        subject: Some(subject(e, lang)),
        description: Some(description),
        duration_secs: e.duration_secs,
        disposition: Some(outcome(e).as_str().to_owned()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{CallId, ContactInfo, MemberInfo, PartyNumber, SfObject};
    use chrono::FixedOffset;
    use std::collections::BTreeMap;

    pub(crate) fn event(kind: EventKind, number: &str, duration: Option<u32>) -> CallEvent {
        let jst = FixedOffset::east_opt(9 * 3600).unwrap();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&jst);
        CallEvent {
            call_id: CallId::parse("22232").unwrap(),
            kind,
            direction: None,
            status_code: None,
            party: PartyNumber::classify(number),
            contact: ContactInfo::default(),
            member: Some(MemberInfo {
                external_id: Some("17".into()),
                name: Some("営業 一郎".into()),
                email: Some("ichiro.eigyo@example.jp".into()),
            }),
            started_at: Some(t("2026-11-25T00:30:00+09:00")),
            answered_at: duration
                .filter(|d| *d > 0)
                .map(|_| t("2026-11-25T00:30:07+09:00")),
            ended_at: None,
            duration_secs: duration,
            memo: None,
            call_url: Some("https://phone.example.jp/calls/22232".into()),
            recording_url: None,
            transcript: None,
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn r24_subject_says_direction_outcome_and_party() {
        let mut inbound = event(EventKind::CallEnded, "03-1234-5678", Some(192));
        inbound.direction = Some(Direction::Inbound);
        let missed = event(EventKind::Missed, "09012345678", Some(0));
        let unanswered = event(EventKind::Unanswered, "0120994132", None);
        let mut outbound = event(EventKind::CallEnded, "0312345678", Some(3725));
        outbound.direction = Some(Direction::Outbound);
        let vm = event(EventKind::Voicemail, "0312345678", Some(15));
        let table = [
            (&inbound, Language::Ja, "着信 03-1234-5678 (3:12)"),
            (&missed, Language::Ja, "不在着信 090-1234-5678"),
            (&unanswered, Language::Ja, "発信・不通 0120-994-132"),
            (&outbound, Language::Ja, "発信 03-1234-5678 (1:02:05)"),
            (&vm, Language::Ja, "留守番電話 03-1234-5678 (0:15)"),
            (&inbound, Language::En, "Inbound call 03-1234-5678 (3:12)"),
            (&missed, Language::En, "Missed call 090-1234-5678"),
            (
                &unanswered,
                Language::En,
                "Outbound call, no answer 0120-994-132",
            ),
        ];
        for (e, lang, expected) in table {
            assert_eq!(subject(e, lang), expected);
        }
    }

    #[test]
    fn r24_activity_date_is_the_start_date_in_tokyo() {
        // Started 2026-11-25 00:30 JST = 2026-11-24 15:30 UTC: the date is the 25th in Tokyo.
        let e = event(EventKind::CallEnded, "03-1234-5678", Some(10));
        let received = Utc::now();
        assert_eq!(
            activity_date(&e, chrono_tz::Asia::Tokyo, received),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        );
        assert_eq!(
            activity_date(&e, chrono_tz::UTC, received),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
        let no_times = CallEvent {
            started_at: None,
            answered_at: None,
            ended_at: None,
            ..e
        };
        let r = DateTime::parse_from_rfc3339("2026-01-01T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            activity_date(&no_times, chrono_tz::Asia::Tokyo, r),
            NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()
        );
    }

    #[test]
    fn r24_task_fields() {
        let mut e = event(EventKind::CallEnded, "03-1234-5678", Some(192));
        e.memo = Some("見積の件で折り返し希望".into());
        e.recording_url = Some("https://phone.example.jp/calls/22232/rec".into());
        let ctx = TaskContext {
            who: SalesforceRecordRef {
                object: SfObject::Lead,
                id: SalesforceId::parse("00Q000000000001").unwrap(),
            },
            owner: Some(SalesforceId::parse("005000000000001").unwrap()),
            language: Language::Ja,
            tz: chrono_tz::Asia::Tokyo,
            received_at: Utc::now(),
        };
        let desc = description(&e, Language::Ja, ctx.tz);
        let t = compose_task(&e, &ctx, desc.clone());
        assert_eq!(t.call_type, Direction::Inbound);
        assert_eq!(t.duration_secs, Some(192));
        assert_eq!(t.call_object, "22232");
        assert_eq!(t.disposition, "answered");
        assert_eq!(t.who, ctx.who);
        assert_eq!(t.owner, ctx.owner);
        assert!(
            desc.contains("担当者: 営業 一郎 <ichiro.eigyo@example.jp>"),
            "{desc}"
        );
        assert!(desc.contains("メモ: 見積の件で折り返し希望"), "{desc}");
        assert!(
            desc.contains("通話: https://phone.example.jp/calls/22232"),
            "{desc}"
        );
        assert!(
            desc.contains("録音: https://phone.example.jp/calls/22232/rec"),
            "{desc}"
        );
        assert!(desc.contains("開始: 2026-11-25 00:30:00 JST"), "{desc}");
    }

    #[test]
    fn r24_outcome_of_memo_events_is_inferred() {
        let answered_memo = event(EventKind::MemoSaved, "03-1234-5678", Some(30));
        assert_eq!(outcome(&answered_memo), Outcome::Answered);
        let missed_memo = event(EventKind::MemoSaved, "03-1234-5678", Some(0));
        assert_eq!(outcome(&missed_memo), Outcome::Missed);
        let mut out_memo = missed_memo.clone();
        out_memo.direction = Some(Direction::Outbound);
        assert_eq!(outcome(&out_memo), Outcome::Unanswered);
    }
}

//! One call, one Task (R25): which event creates the Task, which update it, and the call as
//! known from all its events.

use crate::ports::CallTask;
use crate::{CallEvent, EventKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAction {
    /// The first notifying event of the call: create the Task.
    Create,
    /// A later event (memo saved, a second notifying event): update the same Task.
    Update,
    /// A transcription for a call whose Task exists: add the text (R26).
    AttachTranscript,
    /// A transcription arrived before the call's Task was written: wait for it (R26).
    WaitForTask,
}

/// R25/R26. `existing` is the call's Task if written; `notify_pending` says whether another
/// event of this call that will create the Task is stored but not yet processed.
pub fn fold(kind: EventKind, existing: Option<&CallTask>, notify_pending: bool) -> TaskAction {
    match (kind, existing) {
        (EventKind::TranscriptionCompleted, Some(_)) => TaskAction::AttachTranscript,
        (EventKind::TranscriptionCompleted, None) if notify_pending => TaskAction::WaitForTask,
        // No notifying event will ever write the Task: the transcription writes it itself.
        (EventKind::TranscriptionCompleted, None) => TaskAction::Create,
        (_, None) => TaskAction::Create,
        (_, Some(_)) => TaskAction::Update,
    }
}

/// The call as known from all its events so far (received order): later non-empty values
/// win, so a `memo_saved` carrying only the memo keeps the times and links of `call_ended`,
/// and the outcome stays that of the call, not of the memo.
pub fn merge_call(events: &[CallEvent]) -> Option<CallEvent> {
    let mut it = events.iter();
    let mut merged = it.next()?.clone();
    for e in it {
        // The outcome is the call's (answered, missed…), never that of a memo or transcript.
        if !matches!(
            e.kind,
            EventKind::MemoSaved | EventKind::TranscriptionCompleted
        ) {
            merged.kind = e.kind;
        }
        macro_rules! take {
            ($($f:ident).+) => {
                if e.$($f).+.is_some() { merged.$($f).+ = e.$($f).+.clone(); }
            };
        }
        take!(direction);
        take!(status_code);
        // A later event may carry only part of the member (the transcription example has
        // just id and email): keep what earlier events said.
        match (&mut merged.member, &e.member) {
            (Some(m), Some(n)) => {
                if n.external_id.is_some() {
                    m.external_id.clone_from(&n.external_id);
                }
                if n.name.is_some() {
                    m.name.clone_from(&n.name);
                }
                if n.email.is_some() {
                    m.email.clone_from(&n.email);
                }
            }
            (None, Some(n)) => merged.member = Some(n.clone()),
            _ => {}
        }
        take!(started_at);
        take!(answered_at);
        take!(ended_at);
        // A memo event may say 0 for a call it did not time; keep the call's talk time.
        if e.duration_secs.is_some_and(|d| d > 0) || merged.duration_secs.is_none() {
            merged.duration_secs = e.duration_secs;
        }
        take!(memo);
        take!(call_url);
        take!(recording_url);
        take!(transcript);
        if merged.party.number().is_none() && e.party.number().is_some() {
            merged.party = e.party.clone();
        }
        merged.extra.extend(e.extra.clone());
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::task::tests::event;
    use crate::{CallId, SalesforceId, SalesforceRecordRef, SfObject};

    fn task() -> CallTask {
        CallTask {
            call_id: CallId::parse("22232").unwrap(),
            task_id: SalesforceId::parse("00T000000000001").unwrap(),
            who: SalesforceRecordRef {
                object: SfObject::Lead,
                id: SalesforceId::parse("00Q000000000001").unwrap(),
            },
            owner: None,
            description: String::new(),
            continuation_task_ids: vec![],
        }
    }

    #[test]
    fn r25_first_notifying_event_creates_later_ones_update() {
        use EventKind::*;
        use TaskAction::*;
        let t = task();
        let table = [
            (CallEnded, None, false, Create),
            (Missed, None, false, Create),
            (MemoSaved, None, false, Create),
            (MemoSaved, Some(&t), false, Update),
            (CallEnded, Some(&t), false, Update),
            (TranscriptionCompleted, Some(&t), false, AttachTranscript),
            (TranscriptionCompleted, None, true, WaitForTask),
            (TranscriptionCompleted, None, false, Create),
        ];
        for (kind, existing, pending, expected) in table {
            assert_eq!(fold(kind, existing, pending), expected, "{kind:?}");
        }
    }

    #[test]
    fn r25_merge_keeps_call_facts_and_takes_the_latest_memo() {
        let mut ended = event(EventKind::CallEnded, "03-1234-5678", Some(192));
        ended.memo = Some("一回目".into());
        let mut memo = event(EventKind::MemoSaved, "", None);
        memo.member = Some(crate::MemberInfo {
            external_id: None,
            name: None,
            email: Some("x@example.jp".into()),
        });
        memo.started_at = None;
        memo.call_url = None;
        memo.memo = Some("見積の件で折り返し希望".into());
        let merged = merge_call(&[ended.clone(), memo]).unwrap();
        assert_eq!(
            merged.kind,
            EventKind::CallEnded,
            "the outcome stays the call's"
        );
        assert_eq!(merged.memo.as_deref(), Some("見積の件で折り返し希望"));
        assert_eq!(merged.duration_secs, Some(192));
        assert_eq!(merged.started_at, ended.started_at);
        assert_eq!(merged.call_url, ended.call_url);
        assert_eq!(merged.party, ended.party);
        let member = merged.member.unwrap();
        assert_eq!(
            member.name.as_deref(),
            Some("営業 一郎"),
            "a partial member keeps the name"
        );
        assert_eq!(member.email.as_deref(), Some("x@example.jp"));
        assert!(merge_call(&[]).is_none());
    }
}

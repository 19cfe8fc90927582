//! Which events produce or change an activity (R2, R5, R6).

use crate::ports::SkipReason;
use crate::{EventKind, IntegrationSettings};

/// Whether an event should touch Salesforce at all, and if not, why (recorded as the
/// event's outcome).
pub fn should_process(kind: EventKind, s: &IntegrationSettings) -> Result<(), SkipReason> {
    if kind == EventKind::TranscriptionCompleted {
        // R5 governs transcripts; they attach to the call's activity, which R2 governs.
        if !s.write_transcription {
            return Err(SkipReason::TranscriptionOff);
        }
        if !s.write_activity {
            return Err(SkipReason::ActivityOff);
        }
        return Ok(());
    }
    if !s.write_activity {
        return Err(SkipReason::ActivityOff);
    }
    if !s.notify_on.contains(&kind) {
        return Err(SkipReason::NotNotified);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r6_only_notify_on_events_write_r2_r5_gate_them() {
        let default = IntegrationSettings::default();
        let missed_only = IntegrationSettings {
            notify_on: [EventKind::Missed].into_iter().collect(),
            ..Default::default()
        };
        let no_activity = IntegrationSettings {
            write_activity: false,
            ..Default::default()
        };
        let transcripts = IntegrationSettings {
            write_transcription: true,
            ..Default::default()
        };
        use EventKind::*;
        use SkipReason::*;
        let table: &[(&IntegrationSettings, EventKind, Result<(), SkipReason>)] = &[
            (&default, CallEnded, Ok(())),
            (&default, Missed, Ok(())),
            (&default, Unanswered, Ok(())),
            (&default, Voicemail, Ok(())),
            (&default, MemoSaved, Ok(())),
            (&default, TranscriptionCompleted, Err(TranscriptionOff)),
            (&missed_only, Missed, Ok(())),
            (&missed_only, CallEnded, Err(NotNotified)),
            (&missed_only, MemoSaved, Err(NotNotified)),
            (&no_activity, CallEnded, Err(ActivityOff)),
            (&transcripts, TranscriptionCompleted, Ok(())),
            (
                &IntegrationSettings {
                    write_activity: false,
                    ..transcripts.clone()
                },
                TranscriptionCompleted,
                Err(ActivityOff),
            ),
        ];
        for (s, kind, expected) in table {
            assert_eq!(should_process(*kind, s), *expected, "{kind:?}");
        }
    }
}

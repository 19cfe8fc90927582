//! Call events as the phone system reports them (SPEC "Call events", callconnect-webhook.md).

use crate::{CallId, PartyNumber};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Which notification event a webhook reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CallEnded,
    Missed,
    Unanswered,
    Voicemail,
    MemoSaved,
    TranscriptionCompleted,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        Self::CallEnded,
        Self::Missed,
        Self::Unanswered,
        Self::Voicemail,
        Self::MemoSaved,
        Self::TranscriptionCompleted,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallEnded => "call_ended",
            Self::Missed => "missed",
            Self::Unanswered => "unanswered",
            Self::Voicemail => "voicemail",
            Self::MemoSaved => "memo_saved",
            Self::TranscriptionCompleted => "transcription_completed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::CallEnded => "通話終了",
            Self::Missed => "不在着信",
            Self::Unanswered => "発信・不通",
            Self::Voicemail => "留守番電話",
            Self::MemoSaved => "メモ保存",
            Self::TranscriptionCompleted => "文字起こし完了",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "inbound" | "in" | "incoming" => Some(Self::Inbound),
            "outbound" | "out" | "outgoing" => Some(Self::Outbound),
            _ => None,
        }
    }
    /// From `record[status]` where the code is known (`200` = outgoing call, 発信通話).
    pub fn from_status_code(code: &str) -> Option<Self> {
        match code.trim() {
            "200" => Some(Self::Outbound),
            _ => None,
        }
    }
}

/// The customer as the webhook carries it (`contact[...]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInfo {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub memo: Option<String>,
}

/// The member as the webhook carries it (`user[...]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub external_id: Option<String>,
    pub name: Option<String>,
    /// As received; matched case-insensitively when it parses (R23).
    pub email: Option<String>,
}

/// Which audio channel is the operator (`record[transcribe_direction]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscribeDirection {
    OutboundOperatorRight,
    OutboundOperatorLeft,
    InboundOperatorRight,
    InboundOperatorLeft,
    NoDirection,
}

impl TranscribeDirection {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "outbound_operator_right" => Some(Self::OutboundOperatorRight),
            "outbound_operator_left" => Some(Self::OutboundOperatorLeft),
            "inbound_operator_right" => Some(Self::InboundOperatorRight),
            "inbound_operator_left" => Some(Self::InboundOperatorLeft),
            "no_direction" => Some(Self::NoDirection),
            _ => None,
        }
    }
}

/// One utterance: `[channel, text, elapsed_seconds]` in the webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    pub channel: u8,
    pub text: String,
    /// Seconds from the start of its recording.
    pub offset_secs: f64,
}

/// One recording of a call; a new one starts at each hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub key: String,
    pub utterances: Vec<Utterance>,
}

/// A call's transcription, recordings in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub direction: TranscribeDirection,
    pub recordings: Vec<Recording>,
}

/// One webhook, parsed. Identified by (`call_id`, `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub call_id: CallId,
    pub kind: EventKind,
    pub direction: Option<Direction>,
    /// `record[status]`, kept as received (codes are not all public).
    pub status_code: Option<String>,
    /// The other party's number (`record[number]`, falling back to `contact[number]`).
    pub party: PartyNumber,
    pub contact: ContactInfo,
    pub member: Option<MemberInfo>,
    pub started_at: Option<DateTime<FixedOffset>>,
    pub answered_at: Option<DateTime<FixedOffset>>,
    pub ended_at: Option<DateTime<FixedOffset>>,
    pub duration_secs: Option<u32>,
    pub memo: Option<String>,
    pub call_url: Option<String>,
    pub recording_url: Option<String>,
    pub transcript: Option<Transcript>,
    /// Fields callsync does not know, kept as received.
    pub extra: BTreeMap<String, String>,
}

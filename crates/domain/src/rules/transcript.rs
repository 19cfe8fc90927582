//! Transcripts as readable dialogue, split across Tasks when longer than a Description
//! holds (R26).

use crate::{Language, TranscribeDirection, Transcript};

/// Task.Description holds 32,000 characters.
pub const DESCRIPTION_LIMIT: usize = 32_000;

/// The operator's audio channel in recording `index` (0-based), per `transcribe_direction`.
/// `None` for `no_direction` (no conversation: no speaker labels).
pub fn operator_channel(direction: TranscribeDirection, index: usize) -> Option<u8> {
    match direction {
        TranscribeDirection::OutboundOperatorRight => Some(if index == 0 { 0 } else { 1 }),
        TranscribeDirection::OutboundOperatorLeft => Some(if index == 0 { 1 } else { 0 }),
        TranscribeDirection::InboundOperatorRight => Some(0),
        TranscribeDirection::InboundOperatorLeft => Some(1),
        TranscribeDirection::NoDirection => None,
    }
}

/// `mm:ss` within the recording (minutes keep counting past 59).
pub fn format_offset(secs: f64) -> String {
    let total = if secs.is_finite() && secs > 0.0 {
        secs.floor() as u64
    } else {
        0
    };
    format!("{:02}:{:02}", total / 60, total % 60)
}

/// One line per utterance, with a heading line per recording when there are several.
pub fn render_lines(t: &Transcript, lang: Language) -> Vec<String> {
    let (operator, customer, recording) = match lang {
        Language::Ja => ("担当者", "お客様", "録音"),
        Language::En => ("Agent", "Customer", "Recording"),
    };
    let several = t.recordings.len() > 1;
    let mut lines = Vec::new();
    for (i, rec) in t.recordings.iter().enumerate() {
        if rec.utterances.is_empty() {
            continue;
        }
        if several {
            lines.push(format!("[{recording} {}]", i + 1));
        }
        let op = operator_channel(t.direction, i);
        for u in &rec.utterances {
            let text = u.text.trim();
            if text.is_empty() {
                continue;
            }
            let at = format_offset(u.offset_secs);
            match op {
                Some(ch) => {
                    let who = if u.channel == ch { operator } else { customer };
                    lines.push(format!("{at} {who}: {text}"));
                }
                None => lines.push(format!("{at} {text}")),
            }
        }
    }
    lines
}

pub fn heading(lang: Language) -> &'static str {
    match lang {
        Language::Ja => "--- 文字起こし ---",
        Language::En => "--- Transcript ---",
    }
}

/// Splits `base` + transcript lines into Descriptions of at most `limit` characters (R26):
/// the first holds the base and as many lines as fit; the rest continue in order. A line is
/// never cut, unless a single line is longer than a whole Description (then it is split at
/// character boundaries, the only way to keep every word).
pub fn split_descriptions(
    base: &str,
    lines: &[String],
    lang: Language,
    limit: usize,
) -> Vec<String> {
    let head = heading(lang);
    let mut parts: Vec<String> = Vec::new();
    let mut current = if base.is_empty() {
        head.to_owned()
    } else {
        format!("{base}\n\n{head}")
    };
    let mut current_len = current.chars().count();
    let mut has_line = false;
    let fresh = |parts: &mut Vec<String>, current: &mut String, len: &mut usize| {
        parts.push(std::mem::take(current));
        *current = head.to_owned();
        *len = head.chars().count();
    };
    for line in lines {
        let line_len = line.chars().count();
        if current_len + 1 + line_len <= limit {
            current.push('\n');
            current.push_str(line);
            current_len += 1 + line_len;
            has_line = true;
            continue;
        }
        if has_line || current_len > head.chars().count() {
            fresh(&mut parts, &mut current, &mut current_len);
            has_line = false;
        }
        if current_len + 1 + line_len <= limit {
            current.push('\n');
            current.push_str(line);
            current_len += 1 + line_len;
            has_line = true;
            continue;
        }
        // A single utterance longer than a Description: split it, in order.
        let room = limit.saturating_sub(current_len + 1).max(1);
        let chars: Vec<char> = line.chars().collect();
        for piece in chars.chunks(room) {
            if has_line {
                fresh(&mut parts, &mut current, &mut current_len);
            }
            current.push('\n');
            current.extend(piece.iter());
            current_len += 1 + piece.len();
            has_line = true;
        }
    }
    parts.push(current);
    parts
}

/// Subject of continuation Task `part` of `total` (1-based; part ≥ 2): `… (文字起こし 2/3)`.
pub fn continuation_subject(subject: &str, part: usize, total: usize, lang: Language) -> String {
    match lang {
        Language::Ja => format!("{subject} (文字起こし {part}/{total})"),
        Language::En => format!("{subject} (transcript {part}/{total})"),
    }
}

/// CallObject of continuation Task `part` (≥ 2): `<call id>:<part>`.
pub fn continuation_call_object(call_id: &str, part: usize) -> String {
    format!("{call_id}:{part}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Recording, Utterance};

    fn u(channel: u8, text: &str, at: f64) -> Utterance {
        Utterance {
            channel,
            text: text.into(),
            offset_secs: at,
        }
    }

    #[test]
    fn r26_speakers_follow_transcribe_direction_per_recording() {
        use TranscribeDirection::*;
        let table = [
            (OutboundOperatorRight, [Some(0), Some(1), Some(1)]),
            (OutboundOperatorLeft, [Some(1), Some(0), Some(0)]),
            (InboundOperatorRight, [Some(0), Some(0), Some(0)]),
            (InboundOperatorLeft, [Some(1), Some(1), Some(1)]),
            (NoDirection, [None, None, None]),
        ];
        for (dir, expected) in table {
            for (i, want) in expected.iter().enumerate() {
                assert_eq!(operator_channel(dir, i), *want, "{dir:?} recording {i}");
            }
        }
    }

    #[test]
    fn r26_renders_the_webhook_example_as_dialogue() {
        // The transcription example of callconnect-webhook.md.
        let t = Transcript {
            direction: TranscribeDirection::InboundOperatorRight,
            recordings: vec![
                Recording {
                    key: "RE1a2b".into(),
                    utterances: vec![
                        u(0, "お電話ありがとうございます。", 1.2),
                        u(1, "先日の見積の件でお電話しました。", 4.8),
                    ],
                },
                Recording {
                    key: "RE9z8y".into(),
                    utterances: vec![u(0, "お待たせいたしました。", 0.6)],
                },
            ],
        };
        assert_eq!(
            render_lines(&t, Language::Ja),
            vec![
                "[録音 1]",
                "00:01 担当者: お電話ありがとうございます。",
                "00:04 お客様: 先日の見積の件でお電話しました。",
                "[録音 2]",
                "00:00 担当者: お待たせいたしました。",
            ]
        );
        assert_eq!(format_offset(754.9), "12:34");
        assert_eq!(format_offset(f64::NAN), "00:00");
    }

    #[test]
    fn r26_long_transcripts_split_without_cutting_utterances() {
        let lines: Vec<String> = (0..100)
            .map(|i| format!("00:{i:02} お客様: {}", "あ".repeat(50 + i)))
            .collect();
        let parts = split_descriptions("ベース", &lines, Language::Ja, 1_000);
        assert!(parts.len() > 1);
        for p in &parts {
            assert!(p.chars().count() <= 1_000, "a part is over the limit");
        }
        assert!(parts[0].starts_with("ベース\n\n--- 文字起こし ---\n"));
        // Every utterance appears whole, exactly once, in order.
        let joined: Vec<&str> = parts
            .iter()
            .flat_map(|p| p.lines())
            .filter(|l| l.starts_with("00:"))
            .collect();
        let expected: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(joined, expected);
        assert_eq!(
            continuation_subject("着信 03-1234-5678 (3:12)", 2, 3, Language::Ja),
            "着信 03-1234-5678 (3:12) (文字起こし 2/3)"
        );
        assert_eq!(continuation_call_object("22232", 2), "22232:2");
    }

    #[test]
    fn r26_short_transcript_is_one_description_and_huge_utterance_is_kept_whole_in_order() {
        let parts = split_descriptions(
            "b",
            &["00:00 x".to_owned()],
            Language::Ja,
            DESCRIPTION_LIMIT,
        );
        assert_eq!(parts, vec!["b\n\n--- 文字起こし ---\n00:00 x".to_owned()]);
        let huge = "字".repeat(250);
        let parts = split_descriptions("", std::slice::from_ref(&huge), Language::Ja, 100);
        assert!(parts.iter().all(|p| p.chars().count() <= 100));
        let rebuilt: String = parts.iter().flat_map(|p| p.lines().skip(1)).collect();
        assert_eq!(rebuilt, huge);
    }
}

//! Webhook bodies → [`CallEvent`]: pure functions, no IO (SPEC "Call events",
//! `callconnect-webhook.md`).
//!
//! Both formats — the phone system's form encoding with bracket keys (`record[id]=…`) and the
//! JSON form (`{"record": {"id": …}}`) — are first flattened into the same bracket-keyed fields,
//! then one function applies the field rules. So the two formats accept exactly the same data,
//! and errors name fields the same way (`record[duration]`) whichever format was sent.
//!
//! Rules, in short: `event` and `record[id]` are required; everything else is optional. Values
//! that are present but malformed are errors, all of them reported at once. A withheld or empty
//! number is valid input (R27). Unknown fields and unknown `record[status]` codes are kept, never
//! rejected. Sizes are bounded (see the constants) so that a hostile body costs little.
//!
//! Mapping notes: `contact[id]` (the phone system's customer id) becomes
//! `ContactInfo::external_id`; the webhook's own `contact[external_id]` (an id in a linked
//! service), `contact[external_info]` and `contact[created_at]` stay in `extra`. The party is
//! `record[number]`, else `contact[number]`; when both are given and differ, `contact[number]`
//! is also kept in `extra` (`ContactInfo` has no number field). Unknown keys repeated
//! (`tags[]=a&tags[]=b`) are kept as one JSON list; a known key given twice is an error.

mod form;
mod json;

pub use json::MAX_JSON_DEPTH;

use chrono::{DateTime, FixedOffset};
use domain::{
    CallEvent, CallId, ContactInfo, Direction, EventKind, MemberInfo, PartyNumber, Recording,
    TranscribeDirection, Transcript, Utterance,
};
use json::J;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Longest text accepted in one field, in characters (`record[transcribes]` is bounded by
/// [`MAX_UTTERANCES`] and the body limit instead; each utterance's text by this).
pub const MAX_FIELD_CHARS: usize = 32_768;
/// Longest field name, in characters.
pub const MAX_KEY_CHARS: usize = 256;
/// Most fields one webhook may carry.
pub const MAX_FIELDS: usize = 512;
/// Most recordings in `record[transcribes]`.
pub const MAX_RECORDINGS: usize = 1_000;
/// Most utterances in `record[transcribes]`, all recordings together.
pub const MAX_UTTERANCES: usize = 20_000;
/// Most problems reported for one body; the rest are counted.
pub const MAX_PROBLEMS: usize = 100;
/// Longest text handed to the phone-number parser; longer text is no number anyway.
const MAX_NUMBER_CHARS: usize = 64;

/// One thing wrong with one field, for the 400 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The field in bracket form (`record[started_at]`), or `body` for the body as a whole.
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Every problem found in a body (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseErrors(pub Vec<FieldProblem>);

impl ParseErrors {
    /// The names of the fields with problems, in the order found.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|p| p.field.as_str()).collect()
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", p.field, p.problem)?;
        }
        Ok(())
    }
}

/// Parses the phone system's form-encoded webhook (`application/x-www-form-urlencoded`).
pub fn parse_form(body: &[u8]) -> Result<CallEvent, ParseErrors> {
    match form::decode(body) {
        Ok(pairs) => build(pairs.into_iter().map(|(k, v)| (k, Raw::Text(v))).collect()),
        Err(problems) => Err(finish(problems)),
    }
}

/// Parses the JSON form of the webhook (`application/json`). Numbers may be JSON numbers or
/// strings; `record.transcribes` may be an object or JSON text.
pub fn parse_json(body: &[u8]) -> Result<CallEvent, ParseErrors> {
    let root = json::parse(body).map_err(|e| finish(vec![FieldProblem::new("body", e)]))?;
    let J::Obj(entries) = root else {
        return Err(finish(vec![FieldProblem::new(
            "body",
            "must be a JSON object",
        )]));
    };
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in entries {
        match (key.as_str(), value) {
            ("contact" | "record" | "user", J::Obj(inner)) => {
                pairs.extend(
                    inner
                        .into_iter()
                        .map(|(k, v)| (format!("{key}[{k}]"), Raw::Json(v))),
                );
            }
            ("contact" | "record" | "user", J::Null) => {}
            ("contact" | "record" | "user", _) => {
                problems.push(FieldProblem::new(key, "must be a JSON object"));
            }
            (_, value) => pairs.push((key, Raw::Json(value))),
        }
    }
    if pairs.len() > MAX_FIELDS {
        problems.push(FieldProblem::new(
            "body",
            format!("has more than {MAX_FIELDS} fields"),
        ));
    }
    if !problems.is_empty() {
        return Err(finish(problems));
    }
    build(pairs)
}

/// A field's value as it came: text from a form, or a JSON value.
#[derive(Debug)]
enum Raw {
    Text(String),
    Json(J),
}

const KNOWN: &[&str] = &[
    "event",
    "contact[id]",
    "contact[name]",
    "contact[number]",
    "contact[company]",
    "contact[email]",
    "contact[address]",
    "contact[memo]",
    "record[id]",
    "record[status]",
    "record[direction]",
    "record[number]",
    "record[started_at]",
    "record[answered_at]",
    "record[ended_at]",
    "record[duration]",
    "record[memo]",
    "record[url]",
    "record[recording_url]",
    "record[transcribe_direction]",
    "record[transcribes]",
    "user[id]",
    "user[name]",
    "user[email]",
];

const TRANSCRIBES: &str = "record[transcribes]";

/// The fields of one body, taken one by one by the rules; what is left over is `extra`.
struct Fields {
    map: BTreeMap<String, Raw>,
    problems: Vec<FieldProblem>,
}

impl Fields {
    fn collect(pairs: Vec<(String, Raw)>) -> Self {
        let mut map: BTreeMap<String, Raw> = BTreeMap::new();
        let mut problems = Vec::new();
        let mut repeated: BTreeMap<String, Vec<J>> = BTreeMap::new();
        for (key, value) in pairs {
            if key.chars().count() > MAX_KEY_CHARS {
                let short: String = key.chars().take(64).collect();
                problems.push(FieldProblem::new(
                    format!("{short}…"),
                    format!("field name is longer than {MAX_KEY_CHARS} characters"),
                ));
                continue;
            }
            if let Some(n) = too_long(&value).filter(|_| key != TRANSCRIBES) {
                problems.push(FieldProblem::new(
                    key,
                    format!("is {n} characters long; at most {MAX_FIELD_CHARS} are accepted"),
                ));
                continue;
            }
            if let Some(first) = map.remove(&key) {
                if KNOWN.contains(&key.as_str()) {
                    problems.push(FieldProblem::new(key.clone(), "is given more than once"));
                    map.insert(key, first);
                } else {
                    // Unknown and repeated (`tags[]=a&tags[]=b`): kept, as a JSON list.
                    let list = repeated.entry(key).or_default();
                    if list.is_empty() {
                        list.push(first.into_json());
                    }
                    list.push(value.into_json());
                }
                continue;
            }
            map.insert(key, value);
        }
        for (key, list) in repeated {
            let value = Raw::Json(J::Arr(list));
            if let Some(n) = too_long(&value) {
                problems.push(FieldProblem::new(
                    key,
                    format!("is {n} characters long; at most {MAX_FIELD_CHARS} are accepted"),
                ));
                continue;
            }
            map.insert(key, value);
        }
        Self { map, problems }
    }

    fn problem(&mut self, field: &str, problem: impl Into<String>) {
        self.problems.push(FieldProblem::new(field, problem));
    }

    /// "is required", unless the field already has a problem (wrong type, too long).
    fn required(&mut self, field: &str) {
        if !self.problems.iter().any(|p| p.field == field) {
            self.problem(field, "is required");
        }
    }

    /// The field as text; `None` when absent, null or blank. A JSON array or object where text
    /// belongs is a problem.
    fn text(&mut self, key: &str) -> Option<String> {
        let text = match self.map.remove(key)? {
            Raw::Text(s) | Raw::Json(J::Str(s)) => s,
            Raw::Json(J::Num(n)) => n.to_string(),
            Raw::Json(J::Bool(b)) => b.to_string(),
            Raw::Json(J::Null) => return None,
            Raw::Json(J::Arr(_) | J::Obj(_)) => {
                self.problem(key, "must be text or a number, not a JSON list or object");
                return None;
            }
        };
        if text.trim().is_empty() {
            None
        } else {
            Some(text)
        }
    }

    fn datetime(&mut self, key: &str) -> Option<DateTime<FixedOffset>> {
        let text = self.text(key)?;
        match DateTime::parse_from_rfc3339(text.trim()) {
            Ok(t) => Some(t),
            Err(_) => {
                self.problem(
                    key,
                    "must be an ISO-8601 date and time with an offset, like 2026-11-25T09:30:00.000+09:00",
                );
                None
            }
        }
    }
}

impl Raw {
    fn into_json(self) -> J {
        match self {
            Raw::Text(s) => J::Str(s),
            Raw::Json(j) => j,
        }
    }
}

/// `Some(chars)` when the value's text is longer than [`MAX_FIELD_CHARS`].
fn too_long(value: &Raw) -> Option<usize> {
    let count = |s: &str| (s.len() > MAX_FIELD_CHARS).then(|| s.chars().count());
    let n = match value {
        Raw::Text(s) | Raw::Json(J::Str(s)) => count(s)?,
        Raw::Json(j @ (J::Arr(_) | J::Obj(_))) => count(&j.to_json_text())?,
        Raw::Json(_) => return None,
    };
    (n > MAX_FIELD_CHARS).then_some(n)
}

fn build(pairs: Vec<(String, Raw)>) -> Result<CallEvent, ParseErrors> {
    let mut f = Fields::collect(pairs);

    let kind = match f.text("event") {
        None => {
            f.required("event");
            None
        }
        Some(s) => {
            let kind = EventKind::parse(s.trim());
            if kind.is_none() {
                let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                f.problem("event", format!("must be one of {}", all.join(", ")));
            }
            kind
        }
    };
    let call_id = match f.text("record[id]") {
        None => {
            f.required("record[id]");
            None
        }
        Some(s) => match CallId::parse(&s) {
            Ok(id) => Some(id),
            Err(_) => {
                f.problem(
                    "record[id]",
                    "must be 1–128 characters without control characters",
                );
                None
            }
        },
    };

    let status_code = f.text("record[status]").map(|s| s.trim().to_owned());
    let direction = match f.text("record[direction]") {
        Some(s) => {
            let d = Direction::parse(&s);
            if d.is_none() {
                f.problem("record[direction]", "must be inbound or outbound");
            }
            d
        }
        None => status_code.as_deref().and_then(Direction::from_status_code),
    };

    let record_number = f.text("record[number]");
    let contact_number = f.text("contact[number]");
    let mut kept_contact_number = None;
    let party = match (record_number, contact_number) {
        (Some(r), c) => {
            // The contact's number is kept when it is not the party's, so nothing is lost.
            kept_contact_number = c.filter(|c| c.trim() != r.trim());
            classify(&r)
        }
        (None, Some(c)) => classify(&c),
        (None, None) => classify(""),
    };

    let contact = ContactInfo {
        external_id: f.text("contact[id]"),
        name: f.text("contact[name]"),
        company: f.text("contact[company]"),
        email: f.text("contact[email]"),
        address: f.text("contact[address]"),
        memo: f.text("contact[memo]"),
    };
    let member = MemberInfo {
        external_id: f.text("user[id]"),
        name: f.text("user[name]"),
        email: f.text("user[email]"),
    };
    let member = (member != MemberInfo::default()).then_some(member);

    let started_at = f.datetime("record[started_at]");
    let answered_at = f.datetime("record[answered_at]");
    let ended_at = f.datetime("record[ended_at]");
    let duration_secs = f.text("record[duration]").and_then(|s| {
        let d = s.trim().parse::<u32>().ok();
        if d.is_none() {
            f.problem(
                "record[duration]",
                "must be a non-negative whole number of seconds",
            );
        }
        d
    });
    let memo = f.text("record[memo]");
    let call_url = f.text("record[url]");
    let recording_url = f.text("record[recording_url]");

    let transcribe_direction = f.text("record[transcribe_direction]").and_then(|s| {
        let d = TranscribeDirection::parse(&s);
        if d.is_none() {
            f.problem(
                "record[transcribe_direction]",
                "must be one of outbound_operator_right, outbound_operator_left, \
                 inbound_operator_right, inbound_operator_left, no_direction",
            );
        }
        d
    });
    let recordings = f
        .map
        .remove(TRANSCRIBES)
        .and_then(|raw| transcribes(raw, &mut f.problems));
    let transcript = match (recordings, transcribe_direction) {
        (Some(recordings), Some(direction)) => Some(Transcript {
            direction,
            recordings,
        }),
        (Some(recordings), None) if !recordings.is_empty() => {
            f.problem(
                "record[transcribe_direction]",
                "is required when record[transcribes] has recordings",
            );
            None
        }
        _ => None,
    };

    let mut extra = BTreeMap::new();
    if let Some(c) = kept_contact_number {
        extra.insert("contact[number]".to_owned(), c);
    }
    for (key, raw) in std::mem::take(&mut f.map) {
        let text = match raw {
            Raw::Text(s) | Raw::Json(J::Str(s)) => s,
            Raw::Json(J::Null) => continue,
            Raw::Json(j) => j.to_json_text(),
        };
        extra.insert(key, text);
    }

    match (kind, call_id) {
        (Some(kind), Some(call_id)) if f.problems.is_empty() => Ok(CallEvent {
            call_id,
            kind,
            direction,
            status_code,
            party,
            contact,
            member,
            started_at,
            answered_at,
            ended_at,
            duration_secs,
            memo,
            call_url,
            recording_url,
            transcript,
            extra,
        }),
        _ => Err(finish(f.problems)),
    }
}

/// R27: withheld or empty is `NoNumber`, never an error. Text far longer than any phone number
/// is not handed to the number parser.
fn classify(raw: &str) -> PartyNumber {
    if raw.chars().count() > MAX_NUMBER_CHARS {
        PartyNumber::Unusable {
            raw: raw.trim().to_owned(),
        }
    } else {
        PartyNumber::classify(raw)
    }
}

/// `record[transcribes]`: `{ "RE…": [[channel, text, seconds], …], … }` or null, recordings in
/// the order given. `None` when absent or null.
fn transcribes(raw: Raw, problems: &mut Vec<FieldProblem>) -> Option<Vec<Recording>> {
    let value = match raw {
        Raw::Text(s) | Raw::Json(J::Str(s)) => {
            if s.trim().is_empty() {
                return None;
            }
            match json::parse(s.as_bytes()) {
                Ok(j) => j,
                Err(e) => {
                    problems.push(FieldProblem::new(TRANSCRIBES, e));
                    return None;
                }
            }
        }
        Raw::Json(j) => j,
    };
    let entries = match value {
        J::Null => return None,
        J::Obj(entries) => entries,
        _ => {
            problems.push(FieldProblem::new(
                TRANSCRIBES,
                "must be a JSON object of recordings, or null",
            ));
            return None;
        }
    };
    if entries.len() > MAX_RECORDINGS {
        problems.push(FieldProblem::new(
            TRANSCRIBES,
            format!("has more than {MAX_RECORDINGS} recordings"),
        ));
        return None;
    }
    let total: usize = entries
        .iter()
        .map(|(_, v)| match v {
            J::Arr(items) => items.len(),
            _ => 0,
        })
        .sum();
    if total > MAX_UTTERANCES {
        problems.push(FieldProblem::new(
            TRANSCRIBES,
            format!("has {total} utterances; at most {MAX_UTTERANCES} are accepted"),
        ));
        return None;
    }
    let before = problems.len();
    let mut recordings = Vec::with_capacity(entries.len());
    for (key, list) in entries {
        let field = format!("{TRANSCRIBES}[{key}]");
        if key.chars().count() > MAX_KEY_CHARS {
            problems.push(FieldProblem::new(
                TRANSCRIBES,
                format!("a recording key is longer than {MAX_KEY_CHARS} characters"),
            ));
            continue;
        }
        let items = match list {
            J::Arr(items) => items,
            // "empty lists while converting"; null is read the same way.
            J::Null => Vec::new(),
            _ => {
                problems.push(FieldProblem::new(
                    field,
                    "must be a list of [channel, text, seconds]",
                ));
                continue;
            }
        };
        let mut utterances = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match utterance(item) {
                Ok(u) => utterances.push(u),
                Err(p) => problems.push(FieldProblem::new(format!("{field}[{i}]"), p)),
            }
        }
        recordings.push(Recording { key, utterances });
    }
    (problems.len() == before).then_some(recordings)
}

fn utterance(item: J) -> Result<Utterance, String> {
    const SHAPE: &str = "must be [channel, text, seconds]";
    let J::Arr(parts) = item else {
        return Err(SHAPE.to_owned());
    };
    let mut parts = parts.into_iter();
    let (Some(channel), Some(text), Some(offset)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SHAPE.to_owned());
    };
    // Elements after the third are ignored, so that the sender can add some.
    let channel = match channel {
        J::Num(n) => n.as_u64().and_then(|c| u8::try_from(c).ok()),
        J::Str(s) => s.trim().parse::<u8>().ok(),
        _ => None,
    }
    .ok_or_else(|| "channel must be a whole number from 0 to 255".to_owned())?;
    let text = match text {
        J::Str(s) => s,
        _ => return Err("text must be a string".to_owned()),
    };
    if text.len() > MAX_FIELD_CHARS && text.chars().count() > MAX_FIELD_CHARS {
        return Err(format!("text is longer than {MAX_FIELD_CHARS} characters"));
    }
    let offset_secs = match offset {
        J::Num(n) => n.as_f64(),
        J::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s >= 0.0)
    .ok_or_else(|| "seconds must be a non-negative number".to_owned())?;
    Ok(Utterance {
        channel,
        text,
        offset_secs,
    })
}

/// Caps the list so that a body full of mistakes gets a short answer.
fn finish(mut problems: Vec<FieldProblem>) -> ParseErrors {
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS;
        problems.truncate(MAX_PROBLEMS);
        problems.push(FieldProblem::new(
            "body",
            format!("{more} more problems not listed"),
        ));
    }
    if problems.is_empty() {
        problems.push(FieldProblem::new("body", "could not be read"));
    }
    ParseErrors(problems)
}

#[cfg(test)]
pub(crate) mod tests;

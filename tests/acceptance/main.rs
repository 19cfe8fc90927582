//! The acceptance suite: one module per SPEC section (docs/specs/SPEC.md), real adapters
//! (store on SQLite, and PostgreSQL where it matters; the Salesforce client) against sf-sim.
//! Test names cite the rules they prove.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attack;
mod calls;
mod creating;
mod demo;
mod faults;
mod scale;
mod soak;
mod sync;

use it::World;
use serde_json::Value;

/// Finds the Task with this CallObject in the org.
pub fn task(w: &World, call_object: &str) -> Value {
    let tasks = w.tasks();
    let found: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["CallObject"] == call_object)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one Task for {call_object}, got {}",
        found.len()
    );
    found[0].clone()
}

/// The answered inbound call of callconnect-webhook.md, with its id and number replaced.
pub fn answered(call_id: &str, number: &str) -> Vec<(&'static str, String)> {
    vec![
        ("event", "call_ended".into()),
        ("contact[id]", "150".into()),
        ("contact[name]", "電話 太郎".into()),
        ("contact[number]", number.into()),
        ("contact[company]", "株式会社サンプル".into()),
        ("contact[email]", "taro@example.jp".into()),
        ("record[id]", call_id.into()),
        ("record[direction]", "inbound".into()),
        ("record[number]", number.into()),
        ("record[started_at]", "2026-11-25T09:30:00.000+09:00".into()),
        (
            "record[answered_at]",
            "2026-11-25T09:30:07.000+09:00".into(),
        ),
        ("record[ended_at]", "2026-11-25T09:33:19.000+09:00".into()),
        ("record[duration]", "192".into()),
        ("record[memo]", "見積の件で折り返し希望".into()),
        (
            "record[url]",
            format!("https://phone.example.jp/calls/{call_id}"),
        ),
        (
            "record[recording_url]",
            format!("https://phone.example.jp/calls/{call_id}/rec"),
        ),
        ("user[id]", "17".into()),
        ("user[name]", "営業 一郎".into()),
        ("user[email]", "Ichiro.Eigyo@example.jp".into()),
    ]
}

/// A missed inbound call.
pub fn missed(call_id: &str, number: &str) -> Vec<(&'static str, String)> {
    vec![
        ("event", "missed".into()),
        ("contact[number]", number.into()),
        ("record[id]", call_id.into()),
        ("record[direction]", "inbound".into()),
        ("record[started_at]", "2026-11-25T10:00:00.000+09:00".into()),
        ("record[duration]", "0".into()),
        ("user[id]", "18".into()),
        ("user[email]", "nobody@example.jp".into()),
    ]
}

pub async fn post(w: &World, pairs: &[(&'static str, String)]) -> (u16, Value) {
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    w.post_form(&borrowed).await
}

//! A JSON value that keeps object keys in document order.
//!
//! `serde_json::Value` sorts object keys unless the `preserve_order` feature is on, and turning
//! that feature on would change every crate in the workspace. Recordings in
//! `record[transcribes]` must stay in the order given (R26), so the webhook parsers read JSON
//! into this type instead.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// How deep JSON may nest. The webhook needs 5 levels (body → `record` → `transcribes` →
/// recording → utterance); anything much deeper is refused before it is parsed.
pub const MAX_JSON_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<J>),
    /// Entries in document order; duplicate keys are kept.
    Obj(Vec<(String, J)>),
}

impl J {
    /// Compact JSON text, for keeping unknown structured fields in `extra`.
    pub(crate) fn to_json_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(&n.to_string()),
            J::Str(s) => out.push_str(&quote(s)),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(k));
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn quote(s: &str) -> String {
    // `Value`'s Display is infallible and escapes exactly as JSON requires.
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Parses JSON text after checking its nesting depth without recursion.
pub(crate) fn parse(bytes: &[u8]) -> Result<J, String> {
    if let Some(depth) = exceeds_depth(bytes, MAX_JSON_DEPTH) {
        return Err(format!(
            "JSON nests deeper than {MAX_JSON_DEPTH} levels (at least {depth})"
        ));
    }
    serde_json::from_slice::<J>(bytes).map_err(|e| format!("is not valid JSON: {e}"))
}

/// `Some(depth)` when brackets outside strings nest deeper than `max`. A linear scan with no
/// recursion, so a hostile body cannot exhaust the stack before it is refused.
fn exceeds_depth(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<J, D::Error> {
        J::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<J, E> {
        Ok(J::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<J, E> {
        Ok(J::Num(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<J, E> {
        Ok(J::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<J, E> {
        serde_json::Number::from_f64(v)
            .map(J::Num)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<J, E> {
        Ok(J::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<J, E> {
        Ok(J::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<J>()? {
            items.push(item);
        }
        Ok(J::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, J>()? {
            entries.push((k, v));
        }
        Ok(J::Obj(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_keep_document_order() {
        let j = parse(br#"{"b":1,"a":[true,null,"x"],"c":{"z":1.5,"y":"\u3042"}}"#).unwrap();
        let J::Obj(entries) = &j else {
            panic!("not an object: {j:?}")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(
            j.to_json_text(),
            r#"{"b":1,"a":[true,null,"x"],"c":{"z":1.5,"y":"あ"}}"#
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(deep.as_bytes()).unwrap_err();
        assert!(err.contains("deeper than"), "{err}");
        // Brackets inside strings do not count.
        let in_string = format!(r#"{{"a":"{}"}}"#, "[".repeat(1000));
        assert!(parse(in_string.as_bytes()).is_ok());
        // Escaped quotes do not end a string early.
        assert!(parse(br#"{"a":"\"[[[[[[[[[[[[[[[[[[[[[[["}"#).is_ok());
    }
}

//! Compact field values, Salesforce date formats, and an order-preserving JSON builder.

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::SfId;

/// A stored field value. Dates are kept as integers; strings as boxed str (no capacity word).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Box<str>),
    /// Milliseconds since the Unix epoch, UTC.
    Dt(i64),
    /// Days since 1970-01-01.
    Date(i32),
    Id(SfId),
}

impl Val {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub(crate) fn str(s: &str) -> Val {
        if s.is_empty() {
            Val::Null
        } else {
            Val::Str(s.into())
        }
    }

    pub(crate) fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Val::Str(s) => Some(Cow::Borrowed(s)),
            Val::Id(id) => Some(Cow::Borrowed(id.as_str())),
            Val::Null => None,
            Val::Bool(b) => Some(Cow::Owned(b.to_string())),
            Val::Int(i) => Some(Cow::Owned(i.to_string())),
            Val::Num(n) => Some(Cow::Owned(n.to_string())),
            Val::Dt(ms) => Some(Cow::Owned(fmt_dt(*ms))),
            Val::Date(d) => Some(Cow::Owned(fmt_date(*d))),
        }
    }

    /// The value as a `J` tree: the reference the tests hold [`Self::write_json`] to.
    #[cfg(test)]
    pub(crate) fn to_j(&self) -> J {
        match self {
            Val::Null => J::Null,
            Val::Bool(b) => J::Bool(*b),
            Val::Int(i) => J::Int(*i),
            Val::Num(n) => J::Num(*n),
            Val::Str(s) => J::Str(s.to_string()),
            Val::Dt(ms) => J::Str(fmt_dt(*ms)),
            Val::Date(d) => J::Str(fmt_date(*d)),
            Val::Id(id) => J::Str(id.to_string()),
        }
    }

    /// Writes the value as JSON: the same text as `self.to_j().write(out)`, without building it.
    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(i) => write_int(*i, out),
            Val::Num(n) => write_num(*n, out),
            Val::Str(s) => write_str(s, out),
            // Dates are digits and `-:T.+` only: nothing to escape.
            Val::Dt(ms) => {
                out.push('"');
                write_dt(*ms, out);
                out.push('"');
            }
            Val::Date(d) => {
                out.push('"');
                write_date(*d, out);
                out.push('"');
            }
            Val::Id(id) => write_str(id.as_str(), out),
        }
    }
}

/// `2013-05-20T20:49:32.000+0000`
pub(crate) fn fmt_dt(ms: i64) -> String {
    let mut out = String::with_capacity(28);
    write_dt(ms, &mut out);
    out
}

/// Appends [`fmt_dt`]'s text to `out` (nothing for instants chrono cannot represent).
pub(crate) fn write_dt(ms: i64, out: &mut String) {
    let (days, in_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    if !write_ymd(days, out) {
        out.push_str(&fmt_dt_chrono(ms));
        return;
    }
    out.push('T');
    push_digits(out, in_day / 3_600_000, 2);
    out.push(':');
    push_digits(out, in_day / 60_000 % 60, 2);
    out.push(':');
    push_digits(out, in_day / 1000 % 60, 2);
    out.push('.');
    push_digits(out, in_day % 1000, 3);
    out.push_str("+0000");
}

/// `2021-04-14`
pub(crate) fn fmt_date(days: i32) -> String {
    let mut out = String::with_capacity(10);
    write_date(days, &mut out);
    out
}

/// Appends [`fmt_date`]'s text to `out` (nothing for dates chrono cannot represent).
pub(crate) fn write_date(days: i32, out: &mut String) {
    if !write_ymd(i64::from(days), out) {
        out.push_str(&fmt_date_chrono(days));
    }
}

/// Writes `YYYY-MM-DD` for the day `days` after 1970-01-01 when its year is in 0..=9999 (where
/// chrono's `%Y` is four plain digits), else writes nothing and returns false.
fn write_ymd(days: i64, out: &mut String) -> bool {
    let Some((y, m, d)) = civil_from_days(days).filter(|(y, _, _)| (0..=9999).contains(y)) else {
        return false;
    };
    push_digits(out, y, 4);
    out.push('-');
    push_digits(out, m, 2);
    out.push('-');
    push_digits(out, d, 2);
    true
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01: shift to 0000-03-01
/// so leap days end each 400-year era, then split era → year of era → day of year → month.
fn civil_from_days(days: i64) -> Option<(i64, i64, i64)> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era.checked_mul(400)?.checked_add(yoe)? + i64::from(m <= 2);
    Some((y, m, d))
}

/// Appends `n` (0 ≤ n < 10^width) zero-padded to `width` digits.
fn push_digits(out: &mut String, n: i64, width: u32) {
    let mut div = 10_i64.pow(width - 1);
    while div > 0 {
        // A single decimal digit, so the cast is exact.
        out.push(char::from(b'0' + (n / div % 10) as u8));
        div /= 10;
    }
}

/// The chrono formatting, for years outside 0..=9999 (signed, wider `%Y`) and out-of-range input.
fn fmt_dt_chrono(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        None => String::new(),
    }
}

fn fmt_date_chrono(days: i32) -> String {
    match NaiveDate::from_num_days_from_ce_opt(days + EPOCH_CE_DAYS) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => String::new(),
    }
}

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
pub(crate) const EPOCH_CE_DAYS: i32 = 719_163;

pub(crate) fn date_to_days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - EPOCH_CE_DAYS
}

pub(crate) const DAY_MS: i64 = 86_400_000;

/// Parse the datetime spellings clients send: RFC 3339 (`Z`, `+00:00`), and Salesforce's own
/// `+0000` form, with or without fractional seconds.
pub(crate) fn parse_dt(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.timestamp_millis());
        }
    }
    // A bare date is accepted as midnight UTC.
    parse_date(s).map(|d| i64::from(d) * DAY_MS)
}

pub(crate) fn parse_date(s: &str) -> Option<i32> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .map(date_to_days)
}

/// An order-preserving JSON value, built only when serving (records are not stored as JSON).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
    /// Already serialized JSON (query pages and rendered records are written straight to text).
    Raw(String),
}

impl J {
    pub(crate) fn obj() -> Self {
        J::Obj(Vec::new())
    }

    pub(crate) fn s(v: impl Into<String>) -> J {
        J::Str(v.into())
    }

    /// Builder-style insert for objects (no-op on other variants).
    pub(crate) fn with(mut self, k: &str, v: J) -> J {
        self.push(k, v);
        self
    }

    pub(crate) fn push(&mut self, k: &str, v: J) {
        if let J::Obj(m) = self {
            m.push((k.to_string(), v));
        }
    }

    /// Replace `{version}` inside every string (URLs built without a request at hand).
    pub(crate) fn replace_version(&mut self, version: &str) {
        match self {
            J::Str(s) if s.contains("{version}") => *s = s.replace("{version}", version),
            J::Arr(a) => a.iter_mut().for_each(|v| v.replace_version(version)),
            J::Obj(m) => m.iter_mut().for_each(|(_, v)| v.replace_version(version)),
            // The placeholder can only stand inside a JSON string; versions need no escaping.
            J::Raw(s) if s.contains("{version}") => *s = s.replace("{version}", version),
            _ => {}
        }
    }

    pub(crate) fn get(&self, k: &str) -> Option<&J> {
        match self {
            J::Obj(m) => m.iter().find(|(kk, _)| kk == k).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => write_int(*i, out),
            J::Num(n) => write_num(*n, out),
            J::Str(s) => write_str(s, out),
            J::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            J::Obj(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            J::Raw(s) => out.push_str(s),
        }
    }

    pub(crate) fn to_json_string(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    pub(crate) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Int(i) => Value::from(*i),
            J::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            J::Str(s) => Value::String(s.clone()),
            J::Arr(a) => Value::Array(a.iter().map(J::to_value).collect()),
            J::Obj(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_value())).collect()),
            J::Raw(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        }
    }
}

pub(crate) fn write_int(i: i64, out: &mut String) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{i}");
}

/// Finite numbers as serde_json prints them; NaN and infinities as `null`.
fn write_num(n: f64, out: &mut String) {
    use std::fmt::Write;
    match serde_json::Number::from_f64(n) {
        Some(x) => {
            let _ = write!(out, "{x}");
        }
        None => out.push_str("null"),
    }
}

/// Writes `s` as a JSON string. Only `"`, `\\` and ASCII controls are escaped (`\n`, `\r`, `\t`,
/// else `\u00xx`); everything else, non-ASCII included, is copied as is, in whole runs.
pub(crate) fn write_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    push_escaped(s, out);
    out.push('"');
}

/// Writes the concatenation of `parts` as one JSON string, without concatenating first.
pub(crate) fn write_str_parts(parts: &[&str], out: &mut String) {
    out.push('"');
    for p in parts {
        push_escaped(p, out);
    }
    out.push('"');
}

/// The inside of a JSON string: `s` escaped, without the quotes.
pub(crate) fn push_escaped(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip eight clean bytes at a time; most text (names, ids, Japanese) has none to escape.
        if let Some(word) = bytes.get(i..i + 8) {
            let mut w = [0; 8];
            w.copy_from_slice(word);
            if !word_needs_escape(u64::from_le_bytes(w)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // `i` is at an ASCII byte, so both slices end on char boundaries.
        out.push_str(&s[run..i]);
        i += 1;
        run = i;
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(esc);
        }
    }
    out.push_str(&s[run..]);
}

/// Whether any of the eight bytes of `w` is below 0x20, `"` or `\\` (the classic SWAR tests
/// "has a byte less than n" and "has a zero byte", exact as a yes/no answer).
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGHS != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_format_is_salesforce_style() {
        let ms = parse_dt("2013-05-20T20:49:32Z").unwrap();
        assert_eq!(fmt_dt(ms), "2013-05-20T20:49:32.000+0000");
        assert_eq!(parse_dt("2013-05-20T20:49:32.000+0000"), Some(ms));
        assert_eq!(parse_dt("2013-05-20T22:49:32+02:00"), Some(ms));
        assert_eq!(fmt_date(parse_date("2021-04-14").unwrap()), "2021-04-14");
    }

    /// The escaper as first written (char by char), kept as the reference for the fast one.
    fn write_str_reference(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn escaped(s: &str) -> String {
        let mut out = String::from("prefix:");
        write_str(s, &mut out);
        out
    }

    #[test]
    fn every_ascii_byte_escapes_like_the_reference() {
        // Every position of a word-and-a-half, so both the eight-byte skip and the tail see it.
        for b in 0u8..=0x7f {
            for at in 0..20 {
                let mut s: Vec<char> = "aé株bcdefghijklmnopqr".chars().collect();
                s[at] = char::from(b);
                let s: String = s.into_iter().collect();
                let mut want = String::from("prefix:");
                write_str_reference(&s, &mut want);
                assert_eq!(escaped(&s), want, "byte {b:#04x} at {at}");
            }
        }
        assert_eq!(
            escaped("\u{1}\u{1f}\u{7f}"),
            "prefix:\"\\u0001\\u001f\u{7f}\""
        );
        assert_eq!(escaped(""), r#"prefix:"""#);
    }

    proptest::proptest! {
        #[test]
        fn escaping_matches_the_reference_and_round_trips(
            s in r#"(\PC|[\x00-\x1f"\\\x7f\u{2028}\u{fffd}]|株式会社|🙂){0,40}"#
        ) {
            let mut want = String::from("prefix:");
            write_str_reference(&s, &mut want);
            let got = escaped(&s);
            proptest::prop_assert_eq!(&got, &want);
            let back: String = serde_json::from_str(&got["prefix:".len()..]).unwrap();
            proptest::prop_assert_eq!(back, s);
        }

        #[test]
        fn word_test_agrees_with_bytes(w in proptest::array::uniform8(
            proptest::prop_oneof![proptest::num::u8::ANY, 0x1eu8..0x24, 0x5bu8..0x5e]
        )) {
            let want = w.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(word_needs_escape(u64::from_le_bytes(w)), want);
        }

        #[test]
        fn numbers_print_like_serde_json(n in proptest::num::f64::ANY, i in proptest::num::i64::ANY) {
            let want = match serde_json::Number::from_f64(n) {
                Some(x) => x.to_string(),
                None => "null".to_string(),
            };
            proptest::prop_assert_eq!(J::Num(n).to_json_string(), want);
            proptest::prop_assert_eq!(J::Int(i).to_json_string(), i.to_string());
        }
    }

    /// Days from 1970-01-01 to 0000-01-01 and to 10000-01-01: the hand-written range.
    const YEAR_0: i32 = -719_528;
    const YEAR_10000: i32 = 2_932_897;

    #[test]
    fn dates_match_chrono_around_the_hand_written_range() {
        // Every day of 1600..=2400 (four 400-year leap cycles around today), both ends of the
        // range and beyond it (chrono's signed years), and the first and last days of the types.
        let days = (-135_140..=157_100)
            .chain(YEAR_0 - 800..YEAR_0 + 800)
            .chain(YEAR_10000 - 800..YEAR_10000 + 800)
            .chain([
                i32::MIN,
                i32::MIN + 1,
                -EPOCH_CE_DAYS - 100_000_000,
                95_000_000,
            ])
            .chain([i32::MAX - EPOCH_CE_DAYS]);
        for d in days {
            assert_eq!(fmt_date(d), fmt_date_chrono(d), "day {d}");
        }
        assert_eq!(fmt_date(0), "1970-01-01");
        assert_eq!(fmt_date(YEAR_0), "0000-01-01");
        assert_eq!(fmt_date(YEAR_10000 - 1), "9999-12-31");
        assert_eq!(fmt_date(YEAR_10000), "+10000-01-01");
        assert_eq!(fmt_date(-1), "1969-12-31");
        assert_eq!(fmt_date(11_016), "2000-02-29");
    }

    #[test]
    fn datetimes_match_chrono_at_the_edges() {
        let edges = [
            0,
            -1,
            1,
            DAY_MS - 1,
            -DAY_MS,
            i64::from(YEAR_0) * DAY_MS - 1,
            i64::from(YEAR_0) * DAY_MS,
            i64::from(YEAR_10000) * DAY_MS - 1,
            i64::from(YEAR_10000) * DAY_MS,
            i64::MIN,
            i64::MAX,
            8_210_266_876_799_999,
            8_210_266_876_800_000,
            -8_334_601_228_800_000,
            -8_334_601_228_800_001,
        ];
        for ms in edges {
            assert_eq!(fmt_dt(ms), fmt_dt_chrono(ms), "ms {ms}");
        }
        assert_eq!(fmt_dt(-1), "1969-12-31T23:59:59.999+0000");
    }

    proptest::proptest! {
        #[test]
        fn datetimes_match_chrono(
            ms in proptest::prop_oneof![
                // 0000-01-01 ..= 9999-12-31, the hand-written range
                -62_167_219_200_000_i64..253_402_300_800_000,
                // the last few centuries, where real data lives
                -5_000_000_000_000_i64..5_000_000_000_000,
                proptest::num::i64::ANY,
            ]
        ) {
            proptest::prop_assert_eq!(fmt_dt(ms), fmt_dt_chrono(ms));
        }

        #[test]
        fn dates_match_chrono(
            days in proptest::prop_oneof![YEAR_0 - 1000..YEAR_10000 + 1000, proptest::num::i32::ANY]
        ) {
            // i32::MAX - EPOCH_CE_DAYS is the last day the chrono route can add without overflow.
            let days = days.min(i32::MAX - EPOCH_CE_DAYS);
            proptest::prop_assert_eq!(fmt_date(days), fmt_date_chrono(days));
        }
    }

    #[test]
    fn raw_json_is_embedded_verbatim() {
        let raw = J::Raw(r#"{"z":[1,{"url":"/v{version}/x"}],"a":"\u00e9"}"#.into());
        let mut j = J::obj().with("records", J::Arr(vec![raw.clone(), J::Null]));
        assert_eq!(
            j.to_json_string(),
            r#"{"records":[{"z":[1,{"url":"/v{version}/x"}],"a":"\u00e9"},null]}"#
        );
        assert_eq!(
            raw.to_value(),
            serde_json::json!({"z": [1, {"url": "/v{version}/x"}], "a": "é"})
        );
        j.replace_version("62.0");
        assert!(j.to_json_string().contains(r#""/v62.0/x""#));
    }

    #[test]
    fn json_keeps_order_and_escapes() {
        let j = J::obj().with("b", J::Int(1)).with("a", J::s("x\"y\n"));
        assert_eq!(j.to_json_string(), r#"{"b":1,"a":"x\"y\n"}"#);
    }
}

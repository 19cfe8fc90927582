//! `application/x-www-form-urlencoded` decoding that refuses invalid UTF-8.
//!
//! Form decoders in the ecosystem (`form_urlencoded`, and so `serde_html_form`) replace
//! invalid UTF-8 with U+FFFD silently; a webhook with mangled text must instead be refused with
//! the field named, so this small decoder is our own. Pairs keep their order and duplicates.

use super::{FieldProblem, MAX_FIELDS};

/// Decodes `k=v&k2=v2`: `+` is a space, `%XX` a byte; a `%` not followed by two hex digits is
/// kept as it is (as browsers do). Empty segments are skipped; a segment without `=` is a key
/// with an empty value.
pub(crate) fn decode(body: &[u8]) -> Result<Vec<(String, String)>, Vec<FieldProblem>> {
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    for segment in body.split(|&b| b == b'&').filter(|s| !s.is_empty()) {
        if pairs.len() + problems.len() >= MAX_FIELDS {
            problems.push(FieldProblem::new(
                "body",
                format!("has more than {MAX_FIELDS} fields"),
            ));
            break;
        }
        let (raw_key, raw_value) = match segment.iter().position(|&b| b == b'=') {
            Some(i) => (&segment[..i], &segment[i + 1..]),
            None => (segment, &segment[..0]),
        };
        let key = match String::from_utf8(percent_decode(raw_key)) {
            Ok(k) => k,
            Err(e) => {
                problems.push(FieldProblem::new(
                    String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    "field name is not valid UTF-8",
                ));
                continue;
            }
        };
        match String::from_utf8(percent_decode(raw_value)) {
            Ok(v) => pairs.push((key, v)),
            Err(_) => problems.push(FieldProblem::new(key, "is not valid UTF-8")),
        }
    }
    if problems.is_empty() {
        Ok(pairs)
    } else {
        Err(problems)
    }
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_val);
                let lo = input.get(i + 2).copied().and_then(hex_val);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_brackets_plus_and_utf8() {
        let pairs =
            decode(b"contact%5Bname%5D=%E9%9B%BB%E8%A9%B1+%E5%A4%AA%E9%83%8E&a=1&&flag&p=100%")
                .unwrap();
        assert_eq!(
            pairs,
            vec![
                ("contact[name]".to_owned(), "電話 太郎".to_owned()),
                ("a".to_owned(), "1".to_owned()),
                ("flag".to_owned(), String::new()),
                ("p".to_owned(), "100%".to_owned()),
            ]
        );
    }

    #[test]
    fn raw_unencoded_utf8_is_accepted() {
        let pairs = decode("contact[name]=電話 太郎".as_bytes()).unwrap();
        assert_eq!(pairs[0].1, "電話 太郎");
    }

    #[test]
    fn invalid_utf8_names_the_field() {
        let problems =
            decode(b"event=missed&contact%5Bname%5D=%FF%FE&record[memo]=\xff").unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["contact[name]", "record[memo]"]);
    }
}

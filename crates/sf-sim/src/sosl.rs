//! A SOSL subset: `FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING T(fields [WHERE …]
//! [ORDER BY …] [LIMIT n]), …] [LIMIT n]`. Phone matching follows [`crate::phone`]. Reserved
//! characters inside the braces must be backslash-escaped (`*` and `?` are wildcards, `"` quotes
//! phrases); a missing brace gives `MALFORMED_SEARCH`, as does an unescaped reserved character.

use crate::phone;
use crate::schema::{FType, Obj};
use crate::soql;
use crate::store::{ApiError, OrgData, Record};
use crate::value::J;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scope {
    All,
    Name,
    Email,
    Phone,
}

fn malformed(msg: &str) -> ApiError {
    ApiError::new(400, "MALFORMED_SEARCH", msg)
}

const RESERVED: &str = "&|!{}[]()^~:'+-";

/// Split the term into its unescaped text and whether it ends with a `*` wildcard.
fn parse_term(raw: &str) -> Result<(String, bool), ApiError> {
    let mut out = String::new();
    let mut wildcard = false;
    let mut chars = raw.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => {
                    return Err(malformed(
                        "line 1:0 mismatched character '<EOF>' expecting set null",
                    ));
                }
            },
            '*' if chars.peek().is_none() => wildcard = true,
            '*' | '?' | '"' => {}
            c if RESERVED.contains(c) => {
                return Err(malformed(&format!(
                    "line 1:{} no viable alternative at character '{c}'. Reserved characters in a search term must be escaped with a backslash.",
                    i + 6
                )));
            }
            c => out.push(c),
        }
    }
    Ok((out.trim().to_string(), wildcard))
}

/// Find the closing brace of the term (skipping escaped characters).
fn split_find(q: &str) -> Result<(String, String), ApiError> {
    let no_term = || malformed("No search term found. The search term must be enclosed in braces.");
    let t = q.trim_start();
    if t.len() < 4 || !t[..4].eq_ignore_ascii_case("FIND") {
        return Err(malformed("line 1:0 mismatched input expecting FIND"));
    }
    let rest = t[4..].trim_start();
    let Some(body) = rest.strip_prefix('{') else {
        return Err(no_term());
    };
    let mut esc = false;
    for (i, c) in body.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '}' => return Ok((body[..i].to_string(), body[i + 1..].to_string())),
            _ => {}
        }
    }
    Err(no_term())
}

fn take_word<'a>(s: &'a str, w: &str) -> Option<&'a str> {
    let t = s.trim_start();
    (t.len() >= w.len()
        && t[..w.len()].eq_ignore_ascii_case(w)
        && t[w.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric()))
    .then(|| &t[w.len()..])
}

struct Spec {
    obj: Obj,
    fields: String,
    rest: String,
}

fn parse_returning(s: &str) -> Result<(Vec<Spec>, Option<usize>), ApiError> {
    let mut specs = Vec::new();
    let mut rest = s.trim();
    let mut limit = None;
    loop {
        if rest.is_empty() {
            break;
        }
        if let Some(r) = take_word(rest, "LIMIT") {
            limit = r.trim().parse().ok();
            if limit.is_none() {
                return Err(malformed(&format!("unexpected token: {}", r.trim())));
            }
            break;
        }
        let name_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let obj = Obj::parse(name).ok_or_else(|| {
            ApiError::new(
                400,
                "INVALID_TYPE",
                format!("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."),
            )
        })?;
        rest = rest[name_end..].trim_start();
        let (mut fields, mut tail) = ("Id".to_string(), String::new());
        if let Some(inner) = rest.strip_prefix('(') {
            let mut depth = 1;
            let mut quoted = false;
            let mut end = None;
            let mut prev = ' ';
            for (i, c) in inner.char_indices() {
                match c {
                    '\'' if prev != '\\' => quoted = !quoted,
                    '(' if !quoted => depth += 1,
                    ')' if !quoted => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
                prev = c;
            }
            let end = end.ok_or_else(|| malformed("unexpected token: <EOF>"))?;
            let body = &inner[..end];
            rest = inner[end + 1..].trim_start();
            // Split the field list from WHERE / ORDER BY / LIMIT.
            let upper = body.to_ascii_uppercase();
            let cut = [" WHERE ", " ORDER BY ", " LIMIT "]
                .iter()
                .filter_map(|k| upper.find(k))
                .min()
                .unwrap_or(body.len());
            fields = body[..cut].trim().to_string();
            tail = body[cut..].to_string();
        }
        specs.push(Spec {
            obj,
            fields,
            rest: tail,
        });
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        }
    }
    Ok((specs, limit))
}

/// Run a SOSL search; returns the records (already rendered) in RETURNING order.
pub(crate) fn search(data: &OrgData, q: &str, version: &str) -> Result<Vec<J>, ApiError> {
    let (term_raw, after) = split_find(q)?;
    let (term, wildcard) = parse_term(&term_raw)?;
    if term.chars().count() < 2 {
        return Err(malformed("search term must be longer than one character"));
    }
    let mut rest = after.trim_start().to_string();
    let mut scope = Scope::All;
    if let Some(r) = take_word(&rest, "IN") {
        let r = r.trim_start();
        let (w, r2) = r.split_at(r.find(char::is_whitespace).unwrap_or(r.len()));
        scope = match w.to_ascii_uppercase().as_str() {
            "ALL" => Scope::All,
            "NAME" => Scope::Name,
            "EMAIL" => Scope::Email,
            "PHONE" => Scope::Phone,
            other => return Err(malformed(&format!("unexpected token: {other}"))),
        };
        rest = take_word(r2, "FIELDS")
            .ok_or_else(|| malformed("unexpected token: expecting FIELDS"))?
            .to_string();
    }
    let (specs, overall_limit) = match take_word(&rest, "RETURNING") {
        Some(r) => parse_returning(r)?,
        None => {
            let limit = take_word(&rest, "LIMIT").and_then(|r| r.trim().parse().ok());
            if limit.is_none() && !rest.trim().is_empty() {
                return Err(malformed(&format!("unexpected token: {}", rest.trim())));
            }
            let all = [Obj::Account, Obj::Contact, Obj::Lead, Obj::User];
            (
                all.into_iter()
                    .map(|obj| Spec {
                        obj,
                        fields: "Id".into(),
                        rest: String::new(),
                    })
                    .collect(),
                limit,
            )
        }
    };
    let term_key = phone::key(&term);
    let term_lower = term.to_lowercase();
    let now = data.now();
    let lag = data.faults.search_lag_ms;
    let mut out = Vec::new();
    let cap = overall_limit.unwrap_or(2000).min(2000);
    for spec in specs {
        let q = soql::parse_for(spec.obj, &spec.fields, &spec.rest, data)?;
        let o = spec.obj;
        let phone_fields: Vec<u16> = o.phone_fields().collect();
        let text_fields: Vec<u16> = o
            .fields()
            .iter()
            .enumerate()
            .filter(|(i, f)| f.ty.is_text() && !data.is_hidden(o, *i as u16))
            .map(|(i, _)| i as u16)
            .collect();
        let name_idx = o.field_idx("Name");
        let email_fields: Vec<u16> = o
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.ty == FType::Email)
            .map(|(i, _)| i as u16)
            .collect();
        let phone_hit = |r: &Record| {
            !term_key.is_empty()
                && phone_fields
                    .iter()
                    .filter(|i| !data.is_hidden(o, **i))
                    .any(|i| {
                        r.get(*i).as_text().is_some_and(|s| {
                            let k = phone::key(&s);
                            if wildcard {
                                k.starts_with(&term_key)
                            } else {
                                k == term_key
                            }
                        })
                    })
        };
        let text_hit = |r: &Record, fields: &[u16]| {
            fields.iter().any(|i| {
                data.value(o, r, *i)
                    .as_text()
                    .is_some_and(|s| s.to_lowercase().contains(&term_lower))
            })
        };
        let matches = |r: &Record| -> bool {
            let indexed = r.created <= data.indexed_through || now - r.created >= lag;
            if !indexed {
                return false;
            }
            match scope {
                Scope::Phone => phone_hit(r),
                Scope::Name => name_idx.is_some_and(|i| text_hit(r, &[i])),
                Scope::Email => text_hit(r, &email_fields),
                Scope::All => phone_hit(r) || text_hit(r, &text_fields),
            }
        };
        let rows = soql::execute(data, &q, false, &matches);
        let plan = soql::Plan::new(q.select.as_deref().unwrap_or(&[]), version);
        for i in rows {
            if out.len() >= cap {
                break;
            }
            let r = &data.table(o).recs[i as usize];
            out.push(soql::render(data, o, r, &plan));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_parsing() {
        assert!(split_find("FIND 0312345678 IN PHONE FIELDS").is_err());
        let (t, rest) = split_find(r"FIND {\+81312345678} IN PHONE FIELDS").unwrap();
        assert_eq!(parse_term(&t).unwrap().0, "+81312345678");
        assert_eq!(rest.trim(), "IN PHONE FIELDS");
        assert!(parse_term("+81312345678").is_err());
        assert!(parse_term("03-1234-5678").is_err());
        assert_eq!(parse_term(r"03\-1234\-5678").unwrap().0, "03-1234-5678");
    }
}

//! Escaping user-derived text for SOQL string literals and SOSL search terms.
//!
//! Every string that did not come from this crate's own constants goes through one of these
//! functions before it is placed in a query. They are pure and property-tested: whatever the
//! input (quotes, backslashes, reserved characters, newlines, Japanese), the output cannot end
//! the literal or the `{…}` search term early, and unescaping gives the input back.

/// Escapes `s` for use inside a SOQL single-quoted string literal (`'…'`).
///
/// Salesforce accepts `\'`, `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f` and `\uXXXX` inside a
/// literal; any other backslash sequence is an error. Other control characters are written as
/// `\uXXXX` so the literal stays on one line.
pub fn soql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_soql_char(&mut out, c);
    }
    out
}

/// [`soql_string`] wrapped in single quotes: a complete literal.
pub fn soql_literal(s: &str) -> String {
    format!("'{}'", soql_string(s))
}

/// Escapes `s` for a `LIKE` pattern literal: like [`soql_string`], plus `_` and `%`, so that
/// they match themselves instead of acting as wildcards.
pub fn soql_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '_' => out.push_str("\\_"),
            '%' => out.push_str("\\%"),
            c => push_soql_char(&mut out, c),
        }
    }
    out
}

fn push_soql_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\'' => out.push_str("\\'"),
        '"' => out.push_str("\\\""),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if c.is_control() => {
            // Control characters outside the BMP do not exist, so four hex digits suffice.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
        c => out.push(c),
    }
}

/// Characters SOSL reserves inside a search term; each must be preceded by a backslash.
pub const SOSL_RESERVED: &[char] = &[
    '?', '&', '|', '!', '{', '}', '[', ']', '(', ')', '^', '~', '*', ':', '\\', '"', '\'', '+', '-',
];

/// Escapes `s` for use inside a SOSL `FIND {…}` search term.
///
/// Reserved characters are backslash-escaped. Control characters (newlines, tabs…) carry no
/// meaning in a search term and are replaced by a space, so the term stays on one line.
pub fn sosl_term(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if SOSL_RESERVED.contains(&c) {
            out.push('\\');
            out.push(c);
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A SOQL string lexer as Salesforce reads one: returns the decoded value and the number of
    /// bytes consumed up to and including the closing quote, or `None` if the literal is
    /// malformed (unknown escape, unterminated).
    pub(crate) fn lex_soql_literal(src: &str, like: bool) -> Option<(String, usize)> {
        let mut chars = src.char_indices();
        if chars.next()?.1 != '\'' {
            return None;
        }
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => return Some((value, i + 1)),
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        '\\' => value.push('\\'),
                        '\'' => value.push('\''),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        'b' => value.push('\u{8}'),
                        'f' => value.push('\u{c}'),
                        '_' if like => value.push('_'),
                        '%' if like => value.push('%'),
                        'u' => {
                            let hex: String =
                                (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                            let code = u32::from_str_radix(&hex, 16).ok()?;
                            value.push(char::from_u32(code)?);
                        }
                        _ => return None,
                    }
                }
                c => value.push(c),
            }
        }
        None
    }

    /// Decodes a SOSL term: returns `None` if a `}` (or a lone trailing backslash) would end or
    /// break the `{…}` term.
    pub(crate) fn lex_sosl_term(src: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = src.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let e = chars.next()?;
                    if !SOSL_RESERVED.contains(&e) {
                        return None;
                    }
                    out.push(e);
                }
                c if SOSL_RESERVED.contains(&c) => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    #[test]
    fn soql_escapes_each_class() {
        assert_eq!(soql_string("O'Brien"), r"O\'Brien");
        assert_eq!(soql_string(r#"say "hi""#), r#"say \"hi\""#);
        assert_eq!(soql_string(r"a\b"), r"a\\b");
        assert_eq!(soql_string("a\nb"), r"a\nb");
        assert_eq!(soql_string("a\rb"), r"a\rb");
        assert_eq!(soql_string("a\tb"), r"a\tb");
        assert_eq!(soql_string("a\u{8}b"), r"a\bb");
        assert_eq!(soql_string("a\u{c}b"), r"a\fb");
        assert_eq!(soql_string("a\u{0}b"), r"a\u0000b");
        assert_eq!(soql_string("株式会社テスト"), "株式会社テスト");
        assert_eq!(
            soql_string("50%_off"),
            "50%_off",
            "wildcards are plain outside LIKE"
        );
        assert_eq!(soql_literal("x' OR Name != '"), r"'x\' OR Name != \''");
    }

    #[test]
    fn soql_like_escapes_wildcards() {
        assert_eq!(soql_like("50%_off"), r"50\%\_off");
        assert_eq!(soql_like("it's"), r"it\'s");
    }

    #[test]
    fn sosl_escapes_each_reserved_char() {
        for c in SOSL_RESERVED {
            assert_eq!(sosl_term(&c.to_string()), format!("\\{c}"), "{c:?}");
        }
        assert_eq!(sosl_term("+81 3-1234"), r"\+81 3\-1234");
        assert_eq!(sosl_term("a\nb\tc"), "a b c");
        assert_eq!(sosl_term("電話 太郎"), "電話 太郎");
    }

    fn nasty() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("'".to_owned()),
                Just("\"".to_owned()),
                Just("\\".to_owned()),
                Just("\n".to_owned()),
                Just("\r\t\u{8}\u{c}\u{0}\u{1b}".to_owned()),
                Just("%_".to_owned()),
                Just("} OR {".to_owned()),
                Just("電話 太郎".to_owned()),
                "[?&|!{}\\[\\]()^~*:+\\-]{1,3}",
                any::<String>(),
            ],
            0..8,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn soql_literal_round_trips_and_cannot_break_out(s in nasty()) {
            let lit = soql_literal(&s);
            let (value, used) = lex_soql_literal(&lit, false).ok_or_else(|| TestCaseError::fail(format!("malformed {lit:?}")))?;
            prop_assert_eq!(used, lit.len(), "the literal closed early: {:?}", lit);
            prop_assert_eq!(value, s);
            prop_assert!(!lit.contains('\n') && !lit.contains('\r'));
        }

        #[test]
        fn soql_like_round_trips(s in nasty()) {
            let lit = format!("'{}'", soql_like(&s));
            let (value, used) = lex_soql_literal(&lit, true).ok_or_else(|| TestCaseError::fail(format!("malformed {lit:?}")))?;
            prop_assert_eq!(used, lit.len());
            prop_assert_eq!(value, s);
        }

        #[test]
        fn sosl_term_round_trips_and_cannot_break_out(s in nasty()) {
            let term = sosl_term(&s);
            let decoded = lex_sosl_term(&term).ok_or_else(|| TestCaseError::fail(format!("breaks out: {term:?}")))?;
            let expected: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            prop_assert_eq!(decoded, expected);
        }
    }
}

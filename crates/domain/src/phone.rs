//! Phone numbers (R13, R27): one identity per number, whatever way it was typed.
//!
//! Parsing and validation are libphonenumber's (`phonenumber` crate) with Japan as the default
//! region. Before handing the text over we fold the characters Japanese users actually type —
//! full-width digits, `＋`, katakana `ー` and the many dash code points — into ASCII, because the
//! library rejects full-width digits outright.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why text is not a usable phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("no number (withheld, anonymous or empty)")]
    NoNumber,
    #[error("not a valid phone number: {0:?}")]
    Invalid(String),
}

/// A valid phone number: its E.164 identity plus the raw text for display.
///
/// Two `PhoneNumber`s are equal when their E.164 forms are equal; the raw text does not take
/// part in equality or hashing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneNumber {
    e164: String,
    raw: String,
}

impl PartialEq for PhoneNumber {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}
impl Eq for PhoneNumber {}
impl std::hash::Hash for PhoneNumber {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.e164.hash(state);
    }
}

/// Words the phone system (and people) use for "there is no number".
const NO_NUMBER_WORDS: &[&str] = &[
    "非通知",
    "通知不可能",
    "公衆電話",
    "表示圏外",
    "anonymous",
    "unknown",
    "private",
    "withheld",
    "restricted",
    "unavailable",
];

impl PhoneNumber {
    /// Parses text as typed by a person or a system (R13). Japan is the default region.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let folded = fold(raw);
        let trimmed = folded.trim();
        if trimmed.is_empty() || is_no_number_word(trimmed) {
            return Err(PhoneError::NoNumber);
        }
        if !trimmed.bytes().any(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Invalid(raw.to_owned()));
        }
        size_library_cache();
        let parsed = phonenumber::parse(Some(phonenumber::country::Id::JP), trimmed)
            .map_err(|_| PhoneError::Invalid(raw.to_owned()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid(raw.to_owned()));
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Self {
            e164,
            raw: raw.trim().to_owned(),
        })
    }

    /// Rebuilds a number that was validated before (e.g. read back from the store).
    /// The E.164 text is trusted; `raw` is kept for display.
    pub fn from_trusted(e164: impl Into<String>, raw: impl Into<String>) -> Self {
        Self {
            e164: e164.into(),
            raw: raw.into(),
        }
    }

    /// `+81312345678`
    pub fn e164(&self) -> &str {
        &self.e164
    }
    /// The text as it was received.
    pub fn raw(&self) -> &str {
        &self.raw
    }
    /// The form people read: national format with hyphens for Japanese numbers
    /// (`03-1234-5678`), international format otherwise.
    pub fn display(&self) -> String {
        size_library_cache();
        match phonenumber::parse(None, &self.e164) {
            Ok(n) if n.code().value() == 81 => {
                n.format().mode(phonenumber::Mode::National).to_string()
            }
            Ok(n) => n
                .format()
                .mode(phonenumber::Mode::International)
                .to_string(),
            Err(_) => self.raw.clone(),
        }
    }
    /// Digits of the national significant number prefixed with the trunk `0` for Japanese
    /// numbers (`0312345678`), or the E.164 digits without `+` otherwise. Used to build
    /// format-independent searches.
    pub fn national_digits(&self) -> String {
        match self.e164.strip_prefix("+81") {
            Some(rest) => format!("0{rest}"),
            None => self.e164.trim_start_matches('+').to_owned(),
        }
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// How many compiled patterns the library's global regex cache keeps (it starts at 100).
///
/// Parsing, validating and formatting Japanese numbers uses about 30 of the database's 2,058
/// distinct patterns (about 40 with [`PhoneNumber::display`]), so Japanese numbers alone fit in
/// 100. Each other country a text lands in adds 10 to 30 of its own, though, and the cache is
/// least-recently-used: a stream that touches many countries (foreign numbers, junk after a
/// `+`) evicts and recompiles patterns over and over. 512 holds Japan plus a few dozen other
/// countries and stays well short of the whole database, because a compiled pattern takes
/// about 100 KB (compiling and running all 2,058 took about 200 MB): at most about 50 MB.
const LIBRARY_REGEX_CACHE: usize = 512;

/// Raises the library's regex cache to [`LIBRARY_REGEX_CACHE`], once, before its first use.
fn size_library_cache() {
    static SIZED: std::sync::Once = std::sync::Once::new();
    SIZED.call_once(|| {
        // A poisoned lock only means some thread panicked while holding it; leave it alone.
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock()
            && cache.capacity() < LIBRARY_REGEX_CACHE
        {
            cache.set_capacity(LIBRARY_REGEX_CACHE);
        }
    });
}

fn is_no_number_word(s: &str) -> bool {
    let lower = s.to_lowercase();
    NO_NUMBER_WORDS.iter().any(|w| lower == *w)
}

/// Folds full-width and look-alike characters to ASCII: digits, plus, parentheses, and every
/// dash people put between digit groups (they become `-`, which the parser ignores).
pub fn fold(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '＋' => '+',
            '（' => '(',
            '）' => ')',
            '　' => ' ',
            '．' => '.',
            'ー' | '－' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | 'ｰ' | '～' | '〜' => {
                '-'
            }
            other => other,
        })
        .collect()
}

/// The other party of a call, classified (R27): a usable number, or no number at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartyNumber {
    /// A valid number: the party can be a customer.
    Number(PhoneNumber),
    /// Withheld, anonymous or empty: never a customer identity.
    NoNumber { raw: String },
    /// Text that is not a valid number: kept for display, never a customer identity.
    Unusable { raw: String },
}

impl PartyNumber {
    pub fn classify(raw: &str) -> Self {
        match PhoneNumber::parse(raw) {
            Ok(n) => Self::Number(n),
            Err(PhoneError::NoNumber) => Self::NoNumber {
                raw: raw.trim().to_owned(),
            },
            Err(PhoneError::Invalid(_)) => Self::Unusable {
                raw: raw.trim().to_owned(),
            },
        }
    }
    pub fn number(&self) -> Option<&PhoneNumber> {
        match self {
            Self::Number(n) => Some(n),
            _ => None,
        }
    }
    /// What to show a person: the number as received, or `非通知` when there is none.
    pub fn display(&self) -> String {
        match self {
            Self::Number(n) => n.display(),
            Self::NoNumber { raw } if raw.is_empty() => "非通知".to_owned(),
            Self::NoNumber { raw } | Self::Unusable { raw } => raw.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// R13: ways people type numbers, and the E.164 identity each must get.
    const R13_CASES: &[(&str, &str)] = &[
        ("03-1234-5678", "+81312345678"),
        ("0312345678", "+81312345678"),
        ("+81 3 1234 5678", "+81312345678"),
        ("+81-(0)3-1234-5678", "+81312345678"),
        ("+81 (0)3 1234 5678", "+81312345678"),
        ("(03) 1234-5678", "+81312345678"),
        ("03.1234.5678", "+81312345678"),
        ("０３－１２３４－５６７８", "+81312345678"),
        ("０３１２３４５６７８", "+81312345678"),
        ("03ー1234ー5678", "+81312345678"),
        ("03−1234−5678", "+81312345678"),
        ("＋８１　３　１２３４　５６７８", "+81312345678"),
        (" 03-1234-5678 ", "+81312345678"),
        ("0120-994-132", "+81120994132"),
        ("0800-123-4567", "+818001234567"),
        ("0570-000-123", "+81570000123"),
        ("050-1234-5678", "+815012345678"),
        ("070-1234-5678", "+817012345678"),
        ("080-1234-5678", "+818012345678"),
        ("090-1234-5678", "+819012345678"),
        ("06-6123-4567", "+81661234567"),
        ("+1 415-555-2671", "+14155552671"),
    ];
    /// R27: texts that are no number at all.
    const R27_NO_NUMBER: &[&str] = &[
        "",
        "  ",
        "非通知",
        "anonymous",
        "Anonymous",
        "公衆電話",
        "unknown",
    ];
    /// R27: texts that are not a valid number.
    const R27_INVALID: &[&str] = &["03-1234", "12345", "abc", "0000000000", "++--"];

    // R13: every way people type one number is one identity.
    #[test]
    fn r13_formats_of_one_number_normalize_to_one_e164() {
        for (raw, e164) in R13_CASES {
            let n = PhoneNumber::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(n.e164(), *e164, "{raw:?}");
            assert_eq!(n.raw(), raw.trim(), "raw text is kept for display");
        }
    }

    #[test]
    fn r13_display_is_national_with_hyphens() {
        assert_eq!(
            PhoneNumber::parse("0312345678").unwrap().display(),
            "03-1234-5678"
        );
        assert_eq!(
            PhoneNumber::parse("+81120994132").unwrap().display(),
            "0120-994-132"
        );
        assert_eq!(
            PhoneNumber::parse("+819012345678")
                .unwrap()
                .national_digits(),
            "09012345678"
        );
    }

    // R27: withheld and non-numbers are a distinct value, never an identity.
    #[test]
    fn r27_withheld_and_garbage_are_not_numbers() {
        for &raw in R27_NO_NUMBER {
            assert_eq!(
                PhoneNumber::parse(raw),
                Err(PhoneError::NoNumber),
                "{raw:?}"
            );
            assert!(matches!(
                PartyNumber::classify(raw),
                PartyNumber::NoNumber { .. }
            ));
        }
        for &raw in R27_INVALID {
            assert!(
                matches!(PhoneNumber::parse(raw), Err(PhoneError::Invalid(_))),
                "{raw:?}"
            );
            assert!(PartyNumber::classify(raw).number().is_none());
        }
        assert_eq!(PartyNumber::classify("").display(), "非通知");
    }

    #[test]
    fn equality_ignores_raw_text() {
        let a = PhoneNumber::parse("03-1234-5678").unwrap();
        let b = PhoneNumber::parse("+81312345678").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.raw(), b.raw());
    }

    fn formatting_of(digits: &'static str) -> impl Strategy<Value = String> {
        // digits is a national number with trunk 0, e.g. "0312345678" split 2-4-4.
        let (a, rest) = digits.split_at(digits.len() - 8);
        let (b, c) = rest.split_at(4);
        let groups = [a.to_owned(), b.to_owned(), c.to_owned()];
        (
            prop::sample::select(vec!["-", " ", "", ".", "－", "ー", "−"]),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(move |(sep, intl, full_width, parens)| {
                let first = if intl {
                    format!("+81 {}", &groups[0][1..])
                } else if parens {
                    format!("({})", groups[0])
                } else {
                    groups[0].clone()
                };
                let s = format!("{first}{sep}{}{sep}{}", groups[1], groups[2]);
                if full_width { to_full_width(&s) } else { s }
            })
    }

    fn to_full_width(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32('０' as u32 + (c as u32 - '0' as u32)).unwrap_or(c),
                '+' => '＋',
                other => other,
            })
            .collect()
    }

    proptest! {
        // R13 property: every formatting of one number maps to one identity.
        #[test]
        fn r13_every_formatting_maps_to_one_identity(
            s in prop_oneof![formatting_of("0312345678"), formatting_of("09012345678"), formatting_of("0661234567")]
        ) {
            let n = PhoneNumber::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            let expected = ["+81312345678", "+819012345678", "+81661234567"];
            prop_assert!(expected.contains(&n.e164()), "{s:?} -> {}", n.e164());
        }

        // R13 property: normalization is idempotent.
        #[test]
        fn r13_normalization_is_idempotent(s in "[0-9０-９+＋()（） ー－-]{0,20}") {
            if let Ok(n) = PhoneNumber::parse(&s) {
                let again = PhoneNumber::parse(n.e164()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(again.e164(), n.e164());
                let via_display = PhoneNumber::parse(&n.display()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(via_display.e164(), n.e164());
            }
        }
    }
}

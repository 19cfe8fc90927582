//! The fast path of [`PhoneNumber::parse`](super::PhoneNumber::parse) for Japanese numbers
//! typed the usual ways (R13).
//!
//! The `phonenumber` crate keeps every metadata regex in one global LRU cache behind a mutex and
//! hashes the pattern text on each use; parsing, validating and formatting one Japanese number
//! costs several microseconds. For text made only of ASCII digits and the separators the parser
//! drops (`-`, space, `.`, `(`, `)`), either national with one trunk `0` (`03-1234-5678`) or
//! behind `+81` (`+81 3 1234 5678`, `+81-(0)3-1234-5678`), the outcome of that library route can
//! be worked out from the digits alone. This module does that with the same JP metadata,
//! compiled once into a [`RegexSet`], and answers [`Fast::Library`] for every other text.
//!
//! What `phonenumber` 0.3.10 does with such text, traced through its source:
//!
//! * One of its two front ends takes the text. The RFC 3966 one refuses spaces; it takes
//!   national text whole, and reads the characters of `+` text up to the first separator as the
//!   country code (`+` text without any separator it refuses). The natural one takes the rest:
//!   it strips leading and trailing non-digits and finds no extension (there are no letters,
//!   `#`, `;`, `,`, `x` or `~`). Either way the number is viable (three digits or more,
//!   separators between), and normalizing keeps only its digits.
//! * National text: the international prefix `010` is only stripped when the digits start with
//!   it, and the `81` country code is only taken off digits that start with `81`; digits that
//!   start with `0` and a non-zero digit that is not `010` pass both untouched. The national
//!   prefix for parsing, `(000[2569]\d{4,6})$|(?:(?:003768)0?)|0`, then matches leftmost at
//!   offset 0 with its last alternative (the first two need `00`), so group 1 is empty and the
//!   transform rule is not applied: the leading `0` is cut. That national significant number
//!   (NSN) is kept unless the general descriptor's lengths call it too short.
//! * `+81` text: `8` is no country code and `81` is, so `81` is taken as the code whichever
//!   front end ran, provided the RFC 3966 one (no spaces) sees a separator right after `+81`;
//!   with a digit there it reads `813…` as the code and fails, so that text goes to the library.
//!   The rest of the digits go through the same national prefix rule: one leading `0` (the
//!   `(0)` of `+81 (0)3 …`) is cut, a leading non-zero digit cannot start a match at offset 0.
//! * Validity is `number_type != Unknown` for the one region of code 81: the general descriptor
//!   and at least one of premium rate, toll free, shared cost, VoIP, personal number, pager, UAN,
//!   voicemail, fixed line and mobile match. A descriptor matches when its possible lengths (if
//!   it lists any) hold the NSN's length and its pattern matches *at the start* of the NSN (the
//!   crate checks `find(..).start() == 0`, not a whole-string match, so the patterns here are
//!   anchored at the start only).
//! * E.164 is `+81` and the NSN.
//!
//! The trace relies on JP's metadata being what it is in the bundled database; [`JpRules::load`]
//! checks each fact it relies on and, if one does not hold (a newer metadata release), switches
//! the fast path off so every text goes to the library.

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{RegexSet, RegexSetBuilder};
use std::sync::LazyLock;

/// What the fast path says about a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fast {
    /// A valid Japanese number: its E.164 form.
    Number(String),
    /// The library would reject the text.
    Invalid,
    /// Not a form this module has traced: ask the library.
    Library,
}

/// The NSN lengths handled here. The lower bound keeps clear of the library's minimum-length
/// errors, the upper one of its 17-digit limit and of the `u64` range of its NSN value.
const NSN_LENGTHS: std::ops::RangeInclusive<usize> = 3..=16;

/// More digits than any NSN above plus a trunk `0`: such text goes to the library.
const MAX_DIGITS: usize = 20;

static RULES: LazyLock<Option<JpRules>> = LazyLock::new(JpRules::load);

/// Classifies already folded and trimmed text (see the module documentation).
pub(super) fn classify(text: &str) -> Fast {
    let Some(rules) = RULES.as_ref() else {
        return Fast::Library;
    };
    let (international, body) = match text.as_bytes().strip_prefix(b"+81") {
        Some(rest) => (true, rest),
        None => (false, text.as_bytes()),
    };
    let mut buffer = [0u8; MAX_DIGITS];
    let mut count = 0;
    let mut has_space = false;
    let mut first_separator = None;
    for (at, &byte) in body.iter().enumerate() {
        match byte {
            b'0'..=b'9' => {
                let Some(slot) = buffer.get_mut(count) else {
                    return Fast::Library;
                };
                *slot = byte;
                count += 1;
            }
            b' ' => has_space = true,
            b'-' | b'.' | b'(' | b')' => {
                first_separator.get_or_insert(at);
            }
            _ => return Fast::Library,
        }
    }
    let digits = &buffer[..count];

    let nsn = if international {
        // Without a space the RFC 3966 front end reads up to the first separator as the country
        // code: only `+81` followed by a separator (or no separator at all) gives code 81.
        if !has_space && first_separator.is_some_and(|at| at != 0) {
            return Fast::Library;
        }
        match digits {
            [b'0', b'1'..=b'9', ..] => match rules.strip_trunk_zero(digits) {
                Some(nsn) => nsn,
                None => return Fast::Library,
            },
            [b'0', ..] => return Fast::Library,
            _ => digits,
        }
    } else {
        match digits {
            // `010` is Japan's international call prefix: the library reads a foreign number.
            [b'0', b'1', b'0', ..] => return Fast::Library,
            [b'0', b'1'..=b'9', ..] => match rules.strip_trunk_zero(digits) {
                Some(nsn) => nsn,
                None => return Fast::Library,
            },
            _ => return Fast::Library,
        }
    };
    if !NSN_LENGTHS.contains(&nsn.len()) {
        return Fast::Library;
    }
    let mut e164 = String::with_capacity(3 + nsn.len());
    e164.push_str("+81");
    e164.extend(nsn.iter().map(|&d| char::from(d)));
    if rules.is_valid(&e164[3..]) {
        Fast::Number(e164)
    } else {
        Fast::Invalid
    }
}

/// JP's validity rules, compiled once from the library's own metadata.
struct JpRules {
    /// Index 0 is the general descriptor, the rest are the types `number_type` looks at.
    patterns: RegexSet,
    /// The possible lengths of each pattern's descriptor, same indexes.
    lengths: Vec<Vec<u16>>,
    /// The general descriptor's possible lengths, as the library's length check reads them.
    general_possible: Vec<u16>,
    general_local: Vec<u16>,
}

/// JP's national prefix for parsing in the metadata the trace above was made against.
const NATIONAL_PREFIX_FOR_PARSING: &str = r"(000[2569]\d{4,6})$|(?:(?:003768)0?)|0";

impl JpRules {
    /// The rules, or `None` when the metadata differs from what the fast path was traced against.
    fn load() -> Option<Self> {
        let meta = DATABASE.by_id("JP")?;
        let traced = meta.country_code() == 81
            // `is_valid` and the formatter look the region up by code: it must be JP alone.
            && DATABASE.region(&81).is_some_and(|regions| regions == ["JP"])
            // `+81…` without an explicit code is split by trying `8` first.
            && DATABASE.by_code(&8).is_none()
            && meta.national_prefix() == Some("0")
            && meta.international_prefix().map(|re| re.as_str()) == Some("010")
            && meta.national_prefix_for_parsing().map(|re| re.as_str())
                == Some(NATIONAL_PREFIX_FOR_PARSING)
            && meta.national_prefix_transform_rule() == Some("$1");
        if !traced {
            return None;
        }
        let descriptors = typed_descriptors(meta);
        let patterns = RegexSetBuilder::new(descriptors.iter().map(|d| {
            // At the start only, like the library's `find(..).start() == 0`. The metadata
            // patterns are written for the `x` flag, which the library sets; the line breaks
            // keep a `#` comment in a pattern from swallowing the closing parenthesis.
            format!("^(?:\n{}\n)", d.national_number().as_str())
        }))
        .ignore_whitespace(true)
        .build()
        .ok()?;
        let general = meta.descriptors().general();
        Some(Self {
            patterns,
            lengths: descriptors
                .iter()
                .map(|d| d.possible_length().to_vec())
                .collect(),
            general_possible: general.possible_length().to_vec(),
            general_local: general.possible_local_length().to_vec(),
        })
    }

    /// `digits` without its trunk `0`, as the library's national prefix rule leaves them, or
    /// `None` when the library would keep the `0` because its length check says too short.
    fn strip_trunk_zero<'a>(&self, digits: &'a [u8]) -> Option<&'a [u8]> {
        let nsn = digits.get(1..)?;
        (!self.too_short(nsn.len())).then_some(nsn)
    }

    /// The library's `validator::length(meta, number, Type::Unknown) == TooShort`, line by line:
    /// it reads the general descriptor's lengths, and with none listed answers `InvalidLength`.
    fn too_short(&self, len: usize) -> bool {
        let Ok(len) = u16::try_from(len) else {
            return false;
        };
        let Some(&minimum) = self.general_possible.first() else {
            return false;
        };
        !self.general_local.contains(&len) && len < minimum
    }

    /// `phonenumber::is_valid` for a JP number with this NSN.
    fn is_valid(&self, nsn: &str) -> bool {
        let Ok(len) = u16::try_from(nsn.len()) else {
            return false;
        };
        let matched = self.patterns.matches(nsn);
        let fits = |index: usize| {
            let lengths = &self.lengths[index];
            (lengths.is_empty() || lengths.contains(&len)) && matched.matched(index)
        };
        fits(0) && (1..self.lengths.len()).any(fits)
    }
}

/// The general descriptor, then every descriptor `validator::number_type` can return a type
/// for (the order does not matter for validity, only whether one of them matches).
fn typed_descriptors(meta: &Metadata) -> Vec<&Descriptor> {
    let d = meta.descriptors();
    std::iter::once(Some(d.general()))
        .chain([
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ])
        .flatten()
        .collect()
}

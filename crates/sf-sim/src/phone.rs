//! The simulator's phone matching rule (used by SOSL `IN PHONE FIELDS` and the duplicate rule).
//!
//! Rule: both the search term and the stored phone are reduced to their digits (full-width
//! digits `０-９` count as digits; every other character is dropped). A leading Japanese country
//! code is then folded into the national trunk prefix: `810…` → `0…` (the `+81 (0)3…` spelling)
//! and `81…` → `0…` when 11 or 12 digits remain in total. Two phones match when these keys are
//! equal. So `03-1234-5678`, `0312345678`, `+81 3 1234 5678`, `+81-(0)3-1234-5678`,
//! `(03)1234-5678` and `０３－１２３４－５６７８` all match one another. A search term ending in `*`
//! matches stored keys that start with the term's key.
//! Real Salesforce's index normalization is undocumented; this rule is deliberately tolerant.

/// Digits only, full-width digits folded to ASCII.
pub(crate) fn digits(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        })
        .collect()
}

/// The comparison key described in the module docs.
pub(crate) fn key(s: &str) -> String {
    let d = digits(s);
    if let Some(rest) = d.strip_prefix("810")
        && rest.len() >= 8
    {
        return format!("0{rest}");
    }
    if let Some(rest) = d.strip_prefix("81")
        && (11..=12).contains(&d.len())
    {
        return format!("0{rest}");
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_spellings_share_a_key() {
        let k = key("03-1234-5678");
        for s in [
            "0312345678",
            "+81 3 1234 5678",
            "+81-(0)3-1234-5678",
            "(03)1234-5678",
            "０３－１２３４－５６７８",
            "+81312345678",
        ] {
            assert_eq!(key(s), k, "{s}");
        }
        assert_eq!(key("090-1234-5678"), "09012345678");
        assert_eq!(key("+819012345678"), "09012345678");
        assert_ne!(key("03-1234-5679"), k);
    }
}

//! Identifiers: validated once at the edge, then trusted everywhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("tenant id must be 1–64 characters of a-z, 0-9, '-' or '_' (got {0:?})")]
    Tenant(String),
    #[error("Salesforce id must be 15 or 18 ASCII letters and digits (got {0:?})")]
    Salesforce(String),
    #[error("call id must be 1–128 printable characters (got {0:?})")]
    Call(String),
}

/// A tenant: one phone-system workspace. Every row, token, setting and queue item belongs to
/// exactly one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Tenant(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}
impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Salesforce record id, always held in its case-safe 18-character form so that ids from
/// different sources compare equal (Salesforce returns 18, people paste 15).
///
/// The 18 ASCII bytes are held inline (no heap allocation): the sync keeps one per record it
/// reads, so cloning and hashing must be cheap. Byte order is string order (ASCII).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SalesforceId([u8; 18]);

impl SalesforceId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IdError::Salesforce(s.to_owned()));
        }
        match s.len() {
            15 => Ok(Self::inline(s.as_bytes(), &checksum_suffix(s.as_bytes()))),
            18 => {
                // The suffix encodes the case of the first 15; recompute it so that a
                // lower-cased 18-char id still maps to the one true id.
                let base = &s[..15];
                let suffix = checksum_suffix(base.as_bytes());
                if s[15..].eq_ignore_ascii_case(&suffix) {
                    Ok(Self::inline(base.as_bytes(), &suffix))
                } else {
                    Err(IdError::Salesforce(s.to_owned()))
                }
            }
            _ => Err(IdError::Salesforce(s.to_owned())),
        }
    }
    pub fn as_str(&self) -> &str {
        // Only ever built from 18 ASCII alphanumerics (`parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
    /// The three-character key prefix that names the object type (`00Q` Lead, `003` Contact…).
    pub fn key_prefix(&self) -> &str {
        &self.as_str()[..3]
    }

    /// The 15 case-sensitive characters that identify the record; the 18-character form's
    /// last three are derived from them.
    pub(crate) fn id15(&self) -> [u8; 15] {
        let mut b = [0u8; 15];
        b.copy_from_slice(&self.0[..15]);
        b
    }

    /// The inverse of [`SalesforceId::id15`] for bytes it produced.
    pub(crate) fn from_id15(base: [u8; 15]) -> Self {
        Self::inline(&base, &checksum_suffix(&base))
    }

    fn inline(base: &[u8], suffix: &str) -> Self {
        let mut id = [0u8; 18];
        id[..15].copy_from_slice(base);
        id[15..].copy_from_slice(suffix.as_bytes());
        Self(id)
    }
}

impl fmt::Debug for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SalesforceId").field(&self.as_str()).finish()
    }
}

fn checksum_suffix(id15: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            char::from(ALPHABET[bits])
        })
        .collect()
}

impl TryFrom<String> for SalesforceId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<SalesforceId> for String {
    fn from(t: SalesforceId) -> String {
        t.as_str().to_owned()
    }
}
impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phone system's call id (`record[id]`), stable across all events of one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallId(String);

impl CallId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 128 || s.chars().any(char::is_control) {
            return Err(IdError::Call(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for CallId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<CallId> for String {
    fn from(t: CallId) -> String {
        t.0
    }
}
impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// callsync's own id for a customer in the book (R18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(pub i64);

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_slugs() {
        assert!(TenantId::parse("acme-01").is_ok());
        for bad in ["", "Acme", "a b", "テナント", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn salesforce_id_15_and_18_forms_are_one_id() {
        // Checksum example: Salesforce shows 001A0000006Vm9r as 001A0000006Vm9rIAC.
        let a = SalesforceId::parse("001A0000006Vm9r").unwrap();
        let b = SalesforceId::parse("001A0000006Vm9rIAC").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "001A0000006Vm9rIAC");
        assert_eq!(SalesforceId::parse("001A0000006Vm9riac").unwrap(), a);
        assert_eq!(a.key_prefix(), "001");
    }

    #[test]
    fn salesforce_id_rejects_bad_shapes() {
        for bad in [
            "",
            "001",
            "001A0000006Vm9rXXX",
            "001A0000006Vm9r!",
            "001A0000006Vm9rIA",
        ] {
            assert!(SalesforceId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn call_ids_are_trimmed_and_bounded() {
        assert_eq!(CallId::parse(" 22232 ").unwrap().as_str(), "22232");
        assert!(CallId::parse("").is_err());
        assert!(CallId::parse("a\nb").is_err());
    }
}

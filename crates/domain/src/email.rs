//! Email addresses, compared case-insensitively (R23 matches members to Users by email).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an email address: {0:?}")]
pub struct EmailError(pub String);

/// An email address. Keeps the text as given; equality and hashing ignore case, because
/// `Ichiro.Eigyo@example.jp` and `ichiro.eigyo@example.jp` are the same person to every mail
/// system callsync meets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress {
    text: String,
    key: String,
}

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, EmailError> {
        let text = s.trim();
        let valid = text.len() <= 254
            && !text.chars().any(char::is_whitespace)
            && match text.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.is_empty()
                        && !domain.contains('@')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if !valid {
            return Err(EmailError(s.to_owned()));
        }
        Ok(Self {
            text: text.to_owned(),
            key: text.to_lowercase(),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// The lower-cased form used for matching and indexing.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for EmailAddress {}
impl std::hash::Hash for EmailAddress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, EmailError> {
        Self::parse(&s)
    }
}
impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.text
    }
}
impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // R23 depends on this: member and User emails match regardless of case.
    #[test]
    fn r23_email_equality_ignores_case() {
        let a = EmailAddress::parse("Ichiro.Eigyo@Example.jp").unwrap();
        let b = EmailAddress::parse("ichiro.eigyo@example.jp").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Ichiro.Eigyo@Example.jp");
        assert_eq!(a.key(), "ichiro.eigyo@example.jp");
    }

    #[test]
    fn rejects_non_addresses() {
        for bad in ["", "a", "a@", "@b", "a b@c.jp", "a@b@c", "a@.jp"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}

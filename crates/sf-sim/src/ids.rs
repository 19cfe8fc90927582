//! Salesforce record ids: 15-char case-sensitive bodies with the 3-char case-insensitivity suffix.

use std::fmt;

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// An 18-char Salesforce id, stored inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SfId([u8; 18]);

impl SfId {
    /// `prefix` (3 chars) + 2-char pod + 10-char base62 counter, then the checksum suffix.
    pub(crate) fn make(prefix: &str, pod: u32, counter: u64) -> SfId {
        let mut b = [b'0'; 18];
        b[..3].copy_from_slice(&prefix.as_bytes()[..3]);
        b[3] = B62[(pod / 62 % 62) as usize];
        b[4] = B62[(pod % 62) as usize];
        let mut c = counter;
        for i in (5..15).rev() {
            b[i] = B62[(c % 62) as usize];
            c /= 62;
        }
        Self::fill_suffix(&mut b);
        SfId(b)
    }

    fn fill_suffix(b: &mut [u8; 18]) {
        for chunk in 0..3 {
            let mut bits = 0usize;
            for i in 0..5 {
                if b[chunk * 5 + i].is_ascii_uppercase() {
                    bits |= 1 << i;
                }
            }
            b[15 + chunk] = SUFFIX[bits];
        }
    }

    /// Parse a 15- or 18-char id (18-char ids are case-insensitive) into the canonical 18-char form.
    pub(crate) fn parse(s: &str) -> Option<SfId> {
        let s = s.as_bytes();
        if !s.iter().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let mut b = [0u8; 18];
        match s.len() {
            15 => {
                b[..15].copy_from_slice(s);
                Self::fill_suffix(&mut b);
                Some(SfId(b))
            }
            18 => {
                b[..15].copy_from_slice(&s[..15]);
                for chunk in 0..3 {
                    let c = s[15 + chunk].to_ascii_uppercase();
                    let bits = SUFFIX.iter().position(|&x| x == c)?;
                    for i in 0..5 {
                        let ch = &mut b[chunk * 5 + i];
                        if bits & (1 << i) != 0 {
                            *ch = ch.to_ascii_uppercase();
                        } else {
                            *ch = ch.to_ascii_lowercase();
                        }
                    }
                }
                Self::fill_suffix(&mut b);
                Some(SfId(b))
            }
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.as_str()[..3]
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Random base62 text for tokens, codes and locators.
pub(crate) fn random_b62(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| B62[rng.random_range(0..62)] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_id_suffix() {
        // Known pair from Salesforce docs/community: 001A0000006Vm9r -> 001A0000006Vm9rIAC
        let id = SfId::parse("001A0000006Vm9r").unwrap();
        assert_eq!(id.as_str(), "001A0000006Vm9rIAC");
        let again = SfId::parse("001a0000006vm9rIAC").unwrap();
        assert_eq!(again, id);
        assert!(SfId::parse("001A0000006Vm9").is_none());
    }

    #[test]
    fn make_is_parseable() {
        let id = SfId::make("00Q", 7, 123_456);
        assert_eq!(id.as_str().len(), 18);
        assert_eq!(SfId::parse(&id.as_str()[..15]).unwrap(), id);
        assert_eq!(id.prefix(), "00Q");
    }
}

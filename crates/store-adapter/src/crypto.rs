//! Encryption at rest (R7, ENGINEERING §7): AES-256-GCM with keys from configuration.
//!
//! Every ciphertext is stored as `nonce (12 bytes) ‖ ciphertext ‖ tag` next to the id of the
//! key that sealed it, so keys can rotate: new writes use [`Keyring::current`], reads find the
//! key by id among the current and previous keys. The associated data binds a ciphertext to
//! its tenant and purpose, so a token copied into another tenant's row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::StoreError;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// Why a keyring could not be built from configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key id must be 1–64 characters of a-z, A-Z, 0-9, '-', '_' or '.' (got {0:?})")]
    BadId(String),
    #[error("key {0:?} must be 32 bytes encoded as standard base64")]
    BadKey(String),
    #[error("key id {0:?} appears twice in the keyring")]
    DuplicateId(String),
}

/// One AES-256 key and its id.
struct NamedKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The encryption keys: `current` seals every new write; `previous` only opens old data.
///
/// Built from configuration with [`Keyring::from_base64`]; `Debug` shows key ids only.
pub struct Keyring {
    current: NamedKey,
    previous: Vec<NamedKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn check_id(id: &str) -> Result<(), KeyError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadId(id.to_owned()))
    }
}

fn named(id: &str, key: &[u8; KEY_LEN]) -> Result<NamedKey, KeyError> {
    check_id(id)?;
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| KeyError::BadKey(id.to_owned()))?;
    Ok(NamedKey {
        id: id.to_owned(),
        cipher,
    })
}

fn decode_key(id: &str, b64: &SecretString) -> Result<[u8; KEY_LEN], KeyError> {
    let bytes = STANDARD
        .decode(b64.expose_secret().trim())
        .map_err(|_| KeyError::BadKey(id.to_owned()))?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyError::BadKey(id.to_owned()))
}

impl Keyring {
    /// A keyring from raw 32-byte keys: `(key id, key)`.
    pub fn new(
        current: (&str, &[u8; KEY_LEN]),
        previous: &[(&str, &[u8; KEY_LEN])],
    ) -> Result<Self, KeyError> {
        let current = named(current.0, current.1)?;
        let mut ids = vec![current.id.clone()];
        let mut prev = Vec::with_capacity(previous.len());
        for (id, key) in previous {
            if ids.iter().any(|i| i == id) {
                return Err(KeyError::DuplicateId((*id).to_owned()));
            }
            ids.push((*id).to_owned());
            prev.push(named(id, key)?);
        }
        Ok(Self {
            current,
            previous: prev,
        })
    }

    /// A keyring from configuration: each key is 32 bytes in standard base64.
    pub fn from_base64(
        current: (&str, &SecretString),
        previous: &[(String, SecretString)],
    ) -> Result<Self, KeyError> {
        let cur = decode_key(current.0, current.1)?;
        let prev = previous
            .iter()
            .map(|(id, k)| decode_key(id, k).map(|k| (id.as_str(), k)))
            .collect::<Result<Vec<_>, _>>()?;
        let prev_refs: Vec<(&str, &[u8; KEY_LEN])> = prev.iter().map(|(i, k)| (*i, k)).collect();
        Self::new((current.0, &cur), &prev_refs)
    }

    /// A fresh random key in the form [`Keyring::from_base64`] reads (for `callsync keygen`).
    pub fn generate_key() -> SecretString {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        SecretString::from(STANDARD.encode(key))
    }

    /// The id of the key new writes use.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` with the current key. Returns `(key id, nonce ‖ ciphertext)`.
    pub(crate) fn seal(
        &self,
        plaintext: &[u8],
        aad: &str,
    ) -> Result<(String, Vec<u8>), StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Crypto(format!("encryption with key {:?} failed", self.current.id))
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok((self.current.id.clone(), out))
    }

    /// Opens data sealed by [`Keyring::seal`] with the key named `key_id`.
    ///
    /// Errors: `StoreError::Crypto` naming the key id when that key is not configured, or when
    /// it does not open the data (wrong key material under that id, or tampered data).
    pub(crate) fn open(
        &self,
        key_id: &str,
        sealed: &[u8],
        aad: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or_else(|| {
                StoreError::Crypto(format!(
                    "the data was encrypted with key {key_id:?}, which is not configured \
                     (current key {:?}); add it to the previous keys",
                    self.current.id
                ))
            })?;
        if sealed.len() < NONCE_LEN {
            return Err(StoreError::Crypto(format!(
                "ciphertext sealed with key {key_id:?} is truncated"
            )));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce)
            .map_err(|_| StoreError::Crypto("bad nonce".to_owned()))?;
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Crypto(format!(
                    "key {key_id:?} does not decrypt the stored data: the key material \
                     configured under that id is wrong, or the data was altered"
                ))
            })
    }

    pub(crate) fn seal_secret(
        &self,
        secret: &SecretString,
        aad: &str,
    ) -> Result<(String, Vec<u8>), StoreError> {
        self.seal(secret.expose_secret().as_bytes(), aad)
    }

    pub(crate) fn open_secret(
        &self,
        key_id: &str,
        sealed: &[u8],
        aad: &str,
    ) -> Result<SecretString, StoreError> {
        let plain = self.open(key_id, sealed, aad)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| StoreError::Crypto(format!("data under key {key_id:?} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: [u8; 32] = [1; 32];
    const K2: [u8; 32] = [2; 32];

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let ring = Keyring::new(("k1", &K1), &[]).unwrap();
        let (id, a) = ring.seal(b"secret", "t:x").unwrap();
        let (_, b) = ring.seal(b"secret", "t:x").unwrap();
        assert_eq!(id, "k1");
        assert_ne!(a, b, "nonce must be random per encryption");
        assert_eq!(ring.open("k1", &a, "t:x").unwrap(), b"secret");
        // Bound to its purpose/tenant.
        assert!(matches!(
            ring.open("k1", &a, "u:x"),
            Err(StoreError::Crypto(_))
        ));
    }

    #[test]
    fn unknown_and_wrong_keys_are_named() {
        let old = Keyring::new(("k1", &K1), &[]).unwrap();
        let (_, sealed) = old.seal(b"s", "a").unwrap();
        let rotated = Keyring::new(("k2", &K2), &[]).unwrap();
        let err = rotated.open("k1", &sealed, "a").unwrap_err().to_string();
        assert!(
            err.contains("\"k1\"") && err.contains("not configured"),
            "{err}"
        );
        let wrong = Keyring::new(("k1", &K2), &[]).unwrap();
        let err = wrong.open("k1", &sealed, "a").unwrap_err().to_string();
        assert!(
            err.contains("\"k1\"") && err.contains("does not decrypt"),
            "{err}"
        );
    }

    #[test]
    fn config_keys_are_validated() {
        let good = Keyring::generate_key();
        assert!(Keyring::from_base64(("a", &good), &[]).is_ok());
        let short = SecretString::from(STANDARD.encode([0u8; 16]));
        assert_eq!(
            Keyring::from_base64(("a", &short), &[]).unwrap_err(),
            KeyError::BadKey("a".into())
        );
        assert_eq!(
            Keyring::from_base64(("a", &good), &[("a".into(), good.clone())]).unwrap_err(),
            KeyError::DuplicateId("a".into())
        );
        assert!(matches!(
            Keyring::from_base64(("", &good), &[]),
            Err(KeyError::BadId(_))
        ));
        let dbg = format!("{:?}", Keyring::from_base64(("a", &good), &[]).unwrap());
        assert!(!dbg.contains(good.expose_secret()));
    }
}

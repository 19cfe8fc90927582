//! Webhook signatures: HMAC-SHA256 per tenant over `"{timestamp}.{raw body}"`.
//!
//! The sender puts the unix time in seconds in `X-Callsync-Timestamp` and
//! `v1=<lowercase hex HMAC-SHA256>` in `X-Callsync-Signature`. Several `v1=` values separated by
//! commas are accepted (the sender rotating its secret signs with both); a tenant may have
//! several active secrets (we rotate): the request is authentic when any value matches any
//! secret. Timestamps more than the replay window (default ±300 s) from our clock are refused,
//! so a captured request cannot be replayed later. The crate README has a curl + openssl
//! example for senders.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Unix time in seconds at which the sender signed.
pub const TIMESTAMP_HEADER: &str = "x-callsync-timestamp";
/// `v1=<hex>`, or several separated by commas.
pub const SIGNATURE_HEADER: &str = "x-callsync-signature";
/// How far the sender's timestamp may be from our clock, either way.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(300);
/// Most `v1=` values looked at in one header.
const MAX_SIGNATURES: usize = 8;
/// Longest signature header read.
const MAX_SIGNATURE_HEADER: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// Why a request is not authentic. Every variant is answered with the same 401; the variant is
/// for our logs only and never names or echoes a secret or signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the timestamp header is missing")]
    MissingTimestamp,
    #[error("the signature header is missing")]
    MissingSignature,
    #[error("the timestamp is not unix seconds")]
    MalformedTimestamp,
    #[error("the signature header has no well-formed v1 value")]
    MalformedSignature,
    #[error("the timestamp is outside the replay window")]
    OutsideWindow,
    #[error("the tenant has no webhook secret")]
    NoSecrets,
    #[error("no signature matches")]
    Mismatch,
}

/// The header value a sender sends: `v1=<lowercase hex>` of HMAC-SHA256 keyed with the
/// secret's UTF-8 bytes over `"{timestamp}.{body}"`.
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(tag(
            secret.expose_secret().as_bytes(),
            &timestamp.to_string(),
            body
        ))
    )
}

/// Checks a request's signature headers (their values as received; `None` when absent).
pub fn verify(
    secrets: &[SecretString],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    window: Duration,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?.trim();
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    if timestamp.is_empty()
        || timestamp.len() > 15
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SignatureError::MalformedTimestamp);
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if now.timestamp().abs_diff(sent) > window.as_secs() {
        return Err(SignatureError::OutsideWindow);
    }
    let candidates = candidates(signature)?;
    let mut matched = false;
    for secret in secrets.iter().filter(|s| !s.expose_secret().is_empty()) {
        let expected = tag(secret.expose_secret().as_bytes(), timestamp, body);
        for candidate in &candidates {
            // No early exit: every comparison runs, each in constant time.
            matched |= bool::from(expected.ct_eq(candidate));
        }
    }
    if matched {
        Ok(())
    } else if secrets.iter().all(|s| s.expose_secret().is_empty()) {
        Err(SignatureError::NoSecrets)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `v1=` values of a signature header, decoded; other schemes are ignored.
fn candidates(header: &str) -> Result<Vec<[u8; 32]>, SignatureError> {
    if header.len() > MAX_SIGNATURE_HEADER {
        return Err(SignatureError::MalformedSignature);
    }
    let found: Vec<[u8; 32]> = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|hex_text| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(hex_text.trim(), &mut out).ok()?;
            Some(out)
        })
        .take(MAX_SIGNATURES)
        .collect();
    if found.is_empty() {
        Err(SignatureError::MalformedSignature)
    } else {
        Ok(found)
    }
}

fn tag(key: &[u8], timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // HMAC takes keys of any length, so this cannot fail; an all-zero tag would never match.
    if let Ok(mut mac) = HmacSha256::new_from_slice(key) {
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        out.copy_from_slice(mac.finalize().into_bytes().as_slice());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const BODY: &[u8] = b"event=missed&record%5Bid%5D=1";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_000_000, 0).unwrap()
    }

    fn check(secrets: &[&str], ts: i64, sig: &str, body: &[u8]) -> Result<(), SignatureError> {
        let secrets: Vec<SecretString> = secrets.iter().map(|s| secret(s)).collect();
        verify(
            &secrets,
            Some(&ts.to_string()),
            Some(sig),
            body,
            now(),
            DEFAULT_REPLAY_WINDOW,
        )
    }

    #[test]
    fn known_answer_matches_openssl() {
        // printf '%s' '1795000000.hello' | openssl dgst -sha256 -hmac 'whsec_test'
        let sig = sign(&secret("whsec_test"), 1_795_000_000, b"hello");
        assert_eq!(
            sig,
            "v1=d3f0275f8b1b7da7bc2b878cb6ab2528854eebfd909166f2556cecae6073c9f8"
        );
    }

    #[test]
    fn valid_signature_is_accepted() {
        let sig = sign(&secret("s1"), now().timestamp(), BODY);
        assert_eq!(check(&["s1"], now().timestamp(), &sig, BODY), Ok(()));
    }

    #[test]
    fn wrong_secret_is_refused() {
        let sig = sign(&secret("other"), now().timestamp(), BODY);
        assert_eq!(
            check(&["s1"], now().timestamp(), &sig, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_body_is_refused() {
        let sig = sign(&secret("s1"), now().timestamp(), BODY);
        assert_eq!(
            check(
                &["s1"],
                now().timestamp(),
                &sig,
                b"event=missed&record%5Bid%5D=2"
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_timestamp_is_refused() {
        let sig = sign(&secret("s1"), now().timestamp(), BODY);
        assert_eq!(
            check(&["s1"], now().timestamp() - 1, &sig, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn expired_and_future_timestamps_are_refused() {
        for ts in [now().timestamp() - 301, now().timestamp() + 301] {
            let sig = sign(&secret("s1"), ts, BODY);
            assert_eq!(
                check(&["s1"], ts, &sig, BODY),
                Err(SignatureError::OutsideWindow)
            );
        }
        for ts in [now().timestamp() - 300, now().timestamp() + 300] {
            let sig = sign(&secret("s1"), ts, BODY);
            assert_eq!(check(&["s1"], ts, &sig, BODY), Ok(()));
        }
        // The window is configurable.
        let ts = now().timestamp() - 30;
        let sig = sign(&secret("s1"), ts, BODY);
        let r = verify(
            &[secret("s1")],
            Some(&ts.to_string()),
            Some(&sig),
            BODY,
            now(),
            Duration::from_secs(10),
        );
        assert_eq!(r, Err(SignatureError::OutsideWindow));
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        let ts = now().timestamp().to_string();
        let sig = sign(&secret("s1"), now().timestamp(), BODY);
        let secrets = [secret("s1")];
        let v = |t: Option<&str>, s: Option<&str>| {
            verify(&secrets, t, s, BODY, now(), DEFAULT_REPLAY_WINDOW)
        };
        assert_eq!(v(None, Some(&sig)), Err(SignatureError::MissingTimestamp));
        assert_eq!(v(Some(&ts), None), Err(SignatureError::MissingSignature));
        for bad_ts in ["", "-1", "1.5", "abc", "99999999999999999999"] {
            assert_eq!(
                v(Some(bad_ts), Some(&sig)),
                Err(SignatureError::MalformedTimestamp),
                "{bad_ts:?}"
            );
        }
        for bad_sig in ["", "v1=", "v1=zz", "sha256=abc", &sig[3..], "v0=00"] {
            assert_eq!(
                v(Some(&ts), Some(bad_sig)),
                Err(SignatureError::MalformedSignature),
                "{bad_sig:?}"
            );
        }
    }

    #[test]
    fn rotated_secrets_any_of_ours_matches() {
        let ts = now().timestamp();
        let sig = sign(&secret("new"), ts, BODY);
        assert_eq!(check(&["old", "new"], ts, &sig, BODY), Ok(()));
        let sig = sign(&secret("old"), ts, BODY);
        assert_eq!(check(&["old", "new"], ts, &sig, BODY), Ok(()));
        assert_eq!(
            check(&["newest"], ts, &sig, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotated_secrets_any_of_the_senders_values_matches() {
        let ts = now().timestamp();
        let old = sign(&secret("old"), ts, BODY);
        let new = sign(&secret("new"), ts, BODY);
        let both = format!("{old}, {new}");
        assert_eq!(check(&["new"], ts, &both, BODY), Ok(()));
        assert_eq!(check(&["old"], ts, &both, BODY), Ok(()));
        // Unknown schemes beside a v1 value are ignored.
        let mixed = format!("v2=abcd,{new}");
        assert_eq!(check(&["new"], ts, &mixed, BODY), Ok(()));
        assert_eq!(
            check(&["other"], ts, &both, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_tenant_without_usable_secrets_accepts_nothing() {
        let ts = now().timestamp();
        let sig = sign(&secret(""), ts, BODY);
        assert_eq!(check(&[], ts, &sig, BODY), Err(SignatureError::NoSecrets));
        assert_eq!(check(&[""], ts, &sig, BODY), Err(SignatureError::NoSecrets));
    }
}

//! Credentials the HTTP layer checks: the operator key, admin-page sessions and their CSRF
//! tokens, and the OAuth `state` values waiting for their callback.
//!
//! Comparisons are constant-time (`subtle`). Sessions are HMAC-signed cookies (tenant,
//! expiry, nonce), so any instance sharing the operator key can check them; the CSRF token of
//! a form is an HMAC of the session cookie (signed double submit). Nothing here is logged.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::TenantId;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time equality of two secrets (lengths may differ; compared via SHA-256 so the
/// time does not depend on where they differ or on their lengths).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let ha = Sha256::digest(a.as_bytes());
    let hb = Sha256::digest(b.as_bytes());
    bool::from(ha.as_slice().ct_eq(hb.as_slice()))
}

/// The keys derived from configuration for this process.
pub struct Keys {
    operator_key: SecretString,
    session_key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

impl Keys {
    pub fn new(operator_key: &SecretString) -> Self {
        let mut h = Sha256::new();
        h.update(b"callsync admin session v1\0");
        h.update(operator_key.expose_secret().as_bytes());
        let session_key: [u8; 32] = h.finalize().into();
        Self {
            operator_key: operator_key.clone(),
            session_key,
        }
    }

    pub fn is_operator(&self, presented: &str) -> bool {
        secrets_equal(presented, self.operator_key.expose_secret())
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        // HMAC accepts keys of any length; the error arm cannot happen, and an empty tag would
        // simply verify nothing.
        let Ok(mut m) = <HmacSha256 as KeyInit>::new_from_slice(&self.session_key) else {
            return Vec::new();
        };
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }

    /// A new session cookie value for `tenant`, valid until `expires`.
    pub fn issue_session(&self, tenant: &TenantId, expires: DateTime<Utc>) -> String {
        let payload = format!("{}|{}|{}", tenant, expires.timestamp(), random_token());
        let tag = self.mac(&[b"session", payload.as_bytes()]);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The tenant of a valid, unexpired session cookie.
    pub fn check_session(&self, cookie: &str, now: DateTime<Utc>) -> Option<TenantId> {
        let (payload_b64, tag_b64) = cookie.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).ok()?;
        let expected = self.mac(&[b"session", &payload]);
        if expected.is_empty() || !bool::from(expected.as_slice().ct_eq(tag.as_slice())) {
            return None;
        }
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.split('|');
        let tenant = TenantId::parse(parts.next()?).ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        (now.timestamp() < expires).then_some(tenant)
    }

    /// The CSRF token that forms of this session must carry.
    pub fn csrf_token(&self, session_cookie: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&[b"csrf", session_cookie.as_bytes()]))
    }

    pub fn check_csrf(&self, session_cookie: &str, presented: &str) -> bool {
        secrets_equal(&self.csrf_token(session_cookie), presented)
    }
}

/// An OAuth authorization in flight: who started it and the PKCE verifier.
pub struct PendingAuth {
    pub tenant: TenantId,
    pub verifier: SecretString,
    pub expires: DateTime<Utc>,
    /// Where to send the browser afterwards: the admin page, or JSON for API clients.
    pub return_to_admin: bool,
}

/// OAuth `state` → verifier, kept server-side (in this process) until the callback or expiry.
/// A `state` is single-use.
#[derive(Default)]
pub struct PendingAuths {
    inner: Mutex<HashMap<String, PendingAuth>>,
    /// The last failed connection per tenant, for the admin page's message.
    failures: Mutex<HashMap<TenantId, domain::ports::Failure>>,
}

impl PendingAuths {
    pub fn set_failure(&self, t: &TenantId, f: Option<domain::ports::Failure>) {
        if let Ok(mut m) = self.failures.lock() {
            match f {
                Some(f) => m.insert(t.clone(), f),
                None => m.remove(t),
            };
        }
    }

    pub fn failure(&self, t: &TenantId) -> Option<domain::ports::Failure> {
        self.failures.lock().ok()?.get(t).cloned()
    }

    /// Remembers an authorization; returns its `state`.
    pub fn insert(&self, auth: PendingAuth, now: DateTime<Utc>) -> String {
        let state = random_token();
        if let Ok(mut map) = self.inner.lock() {
            map.retain(|_, a| a.expires > now);
            map.insert(state.clone(), auth);
        }
        state
    }

    /// Takes (and forgets) the authorization of `state` unless it expired.
    pub fn take(&self, state: &str, now: DateTime<Utc>) -> Option<PendingAuth> {
        let mut map = self.inner.lock().ok()?;
        let auth = map.remove(state)?;
        (auth.expires > now).then_some(auth)
    }
}

/// Expiry helper.
pub fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&SecretString::from("0123456789abcdef0123456789abcdef"))
    }

    #[test]
    fn sessions_verify_expire_and_resist_tampering() {
        let k = keys();
        let t = TenantId::parse("acme").unwrap();
        let now = Utc::now();
        let c = k.issue_session(&t, after(now, Duration::from_secs(60)));
        assert_eq!(k.check_session(&c, now), Some(t.clone()));
        assert_eq!(
            k.check_session(&c, after(now, Duration::from_secs(61))),
            None
        );
        // Another tenant's name in the payload breaks the signature.
        let forged_payload = URL_SAFE_NO_PAD.encode(format!("other|{}|x", now.timestamp() + 60));
        let tag = c.split_once('.').unwrap().1;
        assert_eq!(
            k.check_session(&format!("{forged_payload}.{tag}"), now),
            None
        );
        // A key from another operator key verifies nothing.
        let other = Keys::new(&SecretString::from("ffffffffffffffffffffffffffffffff"));
        assert_eq!(other.check_session(&c, now), None);
    }

    #[test]
    fn csrf_is_bound_to_the_session() {
        let k = keys();
        let t = TenantId::parse("acme").unwrap();
        let far = after(Utc::now(), Duration::from_secs(60));
        let a = k.issue_session(&t, far);
        let b = k.issue_session(&t, far);
        assert!(k.check_csrf(&a, &k.csrf_token(&a)));
        assert!(!k.check_csrf(&a, &k.csrf_token(&b)));
        assert!(!k.check_csrf(&a, ""));
    }

    #[test]
    fn oauth_state_is_single_use_and_expires() {
        let p = PendingAuths::default();
        let now = Utc::now();
        let t = TenantId::parse("acme").unwrap();
        let mk = |secs| PendingAuth {
            tenant: t.clone(),
            verifier: SecretString::from("v"),
            expires: after(now, Duration::from_secs(secs)),
            return_to_admin: true,
        };
        let s = p.insert(mk(60), now);
        assert!(p.take(&s, now).is_some());
        assert!(p.take(&s, now).is_none());
        let s = p.insert(mk(1), now);
        assert!(p.take(&s, after(now, Duration::from_secs(2))).is_none());
        assert!(p.take("unknown", now).is_none());
    }

    #[test]
    fn operator_key_compare() {
        let k = keys();
        assert!(k.is_operator("0123456789abcdef0123456789abcdef"));
        assert!(!k.is_operator("0123456789abcdef0123456789abcdeF"));
        assert!(!k.is_operator(""));
    }
}

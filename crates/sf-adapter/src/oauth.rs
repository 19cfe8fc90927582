//! OAuth 2.0 web-server flow with PKCE (R7): authorize URL, code exchange with identity and
//! the C1 API-access check, revoke.

use crate::SalesforceClient;
use crate::errors::map_oauth_error;
use crate::executor::{Call, base_url};
use crate::transformers::{
    IdentityDto, QueryPageDto, bad_response, connected_user, parse_id_url, user_by_id_soql,
    user_from_json,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use domain::ports::Credentials;
use domain::{OrgProblem, SfError, TenantId};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// PKCE (RFC 7636, S256).
#[derive(Debug, Clone, Copy)]
pub struct Pkce;

impl Pkce {
    /// A fresh verifier (43 URL-safe characters from 32 random bytes) and its S256 challenge.
    /// Keep the verifier secret (server side, tied to `state`) until the code exchange.
    pub fn generate() -> (SecretString, String) {
        let verifier = random_token();
        let challenge = Self::challenge(&verifier);
        (SecretString::from(verifier), challenge)
    }

    /// `base64url(SHA-256(verifier))`, unpadded.
    pub fn challenge(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }
}

/// A fresh, unguessable `state` value for the authorize request.
pub fn generate_state() -> String {
    random_token()
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What [`SalesforceClient::disconnect`] managed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    /// The grant was revoked at Salesforce (or was already gone). When `false`, the admin can
    /// revoke it in Setup > Connected Apps OAuth Usage.
    pub revoked: bool,
}

impl SalesforceClient {
    /// The URL to send the admin's browser to (R7): `response_type=code`, `client_id`,
    /// `redirect_uri`, `state`, `scope=api refresh_token`, `code_challenge` (S256).
    pub fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.exec.config.client_id)
            .append_pair("redirect_uri", &self.exec.config.redirect_url)
            .append_pair("state", state)
            .append_pair("scope", "api refresh_token")
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}/services/oauth2/authorize?{query}", self.exec.login_base)
    }

    /// Exchanges the callback's `code` for tokens, learns the connecting user and org from the
    /// identity URL, and checks that the org has REST API access (C1).
    ///
    /// The caller stores the result (`CredentialStore::save`); any cached credentials of the
    /// tenant are dropped so the next request loads the new ones. Errors: `invalid_grant` →
    /// `NeedsReconnect` (connect again), `invalid_client` → `OrgConfig` naming the client
    /// settings, no refresh token granted → `OrgConfig`, `API_DISABLED_FOR_ORG` →
    /// `OrgConfig { problem: ApiDisabled }` (the new grant is revoked again).
    pub async fn exchange_code(
        &self,
        t: &TenantId,
        code: &str,
        verifier: &SecretString,
    ) -> Result<Credentials, SfError> {
        let tr = self
            .exec
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.exec.config.redirect_url),
                ("code_verifier", verifier.expose_secret()),
            ])
            .await?;
        let instance_url = base_url("instance_url", &tr.instance_url)
            .map_err(|_| bad_response("the token response has an unusable instance_url"))?;
        let refresh_token = tr.refresh_token.clone().ok_or_else(|| SfError::OrgConfig {
            problem: OrgProblem::MissingPermission,
            code: "NO_REFRESH_TOKEN".to_owned(),
            object: None,
            field: None,
            cause: "Salesforce granted no refresh token; add \"Perform requests at any time (refresh_token, offline_access)\" to the connected app's selected OAuth scopes".to_owned(),
        })?;
        let id_url = tr
            .id
            .clone()
            .ok_or_else(|| bad_response("the token response has no identity URL"))?;
        let issued_at = tr.issued_at().unwrap_or_else(Utc::now);
        let access_token = tr.access_token;

        // Identity: best effort (a token without the `id` scope may be refused); the ids are
        // in the URL itself, and the User query below supplies email and name.
        let identity = self.identity(&id_url, &instance_url, &access_token).await;
        let mut user = match &identity {
            Some(i) => connected_user(i, &id_url)?,
            None => {
                let (org_id, user_id) = parse_id_url(&id_url)
                    .ok_or_else(|| bad_response("the identity URL names no user"))?;
                domain::ConnectedUser {
                    user_id,
                    org_id,
                    email: None,
                    name: String::new(),
                }
            }
        };

        // C1: one REST call. API_DISABLED_FOR_ORG surfaces here, at connect time.
        let call = Call::query("query", user_by_id_soql(&user.user_id)).about("User");
        match self
            .exec
            .execute_with(Some(t), &instance_url, &access_token, &call)
            .await
            .and_then(|r| r.json::<QueryPageDto>())
        {
            Ok(page) => {
                if let Some(u) = page
                    .records
                    .into_iter()
                    .next()
                    .map(user_from_json)
                    .transpose()?
                {
                    if user.email.is_none() {
                        user.email = u.email;
                    }
                    if user.name.is_empty() {
                        user.name = u.name;
                    }
                }
            }
            Err(e) => {
                if matches!(e, SfError::OrgConfig { .. }) {
                    // Do not leave a grant behind for an org callsync cannot use.
                    let _ = self.revoke_token(&refresh_token).await;
                }
                return Err(e);
            }
        }
        self.exec.forget(t);
        Ok(Credentials {
            instance_url,
            access_token,
            refresh_token,
            user,
            issued_at,
        })
    }

    async fn identity(
        &self,
        id_url: &str,
        instance_url: &str,
        token: &SecretString,
    ) -> Option<IdentityDto> {
        // The token goes only to https, or to the login/instance origin (simulator, tests).
        let u = url::Url::parse(id_url).ok()?;
        let origin = u.origin().ascii_serialization();
        let trusted = u.scheme() == "https"
            || origin == self.exec.login_base
            || origin == instance_url.trim_end_matches('/');
        if !trusted {
            tracing::warn!("identity URL is neither https nor on a known origin; not calling it");
            return None;
        }
        let sep = if id_url.contains('?') { '&' } else { '?' };
        let (status, body) = self
            .exec
            .get_with_token(&format!("{id_url}{sep}format=json"), token)
            .await
            .ok()?;
        if !(200..300).contains(&status) {
            tracing::info!(status, "identity URL refused; using the ids in the URL");
            return None;
        }
        serde_json::from_slice(&body).ok()
    }

    /// C1 for a connected tenant: one REST call (the connecting user's User row).
    /// `API_DISABLED_FOR_ORG` → `OrgConfig { problem: ApiDisabled }`.
    pub async fn check_api_access(&self, t: &TenantId) -> Result<(), SfError> {
        let creds = self.exec.credentials(t).await?;
        let call = Call::query("query", user_by_id_soql(&creds.user.user_id)).about("User");
        self.exec.execute(t, &call).await.map(|_| ())
    }

    /// Revokes the tenant's grant at Salesforce (the refresh token, which also revokes its
    /// access tokens) and drops the cached credentials. An already-invalid token counts as
    /// revoked. Does not delete stored credentials: see [`Self::disconnect`].
    pub async fn revoke(&self, t: &TenantId) -> Result<(), SfError> {
        let creds = self.exec.credentials(t).await?;
        let r = self.revoke_token(&creds.refresh_token).await;
        self.exec.forget(t);
        r
    }

    async fn revoke_token(&self, token: &SecretString) -> Result<(), SfError> {
        let (status, body) = self
            .exec
            .post_form(
                &format!("{}/services/oauth2/revoke", self.exec.login_base),
                &[("token", token.expose_secret())],
            )
            .await?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        match map_oauth_error(status, &body) {
            SfError::BadData { code, .. } if code == "invalid_token" => Ok(()),
            e => Err(e),
        }
    }

    /// R7 disconnect: revoke at Salesforce (best effort), delete the stored tokens, forget
    /// the cache. Errors only when the stored tokens could not be deleted.
    pub async fn disconnect(&self, t: &TenantId) -> Result<Disconnected, SfError> {
        let revoked = match self.revoke(t).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    tenant = t.as_str(),
                    code = e.code(),
                    "could not revoke the Salesforce grant"
                );
                matches!(e, SfError::NeedsReconnect { .. })
            }
        };
        self.exec
            .store()
            .delete(t)
            .await
            .map_err(|e| SfError::transient("CREDENTIAL_STORE", e.to_string()))?;
        self.exec.forget(t);
        Ok(Disconnected { revoked })
    }

    /// Drops the tenant's cached credentials; the next request loads them from the store.
    pub fn forget(&self, t: &TenantId) {
        self.exec.forget(t);
    }
}

//! The adapter's configuration: where Salesforce is, who callsync is to it, and how patient to be.

use secrecy::SecretString;
use std::time::Duration;

/// Configuration of [`crate::SalesforceClient`]. Every URL is a base URL, so tests and the
/// simulator can point the client anywhere (`http://127.0.0.1:PORT` included).
#[derive(Debug, Clone)]
pub struct SfConfig {
    /// OAuth host: `https://login.salesforce.com`, `https://test.salesforce.com` (sandbox) or a
    /// My Domain URL. Used to authorize, exchange codes, refresh and revoke.
    pub login_url: String,
    /// The connected app's consumer key.
    pub client_id: String,
    /// The connected app's consumer secret.
    pub client_secret: SecretString,
    /// The callback URL registered on the connected app.
    pub redirect_url: String,
    /// REST API version without the `v`, e.g. `62.0`.
    pub api_version: String,
    /// Per-request timeout (connect + answer).
    pub timeout: Duration,
    /// Attempts per request for transient failures (1 = no retry).
    pub max_attempts: u32,
    /// First backoff; doubles per attempt, with jitter.
    pub backoff_base: Duration,
}

impl SfConfig {
    /// Production defaults around the given connected app.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: SecretString,
        redirect_url: impl Into<String>,
    ) -> Self {
        Self {
            login_url: "https://login.salesforce.com".to_owned(),
            client_id: client_id.into(),
            client_secret,
            redirect_url: redirect_url.into(),
            api_version: "62.0".to_owned(),
            timeout: Duration::from_secs(30),
            max_attempts: 3,
            backoff_base: Duration::from_millis(100),
        }
    }
}

/// A configuration the client cannot work with; names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("salesforce.{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

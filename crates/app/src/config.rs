//! The service's configuration: one typed tree, layered with figment and validated explicitly.
//!
//! Layers, later wins: built-in defaults → `config/base.toml` → `config/{env}.toml` (env from
//! `CALLSYNC_ENV`, default `local`) → `CALLSYNC_*` environment variables (`__` nests:
//! `CALLSYNC_SALESFORCE__CLIENT_ID` is `salesforce.client_id`). Unknown keys are errors, so a
//! typo names itself. [`Settings::validate`] then checks what types cannot, naming each key.
//! Secrets are `SecretString`s: `Debug` and [`Settings::summary`] never show them.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variable naming the environment file (`config/{env}.toml`).
pub const ENV_VAR: &str = "CALLSYNC_ENV";
/// Environment variable naming the configuration directory (also `--config-dir`).
pub const CONFIG_DIR_VAR: &str = "CALLSYNC_CONFIG_DIR";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub server: ServerSettings,
    pub salesforce: SalesforceSettings,
    pub security: SecuritySettings,
    pub workers: WorkerSettings,
    pub sync: SyncSettings,
    pub defaults: DefaultsSettings,
    pub log: LogSettings,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://user:password@host/db` (a secret: it may
    /// carry a password).
    pub url: SecretString,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://./data/callsync.sqlite?mode=rwc"),
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(self.url.expose_secret()))
            .finish()
    }
}

/// A database URL with its password replaced by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable>".to_owned(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind; port 0 picks a free port (tests).
    pub listen: String,
    /// The URL browsers and Salesforce reach this service at (redirects, links).
    pub public_url: String,
    /// How long a previous webhook secret keeps working after a rotation.
    pub webhook_secret_grace_secs: u64,
    /// Admin page session lifetime.
    pub session_ttl_secs: u64,
    /// How long an OAuth `state` (and its PKCE verifier) stays valid.
    pub oauth_state_ttl_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            webhook_secret_grace_secs: 24 * 3600,
            session_ttl_secs: 8 * 3600,
            oauth_state_ttl_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    /// The callback registered on the connected app; default `{server.public_url}/oauth/callback`.
    pub redirect_url: Option<String>,
    pub login_url: String,
    pub api_version: String,
    pub timeout_secs: u64,
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: SecretString::from(""),
            redirect_url: None,
            login_url: "https://login.salesforce.com".to_owned(),
            api_version: "62.0".to_owned(),
            timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// Bearer token of the operator API. Required, at least 32 characters.
    pub operator_key: SecretString,
    /// Key id → base64 of a 32-byte AES key. Tokens at rest are sealed with `current_key_id`;
    /// the others only open older data (key rotation).
    pub token_keys: BTreeMap<String, SecretString>,
    pub current_key_id: String,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            operator_key: SecretString::from(""),
            token_keys: BTreeMap::new(),
            current_key_id: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Worker loops in this process (0 = intake only).
    pub count: u32,
    pub batch_size: u32,
    pub linger_ms: u64,
    pub lease_secs: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            count: 2,
            batch_size: 200,
            linger_ms: 50,
            lease_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// Incremental sync period per tenant (R16). 0 turns the scheduler off.
    pub interval_secs: u64,
    /// Up to this much random delay per tenant and run, so tenants spread out.
    pub jitter_secs: u64,
    /// Re-read this much before the watermark, so late commits are not missed (R16).
    pub overlap_secs: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            interval_secs: 3600,
            jitter_secs: 300,
            overlap_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefaultsSettings {
    /// R31: the Account new Contacts without a company go under (new tenants' default).
    pub placeholder_account: String,
}

impl Default for DefaultsSettings {
    fn default() -> Self {
        Self {
            placeholder_account: "CallConnect 取引先".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive (`info`, `app=debug,info`…). `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".to_owned(),
        }
    }
}

/// One problem with the configuration, naming the key (`salesforce.client_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be read or did not fit the schema (figment's message
    /// names the key and where it came from).
    #[error("{0}")]
    Load(Box<figment::Error>),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigProblem>),
}

impl ConfigError {
    /// Every message, one per line, each naming its key.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Load(e) => e.clone().into_iter().map(|e| describe(&e)).collect(),
            Self::Invalid(ps) => ps.iter().map(ToString::to_string).collect(),
        }
    }
}

fn describe(e: &figment::Error) -> String {
    let key = e.path.join(".");
    let source = e
        .metadata
        .as_ref()
        .map(|m| {
            m.source
                .as_ref()
                .map(|s| format!(" (from {} {s})", m.name))
                .unwrap_or_else(|| format!(" (from {})", m.name))
        })
        .unwrap_or_default();
    if key.is_empty() {
        format!("{}{source}", e.kind)
    } else {
        format!("{key}: {}{source}", e.kind)
    }
}

/// Where to read configuration from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub dir: PathBuf,
    pub env: String,
}

impl ConfigSource {
    /// `--config-dir` (or `CALLSYNC_CONFIG_DIR`, or `./config`) and `CALLSYNC_ENV`
    /// (default `local`).
    pub fn from_env(dir: Option<PathBuf>) -> Self {
        let dir = dir
            .or_else(|| std::env::var_os(CONFIG_DIR_VAR).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"));
        let env = std::env::var(ENV_VAR).unwrap_or_else(|_| "local".to_owned());
        Self { dir, env }
    }

    /// The layered figment (without validation).
    pub fn figment(&self) -> Figment {
        figment_for(&self.dir, &self.env)
    }
}

fn figment_for(dir: &Path, env: &str) -> Figment {
    Figment::new()
        .merge(Toml::file(dir.join("base.toml")))
        .merge(Toml::file(dir.join(format!("{env}.toml"))))
        .merge(
            Env::prefixed("CALLSYNC_")
                // Not settings: the profile and directory above, and what `cargo xtask test`
                // exports to the tests (a PostgreSQL URL, Chromium, the SF clients' directory).
                .ignore(&[
                    "ENV",
                    "CONFIG_DIR",
                    "TEST_PG_URL",
                    "CHROMIUM",
                    "SF_CLIENTS_DIR",
                ])
                .split("__"),
        )
}

impl Settings {
    /// Loads and validates.
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        let settings: Settings = source
            .figment()
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        settings.validate().map_err(ConfigError::Invalid)?;
        Ok(settings)
    }

    /// Checks what the types cannot; every problem names its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: &str| {
            problems.push(ConfigProblem {
                key: key.to_owned(),
                message: message.to_owned(),
            })
        };
        let db = self.database.url.expose_secret();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            bad(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            );
        }
        if self.server.listen.parse::<SocketAddr>().is_err() {
            bad(
                "server.listen",
                "must be an address and port such as 127.0.0.1:8080",
            );
        }
        if !is_http_url(&self.server.public_url) {
            bad("server.public_url", "must be an http(s) URL");
        }
        if self.server.session_ttl_secs == 0 {
            bad("server.session_ttl_secs", "must be positive");
        }
        if self.server.oauth_state_ttl_secs == 0 {
            bad("server.oauth_state_ttl_secs", "must be positive");
        }
        if self.salesforce.client_id.trim().is_empty() {
            bad("salesforce.client_id", "must not be empty");
        }
        if self
            .salesforce
            .client_secret
            .expose_secret()
            .trim()
            .is_empty()
        {
            bad("salesforce.client_secret", "must not be empty");
        }
        if let Some(r) = &self.salesforce.redirect_url
            && !is_http_url(r)
        {
            bad("salesforce.redirect_url", "must be an http(s) URL");
        }
        if !is_http_url(&self.salesforce.login_url) {
            bad("salesforce.login_url", "must be an http(s) URL");
        }
        let v = &self.salesforce.api_version;
        let version_ok = v.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        });
        if !version_ok {
            bad(
                "salesforce.api_version",
                "must look like 62.0 (no leading v)",
            );
        }
        if self.salesforce.timeout_secs == 0 {
            bad("salesforce.timeout_secs", "must be positive");
        }
        if self.security.operator_key.expose_secret().chars().count() < 32 {
            bad("security.operator_key", "must be at least 32 characters");
        }
        if self.security.token_keys.is_empty() {
            bad(
                "security.token_keys",
                "must hold at least one key (id = base64 of 32 bytes)",
            );
        }
        for (id, key) in &self.security.token_keys {
            if decode_key(key).is_none() {
                problems.push(ConfigProblem {
                    key: format!("security.token_keys.{id}"),
                    message: "must be 32 bytes encoded as standard base64".to_owned(),
                });
            }
        }
        if !self
            .security
            .token_keys
            .contains_key(&self.security.current_key_id)
        {
            problems.push(ConfigProblem {
                key: "security.current_key_id".to_owned(),
                message: "must name one of security.token_keys".to_owned(),
            });
        }
        if self.workers.batch_size == 0 || self.workers.batch_size > 1000 {
            problems.push(ConfigProblem {
                key: "workers.batch_size".to_owned(),
                message: "must be between 1 and 1000".to_owned(),
            });
        }
        if self.workers.lease_secs == 0 {
            problems.push(ConfigProblem {
                key: "workers.lease_secs".to_owned(),
                message: "must be positive".to_owned(),
            });
        }
        if self.sync.interval_secs > 0 && self.sync.jitter_secs >= self.sync.interval_secs {
            problems.push(ConfigProblem {
                key: "sync.jitter_secs".to_owned(),
                message: "must be smaller than sync.interval_secs".to_owned(),
            });
        }
        let p = self.defaults.placeholder_account.trim();
        if p.is_empty() || p.chars().count() > 255 {
            problems.push(ConfigProblem {
                key: "defaults.placeholder_account".to_owned(),
                message: "must be 1–255 characters".to_owned(),
            });
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(ConfigProblem {
                key: "log.level".to_owned(),
                message: "must be a tracing filter such as info or app=debug,info".to_owned(),
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The bind address (validated).
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.server.listen.parse()?)
    }

    /// `public_url` without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }

    /// The OAuth callback URL registered on the connected app.
    pub fn redirect_url(&self) -> String {
        self.salesforce
            .redirect_url
            .clone()
            .unwrap_or_else(|| format!("{}/oauth/callback", self.public_url()))
    }

    /// A masked, human-readable summary for `check-config` (no secret appears).
    pub fn summary(&self) -> String {
        let mask = |s: &SecretString| {
            if s.expose_secret().is_empty() {
                "(empty)".to_owned()
            } else {
                format!("*** ({} chars)", s.expose_secret().chars().count())
            }
        };
        let keys: Vec<&str> = self
            .security
            .token_keys
            .keys()
            .map(String::as_str)
            .collect();
        [
            format!(
                "database.url = {}",
                redact_url(self.database.url.expose_secret())
            ),
            format!("server.listen = {}", self.server.listen),
            format!("server.public_url = {}", self.server.public_url),
            format!("salesforce.client_id = {}", self.salesforce.client_id),
            format!(
                "salesforce.client_secret = {}",
                mask(&self.salesforce.client_secret)
            ),
            format!("salesforce.redirect_url = {}", self.redirect_url()),
            format!("salesforce.login_url = {}", self.salesforce.login_url),
            format!("salesforce.api_version = {}", self.salesforce.api_version),
            format!("salesforce.timeout_secs = {}", self.salesforce.timeout_secs),
            format!(
                "security.operator_key = {}",
                mask(&self.security.operator_key)
            ),
            format!(
                "security.token_keys = [{}] (values hidden)",
                keys.join(", ")
            ),
            format!("security.current_key_id = {}", self.security.current_key_id),
            format!(
                "workers = count {} batch_size {} linger_ms {} lease_secs {}",
                self.workers.count,
                self.workers.batch_size,
                self.workers.linger_ms,
                self.workers.lease_secs
            ),
            format!(
                "sync = interval_secs {} jitter_secs {} overlap_secs {}",
                self.sync.interval_secs, self.sync.jitter_secs, self.sync.overlap_secs
            ),
            format!(
                "defaults.placeholder_account = {}",
                self.defaults.placeholder_account
            ),
            format!("log = {:?} {}", self.log.format, self.log.level),
        ]
        .join("\n")
    }
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Decodes a configured AES key: 32 bytes in standard base64.
pub fn decode_key(key: &SecretString) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.expose_secret().trim())
        .ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn base(jail: &mut Jail) -> figment::error::Result<()> {
        jail.create_dir("config")?;
        jail.create_file(
            "config/base.toml",
            &format!(
                r#"
[salesforce]
client_id = "from-base"
client_secret = "base-secret"

[security]
operator_key = "0123456789abcdef0123456789abcdef"
current_key_id = "k1"
[security.token_keys]
k1 = "{KEY}"
"#
            ),
        )?;
        Ok(())
    }

    fn load(jail: &Jail) -> Result<Settings, ConfigError> {
        Settings::load(&ConfigSource {
            dir: jail.directory().join("config"),
            env: std::env::var(ENV_VAR).unwrap_or_else(|_| "local".into()),
        })
    }

    #[test]
    fn defaults_then_file_then_env_file_then_environment() {
        Jail::expect_with(|jail| {
            base(jail)?;
            jail.create_file("config/staging.toml", "[server]\nlisten = \"0.0.0.0:9000\"\n[sync]\ninterval_secs = 600\njitter_secs = 60\n")?;
            jail.set_env(ENV_VAR, "staging");
            jail.set_env("CALLSYNC_SYNC__INTERVAL_SECS", "900");
            jail.set_env("CALLSYNC_SALESFORCE__CLIENT_ID", "from-env");
            let s = load(jail).map_err(|e| e.to_string())?;
            // Defaults survive where nothing overrides them.
            assert_eq!(s.salesforce.login_url, "https://login.salesforce.com");
            assert_eq!(s.salesforce.api_version, "62.0");
            assert_eq!(s.workers.batch_size, 200);
            assert_eq!(s.sync.overlap_secs, 300);
            // The environment file overrides base; the environment overrides both (`__` nests).
            assert_eq!(s.server.listen, "0.0.0.0:9000");
            assert_eq!(s.sync.jitter_secs, 60);
            assert_eq!(s.sync.interval_secs, 900);
            assert_eq!(s.salesforce.client_id, "from-env");
            assert_eq!(s.redirect_url(), "http://127.0.0.1:8080/oauth/callback");
            Ok(())
        });
    }

    #[test]
    fn env_defaults_to_local() {
        Jail::expect_with(|jail| {
            base(jail)?;
            jail.create_file("config/local.toml", "[log]\nformat = \"pretty\"\n")?;
            let s = load(jail).map_err(|e| e.to_string())?;
            assert_eq!(s.log.format, LogFormat::Pretty);
            Ok(())
        });
    }

    #[test]
    fn a_missing_required_key_is_named() {
        Jail::expect_with(|jail| {
            base(jail)?;
            jail.set_env("CALLSYNC_SALESFORCE__CLIENT_ID", "");
            jail.set_env("CALLSYNC_SECURITY__OPERATOR_KEY", "short");
            let lines = load(jail).map(|_| ()).unwrap_err().lines();
            assert!(
                lines.contains(&"salesforce.client_id: must not be empty".to_owned()),
                "{lines:?}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("security.operator_key:")),
                "{lines:?}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_or_mistyped_key_is_named() {
        Jail::expect_with(|jail| {
            base(jail)?;
            jail.create_file("config/local.toml", "[workers]\ncount = \"many\"\n")?;
            let msg = load(jail).map(|_| ()).unwrap_err().lines().join("\n");
            assert!(msg.contains("workers.count"), "{msg}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            base(jail)?;
            jail.create_file("config/local.toml", "[salesforce]\nclient_idd = \"typo\"\n")?;
            let msg = load(jail).map(|_| ()).unwrap_err().lines().join("\n");
            assert!(msg.contains("client_idd"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn bad_token_key_and_current_key_are_named() {
        Jail::expect_with(|jail| {
            base(jail)?;
            jail.set_env("CALLSYNC_SECURITY__TOKEN_KEYS__K2", "not-base64!");
            jail.set_env("CALLSYNC_SECURITY__CURRENT_KEY_ID", "nope");
            let lines = load(jail).map(|_| ()).unwrap_err().lines();
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("security.token_keys.k2:")),
                "{lines:?}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("security.current_key_id:")),
                "{lines:?}"
            );
            Ok(())
        });
    }

    #[test]
    fn debug_and_summary_never_show_secrets() {
        Jail::expect_with(|jail| {
            base(jail)?;
            jail.set_env(
                "CALLSYNC_DATABASE__URL",
                "postgres://callsync:hunter2-password@db/callsync",
            );
            let s = load(jail).map_err(|e| e.to_string())?;
            let shown = format!("{s:?}\n{}", s.summary());
            for secret in [
                "base-secret",
                "0123456789abcdef0123456789abcdef",
                KEY,
                "hunter2-password",
            ] {
                assert!(!shown.contains(secret), "{secret} leaked");
            }
            assert!(shown.contains("postgres://callsync:***@db/callsync"));
            Ok(())
        });
    }
}

//! Errors the ports report, classified by what callsync should do about them.

use crate::SalesforceId;
use serde::{Deserialize, Serialize};

/// What to do with a failed piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Try again after a backoff (5xx, timeouts, lock contention).
    Transient,
    /// The API allowance is spent (C3): wait until it recovers, then resume.
    Throttled,
    /// The OAuth grant is gone (revoked, expired, IP-restricted refresh): hold the tenant's work
    /// until an admin reconnects (R7). Never dead-lettered.
    NeedsReconnect,
    /// The org's configuration blocks the operation: dead-letter with the setting to change.
    OrgConfig,
    /// The data was rejected: dead-letter with the field and cause.
    BadData,
}

/// Which Salesforce setting is in the way (R10, R40, C1, C2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgProblem {
    /// Field-level security hides a field callsync reads (R10).
    HiddenField,
    /// A validation rule rejected the record.
    ValidationRule,
    /// A duplicate rule blocked the insert and pointed at no usable record (R35).
    DuplicateRule,
    /// The Lead was converted; it can no longer be written (R15).
    ConvertedLead,
    /// The org or the user has no REST API access (C1).
    ApiDisabled,
    /// Login IP restrictions reject callsync's servers (C2).
    IpRestricted,
    /// The connected user lacks a permission or object access.
    MissingPermission,
}

/// A record a duplicate rule matched (R35).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateMatch {
    /// The sObject type as Salesforce names it (`Lead`, `Contact`, `Account`…).
    pub object: String,
    pub id: SalesforceId,
}

/// A failure talking to Salesforce, in domain terms. Adapters map every Salesforce error code
/// and transport failure to exactly one variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SfError {
    #[error("Salesforce is temporarily unavailable: {cause}")]
    Transient { code: String, cause: String },
    #[error("Salesforce API allowance reached: {cause}")]
    Throttled { code: String, cause: String },
    #[error("the Salesforce connection must be renewed: {cause}")]
    NeedsReconnect { code: String, cause: String },
    #[error("the Salesforce org's configuration blocks this ({problem:?} on {}{}): {cause}", object.as_deref().unwrap_or("-"), field.as_deref().map(|f| format!(".{f}")).unwrap_or_default())]
    OrgConfig {
        problem: OrgProblem,
        code: String,
        object: Option<String>,
        field: Option<String>,
        cause: String,
    },
    #[error("a duplicate rule matched existing records: {cause}")]
    Duplicate {
        matches: Vec<DuplicateMatch>,
        cause: String,
    },
    #[error("Salesforce rejected the data ({code} on {}{}): {cause}", object.as_deref().unwrap_or("-"), field.as_deref().map(|f| format!(".{f}")).unwrap_or_default())]
    BadData {
        code: String,
        object: Option<String>,
        field: Option<String>,
        cause: String,
    },
    #[error("not found in Salesforce: {cause}")]
    NotFound { cause: String },
}

impl SfError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Transient { .. } => ErrorClass::Transient,
            Self::Throttled { .. } => ErrorClass::Throttled,
            Self::NeedsReconnect { .. } => ErrorClass::NeedsReconnect,
            Self::OrgConfig { .. } | Self::Duplicate { .. } => ErrorClass::OrgConfig,
            Self::BadData { .. } | Self::NotFound { .. } => ErrorClass::BadData,
        }
    }

    /// The Salesforce error code (or a callsync code for transport failures).
    pub fn code(&self) -> &str {
        match self {
            Self::Transient { code, .. }
            | Self::Throttled { code, .. }
            | Self::NeedsReconnect { code, .. }
            | Self::OrgConfig { code, .. }
            | Self::BadData { code, .. } => code,
            Self::Duplicate { .. } => "DUPLICATES_DETECTED",
            Self::NotFound { .. } => "NOT_FOUND",
        }
    }

    pub fn transient(code: impl Into<String>, cause: impl Into<String>) -> Self {
        Self::Transient {
            code: code.into(),
            cause: cause.into(),
        }
    }
}

/// A failure of the store. Adapters keep driver text out of `Unavailable`'s public message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("encryption failure: {0}")]
    Crypto(String),
}

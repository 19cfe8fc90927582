//! What the HTTP layer, the scheduler and the workers need, as one bundle of `Arc<dyn …>`.
//!
//! Most are the domain's ports. The few operations that are app-only (tenants, admin tokens,
//! webhook secrets, hand-edited customers, audit, readiness) and the Salesforce connection
//! flow sit behind the small traits below, so the HTTP layer never names an adapter type;
//! `wiring.rs` fills the bundle from configuration.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{
    ApiUsageView, CallTaskStore, Clock, CredentialStore, Credentials, CustomerStore,
    DirectoryStore, DuplicateEntry, EventLog, Locks, SalesforceReader, SalesforceWriter,
    SettingsStore, SyncRunStore, WorkQueue,
};
use domain::{Customer, CustomerFields, CustomerId, PhoneNumber, SfError, StoreError, TenantId};
use secrecy::SecretString;
use serde::Serialize;
use std::sync::Arc;

/// A tenant as the operator API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantInfo {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An admin's edit of a customer. `None` leaves a field; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    pub number: Option<PhoneNumber>,
    pub name: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub memo: Option<Option<String>>,
}

/// App-only storage operations (the storage adapter implements them).
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// `Conflict` when the id exists.
    async fn create_tenant(&self, id: &TenantId, name: &str) -> Result<TenantInfo, StoreError>;
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantInfo>, StoreError>;
    /// Every tenant (the scheduler's cross-tenant read).
    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError>;
    /// A new admin token, returned once; only its hash is kept. `NotFound` for no tenant.
    async fn rotate_admin_token(&self, t: &TenantId) -> Result<SecretString, StoreError>;
    /// Constant-time check of a presented admin token; unknown tenants verify nothing.
    async fn verify_admin_token(&self, t: &TenantId, token: &str) -> Result<bool, StoreError>;
    /// A new webhook secret, returned once. The previous one keeps working for `grace`.
    async fn rotate_webhook_secret(
        &self,
        t: &TenantId,
        grace: std::time::Duration,
    ) -> Result<SecretString, StoreError>;
    /// The secrets a webhook signature may use: the current one and, during a rotation's
    /// grace period, the previous one. `None` for an unknown tenant.
    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError>;
    /// `Conflict` when the number is taken (R18).
    async fn create_customer(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        fields: &CustomerFields,
    ) -> Result<Customer, StoreError>;
    /// Marks synced fields dirty for write-back (R11). `NotFound`, `Conflict`.
    async fn edit_customer(
        &self,
        t: &TenantId,
        id: CustomerId,
        patch: &CustomerPatch,
    ) -> Result<Customer, StoreError>;
    async fn duplicates(&self, t: &TenantId, limit: u64)
    -> Result<Vec<DuplicateEntry>, StoreError>;
    /// Appends to the tenant's audit log (who did what; never secrets).
    async fn audit(
        &self,
        t: &TenantId,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError>;
    /// The database answers and its schema is current.
    async fn ready(&self) -> Result<(), StoreError>;
}

/// The OAuth connection flow against the org (R7, C1).
#[async_trait]
pub trait SalesforceConnect: Send + Sync {
    /// The authorize URL for this `state` and PKCE challenge.
    fn authorize_url(&self, state: &str, code_challenge: &str) -> String;
    /// Exchanges the code, learns the connecting user, checks REST API access (C1).
    async fn exchange_code(
        &self,
        t: &TenantId,
        code: &str,
        verifier: &SecretString,
    ) -> Result<Credentials, SfError>;
    /// Revokes the grant at Salesforce. `Ok(false)` when it could not be revoked there (the
    /// local copy is deleted anyway).
    async fn revoke(&self, t: &TenantId, credentials: &Credentials) -> Result<bool, SfError>;
}

/// Starting a sync run (R16, R17).
#[async_trait]
pub trait SyncRunner: Send + Sync {
    /// Runs one sync of the tenant to completion. `Ok(None)` when another run holds the
    /// tenant's lease (here or on another instance).
    async fn run(&self, t: &TenantId, full: bool) -> anyhow::Result<Option<i64>>;
}

/// Every port the app uses, shared.
#[derive(Clone)]
pub struct Ports {
    pub admin: Arc<dyn AdminStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub customers: Arc<dyn CustomerStore>,
    pub events: Arc<dyn EventLog>,
    pub queue: Arc<dyn WorkQueue>,
    pub tasks: Arc<dyn CallTaskStore>,
    pub directory: Arc<dyn DirectoryStore>,
    pub runs: Arc<dyn SyncRunStore>,
    pub locks: Arc<dyn Locks>,
    pub sf_read: Arc<dyn SalesforceReader>,
    pub sf_write: Arc<dyn SalesforceWriter>,
    pub usage: Arc<dyn ApiUsageView>,
    pub connect: Arc<dyn SalesforceConnect>,
    pub sync: Arc<dyn SyncRunner>,
    pub clock: Arc<dyn Clock>,
}

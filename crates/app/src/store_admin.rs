//! The storage adapter's app-only operations behind [`AdminStore`].
//!
//! The store keeps one webhook secret per tenant. The rotation grace period (the previous
//! secret keeps verifying for a while) is kept here, in this process: a rotation on one
//! instance gives the grace only on that instance. Senders switching within the grace period
//! against a single instance — the common case — are covered.

use crate::ports::{AdminStore, CustomerPatch, TenantInfo};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::DuplicateEntry;
use domain::{Customer, CustomerFields, CustomerId, PhoneNumber, StoreError, TenantId};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Mutex;
use store_adapter::{CustomerEdit, Store};

pub struct StoreAdmin {
    store: Store,
    previous: Mutex<HashMap<TenantId, (SecretString, DateTime<Utc>)>>,
}

impl StoreAdmin {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            previous: Mutex::default(),
        }
    }
}

fn info(t: store_adapter::Tenant) -> TenantInfo {
    TenantInfo {
        id: t.id,
        name: t.name,
        created_at: t.created_at,
    }
}

#[async_trait]
impl AdminStore for StoreAdmin {
    async fn create_tenant(&self, id: &TenantId, name: &str) -> Result<TenantInfo, StoreError> {
        if self.store.tenant(id).await?.is_some() {
            return Err(StoreError::Conflict(format!("tenant {id}")));
        }
        self.store
            .create_tenant(id, name, Utc::now())
            .await
            .map(info)
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantInfo>, StoreError> {
        Ok(self.store.tenant(id).await?.map(info))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        Ok(self
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }

    async fn rotate_admin_token(&self, t: &TenantId) -> Result<SecretString, StoreError> {
        self.store.rotate_admin_token(t).await
    }

    async fn verify_admin_token(&self, t: &TenantId, token: &str) -> Result<bool, StoreError> {
        self.store.verify_admin_token(t, token).await
    }

    async fn rotate_webhook_secret(
        &self,
        t: &TenantId,
        grace: std::time::Duration,
    ) -> Result<SecretString, StoreError> {
        let old = self.store.webhook_secret(t).await?;
        let new = self.store.rotate_webhook_secret(t).await?;
        if let (Some(old), Ok(mut prev)) = (old, self.previous.lock()) {
            let until = Utc::now() + chrono::Duration::from_std(grace).unwrap_or_default();
            if grace.is_zero() {
                prev.remove(t);
            } else {
                prev.insert(t.clone(), (old, until));
            }
        }
        Ok(new)
    }

    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError> {
        let current = match self.store.webhook_secret(t).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut all: Vec<SecretString> = current.into_iter().collect();
        if let Ok(mut prev) = self.previous.lock() {
            let now = Utc::now();
            prev.retain(|_, (_, until)| *until > now);
            if let Some((s, _)) = prev.get(t) {
                all.push(s.clone());
            }
        }
        Ok(Some(all))
    }

    async fn create_customer(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        fields: &CustomerFields,
    ) -> Result<Customer, StoreError> {
        self.store
            .create_customer(t, number, fields, Utc::now())
            .await
    }

    async fn edit_customer(
        &self,
        t: &TenantId,
        id: CustomerId,
        p: &CustomerPatch,
    ) -> Result<Customer, StoreError> {
        let edit = CustomerEdit {
            number: p.number.clone(),
            name: p.name.clone(),
            company: p.company.clone(),
            email: p.email.clone(),
            address: p.address.clone(),
            memo: p.memo.clone(),
        };
        self.store.edit_customer(t, id, &edit, Utc::now()).await
    }

    async fn duplicates(
        &self,
        t: &TenantId,
        limit: u64,
    ) -> Result<Vec<DuplicateEntry>, StoreError> {
        self.store.duplicates(t, limit).await
    }

    async fn audit(
        &self,
        t: &TenantId,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let detail = serde_json::json!({ "detail": detail });
        self.store
            .append_audit(t, actor, action, &detail, Utc::now())
            .await
            .map(|_| ())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        // A primary-key read on the tenants table: fails when the database is unreachable or
        // the schema is missing (migrations not applied).
        let probe =
            TenantId::parse("readyz-probe").map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store.tenant(&probe).await.map(|_| ())
    }
}

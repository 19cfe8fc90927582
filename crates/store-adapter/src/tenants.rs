//! Tenants: creation, listing for the scheduler, the webhook secret and the admin token.

use crate::convert;
use crate::entity::tenant;
use crate::error::db_err;
use crate::store::Store;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::{StoreError, TenantId};
use rand::RngCore as _;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryOrder};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A tenant as admins and the scheduler see it. Secrets are never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub has_webhook_secret: bool,
    pub has_admin_token: bool,
}

fn tenant_from(m: tenant::Model) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: convert::tenant_id(&m.id)?,
        name: m.name,
        created_at: m.created_at,
        has_webhook_secret: m.webhook_secret.is_some(),
        has_admin_token: m.admin_token_hash.is_some(),
    })
}

fn webhook_aad(t: &TenantId) -> String {
    format!("callsync:webhook_secret:{t}")
}

fn random_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Creates a tenant. Errors: `Conflict` when the id exists.
    pub async fn create_tenant(
        &self,
        id: &TenantId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Tenant, StoreError> {
        let m = tenant::ActiveModel {
            id: Set(id.as_str().to_owned()),
            name: Set(name.to_owned()),
            created_at: Set(now),
            webhook_secret: Set(None),
            webhook_key_id: Set(None),
            admin_token_hash: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(|e| db_err("create tenant", e))?;
        tenant_from(m)
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        tenant::Entity::find_by_id(id.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_err("get tenant", e))?
            .map(tenant_from)
            .transpose()
    }

    /// Every tenant, by id (the scheduler's cross-tenant read).
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        tenant::Entity::find()
            .order_by_asc(tenant::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| db_err("list tenants", e))?
            .into_iter()
            .map(tenant_from)
            .collect()
    }

    async fn tenant_row(&self, t: &TenantId) -> Result<tenant::Model, StoreError> {
        tenant::Entity::find_by_id(t.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_err("get tenant", e))?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {t}")))
    }

    /// Generates a new webhook signing secret, stores it encrypted and returns it — the only
    /// time it is shown. The previous secret stops working. Errors: `NotFound` (tenant).
    pub async fn rotate_webhook_secret(&self, t: &TenantId) -> Result<SecretString, StoreError> {
        let row = self.tenant_row(t).await?;
        let secret = random_secret();
        let (key_id, sealed) = self.keys.seal_secret(&secret, &webhook_aad(t))?;
        let mut am: tenant::ActiveModel = row.into();
        am.webhook_secret = Set(Some(sealed));
        am.webhook_key_id = Set(Some(key_id));
        am.update(&self.db)
            .await
            .map_err(|e| db_err("rotate webhook secret", e))?;
        Ok(secret)
    }

    /// The webhook secret, to verify signatures. `None` when never set.
    /// Errors: `NotFound` (tenant), `Crypto` (keys).
    pub async fn webhook_secret(&self, t: &TenantId) -> Result<Option<SecretString>, StoreError> {
        let row = self.tenant_row(t).await?;
        match (row.webhook_key_id, row.webhook_secret) {
            (Some(key_id), Some(sealed)) => self
                .keys
                .open_secret(&key_id, &sealed, &webhook_aad(t))
                .map(Some),
            _ => Ok(None),
        }
    }

    /// Generates a new admin token and stores only its SHA-256; returns the token once.
    /// (The token is 256 random bits, so a fast hash is enough.) Errors: `NotFound`.
    pub async fn rotate_admin_token(&self, t: &TenantId) -> Result<SecretString, StoreError> {
        let row = self.tenant_row(t).await?;
        let token = random_secret();
        let mut am: tenant::ActiveModel = row.into();
        am.admin_token_hash = Set(Some(token_hash(token.expose_secret())));
        am.update(&self.db)
            .await
            .map_err(|e| db_err("rotate admin token", e))?;
        Ok(token)
    }

    /// `true` when `token` is the tenant's admin token (constant-time comparison).
    /// An unknown tenant or a tenant without a token verifies nothing.
    pub async fn verify_admin_token(&self, t: &TenantId, token: &str) -> Result<bool, StoreError> {
        let row = tenant::Entity::find_by_id(t.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_err("get tenant", e))?;
        Ok(match row.and_then(|r| r.admin_token_hash) {
            Some(stored) => bool::from(stored.as_bytes().ct_eq(token_hash(token).as_bytes())),
            None => false,
        })
    }
}

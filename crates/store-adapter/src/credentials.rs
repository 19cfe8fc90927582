//! `CredentialStore`: the OAuth grant, tokens sealed with the keyring (R7).

use crate::entity::credential;
use crate::error::{db_err, json_err};
use crate::sql::Sql;
use crate::store::{Store, stamp};
use async_trait::async_trait;
use domain::ports::{CredentialStore, Credentials};
use domain::{ConnectedUser, StoreError, TenantId};
use sea_orm::{EntityTrait, ModelTrait as _};
use secrecy::SecretString;

fn access_aad(t: &TenantId) -> String {
    format!("callsync:access_token:{t}")
}
fn refresh_aad(t: &TenantId) -> String {
    format!("callsync:refresh_token:{t}")
}

impl Store {
    /// Re-encrypts every stored secret of the tenant with the current key (after a key
    /// rotation, before the old key is removed from `previous`). Returns how many secrets
    /// were rewritten.
    pub async fn reencrypt_secrets(&self, t: &TenantId) -> Result<u64, StoreError> {
        let mut n = 0;
        if let Some(c) = self.load(t).await? {
            self.save(t, &c).await?;
            n += 2;
        }
        if let Some(tenant) = self.tenant(t).await?
            && tenant.has_webhook_secret
            && let Some(secret) = self.webhook_secret(t).await?
        {
            let (key_id, sealed) = self
                .keys
                .seal_secret(&secret, &format!("callsync:webhook_secret:{t}"))?;
            let mut q = Sql::new("UPDATE tenants SET webhook_secret = ");
            q.bind(sealed)
                .push(", webhook_key_id = ")
                .bind(key_id)
                .push(" WHERE id = ")
                .bind(t.as_str());
            q.execute(&self.db)
                .await
                .map_err(|e| db_err("re-encrypt webhook secret", e))?;
            n += 1;
        }
        Ok(n)
    }
}

#[async_trait]
impl CredentialStore for Store {
    async fn load(&self, t: &TenantId) -> Result<Option<Credentials>, StoreError> {
        let Some(row) = credential::Entity::find_by_id(t.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_err("load credentials", e))?
        else {
            return Ok(None);
        };
        let access_token =
            self.keys
                .open_secret(&row.access_key_id, &row.access_token, &access_aad(t))?;
        let refresh_token =
            self.keys
                .open_secret(&row.refresh_key_id, &row.refresh_token, &refresh_aad(t))?;
        let user: ConnectedUser = serde_json::from_str(&row.connected_user)
            .map_err(|e| json_err("credentials.connected_user", e))?;
        Ok(Some(Credentials {
            instance_url: row.instance_url,
            access_token,
            refresh_token,
            user,
            issued_at: row.issued_at,
        }))
    }

    async fn save(&self, t: &TenantId, c: &Credentials) -> Result<(), StoreError> {
        let (access_key, access) = self.keys.seal_secret(&c.access_token, &access_aad(t))?;
        let (refresh_key, refresh) = self.keys.seal_secret(&c.refresh_token, &refresh_aad(t))?;
        let user = serde_json::to_string(&c.user).map_err(|e| json_err("connected user", e))?;
        let mut q = Sql::new(
            "INSERT INTO credentials (tenant_id, instance_url, access_token, access_key_id, \
             refresh_token, refresh_key_id, connected_user, issued_at, updated_at) VALUES (",
        );
        q.bind(t.as_str())
            .push(",")
            .bind(c.instance_url.clone())
            .push(",")
            .bind(access)
            .push(",")
            .bind(access_key)
            .push(",")
            .bind(refresh)
            .push(",")
            .bind(refresh_key)
            .push(",")
            .bind(user)
            .push(",")
            .bind(c.issued_at)
            .push(",")
            .bind(stamp())
            .push(
                ") ON CONFLICT (tenant_id) DO UPDATE SET instance_url = excluded.instance_url, \
                 access_token = excluded.access_token, access_key_id = excluded.access_key_id, \
                 refresh_token = excluded.refresh_token, refresh_key_id = excluded.refresh_key_id, \
                 connected_user = excluded.connected_user, issued_at = excluded.issued_at, \
                 updated_at = excluded.updated_at",
            );
        q.execute(&self.db)
            .await
            .map_err(|e| db_err("save credentials", e))?;
        Ok(())
    }

    async fn update_access_token(
        &self,
        t: &TenantId,
        access_token: &SecretString,
        instance_url: &str,
    ) -> Result<(), StoreError> {
        let (key_id, sealed) = self.keys.seal_secret(access_token, &access_aad(t))?;
        let mut q = Sql::new("UPDATE credentials SET access_token = ");
        q.bind(sealed)
            .push(", access_key_id = ")
            .bind(key_id)
            .push(", instance_url = ")
            .bind(instance_url)
            .push(", updated_at = ")
            .bind(stamp())
            .push(" WHERE tenant_id = ")
            .bind(t.as_str());
        let n = q
            .execute(&self.db)
            .await
            .map_err(|e| db_err("update access token", e))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("credentials of tenant {t}")));
        }
        Ok(())
    }

    async fn delete(&self, t: &TenantId) -> Result<(), StoreError> {
        if let Some(row) = credential::Entity::find_by_id(t.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_err("delete credentials", e))?
        {
            row.delete(&self.db)
                .await
                .map_err(|e| db_err("delete credentials", e))?;
        }
        Ok(())
    }
}

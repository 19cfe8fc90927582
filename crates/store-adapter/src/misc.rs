//! The smaller ports — `SettingsStore`, `CallTaskStore`, `DirectoryStore`, `SyncRunStore`,
//! `Locks` — and the members and audit trail the admin side needs.

use crate::convert;
use crate::entity::{audit, call_task, member, settings, sf_user, sync_run};
use crate::error::{db_err, json_err};
use crate::events::upsert_member;
use crate::sql::{Sql, rows_per_statement, shaped};
use crate::store::{Store, stamp};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{
    CallTask, CallTaskStore, DirectoryStore, Locks, SettingsStore, SyncKind, SyncReport, SyncRun,
    SyncRunStore,
};
use domain::{CallId, IntegrationSettings, Member, SfUser, StoreError, TenantId};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};
use std::time::Duration;

/// One admin action (who did what, when), for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

fn kind_str(k: SyncKind) -> &'static str {
    match k {
        SyncKind::Initial => "initial",
        SyncKind::Incremental => "incremental",
        SyncKind::WriteBack => "write_back",
    }
}

fn kind_parse(s: &str) -> Result<SyncKind, StoreError> {
    match s {
        "initial" => Ok(SyncKind::Initial),
        "incremental" => Ok(SyncKind::Incremental),
        "write_back" => Ok(SyncKind::WriteBack),
        other => Err(crate::error::corrupt(
            "sync_runs.kind",
            format!("unknown kind {other:?}"),
        )),
    }
}

impl Store {
    /// Inserts or replaces a member (from the phone system's directory). A webhook's member
    /// goes through `EventLog::accept`, which only adds what it carries.
    pub async fn upsert_member(&self, t: &TenantId, m: &Member) -> Result<(), StoreError> {
        upsert_member(
            &self.db,
            t,
            &m.external_id,
            m.name.clone(),
            m.email.clone(),
            false,
            stamp(),
        )
        .await
    }

    /// R41: members whose email matches no active Salesforce User (case-insensitively), and
    /// members without an email — their calls fall back to the connecting user (R23).
    pub async fn members_without_user(&self, t: &TenantId) -> Result<Vec<Member>, StoreError> {
        let mut q = Sql::new(
            "SELECT m.id, m.tenant_id, m.external_id, m.name, m.email, m.email_lower, m.updated_at \
             FROM members m WHERE m.tenant_id = ",
        );
        let tp = q.param(t.as_str());
        q.push(&tp).push(
            " AND (m.email_lower IS NULL OR NOT EXISTS (SELECT 1 FROM sf_users u \
             WHERE u.tenant_id = ",
        );
        q.push(&tp)
            .push(" AND u.email_lower = m.email_lower AND u.active = ")
            .bind(true)
            .push(")) ORDER BY m.external_id");
        q.all(&self.db)
            .await
            .map_err(|e| db_err("members without user", e))?
            .iter()
            .map(|r| {
                member::Model::from_query_result(r, "")
                    .map(convert::member)
                    .map_err(|e| db_err("members without user", e))
            })
            .collect()
    }

    /// Appends to the audit trail; returns the entry's id.
    pub async fn append_audit(
        &self,
        t: &TenantId,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut q =
            Sql::new("INSERT INTO audit_log (tenant_id, actor, action, detail, at) VALUES (");
        q.bind(t.as_str())
            .push(",")
            .bind(actor)
            .push(",")
            .bind(action)
            .push(",")
            .bind(detail.to_string())
            .push(",")
            .bind(at)
            .push(") RETURNING id");
        let row = q
            .one(&self.db)
            .await
            .map_err(|e| db_err("append audit", e))?
            .ok_or_else(|| StoreError::Unavailable("append audit returned nothing".into()))?;
        row.try_get("", "id").map_err(|e| db_err("append audit", e))
    }

    /// The newest audit entries first.
    pub async fn audit_log(&self, t: &TenantId, limit: u64) -> Result<Vec<AuditEntry>, StoreError> {
        audit::Entity::find()
            .filter(audit::Column::TenantId.eq(t.as_str()))
            .order_by_desc(audit::Column::At)
            .order_by_desc(audit::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| db_err("audit log", e))?
            .into_iter()
            .map(|m| {
                Ok(AuditEntry {
                    id: m.id,
                    actor: m.actor,
                    action: m.action,
                    detail: serde_json::from_str(&m.detail)
                        .map_err(|e| json_err("audit_log.detail", e))?,
                    at: m.at,
                })
            })
            .collect()
    }
}

#[async_trait]
impl SettingsStore for Store {
    async fn settings(&self, t: &TenantId) -> Result<Option<IntegrationSettings>, StoreError> {
        settings::Entity::find_by_id(t.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(|e| db_err("load settings", e))?
            .map(|m| {
                serde_json::from_str(&m.settings).map_err(|e| json_err("integration_settings", e))
            })
            .transpose()
    }

    async fn save_settings(&self, t: &TenantId, s: &IntegrationSettings) -> Result<(), StoreError> {
        let json = serde_json::to_string(s).map_err(|e| json_err("settings", e))?;
        let mut q =
            Sql::new("INSERT INTO integration_settings (tenant_id, settings, updated_at) VALUES (");
        q.bind(t.as_str())
            .push(",")
            .bind(json)
            .push(",")
            .bind(stamp())
            .push(
                ") ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, \
                 updated_at = excluded.updated_at",
            );
        q.execute(&self.db)
            .await
            .map_err(|e| db_err("save settings", e))?;
        Ok(())
    }
}

#[async_trait]
impl CallTaskStore for Store {
    async fn call_task(&self, t: &TenantId, call: &CallId) -> Result<Option<CallTask>, StoreError> {
        call_task::Entity::find_by_id((t.as_str().to_owned(), call.as_str().to_owned()))
            .one(&self.db)
            .await
            .map_err(|e| db_err("load call task", e))?
            .map(convert::call_task)
            .transpose()
    }

    async fn save_call_task(&self, t: &TenantId, task: &CallTask) -> Result<(), StoreError> {
        let cont = serde_json::to_string(&task.continuation_task_ids)
            .map_err(|e| json_err("continuation tasks", e))?;
        let mut q = Sql::new(
            "INSERT INTO call_tasks (tenant_id, call_id, task_id, who_object, who_id, owner_id, \
             description, continuations, updated_at) VALUES (",
        );
        q.bind(t.as_str())
            .push(",")
            .bind(task.call_id.as_str())
            .push(",")
            .bind(task.task_id.as_str())
            .push(",")
            .bind(task.who.object.as_str())
            .push(",")
            .bind(task.who.id.as_str())
            .push(",")
            .bind(task.owner.as_ref().map(|o| o.as_str().to_owned()))
            .push(",")
            .bind(task.description.clone())
            .push(",")
            .bind(cont)
            .push(",")
            .bind(stamp())
            .push(
                ") ON CONFLICT (tenant_id, call_id) DO UPDATE SET task_id = excluded.task_id, \
                 who_object = excluded.who_object, who_id = excluded.who_id, \
                 owner_id = excluded.owner_id, description = excluded.description, \
                 continuations = excluded.continuations, updated_at = excluded.updated_at",
            );
        q.execute(&self.db)
            .await
            .map_err(|e| db_err("save call task", e))?;
        Ok(())
    }
}

#[async_trait]
impl DirectoryStore for Store {
    async fn save_users(&self, t: &TenantId, users: &[SfUser]) -> Result<(), StoreError> {
        let txn = self.begin_write().await?;
        let mut q = Sql::new("DELETE FROM sf_users WHERE tenant_id = ");
        q.bind(t.as_str());
        q.execute(&txn).await.map_err(|e| db_err("save users", e))?;
        // Salesforce never lists a user twice, but a statement may not insert one key twice.
        let mut seen = std::collections::HashSet::new();
        let users: Vec<&SfUser> = users
            .iter()
            .filter(|u| seen.insert(u.id.as_str()))
            .collect();
        // 5 values and the shared tenant per row.
        for chunk in shaped(&users, rows_per_statement(6)) {
            let mut q = Sql::new(
                "INSERT INTO sf_users (tenant_id, user_id, name, email, email_lower, active) VALUES ",
            );
            let tp = q.param(t.as_str());
            for (i, u) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(",");
                }
                q.push("(")
                    .push(&tp)
                    .push(",")
                    .bind(u.id.as_str())
                    .push(",")
                    .bind(u.name.clone())
                    .push(",")
                    .bind(u.email.as_ref().map(|e| e.as_str().to_owned()))
                    .push(",")
                    .bind(u.email.as_ref().map(|e| e.key().to_owned()))
                    .push(",")
                    .bind(u.active)
                    .push(")");
            }
            q.execute(&txn).await.map_err(|e| db_err("save users", e))?;
        }
        txn.commit().await.map_err(|e| db_err("save users", e))
    }

    async fn users(&self, t: &TenantId) -> Result<Vec<SfUser>, StoreError> {
        sf_user::Entity::find()
            .filter(sf_user::Column::TenantId.eq(t.as_str()))
            .order_by_asc(sf_user::Column::UserId)
            .all(&self.db)
            .await
            .map_err(|e| db_err("load users", e))?
            .into_iter()
            .map(convert::sf_user)
            .collect()
    }

    async fn members(&self, t: &TenantId) -> Result<Vec<Member>, StoreError> {
        Ok(member::Entity::find()
            .filter(member::Column::TenantId.eq(t.as_str()))
            .order_by_asc(member::Column::ExternalId)
            .all(&self.db)
            .await
            .map_err(|e| db_err("load members", e))?
            .into_iter()
            .map(convert::member)
            .collect())
    }
}

#[async_trait]
impl SyncRunStore for Store {
    async fn start_run(
        &self,
        t: &TenantId,
        kind: SyncKind,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let report = serde_json::to_string(&SyncReport::default())
            .map_err(|e| json_err("sync report", e))?;
        let mut q =
            Sql::new("INSERT INTO sync_runs (tenant_id, kind, started_at, report) VALUES (");
        q.bind(t.as_str())
            .push(",")
            .bind(kind_str(kind))
            .push(",")
            .bind(now)
            .push(",")
            .bind(report)
            .push(") RETURNING id");
        let row = q
            .one(&self.db)
            .await
            .map_err(|e| db_err("start sync run", e))?
            .ok_or_else(|| StoreError::Unavailable("start sync run returned nothing".into()))?;
        row.try_get("", "id")
            .map_err(|e| db_err("start sync run", e))
    }

    async fn update_run(
        &self,
        t: &TenantId,
        run_id: i64,
        report: &SyncReport,
        finished: Option<(DateTime<Utc>, bool)>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(report).map_err(|e| json_err("sync report", e))?;
        let mut q = Sql::new("UPDATE sync_runs SET report = ");
        q.bind(json);
        if let Some((at, ok)) = finished {
            q.push(", finished_at = ").bind(at).push(", ok = ").bind(ok);
        }
        q.push(" WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND id = ")
            .bind(run_id);
        let n = q
            .execute(&self.db)
            .await
            .map_err(|e| db_err("update sync run", e))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "sync run {run_id} of tenant {t}"
            )));
        }
        Ok(())
    }

    async fn runs(&self, t: &TenantId, limit: u64) -> Result<Vec<SyncRun>, StoreError> {
        sync_run::Entity::find()
            .filter(sync_run::Column::TenantId.eq(t.as_str()))
            .order_by_desc(sync_run::Column::StartedAt)
            .order_by_desc(sync_run::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| db_err("sync runs", e))?
            .into_iter()
            .map(|m| {
                Ok(SyncRun {
                    id: m.id,
                    kind: kind_parse(&m.kind)?,
                    started_at: m.started_at,
                    finished_at: m.finished_at,
                    ok: m.ok,
                    report: serde_json::from_str(&m.report)
                        .map_err(|e| json_err("sync_runs.report", e))?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Locks for Store {
    async fn try_lock(
        &self,
        t: &TenantId,
        key: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|_| StoreError::Conflict("lock ttl out of range".into()))?;
        // Acquire when free or expired, renew when ours; otherwise the conditional update
        // touches nothing and returns no row.
        let mut q =
            Sql::new("INSERT INTO locks (tenant_id, lock_key, holder, expires_at) VALUES (");
        q.bind(t.as_str())
            .push(",")
            .bind(key)
            .push(",")
            .bind(holder)
            .push(",")
            .bind(now + ttl)
            .push(
                ") ON CONFLICT (tenant_id, lock_key) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at WHERE locks.holder = excluded.holder \
                 OR locks.expires_at <= ",
            )
            .bind(now)
            .push(" RETURNING holder");
        Ok(q.one(&self.db)
            .await
            .map_err(|e| db_err("try lock", e))?
            .is_some())
    }

    async fn unlock(&self, t: &TenantId, key: &str, holder: &str) -> Result<(), StoreError> {
        let mut q = Sql::new("DELETE FROM locks WHERE tenant_id = ");
        q.bind(t.as_str())
            .push(" AND lock_key = ")
            .bind(key)
            .push(" AND holder = ")
            .bind(holder);
        q.execute(&self.db).await.map_err(|e| db_err("unlock", e))?;
        Ok(())
    }
}

//! `WorkQueue`: the outbox the workers drain (ENGINEERING §10).
//!
//! States: `ready` (due at `due_at`), `waiting` (retry scheduled at `due_at`), `leased`
//! (claimed until `lease_expires_at`), `held` (tenant-wide cause, released by
//! `release_held`), `dead` (visible to admins, retryable), `done`. Rows are never deleted
//! except done ones by [`Store::purge_done`].
//!
//! A claim is one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`: atomic on SQLite
//! (one writer at a time), and on PostgreSQL the inner select takes `FOR UPDATE SKIP LOCKED`
//! so concurrent claimers split the work instead of waiting on each other. An expired lease
//! is claimable like a due item; every claim counts as an attempt and gets a fresh token, so
//! the previous holder's `complete`/`retry_at`/… are refused with `Conflict`.

use crate::convert;
use crate::entity::work_item;
use crate::error::{db_err, json_err};
use crate::sql::Sql;
use crate::store::{Store, stamp};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{FailedItem, Failure, HoldReason, QueueDepth, WorkItem, WorkKind, WorkQueue};
use domain::{ErrorClass, StoreError, TenantId};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::time::Duration;

pub(crate) async fn enqueue<C: ConnectionTrait>(
    c: &C,
    t: &TenantId,
    kind: &WorkKind,
    due_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let json = serde_json::to_string(kind).map_err(|e| json_err("work kind", e))?;
    let mut q = Sql::new(
        "INSERT INTO work_items (tenant_id, kind, state, attempts, due_at, created_at, updated_at) \
         VALUES (",
    );
    let np = q.param(stamp());
    q.bind(t.as_str())
        .push(",")
        .bind(json)
        .push(",'ready',0,")
        .bind(due_at)
        .push(",")
        .push(&np)
        .push(",")
        .push(&np)
        .push(") RETURNING id");
    let row = q
        .one(c)
        .await
        .map_err(|e| db_err("enqueue", e))?
        .ok_or_else(|| StoreError::Unavailable("enqueue returned nothing".into()))?;
    row.try_get("", "id").map_err(|e| db_err("enqueue", e))
}

fn hold_str(r: HoldReason) -> &'static str {
    match r {
        HoldReason::NeedsReconnect => "needs_reconnect",
        HoldReason::Throttled => "throttled",
    }
}

fn lease_lost(item: &WorkItem) -> StoreError {
    StoreError::Conflict(format!(
        "the lease on work item {} was lost (expired and claimed again, or already finished)",
        item.id
    ))
}

impl Store {
    /// Queues work due at `due_at` (the worker's own follow-ups; intake uses `accept`).
    pub async fn enqueue(
        &self,
        t: &TenantId,
        kind: &WorkKind,
        due_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        enqueue(&self.db, t, kind, due_at).await
    }

    /// Deletes done items finished before `before` (all tenants; maintenance). Dead, held and
    /// pending items are never deleted.
    pub async fn purge_done(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut q = Sql::new("DELETE FROM work_items WHERE state = 'done' AND updated_at < ");
        q.bind(before);
        q.execute(&self.db)
            .await
            .map_err(|e| db_err("purge done items", e))
    }

    /// Ends a leased item in `state`, provided the lease is still this item's.
    async fn finish(
        &self,
        item: &WorkItem,
        set: &str,
        values: impl FnOnce(&mut Sql),
    ) -> Result<(), StoreError> {
        let mut q = Sql::new(
            "UPDATE work_items SET lease_token = NULL, leased_by = NULL, lease_expires_at = NULL, ",
        );
        q.push(set);
        values(&mut q);
        q.push(", updated_at = ")
            .bind(stamp())
            .push(" WHERE id = ")
            .bind(item.id)
            .push(" AND tenant_id = ")
            .bind(item.tenant.as_str())
            .push(" AND state = 'leased' AND lease_token = ")
            .bind(item.lease_token.clone());
        let n = q
            .execute(&self.db)
            .await
            .map_err(|e| db_err("finish work item", e))?;
        if n == 0 {
            Err(lease_lost(item))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl WorkQueue for Store {
    async fn claim(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<WorkItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease = chrono::Duration::from_std(lease)
            .map_err(|_| StoreError::Conflict("lease duration out of range".into()))?;
        let token = uuid::Uuid::new_v4().to_string();
        let mut q = Sql::new("UPDATE work_items SET state = 'leased', lease_token = ");
        let np = q.param(now);
        q.bind(token.clone())
            .push(", leased_by = ")
            .bind(worker)
            .push(", lease_expires_at = ")
            .bind(now + lease)
            .push(", attempts = attempts + 1, updated_at = ")
            .push(&np)
            .push(
                " WHERE id IN (SELECT id FROM work_items WHERE \
                 (state IN ('ready', 'waiting') AND due_at <= ",
            )
            .push(&np)
            .push(") OR (state = 'leased' AND lease_expires_at <= ")
            .push(&np)
            .push(") ORDER BY due_at, id LIMIT ")
            .bind(i64::from(limit));
        if self.is_pg() {
            q.push(" FOR UPDATE SKIP LOCKED");
        }
        q.push(") RETURNING id, tenant_id, kind, attempts");
        let rows = q.all(&self.db).await.map_err(|e| db_err("claim work", e))?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let get = |c: &str| -> Result<String, StoreError> {
                row.try_get::<String>("", c)
                    .map_err(|e| db_err("claim work", e))
            };
            let id: i64 = row.try_get("", "id").map_err(|e| db_err("claim work", e))?;
            let attempts: i32 = row
                .try_get("", "attempts")
                .map_err(|e| db_err("claim work", e))?;
            let parsed = convert::tenant_id(&get("tenant_id")?).and_then(|tenant| {
                serde_json::from_str::<WorkKind>(&get("kind")?)
                    .map(|kind| (tenant, kind))
                    .map_err(|e| json_err("work_items.kind", e))
            });
            let item = match parsed {
                Ok((tenant, kind)) => WorkItem {
                    id,
                    tenant,
                    kind,
                    attempts: u32::try_from(attempts.saturating_sub(1)).unwrap_or(0),
                    lease_token: token.clone(),
                },
                Err(e) => {
                    // A row no worker can run would be claimed forever: set it aside.
                    tracing::error!(item = id, error = %e, "unreadable work item dead-lettered");
                    let failure = Failure {
                        class: ErrorClass::BadData,
                        code: "UNREADABLE_WORK_ITEM".into(),
                        message_en: format!("The queued item could not be read: {e}"),
                        message_ja: format!("キューの項目を読み取れませんでした: {e}"),
                        fix_en: None,
                        fix_ja: None,
                    };
                    let json = serde_json::to_string(&failure).unwrap_or_default();
                    let mut d = Sql::new(
                        "UPDATE work_items SET state = 'dead', lease_token = NULL, last_failure = ",
                    );
                    d.bind(json)
                        .push(", failed_at = ")
                        .bind(now)
                        .push(" WHERE id = ")
                        .bind(id);
                    d.execute(&self.db)
                        .await
                        .map_err(|e| db_err("claim work", e))?;
                    continue;
                }
            };
            items.push(item);
        }
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn complete(&self, item: &WorkItem) -> Result<(), StoreError> {
        self.finish(item, "state = 'done'", |_| {}).await
    }

    async fn retry_at(
        &self,
        item: &WorkItem,
        at: DateTime<Utc>,
        why: &Failure,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(why).map_err(|e| json_err("failure", e))?;
        self.finish(item, "state = 'waiting', due_at = ", |q| {
            q.bind(at).push(", last_failure = ").bind(json);
        })
        .await
    }

    async fn defer(
        &self,
        item: &WorkItem,
        at: DateTime<Utc>,
        why: &Failure,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(why).map_err(|e| json_err("failure", e))?;
        // The claim counted an attempt; waiting for another worker is not one.
        self.finish(
            item,
            "state = 'waiting', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, due_at = ",
            |q| {
                q.bind(at).push(", last_failure = ").bind(json);
            },
        )
        .await
    }

    async fn hold(
        &self,
        item: &WorkItem,
        reason: HoldReason,
        why: &Failure,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(why).map_err(|e| json_err("failure", e))?;
        self.finish(item, "state = 'held', hold_reason = ", |q| {
            q.bind(hold_str(reason))
                .push(", last_failure = ")
                .bind(json);
        })
        .await
    }

    async fn dead_letter(
        &self,
        item: &WorkItem,
        why: &Failure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(why).map_err(|e| json_err("failure", e))?;
        self.finish(item, "state = 'dead', last_failure = ", |q| {
            q.bind(json).push(", failed_at = ").bind(now);
        })
        .await
    }

    async fn release_held(&self, t: &TenantId, reason: HoldReason) -> Result<u64, StoreError> {
        let mut q =
            Sql::new("UPDATE work_items SET state = 'ready', hold_reason = NULL, updated_at = ");
        q.bind(stamp())
            .push(" WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND state = 'held' AND hold_reason = ")
            .bind(hold_str(reason));
        q.execute(&self.db)
            .await
            .map_err(|e| db_err("release held items", e))
    }

    async fn retry_dead(&self, t: &TenantId, item_id: i64) -> Result<bool, StoreError> {
        // Attempts restart so the worker's backoff policy starts over; the last failure stays
        // for the record.
        let mut q = Sql::new("UPDATE work_items SET state = 'ready', attempts = 0, updated_at = ");
        q.bind(stamp())
            .push(" WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND id = ")
            .bind(item_id)
            .push(" AND state = 'dead'");
        Ok(q.execute(&self.db)
            .await
            .map_err(|e| db_err("retry dead item", e))?
            > 0)
    }

    async fn failed(&self, t: &TenantId, limit: u64) -> Result<Vec<FailedItem>, StoreError> {
        work_item::Entity::find()
            .filter(work_item::Column::TenantId.eq(t.as_str()))
            .filter(work_item::Column::State.eq("dead"))
            .order_by_desc(work_item::Column::FailedAt)
            .order_by_desc(work_item::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| db_err("failed items", e))?
            .into_iter()
            .map(|m| {
                let kind: WorkKind =
                    serde_json::from_str(&m.kind).map_err(|e| json_err("work_items.kind", e))?;
                let failure: Failure =
                    serde_json::from_str(m.last_failure.as_deref().unwrap_or("null"))
                        .map_err(|e| json_err("work_items.last_failure", e))?;
                Ok(FailedItem {
                    id: m.id,
                    kind,
                    attempts: u32::try_from(m.attempts).unwrap_or(0),
                    failure,
                    failed_at: m.failed_at.unwrap_or(m.updated_at),
                })
            })
            .collect()
    }

    async fn depth(&self, t: &TenantId) -> Result<QueueDepth, StoreError> {
        let mut q = Sql::new("SELECT state, COUNT(*) AS n FROM work_items WHERE tenant_id = ");
        q.bind(t.as_str()).push(" GROUP BY state");
        let mut d = QueueDepth::default();
        for row in q
            .all(&self.db)
            .await
            .map_err(|e| db_err("queue depth", e))?
        {
            let state: String = row
                .try_get("", "state")
                .map_err(|e| db_err("queue depth", e))?;
            let n: i64 = row.try_get("", "n").map_err(|e| db_err("queue depth", e))?;
            let n = u64::try_from(n).unwrap_or(0);
            match state.as_str() {
                "ready" => d.ready += n,
                "leased" => d.leased += n,
                "waiting" => d.waiting += n,
                "held" => d.held += n,
                "dead" => d.dead += n,
                _ => {}
            }
        }
        Ok(d)
    }
}

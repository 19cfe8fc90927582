//! `EventLog`: durable intake of call events (SPEC "Call events", R25, R27).
//!
//! `accept` commits, in one transaction, the raw payload and parsed event, the member and
//! customer the webhook carries, and one queue item — or nothing at all when the event's
//! identity (tenant, call id, event) was stored before.

use crate::convert;
use crate::customers::insert_customer_sql;
use crate::entity::call_event;
use crate::error::{db_err, json_err};
use crate::queue::enqueue;
use crate::sql::Sql;
use crate::store::{Store, stamp};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{Accepted, EventLog, EventOutcome, RawPayload, StoredEvent, WorkKind};
use domain::{
    CallEvent, CallId, ContactInfo, EmailAddress, MemberInfo, PhoneNumber, StoreError, TenantId,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};

/// Upserts a member by external id. `keep_existing`: a webhook only adds what it carries,
/// it never clears a known name or email.
pub(crate) async fn upsert_member<C: ConnectionTrait>(
    c: &C,
    t: &TenantId,
    external_id: &str,
    name: Option<String>,
    email: Option<EmailAddress>,
    keep_existing: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut q = Sql::new(
        "INSERT INTO members (tenant_id, external_id, name, email, email_lower, updated_at) VALUES (",
    );
    q.bind(t.as_str())
        .push(",")
        .bind(external_id)
        .push(",")
        .bind(name)
        .push(",")
        .bind(email.as_ref().map(|e| e.as_str().to_owned()))
        .push(",")
        .bind(email.as_ref().map(|e| e.key().to_owned()))
        .push(",")
        .bind(now)
        .push(") ON CONFLICT (tenant_id, external_id) DO UPDATE SET ");
    if keep_existing {
        q.push(
            "name = COALESCE(excluded.name, members.name), \
             email = COALESCE(excluded.email, members.email), \
             email_lower = COALESCE(excluded.email_lower, members.email_lower), ",
        );
    } else {
        q.push(
            "name = excluded.name, email = excluded.email, email_lower = excluded.email_lower, ",
        );
    }
    q.push("updated_at = excluded.updated_at");
    q.execute(c).await.map_err(|e| db_err("upsert member", e))?;
    Ok(())
}

async fn member_from_webhook(
    txn: &DatabaseTransaction,
    t: &TenantId,
    m: &MemberInfo,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(external_id) = convert::non_empty(m.external_id.as_deref()) else {
        return Ok(());
    };
    let email = m.email.as_deref().and_then(|e| EmailAddress::parse(e).ok());
    upsert_member(
        txn,
        t,
        &external_id,
        convert::non_empty(m.name.as_deref()),
        email,
        true,
        now,
    )
    .await
}

/// Creates the customer for an unknown number; for a known one fills only empty fields, so
/// data that came from Salesforce is never overwritten (R18).
async fn customer_from_webhook(
    txn: &DatabaseTransaction,
    t: &TenantId,
    number: &PhoneNumber,
    c: &ContactInfo,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut q = insert_customer_sql(
        t,
        number,
        [&c.name, &c.company, &c.email, &c.address, &c.memo],
        now,
    );
    q.push(
        ") ON CONFLICT (tenant_id, e164) DO UPDATE SET \
             name = COALESCE(NULLIF(customers.name, ''), excluded.name), \
             company = COALESCE(NULLIF(customers.company, ''), excluded.company), \
             email = COALESCE(NULLIF(customers.email, ''), excluded.email), \
             address = COALESCE(NULLIF(customers.address, ''), excluded.address), \
             memo = COALESCE(NULLIF(customers.memo, ''), excluded.memo), \
             updated_at = excluded.updated_at",
    );
    q.execute(txn)
        .await
        .map_err(|e| db_err("upsert customer from webhook", e))?;
    Ok(())
}

fn stored(m: call_event::Model) -> Result<StoredEvent, StoreError> {
    let event: CallEvent =
        serde_json::from_str(&m.parsed).map_err(|e| json_err("call_events.parsed", e))?;
    let outcome = match m.outcome.as_deref() {
        Some(o) => Some(serde_json::from_str(o).map_err(|e| json_err("call_events.outcome", e))?),
        None => None,
    };
    Ok(StoredEvent {
        id: m.id,
        event,
        received_at: m.received_at,
        request_id: m.request_id,
        outcome,
    })
}

impl Store {
    /// The webhook as received, for audit and replay.
    pub async fn raw_payload(
        &self,
        t: &TenantId,
        event_id: i64,
    ) -> Result<Option<RawPayload>, StoreError> {
        Ok(self.event_row(t, event_id).await?.map(|m| RawPayload {
            content_type: m.content_type,
            body: m.raw_body,
            request_id: m.request_id,
        }))
    }

    /// What processing did with the event (R40), once recorded.
    pub async fn event_outcome(
        &self,
        t: &TenantId,
        event_id: i64,
    ) -> Result<Option<EventOutcome>, StoreError> {
        match self.event_row(t, event_id).await?.and_then(|m| m.outcome) {
            Some(o) => serde_json::from_str(&o)
                .map(Some)
                .map_err(|e| json_err("call_events.outcome", e)),
            None => Ok(None),
        }
    }

    async fn event_row(
        &self,
        t: &TenantId,
        event_id: i64,
    ) -> Result<Option<call_event::Model>, StoreError> {
        call_event::Entity::find()
            .filter(call_event::Column::TenantId.eq(t.as_str()))
            .filter(call_event::Column::Id.eq(event_id))
            .one(&self.db)
            .await
            .map_err(|e| db_err("get event", e))
    }
}

#[async_trait]
impl EventLog for Store {
    async fn accept(
        &self,
        t: &TenantId,
        raw: &RawPayload,
        event: &CallEvent,
        now: DateTime<Utc>,
    ) -> Result<Accepted, StoreError> {
        let parsed = serde_json::to_string(event).map_err(|e| json_err("call event", e))?;
        let txn = self.begin_write().await?;
        let mut q = Sql::new(
            "INSERT INTO call_events (tenant_id, call_id, event, content_type, raw_body, parsed, \
             received_at, request_id) VALUES (",
        );
        q.bind(t.as_str())
            .push(",")
            .bind(event.call_id.as_str())
            .push(",")
            .bind(event.kind.as_str())
            .push(",")
            .bind(raw.content_type.clone())
            .push(",")
            .bind(raw.body.clone())
            .push(",")
            .bind(parsed)
            .push(",")
            .bind(now)
            .push(",")
            .bind(raw.request_id.clone())
            .push(") ON CONFLICT (tenant_id, call_id, event) DO NOTHING RETURNING id");
        let inserted = q.one(&txn).await.map_err(|e| db_err("store event", e))?;
        let Some(row) = inserted else {
            let mut q = Sql::new("SELECT id FROM call_events WHERE tenant_id = ");
            q.bind(t.as_str())
                .push(" AND call_id = ")
                .bind(event.call_id.as_str())
                .push(" AND event = ")
                .bind(event.kind.as_str());
            let row = q
                .one(&txn)
                .await
                .map_err(|e| db_err("find duplicate event", e))?
                .ok_or_else(|| StoreError::Unavailable("duplicate event vanished".into()))?;
            let event_id: i64 = row
                .try_get("", "id")
                .map_err(|e| db_err("find duplicate event", e))?;
            txn.rollback().await.map_err(|e| db_err("store event", e))?;
            return Ok(Accepted::Duplicate { event_id });
        };
        let event_id: i64 = row
            .try_get("", "id")
            .map_err(|e| db_err("store event", e))?;
        if let Some(m) = &event.member {
            member_from_webhook(&txn, t, m, now).await?;
        }
        if let Some(n) = event.party.number() {
            customer_from_webhook(&txn, t, n, &event.contact, now).await?;
        }
        let kind = WorkKind::CallEvent {
            event_id,
            call_id: event.call_id.clone(),
            event: event.kind,
        };
        enqueue(&txn, t, &kind, now).await?;
        txn.commit().await.map_err(|e| db_err("store event", e))?;
        Ok(Accepted::New { event_id })
    }

    async fn event(&self, t: &TenantId, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.event_row(t, event_id).await?.map(stored).transpose()
    }

    async fn call_events(
        &self,
        t: &TenantId,
        call: &CallId,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        call_event::Entity::find()
            .filter(call_event::Column::TenantId.eq(t.as_str()))
            .filter(call_event::Column::CallId.eq(call.as_str()))
            .order_by_asc(call_event::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| db_err("call events", e))?
            .into_iter()
            .map(stored)
            .collect()
    }

    async fn set_outcome(
        &self,
        t: &TenantId,
        event_id: i64,
        o: &EventOutcome,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(o).map_err(|e| json_err("event outcome", e))?;
        let mut q = Sql::new("UPDATE call_events SET outcome = ");
        q.bind(json)
            .push(", outcome_at = ")
            .bind(stamp())
            .push(" WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND id = ")
            .bind(event_id);
        let n = q
            .execute(&self.db)
            .await
            .map_err(|e| db_err("set outcome", e))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "event {event_id} of tenant {t}"
            )));
        }
        Ok(())
    }
}

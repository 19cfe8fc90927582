//! `CustomerStore` and the admin's customer operations: the customer book (R18), imports
//! applied page by page (R16, R17), dedupe losers (R14) and write-back bookkeeping (R11).

use crate::convert;
use crate::entity::{customer, duplicate, watermark};
use crate::error::db_err;
use crate::sql::{IN_LIST, Sql, rows_per_statement, shaped};
use crate::store::{Store, stamp};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{CustomerChanges, CustomerStore, CustomerUpdate, DuplicateEntry, NewCustomer};
use domain::{
    Customer, CustomerFields, CustomerId, PhoneNumber, SalesforceRecordRef, SfLink, SfObject,
    StoreError, SyncedField, TenantId,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::{HashMap, HashSet};
use tracing::Instrument as _;

/// Placeholders per row of a customer insert: 10 values plus the shared tenant and time
/// (twice), which SQLite binds at every use.
const CUSTOMER_PLACEHOLDERS: usize = 13;
/// Placeholders per row of a duplicates upsert: 6 values plus the shared tenant and time.
const DUPLICATE_PLACEHOLDERS: usize = 8;

const CUSTOMER_COLUMNS: &str = "id, tenant_id, e164, raw_number, name, company, email, address, \
     memo, record_object, record_id, system_modstamp, dirty, edited_at, created_at, updated_at";

/// An admin's edit of a customer in the phone system. `None` leaves a field as it is;
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerEdit {
    pub number: Option<PhoneNumber>,
    pub name: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub memo: Option<Option<String>>,
}

/// Which customers an admin lists; keyset-paginated by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFilter {
    /// A number in any formatting (exact match on its E.164), or text matched
    /// case-insensitively against name, company and email.
    pub search: Option<String>,
    /// Only linked (`Some(true)`) or unlinked (`Some(false)`) customers.
    pub linked: Option<bool>,
    /// Customers with an id greater than this (the last id of the previous page).
    pub after: Option<CustomerId>,
    pub limit: u64,
}

impl Default for CustomerFilter {
    fn default() -> Self {
        Self {
            search: None,
            linked: None,
            after: None,
            limit: 100,
        }
    }
}

fn models(rows: Vec<sea_orm::QueryResult>) -> Result<Vec<customer::Model>, StoreError> {
    rows.iter()
        .map(|r| customer::Model::from_query_result(r, "").map_err(|e| db_err("read customer", e)))
        .collect()
}

fn link_parts(link: Option<&SfLink>) -> (Option<String>, Option<String>, Option<DateTime<Utc>>) {
    match link {
        Some(l) => (
            Some(l.record.object.as_str().to_owned()),
            Some(l.record.id.as_str().to_owned()),
            l.system_modstamp,
        ),
        None => (None, None, None),
    }
}

/// Multi-row insert of new customers; a number that exists already takes the Salesforce
/// data when that customer is unlinked or linked to the same record (a webhook created it
/// first, or a page is replayed). Returns how many rows were written; fewer than
/// `creates.len()` means some creates met a customer linked to another record.
///
/// On SQLite each chunk is first inserted skipping numbers that exist: that statement cannot
/// abort half-way, so SQLite keeps no statement journal for it (see the migration
/// `m20261126_000001_customers_deferred_fk`; the journal copied every index page an import
/// touched). Only a chunk where a number was skipped is written again with the merge, which
/// also meets the chunk's own new rows and rewrites them with the same values.
///
/// No `RETURNING`: sqlx ships every returned row through a channel to the async side, which
/// cost more than the insert itself.
async fn insert_customers(
    txn: &DatabaseTransaction,
    t: &TenantId,
    creates: &[NewCustomer],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let backend = txn.get_database_backend();
    let first = if backend == sea_orm::DbBackend::Sqlite {
        OnNumberTaken::Skip
    } else {
        OnNumberTaken::Merge
    };
    let build = |chunk: &[NewCustomer], taken| insert_rows(t, chunk, now, taken).statement(backend);
    let chunks: Vec<&[NewCustomer]> =
        shaped(creates, rows_per_statement(CUSTOMER_PLACEHOLDERS)).collect();
    let mut written = 0;
    let mut next = chunks.first().map(|c| build(c, first));
    for (i, chunk) in chunks.iter().enumerate() {
        let Some(statement) = next.take() else { break };
        // The next chunk's statement is built while this one runs on SQLite's thread: a
        // statement of ~2,000 rows takes milliseconds to build, which the writer otherwise
        // spent waiting.
        let (done, built) = futures::future::join(txn.execute_raw(statement), async {
            chunks.get(i + 1).map(|c| build(c, first))
        })
        .await;
        next = built;
        let done = done
            .map_err(|e| db_err("insert customers", e))?
            .rows_affected();
        if first == OnNumberTaken::Merge || done == chunk.len() as u64 {
            written += done;
            continue;
        }
        written += txn
            .execute_raw(build(chunk, OnNumberTaken::Merge))
            .await
            .map_err(|e| db_err("insert customers", e))?
            .rows_affected();
    }
    Ok(written)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnNumberTaken {
    /// Insert nothing for that row (`INSERT OR FAIL`: no other constraint is expected to
    /// fail, and if one did, the statement stops and the transaction is rolled back).
    Skip,
    /// Merge into the customer holding the number when it is unlinked or linked to the same
    /// record.
    Merge,
}

fn insert_rows(
    t: &TenantId,
    chunk: &[NewCustomer],
    now: DateTime<Utc>,
    taken: OnNumberTaken,
) -> Sql {
    let mut q = Sql::with_capacity(
        match taken {
            OnNumberTaken::Skip => "INSERT OR FAIL INTO",
            OnNumberTaken::Merge => "INSERT INTO",
        },
        chunk.len() * CUSTOMER_PLACEHOLDERS,
    );
    q.push(
        " customers (tenant_id, e164, raw_number, name, company, email, address, memo, \
         record_object, record_id, system_modstamp, dirty, created_at, updated_at) VALUES ",
    );
    let tp = q.param(t.as_str());
    let np = q.param(now);
    for (i, c) in chunk.iter().enumerate() {
        if i > 0 {
            q.push(",");
        }
        let (o, id, ms) = link_parts(c.link.as_ref());
        q.push("(")
            .push(&tp)
            .push(",")
            .bind(c.number.e164())
            .push(",")
            .bind(c.number.raw())
            .push(",")
            .bind(c.fields.name.clone())
            .push(",")
            .bind(c.fields.company.clone())
            .push(",")
            .bind(c.fields.email.clone())
            .push(",")
            .bind(c.fields.address.clone())
            .push(",")
            .bind(c.fields.memo.clone())
            .push(",")
            .bind(o)
            .push(",")
            .bind(id)
            .push(",")
            .bind(ms)
            .push(",'[]',")
            .push(&np)
            .push(",")
            .push(&np)
            .push(")");
    }
    q.push(match taken {
        OnNumberTaken::Skip => " ON CONFLICT (tenant_id, e164) DO NOTHING",
        OnNumberTaken::Merge => {
            " ON CONFLICT (tenant_id, e164) DO UPDATE SET raw_number = excluded.raw_number, \
             name = excluded.name, company = excluded.company, email = excluded.email, \
             address = excluded.address, memo = excluded.memo, \
             record_object = excluded.record_object, record_id = excluded.record_id, \
             system_modstamp = excluded.system_modstamp, updated_at = excluded.updated_at \
             WHERE customers.record_id IS NULL OR customers.record_id = excluded.record_id"
        }
    });
    q
}

async fn update_customer(
    txn: &DatabaseTransaction,
    t: &TenantId,
    u: &CustomerUpdate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (o, id, ms) = link_parts(u.link.as_ref());
    let mut q = Sql::new("UPDATE customers SET e164 = ");
    q.bind(u.number.e164())
        .push(", raw_number = ")
        .bind(u.number.raw())
        .push(", name = ")
        .bind(u.fields.name.clone())
        .push(", company = ")
        .bind(u.fields.company.clone())
        .push(", email = ")
        .bind(u.fields.email.clone())
        .push(", address = ")
        .bind(u.fields.address.clone())
        .push(", memo = ")
        .bind(u.fields.memo.clone())
        .push(", record_object = ")
        .bind(o)
        .push(", record_id = ")
        .bind(id)
        .push(", system_modstamp = ")
        .bind(ms)
        .push(", dirty = ")
        .bind(convert::dirty_json(&u.dirty))
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE tenant_id = ")
        .bind(t.as_str())
        .push(" AND id = ")
        .bind(u.id.0);
    let n = q
        .execute(txn)
        .await
        .map_err(|e| db_err("update customer", e))?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "customer {} of tenant {t}",
            u.id
        )));
    }
    Ok(())
}

async fn upsert_duplicates(
    txn: &DatabaseTransaction,
    t: &TenantId,
    dups: &[DuplicateEntry],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // One row per losing record; the last entry for a record wins (a statement may not
    // touch the same row twice).
    let mut last: HashMap<&str, &DuplicateEntry> = HashMap::new();
    let mut order = Vec::new();
    for d in dups {
        if last.insert(d.record.id.as_str(), d).is_none() {
            order.push(d.record.id.as_str());
        }
    }
    let unique: Vec<&DuplicateEntry> = order.iter().filter_map(|k| last.get(k).copied()).collect();
    let per_chunk = rows_per_statement(DUPLICATE_PLACEHOLDERS);
    for chunk in shaped(&unique, per_chunk) {
        let mut q = Sql::new(
            "INSERT INTO duplicates (tenant_id, number, record_object, record_id, winner_object, \
             winner_id, system_modstamp, recorded_at) VALUES ",
        );
        let tp = q.param(t.as_str());
        let np = q.param(now);
        for (i, d) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(",");
            }
            q.push("(")
                .push(&tp)
                .push(",")
                .bind(d.number.clone())
                .push(",")
                .bind(d.record.object.as_str())
                .push(",")
                .bind(d.record.id.as_str())
                .push(",")
                .bind(d.winner.object.as_str())
                .push(",")
                .bind(d.winner.id.as_str())
                .push(",")
                .bind(d.system_modstamp)
                .push(",")
                .push(&np)
                .push(")");
        }
        q.push(
            " ON CONFLICT (tenant_id, record_id) DO UPDATE SET number = excluded.number, \
             record_object = excluded.record_object, winner_object = excluded.winner_object, \
             winner_id = excluded.winner_id, system_modstamp = excluded.system_modstamp, \
             recorded_at = excluded.recorded_at",
        );
        q.execute(txn)
            .await
            .map_err(|e| db_err("record duplicates", e))?;
    }
    Ok(())
}

/// Creates whose number belongs to a customer linked to another record lose to it (R14:
/// the record already linked wins) and are recorded as duplicates, not dropped.
async fn record_displaced_creates(
    txn: &DatabaseTransaction,
    t: &TenantId,
    creates: &[NewCustomer],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let numbers: Vec<String> = creates
        .iter()
        .filter(|c| c.link.is_some())
        .map(|c| c.number.e164().to_owned())
        .collect();
    let holders = find_numbers(txn, t, &numbers).await?;
    let by_number: HashMap<&str, &Customer> =
        holders.iter().map(|c| (c.number.e164(), c)).collect();
    let mut entries = Vec::new();
    for c in creates {
        let (Some(link), Some(holder)) = (c.link.as_ref(), by_number.get(c.number.e164())) else {
            continue;
        };
        match holder.link.as_ref() {
            Some(winner) if winner.record != link.record => {
                tracing::warn!(
                    tenant = %t, record = %link.record, winner = %winner.record,
                    "import create displaced by a customer linked to another record"
                );
                entries.push(DuplicateEntry {
                    number: c.number.e164().to_owned(),
                    record: link.record.clone(),
                    winner: winner.record.clone(),
                    system_modstamp: link.system_modstamp.unwrap_or(now),
                });
            }
            _ => {}
        }
    }
    upsert_duplicates(txn, t, &entries, now).await
}

async fn find_numbers<C: ConnectionTrait>(
    c: &C,
    t: &TenantId,
    e164: &[String],
) -> Result<Vec<Customer>, StoreError> {
    let mut out = Vec::new();
    for chunk in shaped(e164, IN_LIST) {
        let rows = customer::Entity::find()
            .filter(customer::Column::TenantId.eq(t.as_str()))
            .filter(customer::Column::E164.is_in(chunk.iter().map(String::as_str)))
            .all(c)
            .await
            .map_err(|e| db_err("find customers by number", e))?;
        for m in rows {
            out.push(convert::customer(m)?);
        }
    }
    Ok(out)
}

fn changed(current: &Option<String>, new: &Option<Option<String>>) -> Option<Option<String>> {
    match new {
        Some(v) => {
            let v = convert::non_empty(v.as_deref());
            (v != *current).then_some(v)
        }
        None => None,
    }
}

/// `INSERT INTO customers … VALUES (…)` for a new, clean customer, without the closing
/// parenthesis: callers add `)` and their own `RETURNING` or `ON CONFLICT` clause.
/// `fields` are name, company, email, address and memo, in that order.
pub(crate) fn insert_customer_sql(
    t: &TenantId,
    number: &PhoneNumber,
    fields: [&Option<String>; 5],
    now: DateTime<Utc>,
) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO customers (tenant_id, e164, raw_number, name, company, email, address, memo, \
         dirty, created_at, updated_at) VALUES (",
    );
    let np = q.param(now);
    q.bind(t.as_str())
        .push(",")
        .bind(number.e164())
        .push(",")
        .bind(number.raw());
    for f in fields {
        q.push(",").bind(convert::non_empty(f.as_deref()));
    }
    q.push(",'[]',").push(&np).push(",").push(&np);
    q
}

impl Store {
    /// Creates a customer by hand (admin). Errors: `Conflict` when the number is taken (R18).
    pub async fn create_customer(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError> {
        let mut q = insert_customer_sql(
            t,
            number,
            [
                &fields.name,
                &fields.company,
                &fields.email,
                &fields.address,
                &fields.memo,
            ],
            now,
        );
        q.push(") RETURNING ").push(CUSTOMER_COLUMNS);
        let row = q
            .one(&self.db)
            .await
            .map_err(|e| db_err("create customer", e))?
            .ok_or_else(|| StoreError::Unavailable("create customer returned nothing".into()))?;
        let m = customer::Model::from_query_result(&row, "")
            .map_err(|e| db_err("create customer", e))?;
        convert::customer(m)
    }

    /// An admin's edit (R11): changed synced fields of a linked customer become dirty, for
    /// write-back — Phone, Name, Email, Memo, and Company only when linked to a Lead.
    /// Address and a Contact's company are import-only and never dirty; an unlinked customer
    /// has nothing to write back to. `edited_at` moves to `now` when a field became dirty.
    /// Errors: `NotFound`, `Conflict` (the new number belongs to another customer, R18).
    pub async fn edit_customer(
        &self,
        t: &TenantId,
        id: CustomerId,
        edit: &CustomerEdit,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError> {
        let txn = self.begin_write().await?;
        let mut q = Sql::new("SELECT ");
        q.push(CUSTOMER_COLUMNS)
            .push(" FROM customers WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND id = ")
            .bind(id.0);
        if self.is_pg() {
            q.push(" FOR UPDATE");
        }
        let row = q
            .one(&txn)
            .await
            .map_err(|e| db_err("edit customer", e))?
            .ok_or_else(|| StoreError::NotFound(format!("customer {id} of tenant {t}")))?;
        let mut m =
            customer::Model::from_query_result(&row, "").map_err(|e| db_err("edit customer", e))?;
        let current = convert::customer(m.clone())?;
        let linked_to = current.link.as_ref().map(|l| l.record.object);
        let mut dirty: Vec<SyncedField> = current.dirty.clone();
        let mut mark = |f: SyncedField| {
            if linked_to.is_some() {
                dirty.push(f);
            }
        };
        if let Some(n) = &edit.number {
            if n.e164() != m.e164 {
                mark(SyncedField::Phone);
                m.e164 = n.e164().to_owned();
            }
            m.raw_number = n.raw().to_owned();
        }
        if let Some(v) = changed(&m.name, &edit.name) {
            mark(SyncedField::Name);
            m.name = v;
        }
        if let Some(v) = changed(&m.email, &edit.email) {
            mark(SyncedField::Email);
            m.email = v;
        }
        if let Some(v) = changed(&m.memo, &edit.memo) {
            mark(SyncedField::Memo);
            m.memo = v;
        }
        if let Some(v) = changed(&m.company, &edit.company) {
            if linked_to == Some(SfObject::Lead) {
                mark(SyncedField::Company);
            }
            m.company = v;
        }
        if let Some(v) = changed(&m.address, &edit.address) {
            m.address = v;
        }
        let new_dirty = convert::dirty_json(&dirty);
        if new_dirty != convert::dirty_json(&current.dirty) {
            m.edited_at = Some(now);
        }
        m.dirty = new_dirty;
        m.updated_at = now;
        let mut q = Sql::new("UPDATE customers SET e164 = ");
        q.bind(m.e164.clone())
            .push(", raw_number = ")
            .bind(m.raw_number.clone())
            .push(", name = ")
            .bind(m.name.clone())
            .push(", company = ")
            .bind(m.company.clone())
            .push(", email = ")
            .bind(m.email.clone())
            .push(", address = ")
            .bind(m.address.clone())
            .push(", memo = ")
            .bind(m.memo.clone())
            .push(", dirty = ")
            .bind(m.dirty.clone())
            .push(", edited_at = ")
            .bind(m.edited_at)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND id = ")
            .bind(id.0);
        q.execute(&txn)
            .await
            .map_err(|e| db_err("edit customer", e))?;
        txn.commit().await.map_err(|e| db_err("edit customer", e))?;
        convert::customer(m)
    }

    /// The customer book, for the admin UI (keyset-paginated by id).
    pub async fn customers(
        &self,
        t: &TenantId,
        filter: &CustomerFilter,
    ) -> Result<Vec<Customer>, StoreError> {
        let mut q = customer::Entity::find().filter(customer::Column::TenantId.eq(t.as_str()));
        if let Some(after) = filter.after {
            q = q.filter(customer::Column::Id.gt(after.0));
        }
        match filter.linked {
            Some(true) => q = q.filter(customer::Column::RecordId.is_not_null()),
            Some(false) => q = q.filter(customer::Column::RecordId.is_null()),
            None => {}
        }
        if let Some(s) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if let Ok(n) = PhoneNumber::parse(s) {
                q = q.filter(customer::Column::E164.eq(n.e164()));
            } else {
                use sea_orm::sea_query::{Expr, ExprTrait as _, Func};
                let pattern = format!(
                    "%{}%",
                    s.to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                let like = |c: customer::Column| {
                    Expr::expr(Func::lower(Expr::col(c)))
                        .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
                };
                q = q.filter(
                    sea_orm::Condition::any()
                        .add(like(customer::Column::Name))
                        .add(like(customer::Column::Company))
                        .add(like(customer::Column::Email)),
                );
            }
        }
        q.order_by_asc(customer::Column::Id)
            .limit(filter.limit)
            .all(&self.db)
            .await
            .map_err(|e| db_err("list customers", e))?
            .into_iter()
            .map(convert::customer)
            .collect()
    }

    pub async fn customer_count(&self, t: &TenantId) -> Result<u64, StoreError> {
        customer::Entity::find()
            .filter(customer::Column::TenantId.eq(t.as_str()))
            .count(&self.db)
            .await
            .map_err(|e| db_err("count customers", e))
    }

    /// Records that lost dedupe (R14), by number.
    pub async fn duplicates(
        &self,
        t: &TenantId,
        limit: u64,
    ) -> Result<Vec<DuplicateEntry>, StoreError> {
        duplicate::Entity::find()
            .filter(duplicate::Column::TenantId.eq(t.as_str()))
            .order_by_asc(duplicate::Column::Number)
            .order_by_asc(duplicate::Column::RecordId)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| db_err("list duplicates", e))?
            .into_iter()
            .map(|d| {
                Ok(DuplicateEntry {
                    number: d.number,
                    record: convert::record_ref(
                        "duplicates.record_object",
                        &d.record_object,
                        &d.record_id,
                    )?,
                    winner: convert::record_ref(
                        "duplicates.winner_object",
                        &d.winner_object,
                        &d.winner_id,
                    )?,
                    system_modstamp: d.system_modstamp,
                })
            })
            .collect()
    }

    /// [`CustomerStore::apply_changes`]'s transaction.
    async fn apply_import(
        &self,
        t: &TenantId,
        changes: &CustomerChanges,
    ) -> Result<(), StoreError> {
        let now = stamp();
        let txn = self.begin_write().await?;
        for ids in shaped(&changes.unlinks, IN_LIST) {
            let mut q = Sql::new(
                "UPDATE customers SET record_object = NULL, record_id = NULL, \
                 system_modstamp = NULL, dirty = '[]', updated_at = ",
            );
            q.bind(now)
                .push(" WHERE tenant_id = ")
                .bind(t.as_str())
                .push(" AND id IN ")
                .bind_list(ids.iter().map(|i| i.0));
            q.execute(&txn)
                .await
                .map_err(|e| db_err("unlink customers", e))?;
        }
        for u in &changes.updates {
            update_customer(&txn, t, u, now).await?;
        }
        if !changes.creates.is_empty() {
            let written = insert_customers(&txn, t, &changes.creates, now).await?;
            if written < changes.creates.len() as u64 {
                record_displaced_creates(&txn, t, &changes.creates, now).await?;
            }
        }
        for recs in shaped(&changes.clear_duplicates, IN_LIST) {
            let mut q = Sql::new("DELETE FROM duplicates WHERE tenant_id = ");
            q.bind(t.as_str())
                .push(" AND record_id IN ")
                .bind_list(recs.iter().map(|r| r.id.as_str().to_owned()));
            q.execute(&txn)
                .await
                .map_err(|e| db_err("clear duplicates", e))?;
        }
        upsert_duplicates(&txn, t, &changes.duplicates, now).await?;
        if let Some((object, at)) = changes.watermark {
            let mut q = Sql::new("INSERT INTO watermarks (tenant_id, object, at) VALUES (");
            q.bind(t.as_str())
                .push(",")
                .bind(object.as_str())
                .push(",")
                .bind(at)
                .push(") ON CONFLICT (tenant_id, object) DO UPDATE SET at = excluded.at");
            q.execute(&txn)
                .await
                .map_err(|e| db_err("save watermark", e))?;
        }
        txn.commit()
            .await
            .map_err(|e| db_err("apply import page", e))
    }
}

#[async_trait]
impl CustomerStore for Store {
    async fn find_by_number(
        &self,
        t: &TenantId,
        e164: &str,
    ) -> Result<Option<Customer>, StoreError> {
        customer::Entity::find()
            .filter(customer::Column::TenantId.eq(t.as_str()))
            .filter(customer::Column::E164.eq(e164))
            .one(&self.db)
            .await
            .map_err(|e| db_err("find customer by number", e))?
            .map(convert::customer)
            .transpose()
    }

    async fn find_by_numbers(
        &self,
        t: &TenantId,
        e164: &[String],
    ) -> Result<Vec<Customer>, StoreError> {
        find_numbers(&self.db, t, e164).await
    }

    async fn find_by_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<Customer>, StoreError> {
        let wanted: HashSet<(&str, &str)> = records
            .iter()
            .map(|r| (r.object.as_str(), r.id.as_str()))
            .collect();
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let mut out = Vec::new();
        for chunk in shaped(&ids, IN_LIST) {
            let rows = customer::Entity::find()
                .filter(customer::Column::TenantId.eq(t.as_str()))
                .filter(customer::Column::RecordId.is_in(chunk.iter().copied()))
                .all(&self.db)
                .await
                .map_err(|e| db_err("find customers by record", e))?;
            for m in rows {
                let key = (
                    m.record_object.as_deref().unwrap_or_default(),
                    m.record_id.as_deref().unwrap_or_default(),
                );
                if wanted.contains(&key) {
                    out.push(convert::customer(m)?);
                }
            }
        }
        Ok(out)
    }

    async fn get(&self, t: &TenantId, id: CustomerId) -> Result<Option<Customer>, StoreError> {
        customer::Entity::find()
            .filter(customer::Column::TenantId.eq(t.as_str()))
            .filter(customer::Column::Id.eq(id.0))
            .one(&self.db)
            .await
            .map_err(|e| db_err("get customer", e))?
            .map(convert::customer)
            .transpose()
    }

    async fn apply_changes(
        &self,
        t: &TenantId,
        changes: CustomerChanges,
    ) -> Result<(), StoreError> {
        // A page that creates one number twice is a dedupe bug upstream (R14): refuse it
        // whole rather than pick one silently.
        let mut seen = HashSet::with_capacity(changes.creates.len());
        for c in &changes.creates {
            if !seen.insert(c.number.e164()) {
                return Err(StoreError::Conflict(format!(
                    "import page creates number {} twice",
                    c.number.e164()
                )));
            }
        }
        // The transaction runs as a task of its own: its statements go on while the caller
        // (an import deciding its next batch) is busy, instead of waiting to be polled. A
        // caller that gives up waiting does not stop it; the commit is atomic either way,
        // and an import resumes from what was committed.
        let store = self.clone();
        let t = t.clone();
        tokio::spawn(async move { store.apply_import(&t, &changes).await }.in_current_span())
            .await
            .map_err(|e| StoreError::Unavailable(format!("applying an import page failed: {e}")))?
    }

    async fn link(&self, t: &TenantId, id: CustomerId, link: &SfLink) -> Result<(), StoreError> {
        let (o, rid, ms) = link_parts(Some(link));
        let mut q = Sql::new("UPDATE customers SET record_object = ");
        q.bind(o)
            .push(", record_id = ")
            .bind(rid)
            .push(", system_modstamp = ")
            .bind(ms)
            .push(", updated_at = ")
            .bind(stamp())
            .push(" WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND id = ")
            .bind(id.0);
        let n = q
            .execute(&self.db)
            .await
            .map_err(|e| db_err("link customer", e))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("customer {id} of tenant {t}")));
        }
        Ok(())
    }

    async fn pending_write_back(
        &self,
        t: &TenantId,
        limit: u64,
    ) -> Result<Vec<Customer>, StoreError> {
        // The predicate `dirty <> '[]'` matches the partial index's.
        let mut q = Sql::new("SELECT ");
        q.push(CUSTOMER_COLUMNS)
            .push(" FROM customers WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND dirty <> '[]' AND record_id IS NOT NULL ORDER BY edited_at, id LIMIT ")
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = q
            .all(&self.db)
            .await
            .map_err(|e| db_err("pending write-back", e))?;
        models(rows)?.into_iter().map(convert::customer).collect()
    }

    async fn mark_written_back(
        &self,
        t: &TenantId,
        id: CustomerId,
        edited_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut q = Sql::new("UPDATE customers SET dirty = '[]', updated_at = ");
        q.bind(stamp())
            .push(" WHERE tenant_id = ")
            .bind(t.as_str())
            .push(" AND id = ")
            .bind(id.0);
        match edited_at {
            Some(at) => q
                .push(" AND (edited_at IS NULL OR edited_at <= ")
                .bind(at)
                .push(")"),
            None => q.push(" AND edited_at IS NULL"),
        };
        q.execute(&self.db)
            .await
            .map_err(|e| db_err("mark written back", e))?;
        Ok(())
    }

    async fn watermark(
        &self,
        t: &TenantId,
        object: SfObject,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(
            watermark::Entity::find_by_id((t.as_str().to_owned(), object.as_str().to_owned()))
                .one(&self.db)
                .await
                .map_err(|e| db_err("get watermark", e))?
                .map(|w| w.at),
        )
    }
}

//! Schema migrations, written with sea-query's builders so that they run on SQLite and
//! PostgreSQL alike, except where one backend needs something the other does not (each such
//! migration says why); `Store::migrate` applies the pending ones (a no-op when none).
//!
//! Conventions: timestamps are `timestamp with time zone` (text in RFC 3339 UTC on SQLite,
//! which orders correctly as text); JSON documents are `text` holding serde JSON (portable,
//! and only this crate reads them); every tenant-owned row carries `tenant_id` referencing
//! `tenants`, and every index used by a tenant-scoped query starts with `tenant_id`.

use sea_orm_migration::prelude::*;

mod m20261125_000001_initial;
mod m20261126_000001_customers_deferred_fk;

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261126_000001_customers_deferred_fk::Migration),
        ]
    }
}

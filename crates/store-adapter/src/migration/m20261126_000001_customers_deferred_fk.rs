//! SQLite: the `customers` → `tenants` foreign key is checked at commit instead of per row.
//!
//! SQLite keeps a statement journal (a copy of every page a statement changes) for a
//! statement that writes several rows and may abort half-way, so that it can undo just that
//! statement. A multi-row insert into `customers` may abort on an immediate foreign key, so
//! every bulk insert of an import copied each index page it touched once more: about a tenth
//! of a 1M-record import's CPU. Checked at commit (`DEFERRABLE INITIALLY DEFERRED`), a
//! missing tenant still fails the whole transaction, and deleting a tenant still cascades.
//!
//! SQLite cannot alter a constraint, so the table is rebuilt from its own stored definition,
//! with its rows, `AUTOINCREMENT` counter and indexes, in one transaction. PostgreSQL keeps
//! no statement journal: nothing changes there.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const CASCADE: &str = "ON DELETE CASCADE";
const DEFERRED: &str = "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let c = m.get_connection();
        if c.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let texts = |sql: &str| {
            let stmt = Statement::from_string(DbBackend::Sqlite, sql.to_owned());
            async move {
                c.query_all_raw(stmt)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String>("", "sql"))
                    .collect::<Result<Vec<String>, DbErr>>()
            }
        };
        let table =
            texts("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'customers'")
                .await?
                .pop()
                .ok_or_else(|| DbErr::Migration("the customers table is missing".to_owned()))?;
        if table.contains(DEFERRED) {
            return Ok(());
        }
        if table.matches(CASCADE).count() != 1 {
            return Err(DbErr::Migration(format!(
                "unexpected definition of the customers table: {table}"
            )));
        }
        // Named indexes only: SQLite's automatic ones come back with the table.
        let indexes = texts(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customers' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .await?;
        let rebuilt = table
            .replacen("\"customers\"", "\"customers_rebuilt\"", 1)
            .replace(CASCADE, DEFERRED);
        if !rebuilt.contains("\"customers_rebuilt\"") {
            return Err(DbErr::Migration(format!(
                "unexpected definition of the customers table: {table}"
            )));
        }
        c.execute_unprepared(&rebuilt).await?;
        // The counter first, so ids of deleted customers are never handed out again.
        c.execute_unprepared(
            "INSERT INTO sqlite_sequence (name, seq) \
             SELECT 'customers_rebuilt', seq FROM sqlite_sequence WHERE name = 'customers'",
        )
        .await?;
        c.execute_unprepared("INSERT INTO customers_rebuilt SELECT * FROM customers")
            .await?;
        c.execute_unprepared("DROP TABLE customers").await?;
        c.execute_unprepared("ALTER TABLE customers_rebuilt RENAME TO customers")
            .await?;
        for index in indexes {
            c.execute_unprepared(&index).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Migrator;
    use super::DEFERRED;
    use crate::{Keyring, Store};
    use chrono::Utc;
    use domain::TenantId;
    use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
    use sea_orm_migration::MigratorTrait;

    async fn strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
        db.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql.to_owned()))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    async fn add(
        db: &impl ConnectionTrait,
        tenant: &str,
        e164: &str,
    ) -> Result<u64, sea_orm::DbErr> {
        let sql = format!(
            "INSERT INTO customers (tenant_id, e164, raw_number, name, dirty, created_at, updated_at) \
             VALUES ('{tenant}', '{e164}', '{e164}', '電話 太郎', '[]', '2026-11-26T00:00:00Z', \
             '2026-11-26T00:00:00Z')"
        );
        Ok(db.execute_unprepared(&sql).await?.rows_affected())
    }

    #[tokio::test]
    async fn the_rebuilt_customers_table_keeps_rows_ids_and_indexes_and_checks_tenants_at_commit() {
        let path = std::env::temp_dir().join(format!(
            "callsync-migration-{}.db",
            uuid::Uuid::new_v4().simple()
        ));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::connect(&url, Keyring::new(("k", &[7; 32]), &[]).unwrap())
            .await
            .unwrap();
        let db = store.connection();
        Migrator::up(db, Some(1)).await.unwrap();
        store
            .create_tenant(
                &TenantId::parse("acme").unwrap(),
                "Acme 株式会社",
                Utc::now(),
            )
            .await
            .unwrap();
        for n in ["+81312345678", "+81312345679", "+81312345670"] {
            add(db, "acme", n).await.unwrap();
        }
        db.execute_unprepared("DELETE FROM customers WHERE e164 = '+81312345670'")
            .await
            .unwrap();
        let index_sql = "SELECT sql FROM sqlite_master WHERE type = 'index' \
                         AND tbl_name = 'customers' AND sql IS NOT NULL ORDER BY name";
        let indexes = strings(db, index_sql).await;
        assert_eq!(indexes.len(), 3, "{indexes:?}");
        let table_sql = "SELECT sql FROM sqlite_master WHERE name = 'customers'";
        assert!(!strings(db, table_sql).await[0].contains("DEFERRABLE"));

        Migrator::up(db, None).await.unwrap();
        let table = strings(db, table_sql).await.remove(0);
        assert!(table.contains(DEFERRED), "{table}");
        assert!(table.starts_with("CREATE TABLE \"customers\""), "{table}");
        assert_eq!(strings(db, index_sql).await, indexes, "the same indexes");
        assert_eq!(
            strings(
                db,
                "SELECT CAST(id AS TEXT) || ' ' || name FROM customers ORDER BY id"
            )
            .await,
            ["1 電話 太郎", "2 電話 太郎"],
            "rows kept with their ids"
        );
        add(db, "acme", "+81312345671").await.unwrap();
        assert_eq!(
            strings(db, "SELECT CAST(max(id) AS TEXT) FROM customers").await,
            ["4"],
            "the id of the deleted customer is not handed out again"
        );
        assert!(
            add(db, "acme", "+81312345678").await.is_err(),
            "R18 still unique"
        );

        // A customer of no tenant is refused when its transaction commits, not before.
        let txn = db.begin().await.unwrap();
        assert_eq!(add(&txn, "nobody", "+81312345672").await.unwrap(), 1);
        assert!(txn.commit().await.is_err());
        assert_eq!(
            strings(db, "SELECT CAST(count(*) AS TEXT) FROM customers").await,
            ["3"]
        );
        // Deleting a tenant still takes its customers with it.
        db.execute_unprepared("DELETE FROM tenants WHERE id = 'acme'")
            .await
            .unwrap();
        assert_eq!(
            strings(db, "SELECT CAST(count(*) AS TEXT) FROM customers").await,
            ["0"]
        );
        // Migrating again changes nothing.
        Migrator::up(db, None).await.unwrap();
        assert_eq!(strings(db, table_sql).await, [table]);
        store.close().await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

//! The `Store`: one connection pool and the keyring, implementing every storage port (and on
//! a SQLite file, the background WAL checkpointer of `checkpoint.rs`).

use crate::checkpoint::{Checkpointer, Checkpoints};
use crate::crypto::Keyring;
use crate::error::db_err;
use crate::migration::Migrator;
use domain::StoreError;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Which database a `Store` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// callsync's storage: implements `CredentialStore`, `SettingsStore`, `CustomerStore`,
/// `EventLog`, `WorkQueue`, `CallTaskStore`, `DirectoryStore`, `SyncRunStore` and `Locks`,
/// plus the admin operations (tenants, customers, members, audit). Cheap to clone: clones
/// share the pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) keys: Arc<Keyring>,
    /// SQLite files: the background WAL checkpointer (see `checkpoint.rs`).
    checkpointer: Option<Arc<Checkpointer>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("keys", &self.keys)
            .finish()
    }
}

async fn open(opts: ConnectOptions) -> Result<DatabaseConnection, StoreError> {
    Database::connect(opts).await.map_err(|e| {
        tracing::error!(error = %e, "cannot connect to the database");
        StoreError::Unavailable("cannot connect to the database".to_owned())
    })
}

fn in_memory(sqlite_url: &str) -> bool {
    sqlite_url.contains(":memory:") || sqlite_url.contains("mode=memory")
}

/// Connection-level settings for SQLite: WAL so readers never block the writer,
/// `synchronous=NORMAL` (durable across process crashes; WAL makes it safe against
/// corruption), a busy timeout so writers queue instead of failing, and foreign keys on.
///
/// `connections` is the pool's size for a file (an in-memory database has one), and
/// `cache_kib` each connection's page cache.
fn sqlite_options(opts: &mut ConnectOptions, url: &str, connections: u32, cache_kib: u32) {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let memory = in_memory(url);
    if memory {
        // Each connection to a plain in-memory database is its own database: keep exactly
        // one, forever.
        opts.max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    } else {
        // SQLite has one writer at a time; two connections are the writer and a reader.
        // More only added writers that busy-wait on SQLite's lock (intake: p99 37 ms with
        // four, 20 ms with two, and more events/s) and a page cache and allocator arena per
        // connection (the 1M import's peak RSS: -70 MiB).
        opts.max_connections(connections);
    }
    opts.map_sqlx_sqlite_opts(move |o| {
        let o = o
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal)
            // Prepared statements are cached per connection; a bulk statement (thousands of
            // rows) is a large program and each row count is a new text, so the default 100
            // held hundreds of MiB during a large import. The hot statements are few.
            .statement_cache_capacity(16)
            .pragma("temp_store", "memory")
            // 8 MiB of page cache per connection (of 2); the OS caches the file too. With
            // 64 MiB a 1M-record import used 3 of 31 CPU-s less but peaked 45 MiB higher:
            // the index pages a commit dirties are written to the WAL whatever the cache.
            .pragma("cache_size", format!("-{cache_kib}"))
            // Checkpoints run in the background (`checkpoint.rs`); a commit checkpoints
            // itself only when the WAL has grown past 65,536 pages (256 MiB) all the same.
            // SQLite's default of 1,000 pages had copied and fsynced after almost every
            // commit of an import. The WAL is truncated back to 64 MiB after a checkpoint.
            .pragma("wal_autocheckpoint", "65536")
            .pragma("journal_size_limit", "67108864");
        if memory {
            o
        } else {
            // The embedded default: the file is created on first start, `mode=rwc` or not.
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
        }
    });
}

impl Store {
    /// Connects to `sqlite://path?mode=rwc` (or `sqlite::memory:`) or `postgres://…`.
    /// Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &str, keys: Keyring) -> Result<Self, StoreError> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(30));
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            sqlite_options(&mut opts, url, 2, 8192);
        } else {
            opts.max_connections(16).min_connections(1);
        }
        let mut store = Self::from_connection(open(opts).await?, keys);
        if sqlite && !in_memory(url) {
            // One more connection, with a small page cache: a checkpoint copies frames
            // through its own buffer.
            let mut opts = ConnectOptions::new(url.to_owned());
            opts.sqlx_logging(false)
                .acquire_timeout(Duration::from_secs(30));
            sqlite_options(&mut opts, url, 1, 256);
            store.checkpointer = Some(Arc::new(Checkpointer::start(open(opts).await?)));
        }
        Ok(store)
    }

    /// Creates a fresh PostgreSQL database `name` (letters, digits, `_`) on the server of
    /// `admin_url` and returns its URL. For tests, benchmarks and first-time set-up.
    pub async fn create_postgres_database(
        admin_url: &str,
        name: &str,
    ) -> Result<String, StoreError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StoreError::Conflict(format!(
                "invalid database name {name:?}"
            )));
        }
        let admin = Database::connect(admin_url).await.map_err(|e| {
            tracing::error!(error = %e, "cannot connect to the PostgreSQL server");
            StoreError::Unavailable("cannot connect to the PostgreSQL server".to_owned())
        })?;
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| StoreError::Unavailable(format!("CREATE DATABASE failed: {e}")))?;
        let _ = admin.close().await;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let (server, _) = base.rsplit_once('/').unwrap_or((base, ""));
        Ok(format!("{server}/{name}"))
    }

    /// Wraps an existing connection (tests, tooling).
    pub fn from_connection(db: DatabaseConnection, keys: Keyring) -> Self {
        Self {
            db,
            keys: Arc::new(keys),
            checkpointer: None,
        }
    }

    /// What the background WAL checkpointer has done (SQLite files only; `None` otherwise).
    pub fn checkpoints(&self) -> Option<tokio::sync::watch::Receiver<Checkpoints>> {
        self.checkpointer.as_ref().map(|c| c.progress())
    }

    /// Applies pending migrations; a no-op when the schema is current.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None)
            .await
            .map_err(|e| db_err("migrate", e))
    }

    /// The pool, for tests and tooling that need to look underneath the ports.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await.map_err(|e| db_err("close", e))
    }

    pub(crate) fn is_pg(&self) -> bool {
        self.backend() == Backend::Postgres
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so it waits for other writers instead of failing halfway on a
    /// lock upgrade; PostgreSQL uses its default (READ COMMITTED) with row locks.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        self.db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
            .map_err(|e| db_err("begin", e))
    }
}

/// `Utc::now()` for bookkeeping columns (`created_at`, `updated_at`); rule-bearing times
/// (leases, due dates, locks) always come from the caller's `now`.
pub(crate) fn stamp() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

//! Test databases: a fresh SQLite file per test, and — when `CALLSYNC_TEST_PG_URL` is set —
//! a fresh PostgreSQL database per test (`CREATE DATABASE test_<random>`). With `CI` set
//! and no URL, the PostgreSQL tests fail instead of skipping.

#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::ConnectionTrait;
use store_adapter::{Keyring, Store};

pub const KEY1: [u8; 32] = [0x11; 32];
pub const KEY2: [u8; 32] = [0x22; 32];

pub fn keyring() -> Keyring {
    Keyring::new(("k1", &KEY1), &[]).unwrap()
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).single().unwrap()
}

pub enum Cleanup {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

pub struct TestDb {
    pub store: Store,
    /// Where the database lives, to open it again with other keys.
    pub url: String,
    cleanup: Cleanup,
}

impl TestDb {
    /// Another `Store` on the same database with other keys.
    pub async fn reopen(&self, keys: Keyring) -> Store {
        Store::connect(&self.url, keys).await.unwrap()
    }

    pub async fn finish(self) {
        self.store.close().await.unwrap();
        match self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
            }
        }
    }
}

fn unique_name() -> String {
    format!("test_{}", uuid::Uuid::new_v4().simple())
}

pub async fn sqlite() -> TestDb {
    let path = std::env::temp_dir().join(format!("callsync-store-{}.db", unique_name()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Store::connect(&url, keyring()).await.unwrap();
    store.migrate().await.unwrap();
    TestDb {
        store,
        url,
        cleanup: Cleanup::Sqlite(path),
    }
}

pub async fn postgres() -> Option<TestDb> {
    let admin_url = match std::env::var("CALLSYNC_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but CALLSYNC_TEST_PG_URL is not: the PostgreSQL tests must run in CI"
            );
            eprintln!("CALLSYNC_TEST_PG_URL not set: PostgreSQL variant skipped");
            return None;
        }
    };
    let name = unique_name();
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let store = Store::connect(&url, keyring()).await.unwrap();
    store.migrate().await.unwrap();
    Some(TestDb {
        store,
        url,
        cleanup: Cleanup::Postgres { admin_url, name },
    })
}

/// Runs each named test body (`async fn name(db: &TestDb)`) once per backend:
/// `sqlite::name` always, `postgres::name` when PostgreSQL is configured.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::sqlite().await;
                    $crate::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::postgres().await else { return };
                    $crate::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

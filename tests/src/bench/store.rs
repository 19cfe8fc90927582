//! Rows 2 and 3: the store side of a 1M-customer import (`apply_changes`, 2,000-customer
//! pages, one transaction each, as the sync use case calls it) and caller-ID lookups on the
//! result (`PhoneNumber::parse` + `find_by_number`).

use super::report::Row;
use super::util::{Rng, mobile, mobile_e164, percentile, us};
use chrono::{TimeZone, Utc};
use domain::ports::{CustomerChanges, CustomerStore, NewCustomer};
use domain::{
    CustomerFields, PhoneNumber, SalesforceId, SalesforceRecordRef, SfLink, SfObject, TenantId,
};
use it::Db;
use std::time::{Duration, Instant};
use store_adapter::{Keyring, Store};

const PAGE: u64 = 2_000;
const LOOKUPS: usize = 10_000;
const WARMUP: u64 = 1_000;

/// Customer `n`'s number index: a bijection on 0..90,000,000 (7,919,993 is coprime with
/// 90,000,000), so numbers arrive in random order as real ones do. Sequential numbers would
/// only ever append to the E.164 index and flatter the store.
fn number_of(n: u64) -> u64 {
    (n * 7_919_993) % 90_000_000
}

/// Customers `start..start + len`: customer `n` has the number `090-…` of `number_of(n)`.
fn page(start: u64, len: u64) -> CustomerChanges {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let creates = (start..start + len)
        .map(|n| {
            let object = if n % 3 == 0 {
                SfObject::Contact
            } else {
                SfObject::Lead
            };
            let prefix = if object == SfObject::Contact {
                "003"
            } else {
                "00Q"
            };
            NewCustomer {
                // The sync use case parsed these already; the store trusts them.
                number: PhoneNumber::from_trusted(
                    mobile_e164(number_of(n)),
                    mobile(number_of(n), 0),
                ),
                fields: CustomerFields {
                    name: Some(format!("顧客 {n}")),
                    company: Some(format!("株式会社サンプル{}", n % 1000)),
                    email: Some(format!("customer{n}@example.jp")),
                    address: Some("東京都千代田区丸の内1-1-1".into()),
                    memo: (n % 4 == 0).then(|| "前回の問い合わせ: 請求書の再発行".into()),
                },
                link: SalesforceId::parse(&format!("{prefix}{n:012}"))
                    .ok()
                    .map(|id| SfLink {
                        record: SalesforceRecordRef { object, id },
                        system_modstamp: Some(at),
                    }),
            }
        })
        .collect();
    CustomerChanges {
        creates,
        watermark: Some((SfObject::Lead, at)),
        ..Default::default()
    }
}

/// A fresh migrated store; for SQLite also the file, so it can be removed afterwards.
async fn store(db: Db) -> anyhow::Result<Option<(Store, Option<std::path::PathBuf>)>> {
    match db {
        Db::Sqlite => {
            let path = std::env::temp_dir().join(format!(
                "callsync-bench-{}.sqlite",
                uuid::Uuid::new_v4().simple()
            ));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let store = Store::connect(&url, Keyring::new(("bench", &[9; 32]), &[])?).await?;
            store.migrate().await?;
            Ok(Some((store, Some(path))))
        }
        Db::Postgres => Ok(it::fresh_store(Db::Postgres).await.map(|s| (s, None))),
    }
}

pub(crate) fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn db_name(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "SQLite",
        Db::Postgres => "PostgreSQL",
    }
}

/// Imports `total` customers, then looks up 10,000 random ones. Rows: import time, lookup p99.
pub(crate) async fn run(db: Db, total: u64, goal_import: Option<f64>) -> anyhow::Result<Vec<Row>> {
    let name = db_name(db);
    let Some((store, path)) = store(db).await? else {
        println!("  {name}: no server (CALLSYNC_TEST_PG_URL unset), skipped");
        return Ok(vec![]);
    };
    let t = TenantId::parse("bench")?;
    store.create_tenant(&t, "bench", Utc::now()).await?;

    let mut spent = Duration::ZERO;
    let mut worst = Duration::ZERO;
    let mut start = 0;
    while start < total {
        let len = PAGE.min(total - start);
        let changes = page(start, len);
        let began = Instant::now();
        store.apply_changes(&t, changes).await?;
        let took = began.elapsed();
        spent += took;
        worst = worst.max(took);
        start += len;
        if start % 200_000 == 0 {
            println!("  {name}: {start} customers, {:.1} s", spent.as_secs_f64());
        }
    }
    let count = store.customer_count(&t).await?;
    anyhow::ensure!(count == total, "{count} customers stored, {total} expected");
    let secs = spent.as_secs_f64();
    let mut rows = vec![];
    let label = format!("store import {} customers ({name})", human(total));
    let import = Row::new(label, secs, "s").note(format!(
        "{:.0} rows/s; {} pages, worst page {:.0} ms; apply_changes time only; numbers in random order",
        total as f64 / secs,
        total.div_ceil(PAGE),
        worst.as_secs_f64() * 1e3
    ));
    rows.push(match goal_import {
        Some(g) => import.below(g, false, format!("< {g:.0} s")),
        None => import.goal("report"),
    });
    println!("  {}", rows[0].note);

    // Caller-ID lookups: numbers in any formatting, parsed first, as the worker does.
    let mut rng = Rng(0xC411_E21D);
    let queries: Vec<String> = (0..LOOKUPS)
        .map(|i| mobile(number_of(rng.below(total)), i as u64))
        .collect();
    // Warm-up (not timed): the pool's connections and the index pages, as in a running
    // service.
    for i in 0..WARMUP {
        let n = PhoneNumber::parse(&mobile(number_of(rng.below(total)), i))?;
        store.find_by_number(&t, n.e164()).await?;
    }
    let mut total_lat = Vec::with_capacity(LOOKUPS);
    let mut parse_lat = Vec::with_capacity(LOOKUPS);
    let mut misses = 0;
    for q in &queries {
        let began = Instant::now();
        let number = PhoneNumber::parse(q)?;
        let parsed = began.elapsed();
        let hit = store.find_by_number(&t, number.e164()).await?;
        total_lat.push(began.elapsed());
        parse_lat.push(parsed);
        if hit.is_none() {
            misses += 1;
        }
    }
    total_lat.sort();
    parse_lat.sort();
    let p50 = us(percentile(&total_lat, 50.0));
    let p99 = us(percentile(&total_lat, 99.0));
    rows.push(
        Row::new(
            format!("caller-ID lookup p99, {} customers ({name})", human(total)),
            p99,
            "µs",
        )
        .below(1000.0, false, "p99 < 1000 µs")
        .note(format!(
            "p50 {p50:.0} µs, max {:.0} µs; parse alone p50 {:.0} µs; {LOOKUPS} lookups after {WARMUP} untimed, {} misses",
            us(*total_lat.last().unwrap_or(&Duration::ZERO)),
            us(percentile(&parse_lat, 50.0)),
            misses
        )),
    );
    println!("  lookups: p50 {p50:.0} µs, p99 {p99:.0} µs");
    let _ = store.close().await;
    if let Some(p) = path {
        remove_sqlite(&p);
    }
    Ok(rows)
}

pub(crate) fn human(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

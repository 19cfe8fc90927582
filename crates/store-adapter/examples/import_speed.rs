//! Measures the store side of an initial import: `apply_changes` with 2,000-customer pages
//! (the Salesforce page size), as the sync use case calls it. Not a test: run it with
//! `cargo run --release -p store-adapter --example import_speed -- [total] [url]`.
//! Default: 1,000,000 customers into a fresh SQLite file in the temp directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use domain::ports::{CustomerChanges, CustomerStore, NewCustomer};
use domain::{
    CustomerFields, PhoneNumber, SalesforceId, SalesforceRecordRef, SfLink, SfObject, TenantId,
};
use std::time::{Duration, Instant};
use store_adapter::{Keyring, Store};

const PAGE: u64 = 2_000;

fn page(start: u64, len: u64) -> CustomerChanges {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
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
            let digits = 500_000_000 + n; // 0X-XXXX-XXXX style, unique per n
            NewCustomer {
                // The sync use case parsed these already; the store trusts them.
                number: PhoneNumber::from_trusted(
                    format!("+81{digits}"),
                    format!(
                        "0{}-{}-{}",
                        digits / 100_000_000,
                        (digits / 10_000) % 10_000,
                        digits % 10_000
                    ),
                ),
                fields: CustomerFields {
                    name: Some(format!("顧客 {n}")),
                    company: Some(format!("株式会社サンプル{}", n % 1000)),
                    email: Some(format!("customer{n}@example.jp")),
                    address: Some("東京都千代田区丸の内1-1-1".into()),
                    memo: (n % 4 == 0).then(|| "前回の問い合わせ: 請求書の再発行".into()),
                },
                link: Some(SfLink {
                    record: SalesforceRecordRef {
                        object,
                        id: SalesforceId::parse(&format!("{prefix}{n:012}")).unwrap(),
                    },
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: u64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    let path = std::env::temp_dir().join(format!(
        "callsync-import-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", path.display()));
    let store = Store::connect(&url, Keyring::new(("bench", &[9; 32]), &[]).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let t = TenantId::parse("bench").unwrap();
    store.create_tenant(&t, "bench", Utc::now()).await.unwrap();

    let mut spent = Duration::ZERO;
    let mut worst = Duration::ZERO;
    let mut start = 0;
    while start < total {
        let len = PAGE.min(total - start);
        let changes = page(start, len);
        let began = Instant::now();
        store.apply_changes(&t, changes).await.unwrap();
        let took = began.elapsed();
        spent += took;
        worst = worst.max(took);
        start += len;
    }
    let count = store.customer_count(&t).await.unwrap();
    assert_eq!(count, total);
    let lookup = Instant::now();
    let hit = store
        .find_by_number(&t, &format!("+81{}", 500_000_000 + total / 2))
        .await
        .unwrap();
    let lookup = lookup.elapsed();
    assert!(hit.is_some());
    let numbers: Vec<String> = (0..2000)
        .map(|n| format!("+81{}", 500_000_000 + n * (total / 2000).max(1)))
        .collect();
    let batch = Instant::now();
    let found = store.find_by_numbers(&t, &numbers).await.unwrap();
    let batch = batch.elapsed();
    println!(
        "{total} customers in {} pages: {:.2} s in apply_changes ({:.0} rows/s, worst page {:.1} ms); \
         find_by_number {:.2} ms; find_by_numbers(2000) {:.1} ms ({} found)",
        total.div_ceil(PAGE),
        spent.as_secs_f64(),
        total as f64 / spent.as_secs_f64(),
        worst.as_secs_f64() * 1e3,
        lookup.as_secs_f64() * 1e3,
        batch.as_secs_f64() * 1e3,
        found.len(),
    );
    store.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

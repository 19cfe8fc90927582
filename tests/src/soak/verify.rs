//! After a soak: count Tasks per call in the org (processed / lost / duplicates), records per
//! unknown number (R34), the queue, and look for every secret in the logs and the database.

use super::{Call, Database, Options, QueueState, Secrets, read_lossy};
use anyhow::{Result, anyhow};
use domain::TenantId;
use domain::ports::CredentialStore;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::{ExposeSecret, SecretString};
use sf_sim::Org;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use store_adapter::{Keyring, Store};

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub name: String,
    pub calls: usize,
    /// Calls with exactly one Task.
    pub processed: usize,
    /// Calls with no Task.
    pub lost: usize,
    /// Extra Tasks (a call with three Tasks counts two).
    pub duplicates: usize,
    /// Unknown numbers that got more than one Lead (R34), extra records.
    pub duplicate_records: usize,
    pub queue: QueueState,
    pub kills: usize,
    pub faults_switched: usize,
    pub webhook_retries: usize,
    /// Secrets found where they must not be: `"<secret> in <place>"`.
    pub leaks: Vec<String>,
    /// Panics the instances logged (a worker round that panicked is a bug even when the
    /// item ran again): `"<log>: <message>"`.
    pub panics: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.duplicate_records == 0
            && self.queue.drained
            && self.queue.dead == 0
            && self.leaks.is_empty()
            && self.panics.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[{}] processed/lost/duplicates = {}/{}/{} of {} calls; duplicate records {}; \
             queue ready {} leased {} waiting {} held {} dead {}{}",
            self.name,
            self.processed,
            self.lost,
            self.duplicates,
            self.calls,
            self.duplicate_records,
            self.queue.ready,
            self.queue.leased,
            self.queue.waiting,
            self.queue.held,
            self.queue.dead,
            if self.queue.drained {
                ""
            } else {
                " (NOT drained)"
            }
        )?;
        write!(
            f,
            "[{}] {} SIGKILLs, {} faults, {} webhook retries, secret leaks {}, panics {}, {:.1} s — {}",
            self.name,
            self.kills,
            self.faults_switched,
            self.webhook_retries,
            self.leaks.len(),
            self.panics.len(),
            self.elapsed.as_secs_f64(),
            if self.ok() { "OK" } else { "FAILED" }
        )?;
        for l in &self.leaks {
            write!(f, "\n  leak: {l}")?;
        }
        for p in &self.panics {
            write!(f, "\n  panic: {p}")?;
        }
        Ok(())
    }
}

pub(crate) async fn verify(
    opts: &Options,
    org: &Org,
    calls: &[Call],
    secrets: &Secrets,
    db_url: &str,
    logs: &[PathBuf],
    queue: QueueState,
) -> Result<Report> {
    let mut per_call: HashMap<String, usize> = HashMap::new();
    for t in org.records("Task") {
        if let Some(c) = t["CallObject"].as_str() {
            *per_call.entry(c.to_owned()).or_default() += 1;
        }
    }
    let mut r = Report {
        name: opts.name.clone(),
        calls: calls.len(),
        queue,
        ..Default::default()
    };
    for c in calls {
        match per_call.get(&c.id).copied().unwrap_or(0) {
            0 => r.lost += 1,
            1 => r.processed += 1,
            n => {
                r.processed += 1;
                r.duplicates += n - 1;
            }
        }
    }
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for l in org.records("Lead") {
        if let Some(p) = l["Phone"].as_str() {
            *per_number.entry(p.to_owned()).or_default() += 1;
        }
    }
    r.duplicate_records = per_number.values().map(|n| n.saturating_sub(1)).sum();

    // Secrets: the ones we chose, and the Salesforce tokens callsync holds at the end.
    let key = Keyring::from_base64(
        ("k1", &SecretString::from(secrets.token_key_b64.clone())),
        &[],
    )
    .map_err(|e| anyhow!("{e}"))?;
    let store = Store::connect(db_url, key)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let t = TenantId::parse("acme").map_err(|e| anyhow!("{e}"))?;
    let creds = store
        .load(&t)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("the tenant lost its Salesforce connection"))?;
    let named: Vec<(&str, String)> = vec![
        ("operator key", secrets.operator_key.clone()),
        ("token encryption key", secrets.token_key_b64.clone()),
        ("connected app secret", secrets.client_secret.clone()),
        ("tenant admin token", secrets.admin_token.clone()),
        ("webhook secret", secrets.webhook_secret.clone()),
        (
            "Salesforce access token",
            creds.access_token.expose_secret().to_owned(),
        ),
        (
            "Salesforce refresh token",
            creds.refresh_token.expose_secret().to_owned(),
        ),
    ];
    for log in logs {
        let text = read_lossy(log);
        r.panics
            .extend(panics_in(&text).map(|p| format!("{}: {p}", log.display())));
        if text.is_empty() {
            r.leaks
                .push(format!("log {} is empty (nothing to check)", log.display()));
        }
        for (what, value) in &named {
            if leaked(&text, value) {
                r.leaks.push(format!("{what} in {}", log.display()));
            }
        }
    }
    // The database: the credentials table's raw columns, and for SQLite every byte of the file.
    let db = store.connection();
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT access_token, refresh_token FROM credentials",
        ))
        .await?;
    if rows.is_empty() {
        r.leaks
            .push("the credentials table is empty (nothing to check)".into());
    }
    for row in rows {
        for col in ["access_token", "refresh_token"] {
            let bytes: Vec<u8> = row.try_get("", col)?;
            let text = String::from_utf8_lossy(&bytes);
            for (what, value) in &named {
                if leaked(&text, value) {
                    r.leaks
                        .push(format!("{what} in clear in credentials.{col}"));
                }
            }
        }
    }
    if matches!(opts.database, Database::Sqlite) {
        let _ = store.close().await;
        let file = opts.dir.join("callsync.sqlite");
        let mut raw = read_lossy(&file);
        raw.push_str(&read_lossy(&file.with_extension("sqlite-wal")));
        for (what, value) in &named {
            if leaked(&raw, value) {
                r.leaks.push(format!("{what} in clear in the SQLite file"));
            }
        }
    }
    Ok(r)
}

/// The value as it is, or form/percent-encoded, appears in `text`.
fn leaked(text: &str, value: &str) -> bool {
    if value.len() < 8 {
        return false;
    }
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    text.contains(value) || text.contains(&encoded)
}

/// The panic messages in a process log: the `thread '…' panicked at …` line and the message
/// line after it.
pub(crate) fn panics_in(log: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = log.lines();
    std::iter::from_fn(move || {
        let at = lines.by_ref().find(|l| l.contains("panicked at"))?;
        let message = lines.next().unwrap_or_default();
        Some(format!("{} {}", at.trim(), message.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::panics_in;

    #[test]
    fn finds_each_panic_with_its_message() {
        let log = "{\"level\":\"INFO\",\"message\":\"callsync listening\"}\n\
                   \n\
                   thread 'tokio-rt-worker' (31511) panicked at sharded.rs:317:9:\n\
                   tried to clone a span that already closed\n\
                   stack backtrace:\n\
                   {\"level\":\"INFO\",\"message\":\"webhook accepted\"}\n\
                   thread 'tokio-rt-worker' (31511) panicked at sharded.rs:265:17:\n\
                   assertion `left == right` failed\n";
        let found: Vec<String> = panics_in(log).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].ends_with("tried to clone a span that already closed"));
        assert!(found[1].contains("sharded.rs:265"));
        assert_eq!(panics_in("{\"message\":\"all well\"}\n").count(), 0);
    }
}

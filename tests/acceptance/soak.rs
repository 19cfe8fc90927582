//! The process soak at CI size: the real (debug) `callsync serve` on SQLite while signed
//! webhooks keep arriving — killed with SIGKILL and restarted, or facing random Salesforce
//! faults; afterwards nothing is lost or duplicated, the queue is empty and no secret reached
//! the log. `cargo xtask soak` runs the same driver at full counts (10,000 events) and with two
//! instances on PostgreSQL.

/// Runs one soak scenario at CI size against the debug `callsync` and asserts its verdict.
fn soak(scenario: &str, events: &str, kills: &str) {
    let soak = env!("CARGO_BIN_EXE_soak");
    // `cargo test --workspace` builds `callsync` into the same directory.
    let callsync = std::path::Path::new(soak).with_file_name("callsync");
    assert!(
        callsync.exists(),
        "build the callsync binary first (cargo test --workspace does)"
    );
    let dir = std::env::temp_dir().join(format!(
        "callsync-ci-soak-{scenario}-{}",
        std::process::id()
    ));
    let out = std::process::Command::new(soak)
        .args([
            "--only", scenario, "--events", events, "--kills", kills, "--bin",
        ])
        .arg(&callsync)
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("the soak driver runs");
    let report = String::from_utf8_lossy(&out.stdout);
    // On failure the logs, config and database stay in `dir` (named in the report).
    assert!(
        out.status.success(),
        "soak failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("processed/lost/duplicates = ") && report.contains("/0/0 of "),
        "expected processed/0 lost/0 duplicates:\n{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn r25_crash_soak_sigkill_loses_and_duplicates_nothing() {
    soak("crash", "400", "2");
}

/// C3 and every transient class at random while calls arrive: 5xx, latency, row locks,
/// expired sessions, and once the request limit (those calls wait and resume).
#[test]
fn c3_fault_soak_random_salesforce_faults_lose_and_duplicate_nothing() {
    soak("faults", "300", "1");
}

//! The crash soak at CI size: the real (debug) `callsync serve` on SQLite, killed with SIGKILL
//! while signed webhooks keep arriving, restarted each time; afterwards nothing is lost or
//! duplicated, the queue is empty and no secret reached the log. `cargo xtask soak` runs the
//! same driver at full counts (10,000 events) with faults and two instances on PostgreSQL.

#[test]
fn r25_crash_soak_sigkill_loses_and_duplicates_nothing() {
    let soak = env!("CARGO_BIN_EXE_soak");
    let callsync = std::path::Path::new(soak).with_file_name("callsync");
    assert!(
        callsync.exists(),
        "build the callsync binary first (cargo test --workspace does)"
    );
    let dir = std::env::temp_dir().join(format!("callsync-ci-soak-{}", std::process::id()));
    let out = std::process::Command::new(soak)
        .args([
            "--only", "crash", "--events", "400", "--kills", "2", "--bin",
        ])
        .arg(&callsync)
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("the soak driver runs");
    let report = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "soak failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("processed/lost/duplicates = ") && report.contains("/0/0 of "),
        "expected processed/0 lost/0 duplicates:\n{report}"
    );
}

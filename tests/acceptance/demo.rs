//! The README's first command, proven in CI: the demo runs every scenario against the real
//! `callsync` binary and exits 0 only when each one shows the expected outcome.

#[test]
fn demo_runs_every_scenario_green() {
    let demo = env!("CARGO_BIN_EXE_demo");
    // The demo starts `callsync` from beside its own executable; `cargo test --workspace`
    // builds both into the same directory.
    let callsync = std::path::Path::new(demo).with_file_name("callsync");
    assert!(
        callsync.exists(),
        "build the callsync binary first (cargo test --workspace does)"
    );
    let out = std::process::Command::new(demo)
        .arg("--exit")
        .output()
        .expect("the demo runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("17/17 scenarios passed"), "{report}");
    assert!(report.contains("secrets in logs: none"), "{report}");
}

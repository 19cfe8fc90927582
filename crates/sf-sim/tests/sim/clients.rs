//! Real Salesforce clients nobody here wrote (jsforce from npm, simple-salesforce from PyPI)
//! drive the simulator unchanged. The clients are installed once into `target/sf-clients/`
//! (install into a unique temp dir, then rename: concurrent runs never see half an install).
//! Missing node/npm/python3 fails the test with a clear message.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sf_sim::Fault;
use tokio::process::Command;

use crate::helpers::*;

const JSFORCE: &str = "jsforce@3.10.16";
const SIMPLE_SALESFORCE: &str = "simple-salesforce==1.12.10";

fn clients_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(&tmp).join("sf-clients")
}

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

async fn require_tool(cmd: &str, arg: &str) {
    let ok = Command::new(cmd)
        .arg(arg)
        .output()
        .await
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{cmd}` is required to run the real-client fidelity tests but was not found on PATH"
    );
}

async fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Install into `<dir>.tmp-<pid>-<nanos>` and rename into place; idempotent and race-safe.
async fn install(
    final_dir: &Path,
    ready: impl Fn(&Path) -> bool,
    install_into: impl AsyncFnOnce(&Path),
) {
    if ready(final_dir) {
        return;
    }
    std::fs::create_dir_all(final_dir.parent().unwrap()).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let tmp = final_dir.with_extension(format!("tmp-{}-{nanos}", std::process::id()));
    install_into(&tmp).await;
    if std::fs::rename(&tmp, final_dir).is_err() {
        // Someone else finished first (or a stale incomplete dir is in the way).
        if !ready(final_dir) {
            let _ = std::fs::remove_dir_all(final_dir);
            std::fs::rename(&tmp, final_dir).unwrap();
            return;
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(
        ready(final_dir),
        "install into {} did not complete",
        final_dir.display()
    );
}

async fn node_clients() -> PathBuf {
    require_tool("node", "--version").await;
    require_tool("npm", "--version").await;
    let dir = clients_dir().join("node");
    install(
        &dir,
        |d| d.join("node_modules/jsforce/package.json").exists(),
        async |tmp: &Path| {
            std::fs::create_dir_all(tmp).unwrap();
            run(
                Command::new("npm")
                    .args(["install", "--prefix"])
                    .arg(tmp)
                    .args([JSFORCE, "--no-audit", "--no-fund", "--loglevel=error"]),
                "npm install jsforce",
            )
            .await;
        },
    )
    .await;
    dir
}

async fn python_clients() -> PathBuf {
    require_tool("python3", "--version").await;
    let dir = clients_dir().join("py");
    let ready = |d: &Path| d.join("READY").exists();
    install(&dir, ready, async |tmp: &Path| {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(tmp),
            "python3 -m venv",
        )
        .await;
        run(
            Command::new(tmp.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                SIMPLE_SALESFORCE,
            ]),
            "pip install simple-salesforce",
        )
        .await;
        std::fs::write(tmp.join("READY"), SIMPLE_SALESFORCE).unwrap();
    })
    .await;
    dir
}

async fn output_json(cmd: &mut Command, what: &str) -> Value {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{what}: bad output ({e}): {stdout}"))
}

fn seed_leads(e: &Env, n: usize) {
    for i in 0..n {
        e.org.insert("Lead", json!({"LastName": format!("L{i:05}"), "Company": "C", "Phone": if i == 0 { "０３－１２３４－５６７８" } else { "" }}));
    }
}

#[tokio::test]
async fn jsforce_drives_the_simulator() {
    let node = node_clients().await;
    let e = env().await;
    seed_leads(&e, 4100);
    let (at, rt) = e.org.issue_tokens();
    // The client starts with an expired session: jsforce must refresh once and carry on.
    e.org.set_fault(Fault::SessionExpired);
    let (cid, secret) = e.sim.client_credentials();
    let out = output_json(
        Command::new("node")
            .arg(scripts_dir().join("jsforce_check.js"))
            .env("NODE_PATH", node.join("node_modules"))
            .env("SF_LOGIN_URL", e.sim.login_url())
            .env("SF_INSTANCE_URL", e.org.instance_url())
            .env("SF_ACCESS_TOKEN", at)
            .env("SF_REFRESH_TOKEN", rt)
            .env("SF_CLIENT_ID", cid)
            .env("SF_CLIENT_SECRET", secret),
        "jsforce script",
    )
    .await;
    assert_eq!(out["refreshed"], true, "{out}");
    assert_eq!(out["queried"], 4100, "{out}");
    assert_eq!(out["firstType"], "Lead");
    assert!(out["limitUsed"].as_u64().unwrap() >= 3, "{out}");
    assert_eq!(out["created"], true);
    assert_eq!(out["updated"], true);
    assert_eq!(out["retrievedPhone"], "090-0000-1111");
    assert_eq!(out["deleted"], true);
    assert_eq!(out["collectionCreated"], 2);
    assert_eq!(
        out["collectionErrors"],
        json!([
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "REQUIRED_FIELD_MISSING"
        ])
    );
    assert_eq!(out["compositeStatuses"], json!([201, 201]));
    assert_eq!(out["searchCount"], 1);
    assert_eq!(out["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(out["queryErrorCode"], "INVALID_FIELD");
    assert_eq!(out["identityUser"], e.org.admin_user_id());
    assert_eq!(out["state"], "st8");
    assert_eq!(out["authorizedInstance"], e.org.instance_url());
    assert_eq!(out["authorizedOrg"], e.org.org_id());
    assert_eq!(out["hasRefreshToken"], true);
    assert_eq!(out["limitsMax"], 15000);
    assert_eq!(out["refreshAfterRevoke"], "invalid_grant");
    // Pages were fetched through /query/{locator}.
    assert!(
        e.org
            .requests()
            .iter()
            .filter(|r| r.path.contains("/query/01g"))
            .count()
            >= 2
    );
}

#[tokio::test]
async fn simple_salesforce_drives_the_simulator() {
    let py = python_clients().await;
    let e = env().await;
    seed_leads(&e, 4100);
    let out = output_json(
        Command::new(py.join("bin/python"))
            .arg(scripts_dir().join("simple_salesforce_check.py"))
            .env("SF_INSTANCE_URL", e.org.instance_url())
            .env("SF_ACCESS_TOKEN", e.org.issue_token()),
        "simple-salesforce script",
    )
    .await;
    assert_eq!(out["queried"], 4100, "{out}");
    assert_eq!(out["pages"], 3);
    assert_eq!(out["api_usage"], json!([3, 15000]));
    assert_eq!(out["created"], true);
    assert_eq!(out["update_status"], 204);
    assert_eq!(out["got_phone"], "06-0000-0000");
    assert_eq!(out["delete_status"], 204);
    assert_eq!(out["collection"], json!([true, false]));
    assert_eq!(out["composite"], json!([200, 200]));
    assert_eq!(out["search"], 1);
    assert_eq!(out["error"], "REQUIRED_FIELD_MISSING");
    assert_eq!(out["expired"], "INVALID_SESSION_ID");
}

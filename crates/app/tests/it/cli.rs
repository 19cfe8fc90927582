//! The `callsync` binary's configuration commands, run as a user would.

use std::path::Path;
use std::process::Command;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn callsync(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callsync"));
    c.arg("--config-dir").arg(dir).env("CALLSYNC_ENV", "test");
    // Keep the developer's environment out of the test.
    for (k, _) in std::env::vars() {
        if k.starts_with("CALLSYNC_") && k != "CALLSYNC_ENV" {
            c.env_remove(k);
        }
    }
    c
}

fn good_base(dir: &Path) {
    std::fs::write(
        dir.join("base.toml"),
        format!(
            r#"
[salesforce]
client_id = "cid"
client_secret = "very-secret-client-secret"
[security]
operator_key = "operator-key-operator-key-operator-key"
current_key_id = "k1"
[security.token_keys]
k1 = "{KEY}"
"#
        ),
    )
    .unwrap();
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("callsync-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn check_config_on_a_bad_file_names_the_key_and_fails() {
    let dir = tempdir("bad");
    good_base(&dir);
    std::fs::write(dir.join("test.toml"), "[salesforce]\nclient_id = \"\"\n").unwrap();
    let out = callsync(&dir).arg("check-config").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("salesforce.client_id: must not be empty"),
        "{err}"
    );

    std::fs::write(dir.join("test.toml"), "[workers]\ncount = \"lots\"\n").unwrap();
    let out = callsync(&dir).arg("check-config").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("workers.count"), "{err}");
}

#[test]
fn check_config_on_a_good_file_prints_ok_and_masks_secrets() {
    let dir = tempdir("good");
    good_base(&dir);
    let out = callsync(&dir)
        .arg("check-config")
        .env("CALLSYNC_SERVER__LISTEN", "0.0.0.0:9999")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok"));
    assert!(stdout.contains("server.listen = 0.0.0.0:9999"));
    for secret in [
        "very-secret-client-secret",
        "operator-key-operator-key",
        KEY,
    ] {
        assert!(!stdout.contains(secret), "{secret} printed");
    }
}

#[test]
fn the_shipped_example_is_complete_and_valid() {
    // config/example.toml documents every key; with real-looking secrets it must pass.
    let dir = tempdir("example");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
    std::fs::copy(&example, dir.join("base.toml")).unwrap();
    let out = callsync(&dir)
        .arg("check-config")
        .env("CALLSYNC_SECURITY__TOKEN_KEYS__K1", KEY)
        .env("CALLSYNC_SECURITY__OPERATOR_KEY", "x".repeat(40))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempdir("migrate");
    good_base(&dir);
    let db = dir.join("data").join("callsync.sqlite");
    let out = callsync(&dir)
        .arg("migrate")
        .env(
            "CALLSYNC_DATABASE__URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    assert!(db.exists());
}

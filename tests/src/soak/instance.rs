//! One `callsync serve` process: its config (shared dir, own port via the environment), its
//! log (appended across restarts), start with readiness, SIGKILL, stop.

use super::Secrets;
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Instance {
    pub index: usize,
    bin: PathBuf,
    config_dir: PathBuf,
    port: u16,
    pub log: PathBuf,
    child: Option<Child>,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `base.toml` for every instance; the listen address comes from the environment.
pub(crate) fn write_config(
    dir: &Path,
    db_url: &str,
    client_id: &str,
    login_url: &str,
    s: &Secrets,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let toml = format!(
        r#"# Written by the soak driver.
[database]
url = "{db_url}"

[salesforce]
client_id = "{client_id}"
client_secret = "{client_secret}"
login_url = "{login_url}"
timeout_secs = 10

[security]
operator_key = "{operator_key}"
current_key_id = "k1"

[security.token_keys]
k1 = "{token_key}"

[workers]
count = 2
batch_size = 200
linger_ms = 20
lease_secs = 10

[sync]
interval_secs = 0

[log]
format = "json"
level = "info"
"#,
        client_secret = s.client_secret,
        operator_key = s.operator_key,
        token_key = s.token_key_b64,
    );
    std::fs::write(dir.join("base.toml"), toml)?;
    Ok(())
}

impl Instance {
    pub(crate) fn new(index: usize, bin: &Path, config_dir: &Path, dir: &Path) -> Result<Self> {
        if !bin.is_file() {
            bail!("{} not found (cargo build --release -p app)", bin.display());
        }
        Ok(Self {
            index,
            bin: bin.to_owned(),
            config_dir: config_dir.to_owned(),
            port: free_port()?,
            log: dir.join(format!("callsync-{index}.log")),
            child: None,
        })
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn command(&self, sub: &str) -> Result<Command> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg(sub)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Only our settings: a stray CALLSYNC_* variable would be an unknown key.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CALLSYNC_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("CALLSYNC_CONFIG_DIR", &self.config_dir)
            .env("CALLSYNC_ENV", "soak")
            .env(
                "CALLSYNC_SERVER__LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .env("CALLSYNC_SERVER__PUBLIC_URL", self.base())
            .env("HOSTNAME", format!("soak-{}", self.index))
            .env_remove("RUST_LOG");
        Ok(cmd)
    }

    /// `callsync migrate` (PostgreSQL; SQLite migrates itself).
    pub(crate) fn migrate(&self) -> Result<()> {
        let status = self.command("migrate")?.status()?;
        if !status.success() {
            bail!(
                "callsync migrate failed ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// Starts `callsync serve` and waits for `/readyz`.
    pub(crate) async fn start(&mut self) -> Result<()> {
        let child = self
            .command("serve")?
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        self.child = Some(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "callsync exited at start ({status}); see {}",
                    self.log.display()
                );
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base())).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(anyhow!("callsync did not become ready within 60 s"))
    }

    /// SIGKILL, as `kill -9 <pid>`: no graceful shutdown, leases and locks stay behind.
    pub(crate) fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let status = Command::new("kill")
                .args(["-9", &c.id().to_string()])
                .status()?;
            if !status.success() {
                c.kill()?;
            }
            c.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait (graceful), SIGKILL after 30 s.
    pub(crate) fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if c.try_wait()?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

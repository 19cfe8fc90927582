//! The real `callsync serve` as a child process: a generated configuration in the run
//! directory, logs to a file there, stopped with SIGTERM (also when the demo fails).

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Secrets the demo generates for callsync (and later checks never appear in its output).
pub(crate) struct Keys {
    pub(crate) operator_key: String,
    pub(crate) token_key: String,
}

impl Keys {
    pub(crate) fn generate() -> Keys {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        Keys {
            operator_key: b64(&rand::random::<[u8; 48]>()),
            token_key: b64(&rand::random::<[u8; 32]>()),
        }
    }
}

/// What callsync needs to know about Salesforce.
pub(crate) struct SalesforceApp<'a> {
    pub(crate) login_url: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: &'a str,
}

/// A running `callsync serve`.
pub(crate) struct Callsync {
    child: Option<Child>,
    pub(crate) base_url: String,
    pub(crate) log: PathBuf,
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A port that was free a moment ago (callsync binds it right after).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Writes `dir/config/base.toml` and returns the config dir and the public URL.
fn write_config(dir: &Path, keys: &Keys, sf: &SalesforceApp<'_>) -> Result<(PathBuf, String)> {
    let port = free_port()?;
    let public = format!("http://127.0.0.1:{port}");
    let db = dir.join("callsync.sqlite");
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir)?;
    let text = format!(
        "# Written by `cargo xtask demo` for this run only (secrets are generated per run).\n\
         [database]\nurl = {db}\n\n\
         [server]\nlisten = {listen}\npublic_url = {public}\n\n\
         [salesforce]\nclient_id = {cid}\nclient_secret = {cs}\nlogin_url = {login}\ntimeout_secs = 10\n\n\
         [security]\noperator_key = {op}\ncurrent_key_id = \"k1\"\n\n\
         [security.token_keys]\nk1 = {tk}\n\n\
         [workers]\ncount = 2\n\n\
         [log]\nformat = \"json\"\nlevel = \"info\"\n",
        db = toml_str(&format!("sqlite://{}?mode=rwc", db.display())),
        listen = toml_str(&format!("127.0.0.1:{port}")),
        public = toml_str(&public),
        cid = toml_str(sf.client_id),
        cs = toml_str(sf.client_secret),
        login = toml_str(sf.login_url),
        op = toml_str(&keys.operator_key),
        tk = toml_str(&keys.token_key),
    );
    let path = config_dir.join("base.toml");
    std::fs::write(&path, text)?;
    restrict(&path)?;
    Ok((config_dir, public))
}

/// The config holds secrets: owner-only.
fn restrict(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}

impl Callsync {
    /// Starts `callsync serve` (the binary next to the demo's own) and waits for `/readyz`.
    pub(crate) async fn start(dir: &Path, keys: &Keys, sf: &SalesforceApp<'_>) -> Result<Callsync> {
        let bin = std::env::current_exe()?.with_file_name("callsync");
        if !bin.exists() {
            bail!(
                "{} not found: build it with `cargo build -p app --bin callsync` \
                 (cargo xtask demo does)",
                bin.display()
            );
        }
        let (config_dir, base_url) = write_config(dir, keys, sf)?;
        let log = dir.join("callsync.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--config-dir")
            .arg(&config_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // Only this run's file counts: no CALLSYNC_* from the caller's shell.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CALLSYNC_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("CALLSYNC_ENV", "demo");
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut me = Callsync {
            child: Some(child),
            base_url,
            log,
        };
        me.wait_ready().await?;
        Ok(me)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/readyz", self.base_url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "callsync exited during startup ({status}); its log ({}):\n{}",
                    self.log.display(),
                    tail(&self.log, 20)
                );
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "callsync did not become ready within 30 s; its log ({}):\n{}",
                    self.log.display(),
                    tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, then wait for the graceful shutdown (callsync waits up to 30 s for workers).
    pub(crate) fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(40);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("callsync did not stop within 40 s of SIGTERM; killed it");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for Callsync {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The last `n` lines of a file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

//! A throwaway PostgreSQL server for the tests.
//!
//! `initdb` into a fresh temp dir, then `postgres` as a direct child of xtask (as the `postgres`
//! user when we are root, since initdb refuses root) on a free loopback port with fsync off, trust
//! auth and its Unix socket inside the temp dir. Readiness is read from the server's log, not
//! polled. Stopping (`pg_ctl stop -m fast`) and removing the dir happen in `stop`, and in `Drop`
//! as a fallback on error paths. On Ctrl-C the terminal's SIGINT reaches the server too (same
//! process group; SIGINT is PostgreSQL's fast shutdown); a dir left behind by a killed run is
//! swept by the next run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::util::{self, Apt};

const DIR_PREFIX: &str = "callsync-xtask-pg-";
const DB_NAME: &str = "callsync_test";
const READY_LINE: &str = "database system is ready to accept connections";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running throwaway server. Stop it with [`PgServer::stop`]; dropping it also stops it.
pub(crate) struct PgServer {
    pub(crate) url: String,
    pub(crate) version: String,
    bin: PathBuf,
    tmp: PathBuf,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    log_reader: Option<JoinHandle<()>>,
    /// Cleans up if xtask dies without running `stop` (Ctrl-C, SIGTERM, SIGKILL): it blocks
    /// reading a pipe only we hold open, so our death (EOF) wakes it.
    watcher: Option<Child>,
}

/// Run by the watcher (`sh -c WATCHER sh PG_CTL DATA TMP`), immune to the terminal's signals.
const WATCHER: &str = r#"trap '' INT TERM HUP
read -r _ || true
"$1" stop -D "$2" -m fast -w -t 30 >/dev/null 2>&1 || true
rm -rf "$3""#;

/// The newest `/usr/lib/postgresql/<major>/bin` holding initdb and postgres, else `pg_config
/// --bindir`.
fn find_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((major, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .then_some(bin)
}

/// uid and gid of the `postgres` user.
fn postgres_user() -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = util::run_captured(Command::new("id").args([flag, "postgres"]))
            .context("there is no `postgres` user (is the postgresql package installed?)")?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("`id` printed no number")
    };
    Ok((id("-u")?, id("-g")?))
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl PgServer {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(&self.tmp).stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn data(&self) -> PathBuf {
        self.tmp.join("data")
    }

    /// Start a server (installing PostgreSQL with apt first if its binaries are missing and we
    /// are root) and create the test database.
    pub(crate) fn start(apt: &mut Apt) -> Result<PgServer> {
        sweep_stale();
        let bin = match find_bin_dir() {
            Some(bin) => bin,
            None => {
                apt.install(&["postgresql"])?;
                find_bin_dir().ok_or_else(|| {
                    anyhow!("PostgreSQL binaries not found after installing postgresql")
                })?
            }
        };
        let run_as = if util::is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{nanos}", std::process::id()));
        std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut server = PgServer {
            url: String::new(),
            version: String::new(),
            bin,
            tmp,
            run_as,
            child: None,
            log_reader: None,
            watcher: None,
        };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&server.tmp, Some(uid), Some(gid))
                .with_context(|| format!("chown {} to postgres", server.tmp.display()))?;
        }
        let mut watcher = Command::new("sh");
        watcher
            .arg("-c")
            .arg(WATCHER)
            .arg("sh")
            .arg(server.bin.join("pg_ctl"))
            .arg(server.data())
            .arg(&server.tmp)
            .current_dir(&server.tmp)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = run_as {
            watcher.uid(uid).gid(gid);
        }
        server.watcher = Some(watcher.spawn().context("spawning the cleanup watcher")?);
        let out = util::run_captured(server.command("postgres").arg("--version"))?;
        server.version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        util::run_captured(server.command("initdb").arg("-D").arg(server.data()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]))?;
        // A free port can be taken between our probe and the server's bind: retry a few times.
        let mut last_err = None;
        for _ in 0..3 {
            let port = free_port()?;
            match server.spawn(port) {
                Ok(()) => {
                    util::run_captured(server.command("createdb").args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-U",
                        "postgres",
                        DB_NAME,
                    ]))?;
                    server.url = format!("postgres://postgres@127.0.0.1:{port}/{DB_NAME}");
                    return Ok(server);
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("PostgreSQL did not start")))
    }

    fn spawn(&mut self, port: u16) -> Result<()> {
        let log_path = self.tmp.join("postgres.log");
        let mut child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &port.to_string(), "-k"])
            .arg(&self.tmp)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200"])
            .args(["-c", "lc_messages=C"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning postgres")?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("postgres stderr not captured"))?;
        let (ready_tx, ready_rx) = mpsc::channel::<bool>();
        let mut log = std::fs::File::create(&log_path)?;
        // Copies the server log to a file; reports readiness (true) or exit before it (false).
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            let mut ready = false;
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let _ = log.write_all(&line);
                if !ready && String::from_utf8_lossy(&line).contains(READY_LINE) {
                    ready = true;
                    let _ = ready_tx.send(true);
                }
                line.clear();
            }
            let _ = ready_tx.send(false);
        });
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(true) => {
                self.child = Some(child);
                self.log_reader = Some(reader);
                Ok(())
            }
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let why = if outcome.is_err() {
                    "did not become ready in time"
                } else {
                    "exited before becoming ready"
                };
                bail!(
                    "postgres on port {port} {why}; its log:\n{}",
                    log.trim_end()
                )
            }
        }
    }

    /// Stop the server and remove its directory.
    pub(crate) fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let mut result = Ok(());
        if let Some(mut child) = self.child.take() {
            // Already gone (e.g. it got the terminal's SIGINT): nothing to stop.
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            let stopped = if exited {
                Ok(())
            } else {
                util::run_captured(
                    self.command("pg_ctl")
                        .arg("stop")
                        .arg("-D")
                        .arg(self.data())
                        .args(["-m", "fast", "-w", "-t", "30"]),
                )
                .map(|_| ())
            };
            if let Err(err) = stopped {
                result = Err(err);
                let _ = child.kill();
            }
            let _ = child.wait();
            if let Some(reader) = self.log_reader.take() {
                let _ = reader.join();
            }
        }
        if self.tmp.exists()
            && let Err(err) = std::fs::remove_dir_all(&self.tmp)
        {
            result = result.and(Err(anyhow!("removing {}: {err}", self.tmp.display())));
        }
        result
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            eprintln!("xtask: warning: stopping the test PostgreSQL: {err:#}");
        }
    }
}

/// Remove dirs (and stop servers) left by xtask runs that were killed.
fn sweep_stale() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let dir = entry.path();
        let data = dir.join("data");
        if data.join("postmaster.pid").exists()
            && let Some(bin) = find_bin_dir()
        {
            let mut cmd = Command::new(bin.join("pg_ctl"));
            cmd.arg("stop")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if util::is_root()
                && let Ok((uid, gid)) = postgres_user()
            {
                cmd.uid(uid).gid(gid);
            }
            let _ = cmd.status();
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => eprintln!("xtask: removed stale test PostgreSQL dir {}", dir.display()),
            Err(err) => eprintln!("xtask: warning: could not remove {}: {err}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When run under `cargo xtask test`, the URL we hand to the tests must reach a server where
    /// the user may create databases (tests create one each). Outside it there is nothing to check.
    #[test]
    fn handed_out_url_allows_create_database() {
        let Ok(url) = std::env::var("CALLSYNC_TEST_PG_URL") else {
            return;
        };
        let psql = find_bin_dir()
            .map(|b| b.join("psql"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let db = format!("xtask_probe_{}", std::process::id());
        for sql in [
            format!("CREATE DATABASE {db}"),
            format!("DROP DATABASE {db}"),
        ] {
            let out = Command::new(&psql)
                .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-c", &sql])
                .output()
                .expect("run psql");
            assert!(
                out.status.success(),
                "{sql} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

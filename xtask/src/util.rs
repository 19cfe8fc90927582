//! Helpers shared by the subcommands: where the workspace is, whether we run in CI or as root,
//! timed steps, and running commands with a clear error when they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root: xtask lives at `<root>/xtask`.
pub(crate) fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent().unwrap_or(dir).to_path_buf()
}

/// `CI` counts as set when present and not empty, `0` or `false`.
pub(crate) fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !(v.is_empty() || v == "0" || v == "false")
    })
}

/// Whether the effective user is root (read from /proc; false where /proc is missing).
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The cargo that runs us (cargo sets `CARGO` for `cargo run`), else `cargo` from PATH.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// Run one named step: print what it does, run it, print how it went and how long it took.
/// The closure returns a short detail for the closing line (may be empty).
pub(crate) fn step<T>(what: &str, f: impl FnOnce() -> Result<(T, String)>) -> Result<T> {
    eprintln!("xtask: ==> {what}");
    let start = Instant::now();
    let result = f();
    let took = fmt_duration(start.elapsed());
    match result {
        Ok((value, detail)) => {
            if detail.is_empty() {
                eprintln!("xtask: ok  {what} ({took})");
            } else {
                eprintln!("xtask: ok  {what}: {detail} ({took})");
            }
            Ok(value)
        }
        Err(err) => {
            eprintln!("xtask: ERR {what}: failed after {took}");
            Err(err.context(format!("step `{what}` failed")))
        }
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Run a command with inherited stdout/stderr; fail when it does not exit 0.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let desc = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{desc}`"))?;
    if !status.success() {
        bail!("`{desc}` exited with {status}");
    }
    Ok(())
}

/// Run a command capturing its output; fail (showing the output) when it does not exit 0.
pub(crate) fn run_captured(cmd: &mut Command) -> Result<Output> {
    let desc = describe(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{desc}`"))?;
    if !out.status.success() {
        bail!(
            "`{desc}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out)
}

/// First line of `program --version`-style output, if the program runs.
pub(crate) fn version_of(program: &str, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

/// Installs Debian packages (root only), running `apt-get update` once per xtask run.
#[derive(Default)]
pub(crate) struct Apt {
    updated: bool,
}

impl Apt {
    pub(crate) fn install(&mut self, packages: &[&str]) -> Result<()> {
        if !is_root() {
            bail!(
                "installing {} needs root (apt-get); install it yourself",
                packages.join(" ")
            );
        }
        if !self.updated {
            step("apt-get update", || {
                run(Command::new("apt-get")
                    .args(["-q", "update"])
                    .env("DEBIAN_FRONTEND", "noninteractive"))?;
                Ok(((), String::new()))
            })?;
            self.updated = true;
        }
        let what = format!("apt-get install -y {}", packages.join(" "));
        step(&what, || {
            run(Command::new("apt-get")
                .args(["-q", "install", "-y"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
            Ok(((), String::new()))
        })
    }
}

/// `cargo metadata --format-version 1 --no-deps` for the workspace.
pub(crate) fn cargo_metadata() -> Result<serde_json::Value> {
    let out = run_captured(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    serde_json::from_slice(&out.stdout).context("cargo metadata printed invalid JSON")
}

//! `cargo xtask test [--pg|--no-pg] [-- <cargo test args>]`: ensure the tests' prerequisites,
//! then run `cargo test --workspace`.
//!
//! What the test process gets:
//! - `CALLSYNC_TEST_PG_URL=postgres://postgres@127.0.0.1:PORT/callsync_test` — a throwaway
//!   PostgreSQL whose user is superuser (tests `CREATE DATABASE` their own databases from it).
//!   Taken as is when already set in the environment.
//! - `CALLSYNC_CHROMIUM=/usr/bin/chromium` — for the admin page's browser test.
//! - `CALLSYNC_SF_CLIENTS_DIR=<target>/sf-clients` — where sf-sim's fidelity tests install
//!   jsforce and simple-salesforce.
//!
//! In CI (`CI` set) a missing prerequisite fails the run; it never silently skips tests.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::chromium;
use crate::pg::PgServer;
use crate::util::{self, Apt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgMode {
    /// Try; required only in CI.
    Auto,
    /// `--pg`: required.
    Required,
    /// `--no-pg`: skip.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) pg: PgMode,
    /// Everything after `--`, passed to `cargo test` (which gets `--workspace` unless these
    /// name a package with `-p`/`--package`).
    pub(crate) cargo_args: Vec<String>,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        let mut opts = Options {
            pg: PgMode::Auto,
            cargo_args: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--pg" if opts.pg != PgMode::Skip => opts.pg = PgMode::Required,
                "--no-pg" if opts.pg != PgMode::Required => opts.pg = PgMode::Skip,
                "--pg" | "--no-pg" => bail!("--pg and --no-pg exclude each other"),
                "--" => {
                    opts.cargo_args = iter.cloned().collect();
                    break;
                }
                other => bail!(
                    "unknown option `{other}` (usage: test [--pg|--no-pg] [-- <cargo test args>])"
                ),
            }
        }
        Ok(opts)
    }
}

fn target_dir() -> Result<PathBuf> {
    let md = util::cargo_metadata()?;
    md["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata has no target_directory")
}

pub(crate) fn run(opts: &Options) -> Result<()> {
    let ci = util::is_ci();
    let mut apt = Apt::default();
    // `-p <crate>` after `--` narrows the run; otherwise the whole workspace.
    let narrowed = opts
        .cargo_args
        .iter()
        .any(|a| a == "-p" || a.starts_with("--package"));
    let scope = if narrowed { "" } else { "--workspace" };
    let mut cmd = util::cargo();
    // Every failing test binary is reported, not just the first.
    cmd.args(["test", "--no-fail-fast"]);
    if !narrowed {
        cmd.arg(scope);
    }
    cmd.args(&opts.cargo_args);
    if ci {
        cmd.env("CARGO_INCREMENTAL", "0");
    }

    // PostgreSQL
    let mut server = None;
    let external = std::env::var("CALLSYNC_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    match (opts.pg, external) {
        (PgMode::Skip, _) => {
            eprintln!("xtask: skip PostgreSQL (--no-pg): PostgreSQL tests will not run");
            cmd.env_remove("CALLSYNC_TEST_PG_URL");
        }
        (_, Some(url)) => {
            eprintln!("xtask: use PostgreSQL from CALLSYNC_TEST_PG_URL={url}");
        }
        (mode, None) => {
            let required = ci || mode == PgMode::Required;
            match util::step("start throwaway PostgreSQL", || {
                let s = PgServer::start(&mut apt)?;
                let detail = format!("{} at {}", s.version, s.url);
                Ok((s, detail))
            }) {
                Ok(s) => {
                    cmd.env("CALLSYNC_TEST_PG_URL", &s.url);
                    server = Some(s);
                }
                Err(err) if required => {
                    let why = if ci { "CI is set" } else { "--pg was given" };
                    return Err(err.context(format!(
                        "PostgreSQL is required ({why}); use --no-pg to skip its tests locally"
                    )));
                }
                Err(err) => {
                    eprintln!(
                        "xtask: warning: no PostgreSQL ({err:#}); PostgreSQL tests will not run"
                    );
                }
            }
        }
    }

    // Chromium
    match util::step("ensure Chromium", || {
        let path = chromium::ensure(&mut apt)?;
        let detail = format!("{} ({})", path.display(), chromium::version(&path));
        Ok((path, detail))
    }) {
        Ok(path) => {
            cmd.env("CALLSYNC_CHROMIUM", path);
        }
        Err(err) if ci => {
            return Err(err.context("Chromium is required in CI (for the admin page browser test)"));
        }
        Err(err) => {
            eprintln!("xtask: warning: no Chromium ({err:#}); the browser test cannot run");
        }
    }

    // Salesforce client libraries' directory (the sf-sim tests install into it).
    let clients = util::step("prepare SF clients dir", || {
        let dir = target_dir()?.join("sf-clients");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let python =
            util::version_of("python3", "--version").unwrap_or_else(|| "python3 missing".into());
        let node = util::version_of("node", "--version")
            .map(|v| format!("node {v}"))
            .unwrap_or_else(|| "node missing".into());
        let detail = format!(
            "CALLSYNC_SF_CLIENTS_DIR={} ({python}, {node})",
            dir.display()
        );
        Ok((dir, detail))
    })?;
    cmd.env("CALLSYNC_SF_CLIENTS_DIR", clients);

    let what = ["cargo test", scope, &opts.cargo_args.join(" ")]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let tested = util::step(&what, || {
        let tally = run_counting(&mut cmd)?;
        Ok((
            (),
            format!("{} passed, {} failed", tally.passed, tally.failed),
        ))
    });

    if let Some(server) = server {
        util::step("stop PostgreSQL and remove its dir", || {
            server.stop().map(|()| ((), String::new()))
        })?;
    }
    tested
}

/// Totals over every `test result:` line cargo test printed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

impl Tally {
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let n = |w: &str| w.parse::<u64>().unwrap_or(0);
            match words.as_slice() {
                [.., count, "passed"] => self.passed += n(count),
                [count, "failed"] => self.failed += n(count),
                _ => {}
            }
        }
    }
}

/// Runs cargo test, passing its output through, and counts the results. Writes the plain
/// closing line (`tests: N passed, N failed`) to `target/test-tally.txt` for `.ci/run` to print
/// last, since cargo's own last line is often a doc-test binary with nothing in it.
fn run_counting(cmd: &mut std::process::Command) -> Result<Tally> {
    use std::io::{BufRead, BufReader, Write};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let mut tally = Tally::default();
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout().lock();
        for line in BufReader::new(out).lines() {
            let line = line.context("reading cargo test output")?;
            tally.add_line(&line);
            let _ = writeln!(stdout, "{line}");
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    let summary = format!("tests: {} passed, {} failed", tally.passed, tally.failed);
    if let Ok(dir) = target_dir() {
        let _ = std::fs::write(dir.join("test-tally.txt"), format!("{summary}\n"));
    }
    println!("{summary}");
    if !status.success() {
        anyhow::bail!("cargo test failed ({status}); {summary}");
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_sums_cargo_test_result_lines() {
        let mut t = Tally::default();
        for line in [
            "test result: ok. 18 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.04s",
            "running 3 tests",
            "test result: FAILED. 51 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 12.61s",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
        ] {
            t.add_line(line);
        }
        assert_eq!(
            t,
            Tally {
                passed: 69,
                failed: 1
            }
        );
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_pg_flags_and_cargo_args() {
        let o = Options::parse(&args(&[])).unwrap();
        assert_eq!(o.pg, PgMode::Auto);
        assert_eq!(
            Options::parse(&args(&["--pg"])).unwrap().pg,
            PgMode::Required
        );
        let o = Options::parse(&args(&["--no-pg", "--", "-p", "domain", "--pg"])).unwrap();
        assert_eq!(o.pg, PgMode::Skip);
        assert_eq!(o.cargo_args, args(&["-p", "domain", "--pg"]));
    }

    #[test]
    fn rejects_conflicting_or_unknown_flags() {
        assert!(Options::parse(&args(&["--pg", "--no-pg"])).is_err());
        assert!(Options::parse(&args(&["--no-pg", "--pg"])).is_err());
        assert!(Options::parse(&args(&["--fast"])).is_err());
    }
}

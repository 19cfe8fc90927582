//! `cargo xtask ci`: everything CI checks, in order, stopping at the first failure.
//! fmt → clippy → tidy → rules → doc → test (with its prerequisites). Prints a summary with durations.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::run_tests::{self, Options, PgMode};
use crate::{rules, tidy, util};

type StepFn = fn() -> Result<()>;

fn fmt() -> Result<()> {
    util::run(util::cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> Result<()> {
    util::run(util::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

fn doc() -> Result<()> {
    util::run(
        util::cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}

fn test() -> Result<()> {
    run_tests::run(&Options {
        pg: PgMode::Auto,
        cargo_args: Vec::new(),
    })
}

const STEPS: &[(&str, StepFn)] = &[
    ("cargo fmt --all -- --check", fmt),
    (
        "cargo clippy --workspace --all-targets -- -D warnings",
        clippy,
    ),
    ("xtask tidy", tidy::run),
    // Every SPEC rule (R1…R41, C1…C3) must have at least one test citing it.
    ("xtask rules", rules::run),
    (
        "RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps",
        doc,
    ),
    ("xtask test (prerequisites + cargo test --workspace)", test),
];

fn summary(done: &[(&str, Duration, bool)], total: Duration) {
    eprintln!("\nxtask ci summary:");
    for (name, took, ok) in done {
        let mark = if *ok { "ok  " } else { "FAIL" };
        eprintln!("  {mark} {:>8}  {name}", util::fmt_duration(*took));
    }
    for (name, _) in STEPS.iter().skip(done.len()) {
        eprintln!("  skip {:>8}  {name}", "-");
    }
    eprintln!("  total {}", util::fmt_duration(total));
}

pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    let mut done = Vec::new();
    for (name, f) in STEPS {
        eprintln!("\nxtask ci: ==> {name}");
        let step_start = Instant::now();
        let result = f();
        let took = step_start.elapsed();
        done.push((*name, took, result.is_ok()));
        if let Err(err) = result {
            summary(&done, start.elapsed());
            return Err(anyhow!("ci step `{name}` failed: {err:#}"));
        }
        eprintln!("xtask ci: ok  {name} ({})", util::fmt_duration(took));
    }
    summary(&done, start.elapsed());
    eprintln!("xtask ci: all steps passed");
    Ok(())
}

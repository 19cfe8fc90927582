//! `cargo xtask`: callsync's developer tooling (ci, test, tidy, rules, demo, bench, soak).
//!
//! One module per subcommand; `util` holds the shared helpers (workspace root, step timing,
//! running commands). Run `cargo xtask help` for usage.

mod bench;
mod chromium;
mod ci;
mod demo;
mod pg;
mod rules;
mod run_tests;
mod soak;
mod tidy;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  ci                     fmt --check, clippy -D warnings, tidy, doc -D warnings, then `test`
  test [--pg|--no-pg] [-- <cargo test args>]
                         ensure test prerequisites (PostgreSQL, Chromium, SF client dir) and run
                         `cargo test --workspace`. Default: start a throwaway PostgreSQL if
                         possible (required when CI is set); --pg requires it; --no-pg skips it
  tidy                   dependency-arrow rules and crate doc checks over `cargo metadata`
  rules                  rule -> tests table from docs/specs/SPEC.md; fails on untested rules
  demo [--exit]          seeded sf-sim + callsync + a morning of calls, then a report
  bench [--quick]        the performance table (target/bench/report.json)
  soak [--quick] [--only crash|faults|pg] [--events N] [--kills N] [--no-pg]
                         crash soak: the release callsync under SIGKILLs, Salesforce faults and
                         two instances on PostgreSQL; prints processed/lost/duplicates
  help                   this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let result = match cmd.as_str() {
        "ci" => no_args(cmd, rest).and_then(|()| ci::run()),
        "test" => run_tests::Options::parse(rest).and_then(|opts| run_tests::run(&opts)),
        "tidy" => no_args(cmd, rest).and_then(|()| tidy::run()),
        "rules" => no_args(cmd, rest).and_then(|()| rules::run()),
        "demo" => demo::run(rest),
        "bench" => bench::run(rest),
        "soak" => soak::run(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n");
            eprint!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {cmd}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn no_args(cmd: &str, rest: &[String]) -> anyhow::Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("`{cmd}` takes no arguments (got {rest:?})")
    }
}

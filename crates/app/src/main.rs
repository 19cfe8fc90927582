//! `callsync`: see `callsync --help`. All the work is in the library (`app::cli`).

use clap::Parser as _;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    app::cli::run(app::cli::Cli::parse()).await
}

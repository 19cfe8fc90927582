//! `cargo xtask demo`: callsync end to end in one command. Starts a seeded Japanese org in
//! sf-sim, runs the real `callsync serve` against it on SQLite, drives it only through its HTTP
//! API and webhooks (tenant, settings, OAuth connect, import, a morning of calls), prints a
//! report with a ✔/✘ per scenario, and keeps callsync running for the admin page until Ctrl-C
//! (`--exit`: stop after the report). The modules live in `tests/src/demo/`.

#[path = "../demo/mod.rs"]
mod demo;

fn main() -> std::process::ExitCode {
    demo::main()
}

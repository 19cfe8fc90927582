//! The callsync service: configuration, wiring, the HTTP server (API, OAuth callback, admin
//! page, webhook intake, health and metrics), the sync scheduler, the call-event workers and
//! the `callsync` command line.
//!
//! This is the only crate (besides tests) that depends on the adapters: `wiring` builds the
//! storage and Salesforce adapters from [`config::Settings`] and hands them, as the domain's
//! ports, to everything else. Start reading at [`startup::Application::build`] (the same
//! function production and tests use), then [`http`] (routes; errors become HTTP in
//! `http::error` only) and [`service`] (what the API and the admin page do).

pub mod cli;
pub mod config;
pub mod http;
pub mod metered;
pub mod ports;
pub mod scheduler;
pub mod security;
pub mod service;
pub mod startup;
pub mod stats;
pub mod store_admin;
pub mod telemetry;
pub mod wiring;

pub use config::Settings;
pub use startup::Application;

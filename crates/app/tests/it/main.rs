//! The app's integration tests, one binary: the real app on port 0 with its own storage per
//! test, Salesforce simulated by `sf-sim`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod browser;
mod cdp;
mod cli;
mod e2e;
mod helpers;
mod oauth;
mod rules;

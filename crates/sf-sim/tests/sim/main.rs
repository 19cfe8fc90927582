//! Contract tests: every endpoint and fault, asserting exact wire shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clients;
mod faults;
mod helpers;
mod oauth;
mod query;
mod writes;

//! wiremock-backed tests of sf-adapter's public API: the executor's request lifecycle, reads,
//! writes, OAuth, and the number of requests each operation costs; and (`sim`, in
//! `tests/sim/`) the same public API against the sf-sim simulator. One test binary.

// Test helpers outside #[test] fns panic on purpose when a fixture is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod executor;
mod oauth;
mod reads;
#[path = "../sim/mod.rs"]
mod sim;
mod support;
mod writes;

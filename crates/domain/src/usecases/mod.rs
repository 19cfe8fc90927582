//! Use cases: services that orchestrate the rules over the ports. Still no IO of their own.

pub mod call_logging;
pub mod sync;

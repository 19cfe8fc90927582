//! The rules of SPEC.md as pure functions, one module per rule group. Each module's tests
//! cite the rule ids they prove.

pub mod budget;
pub mod create;
pub mod dedupe;
pub mod explain;
pub mod folding;
pub mod notify;
pub mod owner;
pub mod routing;
pub mod sync_fields;
pub mod task;
pub mod transcript;

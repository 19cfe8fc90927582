//! callsync's pure core: validated types, the rules of `docs/specs/SPEC.md` as plain
//! functions, and the ports (traits) that adapters implement.
//!
//! This crate does no IO. It must not depend on tokio's runtime, reqwest, sea-orm, axum or
//! figment (`cargo xtask tidy` enforces it). Start reading at [`phone`] (R13), then
//! [`rules`] (one module per SPEC rule group) and [`ports`]. Salesforce field names and table
//! names never appear here: adapters translate.

pub mod call;
pub mod email;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod ids;
pub mod model;
pub mod phone;
pub mod ports;
pub mod rules;
pub mod settings;
pub mod usecases;

pub use call::*;
pub use email::{EmailAddress, EmailError};
pub use error::*;
pub use ids::*;
pub use model::*;
pub use phone::{PartyNumber, PhoneError, PhoneNumber};
pub use settings::*;

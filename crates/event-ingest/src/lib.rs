//! event-ingest: call webhooks in (intake) and, later, the worker that turns stored call events
//! into Salesforce activities.
//!
//! The intake half receives the phone system's call webhooks (`POST /webhooks/{tenant}/calls`),
//! checks the sender's HMAC signature, parses the body into a [`domain::CallEvent`] and stores it
//! through [`domain::ports::EventLog::accept`] before answering 2xx (SPEC "Call events", R25,
//! R27). This crate depends on `domain` and on axum for HTTP, never on another adapter: storage
//! arrives as a port, wired by `app`. Start reading at [`intake::webhook_router`], then
//! [`parse`] (the field rules, pure functions) and [`signature`] (the scheme senders implement,
//! described in this crate's README).

pub mod intake;
pub mod parse;
pub mod signature;

pub use intake::{IntakeLimits, IntakeState, TenantSecrets, webhook_router};
pub use parse::{FieldProblem, ParseErrors, parse_form, parse_json};
pub use signature::{SignatureError, sign, verify};

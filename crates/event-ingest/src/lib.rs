//! event-ingest: call webhooks in, exactly one Salesforce activity per call out.
//!
//! Two halves. The intake receives the phone system's call webhooks
//! (`POST /webhooks/{tenant}/calls`), checks the sender's HMAC signature, parses the body into a
//! [`domain::CallEvent`] and stores it through [`domain::ports::EventLog::accept`] before
//! answering 2xx (SPEC "Call events", R25, R27). The [`worker`] claims stored events and runs
//! the domain's call-logging use case over them. This crate depends on `domain` and on axum and
//! tokio, never on another adapter: storage and Salesforce arrive as ports, wired by `app`.
//! Start reading at [`intake::webhook_router`], then [`parse`] (the field rules, pure
//! functions), [`signature`] (the scheme senders implement, described in this crate's README)
//! and [`worker::Worker::step`].

pub mod intake;
pub mod parse;
pub mod signature;
pub mod worker;

pub use intake::{IntakeLimits, IntakeState, TenantSecrets, webhook_router};
pub use parse::{FieldProblem, ParseErrors, parse_form, parse_json};
pub use signature::{SignatureError, sign, verify};

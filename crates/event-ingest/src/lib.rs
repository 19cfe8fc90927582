//! event-ingest: call webhooks in, exactly one Salesforce activity per call out.
//!
//! Two halves. Intake (`intake`, `parse`, `signature`) verifies and parses the phone
//! system's webhooks and stores them durably before answering. The [`worker`] claims stored
//! events and runs the domain's call-logging use case over them. Depends on `domain` (and
//! axum/tokio); never on another adapter — `app` wires the store and Salesforce in. Start at
//! [`worker::Worker::step`].

pub mod worker;

//! sf-adapter: callsync's Salesforce client. It implements the domain's Salesforce ports
//! ([`domain::ports::SalesforceReader`], [`domain::ports::SalesforceWriter`],
//! [`domain::ports::ApiUsageView`]) over the REST API, and the OAuth 2.0 web-server flow with
//! PKCE that connects an org (R7, C1, C2, C3).
//!
//! It depends only on `domain` and the HTTP stack (reqwest with rustls/ring, serde), never on
//! another adapter. It is built like a hyperswitch connector: `transformers` holds the pure
//! conversions between domain types and Salesforce's wire shapes (SOQL/SOSL text, record JSON,
//! write payloads) — the only place Salesforce field names appear; `executor` is the one thin
//! layer that owns reqwest, sessions, refresh, retries, request ids and `Sforce-Limit-Info`
//! tracking; `errors` is the single table from Salesforce error codes to
//! [`domain::SfError`] (the admin view explains them with `domain::rules::explain`, R40).
//!
//! Start reading at [`SalesforceClient`] (`client.rs`), then `executor.rs` for the request
//! lifecycle, and `transformers.rs` for what goes over the wire. Wire facts follow
//! the project's Salesforce wire reference (`salesforce-api.md`). Tests: unit tests beside the code (fixtures in
//! `tests/fixtures/`), wiremock-backed tests of the public API in `tests/wire/`, and the same
//! API against the stateful simulator `sf-sim` (a dev-dependency) in `tests/sim/`, compiled
//! into the same test binary.

mod client;
mod config;
mod errors;
pub mod escape;
mod executor;
mod oauth;
mod transformers;

pub use client::{COLLECTION_LIMIT, SalesforceClient};
pub use config::{ConfigError, SfConfig};
pub use executor::with_request_id;
pub use oauth::{Disconnected, Pkce, generate_state};

//! callsync's storage adapter: sea-orm entities and migrations for SQLite (the embedded
//! default, in WAL mode) and PostgreSQL (production, several instances sharing one
//! database), implementing every storage port of `domain::ports` on one cloneable [`Store`].
//!
//! It depends on `domain` and sea-orm (plus crypto and serde helpers) — never on another
//! adapter; only `app` and tests depend on it. Table and column names never leave this crate.
//!
//! Start reading at [`Store`] (`store.rs`: connecting, pragmas, transactions), then the
//! migration (`migration/`, the whole schema in one place), then one file per port:
//! `customers.rs` (R11, R14, R16, R18), `events.rs` (durable intake), `queue.rs` (claims and
//! leases), `credentials.rs` with `crypto.rs` (tokens encrypted at rest, R7), and `misc.rs`
//! (settings, call tasks, directory, sync runs, locks, audit). Invariants:
//! - every method takes the tenant, and every query filters by it; the only cross-tenant
//!   reads are `WorkQueue::claim` and [`Store::tenants`];
//! - secrets are stored only as AES-256-GCM ciphertext next to the id of the key that sealed it;
//! - a queue item is never deleted: done, dead and held items stay visible;
//! - rule-bearing times (leases, due dates, lock expiry) come from the caller's `now`.

mod checkpoint;
mod convert;
mod credentials;
mod crypto;
mod customers;
mod entity;
mod error;
mod events;
mod migration;
mod misc;
mod queue;
mod sql;
mod store;
mod tenants;

pub use checkpoint::Checkpoints;
pub use crypto::{KeyError, Keyring};
pub use customers::{CustomerEdit, CustomerFilter};
pub use misc::AuditEntry;
pub use store::{Backend, Store};
pub use tenants::Tenant;

//! Translating sea-orm/sqlx errors into the domain's `StoreError`.
//!
//! Driver text never reaches `Unavailable`'s message (it may name tables, values or hosts); it
//! is logged here instead, once, with the operation that failed.

use domain::StoreError;
use sea_orm::{DbErr, SqlErr};

/// Maps a database error to the domain error, logging the driver's text.
pub(crate) fn db_err(op: &'static str, e: DbErr) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            tracing::debug!(op, error = %e, "unique constraint violated");
            StoreError::Conflict(format!("{op}: a row with the same identity exists"))
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
            tracing::debug!(op, error = %e, "foreign key violated");
            StoreError::NotFound(format!(
                "{op}: the tenant (or the referenced row) does not exist"
            ))
        }
        _ => match e {
            DbErr::Type(_) | DbErr::Json(_) | DbErr::TryIntoErr { .. } => {
                tracing::error!(op, error = %e, "stored data could not be decoded");
                StoreError::Corrupt(format!("{op}: a stored value has an unexpected type"))
            }
            _ => {
                tracing::error!(op, error = %e, "database operation failed");
                StoreError::Unavailable(format!("{op} failed"))
            }
        },
    }
}

/// A value read back from the database that does not parse as its domain type.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

pub(crate) fn json_err(what: &str, e: serde_json::Error) -> StoreError {
    corrupt(what, e)
}

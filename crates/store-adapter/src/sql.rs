//! A tiny builder for the hand-written statements (upserts, bulk inserts, the queue claim).
//!
//! Placeholders are `$n` on both backends: PostgreSQL's native form, and a numbered parameter
//! that sqlx binds by number on SQLite, so one text serves both and a value may be referenced
//! more than once.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

/// SQLite's default limit on bound parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`)
/// since 3.32; PostgreSQL allows 65,535. Bulk statements stay under the smaller.
pub(crate) const MAX_BINDS: usize = 32_766;

#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    pub(crate) fn with_capacity(text: &str, values: usize) -> Self {
        let mut s = Self::new(text);
        s.values.reserve(values);
        s.text.reserve(values * 6);
        s
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Binds a value and appends its placeholder.
    pub(crate) fn bind(&mut self, v: impl Into<Value>) -> &mut Self {
        self.values.push(v.into());
        self.text.push('$');
        self.text.push_str(&self.values.len().to_string());
        self
    }

    /// Binds a value without appending its placeholder; returns the placeholder for reuse.
    pub(crate) fn param(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        format!("${}", self.values.len())
    }

    /// `($a, $b, …)` for a list of values.
    pub(crate) fn bind_list<V: Into<Value>>(
        &mut self,
        vs: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        self.text.push('(');
        for (i, v) in vs.into_iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }

    pub(crate) fn statement(self, backend: DbBackend) -> Statement {
        Statement::from_sql_and_values(backend, self.text, self.values)
    }

    pub(crate) async fn execute<C: ConnectionTrait>(self, c: &C) -> Result<u64, sea_orm::DbErr> {
        let stmt = self.statement(c.get_database_backend());
        Ok(c.execute_raw(stmt).await?.rows_affected())
    }

    pub(crate) async fn all<C: ConnectionTrait>(
        self,
        c: &C,
    ) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        let stmt = self.statement(c.get_database_backend());
        c.query_all_raw(stmt).await
    }

    pub(crate) async fn one<C: ConnectionTrait>(
        self,
        c: &C,
    ) -> Result<Option<QueryResult>, sea_orm::DbErr> {
        let stmt = self.statement(c.get_database_backend());
        c.query_one_raw(stmt).await
    }
}

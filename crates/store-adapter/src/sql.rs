//! A tiny builder for the hand-written statements (upserts, bulk inserts, the queue claim).
//!
//! Statements are written once with PostgreSQL's `$n` placeholders, so a value may be
//! referenced more than once. For SQLite they are rewritten to anonymous `?` with the values
//! repeated in order of appearance: SQLite resolves *named* and numbered parameters with a
//! linear scan per parameter, which made a 20,000-parameter bulk insert quadratic (90% of
//! the import time was `sqlite3_bind_parameter_name`).

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

/// SQLite's default limit on bound parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`)
/// since 3.32; PostgreSQL allows 65,535. Bulk statements stay under the smaller.
pub(crate) const MAX_BINDS: usize = 32_766;

/// Rows per multi-row statement. More rows per statement saved little past a few hundred,
/// and each prepared statement is cached per connection: a 2,500-row insert is a program of
/// megabytes, and a large import held hundreds of MiB of them.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Values per `IN (…)` list, for the same reason.
pub(crate) const IN_LIST: usize = 2_500;

/// Rows one multi-row statement carries when each row has `placeholders` placeholders: at
/// most [`ROWS_PER_STATEMENT`], and within [`MAX_BINDS`] counting every use of a shared
/// parameter (tenant, time), which the SQLite rewrite binds at each use.
pub(crate) const fn rows_per_statement(placeholders: usize) -> usize {
    let fit = MAX_BINDS / placeholders;
    if fit < ROWS_PER_STATEMENT {
        fit
    } else {
        ROWS_PER_STATEMENT
    }
}

/// `items` in chunks of `max`, then the rest in chunks of descending powers of two
/// (600 → 512, 64, 16, 8). A bulk statement's text depends on its row count and each text
/// is a prepared statement of its own: remainders of every size made each commit of an
/// import prepare (and cache, and later evict) new multi-megabyte programs. This way a
/// statement has one of at most `1 + log2(max)` shapes, prepared once per connection.
pub(crate) fn shaped<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let max = max.max(1);
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() >= max {
            max
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

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
        match backend {
            DbBackend::Sqlite => {
                let (text, values) = positional(&self.text, &self.values);
                Statement::from_sql_and_values(backend, text, values)
            }
            _ => Statement::from_sql_and_values(backend, self.text, self.values),
        }
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

/// `$n` → `?`, with `values[n - 1]` appended for each occurrence. Text inside single-quoted
/// literals is left alone (values are always bound, so literals are only our own constants).
fn positional(text: &str, values: &[Value]) -> (String, Vec<Value>) {
    let mut out = String::with_capacity(text.len());
    let mut vals = Vec::with_capacity(values.len());
    let mut chars = text.char_indices().peekable();
    let mut in_literal = false;
    while let Some((_, c)) = chars.next() {
        if c == '\'' {
            in_literal = !in_literal;
            out.push(c);
            continue;
        }
        if c == '$' && !in_literal {
            let mut n = 0usize;
            let mut digits = 0;
            while let Some(&(_, d)) = chars.peek() {
                match d.to_digit(10) {
                    Some(v) => {
                        n = n * 10 + v as usize;
                        digits += 1;
                        chars.next();
                    }
                    None => break,
                }
            }
            if let Some(v) = n
                .checked_sub(1)
                .and_then(|i| values.get(i))
                .filter(|_| digits > 0)
            {
                out.push('?');
                vals.push(v.clone());
            } else {
                out.push('$');
                out.push_str(&n.to_string());
            }
            continue;
        }
        out.push(c);
    }
    (out, vals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_positional_in_order_of_use() {
        let mut q = Sql::new("INSERT INTO t VALUES ");
        let tp = q.param("tenant");
        q.push("(")
            .push(&tp)
            .push(",")
            .bind(1i64)
            .push(",'$1 [] ?')");
        q.push(",(").push(&tp).push(",").bind(2i64).push(")");
        let stmt = q.statement(DbBackend::Sqlite);
        assert_eq!(stmt.sql, "INSERT INTO t VALUES (?,?,'$1 [] ?'),(?,?)");
        let values = stmt.values.map(|v| v.0).unwrap_or_default();
        let expected: Vec<Value> = vec!["tenant".into(), 1i64.into(), "tenant".into(), 2i64.into()];
        assert_eq!(values, expected);
    }

    #[test]
    fn chunks_are_full_then_powers_of_two() {
        let items: Vec<u32> = (0..2_600).collect();
        let sizes: Vec<usize> = shaped(&items, 1_000).map(<[u32]>::len).collect();
        assert_eq!(sizes, [1_000, 1_000, 512, 64, 16, 8]);
        let back: Vec<u32> = shaped(&items, 1_000).flatten().copied().collect();
        assert_eq!(back, items, "every item once, in order");
        assert_eq!(shaped(&items[..0], 1_000).count(), 0);
        assert_eq!(shaped(&items[..1_000], 1_000).count(), 1);
        // Whatever the length, few distinct sizes.
        let shapes: std::collections::HashSet<usize> = (1..3_000)
            .flat_map(|n| {
                shaped(&items[..n.min(2_600)], 1_000)
                    .map(<[u32]>::len)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(shapes.len() <= 11, "{shapes:?}");
    }

    #[test]
    fn postgres_keeps_numbered_placeholders() {
        let mut q = Sql::new("SELECT ");
        q.bind(1i64).push(" + ").bind(2i64);
        assert_eq!(q.statement(DbBackend::Postgres).sql, "SELECT $1 + $2");
    }
}

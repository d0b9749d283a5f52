//! Statements built at run time (search filters, scope lists) with numbered placeholders.
//!
//! `sqlx::QueryBuilder<Any>` writes `?` for every bound value, which PostgreSQL refuses; this builder writes
//! `$1`, `$2`, ... which both engines read, so that a dynamic query has one text on SQLite and PostgreSQL.
//! Values are always bound, never spliced into the text.

use super::Pool;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Arguments, Encode, FromRow, Type};
use std::fmt::Write as _;

/// A statement under construction: its text and the values bound so far.
#[derive(Default)]
pub struct SqlBuilder {
    sql: String,
    args: AnyArguments<'static>,
    count: usize,
    /// The first value that could not be encoded (reported when the statement runs).
    error: Option<String>,
}

impl SqlBuilder {
    pub fn new(sql: impl Into<String>) -> SqlBuilder {
        SqlBuilder {
            sql: sql.into(),
            ..SqlBuilder::default()
        }
    }

    /// Appends statement text (never a value from outside: those go through [`SqlBuilder::push_bind`]).
    pub fn push(&mut self, sql: impl AsRef<str>) -> &mut SqlBuilder {
        self.sql.push_str(sql.as_ref());
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub fn push_bind<T>(&mut self, value: T) -> &mut SqlBuilder
    where
        T: 'static + Send + Encode<'static, Any> + Type<Any>,
    {
        self.count += 1;
        let _ = write!(self.sql, "${}", self.count);
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e.to_string());
        }
        self
    }

    /// Appends `(v1, v2, ...)`, each bound.
    pub fn push_list<T, I>(&mut self, values: I) -> &mut SqlBuilder
    where
        T: 'static + Send + Encode<'static, Any> + Type<Any>,
        I: IntoIterator<Item = T>,
    {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(v);
        }
        self.push(")")
    }

    /// The statement's text so far.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Runs the statement and reads every row as `O`.
    pub async fn fetch_all<O>(self, pool: &Pool) -> Result<Vec<O>, sqlx::Error>
    where
        O: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        if let Some(e) = self.error {
            return Err(sqlx::Error::Encode(e.into()));
        }
        sqlx::query_as_with::<_, O, _>(&self.sql, self.args)
            .fetch_all(pool)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut q = SqlBuilder::new("SELECT 1 WHERE a = ");
        q.push_bind(1i64)
            .push(" AND b IN ")
            .push_list(["x".to_owned(), "y".to_owned()]);
        assert_eq!(q.sql(), "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
    }
}

//! The database: a `sqlx` pool (SQLite in WAL mode by default), the migrations of `migrations/`, and one
//! module of queries per table group. Queries are written in portable SQL so that PostgreSQL can follow.
//!
//! Invariants: every change that spans several rows runs in one transaction (nothing is half-written on
//! error); a transaction that reads before it writes starts with `BEGIN IMMEDIATE` (SQLite cannot wait
//! to upgrade a read snapshot to a write: it fails at once with "database is locked"); unique and foreign-key violations come back as [`DbError::Conflict`] and [`DbError::Invalid`],
//! which the API turns into 409 and 422.

pub mod cameras;
pub mod regions;
pub mod sites;
pub mod tokens;
pub mod users;
pub mod walls;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub type Pool = SqlitePool;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A secret could not be sealed or opened (`auth::secrets`); the message never holds the secret.
    #[error("secret storage: {0}")]
    Secret(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// Classifies constraint violations so that callers can answer the client precisely.
    pub fn from_constraint(e: sqlx::Error, what: &str) -> DbError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return DbError::Conflict(format!("{what} already exists"));
            }
            // SQLite reports ON DELETE RESTRICT as a trigger constraint, with the same message.
            if db.is_foreign_key_violation()
                || db.message().contains("FOREIGN KEY constraint failed")
            {
                return DbError::Invalid(format!(
                    "{what} refers to something that does not exist or is still in use"
                ));
            }
            if db.is_check_violation() {
                return DbError::Invalid(format!("{what} has a value out of range"));
            }
        }
        DbError::Sqlx(e)
    }
}

/// Opens (creating when missing) the database and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Pool, DbError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with synchronous=NORMAL is durable at checkpoints and never corrupt; the index rows that must
        // survive a crash (segments) are written after their files are fsynced.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Overwrite deleted and replaced content, so that a secret replaced by its sealed form (camera
        // passwords) does not linger in free pages of the file.
        .pragma("secure_delete", "ON")
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// The database's time unit is Unix milliseconds (UTC); see [`crate::time`].
pub use crate::time::{ms_to_rfc3339, now_ms};

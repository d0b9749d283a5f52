//! The database: a `sqlx::Any` pool on SQLite (WAL mode, the default) or PostgreSQL (a cluster's shared
//! index), the migrations of `migrations/sqlite` and `migrations/postgres` (the same tables and names), and
//! one module of queries per table group. One statement text serves both engines (docs/cluster.md).
//!
//! Invariants: every change that spans several rows runs in one transaction (nothing is half-written on
//! error); a transaction that reads before it writes starts with `BEGIN IMMEDIATE` (SQLite cannot wait
//! to upgrade a read snapshot to a write: it fails at once with "database is locked"); unique and foreign-key violations come back as [`DbError::Conflict`] and [`DbError::Invalid`],
//! which the API turns into 409 and 422.

pub mod cameras;
pub mod gb;
pub mod regions;
pub mod sites;
pub mod sql;
pub mod tokens;
pub mod users;
pub mod walls;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{Any, Executor, Transaction};

/// The pool, whichever engine its URL names (`sqlite://...` or `postgres://...`): one query layer.
pub type Pool = sqlx::AnyPool;
/// A transaction on [`Pool`].
pub type Tx<'c> = Transaction<'c, Any>;
/// One connection of [`Pool`].
pub type Conn = sqlx::AnyConnection;

/// The database engine behind a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Which engine a pool runs on (from its URL's scheme).
pub fn engine(pool: &Pool) -> Engine {
    engine_of(pool.connect_options().database_url.scheme())
}

fn engine_of(scheme: &str) -> Engine {
    if scheme.starts_with("postgres") {
        Engine::Postgres
    } else {
        Engine::Sqlite
    }
}

/// Starts a transaction that reads before it writes, serialised with every other such transaction.
///
/// SQLite: `BEGIN IMMEDIATE` takes the write lock at once (a deferred transaction cannot upgrade its read
/// snapshot and fails with "database is locked"). PostgreSQL: one transaction-scoped advisory lock plays
/// the same part across every node sharing the database, so that a read that decides a write (the audit
/// chain, a region's last admin, a batch of case events) sees every earlier write.
pub async fn begin_write(pool: &Pool) -> Result<Tx<'static>, sqlx::Error> {
    match engine(pool) {
        Engine::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Engine::Postgres => {
            let mut tx = pool.begin().await?;
            tx.execute(format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})").as_str())
                .await?;
            Ok(tx)
        }
    }
}

/// The advisory lock key of [`begin_write`] on PostgreSQL (any constant does; this one spells "VIGILW").
pub const WRITE_LOCK: i64 = 0x5649_4749_4c57;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// A write made under a lease whose epoch has moved on (another node owns the camera now).
    #[error("stale lease: {0}")]
    Stale(String),
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
///
/// `sqlite://FILE` (the default, created when missing) or `postgres://USER@HOST/DB` (the database must
/// exist; its schema is created by the migrations of `migrations/postgres`).
pub async fn connect(url: &str) -> Result<Pool, DbError> {
    install_default_drivers();
    let engine = engine_of(url.split(':').next().unwrap_or_default());
    let url = match engine {
        Engine::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        _ => url.to_owned(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    conn.execute(SQLITE_SETTINGS).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    match engine {
        Engine::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        Engine::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
    }
    Ok(pool)
}

/// Each SQLite connection's settings. WAL with synchronous=NORMAL is durable at checkpoints and never
/// corrupt; the index rows that must survive a crash (segments) are written after their files are fsynced,
/// in FULL-synced transactions (`record::index`). `secure_delete` overwrites deleted and replaced content,
/// so that a secret replaced by its sealed form (camera passwords) does not linger in free pages.
const SQLITE_SETTINGS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

/// The database's time unit is Unix milliseconds (UTC); see [`crate::time`].
pub use crate::time::{ms_to_rfc3339, now_ms};

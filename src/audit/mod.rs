//! The audit log: who did or watched what, when, from where, and how it ended.
//!
//! Invariants:
//! - The `audit` table is append-only: this module only INSERTs and SELECTs; nothing in the server
//!   updates or deletes a row.
//! - Rows are chained and keyed: `hash = HMAC-SHA-256(key, prev_hash || "\n" || canonical(row))`, where
//!   `prev_hash` is the hash of the row before (64 zeros for the first) and `canonical` is a JSON array of
//!   the row's fields in a fixed order. The key lives in `<data_dir>/keys/audit.key` (0600), never in the
//!   database, so someone who can write the database but not read the key cannot make a row that verifies:
//!   a row edited, inserted or deleted behind the server's back breaks the chain, which [`Log::verify`]
//!   (`vigil audit verify`, `vigil check`) finds and names. Rows written before the key existed (an older
//!   version) are plain SHA-256; the key file says from which row on the chain is keyed, so that a later
//!   row cannot be passed off as an old unkeyed one. Removing rows from the *end* of the log cannot be told
//!   from a shorter log; see `docs/security.md`.
//! - Appends are serialized per log (one lock in [`Log`]), and the read of the last hash and the insert
//!   run in one transaction, so the chain never forks.
//! - No secret is ever written here: callers pass names, ids and paths, never passwords or tokens.
//!
//! Routes record their rows declaratively through the access table (`api::access`); code that is not a
//! route (login, a WebSocket that ends) calls [`append`] directly.

mod key;

use crate::auth::Scope;
use crate::db::{DbError, Pool};
pub use key::{AuditKey, KeyError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record to append.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub region_code: Option<String>,
    pub status: u16,
    pub client: Option<String>,
    pub detail: Option<String>,
}

/// A stored audit record, as `GET /audit` returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    #[serde(serialize_with = "rfc3339")]
    pub at: i64,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub region_code: Option<String>,
    pub status: i64,
    pub client: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl Row {
    /// The canonical content that the hash covers (everything but the hashes themselves).
    fn canonical(&self) -> String {
        serde_json::json!([
            self.id,
            self.at,
            self.actor,
            self.role,
            self.action,
            self.target,
            self.region_code,
            self.status,
            self.client,
            self.detail
        ])
        .to_string()
    }

    /// The hash this row must have after `prev_hash`: keyed with `key`, or plain (rows older than the key).
    fn expected_hash(&self, prev_hash: &str, key: Option<&AuditKey>) -> String {
        let canonical = self.canonical();
        match key {
            Some(k) => k.mac(&[prev_hash.as_bytes(), b"\n", canonical.as_bytes()]),
            None => {
                let mut h = Sha256::new();
                h.update(prev_hash.as_bytes());
                h.update(b"\n");
                h.update(canonical.as_bytes());
                hex::encode(h.finalize())
            }
        }
    }
}

fn rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::db::ms_to_rfc3339(*ms))
}

const COLUMNS: &str =
    "id, at, actor, role, action, target, region_code, status, client, detail, prev_hash, hash";

/// The audit log of one database, with its key and the lock that keeps its chain from forking.
#[derive(Clone)]
pub struct Log {
    pool: Pool,
    key: Arc<AuditKey>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Log {
    /// The log of `pool`, keyed with the key in `<data_dir>/keys/audit.key` (made on first use, keying
    /// every row after the last one that exists now).
    pub async fn open(pool: Pool, data_dir: &std::path::Path) -> Result<Log, KeyError> {
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM audit")
            .fetch_one(&pool)
            .await
            .map_err(|e| KeyError::Db(e.to_string()))?;
        let key = AuditKey::load_or_create(data_dir, next)?;
        Ok(Log::with_key(pool, key))
    }

    /// The log of `pool` for checking it: the key must exist already. Opening for a check never makes
    /// one, or someone who removed the key file would get every keyed row read as an old unkeyed one.
    pub async fn open_to_verify(pool: Pool, data_dir: &std::path::Path) -> Result<Log, KeyError> {
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
            .fetch_one(&pool)
            .await
            .map_err(|e| KeyError::Db(e.to_string()))?;
        match AuditKey::load(data_dir)? {
            Some(key) => Ok(Log::with_key(pool, key)),
            // An empty log has nothing to verify.
            None if rows == 0 => Ok(Log::with_key(pool, AuditKey::new([0; 32], 1))),
            None => Err(KeyError::Missing(AuditKey::path(data_dir))),
        }
    }

    pub fn with_key(pool: Pool, key: AuditKey) -> Log {
        Log {
            pool,
            key: Arc::new(key),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The key a row with this id is chained with (`None`: a row from before the key).
    fn key_for(&self, id: i64) -> Option<&AuditKey> {
        (id >= self.key.keyed_since()).then_some(&*self.key)
    }

    /// Appends one record to the chain and returns its id.
    pub async fn append(&self, e: &Entry) -> Result<i64, DbError> {
        let _serial = self.lock.lock().await;
        let mut tx = crate::db::begin_write(&self.pool).await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (id, prev_hash) = match last {
            Some((id, hash)) => (id + 1, hash),
            None => (1, GENESIS.to_owned()),
        };
        let mut row = Row {
            id,
            at: crate::db::now_ms(),
            actor: e.actor.clone(),
            role: e.role.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            region_code: e.region_code.clone(),
            status: i64::from(e.status),
            client: e.client.clone(),
            detail: e.detail.clone(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.expected_hash(&row.prev_hash, self.key_for(id));
        sqlx::query(&format!(
            "INSERT INTO audit ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(row.id)
        .bind(row.at)
        .bind(&row.actor)
        .bind(&row.role)
        .bind(&row.action)
        .bind(&row.target)
        .bind(&row.region_code)
        .bind(row.status)
        .bind(&row.client)
        .bind(&row.detail)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Reads the whole log in order and checks every link of the chain and every row's keyed hash.
    pub async fn verify(&self) -> Result<ChainReport, DbError> {
        verify_chain(&self.pool, |id| self.key_for(id)).await
    }
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows read.
    pub rows: u64,
    /// Every break found: (row id, what is wrong).
    pub problems: Vec<(i64, String)>,
    /// Id and hash of the last row: write them down (or ship them elsewhere) to be able to tell later
    /// that no row was cut off the end.
    pub head: Option<(i64, String)>,
}

impl ChainReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

async fn verify_chain<'k>(
    pool: &Pool,
    key_for: impl Fn(i64) -> Option<&'k AuditKey>,
) -> Result<ChainReport, DbError> {
    let mut report = ChainReport {
        rows: 0,
        problems: Vec::new(),
        head: None,
    };
    let mut prev_hash = GENESIS.to_owned();
    let mut prev_id = 0i64;
    loop {
        let batch: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit WHERE id > $1 ORDER BY id LIMIT 1000"
        ))
        .bind(prev_id)
        .fetch_all(pool)
        .await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            report.rows += 1;
            if row.id != prev_id + 1 {
                report.problems.push((
                    row.id,
                    format!(
                        "rows {}..{} are missing",
                        prev_id + 1,
                        row.id.saturating_sub(1)
                    ),
                ));
            }
            if row.prev_hash != prev_hash {
                report.problems.push((
                    row.id,
                    "does not link to the row before it (a row was deleted or edited)".into(),
                ));
            }
            if row.hash != row.expected_hash(&row.prev_hash, key_for(row.id)) {
                report.problems.push((
                    row.id,
                    "content does not match its keyed hash (edited, or written without the key)"
                        .into(),
                ));
            }
            prev_hash = row.hash;
            prev_id = row.id;
            report.head = Some((prev_id, prev_hash.clone()));
        }
    }
    Ok(report)
}

/// The filter of `GET /audit`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: i64,
}

/// The newest rows that match the filter and whose region is in the scope (rows without a region only for
/// a global scope), newest first.
pub async fn query(pool: &Pool, f: &Filter, scope: &Scope) -> Result<Vec<Row>, DbError> {
    let mut q = crate::db::sql::SqlBuilder::new(format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1"));
    if let Some(a) = &f.actor {
        q.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(a) = &f.action {
        q.push(" AND action = ").push_bind(a.clone());
    }
    if let Some(t) = f.from_ms {
        q.push(" AND at >= ").push_bind(t);
    }
    if let Some(t) = f.to_ms {
        q.push(" AND at < ").push_bind(t);
    }
    if !scope.push_filter(&mut q, "region_code") {
        return Ok(Vec::new());
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
    Ok(q.fetch_all::<Row>(pool).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field_and_the_key() {
        let row = Row {
            id: 1,
            at: 5,
            actor: "a".into(),
            role: Some("admin".into()),
            action: "x".into(),
            target: None,
            region_code: Some("360700".into()),
            status: 200,
            client: None,
            detail: None,
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let key = AuditKey::new([7; 32], 1);
        let h = row.expected_hash(GENESIS, Some(&key));
        let mut edited = row.clone();
        edited.status = 201;
        assert_ne!(h, edited.expected_hash(GENESIS, Some(&key)));
        let mut edited = row.clone();
        edited.region_code = None;
        assert_ne!(h, edited.expected_hash(GENESIS, Some(&key)));
        assert_ne!(h, row.expected_hash(&"1".repeat(64), Some(&key)));
        // Without the key (or with another) the same row does not verify.
        assert_ne!(h, row.expected_hash(GENESIS, None));
        assert_ne!(
            h,
            row.expected_hash(GENESIS, Some(&AuditKey::new([8; 32], 1)))
        );
    }
}

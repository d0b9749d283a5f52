//! The `backfills` table (migration 0014): one row per gap being fetched back, its state and progress.
//!
//! A gap gets one row: a new gap that overlaps an existing row of its camera is not added, so a gap the
//! device could only partly fill (or not at all) is not fetched again and again. A row is claimed by
//! [`begin`] (one update that only succeeds on a pending or retrying row), so two nodes sharing the
//! database never pull one gap twice.

use crate::auth::Scope;
use crate::db::sql::SqlBuilder;
use crate::db::{now_ms, DbError, Pool};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Backfill {
    pub id: i64,
    pub camera_id: i64,
    pub start_us: i64,
    pub end_us: i64,
    pub source: String,
    pub state: String,
    pub attempts: i64,
    pub fetched_us: i64,
    pub detail: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub next_try_at: i64,
}

/// How a pull ended, as the row keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything the device had for the gap is recorded.
    Done,
    /// The device has no footage of the gap: it stays a gap.
    Nothing,
    /// Failed; tried again at `next_try_at`.
    Retry,
    /// Failed `max_attempts` times: given up.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Nothing => "nothing",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
        }
    }
}

const COLUMNS: &str = "b.id, b.camera_id, b.start_us, b.end_us, b.source, b.state, b.attempts, \
     b.fetched_us, b.detail, b.created_at, b.updated_at, b.next_try_at";

/// Adds a gap to fetch, unless one of the camera's rows already overlaps it. The new row's id.
pub async fn add(
    pool: &Pool,
    camera_id: i64,
    (start_us, end_us): (i64, i64),
    source: &str,
) -> Result<Option<i64>, DbError> {
    let now = now_ms();
    Ok(sqlx::query_scalar(
        "INSERT INTO backfills (camera_id, start_us, end_us, source, state, created_at, updated_at,
             next_try_at)
         SELECT $1, $2, $3, $4, 'pending', $5, $5, $5
         WHERE NOT EXISTS (SELECT 1 FROM backfills WHERE camera_id = $1 AND start_us < $3 AND end_us > $2)
         RETURNING id",
    )
    .bind(camera_id)
    .bind(start_us)
    .bind(end_us)
    .bind(source)
    .bind(now)
    .fetch_optional(pool)
    .await?)
}

/// Rows waiting to be pulled now, oldest first.
pub async fn due(pool: &Pool, limit: i64) -> Result<Vec<Backfill>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM backfills b WHERE b.state IN ('pending', 'retry') AND b.next_try_at <= $1
         ORDER BY b.next_try_at, b.id LIMIT $2"
    ))
    .bind(now_ms())
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Claims a due row for a pull; false when another task (or node) has it.
pub async fn begin(pool: &Pool, id: i64) -> Result<bool, DbError> {
    let r = sqlx::query(
        "UPDATE backfills SET state = 'pulling', attempts = attempts + 1, updated_at = $2
         WHERE id = $1 AND state IN ('pending', 'retry')",
    )
    .bind(id)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records how much of the gap is recorded so far (the console's progress).
pub async fn progress(pool: &Pool, id: i64, fetched_us: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE backfills SET fetched_us = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(fetched_us)
        .bind(now_ms())
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a pull.
pub async fn finish(
    pool: &Pool,
    id: i64,
    outcome: Outcome,
    fetched_us: i64,
    detail: &str,
    next_try_at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE backfills SET state = $2, fetched_us = $3, detail = $4, next_try_at = $5, updated_at = $6
         WHERE id = $1",
    )
    .bind(id)
    .bind(outcome.as_str())
    .bind(fetched_us)
    .bind(detail.chars().take(500).collect::<String>())
    .bind(next_try_at)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// Pulls a stopped server left running are tried again.
pub async fn requeue_interrupted(pool: &Pool) -> Result<u64, DbError> {
    let r = sqlx::query(
        "UPDATE backfills SET state = 'retry', detail = 'interrupted by a restart' WHERE state = 'pulling'",
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// The rows of the cameras in `scope` (optionally one camera), newest first.
pub async fn list(
    pool: &Pool,
    scope: &Scope,
    camera_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Backfill>, DbError> {
    let mut q = SqlBuilder::new(format!(
        "SELECT {COLUMNS} FROM backfills b JOIN cameras c ON c.id = b.camera_id
         JOIN sites s ON s.id = c.site_id WHERE 1 = 1"
    ));
    if !scope.push_filter(&mut q, "s.region_code") {
        return Ok(Vec::new());
    }
    if let Some(id) = camera_id {
        q.push(" AND b.camera_id = ").push_bind(id);
    }
    q.push(" ORDER BY b.start_us DESC, b.id DESC LIMIT ")
        .push_bind(limit);
    Ok(q.fetch_all(pool).await?)
}

//! The cluster's rows: `nodes` (who is there, heartbeats) and `leases` (who records which camera), in the
//! shared database (migration 0012). Every statement is one compare-and-set, so that two nodes acting at
//! once never both win: a lease is taken only while it is free or expired, and taking it moves its epoch.

use crate::db::{DbError, Pool};

/// A node as the table has it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NodeRow {
    pub name: String,
    pub address: String,
    pub capacity: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub draining: i64,
    /// Its object tier's upload backlog (segments, bytes) and alarm (0/1), at its last heartbeat.
    pub backlog_segments: i64,
    pub backlog_bytes: i64,
    pub storage_alarm: i64,
}

/// A lease as the table has it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeaseRow {
    pub camera_id: i64,
    pub node: String,
    pub epoch: i64,
    pub expires_at: i64,
}

/// Says this node is alive (and where it is), creating its row on first call. A node that starts again
/// (another `started_at`) is no longer draining.
pub async fn heartbeat(pool: &Pool, n: &NodeRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO nodes (name, address, capacity, started_at, heartbeat_at, draining,
             backlog_segments, backlog_bytes, storage_alarm)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)
         ON CONFLICT (name) DO UPDATE SET address = excluded.address, capacity = excluded.capacity,
             backlog_segments = excluded.backlog_segments, backlog_bytes = excluded.backlog_bytes,
             storage_alarm = excluded.storage_alarm,
             draining = CASE WHEN nodes.started_at = excluded.started_at THEN nodes.draining ELSE 0 END,
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
    )
    .bind(&n.name)
    .bind(&n.address)
    .bind(n.capacity)
    .bind(n.started_at)
    .bind(n.heartbeat_at)
    .bind(n.backlog_segments)
    .bind(n.backlog_bytes)
    .bind(n.storage_alarm)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every node, by name.
pub async fn nodes(pool: &Pool) -> Result<Vec<NodeRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT name, address, capacity, started_at, heartbeat_at, draining, backlog_segments,
                backlog_bytes, storage_alarm FROM nodes ORDER BY name",
    )
    .fetch_all(pool)
    .await?)
}

/// Every lease, by camera.
pub async fn leases(pool: &Pool) -> Result<Vec<LeaseRow>, DbError> {
    Ok(
        sqlx::query_as("SELECT camera_id, node, epoch, expires_at FROM leases ORDER BY camera_id")
            .fetch_all(pool)
            .await?,
    )
}

/// Sets or clears a node's draining flag (`vigil node drain`); false when there is no such node.
pub async fn set_draining(pool: &Pool, name: &str, draining: bool) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE nodes SET draining = $1 WHERE name = $2")
        .bind(i64::from(draining))
        .bind(name)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends every lease this node holds to `until` (ms); the leases another node took are not touched.
pub async fn renew(pool: &Pool, node: &str, until: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE leases SET expires_at = $1 WHERE node = $2 AND expires_at > 0")
        .bind(until)
        .bind(node)
        .execute(pool)
        .await?;
    Ok(())
}

/// The cameras this node holds, with their epochs.
pub async fn held(pool: &Pool, node: &str) -> Result<Vec<(i64, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT camera_id, epoch FROM leases WHERE node = $1 AND expires_at > 0 ORDER BY camera_id",
    )
    .bind(node)
    .fetch_all(pool)
    .await?)
}

/// Cameras nobody holds now (no lease, an expired one, or one given back), by id.
pub async fn free(pool: &Pool, now: i64) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT c.id FROM cameras c LEFT JOIN leases l ON l.camera_id = c.id
         WHERE l.camera_id IS NULL OR l.expires_at < $1 ORDER BY c.id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?)
}

/// Takes the camera's lease until `until` if it is free at `now`: its new epoch, or None when another
/// node has it. The epoch moves at every change of holder, so rows written under the old one are refused.
pub async fn take(
    pool: &Pool,
    camera_id: i64,
    node: &str,
    now: i64,
    until: i64,
) -> Result<Option<i64>, DbError> {
    let moved: Option<i64> = sqlx::query_scalar(
        "UPDATE leases SET node = $1, epoch = epoch + 1, expires_at = $2
         WHERE camera_id = $3 AND expires_at < $4 RETURNING epoch",
    )
    .bind(node)
    .bind(until)
    .bind(camera_id)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    if moved.is_some() {
        return Ok(moved);
    }
    let made = sqlx::query(
        "INSERT INTO leases (camera_id, node, epoch, expires_at)
         SELECT $1, $2, 1, $3 WHERE EXISTS (SELECT 1 FROM cameras WHERE id = $1)
         ON CONFLICT (camera_id) DO NOTHING",
    )
    .bind(camera_id)
    .bind(node)
    .bind(until)
    .execute(pool)
    .await?;
    Ok((made.rows_affected() == 1).then_some(1))
}

/// The node whose lease on the camera is current at `now`.
pub async fn holder(pool: &Pool, camera_id: i64, now: i64) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT node FROM leases WHERE camera_id = $1 AND expires_at >= $2")
            .bind(camera_id)
            .bind(now)
            .fetch_optional(pool)
            .await?,
    )
}

/// Gives a lease back (its epoch stays, so the next holder's is higher): free for any node at once.
pub async fn release(pool: &Pool, camera_id: i64, node: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE leases SET expires_at = 0 WHERE camera_id = $1 AND node = $2")
        .bind(camera_id)
        .bind(node)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes the leases of cameras that no longer exist.
pub async fn forget_deleted(pool: &Pool) -> Result<(), DbError> {
    sqlx::query("DELETE FROM leases WHERE camera_id NOT IN (SELECT id FROM cameras)")
        .execute(pool)
        .await?;
    Ok(())
}

/// The cluster key in the database, made (random) by the first node that asks.
pub async fn cluster_key(pool: &Pool) -> Result<String, DbError> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    sqlx::query(
        "INSERT INTO cluster_settings (name, value) VALUES ('key', $1) ON CONFLICT (name) DO NOTHING",
    )
    .bind(fresh)
    .execute(pool)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM cluster_settings WHERE name = 'key'")
            .fetch_one(pool)
            .await?,
    )
}

/// The address of the node whose lease on the camera is current, unless it is `me`.
pub async fn holder_address(
    pool: &Pool,
    camera_id: i64,
    me: &str,
    now: i64,
) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT n.address FROM leases l JOIN nodes n ON n.name = l.node
         WHERE l.camera_id = $1 AND l.expires_at >= $2 AND l.node <> $3",
    )
    .bind(camera_id)
    .bind(now)
    .bind(me)
    .fetch_optional(pool)
    .await?)
}

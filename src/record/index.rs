//! The recording index in the database: segments, holds and the garbage list (migrations/0002).
//!
//! Invariants: a segment row is inserted only after its file's init segment is fsynced (and its directory);
//! its progress is updated only after the fragments it covers are fsynced; a row is removed only in the
//! transaction that puts its file on the garbage list.
//!
//! Several nodes may share one database (docs/cluster.md). A row's `node` names the node whose disk holds
//! its local file (NULL: a single server's); every query about local files is limited to this node's rows
//! ([`this_disk`]). A node writes a camera's rows under its lease ([`Fence`]): the write is refused when the
//! lease has moved to another node since, so a node that was paused cannot write over its successor.

use super::segment::SegmentStats;
use crate::db::{now_ms, DbError, Pool};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SegmentRow {
    pub id: i64,
    pub camera_id: i64,
    pub stream: String,
    pub run: i64,
    pub site_kind: String,
    pub start_us: i64,
    pub end_us: i64,
    pub duration_90k: i64,
    pub frames: i64,
    pub bytes: i64,
    pub codec: String,
    pub width: i64,
    pub height: i64,
    pub keyframes: Vec<u8>,
    pub path: String,
    pub state: String,
    /// Where the bytes are: `local` (the file at `path`) or `bucket` (the object named `path`).
    pub stored: String,
    /// The node whose disk holds the local file (None: a single server's own).
    pub node: Option<String>,
    /// The edge retrieval this footage was fetched by (`backfills`), None for footage recorded live.
    pub backfill_id: Option<i64>,
}

/// A node's lease on a camera: its rows for that camera are written only while the lease's epoch is
/// still the camera's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub node: String,
    pub epoch: i64,
    /// Wall time (µs) the lease was taken: earlier footage is not this lease's to index (frames a relay
    /// left in the hub, or the predecessor's time).
    pub since_us: i64,
}

/// The condition "this row's local file is on this node's disk" for `segments` or `garbage` (aliased
/// `alias`, or empty), with this node's name bound at placeholder `$param`.
pub fn this_disk(alias: &str, param: usize) -> String {
    format!("{alias}node IS NOT DISTINCT FROM ${param}")
}

/// The condition "the lease (camera `camera`, node `$node`, epoch `$epoch`) is still current".
fn leased(camera: &str, node: usize, epoch: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM leases l WHERE l.camera_id = {camera} AND l.node = ${node} AND l.epoch = ${epoch})"
    )
}

/// [`SegmentRow::stored`] of footage in the object storage tier.
pub const IN_BUCKET: &str = "bucket";

impl SegmentRow {
    pub fn in_bucket(&self) -> bool {
        self.stored == IN_BUCKET
    }
}

const COLUMNS: &str =
    "id, camera_id, stream, run, site_kind, start_us, end_us, duration_90k, frames, bytes, \
     codec, width, height, keyframes, path, state, stored, node, backfill_id";

/// A row about to be inserted (`id` is ignored), under `fence` when the camera is leased (cluster).
pub async fn insert<'e, E>(db: E, r: &SegmentRow, fence: Option<&Fence>) -> Result<i64, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let condition = match fence {
        Some(_) => format!("WHERE {}", leased("$1", 18, 19)),
        None => String::new(),
    };
    let sql = format!(
        "INSERT INTO segments (camera_id, stream, run, site_kind, start_us, end_us, duration_90k, frames, bytes,
             codec, width, height, keyframes, path, state, node, backfill_id)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 {condition}
         RETURNING id"
    );
    let mut q = sqlx::query_scalar::<_, i64>(&sql)
        .bind(r.camera_id)
        .bind(&r.stream)
        .bind(r.run)
        .bind(&r.site_kind)
        .bind(r.start_us)
        .bind(r.end_us)
        .bind(r.duration_90k)
        .bind(r.frames)
        .bind(r.bytes)
        .bind(&r.codec)
        .bind(r.width)
        .bind(r.height)
        .bind(&r.keyframes)
        .bind(&r.path)
        .bind(&r.state)
        .bind(&r.node)
        .bind(r.backfill_id);
    if let Some(f) = fence {
        q = q.bind(f.node.clone()).bind(f.epoch);
    }
    let id = q
        .fetch_optional(db)
        .await
        .map_err(|e| DbError::from_constraint(e, "segment"))?;
    id.ok_or_else(|| stale(r.camera_id, fence))
}

fn stale(camera_id: i64, fence: Option<&Fence>) -> DbError {
    let epoch = fence.map_or(0, |f| f.epoch);
    DbError::Stale(format!(
        "camera {camera_id}: lease epoch {epoch} is no longer this node's; nothing written"
    ))
}

/// Records the fragments now covered by the row (and its state), under `fence` when leased. `start_us` is
/// the row's start as stored; `state` other than `open` is written (an open row is never reopened).
pub async fn update_stats(
    pool: &Pool,
    id: i64,
    start_us: i64,
    s: &SegmentStats,
    state: &str,
    fence: Option<&Fence>,
) -> Result<(), DbError> {
    // Only what changed is set: an UPDATE that names an indexed column rewrites that index's entry even
    // when the value stays, and the per-GOP update of an open row (`start_us` known, `state` still open)
    // is on the recording path of every camera. Measured with SQLite on a 200,000-row index: 53 -> 32 µs.
    let start = s.start_us.unwrap_or(start_us);
    let mut set =
        "end_us = $1, duration_90k = $2, frames = $3, bytes = $4, keyframes = $5".to_string();
    let mut n = 5;
    if start != start_us {
        n += 1;
        set += &format!(", start_us = ${n}");
    }
    if state != "open" {
        n += 1;
        set += &format!(", state = ${n}");
    }
    let condition = match fence {
        Some(_) => format!("AND {}", leased("segments.camera_id", n + 2, n + 3)),
        None => String::new(),
    };
    let sql = format!(
        "UPDATE segments SET {set} WHERE id = ${} {condition}",
        n + 1
    );
    let mut q = sqlx::query(&sql)
        .bind(s.end_us.max(start))
        .bind(s.duration_90k)
        .bind(s.frames)
        .bind(s.bytes as i64)
        .bind(&s.keyframes);
    if start != start_us {
        q = q.bind(start);
    }
    if state != "open" {
        q = q.bind(state);
    }
    q = q.bind(id);
    if let Some(f) = fence {
        q = q.bind(f.node.clone()).bind(f.epoch);
    }
    let done = q.execute(pool).await?;
    match fence {
        Some(_) if done.rows_affected() == 0 => Err(stale(0, fence)),
        _ => Ok(()),
    }
}

/// Closes a row as it stands, without the lease: what it covers was written under the lease, so
/// closing it never claims time beyond that (a fenced writer's last step).
pub async fn complete_as_is(pool: &Pool, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE segments SET state = 'complete' WHERE id = $1 AND state = 'open'")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn get(pool: &Pool, id: i64) -> Result<SegmentRow, DbError> {
    sqlx::query_as::<_, SegmentRow>(&format!("SELECT {COLUMNS} FROM segments WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)
}

/// This node's open rows.
pub async fn open_rows(pool: &Pool, node: Option<&str>) -> Result<Vec<SegmentRow>, DbError> {
    Ok(sqlx::query_as::<_, SegmentRow>(&format!(
        "SELECT {COLUMNS} FROM segments WHERE state = 'open' AND {} ORDER BY id",
        this_disk("", 1)
    ))
    .bind(node)
    .fetch_all(pool)
    .await?)
}

/// Every row, in a stable order (camera, stream, start, path).
pub async fn all(pool: &Pool) -> Result<Vec<SegmentRow>, DbError> {
    Ok(sqlx::query_as::<_, SegmentRow>(&format!(
        "SELECT {COLUMNS} FROM segments ORDER BY camera_id, stream, start_us, path"
    ))
    .fetch_all(pool)
    .await?)
}

/// Segments of a stream that overlap `[start_us, end_us)`, oldest first. Rows with no fragment yet are left
/// out.
///
/// Two range scans on `segments_camera_time`, whatever the length of the camera's history: the last segment
/// that starts at or before `start_us` (the only earlier one that can reach into the range, since a
/// stream's segments follow one another), then those from it up to `end_us`. Segments of one stream overlap
/// only when the wall clock stepped back between runs (docs/time.md); then an older segment that started
/// before that last one is not returned, and the range shows the footage recorded after the step.
pub async fn overlapping(
    pool: &Pool,
    camera_id: i64,
    stream: &str,
    start_us: i64,
    end_us: i64,
) -> Result<Vec<SegmentRow>, DbError> {
    Ok(sqlx::query_as::<_, SegmentRow>(&format!(
        "SELECT {COLUMNS} FROM segments WHERE {OVERLAPPING} ORDER BY start_us, id"
    ))
    .bind(camera_id)
    .bind(stream)
    .bind(end_us)
    .bind(start_us)
    .fetch_all(pool)
    .await?)
}

/// The rows of [`overlapping`]: `?1` camera, `?2` stream, `?3` end, `?4` start.
const OVERLAPPING: &str =
    "camera_id = $1 AND stream = $2 AND start_us < $3 AND end_us > $4 AND frames > 0
    AND start_us >= coalesce(
        (SELECT max(start_us) FROM segments
         WHERE camera_id = $1 AND stream = $2 AND start_us <= $4 AND frames > 0), $4)";

/// What a playback plan of a range depends on in the index, summed over the rows [`overlapping`]
/// returns: which rows (count and ids), where they lie (times modulo [`TIME_MODULUS`]) and how many
/// bytes of each are indexed. Any
/// change to those rows (a fragment committed, a segment added, retimed or removed) changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Fingerprint {
    pub rows: i64,
    pub ids: i64,
    pub max_id: i64,
    pub bytes: i64,
    pub starts: i64,
    pub ends: i64,
    /// Rows whose footage is in the bucket: a move changes where a plan reads.
    pub in_bucket: i64,
}

/// Times enter the [`Fingerprint`] modulo this prime, so that the sum over a year of rows cannot overflow.
const TIME_MODULUS: i64 = 2_147_483_647;

impl Fingerprint {
    /// The fingerprint of rows already read: what [`fingerprint`] returns for the same rows.
    pub fn of(rows: &[SegmentRow]) -> Fingerprint {
        Fingerprint {
            rows: rows.len() as i64,
            ids: rows.iter().map(|r| r.id).sum(),
            max_id: rows.iter().map(|r| r.id).max().unwrap_or(0),
            bytes: rows.iter().map(|r| r.bytes).sum(),
            starts: rows.iter().map(|r| r.start_us % TIME_MODULUS).sum(),
            ends: rows.iter().map(|r| r.end_us % TIME_MODULUS).sum(),
            in_bucket: rows.iter().filter(|r| r.in_bucket()).count() as i64,
        }
    }
}

/// The [`Fingerprint`] of a range: one aggregate over the same two index range scans, no rows sent.
pub async fn fingerprint(
    pool: &Pool,
    camera_id: i64,
    stream: &str,
    start_us: i64,
    end_us: i64,
) -> Result<Fingerprint, DbError> {
    Ok(sqlx::query_as::<_, Fingerprint>(&format!(
        "SELECT count(*) AS rows, CAST(coalesce(sum(id), 0) AS BIGINT) AS ids,
                coalesce(max(id), 0) AS max_id, CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes,
                CAST(coalesce(sum(start_us % {TIME_MODULUS}), 0) AS BIGINT) AS starts,
                CAST(coalesce(sum(end_us % {TIME_MODULUS}), 0) AS BIGINT) AS ends,
                count(CASE WHEN stored = 'bucket' THEN 1 END) AS in_bucket
         FROM segments WHERE {OVERLAPPING}"
    ))
    .bind(camera_id)
    .bind(stream)
    .bind(end_us)
    .bind(start_us)
    .fetch_one(pool)
    .await?)
}

/// Removes segment rows and lists their files as garbage, in one transaction, except rows of held
/// footage: the hold is checked inside the same write transaction, so a hold placed while retention or
/// a repair chose its rows still keeps its footage. (A row without frames holds no footage and goes.)
/// Returns how many rows went.
///
/// The transaction commits with `synchronous = FULL`: its rows are durable (WAL synced) before any file
/// on the garbage list is unlinked, so a power cut can never leave a row whose file is gone.
pub async fn to_garbage(
    pool: &Pool,
    rows: &[(i64, String)],
    reason: &str,
) -> Result<usize, DbError> {
    let mut synced = full_sync(pool).await?;
    let done = garbage_tx(&mut synced.conn, rows, reason).await;
    normal_sync(&mut synced).await?;
    done
}

/// A connection whose commits sync the WAL (SQLite `synchronous = FULL`): for the transactions after
/// which a file is unlinked. Hand it back through [`normal_sync`]. PostgreSQL commits are durable already.
async fn full_sync(pool: &Pool) -> Result<SyncedConn, DbError> {
    let mut conn = pool.acquire().await?;
    let sqlite = crate::db::engine(pool) == crate::db::Engine::Sqlite;
    if sqlite {
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
    }
    Ok(SyncedConn { conn, sqlite })
}

/// A connection from [`full_sync`].
struct SyncedConn {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    sqlite: bool,
}

/// Back to the pool's setting whatever happened (the connection is reused).
async fn normal_sync(synced: &mut SyncedConn) -> Result<(), DbError> {
    if synced.sqlite {
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *synced.conn)
            .await?;
    }
    Ok(())
}

async fn garbage_tx(
    conn: &mut crate::db::Conn,
    rows: &[(i64, String)],
    reason: &str,
) -> Result<usize, DbError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let now = now_ms();
    let mut n = 0;
    for (id, path) in rows {
        let gone: Option<(String, Option<String>)> = sqlx::query_as(&format!(
            "DELETE FROM segments AS s WHERE s.id = $1 AND (s.frames = 0 OR NOT {HELD}) RETURNING stored, node"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((stored, node)) = gone else {
            continue;
        };
        sqlx::query(
            "INSERT INTO garbage (path, reason, created_at, stored, node) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(path)
        .bind(reason)
        .bind(now)
        .bind(stored)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        n += 1;
    }
    tx.commit().await?;
    super::crash::point("garbage.listed");
    Ok(n)
}

/// Records that a complete local segment of `bytes` bytes now lives in the bucket, and lists its local
/// file as garbage, in one transaction committed with `synchronous = FULL` (the file is unlinked after
/// it). `false` when the row changed meanwhile (removed, or not the bytes uploaded): nothing is done.
pub async fn moved_to_bucket(pool: &Pool, id: i64, bytes: i64) -> Result<bool, DbError> {
    let mut synced = full_sync(pool).await?;
    let done = async {
        let mut tx = sqlx::Connection::begin(&mut *synced.conn).await?;
        let moved: Option<(String, Option<String>)> = sqlx::query_as(
            "UPDATE segments SET stored = 'bucket'
             WHERE id = $1 AND bytes = $2 AND stored = 'local' AND state = 'complete' RETURNING path, node",
        )
        .bind(id)
        .bind(bytes)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((path, node)) = &moved {
            sqlx::query(
                "INSERT INTO garbage (path, reason, created_at, node) VALUES ($1, $2, $3, $4)",
            )
            .bind(path)
            .bind("moved to the bucket")
            .bind(now_ms())
            .bind(node)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<_, DbError>(moved.is_some())
    }
    .await;
    normal_sync(&mut synced).await?;
    done
}

/// Complete local segments of this node that ended before `before_us`, oldest first: (id, path, bytes).
pub async fn local_complete_before(
    pool: &Pool,
    node: Option<&str>,
    before_us: i64,
    limit: i64,
) -> Result<Vec<(i64, String, i64)>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT id, path, bytes FROM segments WHERE stored = 'local' AND state = 'complete'
         AND end_us < $1 AND {} ORDER BY end_us LIMIT $2",
        this_disk("", 3)
    ))
    .bind(before_us)
    .bind(limit)
    .bind(node)
    .fetch_all(pool)
    .await?)
}

/// How many complete local segments of this node ended before `before_us`, and their bytes.
pub async fn local_complete_totals(
    pool: &Pool,
    node: Option<&str>,
    before_us: i64,
) -> Result<(i64, i64), DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT count(*), CAST(coalesce(sum(bytes), 0) AS BIGINT) FROM segments
         WHERE stored = 'local' AND state = 'complete' AND end_us < $1 AND {}",
        this_disk("", 2)
    ))
    .bind(before_us)
    .bind(node)
    .fetch_one(pool)
    .await?)
}

/// The garbage list's local files on this node's disk (id, path).
pub async fn garbage(pool: &Pool, node: Option<&str>) -> Result<Vec<(i64, String)>, DbError> {
    Ok(sqlx::query_as::<_, (i64, String)>(&format!(
        "SELECT id, path FROM garbage WHERE stored = 'local' AND {} ORDER BY id",
        this_disk("", 1)
    ))
    .bind(node)
    .fetch_all(pool)
    .await?)
}

/// The garbage list's objects in the bucket (id, key).
pub async fn bucket_garbage(pool: &Pool) -> Result<Vec<(i64, String)>, DbError> {
    Ok(sqlx::query_as::<_, (i64, String)>(
        "SELECT id, path FROM garbage WHERE stored = 'bucket' ORDER BY id LIMIT 1000",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn garbage_done(pool: &Pool, id: i64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM garbage WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The kind of the camera's site, `service_hall` when the camera is gone.
pub async fn site_kind(pool: &Pool, camera_id: i64) -> Result<String, DbError> {
    let kind: Option<String> = sqlx::query_scalar(
        "SELECT s.kind FROM cameras c JOIN sites s ON s.id = c.site_id WHERE c.id = $1",
    )
    .bind(camera_id)
    .fetch_optional(pool)
    .await?;
    Ok(kind.unwrap_or_else(|| "service_hall".to_owned()))
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct HoldRow {
    pub id: i64,
    pub camera_id: Option<i64>,
    pub case_no: Option<String>,
    pub start_us: i64,
    pub end_us: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

pub async fn insert_hold(
    pool: &Pool,
    camera_id: i64,
    case_no: Option<&str>,
    start_us: i64,
    end_us: i64,
    reason: &str,
    created_by: &str,
) -> Result<HoldRow, DbError> {
    let now = now_ms();
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO holds (camera_id, case_no, start_us, end_us, reason, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(camera_id)
    .bind(case_no)
    .bind(start_us)
    .bind(end_us)
    .bind(reason)
    .bind(created_by)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(|e| DbError::from_constraint(e, "hold"))?;
    Ok(HoldRow {
        id,
        camera_id: Some(camera_id),
        case_no: case_no.map(str::to_owned),
        start_us,
        end_us,
        reason: reason.to_owned(),
        created_by: created_by.to_owned(),
        created_at: now,
    })
}

/// SQL condition true when segment `s` overlaps a hold of its camera that is not released.
pub const HELD: &str = "EXISTS (SELECT 1 FROM holds h WHERE h.camera_id = s.camera_id
     AND h.start_us < s.end_us AND h.end_us > s.start_us AND h.released_at IS NULL)";

/// Per camera, the wall time its main stream's indexed footage covers inside `[from_us, to_us)`.
pub async fn recorded_us(
    pool: &Pool,
    from_us: i64,
    to_us: i64,
) -> Result<std::collections::HashMap<i64, i64>, DbError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT camera_id, CAST(SUM(CASE WHEN end_us < $2 THEN end_us ELSE $2 END
                              - CASE WHEN start_us > $1 THEN start_us ELSE $1 END) AS BIGINT) FROM segments
         WHERE stream = 'main' AND end_us > $1 AND start_us < $2 GROUP BY camera_id",
    )
    .bind(from_us)
    .bind(to_us)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The recordings' running totals (kept by triggers on `segments`, migration 0008).
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct Totals {
    pub bytes: i64,
    pub open_count: i64,
    pub complete_count: i64,
    pub complete_bytes: i64,
    /// Segments in the object storage tier and their bytes (the fields above are the local disk's).
    pub bucket_count: i64,
    pub bucket_bytes: i64,
}

pub async fn totals(pool: &Pool) -> Result<Totals, DbError> {
    Ok(sqlx::query_as(
        "SELECT bytes, open_count, complete_count, complete_bytes, bucket_count, bucket_bytes
         FROM segment_totals WHERE id = 1",
    )
    .fetch_optional(pool)
    .await?
    .unwrap_or_default())
}

/// The totals of one node's disk (its local rows), summed: a cluster shares `segment_totals`. The bucket's
/// figures are the whole bucket's.
pub async fn totals_of(pool: &Pool, node: &str) -> Result<Totals, DbError> {
    let local: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(coalesce(sum(bytes), 0) AS BIGINT),
                count(CASE WHEN state = 'open' THEN 1 END),
                count(CASE WHEN state = 'complete' THEN 1 END),
                CAST(coalesce(sum(CASE WHEN state = 'complete' THEN bytes ELSE 0 END), 0) AS BIGINT)
         FROM segments WHERE stored = 'local' AND node = $1",
    )
    .bind(node)
    .fetch_one(pool)
    .await?;
    let all = totals(pool).await?;
    Ok(Totals {
        bytes: local.0,
        open_count: local.1,
        complete_count: local.2,
        complete_bytes: local.3,
        ..all
    })
}

/// Bytes of every indexed segment.
pub async fn total_bytes(pool: &Pool) -> Result<i64, DbError> {
    Ok(totals(pool).await?.bytes)
}

/// Segments closer than this are one span.
pub const SPAN_JOIN_US: i64 = 500_000;

/// Merges segment times (sorted by start) into spans clipped to `[start, end)`.
pub fn merge_spans(segs: &[(i64, i64)], start: i64, end: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &(s, e) in segs {
        let (s, e) = (s.max(start), e.min(end));
        if e <= s {
            continue;
        }
        match out.last_mut() {
            Some(last) if s <= last.1 + SPAN_JOIN_US => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

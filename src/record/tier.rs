//! The object storage tier's mover: complete segments older than `move_after_s` go to the bucket, and the
//! bucket's share of the garbage list is deleted there (docs/storage.md, "Object storage").
//!
//! Moving one segment, in this order:
//! 1. read the file (its indexed bytes) and its skeleton (`record::skeleton`);
//! 2. PUT the segment under its path, verified (`storage::Bucket::put_verified`); then its skeleton;
//! 3. in one transaction committed with `synchronous = FULL`: the row says `stored = 'bucket'` (only if it
//!    is still the complete local row of those bytes) and the local file goes on the garbage list;
//! 4. the local file is unlinked (the garbage list, as for any deletion).
//!
//! Invariants:
//! - The local file is removed only after the bucket verifiably holds its bytes and the row says so: a
//!   crash or a failed call at any step leaves the footage readable where the row says it is (an object
//!   uploaded before a crash is uploaded again, under the same key).
//! - A bucket that fails stops the pass: the footage stays on the local disk, the backlog and the alarm
//!   show it (`/metrics`), nothing is deleted, and the next pass tries again. A segment file that cannot be
//!   read stays where it is (`vigil check` reports it) and does not hold up the others.
//! - With a tier, the disk budget never deletes footage waiting to move: over budget, the oldest local
//!   segments move early instead.

use super::footage::skeleton_key;
use super::index;
use super::recovery::collect_garbage;
use super::scan::scan_from;
use super::skeleton::Skeleton;
use super::Shared;
use crate::storage::{Bucket, ObjectConfig, StorageError};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The configured bucket and its policy.
pub struct Tier {
    pub bucket: Arc<Bucket>,
    pub cfg: ObjectConfig,
    pub status: TierStatus,
}

impl Tier {
    pub fn new(bucket: Arc<Bucket>, cfg: ObjectConfig) -> Tier {
        Tier {
            bucket,
            cfg,
            status: TierStatus::default(),
        }
    }
}

/// What `/metrics` shows of the tier.
#[derive(Default)]
pub struct TierStatus {
    pub moved: AtomicU64,
    pub moved_bytes: AtomicU64,
    pub failures: AtomicU64,
    /// Segments due to move that are still local, and their bytes (as of the last pass).
    pub backlog: AtomicI64,
    pub backlog_bytes: AtomicI64,
    /// Raised when the last attempt to reach the bucket failed; cleared by the next success.
    pub alarm: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
enum MoveError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("reading the segment: {0}")]
    Read(String),
}

/// Runs a pass every `interval_s` until `stop`.
pub async fn run(shared: Arc<Shared>, tier: Arc<Tier>, stop: CancellationToken) {
    let every = Duration::from_secs(tier.cfg.interval_s.max(1));
    // While the alarm stays raised, the latest error is logged once a minute: an operator reading the
    // log sees whether the bucket is still refusing and why, without a line per pass.
    let mut last_said = std::time::Instant::now();
    loop {
        let res = pass(&shared, &tier).await;
        if let Err(e) = &res {
            tier.status.failures.fetch_add(1, Ordering::Relaxed);
            if !matches!(e, MoveError::Storage(_)) {
                tracing::error!(error = %e, "object storage tier: pass failed; footage stays local");
            } else if !tier.status.alarm.swap(true, Ordering::Relaxed) {
                tracing::error!(bucket = tier.bucket.name(), error = %e,
                    "object storage unreachable: footage stays on the local disk; alarm raised");
                last_said = std::time::Instant::now();
            } else if last_said.elapsed() >= Duration::from_secs(60) {
                tracing::warn!(bucket = tier.bucket.name(), error = %e,
                    "object storage still unreachable: footage stays on the local disk");
                last_said = std::time::Instant::now();
            }
        }
        if res.is_ok() && tier.status.alarm.swap(false, Ordering::Relaxed) {
            tracing::info!(
                bucket = tier.bucket.name(),
                "object storage reachable again; alarm cleared"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One pass: the bucket's garbage, then the segments due, oldest first. A segment whose file cannot be
/// read is left on the local disk (logged) and the others move on: one bad file never holds up the tier.
/// A failing bucket or database ends the pass.
async fn pass(shared: &Shared, tier: &Tier) -> Result<(), MoveError> {
    delete_garbage(shared, tier).await?;
    let due_us = crate::time::now_us() - tier.cfg.move_after_s as i64 * 1_000_000;
    let mut unreadable = std::collections::HashSet::new();
    loop {
        // Over the disk budget, the oldest local footage moves whatever its age.
        let early = super::retention::excess_bytes(shared).await? > 0;
        let before = if early { i64::MAX } else { due_us };
        let limit = 20 + unreadable.len() as i64;
        let node = shared.node.as_deref();
        let rows = index::local_complete_before(&shared.pool, node, before, limit).await?;
        let (n, b) = index::local_complete_totals(&shared.pool, node, due_us).await?;
        tier.status.backlog.store(n, Ordering::Relaxed);
        tier.status.backlog_bytes.store(b, Ordering::Relaxed);
        let todo: Vec<_> = rows
            .into_iter()
            .filter(|r| !unreadable.contains(&r.0))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        for (id, path, bytes) in todo {
            match move_one(shared, tier, id, &path, bytes).await {
                Err(MoveError::Read(e)) => {
                    tracing::warn!(segment = id, path, error = %e,
                        "segment cannot be read for its move: left on the local disk");
                    unreadable.insert(id);
                }
                other => other?,
            }
        }
    }
}

/// The segment's indexed bytes and its skeleton's encoding.
fn read_segment(abs: &std::path::Path, bytes: u64) -> Result<(Bytes, Bytes), MoveError> {
    let read = |e: std::io::Error| MoveError::Read(format!("{}: {e}", abs.display()));
    let f = std::fs::File::open(abs).map_err(read)?;
    let scanned = scan_from(&f, bytes, Some(bytes)).map_err(|e| MoveError::Read(e.to_string()))?;
    if scanned.complete_len != bytes {
        return Err(MoveError::Read(format!(
            "{}: {} bytes of complete fragments, the index says {bytes}",
            abs.display(),
            scanned.complete_len
        )));
    }
    let skel = Skeleton::of(&f, bytes, &scanned).map_err(read)?;
    let mut data = vec![0u8; bytes as usize];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut data, 0).map_err(read)?;
    Ok((Bytes::from(data), skel.encode()))
}

async fn move_one(
    shared: &Shared,
    tier: &Tier,
    id: i64,
    path: &str,
    bytes: i64,
) -> Result<(), MoveError> {
    let abs = shared.data_dir.join(path);
    let len = bytes.max(0) as u64;
    let (data, skel) = tokio::task::spawn_blocking(move || read_segment(&abs, len))
        .await
        .map_err(|e| MoveError::Read(e.to_string()))??;
    tier.bucket.put_verified(path, data).await?;
    super::crash::point("tier.uploaded");
    tier.bucket.put_verified(&skeleton_key(path), skel).await?;
    if !index::moved_to_bucket(&shared.pool, id, bytes).await? {
        // Retention took the row meanwhile: what was uploaded belongs to nothing.
        tier.bucket.delete(path).await?;
        tier.bucket.delete(&skeleton_key(path)).await?;
        return Ok(());
    }
    super::crash::point("tier.committed");
    collect_garbage(&shared.pool, &shared.data_dir, shared.node.as_deref()).await;
    tier.status.moved.fetch_add(1, Ordering::Relaxed);
    tier.status.moved_bytes.fetch_add(len, Ordering::Relaxed);
    tracing::debug!(segment = id, path, bytes, "moved to the bucket");
    Ok(())
}

/// Deletes the bucket's objects on the garbage list (segment, skeleton, cached skeleton), then forgets
/// them.
async fn delete_garbage(shared: &Shared, tier: &Tier) -> Result<(), MoveError> {
    for (id, key) in index::bucket_garbage(&shared.pool).await? {
        tier.bucket.delete(&key).await?;
        tier.bucket.delete(&skeleton_key(&key)).await?;
        shared.footage.forget(&key);
        super::thumbs::forget(&shared.data_dir, &key);
        index::garbage_done(&shared.pool, id).await?;
    }
    Ok(())
}

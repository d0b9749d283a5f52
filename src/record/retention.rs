//! Retention: which footage goes, oldest first, through the garbage list.
//!
//! Policy (docs/storage.md):
//! - Age: footage of a site kind older than its days (`service_hall_days`, `bid_evaluation_days`; 0 =
//!   kept for good) goes; a recorded sub stream's after `sub_days` instead when that is set.
//! - Budget: when the recordings of the data directory (plus what the open segments will still write)
//!   exceed `disk_budget_mb`, or the file system has less than `min_free_mb` free, the oldest evictable
//!   footage goes until they fit. Evictable = complete, not held, and of a kind with a finite retention.
//! - Held footage (any hold overlapping a segment) and footage kept for good are never deleted; when the
//!   budget cannot be met without them, the disk alarm stays raised.

use super::index::{this_disk, HELD};
use super::recovery::collect_garbage;
use super::Shared;
use crate::db::DbError;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MIB: i64 = 1 << 20;

/// Runs a pass at every interval and whenever a writer reports a full disk.
pub async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let every = Duration::from_secs(shared.cfg.retention_interval_seconds.max(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.retention_kick.notified() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = pass(&shared).await {
            tracing::error!(error = %e, "retention pass failed");
        }
    }
}

/// The age rules: (site kind, the streams it applies to as an SQL condition, days). Kinds kept for good
/// have none.
fn age_rules(shared: &Shared) -> Vec<(&'static str, &'static str, u64)> {
    let sub = shared.cfg.sub_days;
    let mut rules = Vec::new();
    for (kind, days) in kind_days(shared).into_iter().filter(|(_, d)| *d > 0) {
        if sub == 0 {
            rules.push((kind, "", days));
        } else {
            rules.push((kind, " AND s.stream = 'main'", days));
            rules.push((kind, " AND s.stream = 'sub'", sub));
        }
    }
    rules
}

fn kind_days(shared: &Shared) -> [(&'static str, u64); 2] {
    [
        ("service_hall", shared.cfg.service_hall_days),
        ("bid_evaluation", shared.cfg.bid_evaluation_days),
    ]
}

/// The SQL condition for segments whose kind has a finite retention.
fn finite_kinds(shared: &Shared) -> String {
    let kinds: Vec<String> = kind_days(shared)
        .iter()
        .filter(|(_, d)| *d > 0)
        .map(|(k, _)| format!("'{k}'"))
        .collect();
    if kinds.is_empty() {
        "0 = 1".into()
    } else {
        format!("COALESCE(t.kind, s.site_kind) IN ({})", kinds.join(", "))
    }
}

const FROM: &str = "FROM segments s LEFT JOIN cameras c ON c.id = s.camera_id LEFT JOIN sites t ON t.id = c.site_id";

/// Free bytes on the file system of `path`.
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    disk_space(path).map(|(_, free)| free)
}

/// (total, free for unprivileged use) bytes of the file system of `path`.
pub fn disk_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some((st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize))
}

/// What a pass removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassReport {
    pub by_age: usize,
    pub by_budget: usize,
    pub bytes: i64,
}

/// Footage past its site kind's days goes (unless held).
async fn by_age(shared: &Shared, report: &mut PassReport) -> Result<(), DbError> {
    let pool = &shared.pool;
    let now = crate::time::now_us();
    for (kind, streams, days) in age_rules(shared) {
        let cutoff = now - days as i64 * 86_400_000_000;
        loop {
            // Another node's local files are its own to remove; footage in the bucket is anyone's.
            let rows: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
                "SELECT s.id, s.path, s.bytes {FROM} WHERE s.state = 'complete' AND s.end_us < $1
                 AND COALESCE(t.kind, s.site_kind) = $2{streams} AND NOT {HELD}
                 AND (s.stored = 'bucket' OR {}) ORDER BY s.start_us LIMIT 500",
                this_disk("s.", 3)
            ))
            .bind(cutoff)
            .bind(kind)
            .bind(shared.node.as_deref())
            .fetch_all(pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            report.bytes += rows.iter().map(|r| r.2).sum::<i64>();
            let ids: Vec<_> = rows.into_iter().map(|(id, p, _)| (id, p)).collect();
            // Rows held since they were chosen stay (checked again in the deleting transaction).
            report.by_age += super::index::to_garbage(pool, &ids, "retention: age").await?;
        }
    }
    Ok(())
}

/// Bytes over the disk budget or under the free-space floor. Open segments will grow to about a full
/// segment each: their space counts as used already. The running totals are read, not a sum over the
/// whole index.
pub(super) async fn excess_bytes(shared: &Shared) -> Result<i64, DbError> {
    let budget = shared.cfg.disk_budget_mb as i64 * MIB;
    let t = match shared.node.as_deref() {
        // The running totals are the whole index's: a node of a cluster sums its own disk's rows.
        Some(node) => super::index::totals_of(&shared.pool, node).await?,
        None => super::index::totals(&shared.pool).await?,
    };
    let avg = t.complete_bytes.checked_div(t.complete_count).unwrap_or(0);
    let in_flight = t.open_count * avg;
    let mut excess = if budget > 0 {
        (t.bytes + in_flight - budget).max(0)
    } else {
        0
    };
    let min_free = shared.cfg.min_free_mb as i64 * MIB;
    if let Some(free) = free_bytes(&shared.data_dir) {
        excess = excess.max(min_free - free as i64);
    }
    Ok(excess)
}

/// One retention pass.
pub async fn pass(shared: &Shared) -> Result<PassReport, DbError> {
    let pool = &shared.pool;
    let mut report = PassReport::default();
    by_age(shared, &mut report).await?;
    let mut excess = excess_bytes(shared).await?;
    let finite = finite_kinds(shared);
    // With an object storage tier, local footage over the budget moves to the bucket (`tier`) instead.
    while excess > 0 && shared.tier.is_none() {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
            "SELECT s.id, s.path, s.bytes {FROM} WHERE s.state = 'complete' AND {finite} AND NOT {HELD}
             AND s.stored = 'local' AND {} ORDER BY s.start_us LIMIT 100",
            this_disk("s.", 1)
        ))
        .bind(shared.node.as_deref())
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut take = Vec::new();
        for (id, path, bytes) in rows {
            if excess <= 0 {
                break;
            }
            excess -= bytes;
            report.bytes += bytes;
            take.push((id, path));
        }
        report.by_budget += super::index::to_garbage(pool, &take, "retention: disk budget").await?;
    }
    collect_garbage(pool, &shared.data_dir, shared.node.as_deref()).await;
    let (dir, cap) = (shared.data_dir.clone(), shared.cfg.thumbnail_cache_mb << 20);
    let _ = tokio::task::spawn_blocking(move || super::thumbs::prune(&dir, cap)).await;
    if excess > 0 {
        shared.disk_full.store(true, Ordering::Relaxed);
        tracing::error!(
            excess_bytes = excess,
            "disk budget exceeded by footage that is held or kept for good; alarm raised"
        );
    } else if shared.disk_full.swap(false, Ordering::Relaxed) {
        tracing::info!("disk space recovered; alarm cleared");
    }
    if report.by_age + report.by_budget > 0 {
        tracing::info!(
            by_age = report.by_age,
            by_budget = report.by_budget,
            bytes = report.bytes,
            "retention removed footage"
        );
    }
    Ok(report)
}

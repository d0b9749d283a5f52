//! Start-up recovery, run before any recorder starts:
//! 1. finish the garbage list (files whose rows are already gone);
//! 2. every row still `open` (the server stopped without closing it): scan its file, cut off the
//!    incomplete fragment at the end, index every complete fragment, mark it `complete` (a file with no
//!    complete fragment is removed through the garbage list);
//! 3. files of the last days that have no row (a crash between creating a file and inserting its row):
//!    indexed when they hold complete fragments, removed otherwise.
//!
//! After it, the files and the index agree (`vigil check` is clean).

use super::index::{self, SegmentRow};
use super::scan::{scan, ScanError, Scanned};
use crate::db::{DbError, Pool};
use crate::private::fsync_dir;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RecoveryReport {
    pub garbage_removed: usize,
    pub open_recovered: usize,
    pub bytes_cut: u64,
    pub orphans_indexed: usize,
    pub removed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for RecoveryError {
    fn from(e: sqlx::Error) -> Self {
        RecoveryError::Db(DbError::Sqlx(e))
    }
}

/// The index row a scanned file stands for (state `complete`).
pub fn row_from_scan(rel: &str, s: &Scanned) -> SegmentRow {
    let start = s.stats.start_us.unwrap_or_default();
    SegmentRow {
        id: 0,
        camera_id: s.meta.camera_id,
        stream: s.meta.stream.clone(),
        run: s.meta.run,
        site_kind: s.meta.site_kind.clone(),
        start_us: start,
        end_us: s.stats.end_us.max(start),
        duration_90k: s.stats.duration_90k,
        frames: s.stats.frames,
        bytes: s.stats.bytes as i64,
        codec: s.meta.codec.clone(),
        width: i64::from(s.meta.width),
        height: i64::from(s.meta.height),
        keyframes: s.stats.keyframes.clone(),
        path: rel.to_owned(),
        state: "complete".into(),
        stored: "local".into(),
        node: None,
        backfill_id: s.meta.backfill_id,
    }
}

/// Cuts a file back to `len` bytes durably.
pub fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

/// Unlinks every file on the garbage list, then forgets it. Errors are logged and left for the next
/// pass.
pub async fn collect_garbage(pool: &Pool, data_dir: &Path, node: Option<&str>) -> usize {
    let list = match index::garbage(pool, node).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "reading the garbage list");
            return 0;
        }
    };
    let mut n = 0;
    for (id, rel) in list {
        let abs = data_dir.join(&rel);
        let (dd, seg) = (data_dir.to_owned(), rel.clone());
        let res = tokio::task::spawn_blocking(move || {
            // Its pictures go first: a thumbnail never outlives the footage it shows.
            super::thumbs::forget(&dd, &seg);
            match std::fs::remove_file(&abs) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            super::crash::point("garbage.unlinked");
            if let Some(dir) = abs.parent() {
                fsync_dir(dir).or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                // An emptied day directory goes too (fails harmlessly when not empty).
                let _ = std::fs::remove_dir(dir);
            }
            Ok(())
        })
        .await;
        match res {
            Ok(Ok(())) => {
                super::crash::point("garbage.synced");
                if index::garbage_done(pool, id).await.is_ok() {
                    n += 1;
                }
            }
            Ok(Err(e)) => tracing::error!(path = %rel, error = %e, "removing a recording"),
            Err(e) => tracing::error!(error = %e, "removing a recording"),
        }
    }
    n
}

async fn scan_blocking(abs: PathBuf) -> Result<Scanned, ScanError> {
    tokio::task::spawn_blocking(move || scan(&abs, None))
        .await
        .map_err(|e| ScanError::Io(std::io::Error::other(e)))?
}

/// Brings an open row in line with its file. Returns the bytes cut off.
async fn recover_open(
    pool: &Pool,
    data_dir: &Path,
    row: &SegmentRow,
    r: &mut RecoveryReport,
) -> Result<(), RecoveryError> {
    let abs = data_dir.join(&row.path);
    match scan_blocking(abs.clone()).await {
        Ok(s) if !s.fragments.is_empty() => {
            if s.complete_len < s.file_len {
                let len = s.complete_len;
                let a = abs.clone();
                tokio::task::spawn_blocking(move || truncate(&a, len))
                    .await
                    .map_err(std::io::Error::other)??;
                r.bytes_cut += s.file_len - s.complete_len;
            }
            index::update_stats(pool, row.id, row.start_us, &s.stats, "complete", None).await?;
            r.open_recovered += 1;
            tracing::info!(
                camera = row.camera_id,
                segment = row.id,
                fragments = s.fragments.len(),
                cut = s.file_len - s.complete_len,
                "recovered an open segment"
            );
        }
        Err(e) if !e.is_about_content() => {
            // Not readable now (EIO, EACCES, ...): left open for the next start, never removed for it.
            tracing::error!(camera = row.camera_id, path = %row.path, error = %e,
                "open segment cannot be read now; left as it is");
        }
        other => {
            if let Err(e) = other {
                tracing::warn!(camera = row.camera_id, path = %row.path, error = %e, "open segment unreadable; removed");
            }
            index::to_garbage(
                pool,
                &[(row.id, row.path.clone())],
                "recovery: no complete fragment",
            )
            .await?;
            r.removed += 1;
        }
    }
    Ok(())
}

/// Files under `recordings/<camera>/<day>/` for the given UTC days.
pub fn files_of_days(data_dir: &Path, days: &[chrono::NaiveDate]) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(cams) = std::fs::read_dir(data_dir.join("recordings")) else {
        return out;
    };
    for cam in cams.flatten() {
        let Some(cam_name) = cam.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        for day in days {
            let rel_dir = format!("recordings/{cam_name}/{}", day.format("%Y/%m/%d"));
            let Ok(files) = std::fs::read_dir(data_dir.join(&rel_dir)) else {
                continue;
            };
            for f in files.flatten() {
                if let Some(name) = f.file_name().to_str() {
                    if name.ends_with(".mp4") {
                        out.push(format!("{rel_dir}/{name}"));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// Indexes or removes a file that has no row.
pub async fn adopt_orphan(
    pool: &Pool,
    data_dir: &Path,
    node: Option<&str>,
    rel: &str,
    r: &mut RecoveryReport,
) -> Result<(), RecoveryError> {
    let abs = data_dir.join(rel);
    match scan_blocking(abs.clone()).await {
        Ok(s) if !s.fragments.is_empty() => {
            if s.complete_len < s.file_len {
                let len = s.complete_len;
                let a = abs.clone();
                tokio::task::spawn_blocking(move || truncate(&a, len))
                    .await
                    .map_err(std::io::Error::other)??;
                r.bytes_cut += s.file_len - s.complete_len;
            }
            // Written by this node before a crash, under its lease then: indexed as this node's.
            let row = SegmentRow {
                node: node.map(str::to_owned),
                ..row_from_scan(rel, &s)
            };
            index::insert(pool, &row, None).await?;
            r.orphans_indexed += 1;
        }
        Err(e) if !e.is_about_content() => {
            tracing::error!(path = %rel, error = %e, "unindexed file cannot be read now; left as it is");
        }
        _ => {
            let a = abs.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::remove_file(&a)?;
                a.parent().map_or(Ok(()), fsync_dir)
            })
            .await
            .map_err(std::io::Error::other)??;
            r.removed += 1;
        }
    }
    Ok(())
}

/// The start-up recovery (see the module docs).
/// `node`: this node's name in a cluster (its rows only), None for a single server.
pub async fn recover(
    pool: &Pool,
    data_dir: &Path,
    node: Option<&str>,
) -> Result<RecoveryReport, RecoveryError> {
    let mut r = RecoveryReport {
        garbage_removed: collect_garbage(pool, data_dir, node).await,
        ..Default::default()
    };
    for row in index::open_rows(pool, node).await? {
        recover_open(pool, data_dir, &row, &mut r).await?;
    }
    let today = chrono::Utc::now().date_naive();
    let days: Vec<_> = [today.pred_opt(), Some(today), today.succ_opt()]
        .into_iter()
        .flatten()
        .collect();
    let dd = data_dir.to_owned();
    let files = tokio::task::spawn_blocking(move || files_of_days(&dd, &days))
        .await
        .map_err(std::io::Error::other)?;
    if !files.is_empty() {
        let known: HashSet<String> =
            sqlx::query_scalar::<_, String>("SELECT path FROM segments WHERE start_us > $1")
                .bind(crate::time::now_us() - 4 * 86_400_000_000)
                .fetch_all(pool)
                .await?
                .into_iter()
                .collect();
        for rel in files.iter().filter(|f| !known.contains(*f)) {
            adopt_orphan(pool, data_dir, node, rel, &mut r).await?;
        }
    }
    r.garbage_removed += collect_garbage(pool, data_dir, node).await;
    if r.open_recovered + r.orphans_indexed + r.removed > 0 {
        tracing::info!(?r, "recording recovery done");
    }
    Ok(r)
}

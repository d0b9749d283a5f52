//! `vigil check [--repair] [--rebuild]`: the segment files against the index.
//!
//! - Every row must have its file, and the file's complete fragments must give exactly the row's columns
//!   (for an `open` row: the fragments within its indexed length; the file may be longer while a fragment
//!   is being written). A complete row's file must end where its last fragment ends.
//! - Every file must have a row (a file being created right now is given a moment to get one).
//! - `--repair` makes them agree the way start-up recovery does: truncate incomplete tails, re-derive rows
//!   from files, index unindexed files, drop rows whose file is gone.
//! - `--rebuild` replaces the whole index with one made from the files alone (run it with the server
//!   stopped); holds are kept, and so are the rows of footage in the object storage tier (their bytes
//!   were verified when they were uploaded, and no local file stands for them).

use super::index::{self, SegmentRow};
use super::recovery::{adopt_orphan, collect_garbage, row_from_scan, truncate, RecoveryReport};
use super::scan::{scan, ScanError, Scanned};
use crate::db::{DbError, Pool};
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Default)]
pub struct CheckReport {
    pub segments: usize,
    pub files: usize,
    pub problems: Vec<String>,
    pub repaired: Vec<String>,
}

/// Every `.mp4` under `<data_dir>/recordings`, relative to the data directory.
pub fn all_files(data_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![data_dir.join("recordings")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "mp4") {
                if let Ok(rel) = p.strip_prefix(data_dir) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    out
}

fn same_columns(a: &SegmentRow, b: &SegmentRow) -> bool {
    let mut a = a.clone();
    a.id = b.id;
    a.state = b.state.clone();
    a == *b
}

/// `node`: this node's name in a cluster (the rows of its disk and the bucket's), None for a single server.
pub async fn check(
    pool: &Pool,
    data_dir: &Path,
    node: Option<&str>,
    repair: bool,
) -> Result<CheckReport, DbError> {
    let mut rep = CheckReport::default();
    if repair {
        collect_garbage(pool, data_dir, node).await;
    }
    let dd = data_dir.to_owned();
    let files = tokio::task::spawn_blocking(move || all_files(&dd))
        .await
        .unwrap_or_default();
    rep.files = files.len();
    let mut rows = index::all(pool).await?;
    rows.retain(|r| r.in_bucket() || r.node.as_deref() == node);
    rep.segments = rows.len();
    let garbage: HashSet<String> = index::garbage(pool, node)
        .await?
        .into_iter()
        .map(|g| g.1)
        .collect();
    for row in &rows {
        check_row(pool, data_dir, row, repair, &mut rep).await?;
    }
    let known: HashSet<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    let orphans: Vec<&String> = files
        .iter()
        .filter(|f| !known.contains(f.as_str()) && !garbage.contains(*f))
        .collect();
    for f in still_orphans(pool, data_dir, orphans).await? {
        rep.problems.push(format!("{f}: file not in the index"));
        if repair {
            let mut r = RecoveryReport::default();
            adopt_orphan(pool, data_dir, node, f, &mut r)
                .await
                .map_err(|e| DbError::Invalid(e.to_string()))?;
            let what = if r.orphans_indexed > 0 {
                "indexed"
            } else {
                "removed (no complete fragment)"
            };
            rep.repaired.push(format!("{f}: {what}"));
        }
    }
    Ok(rep)
}

/// Files without a row, looked at again after a moment: a writer may be between creating a file and
/// inserting its row, and a file retention removed meanwhile is no orphan either.
async fn still_orphans<'a>(
    pool: &Pool,
    data_dir: &Path,
    mut orphans: Vec<&'a String>,
) -> Result<Vec<&'a String>, DbError> {
    if orphans.is_empty() {
        return Ok(orphans);
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let now_known: HashSet<String> = index::all(pool)
        .await?
        .into_iter()
        .map(|r| r.path)
        .collect();
    orphans.retain(|f| !now_known.contains(*f) && data_dir.join(f.as_str()).exists());
    Ok(orphans)
}

/// Checks one row against its file, and with `repair` makes them agree.
async fn check_row(
    pool: &Pool,
    data_dir: &Path,
    row: &SegmentRow,
    repair: bool,
    rep: &mut CheckReport,
) -> Result<(), DbError> {
    if row.in_bucket() {
        // Checked against its bytes when it was uploaded; there is no local file to compare.
        return Ok(());
    }
    let abs = data_dir.join(&row.path);
    let open = row.state == "open";
    let limit = open.then_some(row.bytes as u64);
    let a = abs.clone();
    let scanned = match tokio::task::spawn_blocking(move || scan(&a, limit)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            rep.problems.push(format!("{}: {e}", row.path));
            if repair && !e.is_about_content() {
                rep.problems.push(format!(
                    "{}: cannot be read now; left as it is (try again once the disk answers)",
                    row.path
                ));
            } else if repair {
                remove_unless_held(pool, data_dir, row, "check: unreadable", rep).await?;
            }
            return Ok(());
        }
        Err(e) => return Err(DbError::Invalid(e.to_string())),
    };
    let mut expect = row_from_scan(&row.path, &scanned);
    expect.site_kind = row.site_kind.clone();
    let wrong = differences(row, &expect, &scanned);
    if wrong.is_empty() {
        return Ok(());
    }
    rep.problems
        .push(format!("{}: {}", row.path, wrong.join("; ")));
    if !repair || open {
        return Ok(());
    }
    if scanned.fragments.is_empty() {
        return remove_unless_held(pool, data_dir, row, "check: empty", rep).await;
    }
    if scanned.file_len > scanned.complete_len {
        truncate(&abs, scanned.complete_len).map_err(|e| DbError::Invalid(e.to_string()))?;
    }
    index::update_stats(pool, row.id, row.start_us, &scanned.stats, "complete", None).await?;
    rep.repaired
        .push(format!("{}: re-derived from the file", row.path));
    Ok(())
}

/// What the row says and the file shows differently.
fn differences(row: &SegmentRow, expect: &SegmentRow, scanned: &Scanned) -> Vec<String> {
    let open = row.state == "open";
    let mut wrong = Vec::new();
    if !same_columns(expect, row) {
        wrong.push(format!(
            "index says {} frames / {} bytes / {}..{}, file has {} / {} / {}..{}",
            row.frames,
            row.bytes,
            row.start_us,
            row.end_us,
            expect.frames,
            expect.bytes,
            expect.start_us,
            expect.end_us
        ));
    }
    if !open && scanned.file_len != scanned.complete_len {
        wrong.push(format!(
            "{} bytes after the last complete fragment",
            scanned.file_len - scanned.complete_len
        ));
    }
    if scanned.fragments.is_empty() && !open {
        wrong.push("no complete fragment".into());
    }
    wrong
}

/// The index made from the files alone, in [`index::all`]'s order.
pub fn rows_from_files(data_dir: &Path) -> Result<Vec<SegmentRow>, ScanError> {
    let mut rows = Vec::new();
    for rel in all_files(data_dir) {
        match scan(&data_dir.join(&rel), None) {
            Ok(s) if !s.fragments.is_empty() => rows.push(row_from_scan(&rel, &s)),
            Ok(_) => {}
            Err(e) if e.is_about_content() => {}
            // A file that cannot be read now would silently drop out of the new index.
            Err(e) => return Err(ScanError::Io(std::io::Error::other(format!("{rel}: {e}")))),
        }
    }
    rows.sort_by(|a, b| {
        (a.camera_id, &a.stream, a.start_us, &a.path).cmp(&(
            b.camera_id,
            &b.stream,
            b.start_us,
            &b.path,
        ))
    });
    Ok(rows)
}

/// Removes a row and its file through the garbage list, unless it is held: held footage stays, and
/// stays a problem of the report.
async fn remove_unless_held(
    pool: &Pool,
    data_dir: &Path,
    row: &SegmentRow,
    reason: &str,
    rep: &mut CheckReport,
) -> Result<(), DbError> {
    let removed = index::to_garbage(pool, &[(row.id, row.path.clone())], reason).await?;
    collect_garbage(pool, data_dir, row.node.as_deref()).await;
    if removed == 1 {
        rep.repaired
            .push(format!("{}: row and file removed", row.path));
    } else {
        rep.problems
            .push(format!("{}: held, so kept as it is", row.path));
    }
    Ok(())
}

/// Replaces the segment index with [`rows_from_files`], in one transaction: until it commits the old
/// index stands whole, and it commits only complete. A file that cannot be read now stops the rebuild.
/// Returns the number of rows.
pub async fn rebuild(pool: &Pool, data_dir: &Path, node: Option<&str>) -> Result<usize, DbError> {
    collect_garbage(pool, data_dir, node).await;
    let dd = data_dir.to_owned();
    let rows = tokio::task::spawn_blocking(move || rows_from_files(&dd))
        .await
        .map_err(|e| DbError::Invalid(e.to_string()))?
        .map_err(|e| DbError::Invalid(format!("rebuild stopped, the index is unchanged: {e}")))?;
    let mut tx = crate::db::begin_write(pool).await?;
    // Footage in the bucket has no local file to be rebuilt from: its rows stay.
    sqlx::query(&format!(
        "DELETE FROM segments WHERE stored = 'local' AND {}",
        index::this_disk("", 1)
    ))
    .bind(node)
    .execute(&mut *tx)
    .await?;
    for r in &rows {
        let r = SegmentRow {
            node: node.map(str::to_owned),
            backfill_id: None,
            ..r.clone()
        };
        index::insert(&mut *tx, &r, None).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

//! The export job: `POST /cases/{case_no}/export` starts it, `GET /exports/{id}` follows it.
//!
//! Invariants:
//! - The job runs in the background (package writing on the blocking pool); its row in `exports` says
//!   `running` until the package is renamed into place (`done`, with its size and SHA-256) or the job
//!   failed (`failed`, with the reason). A server stopped mid-job leaves a `running` row, which start-up
//!   marks failed.
//! - Limits: a user keeps at most `cases.export_quota` exports and `cases.export_quota_mb` of packages
//!   ([`check_quota`]); a finished package is removed after `cases.export_days` unless its case is held
//!   ([`expire`], run by the case sweeper), its row kept and marked expired.
//! - The clips exported are the case's clips at the start of the job as the exporter may see them (a
//!   camera out of their regions *now* is left out, see [`view::case_clips`]); clips with no footage are
//!   listed in the manifest with `file: null`. The row keeps the ids of the cameras whose footage the
//!   package holds, so that reading the export later checks each of them against the reader's regions
//!   at that time.

use super::package::{self, ClipSource};
use super::rows::{CaseRow, EventRow};
use super::view;
use super::CaseService;
use crate::auth::Scope;
use crate::db::{ms_to_rfc3339, now_ms, DbError, Pool};
use crate::record::index;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ExportRow {
    pub id: String,
    pub case_no: String,
    pub region_code: String,
    pub state: String,
    pub progress: f64,
    pub path: Option<String>,
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// When the package was removed (after `cases.export_days`); the row stays.
    pub expired_at: Option<i64>,
    /// JSON array of the ids of the cameras whose footage the package holds.
    pub camera_ids: String,
}

pub async fn get(pool: &Pool, id: &str) -> Result<ExportRow, DbError> {
    sqlx::query_as::<_, ExportRow>(
        "SELECT id, case_no, region_code, state, progress, path, bytes, sha256, error, created_by, created_at,
             finished_at, expired_at, camera_ids FROM exports WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(DbError::NotFound)
}

/// Marks the jobs a previous run left unfinished as failed, and removes what they left in
/// `<data_dir>/exports`: unfinished packages (`*.zip.part`) and copies downloaded from a linked city
/// (`*.city.zip`). Run at start-up, before any job.
pub async fn fail_interrupted(pool: &Pool, data_dir: &std::path::Path) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE exports SET state = 'failed', error = 'interrupted by a server stop', finished_at = $1
         WHERE state = 'running'",
    )
    .bind(now_ms())
    .execute(pool)
    .await?;
    let Ok(dir) = std::fs::read_dir(data_dir.join("exports")) else {
        return Ok(());
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".zip.part") || name.ends_with(".city.zip") {
            tracing::info!(file = %name, "removing what an interrupted export left");
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// Why an export was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Quota(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Refuses a new export when `actor` already keeps `cfg.export_quota` exports or their bytes reach
/// `cfg.export_quota_mb` (expired and failed ones do not count).
pub async fn check_quota(svc: &CaseService, actor: &str) -> Result<(), StartError> {
    let (n, bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM exports
         WHERE created_by = $1 AND state IN ('running', 'done') AND expired_at IS NULL",
    )
    .bind(actor)
    .fetch_one(&svc.pool)
    .await
    .map_err(DbError::from)?;
    let (max_n, max_mb) = (svc.cfg.export_quota as i64, svc.cfg.export_quota_mb as i64);
    if n >= max_n || bytes >= max_mb.saturating_mul(1 << 20) {
        return Err(StartError::Quota(format!(
            "export quota reached ({n} exports, {} MiB kept; at most {max_n} and {max_mb} MiB): \
             older exports expire after {} days",
            bytes >> 20,
            svc.cfg.export_days
        )));
    }
    Ok(())
}

/// Removes the packages of finished exports older than `cfg.export_days` whose case has no active hold;
/// their rows stay, marked expired. Returns how many expired.
pub async fn expire(svc: &CaseService, now: i64) -> Result<usize, DbError> {
    let cutoff = now - (svc.cfg.export_days.max(1) as i64) * 86_400_000;
    let due: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT e.id, e.path FROM exports e WHERE e.state = 'done' AND e.expired_at IS NULL
           AND e.created_at < $1 AND NOT EXISTS (
             SELECT 1 FROM holds h WHERE h.case_no = e.case_no AND h.released_at IS NULL)",
    )
    .bind(cutoff)
    .fetch_all(&svc.pool)
    .await?;
    for (id, path) in &due {
        // The row first: a package that can no longer be downloaded, then its file.
        sqlx::query("UPDATE exports SET expired_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&svc.pool)
            .await?;
        if let Some(rel) = path {
            match std::fs::remove_file(svc.data_dir.join(rel)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(export = %id, error = %e, "removing an expired export"),
            }
        }
        tracing::info!(export = %id, "export expired");
    }
    Ok(due.len())
}

/// Starts exporting a case as an exporter with `scope` sees it; returns the job id.
pub async fn start(
    svc: Arc<CaseService>,
    case: CaseRow,
    actor: String,
    scope: Scope,
) -> Result<String, StartError> {
    let (id, progress) = insert(&svc, &case.case_no, &case.region_code, &actor).await?;
    let job = id.clone();
    tokio::spawn(async move {
        let result = run(&svc, &job, case, &actor, &scope, progress).await;
        finish(&svc, &job, &actor, result).await;
    });
    Ok(id)
}

/// Files a new `running` export of case `case_no` (filed under `region`) by `actor`, within its quota:
/// the job's id and the progress it reports to [`progress`].
pub async fn insert(
    svc: &CaseService,
    case_no: &str,
    region: &str,
    actor: &str,
) -> Result<(String, Arc<AtomicU32>), StartError> {
    check_quota(svc, actor).await?;
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
    let id = hex::encode(id);
    sqlx::query(
        "INSERT INTO exports (id, case_no, region_code, state, progress, created_by, created_at)
         VALUES ($1, $2, $3, 'running', 0, $4, $5)",
    )
    .bind(&id)
    .bind(case_no)
    .bind(region)
    .bind(actor)
    .bind(now_ms())
    .execute(&svc.pool)
    .await
    .map_err(DbError::from)?;
    let progress = Arc::new(AtomicU32::new(0));
    svc.exports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), progress.clone());
    Ok((id, progress))
}

/// Keeps the ids of the cameras whose footage export `id`'s package holds (read checks them later).
pub async fn set_cameras(svc: &CaseService, id: &str, cameras: &[i64]) -> Result<(), DbError> {
    sqlx::query("UPDATE exports SET camera_ids = $1 WHERE id = $2")
        .bind(json!(cameras).to_string())
        .bind(id)
        .execute(&svc.pool)
        .await?;
    Ok(())
}

/// Records the end of job `job`: its package (path relative to the data directory, size and hash) or
/// why it failed; then forgets its progress.
pub async fn finish(
    svc: &CaseService,
    job: &str,
    actor: &str,
    result: Result<(String, package::FileEntry), String>,
) {
    let now = now_ms();
    let done = match result {
        Ok((rel, entry)) => {
            tracing::info!(export = %job, actor = %actor, bytes = entry.bytes, "export done");
            sqlx::query(
                "UPDATE exports SET state = 'done', progress = 1, path = $1, bytes = $2, sha256 = $3,
                     finished_at = $4 WHERE id = $5",
            )
            .bind(rel)
            .bind(entry.bytes as i64)
            .bind(entry.sha256)
            .bind(now)
            .bind(job)
            .execute(&svc.pool)
            .await
        }
        Err(e) => {
            tracing::error!(export = %job, error = %e, "export failed");
            sqlx::query(
                "UPDATE exports SET state = 'failed', error = $1, finished_at = $2 WHERE id = $3",
            )
            .bind(e)
            .bind(now)
            .bind(job)
            .execute(&svc.pool)
            .await
        }
    };
    if let Err(e) = done {
        tracing::error!(export = %job, error = %e, "recording the end of an export failed");
    }
    svc.exports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(job);
}

/// Progress of a running job (0..1), when this process runs it.
pub fn progress(svc: &CaseService, id: &str) -> Option<f64> {
    svc.exports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .map(|p| f64::from(p.load(Ordering::Relaxed)) / 1000.0)
}

async fn run(
    svc: &Arc<CaseService>,
    id: &str,
    case: CaseRow,
    actor: &str,
    scope: &Scope,
    progress: Arc<AtomicU32>,
) -> Result<(String, package::FileEntry), String> {
    let now = now_ms();
    let (events, clips) = view::case_clips(&svc.pool, &case, &svc.defaults(), now, scope)
        .await
        .map_err(|e| e.to_string())?;
    let mut cameras: Vec<i64> = clips.iter().map(|c| c.camera_id).collect();
    cameras.sort_unstable();
    cameras.dedup();
    set_cameras(svc, id, &cameras)
        .await
        .map_err(|e| e.to_string())?;
    let mut sources = Vec::with_capacity(clips.len());
    for c in &clips {
        sources.push(clip_source(svc, c).await.map_err(|e| e.to_string())?);
    }
    let manifest = manifest(svc, id, &case, &events, actor, now)
        .await
        .map_err(|e| e.to_string())?;
    let dir = svc.data_dir.join("exports");
    let rel = format!("exports/{id}.zip");
    let out = svc.data_dir.join(&rel);
    let footage = svc.footage.clone();
    let key = svc.key.clone();
    let entry = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        package::write(&footage, &out, manifest, sources, &key, &progress)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok((rel, entry))
}

/// A clip of the package: its file name, range, metadata and the segments that hold its footage.
async fn clip_source(svc: &CaseService, c: &view::ClipView) -> Result<ClipSource, DbError> {
    let (s_us, e_us) = (c.start_ms * 1000, c.end_ms * 1000);
    let rows = if view::has_footage(c) {
        index::overlapping(&svc.pool, c.camera_id, "main", s_us, e_us).await?
    } else {
        Vec::new()
    };
    let mut meta = Map::new();
    meta.insert("index".into(), json!(c.index));
    meta.insert("camera_id".into(), json!(c.camera_id));
    meta.insert("camera_name".into(), json!(c.camera_name));
    meta.insert("position".into(), json!(c.position));
    meta.insert("reason".into(), json!(c.reason));
    meta.insert("start".into(), json!(c.start));
    meta.insert("end".into(), json!(c.end));
    meta.insert("coverage".into(), json!(c.coverage));
    let stamp = crate::time::ms_to_compact(c.start_ms);
    Ok(ClipSource {
        file: format!("clips/{:02}-camera{}-{stamp}.mp4", c.index + 1, c.camera_id),
        start_us: s_us,
        end_us: e_us,
        meta,
        rows,
    })
}

/// The package's manifest (the clips are added as they are written): the case, its events, who
/// exported it when, and the key that signs it.
async fn manifest(
    svc: &CaseService,
    id: &str,
    case: &CaseRow,
    events: &[EventRow],
    actor: &str,
    now: i64,
) -> Result<Map<String, Value>, DbError> {
    let site_name: Option<String> = sqlx::query_scalar("SELECT name FROM sites WHERE id = $1")
        .bind(case.site_id)
        .fetch_optional(&svc.pool)
        .await?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(view::event_view(e)).unwrap_or(Value::Null))
        .collect();
    let vk = svc.key.verifying_key();
    let mut manifest = Map::new();
    manifest.insert("format".into(), json!(package::FORMAT));
    manifest.insert("export_id".into(), json!(id));
    manifest.insert(
        "case".into(),
        json!({
            "case_no": case.case_no, "case_type": case.case_type, "status": case.status, "card": case.card,
            "site_id": case.site_id, "site_name": site_name, "region_code": case.region_code,
            "first_at": ms_to_rfc3339(case.first_at), "last_at": ms_to_rfc3339(case.last_at),
        }),
    );
    manifest.insert("events".into(), Value::from(events));
    manifest.insert("exported_by".into(), json!(actor));
    manifest.insert("exported_at".into(), json!(ms_to_rfc3339(now)));
    manifest.insert(
        "exported_with".into(),
        json!(format!("vigil {}", env!("CARGO_PKG_VERSION"))),
    );
    manifest.insert(
        "signing_key".into(),
        json!({"algorithm": "ed25519", "public_key": hex::encode(vk.as_bytes()),
               "fingerprint": super::signing::fingerprint(&vk)}),
    );
    Ok(manifest)
}

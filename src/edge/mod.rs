//! Edge retrieval (补录): when a camera's link to Vigil was down while its device or NVR kept recording,
//! the lost interval is fetched back from the device after the link returns and recorded into the same
//! index, its segments marked with the backfill that wrote them (docs/edge.md).
//!
//! Parts:
//! - `gaps`: holes in a camera's spans, and which parts of them a device's records cover.
//! - `store`: the `backfills` rows (one per gap: state, attempts, progress).
//! - `source`: what a camera's footage is fetched from (its GB/T 28181 device, or its NVR's RTSP playback).
//! - `pull`: a playback stream -> the footage's times -> the camera's recording (`record::BackfillSink`).
//! - `ptz`: steering cameras (pan, tilt, zoom, presets) through their device, moves bounded in time.
//!
//! Invariants:
//! - A gap is looked for only between footage recorded before and after it, once the link has been back
//!   for `settle_s`: a camera still offline is not asked for anything.
//! - Each site runs at most `site_pulls` pulls at once, at a speed chosen so that they stay within
//!   `site_kbps`; live streams are never stopped or slowed for a pull.
//! - Only the node that records a camera fetches its gaps (its rows, its disk, its lease).
//! - Every pull that ends is audited with the camera's region; a failed one is retried with backoff up
//!   to `max_attempts`, a device that has nothing for the gap leaves it a gap, said so on the row.

pub mod gaps;
pub mod ptz;
pub mod pull;
pub mod source;
pub mod store;

use crate::audit;
use crate::config::EdgeConfig;
use crate::db::cameras::Camera;
use crate::db::{self, now_ms, Pool};
use crate::gb28181::Platform;
use crate::record::{index, Recorders};
use source::Source;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Backfill, Outcome};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Pieces shorter than this are not fetched (a device's record times are whole seconds).
const MIN_PIECE_US: i64 = 2_000_000;
/// Rows taken up per scan.
const DUE_PER_SCAN: i64 = 64;

pub struct Backfiller {
    pool: Pool,
    cfg: EdgeConfig,
    recorders: Arc<Recorders>,
    gb: Option<Arc<Platform>>,
    audit: audit::Log,
    ingest: crate::config::IngestConfig,
    live: source::LiveSource,
    /// Pull slots per site.
    sites: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

#[derive(Debug, thiserror::Error)]
enum EdgeError {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Pull(#[from] pull::PullError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("this node no longer records the camera")]
    NotRecording,
}

impl Backfiller {
    pub fn new(
        pool: Pool,
        cfg: EdgeConfig,
        recorders: Arc<Recorders>,
        gb: Option<Arc<Platform>>,
        audit: audit::Log,
        (ingest, live): (crate::config::IngestConfig, source::LiveSource),
    ) -> Arc<Backfiller> {
        Arc::new(Backfiller {
            pool,
            cfg,
            recorders,
            gb,
            audit,
            ingest,
            live,
            sites: Mutex::new(HashMap::new()),
        })
    }

    /// Scans every `scan_interval_s` until `stop`; pulls that a restart interrupted are retried.
    pub fn start(self: &Arc<Self>, stop: CancellationToken) {
        if !self.cfg.backfill {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            match store::requeue_interrupted(&me.pool).await {
                Ok(0) => {}
                Ok(n) => info!(
                    pulls = n,
                    "backfill: pulls interrupted by the last stop are retried"
                ),
                Err(e) => warn!(error = %e, "backfill: requeueing interrupted pulls"),
            }
            let every = Duration::from_secs(me.cfg.scan_interval_s);
            loop {
                if let Err(e) = me.scan().await {
                    warn!(error = %e, "backfill: scan failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    /// Finds new gaps of the cameras this node records, then starts the pulls that are due.
    async fn scan(self: &Arc<Self>) -> Result<(), db::DbError> {
        let cams: HashMap<i64, (Camera, Source)> = db::cameras::list(&self.pool)
            .await?
            .into_iter()
            .filter(|c| c.record && self.recorders.is_recording(c.id))
            .filter_map(|c| {
                let src = Source::of(&c, &self.live)?;
                Some((c.id, (c, src)))
            })
            .collect();
        for (cam, src) in cams.values() {
            for hole in self.holes(cam.id).await? {
                if let Some(id) = store::add(&self.pool, cam.id, hole, &src.name()).await? {
                    info!(camera = cam.id, backfill = id, seconds = (hole.1 - hole.0) / 1_000_000,
                        source = %src.name(), "backfill: gap found");
                }
            }
        }
        for row in store::due(&self.pool, DUE_PER_SCAN).await? {
            let Some((cam, src)) = cams.get(&row.camera_id) else {
                continue;
            };
            let Some(slot) = self.slot(cam.site_id) else {
                continue;
            };
            if store::begin(&self.pool, row.id).await? {
                tokio::spawn(self.clone().job(row, cam.clone(), src.clone(), slot));
            }
        }
        Ok(())
    }

    /// The camera's spans of the lookback window, merged (Unix µs), up to `until`.
    async fn spans(
        &self,
        camera_id: i64,
        from: i64,
        until: i64,
    ) -> Result<Vec<(i64, i64)>, db::DbError> {
        let rows = index::overlapping(&self.pool, camera_id, "main", from, until).await?;
        let segs: Vec<(i64, i64)> = rows.iter().map(|r| (r.start_us, r.end_us)).collect();
        Ok(index::merge_spans(&segs, from, until))
    }

    /// Holes with footage recorded again for `settle_s` after them.
    async fn holes(&self, camera_id: i64) -> Result<Vec<(i64, i64)>, db::DbError> {
        let now = now_ms() * 1000;
        let until = now - self.cfg.settle_s as i64 * 1_000_000;
        let from = now - self.cfg.lookback_s as i64 * 1_000_000;
        let spans = self.spans(camera_id, from, until).await?;
        Ok(gaps::holes(&spans, self.cfg.min_gap_s as i64 * 1_000_000))
    }

    fn slot(&self, site_id: i64) -> Option<OwnedSemaphorePermit> {
        let mut sites = self.sites.lock().unwrap_or_else(|e| e.into_inner());
        let sem = sites
            .entry(site_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.site_pulls)));
        sem.clone().try_acquire_owned().ok()
    }

    /// Pulls one gap, then records how it ended (row, audit, log).
    async fn job(
        self: Arc<Self>,
        row: Backfill,
        cam: Camera,
        src: Source,
        _slot: OwnedSemaphorePermit,
    ) {
        let result = self.pull(&row, &cam, &src).await;
        let fetched = self.fetched(&row).await.unwrap_or(0);
        let gap_s = (row.end_us - row.start_us) as f64 / 1e6;
        let (outcome, detail) = match result {
            // Nothing pulled now nor before (the edges of live recording may move by a frame).
            Ok(0) if fetched < MIN_PIECE_US => (
                Outcome::Nothing,
                "the device has no footage of this interval".to_owned(),
            ),
            Ok(_) => (
                Outcome::Done,
                format!("{:.1} s of {gap_s:.1} s recorded", fetched as f64 / 1e6),
            ),
            Err(e) if row.attempts + 1 >= self.cfg.max_attempts => (Outcome::Failed, e.to_string()),
            Err(e) => (Outcome::Retry, e.to_string()),
        };
        // 30 s, 2 min, 8 min, ... after the attempt that failed.
        let backoff_s = 30i64 << (2 * row.attempts.clamp(0, 6));
        let next = now_ms() + backoff_s * 1000;
        if let Err(e) = store::finish(&self.pool, row.id, outcome, fetched, &detail, next).await {
            warn!(camera = cam.id, backfill = row.id, error = %e, "backfill: recording the outcome");
        }
        info!(
            camera = cam.id,
            backfill = row.id,
            outcome = outcome.as_str(),
            detail,
            "backfill: pull ended"
        );
        self.audit(&row, &cam, outcome, &detail).await;
    }

    /// Fetches what the source holds of the parts of the gap still missing; the frames recorded.
    async fn pull(&self, row: &Backfill, cam: &Camera, src: &Source) -> Result<u64, EdgeError> {
        let gap = (row.start_us, row.end_us);
        let missing = gaps::uncovered(gap, &self.spans(cam.id, gap.0, gap.1).await?);
        if missing.is_empty() {
            return Ok(0);
        }
        let whole = (missing[0].0, missing[missing.len() - 1].1);
        let records = src.records(self.gb.as_ref(), whole).await?;
        let speed = self.speed(cam.id).await.min(src.max_speed());
        let mut frames = 0;
        // Device times are whole seconds: a record that seems to reach a second into the gap is rounding.
        let pieces = gaps::pieces(&missing, &records)
            .into_iter()
            .filter(|(a, b)| b - a >= MIN_PIECE_US);
        for piece in pieces {
            let sink = self
                .recorders
                .backfill_sink(cam.id, row.id)
                .ok_or(EdgeError::NotRecording)?;
            let (started, anchor) = match src
                .start((self.gb.as_ref(), &self.ingest), piece, speed)
                .await
            {
                Ok(s) => s,
                Err(source::SourceError::Nothing(why)) => {
                    info!(
                        camera = cam.id,
                        backfill = row.id,
                        why,
                        "backfill: the NVR has nothing of a piece"
                    );
                    sink.finish().await;
                    continue;
                }
                Err(e) => {
                    sink.finish().await;
                    return Err(e.into());
                }
            };
            let len = Duration::from_micros((piece.1 - piece.0) as u64);
            let deadline = len.div_f64(speed) * 2 + Duration::from_secs(60);
            let pool = self.pool.clone();
            let mut last_report = std::time::Instant::now();
            let result = pull::record(started, &sink, piece, anchor, deadline, |reached| {
                if last_report.elapsed() >= Duration::from_secs(2) {
                    last_report = std::time::Instant::now();
                    let (pool, id) = (pool.clone(), row.id);
                    let done = (reached - row.start_us).clamp(0, row.end_us - row.start_us);
                    tokio::spawn(async move { store::progress(&pool, id, done).await });
                }
            })
            .await;
            let counts = sink.finish().await;
            let pulled = result?;
            frames += pulled.frames;
            info!(
                camera = cam.id,
                backfill = row.id,
                frames = pulled.frames,
                gops = counts.gops_written,
                piece_s = (piece.1 - piece.0) / 1_000_000,
                speed,
                "backfill: piece recorded"
            );
        }
        Ok(frames)
    }

    /// Footage of the gap the index has now (µs).
    async fn fetched(&self, row: &Backfill) -> Result<i64, db::DbError> {
        let gap = (row.start_us, row.end_us);
        let missing: i64 = gaps::uncovered(gap, &self.spans(row.camera_id, gap.0, gap.1).await?)
            .iter()
            .map(|(s, e)| e - s)
            .sum();
        Ok(gap.1 - gap.0 - missing)
    }

    /// The speed to ask for: the site's backfill share over the camera's bit rate, in powers of two up to
    /// `max_speed` (what devices accept as a MANSRTSP Scale).
    async fn speed(&self, camera_id: i64) -> f64 {
        let now = now_ms() * 1000;
        let rows = index::overlapping(&self.pool, camera_id, "main", now - 600_000_000, now)
            .await
            .unwrap_or_default();
        let (bytes, ticks) = rows
            .iter()
            .fold((0i64, 0i64), |(b, t), r| (b + r.bytes, t + r.duration_90k));
        let share = self.cfg.site_kbps as f64 / self.cfg.site_pulls as f64;
        let kbps = if ticks > 0 {
            bytes as f64 * 8.0 / (ticks as f64 / 90_000.0) / 1000.0
        } else {
            share
        };
        let mut speed = 1.0;
        while speed * 2.0 <= self.cfg.max_speed && kbps * speed * 2.0 <= share {
            speed *= 2.0;
        }
        speed
    }

    async fn audit(&self, row: &Backfill, cam: &Camera, outcome: Outcome, detail: &str) {
        let entry = audit::Entry {
            actor: "edge".into(),
            role: None,
            action: "backfill".into(),
            target: Some(format!(
                "/cameras/{}/recordings?start={}&end={}",
                cam.id,
                crate::time::us_to_rfc3339(row.start_us),
                crate::time::us_to_rfc3339(row.end_us)
            )),
            region_code: Some(cam.region_code.clone()),
            status: match outcome {
                Outcome::Done => 200,
                Outcome::Nothing => 404,
                Outcome::Retry | Outcome::Failed => 502,
            },
            client: None,
            detail: Some(format!(
                "{} from {}: {detail}",
                outcome.as_str(),
                row.source
            )),
        };
        if let Err(e) = self.audit.append(&entry).await {
            warn!(camera = cam.id, error = %e, "backfill: audit failed");
        }
    }
}

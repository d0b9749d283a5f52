//! Recording: every camera with `record = true` has its main stream written to fragmented MP4 segment
//! files under `<data_dir>/recordings/`, indexed in the database, kept by policy and played back by range.
//! The invariants of the files, the index and their crash ordering are written down in docs/storage.md.
//!
//! Parts:
//! - [`Recorders`]: starts and stops one recorder per camera (the API calls `apply`/`remove` next to
//!   ingest's), and owns the retention task.
//! - `recorder`: hub -> GOPs -> bounded queue (never blocks ingest; drops whole GOPs and records the gap).
//! - `writer`: GOPs -> one fragment each -> segment files (~`segment_seconds`, cut at a keyframe,
//!   staggered per stream) -> index rows, in the crash-safe order.
//! - `scan`: reads segment files back (recovery, check, rebuild, export).
//! - `recovery`: start-up recovery of open segments, orphans and the garbage list.
//! - `retention`: age per site kind, disk budget, free space; holds are never deleted.
//! - `check`: `vigil check [--repair] [--rebuild]`.
//! - `export`: one MP4 (progressive, edit list) across segments and gaps, served by byte ranges.

pub mod check;
pub mod crash;
pub mod export;
mod export_audio;
pub mod footage;
pub mod frames;
pub mod index;
pub mod plans;
pub mod recorder;
pub mod recovery;
pub mod retention;
pub mod scan;
pub mod segment;
pub mod skeleton;
pub mod thumbs;
pub mod tier;
pub mod writer;

use crate::config::RecordConfig;
use crate::db::{cameras::Camera, Pool};
use crate::hub::{Frame, Hub, StreamHub, StreamKey, StreamKind};
use footage::Footage;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Frames of a backfill's footage that may wait for its recorder (it never waits on the disk).
const BACKFILL_QUEUE: usize = 256;
/// How long a backfill's writer may take to write what was queued when the pull ends.
const FINISH_WAIT: Duration = Duration::from_secs(30);

/// One GOP on its way to the disk writer.
pub struct Gop {
    /// From a keyframe on.
    pub frames: Vec<Arc<Frame>>,
    /// The camera's audio frames that arrived with this GOP's video, in order.
    pub audio: Vec<Arc<Frame>>,
    /// Media time of the frame after the last one, when known (same run and parameters).
    pub next_media_time: Option<i64>,
    /// Footage was lost just before this GOP: it starts a new segment.
    pub after_gap: bool,
    /// The stream stopped or went idle after this GOP: close the segment after writing it.
    pub close_after: bool,
}

/// Counters of one stream's recorder (for metrics and status).
#[derive(Default)]
pub struct RecStatus {
    pub gops_written: AtomicU64,
    pub gops_dropped: AtomicU64,
    pub frames_skipped: AtomicU64,
    pub bytes_written: AtomicU64,
    pub errors: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// A reading of a recorder's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecCounts {
    pub gops_written: u64,
    pub gops_dropped: u64,
    pub frames_skipped: u64,
    pub bytes_written: u64,
    pub errors: u64,
}

impl RecStatus {
    pub fn counts(&self) -> RecCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RecCounts {
            gops_written: get(&self.gops_written),
            gops_dropped: get(&self.gops_dropped),
            frames_skipped: get(&self.frames_skipped),
            bytes_written: get(&self.bytes_written),
            errors: get(&self.errors),
        }
    }
}

/// What every writer and the retention task share.
pub struct Shared {
    pub pool: Pool,
    pub cfg: RecordConfig,
    pub data_dir: PathBuf,
    /// Server start (ms): makes run ids unique across restarts.
    pub boot_ms: i64,
    /// Set when a write failed for lack of space; cleared when retention has freed space.
    pub disk_full: AtomicBool,
    pub retention_kick: Notify,
    /// Where segments are read from (the data directory, and the bucket of the tier).
    pub footage: Footage,
    /// The object storage tier, when `[storage.object]` is configured.
    pub tier: Option<Arc<tier::Tier>>,
    /// This node's name in a cluster (its rows are those of its disk), None for a single server.
    pub node: Option<String>,
}

struct Running {
    cancel: CancellationToken,
    writer: tokio::task::JoinHandle<()>,
    status: Arc<RecStatus>,
    fence: Option<index::Fence>,
}

/// Where footage fetched back from a device (edge retrieval) is recorded: frames published on `stream`,
/// carrying the footage's own wall times, are grouped and written as live ones are, into segments whose
/// rows name the backfill.
pub struct BackfillSink {
    pub stream: Arc<StreamHub>,
    cancel: CancellationToken,
    writer: tokio::task::JoinHandle<()>,
    status: Arc<RecStatus>,
}

impl BackfillSink {
    /// Writes every frame published, closes the segment and returns the counters. Closing the stream (its
    /// last owner is this sink) lets the recorder take what is still in the broadcast before it ends;
    /// cancelling would drop it. A writer stuck on the disk for [`FINISH_WAIT`] is cancelled.
    pub async fn finish(self) -> RecCounts {
        let BackfillSink {
            stream,
            cancel,
            mut writer,
            status,
        } = self;
        drop(stream);
        if tokio::time::timeout(FINISH_WAIT, &mut writer)
            .await
            .is_err()
        {
            cancel.cancel();
            let _ = writer.await;
        }
        status.counts()
    }
}

/// The recorders of every recorded camera.
pub struct Recorders {
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    running: Mutex<HashMap<StreamKey, Running>>,
    stop_retention: CancellationToken,
    /// Playback plans of recent ranges (`video.mp4`).
    pub plans: plans::PlanCache,
}

impl Recorders {
    /// Must run inside tokio; starts the retention task (and the tier's mover). Run
    /// [`recovery::recover`] before.
    pub fn new(
        hub: Arc<Hub>,
        pool: Pool,
        cfg: RecordConfig,
        data_dir: PathBuf,
        tier: Option<tier::Tier>,
        node: Option<String>,
    ) -> Arc<Recorders> {
        let tier = tier.map(Arc::new);
        let bucket = tier.as_ref().map(|t| t.bucket.clone());
        let footage = Footage::new(data_dir.clone(), bucket, node.clone());
        let plans = plans::PlanCache::new(footage.clone());
        let shared = Arc::new(Shared {
            pool,
            cfg,
            data_dir,
            boot_ms: crate::db::now_ms(),
            disk_full: AtomicBool::new(false),
            retention_kick: Notify::new(),
            footage,
            tier: tier.clone(),
            node,
        });
        let stop_retention = CancellationToken::new();
        tokio::spawn(retention::run(shared.clone(), stop_retention.clone()));
        if let Some(t) = tier {
            tokio::spawn(tier::run(shared.clone(), t, stop_retention.clone()));
        }
        Arc::new(Recorders {
            hub,
            shared,
            running: Mutex::new(HashMap::new()),
            stop_retention,
            plans,
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts recording the camera's main stream when `record` is set, and its sub stream too when
    /// `record_sub` is and it has one; stops what is no longer asked for.
    pub fn apply(&self, cam: &Camera) {
        self.apply_leased(cam, None);
    }

    /// [`Recorders::apply`] under a lease (cluster): every row is written under `fence`, and the
    /// recorder stops writing once the lease is found to have moved on.
    pub fn apply_leased(&self, cam: &Camera, fence: Option<index::Fence>) {
        let sub = cam.record && cam.record_sub && cam.sub_url.is_some();
        for (kind, on) in [(StreamKind::Main, cam.record), (StreamKind::Sub, sub)] {
            let key = StreamKey {
                camera_id: cam.id,
                kind,
            };
            if on {
                self.start(key, fence.clone());
            } else {
                self.stop(key);
            }
        }
    }

    fn start(&self, key: StreamKey, fence: Option<index::Fence>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.contains_key(&key) {
            return;
        }
        let (cached, sub) = self.hub.stream(key).subscribe_av();
        let writer =
            writer::Writer::new(key, self.shared.clone(), Default::default(), fence.clone());
        let (cancel, writer, status) = self.spawn(cached, sub, writer);
        tracing::info!(
            camera = key.camera_id,
            stream = key.kind.as_str(),
            "recording started"
        );
        running.insert(
            key,
            Running {
                cancel,
                writer,
                status,
                fence,
            },
        );
    }

    /// Stops recording one stream (its last GOP is written and its segment closed in the background).
    fn stop(&self, key: StreamKey) {
        let r = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(r) = r {
            r.cancel.cancel();
            tracing::info!(
                camera = key.camera_id,
                stream = key.kind.as_str(),
                "recording stopped"
            );
        }
    }

    /// A sink for footage of `camera_id` fetched back by the backfill `backfill`; None when this node does
    /// not record the camera (its rows are another node's to write, or nobody's).
    pub fn backfill_sink(&self, camera_id: i64, backfill: i64) -> Option<BackfillSink> {
        let fence = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.get(&StreamKey::main(camera_id))?.fence.clone()
        };
        let key = StreamKey::main(camera_id);
        let stream = Arc::new(StreamHub::standalone(key, BACKFILL_QUEUE));
        let (cached, sub) = stream.subscribe();
        let writer = writer::Writer::new(key, self.shared.clone(), Default::default(), fence)
            .backfilling(backfill, crate::db::now_ms());
        let (cancel, writer, status) = self.spawn(cached, sub, writer);
        Some(BackfillSink {
            stream,
            cancel,
            writer,
            status,
        })
    }

    /// Runs a recorder (hub -> GOPs) and its disk writer; returns what stops them, the writer's task and
    /// their counters.
    fn spawn(
        &self,
        cached: Vec<Arc<Frame>>,
        sub: crate::hub::Subscriber,
        writer: writer::Writer,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<()>,
        Arc<RecStatus>,
    ) {
        let key = writer.key();
        let status = writer.status().clone();
        let (tx, rx) = tokio::sync::mpsc::channel(self.shared.cfg.queue_gops.max(1));
        let cancel = CancellationToken::new();
        let span = tracing::info_span!(parent: None, "record", camera = key.camera_id, stream = key.kind.as_str());
        tokio::spawn(
            recorder::run(
                cached,
                sub,
                tx,
                status.clone(),
                Duration::from_millis(self.shared.cfg.idle_close_ms.max(100)),
                cancel.clone(),
            )
            .instrument(span.clone()),
        );
        let writer = tokio::spawn(writer.run(rx).instrument(span));
        (cancel, writer, status)
    }

    /// Stops recording the camera's streams.
    pub fn remove(&self, camera_id: i64) {
        for kind in [StreamKind::Main, StreamKind::Sub] {
            self.stop(StreamKey { camera_id, kind });
        }
    }

    /// Whether the camera's main stream is being recorded.
    pub fn is_recording(&self, camera_id: i64) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&StreamKey::main(camera_id))
    }

    /// The counters of every recorded stream.
    pub fn statuses(&self) -> Vec<(StreamKey, RecCounts)> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = running
            .iter()
            .map(|(k, r)| (*k, r.status.counts()))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    pub fn disk_full(&self) -> bool {
        self.shared.disk_full.load(Ordering::Relaxed)
    }

    /// Stops every recorder and waits (up to 10 s) until their segments are closed.
    pub async fn shutdown(&self) {
        let all: Vec<Running> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &all {
            r.cancel.cancel();
        }
        let wait = futures::future::join_all(all.into_iter().map(|r| r.writer));
        let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
        self.stop_retention.cancel();
    }
}

#[cfg(test)]
mod plans_tests;
#[cfg(test)]
mod tests;

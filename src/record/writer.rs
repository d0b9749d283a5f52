//! The disk writer of one stream: turns GOPs into fragments of segment files and keeps the index in step.
//!
//! Invariants (the crash ordering of docs/storage.md):
//! 1. A segment file is created, its init segment written and fsynced, its directory fsynced, and only
//!    then is its row inserted (state `open`).
//! 2. Each GOP becomes one fragment, appended with one vectored write and fsynced (`fsync = true`); only
//!    then does the row's progress (end, duration, bytes, keyframes) move forward. The row never covers
//!    bytes that are not durable.
//! 3. Closing a segment flips its row to `complete`; the file is not touched again.
//! 4. A write or fsync error ends the segment at its last durable fragment (the file is truncated there)
//!    and is never retried on the same file (after a failed fsync the page cache cannot be trusted).
//! 5. A segment has an audio track when its first GOP brought audio; audio in other parameters (or
//!    arriving for a segment without a track) starts a new segment, like a change of video parameters.
//!    A fragment's audio is written after its video in the same `mdat`, fsynced with it.
//! 6. File work runs on the blocking pool; the async task only waits for it, so ingest is never blocked
//!    (the queue in front of this writer is bounded and the recorder drops GOPs when it is full).

use super::index::{self, SegmentRow};
use super::segment::{
    cut_time, relative_path, ticks_to_us, FragmentSummary, SegmentMeta, SegmentStats,
};
use super::{Gop, RecStatus, Shared};
use crate::db::DbError;
use crate::hub::{AudioParams, Frame, StreamKey, VideoParams};
use crate::media::fmp4::{self, AudioRun, AudioTrack, Fragment, InitOptions, Sample};
use crate::private::fsync_dir;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frame duration used when it cannot be measured (last frame of a stream, odd timestamps): 25 fps.
const FALLBACK_DURATION: u32 = 3600;
/// A frame "duration" above this is a timestamp jump, not a duration.
const MAX_DURATION: i64 = 10 * 90_000;

struct Open {
    id: i64,
    file: Option<File>,
    abs: PathBuf,
    params: Arc<VideoParams>,
    /// The audio track's parameters, when the segment has one.
    audio: Option<Arc<AudioParams>>,
    run: u64,
    media_origin: i64,
    start_us: i64,
    stats: SegmentStats,
    seq: u32,
    cut_at_us: i64,
}

pub struct Writer {
    key: StreamKey,
    shared: Arc<Shared>,
    status: Arc<RecStatus>,
    seg: Option<Open>,
    last_duration: u32,
    /// The lease this camera is recorded under (cluster), and whether it was found stale: then nothing
    /// more is written (the cluster stops this recorder).
    fence: Option<index::Fence>,
    fenced: bool,
    /// The edge retrieval whose footage this writer writes (its rows name it), None for live recording.
    backfill: Option<i64>,
    /// What run ids are made unique with: the server's start, or a backfill's own start (its footage is
    /// a run of its own, never continued by a live one).
    run_base_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("writer task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl Writer {
    pub fn new(
        key: StreamKey,
        shared: Arc<Shared>,
        status: Arc<RecStatus>,
        fence: Option<index::Fence>,
    ) -> Writer {
        Writer {
            key,
            status,
            seg: None,
            last_duration: FALLBACK_DURATION,
            fence,
            fenced: false,
            backfill: None,
            run_base_ms: shared.boot_ms,
            shared,
        }
    }

    pub fn key(&self) -> StreamKey {
        self.key
    }

    pub fn status(&self) -> &Arc<RecStatus> {
        &self.status
    }

    /// A writer of footage fetched back by the edge retrieval `backfill` (started at `started_ms`).
    pub fn backfilling(mut self, backfill: i64, started_ms: i64) -> Writer {
        self.backfill = Some(backfill);
        self.run_base_ms = started_ms;
        self
    }

    /// Writes GOPs until the queue's sender is dropped, then closes the open segment.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Gop>) {
        while let Some(gop) = rx.recv().await {
            self.handle(gop).await;
        }
        self.close().await;
    }

    async fn handle(&mut self, gop: Gop) {
        let Some(first) = gop.frames.first().cloned() else {
            return;
        };
        if self.fenced {
            return;
        }
        if let (Some(f), None) = (&self.fence, self.backfill) {
            // Backfilled footage is older than the lease by nature: the lease holder fetched it for a hole
            // nobody recorded, and its rows are still written under the lease's epoch.
            if first.wall_time_us < f.since_us {
                // Footage from before this node took the lease (a relayed GOP still cached in the hub):
                // the previous holder indexed it, or nobody may.
                tracing::debug!(
                    camera = self.key.camera_id,
                    "recording: GOP from before the lease skipped"
                );
                return;
            }
        }
        let gop_audio = gop.audio.first().and_then(|a| a.audio.clone());
        let new_segment = match &self.seg {
            None => true,
            Some(s) => {
                gop.after_gap
                    || gop_audio
                        .as_ref()
                        .is_some_and(|a| !s.audio.as_ref().is_some_and(|sa| Arc::ptr_eq(sa, a)))
                    || s.run != first.run
                    || !Arc::ptr_eq(&s.params, &first.params)
                    || first.wall_time_us >= s.cut_at_us
                    || first.media_time < s.media_origin
                    // Wall time left media time (a clock step): the segment's times would lie.
                    || (first.wall_time_us
                        - (s.start_us + ticks_to_us(first.media_time - s.media_origin)))
                    .abs()
                        > 1_000_000
            }
        };
        if new_segment {
            self.close().await;
            if let Err(e) = self.open(&first, gop_audio).await {
                self.failed("opening a segment", &e);
                return;
            }
        }
        if let Err(e) = self.append(&gop).await {
            self.failed("writing a fragment", &e);
            self.abandon().await;
            return;
        }
        if gop.close_after {
            self.close().await;
        }
    }

    fn failed(&mut self, what: &str, e: &WriteError) {
        if let WriteError::Db(DbError::Stale(why)) = e {
            // Not a failure of this node's disk: another node records the camera now.
            tracing::warn!(camera = self.key.camera_id, %why, "recording: lease lost; this node stops writing");
            self.fenced = true;
            return;
        }
        self.status.errors.fetch_add(1, Ordering::Relaxed);
        if let WriteError::Io(io) = e {
            if io.raw_os_error() == Some(28) {
                // ENOSPC: raise the alarm and let retention free space now.
                self.shared.disk_full.store(true, Ordering::Relaxed);
                self.shared.retention_kick.notify_one();
            }
        }
        tracing::error!(camera = self.key.camera_id, stream = self.key.kind.as_str(), error = %e, "recording: {what} failed; gap recorded");
        if let Ok(mut last) = self.status.last_error.lock() {
            *last = Some(format!("{what}: {e}"));
        }
    }

    async fn open(
        &mut self,
        first: &Arc<Frame>,
        audio: Option<Arc<AudioParams>>,
    ) -> Result<(), WriteError> {
        let shared = &self.shared;
        let site_kind = index::site_kind(&shared.pool, self.key.camera_id).await?;
        let p = &first.params;
        let meta = SegmentMeta {
            camera_id: self.key.camera_id,
            stream: self.key.kind.as_str().to_owned(),
            run: run_id(self.run_base_ms, first.run),
            site_kind: site_kind.clone(),
            codec: p.codec.clone(),
            width: p.width,
            height: p.height,
            backfill_id: self.backfill,
        };
        let init = init_segment(&meta, p, audio.as_deref());
        let rel = relative_path(
            self.key.camera_id,
            self.key.kind,
            first.wall_time_us,
            rand::random(),
        );
        let abs = shared.data_dir.join(&rel);
        let fsync = shared.cfg.fsync;
        let init_len = init.len() as u64;
        let abs2 = abs.clone();
        let file =
            tokio::task::spawn_blocking(move || create_segment_file(&abs2, &init, fsync)).await??;
        let row = SegmentRow {
            id: 0,
            camera_id: self.key.camera_id,
            stream: meta.stream.clone(),
            run: meta.run,
            site_kind,
            start_us: first.wall_time_us,
            end_us: first.wall_time_us,
            duration_90k: 0,
            frames: 0,
            bytes: init_len as i64,
            codec: meta.codec.clone(),
            width: i64::from(meta.width),
            height: i64::from(meta.height),
            keyframes: Vec::new(),
            path: rel,
            state: "open".into(),
            stored: "local".into(),
            node: shared.node.clone(),
            backfill_id: self.backfill,
        };
        let id = index::insert(&shared.pool, &row, self.fence.as_ref()).await?;
        super::crash::point("segment.indexed");
        tracing::debug!(camera = self.key.camera_id, segment = id, path = %row.path, "segment opened");
        let len_us = (shared.cfg.segment_seconds.max(1) as i64) * 1_000_000;
        self.seg = Some(Open {
            id,
            file: Some(file),
            abs,
            params: first.params.clone(),
            audio,
            run: first.run,
            media_origin: first.media_time,
            start_us: first.wall_time_us,
            stats: SegmentStats::new(init_len),
            seq: 0,
            cut_at_us: cut_time(
                first.wall_time_us,
                len_us,
                self.key.camera_id,
                self.key.kind,
            ),
        });
        Ok(())
    }

    fn durations(&mut self, gop: &Gop) -> Vec<u32> {
        let n = gop.frames.len();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let next = if i + 1 < n {
                Some(gop.frames[i + 1].media_time)
            } else {
                gop.next_media_time
            };
            let d = next.map(|t| t - gop.frames[i].media_time);
            let d = match d {
                Some(d) if d > 0 && d <= MAX_DURATION => {
                    self.last_duration = d as u32;
                    d as u32
                }
                _ => self.last_duration,
            };
            out.push(d);
        }
        out
    }

    async fn append(&mut self, gop: &Gop) -> Result<(), WriteError> {
        let durations = self.durations(gop);
        let fsync = self.shared.cfg.fsync;
        let Some(seg) = self.seg.as_mut() else {
            return Ok(());
        };
        let first = &gop.frames[0];
        let samples: Vec<Sample> = gop
            .frames
            .iter()
            .zip(&durations)
            .map(|(f, d)| Sample {
                data: f.data.clone(),
                duration: *d,
                keyframe: f.keyframe,
                composition_offset: f.composition_offset,
            })
            .collect();
        seg.seq += 1;
        let media_offset = first.media_time - seg.media_origin;
        let (audio_base, audio) = audio_samples(seg, &gop.audio);
        let frag = Fragment::build_av(
            seg.seq,
            media_offset as u64,
            Some(first.wall_time_us),
            &samples,
            Some(AudioRun {
                base_media_time: audio_base,
                samples: &audio,
            }),
        );
        let summary = FragmentSummary {
            wall_us: first.wall_time_us,
            media_offset,
            byte_offset: seg.stats.bytes,
            len: frag.len(),
            duration_90k: durations.iter().map(|d| i64::from(*d)).sum(),
            frames: samples.len() as i64,
        };
        let Some(mut file) = seg.file.take() else {
            return Ok(());
        };
        let (file, res) = tokio::task::spawn_blocking(move || {
            let r = (|| {
                let mut slices = frag.io_slices();
                fmp4::write_all_vectored(&mut file, &mut slices)?;
                super::crash::point("fragment.written");
                if fsync {
                    file.sync_data()?;
                }
                super::crash::point("fragment.synced");
                Ok::<_, std::io::Error>(())
            })();
            (file, r)
        })
        .await?;
        seg.file = Some(file);
        res?;
        seg.stats.push(&summary);
        let fence = self.fence.as_ref();
        index::update_stats(
            &self.shared.pool,
            seg.id,
            seg.start_us,
            &seg.stats,
            "open",
            fence,
        )
        .await?;
        super::crash::point("fragment.indexed");
        self.status.gops_written.fetch_add(1, Ordering::Relaxed);
        self.status
            .bytes_written
            .fetch_add(summary.len, Ordering::Relaxed);
        Ok(())
    }

    /// Marks the open segment complete (or removes it when it holds no fragment).
    async fn close(&mut self) {
        let Some(seg) = self.seg.take() else { return };
        let pool = &self.shared.pool;
        let res = if seg.stats.frames == 0 {
            let rel = index::get(pool, seg.id).await.map(|r| r.path);
            match rel {
                Ok(rel) => {
                    let r = index::to_garbage(pool, &[(seg.id, rel)], "empty segment")
                        .await
                        .map(|_| ());
                    let node = self.shared.node.as_deref();
                    super::recovery::collect_garbage(pool, &self.shared.data_dir, node).await;
                    r
                }
                Err(e) => Err(e),
            }
        } else {
            let fence = self.fence.as_ref();
            let mut r =
                index::update_stats(pool, seg.id, seg.start_us, &seg.stats, "complete", fence)
                    .await;
            if let Err(DbError::Stale(_)) = r {
                // The lease moved on: the row is closed as the lease last saw it.
                r = index::complete_as_is(pool, seg.id).await;
            }
            super::crash::point("segment.completed");
            r
        };
        if let Err(e) = res {
            tracing::error!(camera = self.key.camera_id, segment = seg.id, error = %e, "closing a segment");
        } else {
            tracing::debug!(
                camera = self.key.camera_id,
                segment = seg.id,
                frames = seg.stats.frames,
                "segment closed"
            );
        }
    }

    /// After a failed write: cut the file back to its last durable fragment and close the segment there.
    async fn abandon(&mut self) {
        if let Some(seg) = self.seg.as_mut() {
            let len = seg.stats.bytes;
            let abs = seg.abs.clone();
            seg.file = None;
            let _ = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&abs)
                    .and_then(|f| f.set_len(len).and_then(|_| f.sync_all()))
            })
            .await;
        }
        self.close().await;
    }
}

/// The init segment of a new segment file: its metadata in `udta`, the video and the audio tracks.
fn init_segment(meta: &SegmentMeta, p: &VideoParams, audio: Option<&AudioParams>) -> Vec<u8> {
    let udta = meta.to_box();
    let opts = InitOptions {
        udta: Some(&udta),
        audio: audio.map(|a| AudioTrack {
            sample_entry: &a.sample_entry,
            rate: a.sample_rate,
        }),
    };
    fmp4::init_segment(&p.sample_entry, p.width, p.height, &opts)
}

/// The GOP's audio frames that belong in the segment's audio track (its parameters, not before the
/// segment's start) as samples, and the decode time of the first in the track's timescale.
fn audio_samples(seg: &Open, frames: &[Arc<Frame>]) -> (u64, Vec<Sample>) {
    let Some(params) = &seg.audio else {
        return (0, Vec::new());
    };
    let mut base = None;
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        let same = f.audio.as_ref().is_some_and(|a| Arc::ptr_eq(a, params));
        if !same || f.media_time < seg.media_origin {
            continue;
        }
        base.get_or_insert_with(|| params.ticks_from_90k(f.media_time - seg.media_origin) as u64);
        out.push(Sample {
            data: f.data.clone(),
            duration: params.frame_samples(f.data.len()),
            keyframe: true,
            composition_offset: 0,
        });
    }
    (base.unwrap_or(0), out)
}

/// A run id unique across server restarts: the server's start (ms) and the session's run counter.
pub fn run_id(boot_ms: i64, run: u64) -> i64 {
    boot_ms
        .saturating_mul(1000)
        .saturating_add((run % 1000) as i64)
}

/// Creates the file (never overwriting one), writes the init segment, fsyncs the file and the directories
/// it lives in.
fn create_segment_file(abs: &Path, init: &[u8], fsync: bool) -> std::io::Result<File> {
    let dir = abs
        .parent()
        .ok_or_else(|| std::io::Error::other("segment path has no directory"))?;
    let created_dir = !dir.exists();
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(abs)?;
    file.write_all(init)?;
    super::crash::point("segment.written");
    if fsync {
        file.sync_all()?;
        fsync_dir(dir)?;
        if created_dir {
            // The new day directory (and possibly its parents) must be durable too.
            let mut d = dir.parent();
            for _ in 0..4 {
                match d {
                    Some(p) => {
                        fsync_dir(p)?;
                        d = p.parent();
                    }
                    None => break,
                }
            }
        }
    }
    super::crash::point("segment.synced");
    Ok(file)
}

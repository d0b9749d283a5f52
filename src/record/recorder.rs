//! The frame side of one stream's recorder: takes frames from the hub, groups them into GOPs and hands
//! each complete GOP to the stream's disk writer through a bounded queue.
//!
//! Invariants:
//! - Never waits on the writer: `try_send`; when the queue is full the GOP is dropped, counted, and the next
//!   GOP is marked `after_gap` (the writer then starts a new segment, so the index shows the gap).
//! - A GOP starts at a keyframe. After `Received::Skipped` (the hub dropped frames for us) the partial GOP is
//!   dropped and recording resumes at the keyframe the hub hands out next.
//! - A GOP ends at the next keyframe, at a change of run or parameters, when the stream goes idle, or when
//!   the recorder stops; only in the first case is the media time of the following frame known.
//! - Audio frames go with the GOP whose video is being gathered when they arrive (of the same run); audio
//!   while no GOP is open is dropped with that video.

use super::{Gop, RecStatus};
use crate::hub::{Frame, Received, Subscriber};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A GOP longer than this is not a GOP (a camera that never sends keyframes): it is dropped as a gap.
const MAX_GOP_FRAMES: usize = 1800;

struct Grouper {
    cur: Vec<Arc<Frame>>,
    audio: Vec<Arc<Frame>>,
    after_gap: bool,
    tx: mpsc::Sender<Gop>,
    status: Arc<RecStatus>,
}

impl Grouper {
    /// Sends the current GOP. Returns false when the writer is gone.
    fn flush(&mut self, next_media_time: Option<i64>, close_after: bool) -> bool {
        if self.cur.is_empty() {
            return true;
        }
        let frames = std::mem::replace(&mut self.cur, Vec::with_capacity(64));
        let audio = std::mem::take(&mut self.audio);
        let gop = Gop {
            frames,
            audio,
            next_media_time,
            after_gap: self.after_gap,
            close_after,
        };
        match self.tx.try_send(gop) {
            Ok(()) => {
                self.after_gap = close_after;
                true
            }
            Err(mpsc::error::TrySendError::Full(gop)) => {
                self.status.gops_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    frames = gop.frames.len(),
                    "disk writer behind: GOP dropped, gap recorded"
                );
                self.after_gap = true;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn push(&mut self, f: Arc<Frame>) -> bool {
        if f.is_audio() {
            if self.cur.first().is_some_and(|v| v.run == f.run) && self.audio.len() < MAX_GOP_FRAMES
            {
                self.audio.push(f);
            }
            return true;
        }
        if let Some(first) = self.cur.first() {
            let same = first.run == f.run && Arc::ptr_eq(&first.params, &f.params);
            if f.keyframe || !same {
                let next = same.then_some(f.media_time);
                if !self.flush(next, false) {
                    return false;
                }
            }
        }
        if self.cur.is_empty() && !f.keyframe {
            // Not decodable without the frames before it.
            return true;
        }
        if self.cur.len() >= MAX_GOP_FRAMES {
            self.cur.clear();
            self.audio.clear();
            self.after_gap = true;
            return true;
        }
        self.cur.push(f);
        true
    }
}

/// Runs until `cancel` fires or the stream is removed; then hands over its last GOP and returns (dropping
/// the queue's sender, which lets the writer finish).
pub async fn run(
    cached: Vec<Arc<Frame>>,
    mut sub: Subscriber,
    tx: mpsc::Sender<Gop>,
    status: Arc<RecStatus>,
    idle: Duration,
    cancel: CancellationToken,
) {
    let mut g = Grouper {
        cur: Vec::with_capacity(64),
        audio: Vec::new(),
        after_gap: false,
        tx,
        status,
    };
    for f in cached {
        if !g.push(f) {
            return;
        }
    }
    // One idle timer for the whole run, re-armed only when it fires (from the last frame's arrival), and
    // one cancellation future: a fresh `sleep` per frame inserted and removed a timer 25-50 times a
    // second per stream (about half of this loop's cost in the profile of docs/perf.md).
    let mut last_frame = tokio::time::Instant::now();
    let quiet = tokio::time::sleep(idle);
    let cancelled = cancel.cancelled();
    tokio::pin!(quiet, cancelled);
    loop {
        let received = tokio::select! {
            r = sub.recv() => r,
            () = &mut quiet => {
                if last_frame.elapsed() >= idle {
                    // The stream went quiet: write what we have and close the segment.
                    if !g.flush(None, true) {
                        return;
                    }
                    last_frame = tokio::time::Instant::now();
                }
                quiet.as_mut().reset(last_frame + idle);
                continue;
            }
            () = &mut cancelled => {
                g.flush(None, true);
                return;
            }
        };
        match received {
            Received::Frame(f) => {
                last_frame = tokio::time::Instant::now();
                if !g.push(f) {
                    return;
                }
            }
            Received::Skipped { skipped } => {
                g.status
                    .frames_skipped
                    .fetch_add(skipped + g.cur.len() as u64, Ordering::Relaxed);
                tracing::warn!(skipped, "recorder fell behind the camera: gap recorded");
                g.cur.clear();
                g.audio.clear();
                g.after_gap = true;
            }
            Received::Closed => {
                g.flush(None, true);
                return;
            }
        }
    }
}

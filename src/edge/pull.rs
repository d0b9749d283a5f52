//! One piece of a gap, from a device's playback stream into the camera's recording: the frames are given
//! the footage's wall times (the piece's start plus their media time since the first frame), whole GOPs
//! outside the piece are left out, and the rest is published to a [`BackfillSink`], which records it as
//! live footage is recorded.
//!
//! Invariants:
//! - A device starts a playback at the keyframe at or before the asked second, so the first frame is
//!   taken to be at the asked second: times are right to within one GOP (docs/edge.md).
//! - A GOP is published only when it reaches into the piece; the first GOP that starts after the piece
//!   ends the pull. At most one GOP (bounded) waits here.
//! - A pull ends within its deadline, and when the source stalls: it never holds a site's slot forever.

use crate::hub::{Frame, Received, StreamHub};
use crate::record::BackfillSink;
use crate::time::ticks_to_us;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A source that sends nothing for this long has stalled.
const STALL: Duration = Duration::from_secs(20);
/// A GOP longer than this is dropped (a source that never sends a keyframe).
const MAX_GOP_FRAMES: usize = 1800;
/// Every backfilled frame's run: one run per backfill writer (see `record::writer::Writer::backfilling`).
const RUN: u64 = 1;

/// A running playback of a piece: its frames, and what tells that the source ended it.
pub struct Started {
    pub stream: Arc<StreamHub>,
    pub ended: CancellationToken,
    /// Whatever keeps the source's session alive (dropped at the end: BYE, TEARDOWN).
    pub session: Box<dyn Send>,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("the source sent nothing for {0:?}")]
    Stalled(Duration),
    #[error("the pull took longer than {0:?}")]
    Deadline(Duration),
    #[error("this server fell behind the source (frames skipped)")]
    Skipped,
}

/// What a pull recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pulled {
    pub frames: u64,
}

/// Frames to footage times, whole GOPs kept or left out.
struct Retimer {
    piece: (i64, i64),
    anchor_us: i64,
    origin: Option<i64>,
    gop: Vec<Arc<Frame>>,
    past_end: bool,
}

impl Retimer {
    /// Takes a frame; returns a finished GOP that reaches into the piece, if one finished.
    fn push(&mut self, f: &Frame) -> Option<Vec<Arc<Frame>>> {
        let origin = *self.origin.get_or_insert(f.media_time);
        let wall = self.anchor_us + ticks_to_us(f.media_time - origin);
        let mut out = None;
        if f.keyframe {
            out = self.flush(Some(wall));
            if wall >= self.piece.1 {
                self.past_end = true;
                return out;
            }
        }
        if self.gop.is_empty() && !f.keyframe {
            return out;
        }
        if self.gop.len() >= MAX_GOP_FRAMES {
            self.gop.clear();
            return out;
        }
        self.gop.push(Arc::new(Frame {
            wall_time_us: wall,
            run: RUN,
            ..f.clone()
        }));
        out
    }

    /// The current GOP, if it reaches into the piece (`end`: when the next GOP starts, if known).
    fn flush(&mut self, end: Option<i64>) -> Option<Vec<Arc<Frame>>> {
        let gop = std::mem::take(&mut self.gop);
        let start = gop.first()?.wall_time_us;
        let end = end.unwrap_or_else(|| gop.last().map_or(start, |f| f.wall_time_us));
        (end > self.piece.0 && start < self.piece.1).then_some(gop)
    }
}

/// Records the piece `(start_us, end_us)` from `src`, whose first frame is at `anchor_us`; ends when
/// the source ends, the piece is passed, or on a stall or the deadline. `progress` hears of every GOP.
pub async fn record(
    src: Started,
    sink: &BackfillSink,
    piece: (i64, i64),
    anchor_us: i64,
    deadline: Duration,
    mut progress: impl FnMut(i64),
) -> Result<Pulled, PullError> {
    let (cached, mut sub) = src.stream.subscribe();
    let mut r = Retimer {
        piece,
        anchor_us,
        origin: None,
        gop: Vec::new(),
        past_end: false,
    };
    let mut pulled = Pulled::default();
    let mut publish = |gop: Vec<Arc<Frame>>, pulled: &mut Pulled| {
        if let Some(last) = gop.last() {
            progress(last.wall_time_us);
        }
        pulled.frames += gop.len() as u64;
        for f in gop {
            sink.stream.publish(f);
        }
    };
    for f in cached {
        if let Some(gop) = r.push(&f) {
            publish(gop, &mut pulled);
        }
    }
    let until = Instant::now() + deadline;
    while !r.past_end {
        let next = tokio::select! {
            n = tokio::time::timeout(STALL, sub.recv()) => n,
            _ = src.ended.cancelled() => break,
            _ = tokio::time::sleep_until(until) => return Err(PullError::Deadline(deadline)),
        };
        match next {
            Err(_) => return Err(PullError::Stalled(STALL)),
            Ok(Received::Frame(f)) => {
                if let Some(gop) = r.push(&f) {
                    publish(gop, &mut pulled);
                }
            }
            Ok(Received::Skipped { .. }) => return Err(PullError::Skipped),
            Ok(Received::Closed) => break,
        }
    }
    // The source ended: what was still in flight, then the last GOP.
    while let Received::Frame(f) = tokio::time::timeout(Duration::from_millis(200), sub.recv())
        .await
        .unwrap_or(Received::Closed)
    {
        if r.past_end {
            break;
        }
        if let Some(gop) = r.push(&f) {
            publish(gop, &mut pulled);
        }
    }
    if let Some(gop) = r.flush(None) {
        publish(gop, &mut pulled);
    }
    drop(src.session);
    Ok(pulled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::VideoParams;

    fn frame(i: i64, keyframe: bool, params: &Arc<VideoParams>) -> Frame {
        Frame {
            data: bytes::Bytes::from_static(b"x"),
            media_time: 1_000_000 + i * 3600,
            composition_offset: 0,
            wall_time_us: 0,
            keyframe,
            params: params.clone(),
            run: 7,
            loss: 0,
            audio: None,
        }
    }

    #[test]
    fn gops_outside_the_piece_are_left_out_and_times_are_the_footage() {
        let params = Arc::new(VideoParams {
            codec: "avc1.64001f".into(),
            width: 640,
            height: 360,
            extra_data: Default::default(),
            sample_entry: Default::default(),
            generation: 0,
        });
        // 25 fps, a keyframe every 25 frames; the first frame is at 100 s.
        let mut r = Retimer {
            piece: (101_500_000, 103_000_000),
            anchor_us: 100_000_000,
            origin: None,
            gop: Vec::new(),
            past_end: false,
        };
        let mut kept = Vec::new();
        for i in 0..125 {
            if let Some(g) = r.push(&frame(i, i % 25 == 0, &params)) {
                kept.push(g);
            }
            if r.past_end {
                break;
            }
        }
        // GOP 100-101 s ends before the piece: left out. 101-102 and 102-103 reach into it; the GOP at
        // 103 s starts at its end and ends the pull.
        assert!(r.past_end);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0][0].wall_time_us, 101_000_000);
        assert_eq!(kept[1][0].wall_time_us, 102_000_000);
        assert_eq!(kept[1][24].wall_time_us, 102_960_000);
        assert!(kept.iter().flatten().all(|f| f.run == RUN));
    }
}

//! The simulated device's own recording: it keeps the last minutes of its encoder's access units, answers
//! RecordInfo with the span it holds, and serves Playback INVITEs from it at the speed, pause and seek
//! positions the platform's MANSRTSP INFO requests ask for. When the range is sent it tells the platform
//! (MediaStatus 121, "end of file") as NVRs do.
//!
//! Invariants: the archive is bounded by [`KEEP_MS`] and [`KEEP_BYTES`]; a replay starts at a keyframe
//! (the last one at or before the asked start) and sends each access unit once, with its encoder
//! timestamps, paced so that `scale` seconds of footage go out per second.

use super::gb28181::Au;
use crate::gb28181::mansrtsp::Command;
use crate::gb28181::pace::Pace;
use crate::gb28181::send::Answering;
use crate::gb28181::xml;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How much footage the device keeps.
pub const KEEP_MS: i64 = 300_000;
pub const KEEP_BYTES: usize = 96 << 20;
/// A pause in the recording longer than this ends a record.
pub const BREAK_MS: i64 = 2_000;
/// The devices' clock offset the simulator writes its times in (China Standard Time, as Vigil's default).
pub const UTC_OFFSET_MINUTES: i32 = 480;

/// The recorded access units, oldest first, with their wall time (Unix milliseconds).
#[derive(Default)]
pub struct Archive {
    frames: VecDeque<(i64, Arc<Au>)>,
    bytes: usize,
}

impl Archive {
    pub fn push(&mut self, at_ms: i64, au: Arc<Au>) {
        self.bytes += au.data.len();
        self.frames.push_back((at_ms, au));
        while let Some((first, au)) = self.frames.front() {
            if at_ms - first <= KEEP_MS && self.bytes <= KEEP_BYTES {
                break;
            }
            self.bytes -= au.data.len();
            self.frames.pop_front();
        }
    }

    /// The spans held, as RecordInfo reports them: a record from a keyframe to the last frame before a
    /// break of more than [`BREAK_MS`] in the recording (or to the last frame).
    pub fn spans(&self) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = Vec::new();
        let mut open: Option<(i64, i64)> = None;
        for (at, au) in &self.frames {
            open = match open {
                Some((first, last)) if at - last <= BREAK_MS => Some((first, *at)),
                Some(done) => {
                    out.push(done);
                    au.keyframe.then_some((*at, *at))
                }
                None => au.keyframe.then_some((*at, *at)),
            };
        }
        out.extend(open);
        out.retain(|(a, b)| b > a);
        out
    }

    /// The frames of `[start, end]`, from the last keyframe at or before `start` (or the first after it).
    pub fn range(&self, start_ms: i64, end_ms: i64) -> Vec<(i64, Arc<Au>)> {
        let keyframes = self
            .frames
            .iter()
            .enumerate()
            .filter(|(_, (_, au))| au.keyframe);
        let from = keyframes
            .clone()
            .take_while(|(_, (at, _))| *at <= start_ms)
            .last()
            .or_else(|| keyframes.clone().next())
            .map(|(i, _)| i);
        let Some(from) = from else {
            return Vec::new();
        };
        self.frames
            .iter()
            .skip(from)
            .take_while(|(at, _)| *at <= end_ms)
            .cloned()
            .collect()
    }
}

/// The RecordInfo answer for one channel, in pages: the archive's spans clipped to the asked range.
pub fn record_info(
    sn: &str,
    channel: &str,
    spans: &[(i64, i64)],
    asked: (i64, i64),
) -> Vec<Vec<u8>> {
    let clipped: Vec<(i64, i64)> = spans
        .iter()
        .map(|(a, b)| (*a.max(&asked.0), *b.min(&asked.1)))
        .filter(|(a, b)| b > a)
        .collect();
    xml::record_info_pages(sn, channel, "模拟录像", &clipped, 4, UTC_OFFSET_MINUTES)
}

/// The index of the last keyframe of `clip` at or before `from_s` seconds after its start.
fn seek(clip: &[(i64, Arc<Au>)], from_s: f64) -> usize {
    let target = clip.first().map_or(0, |(at, _)| *at) + (from_s * 1000.0) as i64;
    clip.iter()
        .enumerate()
        .rev()
        .find(|(_, (at, au))| au.keyframe && *at <= target)
        .map_or(0, |(i, _)| i)
}

/// Sends `clip` as PS over RTP to the target, steered by `control`; true when it reached the end.
pub async fn replay(
    answering: Answering,
    clip: Vec<(i64, Arc<Au>)>,
    video_type: u8,
    mut control: mpsc::Receiver<Command>,
    cancel: CancellationToken,
) -> std::io::Result<bool> {
    let mut sink = answering.open(video_type).await?;
    let mut pace = Pace::new(clip.first().map_or(0, |(at, _)| *at));
    let mut next = 0;
    let mut steered = true;
    while let Some((at, au)) = clip.get(next) {
        let due = pace.due(*at);
        tokio::select! {
            _ = cancel.cancelled() => return Ok(false),
            cmd = control.recv(), if steered => match cmd {
                Some(cmd) => {
                    if let Some(from) = pace.apply(cmd) {
                        next = seek(&clip, from);
                    }
                    pace.anchor(clip.get(next).map_or(0, |(at, _)| *at));
                }
                None => steered = false,
            },
            _ = tokio::time::sleep_until(due), if !pace.paused => {
                sink.frame(&au.data, au.pts, au.pts, au.keyframe).await?;
                next += 1;
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn au(keyframe: bool) -> Arc<Au> {
        Arc::new(Au {
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            pts: 0,
            keyframe,
        })
    }

    #[test]
    fn a_range_starts_at_the_keyframe_before_it() {
        let mut a = Archive::default();
        for i in 0..100 {
            a.push(1_000 + i * 40, au(i % 25 == 0));
        }
        assert_eq!(a.spans(), vec![(1_000, 1_000 + 99 * 40)]);
        let r = a.range(2_100, 3_000);
        assert_eq!(r.first().map(|f| f.0), Some(2_000));
        assert!(r.last().is_some_and(|f| f.0 <= 3_000));
        assert!(a.range(0, 500).is_empty() || a.range(0, 500)[0].1.keyframe);
        let clip = a.range(0, i64::MAX);
        assert_eq!(clip[seek(&clip, 1.5)].0, 2_000);
        // A break in the recording: two records.
        a.push(1_000 + 99 * 40 + 5_000, au(true));
        a.push(1_000 + 99 * 40 + 5_040, au(false));
        assert_eq!(a.spans(), vec![(1_000, 1_000 + 99 * 40), (9_960, 10_000)]);
        a.push(1_000 + KEEP_MS + 4_000, au(false));
        assert!(a.frames.front().is_some_and(|f| f.0 >= 4_000));
    }
}

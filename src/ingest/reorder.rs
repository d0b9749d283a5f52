//! Decode times for streams with B-frames.
//!
//! RTP carries each frame's presentation time, and frames arrive in decode order. Without
//! B-frames the two orders agree; with them the RTP timestamps go back and forth (I0 P4 B2 B1 B3
//! ...), and everything downstream that measures a frame's duration, or places it on a
//! timeline, needs a decode time that only rises. MP4 stores exactly that: decode times, and
//! each sample's presentation offset from its decode time.
//!
//! With a reorder depth `d` (how many later-decoded frames may be shown before a frame), the
//! decode times are the presentation times in sorted order, `d` frames late: each frame puts
//! its presentation time into a pool, and once the pool holds more than `d`, the smallest comes
//! out as this frame's decode time. That needs no look-ahead, so ingest never waits.
//!
//! Cameras do not announce `d` reliably (an SPS may lack `bitstream_restriction`), so it is
//! learned: it starts at 0 (no B-frames, the common case, where decode time = presentation time)
//! and grows by one whenever a frame arrives that would need a decode time before the last one.
//! That frame is given the next tick after the last decode time and shown then (a one-time
//! misplacement of a frame or two at the start of a B-frame stream); the depth is kept across the
//! stream's runs.
//!
//! Invariants: decode times rise strictly within a run, except that a presentation time more than
//! 10 s before the last decode time is a camera clock jump, not reordering, and starts a new timeline
//! (as a reconnection does) instead of squeezing the frames after it into ticks; every frame's
//! presentation time is at or after its decode time (the offset is never negative).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::TICKS_PER_SECOND;

/// Deeper reordering than this is not H.264 or H.265 (both cap the decoded picture buffer at 16).
const MAX_DEPTH: usize = 16;
/// A presentation time this far before the last decode time is a clock jump, not B-frame reordering.
const MAX_REORDER_SPAN: i64 = 10 * TICKS_PER_SECOND;
/// The frame duration assumed before one is measured (25 fps), in 90 kHz ticks.
const DEFAULT_DURATION: i64 = 3_600;

#[derive(Debug)]
pub struct DecodeTimes {
    depth: usize,
    pool: BinaryHeap<Reverse<i64>>,
    last: Option<i64>,
    duration: i64,
    /// No decode time came out of the pool yet in this run.
    starting: bool,
}

impl Default for DecodeTimes {
    fn default() -> Self {
        DecodeTimes {
            depth: 0,
            pool: BinaryHeap::new(),
            last: None,
            duration: DEFAULT_DURATION,
            starting: true,
        }
    }
}

impl DecodeTimes {
    /// A new run starts: media time restarts, the learned depth stays.
    pub fn new_run(&mut self) {
        self.pool.clear();
        self.last = None;
        self.starting = true;
    }

    /// The learned reorder depth (0: no B-frames seen).
    #[cfg(test)]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The decode time of the next frame in decode order, given its presentation time, and the
    /// presentation offset (presentation - decode, never negative).
    pub fn next(&mut self, pts: i64) -> (i64, u32) {
        if self.last.is_some_and(|last| pts < last - MAX_REORDER_SPAN) {
            // Not reordering but a camera whose clock went back: a new timeline, as across runs.
            tracing::warn!(
                back_ticks = self.last.unwrap_or(pts) - pts,
                "stream timestamps went back; timeline restarted"
            );
            self.new_run();
        }
        let dts = match self.last {
            Some(last) if pts <= last => self.deepen(last),
            last => {
                self.pool.push(Reverse(pts));
                let popped = (self.pool.len() > self.depth)
                    .then(|| self.pool.pop())
                    .flatten();
                self.starting &= popped.is_none();
                let dts = match popped {
                    Some(Reverse(t)) => t,
                    // The pool is still filling. At the start of a run, with the depth known, the
                    // first frames are spaced by one duration (exact for a steady frame rate); after
                    // the depth grew mid-run, by one tick, so that the frames to come, which may
                    // show earlier, still find room after them.
                    None => match last {
                        None => pts - i64::try_from(self.depth).unwrap_or(0) * self.duration,
                        Some(l) if self.starting => l + self.duration,
                        Some(l) => l + 1,
                    },
                }
                .min(pts);
                match last {
                    Some(l) if dts <= l => l + 1,
                    Some(l) => {
                        let step = dts - l;
                        if popped.is_some() && step < 10 * TICKS_PER_SECOND {
                            self.duration = step;
                        }
                        dts
                    }
                    None => dts,
                }
            }
        };
        self.last = Some(dts);
        (dts, u32::try_from(pts - dts).unwrap_or(0))
    }

    /// A frame whose presentation time is before the last decode time: the stream reorders
    /// deeper than assumed.
    fn deepen(&mut self, last: i64) -> i64 {
        self.starting = false;
        if self.depth < MAX_DEPTH {
            self.depth += 1;
            tracing::info!(
                depth = self.depth,
                "stream reorders frames (B-frames); decode times follow"
            );
        }
        // Times at or before the last decode time can no longer be handed out.
        self.pool.retain(|Reverse(t)| *t > last);
        last + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: i64 = 3_600;

    /// Presentation order numbers of x264's pyramid pattern, in decode order, for `gops` GOPs of 8.
    fn pyramid(gops: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for g in 0..gops {
            let b = g * 8;
            out.extend([b, b + 4, b + 2, b + 1, b + 3, b + 7, b + 6, b + 5]);
        }
        out
    }

    fn check(times: &[(i64, u32)], pts: &[i64]) {
        for w in times.windows(2) {
            assert!(w[1].0 > w[0].0, "decode times rise: {times:?}");
        }
        for ((dts, off), p) in times.iter().zip(pts) {
            assert_eq!(dts + i64::from(*off), p * F, "offset = pts - dts");
        }
    }

    #[test]
    fn without_b_frames_decode_time_is_presentation_time() {
        let mut d = DecodeTimes::default();
        let pts: Vec<i64> = (0..100).collect();
        let times: Vec<_> = pts.iter().map(|p| d.next(p * F)).collect();
        assert!(times.iter().all(|&(dts, off)| off == 0 && dts % F == 0));
        check(&times, &pts);
        assert_eq!(d.depth(), 0);
    }

    #[test]
    fn b_frames_get_rising_decode_times_and_exact_durations_once_learned() {
        let mut d = DecodeTimes::default();
        let pts = pyramid(4);
        let first: Vec<_> = pts.iter().map(|p| d.next(p * F)).collect();
        for w in first.windows(2) {
            assert!(w[1].0 > w[0].0, "rising even while learning: {first:?}");
        }
        let depth = d.depth();
        assert!((2..=3).contains(&depth), "learned depth {depth}");

        // The next run starts with the depth known: exact from its first frame.
        d.new_run();
        let times: Vec<_> = pts.iter().map(|p| d.next(p * F)).collect();
        check(&times, &pts);
        for w in times.windows(2) {
            assert_eq!(w[1].0 - w[0].0, F, "every duration one frame: {times:?}");
        }
    }

    #[test]
    fn a_clock_that_goes_back_restarts_the_timeline_instead_of_squeezing_it() {
        let mut d = DecodeTimes::default();
        for i in 0..50 {
            d.next(3_600_000_000 + i * F);
        }
        let times: Vec<_> = (0..50).map(|i| d.next(i * F)).collect();
        assert_eq!(d.depth(), 0);
        assert!(times
            .iter()
            .enumerate()
            .all(|(i, &(dts, off))| dts == i as i64 * F && off == 0));
    }

    #[test]
    fn garbage_timestamps_never_break_the_invariants() {
        let mut d = DecodeTimes::default();
        let mut t: i64 = 12345;
        let mut last = None;
        for i in 0..10_000i64 {
            t = t
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pts = (t >> 50) + i * 100;
            let (dts, off) = d.next(pts);
            assert!(last.is_none_or(|l| dts > l));
            assert!(dts <= pts && i64::from(off) == pts - dts || off == 0);
            last = Some(dts);
        }
        assert!(d.depth() <= MAX_DEPTH);
    }
}

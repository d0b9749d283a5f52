//! Wall-clock time of frames (docs/time.md).
//!
//! Media time (RTP, 90 kHz) gives exact durations; wall time is anchored once per run and then follows
//! media time, corrected within bounds:
//! - Anchor on the least-delayed frame: a frame that arrives earlier than the anchor predicts shows the
//!   anchor frame was delayed (connection set-up, a burst); the anchor moves earlier to it, by at most
//!   `MAX_EARLY_STEP_US` per frame (more than that is a clock step, below).
//! - Drift: when every frame of a window arrived late (camera clock slower than the server's, or vice
//!   versa), the anchor is slewed toward the server clock by at most `MAX_SLEW_PPM` of the elapsed media time.
//! - Clock steps: when the server's clock moves by more than `STEP_US` apart from the monotonic clock
//!   between two frames (NTP setting the clock after boot, an operator), the step is logged and the run is
//!   re-anchored on the new clock: footage before keeps its times, footage after gets the corrected ones,
//!   and the recorder starts a new segment (wall time no longer follows media time across it).
//!
//! Invariant: within one anchor, wall time = anchor + media time elapsed, adjusted by at most
//! `MAX_SLEW_PPM` (and the bounded early moves), so it is monotonic and durations stay media durations.

use std::time::Instant;

/// Largest correction toward the server clock, in parts per million of elapsed media time.
pub const MAX_SLEW_PPM: i64 = 500;
/// A disagreement between the system and the monotonic clock above this is a clock step.
pub const STEP_US: i64 = 1_000_000;
/// A frame arriving earlier than predicted moves the anchor at most this much at once.
const MAX_EARLY_STEP_US: i64 = 500_000;
/// Window over which the least delay is measured before slewing.
const WINDOW_US: i64 = 10_000_000;

#[derive(Debug)]
pub struct WallClock {
    anchor_media: i64,
    anchor_wall: i64,
    last: Option<(Instant, i64)>,
    window_start_media: i64,
    window_min_delay: i64,
    /// Clock steps seen in this run.
    pub steps: u32,
}

use crate::time::ticks_to_us;

impl WallClock {
    /// Anchored on the run's first frame, received at `now_us` (system clock).
    pub fn new(media_time: i64, now_us: i64, now: Instant) -> WallClock {
        WallClock {
            anchor_media: media_time,
            anchor_wall: now_us,
            last: Some((now, now_us)),
            window_start_media: media_time,
            window_min_delay: i64::MAX,
            steps: 0,
        }
    }

    /// Wall time (Unix µs) of this media time by the current anchor, without taking it as a new
    /// observation (audio follows the video's clock).
    pub fn at(&self, media_time: i64) -> i64 {
        self.anchor_wall + ticks_to_us(media_time - self.anchor_media)
    }

    /// Wall time (Unix µs) of a frame with this media time, received now.
    pub fn frame(&mut self, media_time: i64, now_us: i64, now: Instant) -> i64 {
        if let Some((mono, sys)) = self.last {
            let mono_d = now.saturating_duration_since(mono).as_micros() as i64;
            let step = (now_us - sys) - mono_d;
            if step.abs() > STEP_US {
                self.steps += 1;
                tracing::warn!(
                    step_ms = step / 1000,
                    "server clock stepped; re-anchoring wall time"
                );
                self.anchor_media = media_time;
                self.anchor_wall = now_us;
                self.window_start_media = media_time;
                self.window_min_delay = i64::MAX;
            }
        }
        self.last = Some((now, now_us));
        let predicted = self.anchor_wall + ticks_to_us(media_time - self.anchor_media);
        let delay = now_us - predicted;
        if delay < 0 {
            // Arrived earlier than the anchor says: the anchor frame was late. Move it earlier.
            self.anchor_wall += delay.max(-MAX_EARLY_STEP_US);
        } else {
            self.window_min_delay = self.window_min_delay.min(delay);
            let elapsed = ticks_to_us(media_time - self.window_start_media);
            if elapsed >= WINDOW_US {
                // Every frame of the window was late by at least the least delay: the clocks drift apart.
                let slew = (elapsed * MAX_SLEW_PPM / 1_000_000).min(self.window_min_delay);
                self.anchor_wall += slew;
                self.window_start_media = media_time;
                self.window_min_delay = i64::MAX;
            }
        }
        self.anchor_wall + ticks_to_us(media_time - self.anchor_media)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T: i64 = 1_763_700_000_000_000;

    #[test]
    fn anchors_on_the_least_delayed_frame() {
        let now = Instant::now();
        // The first frame arrives 300 ms late; the next arrive on time.
        let mut c = WallClock::new(0, T + 300_000, now);
        let w = c.frame(3600, T + 40_000, now + Duration::from_millis(40));
        assert_eq!(w, T + 40_000);
    }

    #[test]
    fn drift_is_slewed_at_most_500_ppm() {
        let now = Instant::now();
        let mut c = WallClock::new(0, T, now);
        // The camera clock runs 0.1 % slow: frames arrive later and later.
        let mut w = 0;
        for i in 1..=25 * 60 {
            let media = i * 3600;
            let real = i * 40_000 * 1001 / 1000;
            w = c.frame(media, T + real, now + Duration::from_micros(real as u64));
        }
        let real_end = 60_000_000 * 1001 / 1000;
        let uncorrected = T + 60_000_000;
        assert!(w > uncorrected, "slewed toward the server clock");
        assert!(w - uncorrected <= 60_000_000 * MAX_SLEW_PPM / 1_000_000 + 1);
        assert!(w <= T + real_end);
    }

    #[test]
    fn clock_step_is_detected_and_re_anchored() {
        let now = Instant::now();
        let mut c = WallClock::new(0, T, now);
        assert_eq!(
            c.frame(3600, T + 40_000, now + Duration::from_millis(40)),
            T + 40_000
        );
        // The system clock jumps 1 hour ahead between two frames 40 ms apart.
        let w = c.frame(7200, T + 3_600_080_000, now + Duration::from_millis(80));
        assert_eq!(c.steps, 1);
        assert_eq!(w, T + 3_600_080_000);
    }
}

//! One continuous output timeline across a stream's runs. A camera's media time (90 kHz, from RTP)
//! restarts with every connection (a new `run`); a consumer that outputs one stream for longer than a
//! run (a live fragment builder, a transcode) places each frame after the previous one: within a run by
//! its media-time difference, across runs (or after an implausible jump) by the last frame's duration.
//! So the output never goes back in time and never jumps.

use super::Frame;

/// The duration assumed before any is known (25 fps).
pub const DEFAULT_DURATION: u32 = 3_600;

#[derive(Debug, Clone)]
pub struct Timeline {
    last_dts: Option<u64>,
    /// (run, media time) of the previous frame.
    last: Option<(u64, i64)>,
    duration: u32,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            last_dts: None,
            last: None,
            duration: DEFAULT_DURATION,
        }
    }
}

impl Timeline {
    /// The output decode time (90 kHz, from 0) of this frame and the current frame duration estimate.
    pub fn place(&mut self, frame: &Frame) -> (u64, u32) {
        let dts = match (self.last_dts, self.last) {
            (Some(last_dts), Some((run, prev))) if run == frame.run => {
                let delta = frame.media_time - prev;
                if delta > 0 && delta < 90_000 * 10 {
                    self.duration = delta as u32;
                    last_dts + delta as u64
                } else {
                    last_dts + u64::from(self.duration)
                }
            }
            (Some(last_dts), _) => last_dts + u64::from(self.duration),
            (None, _) => 0,
        };
        self.last_dts = Some(dts);
        self.last = Some((frame.run, frame.media_time));
        (dts, self.duration)
    }
}

//! The state of one camera stream as the API reports it, and the meter that measures fps and bitrate from
//! what actually arrives (not from what the camera claims).

use serde::Serialize;
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    Connecting,
    Online,
    Offline,
    AuthFailed,
    Unsupported,
    /// Opened on demand and nobody needs it now (a GB/T 28181 channel that is not recorded): not down.
    Idle,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Connecting => "connecting",
            StreamState::Online => "online",
            StreamState::Offline => "offline",
            StreamState::AuthFailed => "auth_failed",
            StreamState::Unsupported => "unsupported",
            StreamState::Idle => "idle",
        }
    }
}

/// What `GET /cameras/{id}/status` shows for one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub state: StreamState,
    pub codec: Option<String>,
    /// The camera's sound as it is taken (`aac`, `pcma`, `pcmu`), None without.
    pub audio: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub bitrate_bps: Option<u64>,
    pub last_frame_at: Option<chrono::DateTime<chrono::Utc>>,
    pub error: Option<String>,
    /// Connection attempts since the stream was started (a reconnect storm shows here).
    pub attempts: u64,
    pub frames: u64,
    pub bytes: u64,
}

impl StreamStatus {
    pub fn connecting() -> StreamStatus {
        StreamStatus {
            state: StreamState::Connecting,
            codec: None,
            audio: None,
            width: None,
            height: None,
            fps: None,
            bitrate_bps: None,
            last_frame_at: None,
            error: None,
            attempts: 0,
            frames: 0,
            bytes: 0,
        }
    }
}

/// Frame rate and bitrate over a sliding window of media time (the camera's own clock), so that network
/// jitter does not show up as frame-rate changes.
#[derive(Debug, Default)]
pub struct RateMeter {
    window: VecDeque<(i64, usize)>,
    window_bytes: usize,
}

/// Two seconds of 90 kHz media time.
const WINDOW_TICKS: i64 = 2 * 90_000;

impl RateMeter {
    pub fn push(&mut self, media_time: i64, bytes: usize) {
        if let Some(&(last, _)) = self.window.back() {
            if media_time < last {
                // Media time went back: a new run or a camera that lies; start the window afresh.
                self.window.clear();
                self.window_bytes = 0;
            }
        }
        self.window.push_back((media_time, bytes));
        self.window_bytes += bytes;
        while let Some(&(t, b)) = self.window.front() {
            if media_time - t > WINDOW_TICKS && self.window.len() > 2 {
                self.window.pop_front();
                self.window_bytes -= b;
            } else {
                break;
            }
        }
    }

    /// Frames per second and bits per second, once two frames span a positive interval.
    pub fn rates(&self) -> Option<(f64, u64)> {
        let (first, first_bytes) = *self.window.front()?;
        let (last, _) = *self.window.back()?;
        let span = (last - first) as f64 / 90_000.0;
        if span <= 0.0 {
            return None;
        }
        let frames = (self.window.len() - 1) as f64;
        // The first frame's bytes belong to the interval before the window.
        let bits = ((self.window_bytes - first_bytes) * 8) as f64;
        Some((frames / span, (bits / span) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_measures_25_fps_and_bitrate() {
        let mut m = RateMeter::default();
        for i in 0..200 {
            m.push(i * 3600, 20_000);
        }
        let (fps, bps) = m.rates().expect("rates");
        assert!((fps - 25.0).abs() < 0.01, "{fps}");
        assert_eq!(bps, 4_000_000);
    }

    #[test]
    fn meter_restarts_when_media_time_goes_back() {
        let mut m = RateMeter::default();
        for i in 0..50 {
            m.push(1_000_000 + i * 3600, 100);
        }
        m.push(0, 100);
        assert!(m.rates().is_none());
    }
}

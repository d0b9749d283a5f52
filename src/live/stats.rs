//! Live-path measurements: server-added latency (from the moment a stream's live builder received a frame
//! from the hub, which ingest publishes to without waiting, to the moment its bytes were handed to the
//! viewer's socket) in an HDR histogram, and counters of viewers, fragments and skips.
//!
//! The counters are relaxed atomics; the histogram is behind a lock held only for one `record` (a few
//! nanoseconds), so that measuring never slows the send path.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Latencies are kept in microseconds from 1 µs to 60 s, to 3 significant digits.
const MAX_US: u64 = 60_000_000;

pub struct Stats {
    latency: Mutex<Histogram<u64>>,
    pub fragments_sent: AtomicU64,
    pub skips: AtomicU64,
    pub rtc_viewers: AtomicU64,
    pub rtp_packets_sent: AtomicU64,
    /// Bytes handed to viewers' sockets: WebSocket messages (MSE) and SRTP datagrams (WebRTC).
    pub bytes_sent: AtomicU64,
    /// WebRTC send system calls: fewer than datagrams where UDP GSO batches them.
    pub rtc_sends: AtomicU64,
    /// WebRTC datagrams dropped because a socket buffer was full.
    pub rtc_dropped: AtomicU64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub samples: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub fragments_sent: u64,
    pub rtp_packets_sent: u64,
    pub bytes_sent: u64,
    pub rtc_sends: u64,
    pub rtc_dropped: u64,
    pub skips: u64,
    /// Counted by the registry at the time of the snapshot (`Live::stats_snapshot`).
    pub mse_viewers: u64,
    pub rtc_viewers: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: Mutex::new(new_histogram()),
            fragments_sent: AtomicU64::new(0),
            skips: AtomicU64::new(0),
            rtc_viewers: AtomicU64::new(0),
            rtp_packets_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            rtc_sends: AtomicU64::new(0),
            rtc_dropped: AtomicU64::new(0),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants within hdrhistogram's limits, so this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("constant bounds within hdrhistogram's limits")
}

impl Stats {
    fn histogram(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.latency.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the latency of one frame handed to a socket (a latency past the top counts as the top).
    pub fn record(&self, latency: std::time::Duration) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_US);
        self.histogram().saturating_record(us);
    }

    /// Forgets the latency samples (the benchmark calls this after its warm-up).
    pub fn reset_latency(&self) {
        self.histogram().reset();
    }

    pub fn snapshot(&self) -> Snapshot {
        let h = self.histogram().clone();
        Snapshot {
            samples: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            fragments_sent: self.fragments_sent.load(Relaxed),
            rtp_packets_sent: self.rtp_packets_sent.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            rtc_sends: self.rtc_sends.load(Relaxed),
            rtc_dropped: self.rtc_dropped.load(Relaxed),
            skips: self.skips.load(Relaxed),
            mse_viewers: 0,
            rtc_viewers: self.rtc_viewers.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let s = Stats::default();
        for _ in 0..99 {
            s.record(std::time::Duration::from_micros(10));
        }
        s.record(std::time::Duration::from_millis(10));
        let snap = s.snapshot();
        assert_eq!(snap.samples, 100);
        assert_eq!(snap.p50_us, 10);
        assert_eq!(snap.p99_us, 10);
        assert!(
            snap.max_us >= 10_000 && snap.max_us < 10_100,
            "{}",
            snap.max_us
        );
    }
}

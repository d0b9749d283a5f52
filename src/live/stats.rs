//! Live-path measurements: server-added latency (from the moment a stream's live builder received a frame
//! from the hub, which ingest publishes to without waiting, to the moment its bytes were handed to the
//! viewer's socket) in a fixed-bucket histogram, and counters of viewers, fragments and skips.
//!
//! Recording is lock-free (relaxed atomics) so that measuring never slows the send path.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bucket width in microseconds, and the number of buckets: 50 µs steps up to 200 ms, then one overflow.
const STEP_US: u64 = 50;
const BUCKETS: usize = 4_000;

pub struct Stats {
    buckets: Vec<AtomicU64>,
    overflow: AtomicU64,
    pub fragments_sent: AtomicU64,
    pub skips: AtomicU64,
    pub mse_viewers: AtomicU64,
    pub rtc_viewers: AtomicU64,
    pub rtp_packets_sent: AtomicU64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub samples: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_bucket_us: u64,
    pub fragments_sent: u64,
    pub rtp_packets_sent: u64,
    pub skips: u64,
    pub mse_viewers: u64,
    pub rtc_viewers: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            overflow: AtomicU64::new(0),
            fragments_sent: AtomicU64::new(0),
            skips: AtomicU64::new(0),
            mse_viewers: AtomicU64::new(0),
            rtc_viewers: AtomicU64::new(0),
            rtp_packets_sent: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Records the latency of one frame handed to a socket.
    pub fn record(&self, latency: std::time::Duration) {
        let i = (latency.as_micros() as u64 / STEP_US) as usize;
        match self.buckets.get(i) {
            Some(b) => b.fetch_add(1, Relaxed),
            None => self.overflow.fetch_add(1, Relaxed),
        };
    }

    /// Forgets the latency samples (the benchmark calls this after its warm-up).
    pub fn reset_latency(&self) {
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
        self.overflow.store(0, Relaxed);
    }

    fn percentile(counts: &[u64], overflow: u64, total: u64, q: f64) -> u64 {
        let want = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want.max(1) {
                return (i as u64 + 1) * STEP_US;
            }
        }
        if overflow > 0 {
            u64::MAX
        } else {
            0
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let overflow = self.overflow.load(Relaxed);
        let total = counts.iter().sum::<u64>() + overflow;
        let max_bucket_us = counts
            .iter()
            .rposition(|&c| c > 0)
            .map_or(0, |i| (i as u64 + 1) * STEP_US);
        Snapshot {
            samples: total,
            p50_us: Self::percentile(&counts, overflow, total, 0.50),
            p99_us: Self::percentile(&counts, overflow, total, 0.99),
            max_bucket_us: if overflow > 0 {
                u64::MAX
            } else {
                max_bucket_us
            },
            fragments_sent: self.fragments_sent.load(Relaxed),
            rtp_packets_sent: self.rtp_packets_sent.load(Relaxed),
            skips: self.skips.load(Relaxed),
            mse_viewers: self.mse_viewers.load(Relaxed),
            rtc_viewers: self.rtc_viewers.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_buckets() {
        let s = Stats::default();
        for _ in 0..99 {
            s.record(std::time::Duration::from_micros(10));
        }
        s.record(std::time::Duration::from_millis(10));
        let snap = s.snapshot();
        assert_eq!(snap.samples, 100);
        assert_eq!(snap.p50_us, STEP_US);
        assert_eq!(snap.p99_us, STEP_US);
        assert!(snap.max_bucket_us >= 10_000);
    }
}

//! `[edge]`: edge retrieval (补录) of footage a camera's link lost, from the device or NVR that kept
//! recording it (docs/edge.md).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Look for gaps and fetch them back; off = gaps stay gaps.
    pub backfill: bool,
    /// How often the recordings are searched for gaps, in seconds.
    pub scan_interval_s: u64,
    /// How far back gaps are looked for, in seconds (older gaps are left alone: devices overwrite).
    pub lookback_s: u64,
    /// Gaps shorter than this (seconds) are not fetched (a reconnect's second is not worth a session).
    pub min_gap_s: u64,
    /// A gap is fetched once footage has been recorded again for this long (seconds): the link is back.
    pub settle_s: u64,
    /// Pulls running at once per site (a site's uplink carries its live streams too).
    pub site_pulls: usize,
    /// The share of a site's uplink backfill may use, in kbit/s; the pull's speed is chosen from it and
    /// the camera's bit rate.
    pub site_kbps: u64,
    /// The fastest a device is asked to play its footage out (GB/T 28181 MANSRTSP Scale).
    pub max_speed: f64,
    /// Attempts of one gap before it is given up (failed); retried after 30 s, 2 min, 8 min, ...
    pub max_attempts: i64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            backfill: true,
            scan_interval_s: 10,
            lookback_s: 6 * 3600,
            min_gap_s: 5,
            settle_s: 5,
            site_pulls: 1,
            site_kbps: 8_000,
            max_speed: 4.0,
            max_attempts: 5,
        }
    }
}

impl EdgeConfig {
    /// The values a backfill cannot work with, named.
    pub fn validate(&self) -> Result<(), String> {
        if self.scan_interval_s == 0 || self.lookback_s == 0 || self.site_pulls == 0 {
            return Err(
                "[edge] scan_interval_s, lookback_s and site_pulls must be positive".into(),
            );
        }
        if !(1.0..=64.0).contains(&self.max_speed) {
            return Err("[edge] max_speed must be between 1 and 64".into());
        }
        if self.max_attempts < 1 {
            return Err("[edge] max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

//! What a segment is, independent of where it is read from: the metadata written into its `moov/udta`,
//! the statistics the index keeps (computed the same way by the writer and by [`super::scan`], so that an
//! index rebuilt from the files equals the one kept), the keyframe blob, file naming and the staggered
//! cut times.
//!
//! Invariants:
//! - `SegmentStats` is a pure function of the sequence of complete fragments (wall time from `prft`, media
//!   offset from `tfdt`, byte offset, length, summed durations, frame count).
//! - A segment file's name and its `udta` metadata say which camera and stream it belongs to; nothing else
//!   is needed to index it.

use crate::hub::StreamKind;
use serde::{Deserialize, Serialize};

/// Written into every segment's `moov/udta` as a `vgil` box holding this JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub camera_id: i64,
    pub stream: String,
    pub run: i64,
    pub site_kind: String,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// The edge retrieval whose footage this is (docs/edge.md): kept in the file too, so that an index
    /// rebuilt from the files still tells backfilled footage from live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_id: Option<i64>,
}

pub const META_BOX: &[u8; 4] = b"vgil";

impl SegmentMeta {
    /// The `vgil` box (to go inside `udta`).
    pub fn to_box(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len() + 8);
        out.extend_from_slice(&((json.len() + 8) as u32).to_be_bytes());
        out.extend_from_slice(META_BOX);
        out.extend_from_slice(&json);
        out
    }
}

/// One complete fragment as the index sees it.
#[derive(Debug, Clone, Copy)]
pub struct FragmentSummary {
    /// Wall time of the first frame, Unix µs (the `prft` box).
    pub wall_us: i64,
    /// Decode time of the first frame from the segment's start, 90 kHz (the `tfdt`).
    pub media_offset: i64,
    /// Where the fragment (its `prft`) starts in the file.
    pub byte_offset: u64,
    pub len: u64,
    pub duration_90k: i64,
    pub frames: i64,
}

/// The index columns that follow from a segment's fragments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentStats {
    pub start_us: Option<i64>,
    pub end_us: i64,
    pub duration_90k: i64,
    pub frames: i64,
    pub bytes: u64,
    pub keyframes: Vec<u8>,
    last_media: i64,
    last_offset: u64,
}

pub use crate::time::{ticks_to_us, us_to_ticks};

impl SegmentStats {
    /// A segment holding only its init segment of `init_len` bytes.
    pub fn new(init_len: u64) -> SegmentStats {
        SegmentStats {
            bytes: init_len,
            ..Default::default()
        }
    }

    pub fn push(&mut self, f: &FragmentSummary) {
        // Saturating: a damaged file's fragment headers may hold any number (the scanner feeds them here).
        let start = *self.start_us.get_or_insert(f.wall_us);
        self.end_us = f
            .wall_us
            .saturating_add(ticks_to_us(f.duration_90k))
            .max(start);
        self.duration_90k = self.duration_90k.saturating_add(f.duration_90k);
        self.frames = self.frames.saturating_add(f.frames);
        self.bytes = f.byte_offset.saturating_add(f.len);
        put_varint(
            &mut self.keyframes,
            f.media_offset.saturating_sub(self.last_media).max(0) as u64,
        );
        put_varint(
            &mut self.keyframes,
            f.byte_offset.saturating_sub(self.last_offset),
        );
        self.last_media = f.media_offset;
        self.last_offset = f.byte_offset;
    }

    pub fn fragments(&self) -> usize {
        decode_keyframes(&self.keyframes).len()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// The keyframe positions of a segment: (media offset in 90 kHz ticks, byte offset of its fragment).
pub fn decode_keyframes(blob: &[u8]) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    let (mut at, mut media, mut off) = (0usize, 0i64, 0u64);
    while at < blob.len() {
        let (Some(dm), Some(doff)) = (get_varint(blob, &mut at), get_varint(blob, &mut at)) else {
            break;
        };
        media += dm as i64;
        off += doff;
        out.push((media, off));
    }
    out
}

/// Where a segment's file goes, relative to the data directory:
/// `recordings/<camera>/<yyyy>/<mm>/<dd>/<start_ms>-<stream>-<nonce>.mp4` (UTC date of its start).
pub fn relative_path(camera_id: i64, stream: StreamKind, start_us: i64, nonce: u32) -> String {
    let t = chrono::DateTime::from_timestamp_micros(start_us).unwrap_or_default();
    format!(
        "recordings/{camera_id}/{}/{}-{}-{nonce:08x}.mp4",
        t.format("%Y/%m/%d"),
        start_us.div_euclid(1000),
        stream.as_str()
    )
}

/// The wall time at which a segment that started at `start_us` is cut (at the next keyframe after it).
/// Cut times are `k * len + phase` with a phase per stream, so streams rotate at different seconds; the
/// first segment is never shorter than half a length.
pub fn cut_time(start_us: i64, len_us: i64, camera_id: i64, stream: StreamKind) -> i64 {
    let len_us = len_us.max(1_000_000);
    let h = (camera_id as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(stream as u64 * 0x632B_E59B_D9B4_E019);
    let phase = ((h >> 11) % len_us as u64) as i64;
    let k = (start_us - phase).div_euclid(len_us) + 1;
    let mut cut = k * len_us + phase;
    if cut - start_us < len_us / 2 {
        cut += len_us;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_round_trip() {
        let mut s = SegmentStats::new(700);
        let mut off = 700;
        for i in 0..50i64 {
            let len = 10_000 + i as u64 * 3;
            s.push(&FragmentSummary {
                wall_us: 1_700_000_000_000_000 + i * 1_000_000,
                media_offset: i * 90_000,
                byte_offset: off,
                len,
                duration_90k: 90_000,
                frames: 25,
            });
            off += len;
        }
        let k = decode_keyframes(&s.keyframes);
        assert_eq!(k.len(), 50);
        assert_eq!(k[3], (270_000, 700 + 30_000 + 3 + 6));
        assert_eq!(s.bytes, off);
        assert_eq!(s.end_us, 1_700_000_050_000_000);
        assert_eq!(s.frames, 1250);
    }

    #[test]
    fn cuts_are_staggered_and_at_least_half_a_length_away() {
        let len = 60_000_000;
        let start = 1_700_000_000_000_000;
        let mut phases = std::collections::HashSet::new();
        for cam in 1..=16 {
            let c = cut_time(start, len, cam, StreamKind::Main);
            assert!(c - start >= len / 2 && c - start <= len + len / 2, "{cam}");
            phases.insert((c % len) / 1_000_000);
        }
        assert!(phases.len() >= 10, "cut seconds spread: {phases:?}");
    }

    #[test]
    fn path_has_camera_date_and_start() {
        let p = relative_path(7, StreamKind::Main, 1_763_771_234_567_890, 0xab);
        assert_eq!(p, "recordings/7/2025/11/22/1763771234567-main-000000ab.mp4");
    }
}

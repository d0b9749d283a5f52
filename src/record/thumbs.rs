//! Thumbnails of recorded footage: the pictures of a timeline, and of a case's clips.
//!
//! A thumbnail is the keyframe that starts a fragment (one fragment per GOP), decoded alone and scaled to
//! [`WIDTH`] pixels (`media::snapshot`): no segment is decoded as a whole. Which keyframes a range has comes
//! from the index (`segments.keyframes`: the media and byte offset of every fragment), so planning a strip
//! of a day reads no file.
//!
//! Invariants:
//! - A thumbnail is cached under `<data_dir>/cache/thumbs/<segment path>/<byte offset>.jpg` (written to a
//!   temporary name and renamed). A keyframe never changes once indexed, so a cached picture never goes
//!   stale; it goes with its segment (the garbage list calls [`forget`]), so a picture never outlives the
//!   footage it shows, and [`prune`] keeps the cache under its budget, least recently written first.
//! - A picture is served only for a segment row the caller was allowed to read: the cache is never listed.

use super::footage::{keep_cached, Footage};
use super::index::SegmentRow;
use super::segment::{decode_keyframes, ticks_to_us};
use crate::media::fmp4;
use crate::media::snapshot::{keyframe_to_jpeg, VideoCodec};
use std::path::{Path, PathBuf};

/// Width of a thumbnail, in pixels.
pub const WIDTH: u32 = 320;

#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("no footage there")]
    NoFootage,
    #[error("{0}")]
    Read(String),
}

/// A keyframe of the index: its wall time, the row it is in (an index into the rows given) and the byte
/// offset of its fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyframe {
    pub wall_us: i64,
    pub row: usize,
    pub offset: u64,
}

/// The keyframes of `rows` (one stream's, oldest first), in time order, from the index alone.
pub fn keyframes(rows: &[SegmentRow]) -> Vec<Keyframe> {
    let mut out = Vec::new();
    for (row, r) in rows.iter().enumerate() {
        for (media, offset) in decode_keyframes(&r.keyframes) {
            out.push(Keyframe {
                wall_us: r.start_us + ticks_to_us(media),
                row,
                offset,
            });
        }
    }
    out
}

/// One keyframe per `every_us` slot of `[start_us, end_us)`: for each slot, the last keyframe at or before
/// its end (the first one of the range for the first slot), unless that one was already taken by an
/// earlier slot (a gap or a GOP longer than the slot: the strip shows each picture once).
pub fn strip(keys: &[Keyframe], start_us: i64, end_us: i64, every_us: i64) -> Vec<Keyframe> {
    let mut out: Vec<Keyframe> = Vec::new();
    let mut t = start_us;
    while t < end_us && every_us > 0 {
        let slot_end = (t + every_us).min(end_us);
        let i = keys.partition_point(|k| k.wall_us < slot_end);
        if let Some(k) = i.checked_sub(1).map(|i| keys[i]) {
            let fresh = out.last().is_none_or(|l| l.wall_us < k.wall_us);
            if fresh && k.wall_us + every_us > t {
                out.push(k);
            }
        }
        t += every_us;
    }
    out
}

/// The keyframe of `row` at or before `at_us` (its first one before its first keyframe).
pub fn keyframe_at(row: &SegmentRow, at_us: i64) -> Option<Keyframe> {
    let keys = keyframes(std::slice::from_ref(row));
    let i = keys.partition_point(|k| k.wall_us <= at_us);
    keys.get(i.saturating_sub(1)).copied()
}

fn cache_dir(data_dir: &Path, segment_path: &str) -> PathBuf {
    data_dir.join("cache/thumbs").join(segment_path)
}

/// The JPEG of the keyframe `k` of `row`, from the cache or decoded (then cached). Blocking.
pub fn jpeg(footage: &Footage, row: &SegmentRow, k: Keyframe) -> Result<Vec<u8>, ThumbError> {
    let cached = cache_dir(footage.data_dir(), &row.path).join(format!("{}.jpg", k.offset));
    if let Ok(b) = std::fs::read(&cached) {
        return Ok(b);
    }
    let jpg = decode(footage, row, k.offset)?;
    keep_cached(&cached, &jpg);
    Ok(jpg)
}

/// Decodes the keyframe that starts the fragment at byte `offset` of the row's segment.
fn decode(footage: &Footage, row: &SegmentRow, offset: u64) -> Result<Vec<u8>, ThumbError> {
    let read = |e: &dyn std::fmt::Display| ThumbError::Read(e.to_string());
    let (s, at) = footage.scan(row).map_err(|e| read(&e))?;
    let frag = s
        .fragments
        .iter()
        .find(|f| f.offset == offset)
        .ok_or(ThumbError::NoFootage)?;
    let &(size, _, key) = frag.samples.first().ok_or(ThumbError::NoFootage)?;
    if !key {
        return Err(ThumbError::Read(
            "fragment does not start with a keyframe".into(),
        ));
    }
    let frame = at
        .read_blocking(frag.data_offset, u64::from(size))
        .map_err(|e| read(&e))?;
    let codec = VideoCodec::from_rfc6381(&row.codec)
        .ok_or_else(|| ThumbError::Read(format!("unknown codec {}", row.codec)))?;
    let extra = decoder_config(&s.sample_entry)
        .ok_or_else(|| ThumbError::Read("sample entry without avcC/hvcC".into()))?;
    keyframe_to_jpeg(codec, extra, &[&frame], Some(WIDTH), 80).map_err(|e| read(&e))
}

/// The `avcC`/`hvcC` body inside a visual sample entry (`avc1`/`hvc1` box with its header).
pub(crate) fn decoder_config(entry: &[u8]) -> Option<&[u8]> {
    // Box header (8) + VisualSampleEntry fields (78), then the child boxes.
    let children = entry.get(86..)?;
    for fourcc in [b"avcC", b"hvcC"] {
        if let Ok(Some(body)) = fmp4::find(children, fourcc) {
            return Some(body);
        }
    }
    None
}

/// Forgets the cached thumbnails of a segment that is gone.
pub fn forget(data_dir: &Path, segment_path: &str) {
    let _ = std::fs::remove_dir_all(cache_dir(data_dir, segment_path));
}

/// Removes cached thumbnails, least recently written first, until the cache holds at most `max_bytes`.
/// Returns the bytes removed. Blocking.
pub fn prune(data_dir: &Path, max_bytes: u64) -> u64 {
    let mut files = Vec::new();
    let mut stack = vec![data_dir.join("cache/thumbs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if let Ok(t) = meta.modified() {
                files.push((t, meta.len(), e.path()));
            }
        }
    }
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    let mut removed = 0;
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
            removed += len;
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(wall_us: i64) -> Keyframe {
        Keyframe {
            wall_us,
            row: 0,
            offset: wall_us as u64,
        }
    }

    #[test]
    fn a_strip_takes_each_slots_last_keyframe_once_and_skips_gaps() {
        // Keyframes every 2 s from 0 to 20 s, then a gap until 40 s, then every 2 s again.
        let keys: Vec<_> = (0..=10)
            .map(|i| k(i * 2_000_000))
            .chain((20..=25).map(|i| k(i * 2_000_000)))
            .collect();
        let s = strip(&keys, 0, 50_000_000, 5_000_000);
        let at: Vec<i64> = s.iter().map(|k| k.wall_us / 1_000_000).collect();
        // Slots [0,5) [5,10) ... [45,50): each shows its last keyframe; those of the gap would show the
        // picture at 20 s again, and show nothing instead.
        assert_eq!(at, vec![4, 8, 14, 18, 20, 44, 48]);
        // A slot shorter than the GOP: one picture per keyframe, none repeated.
        let s = strip(&keys, 0, 10_000_000, 500_000);
        let at: Vec<i64> = s.iter().map(|k| k.wall_us / 1_000_000).collect();
        assert_eq!(at, vec![0, 2, 4, 6, 8]);
    }
}

//! The thumbnail of a clip: the keyframe at (or just before) the clip's start, decoded with the snapshot
//! decoder (`media::snapshot`, ffmpeg-next) and scaled to a JPEG.
//!
//! The keyframe is found through the segment index and the segment file's fragment headers (one fragment
//! per GOP, starting at its keyframe: `record::scan`); only indexed bytes are read. Blocking: run it on the
//! blocking pool.

use crate::media::fmp4;
use crate::media::snapshot::{keyframe_to_jpeg, VideoCodec};
use crate::record::footage::Footage;
use crate::record::index::{self, SegmentRow};

/// Width of a thumbnail.
pub const WIDTH: u32 = 320;

#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("no footage at the clip's start")]
    NoFootage,
    #[error("{0}")]
    Read(String),
}

/// The `avcC`/`hvcC` body inside a visual sample entry (`avc1`/`hvc1` box with its header).
fn decoder_config(entry: &[u8]) -> Option<&[u8]> {
    // Box header (8) + VisualSampleEntry fields (78), then the child boxes.
    let children = entry.get(86..)?;
    for fourcc in [b"avcC", b"hvcC"] {
        if let Ok(Some(body)) = fmp4::find(children, fourcc) {
            return Some(body);
        }
    }
    None
}

/// The JPEG thumbnail of the keyframe at or before `at_us` in the segment.
pub fn thumbnail(footage: &Footage, seg: &SegmentRow, at_us: i64) -> Result<Vec<u8>, ThumbError> {
    let (s, at) = footage
        .scan(seg)
        .map_err(|e| ThumbError::Read(e.to_string()))?;
    let frag = s
        .fragments
        .iter()
        .rev()
        .find(|f| f.wall_us <= at_us)
        .or_else(|| s.fragments.first())
        .ok_or(ThumbError::NoFootage)?;
    let &(size, _, key) = frag.samples.first().ok_or(ThumbError::NoFootage)?;
    if !key {
        return Err(ThumbError::Read(
            "fragment does not start with a keyframe".into(),
        ));
    }
    let frame = at
        .read_blocking(frag.data_offset, u64::from(size))
        .map_err(|e| ThumbError::Read(e.to_string()))?;
    let codec = VideoCodec::from_rfc6381(&seg.codec)
        .ok_or_else(|| ThumbError::Read(format!("unknown codec {}", seg.codec)))?;
    let extra = decoder_config(&s.sample_entry)
        .ok_or_else(|| ThumbError::Read("sample entry without avcC/hvcC".into()))?;
    keyframe_to_jpeg(codec, extra, &[&frame], Some(WIDTH), 80)
        .map_err(|e| ThumbError::Read(e.to_string()))
}

/// The segment of a camera's main stream that holds `at_us`, or else the first one before `end_us`.
pub async fn segment_at(
    pool: &crate::db::Pool,
    camera_id: i64,
    at_us: i64,
    end_us: i64,
) -> Result<Option<(SegmentRow, i64)>, crate::db::DbError> {
    let before: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, start_us, end_us FROM segments WHERE camera_id = ? AND stream = 'main'
           AND start_us <= ? AND frames > 0 ORDER BY start_us DESC LIMIT 1",
    )
    .bind(camera_id)
    .bind(at_us)
    .fetch_optional(pool)
    .await?;
    if let Some((id, _, e)) = before {
        if e > at_us {
            return Ok(Some((index::get(pool, id).await?, at_us)));
        }
    }
    let after: Option<(i64, i64)> = sqlx::query_as(
        "SELECT id, start_us FROM segments WHERE camera_id = ? AND stream = 'main'
           AND start_us > ? AND start_us < ? AND frames > 0 ORDER BY start_us LIMIT 1",
    )
    .bind(camera_id)
    .bind(at_us)
    .bind(end_us)
    .fetch_optional(pool)
    .await?;
    match after {
        Some((id, s)) => Ok(Some((index::get(pool, id).await?, s))),
        None => Ok(None),
    }
}

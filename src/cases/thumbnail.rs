//! The thumbnail of a clip: the keyframe at (or just before) the clip's start, through the recording's
//! thumbnails (`record::thumbs`: found in the index, decoded alone, scaled to a JPEG, cached). Blocking:
//! run it on the blocking pool.

use crate::record::footage::Footage;
use crate::record::index::{self, SegmentRow};
use crate::record::thumbs;
pub use crate::record::thumbs::{ThumbError, WIDTH};

/// The JPEG thumbnail of the keyframe at or before `at_us` in the segment (cached: `record::thumbs`).
pub fn thumbnail(footage: &Footage, seg: &SegmentRow, at_us: i64) -> Result<Vec<u8>, ThumbError> {
    let k = thumbs::keyframe_at(seg, at_us).ok_or(ThumbError::NoFootage)?;
    thumbs::jpeg(footage, seg, k)
}

/// The segment of a camera's main stream that holds `at_us`, or else the first one before `end_us`.
pub async fn segment_at(
    pool: &crate::db::Pool,
    camera_id: i64,
    at_us: i64,
    end_us: i64,
) -> Result<Option<(SegmentRow, i64)>, crate::db::DbError> {
    let before: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, start_us, end_us FROM segments WHERE camera_id = $1 AND stream = 'main'
           AND start_us <= $2 AND frames > 0 ORDER BY start_us DESC LIMIT 1",
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
        "SELECT id, start_us FROM segments WHERE camera_id = $1 AND stream = 'main'
           AND start_us > $2 AND start_us < $3 AND frames > 0 ORDER BY start_us LIMIT 1",
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

//! How much of a clip the recordings cover, from the recording engine's segment index (`segments`,
//! migrations/0002; main stream, wall times in microseconds).
//!
//! The lookup is two index range scans on `segments_recorded_span (camera_id, stream, start_us, end_us)
//! WHERE frames > 0` (migrations/0009): the last segment that starts at or before the clip start, and the
//! segments that start inside the clip. So its cost does not grow with the length of the camera's history
//! (a year is ~525,000 one-minute segments), and the index covers it: one camera's rows lie far apart in
//! the table, since a server appends them in time order across all its cameras.
//!
//! Invariant: `full` means the uncovered part of the clip is at most `TOLERANCE_US` (a cut between
//! segments, the frame at the clip's edge); `missing` means nothing of it is recorded.

use crate::db::{DbError, Pool};
use serde::Serialize;

/// Uncovered time that still counts as full coverage.
pub const TOLERANCE_US: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    Full,
    Partial,
    Missing,
}

impl Coverage {
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Full => "full",
            Coverage::Partial => "partial",
            Coverage::Missing => "missing",
        }
    }
}

/// The recorded spans of a camera's main stream within `[start_us, end_us)`, merged and clipped.
pub async fn spans(
    pool: &Pool,
    camera_id: i64,
    start_us: i64,
    end_us: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let before: Option<(i64, i64)> = sqlx::query_as(
        "SELECT start_us, end_us FROM segments WHERE camera_id = $1 AND stream = 'main' AND start_us <= $2
           AND frames > 0 ORDER BY start_us DESC LIMIT 1",
    )
    .bind(camera_id)
    .bind(start_us)
    .fetch_optional(pool)
    .await?;
    let inside: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT start_us, end_us FROM segments WHERE camera_id = $1 AND stream = 'main' AND start_us > $2
           AND start_us < $3 AND frames > 0 ORDER BY start_us",
    )
    .bind(camera_id)
    .bind(start_us)
    .bind(end_us)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in before.into_iter().chain(inside) {
        let (s, e) = (s.max(start_us), e.min(end_us));
        if e <= s {
            continue;
        }
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    Ok(out)
}

/// The recorded spans of many `(camera, start_us, end_us)` ranges, in one database round trip per 100
/// ranges (the same two index range scans per range as [`spans`], joined with `UNION ALL`).
pub async fn spans_many(
    pool: &Pool,
    ranges: &[(i64, i64, i64)],
) -> Result<Vec<Vec<(i64, i64)>>, DbError> {
    let mut out: Vec<Vec<(i64, i64)>> = vec![Vec::new(); ranges.len()];
    for (chunk_no, chunk) in ranges.chunks(100).enumerate() {
        let mut sql = String::new();
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(" UNION ALL ");
            }
            // Each range binds (key, camera, start, end): its placeholders are numbered after the
            // ranges before it.
            let [k, cam, s, e] = [1, 2, 3, 4].map(|n| format!("${}", 4 * i + n));
            sql.push_str(&format!(
                "SELECT * FROM (SELECT {k} AS k, start_us, end_us FROM segments WHERE camera_id = {cam}
                   AND stream = 'main' AND start_us <= {s} AND frames > 0 ORDER BY start_us DESC LIMIT 1) AS before_{i}
                 UNION ALL SELECT {k} AS k, start_us, end_us FROM segments WHERE camera_id = {cam}
                   AND stream = 'main' AND start_us > {s} AND start_us < {e} AND frames > 0"
            ));
        }
        let mut q = sqlx::query_as::<_, (i64, i64, i64)>(&sql);
        for (i, (cam, s, e)) in chunk.iter().enumerate() {
            let k = (chunk_no * 100 + i) as i64;
            q = q.bind(k).bind(cam).bind(s).bind(e);
        }
        let mut rows = q.fetch_all(pool).await?;
        rows.sort_unstable();
        for (k, s, e) in rows {
            let Some((_, start_us, end_us)) = ranges.get(k as usize) else {
                continue;
            };
            let (s, e) = (s.max(*start_us), e.min(*end_us));
            if e <= s {
                continue;
            }
            let list = &mut out[k as usize];
            match list.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => list.push((s, e)),
            }
        }
    }
    Ok(out)
}

/// Classifies the coverage of `[start_us, end_us)` by its recorded spans.
pub fn classify(spans: &[(i64, i64)], start_us: i64, end_us: i64) -> Coverage {
    let covered: i64 = spans.iter().map(|(s, e)| e - s).sum();
    if covered <= 0 {
        Coverage::Missing
    } else if end_us - start_us - covered <= TOLERANCE_US {
        Coverage::Full
    } else {
        Coverage::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_with_tolerance() {
        assert_eq!(classify(&[], 0, 10_000_000), Coverage::Missing);
        assert_eq!(
            classify(&[(500_000, 10_000_000)], 0, 10_000_000),
            Coverage::Full
        );
        assert_eq!(
            classify(&[(0, 5_000_000)], 0, 10_000_000),
            Coverage::Partial
        );
    }
}

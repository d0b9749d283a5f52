//! Recorded footage: the spans of a camera (`GET /cameras/{id}/recordings`), one MP4 of any range
//! (`GET /cameras/{id}/video.mp4`, HTTP Range and ETag, streamed from the segment files).

use super::access::{noted, AuditNote};
use super::cameras::visible_camera;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::AppState;
use crate::auth::Principal;
use crate::hub::StreamKind;
use crate::record::{export, index};
use crate::time::us_to_rfc3339;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use headers::ETag;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The longest range one `video.mp4` may cover.
const MAX_EXPORT_US: i64 = 24 * 3600 * 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub start: String,
    pub end: String,
    stream: Option<String>,
    /// `video.mp4` of the keyframes alone (fast playback).
    #[serde(default)]
    keyframes: bool,
}

/// An RFC 3339 time of a query, as Unix microseconds.
pub(super) fn parse_time(field: &str, v: &str) -> ApiResult<i64> {
    crate::time::parse_us(field, v).map_err(|e| ApiError::invalid(e.to_string()))
}

pub(super) fn range(q: &RangeQuery) -> ApiResult<(i64, i64, StreamKind)> {
    let start = parse_time("start", &q.start)?;
    let end = parse_time("end", &q.end)?;
    if end <= start {
        return Err(ApiError::invalid("end must be after start"));
    }
    let stream = match q.stream.as_deref() {
        None => StreamKind::Main,
        Some(s) => {
            StreamKind::parse(s).ok_or_else(|| ApiError::invalid("stream must be main or sub"))?
        }
    };
    Ok((start, end, stream))
}

#[derive(Serialize)]
pub struct Span {
    start: String,
    end: String,
}

#[derive(Serialize)]
pub struct Spans {
    spans: Vec<Span>,
    /// Holes between the spans inside the requested range.
    gaps: Vec<Span>,
    /// The parts of the spans fetched back from the camera's device after its link was down (edge
    /// retrieval), with the backfill that fetched them (`GET /backfills`).
    backfilled: Vec<Backfilled>,
}

#[derive(Serialize)]
pub struct Backfilled {
    start: String,
    end: String,
    backfill_id: i64,
}

pub use crate::record::index::merge_spans;

pub async fn spans(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<Spans>> {
    visible_camera(&s, &p, id).await?;
    let (start, end, stream) = range(&q)?;
    if q.keyframes {
        return Err(ApiError::invalid("keyframes applies to video.mp4 only"));
    }
    let rows = index::overlapping(&s.pool, id, stream.as_str(), start, end).await?;
    let segs: Vec<(i64, i64)> = rows.iter().map(|r| (r.start_us, r.end_us)).collect();
    let merged = merge_spans(&segs, start, end);
    let gaps = merged
        .windows(2)
        .map(|w| Span {
            start: us_to_rfc3339(w[0].1),
            end: us_to_rfc3339(w[1].0),
        })
        .collect();
    let mut backfilled: Vec<Backfilled> = Vec::new();
    for r in rows.iter().filter(|r| r.end_us > start && r.start_us < end) {
        let Some(id) = r.backfill_id else { continue };
        let (a, b) = (r.start_us.max(start), r.end_us.min(end));
        match backfilled.last_mut() {
            // One backfill's segments follow one another: one entry.
            Some(last) if last.backfill_id == id => last.end = us_to_rfc3339(b),
            _ => backfilled.push(Backfilled {
                start: us_to_rfc3339(a),
                end: us_to_rfc3339(b),
                backfill_id: id,
            }),
        }
    }
    Ok(Json(Spans {
        backfilled,
        spans: merged
            .into_iter()
            .map(|(a, b)| Span {
                start: us_to_rfc3339(a),
                end: us_to_rfc3339(b),
            })
            .collect(),
        gaps,
    }))
}

/// What a conditional, ranged GET of a representation asks for, by its typed headers (RFC 9110).
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The client's copy is current (If-None-Match matched): 304.
    NotModified,
    /// The whole representation: no Range, several ranges, or an If-Range of another version.
    Whole,
    /// One byte range `[from, to)`.
    Part(u64, u64),
    /// A range outside the representation: 416.
    Unsatisfiable,
}

/// What the request wants of a representation of `len` bytes whose entity tag is `etag`.
pub fn wanted(headers: &HeaderMap, etag: &ETag, len: u64) -> Wanted {
    use headers::HeaderMapExt;
    use std::ops::Bound;
    if let Some(inm) = headers.typed_get::<headers::IfNoneMatch>() {
        if !inm.precondition_passes(etag) {
            return Wanted::NotModified;
        }
    }
    // A Range applies only while the file is the one the client has (If-Range).
    if let Some(if_range) = headers.typed_get::<headers::IfRange>() {
        if if_range.is_modified(Some(etag), None) {
            return Wanted::Whole;
        }
    }
    let Some(range) = headers.typed_get::<headers::Range>() else {
        return Wanted::Whole;
    };
    let mut ranges: Vec<_> = range.satisfiable_ranges(len).collect();
    // A suffix longer than the representation means all of it (RFC 9110 14.1.3); the crate drops it.
    let raw = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let suffix = raw
        .and_then(|v| v.trim().strip_prefix("bytes=-"))
        .is_some_and(|n| !n.contains(','));
    if ranges.is_empty() && len > 0 && suffix {
        ranges.push((Bound::Included(0), Bound::Unbounded));
    }
    let [(start, end)] = ranges.as_slice() else {
        // Several ranges are answered with the whole file; none that fits is an error.
        return if ranges.is_empty() {
            Wanted::Unsatisfiable
        } else {
            Wanted::Whole
        };
    };
    let from = match *start {
        Bound::Included(a) => a,
        Bound::Excluded(a) => a + 1,
        Bound::Unbounded => 0,
    };
    let to = match *end {
        Bound::Included(b) => b.saturating_add(1).min(len),
        Bound::Excluded(b) => b.min(len),
        Bound::Unbounded => len,
    };
    if from >= to {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(from, to)
}

/// The MP4 of a camera's stream over `[start, end)`, planned from its segments; 404 without footage.
async fn plan_video(
    s: &AppState,
    id: i64,
    stream: StreamKind,
    (start, end): (i64, i64),
    keyframes_only: bool,
) -> ApiResult<Arc<export::Plan>> {
    let (plan, _) = s
        .recorders
        .plans
        .plan_with(&s.pool, id, stream.as_str(), (start, end), keyframes_only)
        .await
        .map_err(ApiError::internal)?;
    plan.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_footage",
            "no footage of this camera in this range",
        )
    })
}

/// The headers of every answer about a planned video: type, validator, and the range it presents with
/// its gaps and its missing footage (indexed footage whose files could not be read, played as gaps).
fn video_headers(plan: &export::Plan, filename: &str) -> axum::http::response::Builder {
    let ranges = |r: &[(i64, i64)]| -> String {
        r.iter()
            .map(|(a, b)| format!("{}/{}", us_to_rfc3339(*a), us_to_rfc3339(*b)))
            .collect::<Vec<_>>()
            .join(",")
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, plan.etag.as_str())
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{filename}\""),
        )
        .header("vigil-start", us_to_rfc3339(plan.start_us))
        .header("vigil-end", us_to_rfc3339(plan.end_us))
        .header("vigil-gaps", ranges(&plan.gaps))
        .header("vigil-missing", ranges(&plan.missing))
}

pub async fn video(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let cam = visible_camera(&s, &p, id).await?;
    let (start, end, stream) = range(&q)?;
    if end - start > MAX_EXPORT_US {
        return Err(ApiError::invalid("a video covers at most 24 hours"));
    }
    let plan = plan_video(&s, id, stream, (start, end), q.keyframes).await?;
    tracing::info!(camera = id, actor = %p.actor(), start = %q.start, end = %q.end, "playback");
    let etag: ETag = plan.etag.parse().map_err(ApiError::internal)?;
    // One row per view of a range: the element's later byte ranges and revalidations are the same view.
    let note = AuditNote {
        target: Some(format!("/cameras/{id}/video.mp4")),
        region_code: Some(cam.region_code.clone()),
        detail: Some(format!(
            "{} {}/{}{}",
            stream.as_str(),
            us_to_rfc3339(start),
            us_to_rfc3339(end),
            if q.keyframes { " keyframes" } else { "" }
        )),
        collapse: true,
    };
    let filename = format!("camera{}-{}.mp4", cam.id, start / 1_000_000);
    let mut resp = video_headers(&plan, &filename).extension(note.clone());
    let (status, from, to) = match wanted(&headers, &etag, plan.len) {
        Wanted::NotModified => {
            return resp
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .map_err(ApiError::internal);
        }
        Wanted::Whole => (StatusCode::OK, 0, plan.len),
        Wanted::Part(a, b) => {
            let range = headers::ContentRange::bytes(a..b, plan.len).map_err(ApiError::internal)?;
            let headers = resp
                .headers_mut()
                .ok_or_else(|| ApiError::internal("response"))?;
            headers::HeaderMapExt::typed_insert(headers, range);
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        Wanted::Unsatisfiable => {
            // Written with its range, and never collapsed (an error is not a view).
            let mut h = HeaderMap::new();
            headers::HeaderMapExt::typed_insert(
                &mut h,
                headers::ContentRange::unsatisfied_bytes(plan.len),
            );
            let note = AuditNote {
                collapse: false,
                ..note
            };
            return Ok(noted((StatusCode::RANGE_NOT_SATISFIABLE, h), note));
        }
    };
    let body = Body::from_stream(plan.body(from, to, 1 << 20));
    resp.status(status)
        .header(header::CONTENT_LENGTH, to - from)
        .body(body)
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ranges_follow_the_conditional_headers() {
        let etag: ETag = "\"v1\"".parse().expect("etag");
        let ask = |pairs: &[(header::HeaderName, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(k, HeaderValue::from_str(v).expect("value"));
            }
            wanted(&h, &etag, 1000)
        };
        let range = |v: &str| ask(&[(header::RANGE, v)]);
        assert_eq!(range("bytes=0-99"), Wanted::Part(0, 100));
        assert_eq!(range("bytes=900-"), Wanted::Part(900, 1000));
        assert_eq!(range("bytes=-10"), Wanted::Part(990, 1000));
        assert_eq!(range("bytes=0-5000"), Wanted::Part(0, 1000));
        assert_eq!(range("bytes=1000-"), Wanted::Unsatisfiable);
        assert_eq!(
            range("bytes=-5000"),
            Wanted::Part(0, 1000),
            "a long suffix is the whole file"
        );
        assert_eq!(range("bytes=0-1,5-6"), Wanted::Whole);
        assert_eq!(range("bytes=x-"), Wanted::Unsatisfiable);
        assert_eq!(ask(&[]), Wanted::Whole);
        assert_eq!(
            ask(&[(header::IF_NONE_MATCH, "\"v1\"")]),
            Wanted::NotModified
        );
        assert_eq!(ask(&[(header::IF_NONE_MATCH, "\"v0\"")]), Wanted::Whole);
        let (r, ir) = (header::RANGE, header::IF_RANGE);
        assert_eq!(
            ask(&[(r.clone(), "bytes=0-9"), (ir.clone(), "\"v1\"")]),
            Wanted::Part(0, 10)
        );
        assert_eq!(ask(&[(r, "bytes=0-9"), (ir, "\"v0\"")]), Wanted::Whole);
    }

    #[test]
    fn spans_merge_and_clip() {
        let segs = [
            (0, 10_000_000),
            (10_000_100, 20_000_000),
            (25_000_000, 30_000_000),
        ];
        assert_eq!(
            merge_spans(&segs, 5_000_000, 28_000_000),
            vec![(5_000_000, 20_000_000), (25_000_000, 28_000_000)]
        );
    }
}

//! Recorded footage: the spans of a camera (`GET /cameras/{id}/recordings`), one MP4 of any range
//! (`GET /cameras/{id}/video.mp4`, HTTP Range and ETag, streamed from the segment files).

use super::access::{noted, AuditNote};
use super::cameras::visible_camera;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::AppState;
use crate::auth::Principal;
use crate::hub::StreamKind;
use crate::record::{export, index};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};

/// Segments closer than this are one span.
const SPAN_JOIN_US: i64 = 500_000;
/// The longest range one `video.mp4` may cover.
const MAX_EXPORT_US: i64 = 24 * 3600 * 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub start: String,
    pub end: String,
    stream: Option<String>,
}

pub(super) fn parse_time(field: &str, v: &str) -> ApiResult<i64> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_micros())
        .map_err(|_| ApiError::invalid(format!("{field} must be an RFC 3339 time with offset")))
}

pub(super) fn us_to_rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
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
}

/// Merges segment times (sorted by start) into spans clipped to `[start, end)`.
pub fn merge_spans(segs: &[(i64, i64)], start: i64, end: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &(s, e) in segs {
        let (s, e) = (s.max(start), e.min(end));
        if e <= s {
            continue;
        }
        match out.last_mut() {
            Some(last) if s <= last.1 + SPAN_JOIN_US => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

pub async fn spans(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<Spans>> {
    visible_camera(&s, &p, id).await?;
    let (start, end, stream) = range(&q)?;
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
    Ok(Json(Spans {
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

/// A single `bytes=` range of a file of `len` bytes: `Ok(None)` for none (or several: the whole file is
/// sent), `Err(())` when it cannot be satisfied.
pub fn parse_range(h: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.and_then(|h| h.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len)
    } else {
        let from: u64 = a.parse().map_err(|_| ())?;
        let to = if b.is_empty() {
            len
        } else {
            b.parse::<u64>().map_err(|_| ())?.saturating_add(1).min(len)
        };
        (from, to)
    };
    if r.0 >= len || r.0 >= r.1 {
        return Err(());
    }
    Ok(Some(r))
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
    let rows = index::overlapping(&s.pool, id, stream.as_str(), start, end).await?;
    let dir = s.cfg.data_dir.clone();
    let plan = tokio::task::spawn_blocking(move || export::plan(&dir, &rows, start, end))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let Some(plan) = plan else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_footage",
            "no footage of this camera in this range",
        ));
    };
    tracing::info!(camera = id, actor = %p.actor(), start = %q.start, end = %q.end, "playback");
    let etag = HeaderValue::from_str(&plan.etag).map_err(ApiError::internal)?;
    let ranges = |r: &[(i64, i64)]| -> String {
        r.iter()
            .map(|(a, b)| format!("{}/{}", us_to_rfc3339(*a), us_to_rfc3339(*b)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (gaps, missing) = (ranges(&plan.gaps), ranges(&plan.missing));
    // One row per view of a range: the element's later byte ranges and revalidations are the same view.
    let note = AuditNote {
        target: Some(format!("/cameras/{id}/video.mp4")),
        region_code: Some(cam.region_code.clone()),
        detail: Some(format!(
            "{} {}/{}",
            stream.as_str(),
            us_to_rfc3339(start),
            us_to_rfc3339(end)
        )),
        collapse: true,
    };
    let mut resp = Response::builder()
        .extension(note.clone())
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag.clone())
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "inline; filename=\"camera{}-{}.mp4\"",
                cam.id,
                start / 1_000_000
            ),
        )
        .header("vigil-start", us_to_rfc3339(plan.start_us))
        .header("vigil-end", us_to_rfc3339(plan.end_us))
        .header("vigil-gaps", gaps)
        // Indexed footage whose files could not be read: played as gaps.
        .header("vigil-missing", missing);
    if headers.get(header::IF_NONE_MATCH) == Some(&etag) {
        return resp
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(ApiError::internal);
    }
    // A Range applies only while the file is the one the client has (If-Range).
    let if_range_ok = headers.get(header::IF_RANGE).is_none_or(|v| *v == etag);
    let range = if if_range_ok {
        parse_range(headers.get(header::RANGE), plan.len)
    } else {
        Ok(None)
    };
    let (status, from, to) = match range {
        Ok(None) => (StatusCode::OK, 0, plan.len),
        Ok(Some((a, b))) => {
            resp = resp.header(
                header::CONTENT_RANGE,
                format!("bytes {a}-{}/{}", b - 1, plan.len),
            );
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        Err(()) => {
            // Written with its range, and never collapsed (an error is not a view).
            return Ok(noted(
                (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{}", plan.len))],
                ),
                AuditNote {
                    collapse: false,
                    ..note
                },
            ));
        }
    };
    let body = Body::from_stream(export::stream(plan.parts, from, to, 1 << 20));
    resp.status(status)
        .header(header::CONTENT_LENGTH, to - from)
        .body(body)
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let v = |s: &str| HeaderValue::from_str(s).ok();
        assert_eq!(
            parse_range(v("bytes=0-99").as_ref(), 1000),
            Ok(Some((0, 100)))
        );
        assert_eq!(
            parse_range(v("bytes=900-").as_ref(), 1000),
            Ok(Some((900, 1000)))
        );
        assert_eq!(
            parse_range(v("bytes=-10").as_ref(), 1000),
            Ok(Some((990, 1000)))
        );
        assert_eq!(
            parse_range(v("bytes=0-5000").as_ref(), 1000),
            Ok(Some((0, 1000)))
        );
        assert_eq!(parse_range(v("bytes=1000-").as_ref(), 1000), Err(()));
        assert_eq!(parse_range(v("bytes=0-1,5-6").as_ref(), 1000), Ok(None));
        assert_eq!(parse_range(v("bytes=x-").as_ref(), 1000), Err(()));
        assert_eq!(parse_range(None, 1000), Ok(None));
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

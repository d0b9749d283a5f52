//! Timeline thumbnails of a camera (`record::thumbs`): which pictures a range has, one every `every`
//! seconds (`GET /cameras/{id}/thumbnails`, from the index alone), and each picture
//! (`GET /cameras/{id}/thumbnail.jpg?at=`, a keyframe decoded once and cached).

use super::access::{noted, AuditNote};
use super::cameras::visible_camera;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::recordings::{merge_spans, parse_time};
use super::AppState;
use crate::auth::Principal;
use crate::hub::StreamKind;
use crate::record::{index, thumbs};
use crate::time::us_to_rfc3339;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

/// Pictures one strip may list.
const MAX_PICTURES: i64 = 2000;
/// The shortest interval between pictures, in seconds.
const MIN_EVERY_S: f64 = 1.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripQuery {
    start: String,
    end: String,
    /// Seconds between pictures (default 60).
    every: Option<f64>,
    stream: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PictureQuery {
    at: String,
    stream: Option<String>,
}

fn stream_of(s: Option<&str>) -> ApiResult<StreamKind> {
    match s {
        None => Ok(StreamKind::Main),
        Some(s) => {
            StreamKind::parse(s).ok_or_else(|| ApiError::invalid("stream must be main or sub"))
        }
    }
}

fn no_footage() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_footage",
        "no footage at this time",
    )
}

/// `{every, thumbnails: [{at, url}], gaps: [{start, end}]}`: one picture per slot of the range that has
/// footage; the holes between recorded spans.
pub async fn strip(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<StripQuery>,
) -> ApiResult<Json<Value>> {
    visible_camera(&s, &p, id).await?;
    let (start, end) = (parse_time("start", &q.start)?, parse_time("end", &q.end)?);
    let every = q.every.unwrap_or(60.0);
    if end <= start {
        return Err(ApiError::invalid("end must be after start"));
    }
    if !every.is_finite() || every < MIN_EVERY_S {
        return Err(ApiError::invalid("every must be at least 1 (seconds)"));
    }
    let every_us = (every * 1e6) as i64;
    if (end - start) / every_us > MAX_PICTURES {
        return Err(ApiError::invalid(format!(
            "at most {MAX_PICTURES} thumbnails at once: shorten the range or raise every"
        )));
    }
    let stream = stream_of(q.stream.as_deref())?;
    let rows = index::overlapping(&s.pool, id, stream.as_str(), start, end).await?;
    let keys = thumbs::keyframes(&rows);
    let suffix = if stream == StreamKind::Main {
        ""
    } else {
        "&stream=sub"
    };
    let pictures: Vec<Value> = thumbs::strip(&keys, start, end, every_us)
        .into_iter()
        .map(|k| {
            let at = us_to_rfc3339(k.wall_us);
            let url = format!(
                "/api/v1/cameras/{id}/thumbnail.jpg?at={}{suffix}",
                at.replace('+', "%2B")
            );
            json!({"at": at, "url": url})
        })
        .collect();
    let spans = merge_spans(
        &rows
            .iter()
            .map(|r| (r.start_us, r.end_us))
            .collect::<Vec<_>>(),
        start,
        end,
    );
    let gaps: Vec<Value> = spans
        .windows(2)
        .map(|w| json!({"start": us_to_rfc3339(w[0].1), "end": us_to_rfc3339(w[1].0)}))
        .collect();
    Ok(Json(
        json!({"every": every, "thumbnails": pictures, "gaps": gaps}),
    ))
}

/// The JPEG of the keyframe at or before `at` (the times [`strip`] lists are keyframes' own).
pub async fn picture(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<PictureQuery>,
) -> ApiResult<Response> {
    let cam = visible_camera(&s, &p, id).await?;
    let at = parse_time("at", &q.at)?;
    let stream = stream_of(q.stream.as_deref())?;
    let rows = index::overlapping(&s.pool, id, stream.as_str(), at, at + 1).await?;
    let row = rows
        .into_iter()
        .rfind(|r| r.start_us <= at)
        .ok_or_else(no_footage)?;
    let k = thumbs::keyframe_at(&row, at).ok_or_else(no_footage)?;
    let footage = s.recorders.shared().footage.clone();
    let jpg = tokio::task::spawn_blocking(move || thumbs::jpeg(&footage, &row, k))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            thumbs::ThumbError::NoFootage => no_footage(),
            other => ApiError::internal(other),
        })?;
    // One audit row per camera, stream and hour of footage looked at (a timeline asks for many).
    let hour = at - at.rem_euclid(3_600_000_000);
    let note = AuditNote {
        target: Some(format!("/cameras/{id}/thumbnail.jpg")),
        region_code: Some(cam.region_code.clone()),
        detail: Some(format!("{} {} hour", stream.as_str(), us_to_rfc3339(hour))),
        collapse: true,
    };
    let resp = Response::builder()
        .header(header::CONTENT_TYPE, "image/jpeg")
        .header(header::CACHE_CONTROL, "private, max-age=3600")
        .body(Body::from(jpg))
        .map_err(ApiError::internal)?;
    Ok(noted(resp, note))
}

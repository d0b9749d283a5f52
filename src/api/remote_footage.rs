//! Footage of a camera a linked city shares, at the province (docs/federation.md): `GET
//! /cameras/{id}/recordings` and `/cameras/{id}/video.mp4` of a remote (negative) id are streamed from the
//! city over the link, `Range`, `If-Range` and `If-None-Match` passed on, the answer's length, range and
//! validators passed back, so a `<video>` seeks in city footage as in its own. Local ids go to the local
//! handlers.
//!
//! Invariants: the province checks its caller's regions first (404 outside them, as for its own cameras),
//! the city checks what the link shares; the province audits the view under its caller (one row per view
//! of a range), the city under `province/user`.

use super::access::{noted, scoped, AuditNote};
use super::error::{ApiError, ApiResult, Path, Query};
use super::recordings::{self, RangeQuery};
use super::thumbnails::{self, PictureQuery, StripQuery};
use super::AppState;
use crate::auth::Principal;
use crate::federation::remote::split_remote_id;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::TryStreamExt;

/// Headers of a video request the city must see.
const FORWARD: [HeaderName; 3] = [header::RANGE, header::IF_RANGE, header::IF_NONE_MATCH];
/// Headers of the city's answer the browser needs.
const BACK: [&str; 10] = [
    "cache-control",
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
    "content-disposition",
    "vigil-gaps",
    "vigil-missing",
];

pub async fn spans(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if split_remote_id(id).is_none() {
        let spans = recordings::spans(State(s), Extension(p), Path(id), Query(q)).await?;
        return Ok(spans.into_response());
    }
    proxy(&s, &p, id, "recordings", &uri, &headers).await
}

pub async fn video(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if split_remote_id(id).is_none() {
        return recordings::video(State(s), Extension(p), Path(id), Query(q), headers).await;
    }
    proxy(&s, &p, id, "video.mp4", &uri, &headers).await
}

pub async fn strip(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<StripQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some((_, camera)) = split_remote_id(id) else {
        let strip = thumbnails::strip(State(s), Extension(p), Path(id), Query(q)).await?;
        return Ok(strip.into_response());
    };
    // The city names its pictures by its own camera id: they are asked for here, by the province's.
    let resp = proxy(&s, &p, id, "thumbnails", &uri, &headers).await?;
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .map_err(ApiError::internal)?;
    let text = String::from_utf8_lossy(&bytes).replace(
        &format!("/api/v1/cameras/{camera}/"),
        &format!("/api/v1/cameras/{id}/"),
    );
    let mut resp = Response::from_parts(parts, Body::from(text));
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(resp)
}

pub async fn picture(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<PictureQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if split_remote_id(id).is_none() {
        return thumbnails::picture(State(s), Extension(p), Path(id), Query(q)).await;
    }
    proxy(&s, &p, id, "thumbnail.jpg", &uri, &headers).await
}

/// The city's answer to `what` of remote camera `id`, with the caller's query.
async fn proxy(
    s: &AppState,
    p: &Principal,
    id: i64,
    what: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let (link, camera) = split_remote_id(id).ok_or_else(ApiError::not_found)?;
    let (_, cam) = s
        .federation
        .camera(id)
        .ok_or_else(|| ApiError::unavailable("the camera's city cannot be reached now"))?;
    scoped(p, &cam.region_code)?;
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = format!("/api/v1/link/cameras/{camera}/{what}{query}");
    let forward: Vec<_> = FORWARD
        .iter()
        .filter_map(|h| Some((h.clone(), headers.get(h)?.clone())))
        .collect();
    let answer = s
        .federation
        .send_over(link, reqwest::Method::GET, &target, &p.actor(), &forward)
        .await
        .map_err(|e| super::remote_cases::link_error("of the camera", e))?;
    let mut resp = Response::builder().status(answer.status().as_u16());
    for name in BACK {
        if let Some(v) = answer.headers().get(name) {
            resp = resp.header(name, v.as_bytes());
        }
    }
    let body = Body::from_stream(answer.bytes_stream().map_err(std::io::Error::other));
    let resp = resp.body(body).map_err(ApiError::internal)?;
    if !matches!(what, "video.mp4" | "thumbnail.jpg") {
        return Ok(resp);
    }
    let note = AuditNote {
        target: Some(format!("/cameras/{id}/{what}")),
        region_code: Some(cam.region_code),
        detail: uri.query().map(str::to_owned),
        collapse: true,
    };
    Ok(noted(resp, note))
}

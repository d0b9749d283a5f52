//! Case search across linked cities (docs/federation.md). At the province, the first page of `GET /cases`
//! fans out to every linked city at once (`GET /api/v1/link/cases` with the same query, signed,
//! `super::fan_out`) and merges what comes back within the deadline with its own cases, each city's
//! named on its cases (`link`); a city that does not answer in time, or refuses, is listed in
//! `unreachable`: partial results, never a hang. At the city, the link's call is answered by the same
//! search, as a caller of the grant's regions.
//!
//! A city's case is opened at the province with `GET /cases/{case_no}?link=NAME` ([`case_detail`]).
//!
//! Invariants: the province keeps only cases in its caller's regions (the cities' regions are mirrored
//! into its tree); a city's site ids are given as the province names them (negative, see
//! `federation::remote`); later pages (`after`) are the province's own.

use super::access::{noted, scoped, AuditNote};
use super::error::{ApiError, ApiResult, Query};
use super::fan_out::ask_cities;
use super::link_footage::{link_caller, proved};
use super::AppState;
use crate::auth::{Principal, Scope};
use crate::cases::model;
use crate::federation::{remote, store, LinkError};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::Value;

/// `GET /api/v1/link/cases` at the city.
pub async fn city_cases(
    State(s): State<AppState>,
    Query(q): Query<super::cases::CaseQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, _, proof) = link_caller(&s, "GET", &headers, &uri).await?;
    let list = super::cases::list_cases(State(s), Extension(p), Query(q)).await?;
    Ok(proved(list.into_response(), &proof))
}

/// The cases of every linked city for this query, and the cities that gave none in time.
pub async fn fan_out(
    s: &AppState,
    p: &Principal,
    query: Option<&str>,
) -> (Vec<Value>, Vec<String>) {
    let target = format!(
        "/api/v1/link/cases{}",
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let got = ask_cities(s, &p.actor(), &target).await;
    let mut cases = Vec::new();
    for (link, body) in got.answers {
        for mut c in body["cases"].as_array().cloned().unwrap_or_default() {
            let region = c["region_code"].as_str().unwrap_or_default();
            if !p.scope.allows(region) {
                continue;
            }
            let site = c["site_id"]
                .as_i64()
                .and_then(|id| remote::remote_id(link.id, id));
            c["site_id"] = site.map_or(Value::Null, Value::from);
            c["link"] = Value::from(link.name.clone());
            // Its details are at the city: no province route names it.
            c["url"] = Value::Null;
            cases.push(c);
        }
    }
    (cases, got.unreachable)
}

/// Percent-encodes a path segment or query value.
pub(super) fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A city's 404 as 404; anything else as 503, naming the city.
pub(super) fn link_error(link: &str, e: LinkError) -> ApiError {
    match e {
        LinkError::Refused(m) if m.starts_with("404") => ApiError::not_found(),
        e => ApiError::unavailable(format!("the city {link}: {e}")),
    }
}

/// `?within=` of the calls for `p`: the regions the caller may see among those the link shares (none for
/// a caller of every region).
pub(super) fn within(s: &AppState, p: &Principal, link: i64) -> String {
    let Scope::Regions(set) = &p.scope else {
        return String::new();
    };
    let shared = s.federation.regions(link);
    let codes: Vec<&str> = set
        .iter()
        .map(String::as_str)
        .filter(|c| shared.is_empty() || shared.iter().any(|r| r == c))
        .collect();
    format!("?within={}", enc(&codes.join(",")))
}

/// The link named `name` (404 when there is none).
pub(super) async fn link_named(s: &AppState, name: &str) -> ApiResult<store::Link> {
    store::links(&s.pool)
        .await?
        .into_iter()
        .find(|l| l.name == name)
        .ok_or_else(ApiError::not_found)
}

/// A city's case as the province's caller may see it: the link, the case number, the case as the city
/// gives it (within the caller's regions) and its region, checked against the caller's (404 outside).
pub(super) async fn city_case(
    s: &AppState,
    p: &Principal,
    link_name: &str,
    case_no: &str,
) -> ApiResult<(store::Link, String, Value, String)> {
    let case_no = model::case_no(case_no).map_err(|_| ApiError::not_found())?;
    let link = link_named(s, link_name).await?;
    let target = format!(
        "/api/v1/link/cases/{}{}",
        enc(&case_no),
        within(s, p, link.id)
    );
    let case = s
        .federation
        .json_over(link.id, reqwest::Method::GET, &target, &p.actor())
        .await
        .map_err(|e| link_error(&link.name, e))?;
    let region = case["region_code"].as_str().unwrap_or_default().to_owned();
    scoped(p, &region)?;
    Ok((link, case_no, case, region))
}

/// `GET /cases/{case_no}?link=NAME` at the province: the city's case as the caller may see it, its
/// site, cameras and URLs named as the province names them (playback and pictures go through the link).
pub async fn case_detail(
    s: &AppState,
    p: &Principal,
    link_name: &str,
    case_no: &str,
) -> ApiResult<Response> {
    let (link, case_no, mut case, region) = city_case(s, p, link_name, case_no).await?;
    let site = case["site_id"]
        .as_i64()
        .and_then(|id| remote::remote_id(link.id, id));
    case["site_id"] = site.map_or(Value::Null, Value::from);
    case["link"] = Value::from(link.name.clone());
    if let Some(clips) = case["clips"].as_array_mut() {
        for c in clips {
            rename_clip(c, &link, &case_no);
        }
    }
    let note = AuditNote {
        target: Some(format!("/cases/{case_no}")),
        region_code: Some(region),
        detail: Some(format!("link {}", link.name)),
        collapse: false,
    };
    Ok(noted(axum::Json(case), note))
}

/// A city's clip with the province's camera id; its video through the province's route of that camera,
/// its picture through the province's route of the clip's picture.
fn rename_clip(c: &mut Value, link: &store::Link, case_no: &str) {
    let picture = c["index"].as_u64().map(|i| {
        format!(
            "/api/v1/cases/{}/clips/{i}/thumbnail.jpg?link={}",
            enc(case_no),
            enc(&link.name)
        )
    });
    c["thumbnail_url"] = picture.map_or(Value::Null, Value::from);
    let Some(camera) = c["camera_id"]
        .as_i64()
        .and_then(|id| remote::remote_id(link.id, id))
    else {
        c["camera_id"] = Value::Null;
        c["video_url"] = Value::Null;
        return;
    };
    let (start, end) = (
        enc(c["start"].as_str().unwrap_or_default()),
        enc(c["end"].as_str().unwrap_or_default()),
    );
    c["camera_id"] = Value::from(camera);
    c["video_url"] = Value::from(format!(
        "/api/v1/cameras/{camera}/video.mp4?start={start}&end={end}"
    ));
}

/// `GET /cases/{case_no}/clips/{index}/thumbnail.jpg?link=NAME` at the province: the city's picture of
/// its case's clip, asked within the caller's regions (the city answers 404 outside them).
pub async fn clip_picture(
    s: &AppState,
    p: &Principal,
    link_name: &str,
    case_no: &str,
    index: usize,
) -> ApiResult<Response> {
    let case_no = model::case_no(case_no).map_err(|_| ApiError::not_found())?;
    let link = link_named(s, link_name).await?;
    let target = format!(
        "/api/v1/link/cases/{}/clips/{index}/thumbnail.jpg{}",
        enc(&case_no),
        within(s, p, link.id)
    );
    let answer = s
        .federation
        .send_over(link.id, reqwest::Method::GET, &target, &p.actor(), &[])
        .await
        .map_err(|e| link_error(&link.name, e))?;
    let jpeg = answer
        .bytes()
        .await
        .map_err(|e| ApiError::unavailable(format!("the city {}: {e}", link.name)))?;
    Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "image/jpeg")
        .header(axum::http::header::CACHE_CONTROL, "private, max-age=60")
        .body(axum::body::Body::from(jpeg))
        .map_err(ApiError::internal)
}

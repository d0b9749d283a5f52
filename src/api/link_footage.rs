//! A city's recorded footage to its province (docs/federation.md): `GET /api/v1/link/cameras/{id}/recordings`,
//! `.../video.mp4`, `.../thumbnails` and `.../thumbnail.jpg` with the query (and `Range` headers) of the
//! province's own routes, signed as every link call. The city answers them with its own handlers, as a caller whose regions are what the grant
//! shares at the time of the call, and audits the playback as `province/user` with the camera's region
//! (one row per view of a range, as for its own users).

use super::access::{write_audit, AuditNote};
use super::error::{ApiError, ApiResult, Path, Query};
use super::link_stream::shared_region;
use super::links::signed_grant;
use super::recordings::{self, RangeQuery};
use super::thumbnails::{self, PictureQuery, StripQuery};
use super::AppState;
use crate::auth::{Principal, Role, Scope, Subject};
use crate::federation::{sign, store};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;

/// The caller a link's `method` request acts as at the city: the grant's regions (now), a supervisor's
/// reads; with the audit's actor (`province/user`) and the proof to answer with.
pub(super) async fn link_caller(
    s: &AppState,
    method: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> ApiResult<(Principal, store::Grant, String, String)> {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
    let (grant, actor, proof) = signed_grant(s, headers, method, target).await?;
    let _ = store::touch_grant(&s.pool, grant.id).await;
    let regions = crate::db::regions::subtree(&s.pool, &grant.region_codes).await?;
    let principal = Principal {
        subject: Subject::Token {
            id: -grant.id,
            name: format!("link:{}", grant.name),
        },
        role: Role::Supervisor,
        scope: Scope::Regions(regions.into_iter().collect()),
        csrf_token: None,
        credential: String::new(),
    };
    let actor = format!("{}/{actor}", grant.name);
    Ok((principal, grant, actor, proof))
}

/// [`link_caller`] for a camera the grant shares now (404 otherwise).
async fn camera_caller(
    s: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    camera: i64,
) -> ApiResult<(Principal, String, String)> {
    let (p, grant, actor, proof) = link_caller(s, "GET", headers, uri).await?;
    shared_region(s, grant.id, camera)
        .await
        .ok_or_else(ApiError::not_found)?;
    Ok((p, actor, proof))
}

pub(super) fn proved(mut resp: Response, proof: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(proof) {
        resp.headers_mut().insert(sign::PROOF_HEADER, v);
    }
    resp
}

pub async fn recordings(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, proof) = camera_caller(&s, &headers, &uri, id).await?;
    let spans = recordings::spans(State(s), Extension(p), Path(id), Query(q)).await?;
    Ok(proved(spans.into_response(), &proof))
}

pub async fn video(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<RangeQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, actor, proof) = camera_caller(&s, &headers, &uri, id).await?;
    let resp =
        recordings::video(State(s.clone()), Extension(p), Path(id), Query(q), headers).await?;
    Ok(proved(audited(&s, actor, "playback", resp).await, &proof))
}

/// Writes the audit row of a footage read over the link (as its own handler noted it, under the link's
/// actor), then gives the answer; one row per view of a range, as for the city's own users.
pub(super) async fn audited(s: &AppState, actor: String, action: &str, resp: Response) -> Response {
    let note = resp
        .extensions()
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let entry = crate::audit::Entry {
        actor,
        role: Some("link".into()),
        action: action.into(),
        target: note.target.clone(),
        region_code: note.region_code.clone(),
        status: resp.status().as_u16(),
        client: None,
        detail: note.detail.clone(),
    };
    let collapse = note.collapse && resp.status().is_success();
    write_audit(s, entry, collapse, resp).await
}

pub async fn strip(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<StripQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, proof) = camera_caller(&s, &headers, &uri, id).await?;
    let strip = thumbnails::strip(State(s), Extension(p), Path(id), Query(q)).await?;
    Ok(proved(strip.into_response(), &proof))
}

pub async fn picture(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<PictureQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, actor, proof) = camera_caller(&s, &headers, &uri, id).await?;
    let resp = thumbnails::picture(State(s.clone()), Extension(p), Path(id), Query(q)).await?;
    Ok(proved(
        audited(&s, actor, "playback.thumbnail", resp).await,
        &proof,
    ))
}

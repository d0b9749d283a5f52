//! A city's cases and exports to its province (docs/federation.md): `GET /api/v1/link/cases/{case_no}`,
//! `.../clips/{index}/thumbnail.jpg`,
//! `POST /api/v1/link/cases/{case_no}/export`, `GET /api/v1/link/exports/{id}` and `.../download`, and
//! `GET /api/v1/link/signing-key`, signed as every link call.
//!
//! Invariants:
//! - The city answers as a caller of the grant's regions at the time of the call, narrowed to the regions
//!   the province's user may see (`within`, the codes the province sends with its own check).
//! - An export started over a link is the city's own job and package, signed by the city's key, with
//!   `province/user` as its exporter; the city audits its start and its download under that name with
//!   the case's region. A link reads only the exports it started, each camera of the package still
//!   shared.

use super::access::{noted, AuditNote};
use super::cases::{self, start_error};
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::link_footage::{audited, link_caller, proved};
use super::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::cases::export;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Within {
    /// The region codes the province's user may see, comma-separated; none: the grant's.
    within: Option<String>,
}

/// The link's caller as an investigator of the grant's regions, within `within`; with the audit's actor,
/// the grant's name and the proof to answer with.
async fn caller(
    s: &AppState,
    method: &str,
    headers: &HeaderMap,
    uri: &Uri,
    within: Option<&str>,
) -> ApiResult<(Principal, String, String, String)> {
    let (mut p, grant, actor, proof) = link_caller(s, method, headers, uri).await?;
    p.role = Role::Investigator;
    if let (Some(w), Scope::Regions(set)) = (within, &mut p.scope) {
        let allowed: std::collections::HashSet<&str> = w.split(',').collect();
        set.retain(|c| allowed.contains(c.as_str()));
    }
    Ok((p, actor, grant.name, proof))
}

fn case_note(case_no: &str, region: &str) -> AuditNote {
    AuditNote {
        target: Some(format!("/cases/{case_no}")),
        region_code: Some(region.to_owned()),
        ..AuditNote::default()
    }
}

/// `GET /api/v1/link/cases/{case_no}`: the case as the province's user may see it here.
pub async fn case(
    State(s): State<AppState>,
    Path(case_no): Path<String>,
    Query(w): Query<Within>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, actor, _, proof) = caller(&s, "GET", &headers, &uri, w.within.as_deref()).await?;
    let view = cases::local_case(&s, &p, &case_no).await?;
    let note = case_note(&view.case_no, &view.region_code);
    let resp = noted(Json(view), note);
    Ok(proved(audited(&s, actor, "case.view", resp).await, &proof))
}

/// `GET /api/v1/link/cases/{case_no}/clips/{index}/thumbnail.jpg`: the picture of the case's clip.
pub async fn clip_picture(
    State(s): State<AppState>,
    Path((case_no, index)): Path<(String, usize)>,
    Query(w): Query<Within>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, _, proof) = caller(&s, "GET", &headers, &uri, w.within.as_deref()).await?;
    let jpeg = cases::clip_thumbnail(
        State(s),
        Extension(p),
        Path((case_no, index)),
        Query(cases::LinkQuery::default()),
    )
    .await?;
    Ok(proved(jpeg, &proof))
}

/// `POST /api/v1/link/cases/{case_no}/export`: the city's export job for the province's user.
pub async fn start_export(
    State(s): State<AppState>,
    Path(case_no): Path<String>,
    Query(w): Query<Within>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, actor, _, proof) = caller(&s, "POST", &headers, &uri, w.within.as_deref()).await?;
    let case = cases::visible_case(&s, &p, &case_no).await?;
    let note = case_note(&case.case_no, &case.region_code);
    let id = export::start(s.cases.clone(), case, actor.clone(), p.scope.clone())
        .await
        .map_err(start_error)?;
    let resp = noted((StatusCode::ACCEPTED, Json(json!({"export_id": id}))), note);
    Ok(proved(
        audited(&s, actor, "export.create", resp).await,
        &proof,
    ))
}

/// The export, when this link started it and the caller may read all it holds now.
async fn own_export(s: &AppState, p: &Principal, grant: &str, id: &str) -> ApiResult<String> {
    let row = export::get(&s.pool, id)
        .await
        .map_err(|_| ApiError::not_found())?;
    let mine = row
        .created_by
        .strip_prefix(grant)
        .is_some_and(|r| r.starts_with('/'));
    let regions = super::target::export_regions(&s.pool, id)
        .await?
        .unwrap_or_default();
    if !mine || !regions.iter().all(|r| p.scope.allows(r)) {
        return Err(ApiError::not_found());
    }
    Ok(row.region_code)
}

/// `GET /api/v1/link/exports/{id}`.
pub async fn export_state(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, _, grant, proof) = caller(&s, "GET", &headers, &uri, None).await?;
    own_export(&s, &p, &grant, &id).await?;
    let state = cases::get_export(State(s), Extension(p), Path(id)).await?;
    Ok(proved(state.into_response(), &proof))
}

/// `GET /api/v1/link/exports/{id}/download`.
pub async fn download(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (p, actor, grant, proof) = caller(&s, "GET", &headers, &uri, None).await?;
    let region = own_export(&s, &p, &grant, &id).await?;
    let resp = cases::download_export(State(s.clone()), Extension(p), Path(id.clone())).await?;
    let note = AuditNote {
        target: Some(format!("/exports/{id}")),
        region_code: Some(region),
        ..AuditNote::default()
    };
    let resp = noted(resp, note);
    Ok(proved(
        audited(&s, actor, "export.download", resp).await,
        &proof,
    ))
}

/// `GET /api/v1/link/signing-key`: the key the city's packages are signed with, proved as every answer.
pub async fn signing_key(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (_, _, _, proof) = caller(&s, "GET", &headers, &uri, None).await?;
    Ok(proved(
        cases::signing_key(State(s)).await.into_response(),
        &proof,
    ))
}

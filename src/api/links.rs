//! Federation routes (docs/federation.md).
//!
//! City side, admins: `POST /link-credentials {name, region_codes}` issues a credential (shown once),
//! `GET /link-credentials` lists them, `PATCH /link-credentials/{id} {paused}` pauses or resumes one,
//! `DELETE /link-credentials/{id}` revokes one for good. A regional admin issues and sees only credentials
//! of regions it covers.
//!
//! Province side, admins: `POST /links {name, url, credential}` checks the credential against the city (a
//! signed call that must come back with the city's proof) before storing it, `GET /links` lists the links
//! with their state (`up`, `down`, `paused`) and last contact, `PATCH /links/{id} {paused}`,
//! `DELETE /links/{id}`. Links are infrastructure, like the cluster's nodes: any admin manages them; what
//! a link brings is seen region by region (the cities' cameras, sites and cases are filtered by each
//! caller's regions as the server's own are).
//!
//! The city's answers to its province are outside the session routes, authenticated by the request's
//! signature alone ([`signed_grant`]): the shared tree (`super::link_tree`), live streams
//! (`super::link_stream`), footage (`super::link_footage`), cases and exports (`super::link_exports`).

use super::access::{noted, AuditNote};
use super::error::{ApiError, ApiResult, Json, Path};
use super::AppState;
use crate::auth::Principal;
use crate::federation::sign::{self, Credential, Signed};
use crate::federation::{self, store};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::json;

const MAX_NAME: usize = 100;

fn name_of(name: Option<&str>) -> ApiResult<String> {
    let n = name.map(str::trim).unwrap_or_default();
    if n.is_empty() || n.chars().count() > MAX_NAME || n.contains('/') {
        return Err(ApiError::invalid(
            "name is required (at most 100 characters, no '/')",
        ));
    }
    Ok(n.to_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    name: Option<String>,
    region_codes: Option<Vec<String>>,
}

/// `POST /link-credentials`: the credential, shown this once.
pub async fn create_grant(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<GrantBody>,
) -> ApiResult<Response> {
    let name = name_of(b.name.as_deref())?;
    let codes = b.region_codes.unwrap_or_default();
    if codes.is_empty() || codes.len() > 50 {
        return Err(ApiError::invalid(
            "region_codes: the regions shared (1 to 50)",
        ));
    }
    for c in &codes {
        crate::db::regions::get(&s.pool, c)
            .await
            .map_err(|_| ApiError::invalid(format!("region {c} does not exist")))?;
    }
    if !p.scope.covers(&codes) {
        return Err(ApiError::forbidden(
            "a region shared is outside your regions",
        ));
    }
    let secret = sign::new_secret();
    let sealed = s.secrets.seal(&secret).map_err(ApiError::internal)?;
    let id = store::insert_grant(&s.pool, &name, &codes, &sealed, &p.actor()).await?;
    let credential = Credential {
        grant_id: id,
        secret,
    }
    .encode();
    let note = AuditNote {
        target: Some(format!("/link-credentials/{id}")),
        region_code: codes.first().cloned(),
        detail: Some(format!("{name}: {}", codes.join(","))),
        ..AuditNote::default()
    };
    let body = json!({"id": id, "name": name, "region_codes": codes, "credential": credential});
    Ok(noted((StatusCode::CREATED, axum::Json(body)), note))
}

/// Whether the caller may see and change this grant: it covers every region shared.
fn grant_in_scope(p: &Principal, g: &store::Grant) -> bool {
    p.scope.covers(&g.region_codes)
}

pub async fn list_grants(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    let grants: Vec<_> = store::grants(&s.pool)
        .await?
        .into_iter()
        .filter(|g| grant_in_scope(&p, g))
        .collect();
    Ok(axum::Json(json!({ "credentials": grants })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    paused: Option<bool>,
}

pub async fn update_grant(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Json(b): Json<PauseBody>,
) -> ApiResult<Response> {
    let g = store::grant(&s.pool, id).await?;
    if !grant_in_scope(&p, &g) {
        return Err(ApiError::not_found());
    }
    let paused = b
        .paused
        .ok_or_else(|| ApiError::invalid("paused is required"))?;
    store::pause_grant(&s.pool, id, paused).await?;
    Ok(noted(StatusCode::NO_CONTENT, grant_note(&g)))
}

pub async fn revoke_grant(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let g = store::grant(&s.pool, id).await?;
    if !grant_in_scope(&p, &g) {
        return Err(ApiError::not_found());
    }
    store::revoke_grant(&s.pool, id).await?;
    Ok(noted(StatusCode::NO_CONTENT, grant_note(&g)))
}

fn grant_note(g: &store::Grant) -> AuditNote {
    AuditNote {
        target: Some(format!("/link-credentials/{}", g.id)),
        region_code: g.region_codes.first().cloned(),
        detail: Some(g.name.clone()),
        ..AuditNote::default()
    }
}

fn federation(s: &AppState) -> &std::sync::Arc<federation::Federation> {
    &s.federation
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    name: Option<String>,
    url: Option<String>,
    credential: Option<String>,
}

/// `POST /links`: checks the credential with the city, then keeps it.
pub async fn create_link(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<LinkBody>,
) -> ApiResult<Response> {
    let name = name_of(b.name.as_deref())?;
    let url = b.url.as_deref().map(str::trim).unwrap_or_default();
    let parsed =
        url::Url::parse(url).map_err(|_| ApiError::invalid("url: the city server's address"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
    {
        return Err(ApiError::invalid(
            "url: http(s)://host[:port] of the city server, without credentials or query",
        ));
    }
    let credential = Credential::parse(b.credential.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::invalid(format!("credential: {e}")))?;
    let url = url.trim_end_matches('/').to_owned();
    let tree = federation(&s)
        .fetch_tree(&url, &credential)
        .await
        .map_err(|e| ApiError::invalid(format!("the city refused the link: {e}")))?;
    let sealed = s
        .secrets
        .seal(&credential.secret)
        .map_err(ApiError::internal)?;
    let id = store::insert_link(
        &s.pool,
        &name,
        &url,
        credential.grant_id,
        &sealed,
        &p.actor(),
    )
    .await?;
    federation(&s).poll().await;
    let note = AuditNote {
        target: Some(format!("/links/{id}")),
        detail: Some(format!("{name} {url}")),
        ..AuditNote::default()
    };
    let body = json!({"id": id, "name": name, "url": url, "cameras": tree.cameras.len()});
    Ok(noted((StatusCode::CREATED, axum::Json(body)), note))
}

pub async fn list_links(State(s): State<AppState>) -> ApiResult<Response> {
    let now = crate::db::now_ms();
    let stale_after = federation(&s).stale_after();
    let cameras = federation(&s).cameras();
    let links: Vec<_> = store::links(&s.pool)
        .await?
        .into_iter()
        .map(|l| {
            json!({
                "id": l.id,
                "name": l.name,
                "url": l.url,
                "state": federation::state_of(&l, now, stale_after),
                "last_contact": l.last_contact.map(|t| crate::time::us_to_rfc3339(t * 1000)),
                "error": l.last_error,
                "cameras": cameras.iter().filter(|c| c.0 == l.id).count(),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "links": links })).into_response())
}

pub async fn update_link(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Json(b): Json<PauseBody>,
) -> ApiResult<Response> {
    store::link(&s.pool, id).await?;
    let paused = b
        .paused
        .ok_or_else(|| ApiError::invalid("paused is required"))?;
    store::pause_link(&s.pool, id, paused).await?;
    federation(&s).poll().await;
    Ok(noted(StatusCode::NO_CONTENT, link_note(id)))
}

pub async fn delete_link(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Response> {
    store::delete_link(&s.pool, id).await?;
    federation(&s).forget(id);
    Ok(noted(StatusCode::NO_CONTENT, link_note(id)))
}

fn link_note(id: i64) -> AuditNote {
    AuditNote {
        target: Some(format!("/links/{id}")),
        ..AuditNote::default()
    }
}

/// The grant a signed request comes under, once its signature checks, and the proof to answer with.
pub(super) async fn signed_grant(
    s: &AppState,
    headers: &HeaderMap,
    method: &str,
    target: &str,
) -> ApiResult<(store::Grant, String, String)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let unsigned = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not a signed link request",
        )
    };
    let grant_id: i64 = header(sign::GRANT_HEADER)
        .and_then(|v| v.parse().ok())
        .ok_or_else(unsigned)?;
    let time: i64 = header(sign::TIME_HEADER)
        .and_then(|v| v.parse().ok())
        .ok_or_else(unsigned)?;
    let signature = header(sign::SIGNATURE_HEADER)
        .ok_or_else(unsigned)?
        .to_owned();
    let actor = sign::decode_actor(header(sign::ACTOR_HEADER).unwrap_or_default());
    let grant = unrevoked(s, grant_id).await?;
    let secret = s.secrets.open(&grant.secret).map_err(|_| link_refused())?;
    let signed = Signed {
        method,
        target,
        time,
        actor: &actor,
        body: b"",
    };
    signed
        .verify(&secret, &signature, chrono::Utc::now().timestamp())
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))?;
    not_paused(&grant)?;
    let proof = sign::proof(&secret, &signature);
    Ok((grant, actor, proof))
}

/// Grant `id` unless it is unknown or revoked: both refused alike (401), so that nothing tells a caller
/// which grants exist.
pub(super) async fn unrevoked(s: &AppState, id: i64) -> ApiResult<store::Grant> {
    let grant = store::grant(&s.pool, id)
        .await
        .map_err(|_| link_refused())?;
    if grant.revoked_at.is_some() {
        return Err(link_refused());
    }
    Ok(grant)
}

fn link_refused() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "link refused")
}

/// A paused grant is refused with 403 (its caller is known: it signed the call).
pub(super) fn not_paused(grant: &store::Grant) -> ApiResult<()> {
    if grant.paused {
        return Err(ApiError::forbidden("the link is paused by the city"));
    }
    Ok(())
}

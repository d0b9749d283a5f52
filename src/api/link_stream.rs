//! A city's live stream of a shared camera to its province (docs/federation.md): the WebSocket of
//! `GET /api/v1/link/cameras/{id}/stream?kind=main|sub`, signed as every link call, carrying frames in
//! the cluster's wire format (`cluster::wire`), which the province relays to all its viewers of the camera.
//!
//! Invariants:
//! - The camera must lie in the grant's regions at the time of the request, and it is checked again every
//!   [`RECHECK`] while the stream runs: a credential paused or revoked, or a region no longer shared, ends
//!   the stream within seconds.
//! - The city audits the stream under the grant's name and the province user who opened it
//!   (`江西省/admin`), with the camera's region: `link.stream.start` when it opens, `link.stream.stop` when
//!   it ends; and each province user's own view as the province tells it (`.../views?event=start|stop`):
//!   `live.start` and `live.stop` as `江西省/user`, so the city sees everyone who watched, though one
//!   stream carried them all.
//! - A camera without a sub stream serves its main stream for `kind=sub`.

use super::error::{ApiError, ApiResult, Path, Query};
use super::links::signed_grant;
use super::AppState;
use crate::federation::{self, sign, store};
use crate::hub::{StreamKey, StreamKind};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::Duration;

/// How often a running stream checks that its grant still shares the camera.
const RECHECK: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindQuery {
    kind: Option<String>,
}

/// Whether the grant (as it is now) shares camera `id`: its region then.
pub(super) async fn shared_region(s: &AppState, grant_id: i64, camera: i64) -> Option<String> {
    let g = store::grant(&s.pool, grant_id).await.ok()?;
    if g.paused || g.revoked_at.is_some() {
        return None;
    }
    let cam = crate::db::cameras::get(&s.pool, camera).await.ok()?;
    let codes = crate::db::regions::subtree(&s.pool, &g.region_codes)
        .await
        .ok()?;
    codes.contains(&cam.region_code).then_some(cam.region_code)
}

pub async fn stream(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<KindQuery>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
    let (grant, actor, proof) = signed_grant(&s, &headers, "GET", target).await?;
    let region = shared_region(&s, grant.id, id)
        .await
        .ok_or_else(ApiError::not_found)?;
    let cam = crate::db::cameras::get(&s.pool, id).await?;
    let kind = match q.kind.as_deref().map(StreamKind::parse) {
        None => StreamKind::Main,
        Some(Some(StreamKind::Sub)) if cam.sub_url.is_none() => StreamKind::Main,
        Some(Some(k)) => k,
        Some(None) => return Err(ApiError::invalid("kind must be main or sub")),
    };
    let _ = store::touch_grant(&s.pool, grant.id).await;
    let entry = |action: &str| crate::audit::Entry {
        actor: format!("{}/{actor}", grant.name),
        role: Some("link".into()),
        action: action.to_owned(),
        target: Some(federation::stream_target(id, kind)),
        region_code: Some(region.clone()),
        status: 200,
        client: None,
        detail: None,
    };
    let (start, stop) = (entry("link.stream.start"), entry("link.stream.stop"));
    if let Err(e) = s.audit.append(&start).await {
        tracing::error!(camera = id, error = %e, "audit of a link's stream start failed");
        return Err(ApiError::unavailable("audit unavailable"));
    }
    let hub = s.ingest.hub().stream(StreamKey {
        camera_id: id,
        kind,
    });
    let grant_id = grant.id;
    let mut resp = upgrade
        .on_upgrade(move |socket| async move {
            let watch = async {
                loop {
                    tokio::time::sleep(RECHECK).await;
                    if shared_region(&s, grant_id, id).await.is_none() {
                        tracing::info!(
                            camera = id,
                            grant = grant_id,
                            "link stream ended: no longer shared"
                        );
                        return;
                    }
                }
            };
            tokio::select! {
                _ = super::internal::serve(socket, hub, id) => {}
                _ = watch => {}
            }
            if let Err(e) = s.audit.append(&stop).await {
                tracing::error!(camera = id, error = %e, "audit of a link's stream end failed");
            }
        })
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&proof) {
        resp.headers_mut().insert(sign::PROOF_HEADER, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewQuery {
    event: Option<String>,
}

/// `GET /api/v1/link/cameras/{id}/views?event=start|stop`: a province user's view of a shared camera began
/// or ended; written into the city's audit under `province/user` with the camera's region.
pub async fn views(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ViewQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
    let (grant, actor, proof) = signed_grant(&s, &headers, "GET", target).await?;
    let action = match q.event.as_deref() {
        Some("start") => "live.start",
        Some("stop") => "live.stop",
        _ => return Err(ApiError::invalid("event must be start or stop")),
    };
    let region = shared_region(&s, grant.id, id)
        .await
        .ok_or_else(ApiError::not_found)?;
    let entry = crate::audit::Entry {
        actor: format!("{}/{actor}", grant.name),
        role: Some("link".into()),
        action: action.into(),
        target: Some(format!("/cameras/{id}/live")),
        region_code: Some(region),
        status: 200,
        client: None,
        detail: Some("watched at the linked server".into()),
    };
    s.audit
        .append(&entry)
        .await
        .map_err(|e| ApiError::unavailable(format!("audit unavailable: {e}")))?;
    let mut resp = axum::http::StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&proof) {
        resp.headers_mut().insert(sign::PROOF_HEADER, v);
    }
    Ok(resp)
}

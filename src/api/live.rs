//! Live view routes: the WebSocket of `GET /cameras/{id}/live?stream=main|sub` (MSE and WebRTC
//! signalling, served by [`crate::live::ws`]) and the live statistics for operators and benchmarks.
//!
//! Access: the route table admits admin and supervisor (the contract's "supervisor: live"); the camera's
//! region is checked with [`visible_camera`] before the upgrade; the access layer checks the WebSocket's
//! `Origin` (a cross-site page cannot ride the console's cookie) and audits the start (`live.start`); the
//! end of the view is audited here (`live.stop`) when the socket closes, or when the viewer is gone before
//! the upgrade completes: every `live.start` has its `live.stop`.

use super::access::{audit_entry, ClientAddr};
use super::cameras::visible_camera;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::{revoke, AppState};
use crate::auth::Principal;
use crate::hub::{StreamKey, StreamKind};
use crate::live::ws::{self, Viewer};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    stream: Option<String>,
}

/// The stream a viewer gets, and whether it is a sub stream made by scaling the main one (the camera has
/// none).
fn stream_kind(q: &LiveQuery, has_sub: bool) -> ApiResult<(StreamKind, bool)> {
    match q.stream.as_deref() {
        None => Ok((StreamKind::Main, false)),
        Some(s) => match StreamKind::parse(s) {
            Some(StreamKind::Sub) => Ok((StreamKind::Sub, !has_sub)),
            Some(k) => Ok((k, false)),
            None => Err(ApiError::invalid("stream must be main or sub")),
        },
    }
}

/// Where a viewer's stream comes from: the camera's region, its stream key here, and whether it is a
/// scaled sub stream. A camera a linked city shares is relayed from the city (one upstream for every
/// viewer here); a camera of this server's cluster recorded by another node, from that node.
async fn source(
    s: &AppState,
    p: &Principal,
    id: i64,
    q: &LiveQuery,
) -> ApiResult<(String, StreamKey, bool)> {
    if crate::federation::remote::split_remote_id(id).is_some() {
        let (_, c) = s
            .federation
            .camera(id)
            .ok_or_else(|| ApiError::unavailable("the camera's city cannot be reached now"))?;
        super::access::scoped(p, &c.region_code)?;
        let (kind, _) = stream_kind(q, true)?;
        let key = StreamKey {
            camera_id: id,
            kind,
        };
        s.federation.relay(key, &p.actor());
        return Ok((c.region_code, key, false));
    }
    let cam = visible_camera(s, p, id).await?;
    let (kind, scaled) = stream_kind(q, cam.sub_url.is_some())?;
    Ok((cam.region_code, relayed(s, id, kind), scaled))
}

pub async fn live(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<LiveQuery>,
    client: Option<Extension<ClientAddr>>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let remote = crate::federation::remote::split_remote_id(id).is_some();
    let (region, key, scaled) = source(&s, &p, id, &q).await?;
    let viewer = Viewer {
        key,
        user: p.actor(),
        scaled,
    };
    let live = s.live.clone();
    let target = format!("/cameras/{id}/live?stream={}", key.kind.as_str());
    let client = client.map(|Extension(c)| c.0);
    let stop = audit_entry(
        &p,
        "live.stop",
        &target,
        Some(&region),
        200,
        client.as_deref(),
    );
    let (log, failed_log) = (s.audit.clone(), s.audit.clone());
    let state = s.clone();
    let failed_stop = stop.clone();
    // The access layer audits the start once this answer is made; the view ends in either branch, so that
    // every live.start has its live.stop, also for a viewer gone before the socket was handed over.
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_failed_upgrade(move |e| {
            tracing::info!(camera = id, error = %e, "live viewer gone during the upgrade");
            let entry = crate::audit::Entry {
                detail: Some(format!("gone before the socket opened: {e}")),
                ..failed_stop
            };
            tokio::spawn(audit_stop(failed_log, entry, id));
        })
        .on_upgrade(move |socket| async move {
            let federation = state.federation.clone();
            let actor = p.actor();
            if remote {
                federation.view_notice(id, &actor, "start");
            }
            ws::serve(socket, live, viewer, view_end(state, p, id, remote)).await;
            if remote {
                federation.view_notice(id, &actor, "stop");
            }
            audit_stop(log, stop, id).await;
        }))
}

/// What ends a live view: the caller's rights (rechecked), the longest session, and for a camera a linked
/// city shares, the city no longer sharing it (credential paused or revoked, link down), within a poll of
/// the link. The reason, for the viewer.
async fn view_end(state: AppState, p: Principal, id: i64, remote: bool) -> &'static str {
    let max = revoke::live_max(&state);
    let watch_state = state.clone();
    let federation = state.federation.clone();
    let region = || {
        let (state, remote_region) = (watch_state.clone(), federation.camera(id));
        async move {
            if remote {
                return remote_region.map(|(_, c)| c.region_code);
            }
            revoke::camera_region(&state, id).await
        }
    };
    let revoked = revoke::until_revoked(state.clone(), p, max, region);
    if !remote {
        return revoked.await.message();
    }
    let unshared = async {
        while state.federation.camera(id).is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        e = revoked => e.message(),
        () = unshared => "the camera's city no longer shares it",
    }
}

async fn audit_stop(log: crate::audit::Log, entry: crate::audit::Entry, camera: i64) {
    if let Err(e) = log.append(&entry).await {
        tracing::error!(camera, error = %e, "audit of live.stop failed");
    }
}

/// WHEP (RFC 9725): an SDP offer in, an SDP answer out, with the session's resource in `Location`.
pub async fn whep(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult<Response> {
    let body = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the SDP offer is not UTF-8 text"))?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the SDP offer as application/sdp",
        ));
    }
    let cam = visible_camera(&s, &p, id).await?;
    let (kind, scaled) = stream_kind(&q, cam.sub_url.is_some())?;
    let key = relayed(&s, cam.id, kind);
    let (answer, session) = s
        .live
        .whep(key, scaled, &body, p.actor())
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // The session ends when its caller's rights do, or at its maximum duration.
    let (state, live, id, camera) = (s.clone(), s.live.clone(), session.clone(), cam.id);
    tokio::spawn(async move {
        let region = || revoke::camera_region(&state, camera);
        let revoked = revoke::until_revoked(state.clone(), p, revoke::live_max(&state), region);
        let gone = async {
            while live.whep_alive(&id) {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            why = revoked => if live.whep_delete(&id) {
                tracing::info!(camera, reason = why.message(), "WHEP session ended by the server");
            },
            () = gone => {}
        }
    });
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_string()),
            (
                header::LOCATION,
                format!("/api/v1/cameras/{}/whep/{session}", cam.id),
            ),
        ],
        answer,
    )
        .into_response())
}

/// Ends a WHEP session.
pub async fn whep_delete(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, session)): Path<(i64, String)>,
) -> ApiResult<StatusCode> {
    visible_camera(&s, &p, id).await?;
    if s.live.whep_delete(&session) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Resetting the server-wide latency figures disturbs every admin's measurement: global admins only. The
/// route sits with `/metrics`, outside the regional API table.
fn global_admin(p: &Principal) -> ApiResult<()> {
    if p.scope == crate::auth::Scope::All {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "live statistics are server-wide: only a global admin may use them",
        ))
    }
}

pub async fn stats(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    // The latency figures are server-wide aggregates; the per-camera rows are limited to the caller's
    // regions, like `/metrics`.
    let visible: Option<std::collections::HashSet<i64>> = match p.scope {
        crate::auth::Scope::All => None,
        _ => Some(
            crate::db::cameras::list(&s.pool)
                .await?
                .into_iter()
                .filter(|c| p.scope.allows(&c.region_code))
                .map(|c| c.id)
                .collect(),
        ),
    };
    let streams: Vec<_> = s
        .live
        .mse_streams()
        .into_iter()
        .filter(|(k, _)| visible.as_ref().is_none_or(|v| v.contains(&k.camera_id)))
        .map(|(k, n)| serde_json::json!({"camera_id": k.camera_id, "stream": k.kind.as_str(), "mse_viewers": n}))
        .collect();
    Ok(Json(serde_json::json!({
        "latency": s.live.stats_snapshot(),
        "streams": streams,
    })))
}

/// Forgets the latency samples so far (benchmarks call it after their warm-up).
pub async fn reset_stats(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<StatusCode> {
    global_admin(&p)?;
    s.live.stats.reset_latency();
    Ok(StatusCode::NO_CONTENT)
}

/// The stream a viewer of this node watches; in a cluster, relayed here first when another node records
/// the camera (one node-to-node stream however many viewers).
fn relayed(s: &AppState, camera_id: i64, kind: crate::hub::StreamKind) -> StreamKey {
    let key = StreamKey { camera_id, kind };
    if let Some(cluster) = &s.cluster {
        cluster.relay(key);
    }
    key
}

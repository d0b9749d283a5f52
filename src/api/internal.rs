//! Node-to-node calls of a cluster, on the same port as the API: no open internal port, and no caller but
//! a node that presents the cluster key (`x-vigil-cluster-key`). The viewing node has checked its user's
//! regions and audited the view before it asks; this side serves only cameras it records itself.
//!
//! `GET /api/v1/internal/streams/{camera}/{main|sub}` (WebSocket): the stream's frames as this node's hub
//! has them, in the format of `cluster::wire`, from the cached GOP on; a slow reader skips to the next
//! keyframe like any other consumer.

use super::error::ApiError;
use super::AppState;
use crate::cluster::{relay::KEY_HEADER, wire};
use crate::hub::{Received, StreamKey, StreamKind};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn stream(
    State(s): State<AppState>,
    Path((camera, kind)): Path<(i64, String)>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Some(cluster) = &s.cluster else {
        return Err(ApiError::not_found());
    };
    let presented = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
    if !presented.is_some_and(|k| cluster.key_matches(k)) {
        tracing::warn!(
            camera,
            "internal stream asked without the cluster key; refused"
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "node-to-node calls need the cluster key",
        ));
    }
    let kind = match kind.as_str() {
        "main" => StreamKind::Main,
        "sub" => StreamKind::Sub,
        _ => return Err(ApiError::bad_request("stream is main or sub")),
    };
    if cluster.fence(camera).is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_recorded_here",
            "this node does not record the camera now",
        ));
    }
    let hub = s.ingest.hub().stream(StreamKey {
        camera_id: camera,
        kind,
    });
    Ok(upgrade
        .on_upgrade(move |socket| serve(socket, hub, camera))
        .into_response())
}

async fn serve(mut socket: WebSocket, hub: Arc<crate::hub::StreamHub>, camera: i64) {
    let (cached, mut sub) = hub.subscribe();
    let mut last = None;
    for f in cached {
        if send(&mut socket, &f, &mut last).await.is_err() {
            return;
        }
    }
    loop {
        match sub.recv().await {
            Received::Frame(f) => {
                if send(&mut socket, &f, &mut last).await.is_err() {
                    break;
                }
            }
            Received::Skipped { skipped } => {
                tracing::debug!(
                    camera,
                    skipped,
                    "internal stream: the viewing node fell behind"
                );
            }
            Received::Closed => break,
        }
    }
    tracing::debug!(camera, "internal stream ended");
}

/// Sends one frame, with its parameters when they are new to this reader.
async fn send(
    socket: &mut WebSocket,
    f: &Arc<crate::hub::Frame>,
    last: &mut Option<Arc<crate::hub::VideoParams>>,
) -> Result<(), axum::Error> {
    let new = !last.as_ref().is_some_and(|p| Arc::ptr_eq(p, &f.params));
    if new {
        *last = Some(f.params.clone());
    }
    socket.send(Message::Binary(wire::encode(f, new))).await
}

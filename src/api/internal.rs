//! Node-to-node calls of a cluster, on the same port as the API: no open internal port, and no caller but
//! a node that presents the cluster key (`x-vigil-cluster-key`). The viewing node has checked its user's
//! regions and audited the view before it asks; this side serves only cameras it records itself.
//!
//! `GET /api/v1/internal/streams/{camera}/{main|sub}` (WebSocket): the stream's frames as this node's hub
//! has them, in the format of `cluster::wire`, from the cached GOP on; a slow reader skips to the next
//! keyframe like any other consumer.
//!
//! `GET /api/v1/internal/segments/{id}/skeleton` and `.../bytes?offset=&len=`: a segment whose local file
//! is on this node's disk, as `record::footage` reads it: its skeleton scanned now (within the row's
//! indexed bytes), then byte ranges of at most 8 MiB within them.

use super::error::ApiError;
use super::AppState;
use crate::cluster::{peers::MAX_READ, relay::KEY_HEADER, wire, Cluster};
use crate::hub::{Received, StreamKey, StreamKind};
use crate::record::footage::Location;
use crate::record::index::{self, SegmentRow};
use crate::record::scan::scan;
use crate::record::skeleton::Skeleton;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;

/// The cluster, when the caller presented its key.
fn authorized<'a>(s: &'a AppState, headers: &HeaderMap) -> Result<&'a Arc<Cluster>, ApiError> {
    let Some(cluster) = &s.cluster else {
        return Err(ApiError::not_found());
    };
    let presented = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
    if !presented.is_some_and(|k| cluster.key_matches(k)) {
        tracing::warn!("internal call without the cluster key; refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "node-to-node calls need the cluster key",
        ));
    }
    Ok(cluster)
}

/// A segment row whose local file is on this node's disk.
async fn local_segment(s: &AppState, cluster: &Cluster, id: i64) -> Result<SegmentRow, ApiError> {
    let row = index::get(&s.pool, id).await?;
    if row.in_bucket() || row.node.as_deref() != Some(cluster.node.as_str()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_on_this_node",
            "the segment's file is not on this node's disk",
        ));
    }
    Ok(row)
}

pub async fn segment_skeleton(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cluster = authorized(&s, &headers)?;
    let row = local_segment(&s, cluster, id).await?;
    let abs = s.cfg.data_dir.join(&row.path);
    let limit = row.bytes.max(0) as u64;
    let skel = tokio::task::spawn_blocking(move || -> Result<Bytes, String> {
        let scanned = scan(&abs, Some(limit)).map_err(|e| e.to_string())?;
        let f = std::fs::File::open(&abs).map_err(|e| e.to_string())?;
        let len = f.metadata().map_err(|e| e.to_string())?.len().min(limit);
        let skel = Skeleton::of(&f, len, &scanned).map_err(|e| e.to_string())?;
        Ok(skel.encode())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(skel.into_response())
}

#[derive(serde::Deserialize)]
pub struct ByteRange {
    offset: u64,
    len: u64,
}

pub async fn segment_bytes(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    Query(r): Query<ByteRange>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cluster = authorized(&s, &headers)?;
    let row = local_segment(&s, cluster, id).await?;
    let end = r.offset.checked_add(r.len);
    if r.len > MAX_READ || end.is_none_or(|e| e > row.bytes.max(0) as u64) {
        return Err(ApiError::bad_request(
            "the range is not within the segment's indexed bytes (8 MiB at most)",
        ));
    }
    let abs = s.cfg.data_dir.join(&row.path);
    let bytes =
        tokio::task::spawn_blocking(move || Location::File(abs).read_blocking(r.offset, r.len))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    Ok(bytes.into_response())
}

pub async fn stream(
    State(s): State<AppState>,
    Path((camera, kind)): Path<(i64, String)>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let cluster = authorized(&s, &headers)?;
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

pub(super) async fn serve(mut socket: WebSocket, hub: Arc<crate::hub::StreamHub>, camera: i64) {
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

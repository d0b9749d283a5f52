//! `GET /nodes`: the nodes sharing this database, what each records and how loaded it is
//! (docs/cluster.md). A single server has none. Cameras are listed within the caller's regions only.

use super::error::{ApiResult, Json};
use super::AppState;
use crate::auth::Principal;
use crate::cluster::store;
use crate::db::{self, ms_to_rfc3339};
use axum::extract::State;
use axum::Extension;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Serialize)]
pub struct Nodes {
    nodes: Vec<Node>,
}

#[derive(Serialize)]
pub struct Node {
    name: String,
    address: String,
    /// Heard from within the lease period.
    alive: bool,
    last_seen: String,
    started_at: String,
    draining: bool,
    capacity: i64,
    /// Cameras it records, within the caller's regions.
    cameras: Vec<i64>,
    /// Cameras it records (all of them) per unit of capacity: 1.0 is full.
    load: f64,
    /// Its leases on the cameras listed: camera, epoch, expiry.
    leases: Vec<Lease>,
    /// Its object tier's segments waiting to move, as of its last heartbeat.
    upload_backlog: Backlog,
}

#[derive(Serialize)]
pub struct Backlog {
    segments: i64,
    bytes: i64,
    /// The bucket could not be reached at its last attempt.
    alarm: bool,
}

#[derive(Serialize)]
pub struct Lease {
    camera_id: i64,
    epoch: i64,
    expires_at: String,
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Nodes>> {
    let now = db::now_ms();
    let lease_ms = s.cfg.cluster.lease_seconds as i64 * 1000;
    let regions: HashMap<i64, String> = db::cameras::list(&s.pool)
        .await?
        .into_iter()
        .map(|c| (c.id, c.region_code))
        .collect();
    let mut by_node: HashMap<String, Vec<store::LeaseRow>> = HashMap::new();
    for l in store::leases(&s.pool).await? {
        if l.expires_at >= now {
            by_node.entry(l.node.clone()).or_default().push(l);
        }
    }
    let nodes = store::nodes(&s.pool)
        .await?
        .into_iter()
        .map(|n| {
            let held = by_node.remove(&n.name).unwrap_or_default();
            let load = held.len() as f64 / n.capacity.max(1) as f64;
            let visible: Vec<store::LeaseRow> = held
                .into_iter()
                .filter(|l| regions.get(&l.camera_id).is_some_and(|r| p.scope.allows(r)))
                .collect();
            Node {
                alive: n.heartbeat_at > now - lease_ms,
                last_seen: ms_to_rfc3339(n.heartbeat_at),
                started_at: ms_to_rfc3339(n.started_at),
                draining: n.draining != 0,
                capacity: n.capacity,
                cameras: visible.iter().map(|l| l.camera_id).collect(),
                load,
                leases: visible
                    .into_iter()
                    .map(|l| Lease {
                        camera_id: l.camera_id,
                        epoch: l.epoch,
                        expires_at: ms_to_rfc3339(l.expires_at),
                    })
                    .collect(),
                upload_backlog: Backlog {
                    segments: n.backlog_segments,
                    bytes: n.backlog_bytes,
                    alarm: n.storage_alarm != 0,
                },
                name: n.name,
                address: n.address,
            }
        })
        .collect();
    Ok(Json(Nodes { nodes }))
}

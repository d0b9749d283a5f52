//! Cluster: several `vigil serve` processes on one shared database (PostgreSQL), each a node
//! (docs/cluster.md). Which node pulls and records which camera is decided by leases in the database:
//! no consensus of our own, only compare-and-set rows ([`store`]).
//!
//! Invariants:
//! - A camera is pulled and recorded only by the node whose lease on it is current; every segment row
//!   is written under the lease's epoch ([`crate::record::index::Fence`]) and refused once the epoch has
//!   moved on, so a node that was paused or cut off cannot write over its successor.
//! - A node renews its leases every third of the lease period; leases not renewed for a whole period
//!   are free to take, and the live nodes take them in shares of their capacities.
//! - A node stops a camera before it gives the lease back, and stops any camera whose lease it finds it
//!   no longer holds.

pub mod peers;
pub mod relay;
pub mod store;
pub mod wire;

use crate::auth::secret_hash;
use crate::config::ClusterConfig;
use crate::db::{cameras::Camera, now_ms, DbError, Pool};
use crate::hub::{Hub, StreamKey, StreamKind};
use crate::record::index::Fence;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::NodeRow;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What the cluster starts and stops on this node: pulling and recording a camera.
pub trait Cameras: Send + Sync + 'static {
    /// Starts pulling and recording `camera`, its rows written under `fence`.
    fn start(&self, camera: &Camera, fence: Fence);
    /// The object tier's upload backlog (segments, bytes) and whether its alarm is raised.
    fn upload_backlog(&self) -> (i64, i64, bool);
    /// Stops pulling and recording the camera (its open segment is closed).
    fn stop(&self, camera_id: i64);
}

/// This node's membership: its identity, the leases it acts on, and the task that keeps them.
pub struct Cluster {
    /// This node's name.
    pub node: String,
    /// How other nodes and consoles reach it.
    pub address: String,
    capacity: u32,
    lease: Duration,
    started_at: i64,
    pool: Pool,
    cameras: Arc<dyn Cameras>,
    /// The cameras this node runs now: the epoch each was started under, when, and its settings then.
    running: Mutex<HashMap<i64, Running>>,
    wake: Notify,
    /// Ends the lease rounds ([`Cluster::leave`]).
    stop: CancellationToken,
    /// Held through a round and by [`Cluster::leave`]: leaving never races a round that takes leases.
    round: tokio::sync::Mutex<()>,
    /// Live streams of cameras other nodes record, relayed here for viewers of this node.
    relays: relay::Relays,
    hub: Arc<Hub>,
    /// SHA-256 of the cluster key (as API tokens are kept): node-to-node calls are checked against it.
    key_hash: String,
    key: String,
}

impl Cluster {
    /// Joins the cluster as `cfg.node_name` and starts keeping its leases until [`Cluster::leave`].
    /// None when no node name is configured (a single server).
    pub async fn start(
        cfg: &ClusterConfig,
        listen: std::net::SocketAddr,
        pool: Pool,
        cameras: Arc<dyn Cameras>,
        hub: Arc<Hub>,
    ) -> Result<Option<Arc<Cluster>>, DbError> {
        let Some(node) = cfg.node_name.clone() else {
            return Ok(None);
        };
        let key = match &cfg.key {
            Some(k) => k.clone(),
            None => store::cluster_key(&pool).await?,
        };
        let cluster = Arc::new(Cluster {
            relays: relay::Relays::default(),
            hub,
            key_hash: secret_hash(&key),
            key,
            address: cfg
                .advertise
                .clone()
                .unwrap_or_else(|| format!("http://{listen}")),
            node,
            capacity: cfg.capacity.max(1),
            lease: Duration::from_secs(cfg.lease_seconds.max(3)),
            started_at: now_ms(),
            pool,
            cameras,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stop: CancellationToken::new(),
            round: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(cluster.clone().keep());
        Ok(Some(cluster))
    }

    /// How this node reads segments on the other nodes' disks.
    pub fn peers(&self) -> Arc<dyn crate::record::footage::Peers> {
        Arc::new(peers::HttpPeers::new(self.pool.clone(), self.key.clone()))
    }

    /// Whether `presented` is the cluster key (compared as digests, so in constant time).
    pub fn key_matches(&self, presented: &str) -> bool {
        secret_hash(presented) == self.key_hash
    }

    /// Relays the stream here when another node records the camera (a viewer of this node wants it).
    pub fn relay(self: &Arc<Self>, key: StreamKey) {
        if self.fence(key.camera_id).is_some() {
            return;
        }
        let source: Arc<dyn relay::Source> = self.clone();
        self.relays.ensure(key, self.hub.clone(), source);
    }

    /// The epoch this node runs the camera under, if it runs it.
    pub fn fence(&self, camera_id: i64) -> Option<Fence> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.get(&camera_id).map(|r| Fence {
            node: self.node.clone(),
            epoch: r.epoch,
            since_us: r.since_us,
        })
    }

    /// Looks at the leases now (a camera was added, changed or deleted).
    pub fn kick(&self) {
        self.wake.notify_one();
    }

    async fn keep(self: Arc<Self>) {
        let every = self.lease / 3;
        loop {
            let round = self.round.lock().await;
            if self.stop.is_cancelled() {
                break;
            }
            let done = self.tick(self.cameras.as_ref()).await;
            drop(round);
            if let Err(e) = done {
                tracing::warn!(node = %self.node, error = %e, "cluster: lease round failed");
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Leaves the cluster (the server stops): stops every camera, then gives its lease back for the
    /// other nodes to take at once rather than after the lease period.
    pub async fn leave(&self) {
        self.stop.cancel();
        self.relays.stop_all();
        let _round = self.round.lock().await;
        let running: Vec<i64> = self.take_running().into_keys().collect();
        for id in running {
            self.cameras.stop(id);
            if let Err(e) = store::release(&self.pool, id, &self.node).await {
                tracing::warn!(node = %self.node, camera = id, error = %e, "cluster: lease not given back");
            }
        }
    }

    fn take_running(&self) -> HashMap<i64, Running> {
        std::mem::take(&mut *self.running.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One round: heartbeat, renew, stop what was lost, take or give back to reach this node's share,
    /// start what was gained.
    async fn tick(&self, cameras: &dyn Cameras) -> Result<(), DbError> {
        let now = now_ms();
        let until = now + self.lease.as_millis() as i64;
        store::heartbeat(&self.pool, &self.row(now)).await?;
        store::renew(&self.pool, &self.node, until).await?;
        let mut mine: HashMap<i64, i64> = store::held(&self.pool, &self.node)
            .await?
            .into_iter()
            .collect();
        self.stop_lost(&mine, cameras);
        let all = crate::db::cameras::list(&self.pool).await?;
        let target = self.share(all.len(), now).await?;
        if mine.len() < target {
            for id in store::free(&self.pool, now).await? {
                if mine.len() >= target {
                    break;
                }
                if let Some(epoch) = store::take(&self.pool, id, &self.node, now, until).await? {
                    tracing::info!(node = %self.node, camera = id, epoch, "cluster: lease taken");
                    mine.insert(id, epoch);
                }
            }
        } else if mine.len() > target + usize::from(target > 0) {
            // Over the share by more than one (a node joined, or this one drains): give back the
            // highest ids; each is stopped before its lease is free.
            let mut ids: Vec<i64> = mine.keys().copied().collect();
            ids.sort_unstable();
            for id in ids.into_iter().rev().take(mine.len() - target) {
                self.stop_one(id, cameras);
                store::release(&self.pool, id, &self.node).await?;
                mine.remove(&id);
                tracing::info!(node = %self.node, camera = id, "cluster: lease given back");
            }
        }
        store::forget_deleted(&self.pool).await?;
        self.start_gained(&mine, &all, cameras);
        Ok(())
    }

    fn row(&self, now: i64) -> NodeRow {
        let (backlog_segments, backlog_bytes, alarm) = self.cameras.upload_backlog();
        NodeRow {
            backlog_segments,
            backlog_bytes,
            storage_alarm: i64::from(alarm),
            name: self.node.clone(),
            address: self.address.clone(),
            capacity: i64::from(self.capacity),
            started_at: self.started_at,
            heartbeat_at: now,
            draining: 0,
        }
    }

    /// This node's share of `cameras`: in proportion to its capacity among the live nodes that do not
    /// drain (rounded up, so that the shares cover every camera); none while it drains.
    async fn share(&self, cameras: usize, now: i64) -> Result<usize, DbError> {
        let alive_after = now - self.lease.as_millis() as i64;
        let nodes = store::nodes(&self.pool).await?;
        let me = nodes.iter().find(|n| n.name == self.node);
        if me.is_none_or(|n| n.draining != 0) {
            return Ok(0);
        }
        let total: i64 = nodes
            .iter()
            .filter(|n| n.heartbeat_at > alive_after && n.draining == 0)
            .map(|n| n.capacity.max(1))
            .sum();
        let mine = i64::from(self.capacity);
        let share = (cameras as i64 * mine + total.max(mine) - 1) / total.max(mine);
        Ok(share as usize)
    }

    fn stop_lost(&self, mine: &HashMap<i64, i64>, cameras: &dyn Cameras) {
        let lost: Vec<i64> = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .iter()
                .filter(|(id, r)| mine.get(id) != Some(&r.epoch))
                .map(|(id, _)| *id)
                .collect()
        };
        for id in lost {
            tracing::warn!(node = %self.node, camera = id, "cluster: lease lost; camera stopped here");
            self.stop_one(id, cameras);
        }
    }

    fn stop_one(&self, id: i64, cameras: &dyn Cameras) {
        cameras.stop(id);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    fn start_gained(&self, mine: &HashMap<i64, i64>, all: &[Camera], cameras: &dyn Cameras) {
        for cam in all {
            let Some(&epoch) = mine.get(&cam.id) else {
                continue;
            };
            // Started when gained, and again when its settings changed (a change made on another node).
            let settings = settings(cam);
            let (fence, gained) = {
                let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
                let old = running.get(&cam.id).filter(|r| r.epoch == epoch);
                if old.is_some_and(|r| r.settings == settings) {
                    continue;
                }
                let since_us = match old {
                    Some(r) => r.since_us,
                    None => crate::time::now_us(),
                };
                let gained = old.is_none();
                let r = Running {
                    epoch,
                    since_us,
                    settings,
                };
                running.insert(cam.id, r);
                let fence = Fence {
                    node: self.node.clone(),
                    epoch,
                    since_us,
                };
                (fence, gained)
            };
            if gained {
                // Frames a relay left in the hub are not this node's to record or to show as its own.
                self.relays.stop(cam.id);
                for kind in [StreamKind::Main, StreamKind::Sub] {
                    self.hub
                        .stream(StreamKey {
                            camera_id: cam.id,
                            kind,
                        })
                        .reset();
                }
            }
            cameras.start(cam, fence);
        }
    }
}

/// A camera this node runs.
struct Running {
    epoch: i64,
    /// When this node took the lease (µs): the writer indexes no earlier footage.
    since_us: i64,
    settings: String,
}

/// What running a camera depends on: a change of any of these restarts it.
fn settings(c: &Camera) -> String {
    format!(
        "{}|{:?}|{:?}|{:?}|{}|{}",
        c.main_url,
        c.sub_url,
        c.username,
        c.password.as_ref().map(|p| &p.0),
        c.transport,
        c.record
    )
}

impl relay::Source for Cluster {
    /// The stream of the node recording the camera now (it may change with a takeover).
    fn request(
        &self,
        key: StreamKey,
    ) -> futures::future::BoxFuture<'_, Option<relay::StreamRequest>> {
        Box::pin(async move {
            let camera = key.camera_id;
            let base = store::holder_address(&self.pool, camera, &self.node, now_ms())
                .await
                .map_err(|e| tracing::warn!(camera, error = %e, "relay: holder unknown"))
                .ok()
                .flatten()?;
            relay::node_request(&base, key, &self.key)
                .map_err(|e| tracing::warn!(camera, error = %e, "relay: bad node address"))
                .ok()
        })
    }
}

#[cfg(test)]
mod tests;

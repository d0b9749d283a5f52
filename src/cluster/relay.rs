//! Live video of a camera another node records: one node-to-node stream per camera and stream kind,
//! however many viewers this node has, published into this node's hub so that MSE, WebRTC and snapshots
//! work as for a camera of its own.
//!
//! Invariants: a relay runs while the stream has viewers here (it ends when none has watched for
//! [`IDLE`]); it follows the camera's lease to its new node after a takeover; it authenticates with the
//! cluster key; the frames it receives are checked ([`super::wire`]) before they reach the hub.

use super::wire;
use crate::hub::{Hub, StreamKey};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};

/// A relay with no viewer for this long stops.
pub const IDLE: Duration = Duration::from_secs(20);
/// The header that carries the cluster key on node-to-node calls.
pub const KEY_HEADER: &str = "x-vigil-cluster-key";

/// The relays running on this node.
#[derive(Default)]
pub struct Relays {
    running: Mutex<HashMap<StreamKey, tokio::task::JoinHandle<()>>>,
}

/// Where a relay reads from: the holder's address now (it may change with a takeover).
pub trait Source: Send + Sync + 'static {
    /// The base URL (`http://host:port`) of the node recording `camera_id` now, when it is another node.
    fn holder(&self, camera_id: i64) -> futures::future::BoxFuture<'_, Option<String>>;
}

impl Relays {
    /// Makes sure the stream is relayed here.
    pub fn ensure(
        &self,
        key: StreamKey,
        hub: Arc<Hub>,
        source: Arc<dyn Source>,
        cluster_key: String,
    ) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&key).is_some_and(|h| !h.is_finished()) {
            return;
        }
        let task = tokio::spawn(run(key, hub, source, cluster_key));
        running.insert(key, task);
    }

    /// Stops the relays of a camera (this node records it now).
    pub fn stop(&self, camera_id: i64) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|key, h| {
            let keep = key.camera_id != camera_id;
            if !keep {
                h.abort();
            }
            keep
        });
    }

    /// Stops every relay.
    pub fn stop_all(&self) {
        for (_, h) in self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            h.abort();
        }
    }
}

/// How long a stream has had no viewer here.
#[derive(Default)]
struct Idle(Option<Instant>);

impl Idle {
    /// Whether the stream has had no viewer for [`IDLE`], given its viewers now.
    fn over(&mut self, viewers: usize) -> bool {
        if viewers > 0 {
            self.0 = None;
            return false;
        }
        self.0.get_or_insert_with(Instant::now).elapsed() >= IDLE
    }
}

async fn run(key: StreamKey, hub: Arc<Hub>, source: Arc<dyn Source>, cluster_key: String) {
    let stream = hub.stream(key);
    let mut idle = Idle::default();
    loop {
        if idle.over(stream.consumers()) {
            tracing::debug!(camera = key.camera_id, "relay: no viewer; stopped");
            return;
        }
        match source.holder(key.camera_id).await {
            Some(base) => {
                let done = relay_once(key, &hub, &base, &cluster_key).await;
                stream.reset();
                match done {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::info!(camera = key.camera_id, node = %base, error = %e, "relay: stream ended")
                    }
                }
            }
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Reads the holder's stream into the hub until it ends (false), fails, or nobody here watches for
/// [`IDLE`] (true).
async fn relay_once(
    key: StreamKey,
    hub: &Hub,
    base: &str,
    cluster_key: &str,
) -> anyhow::Result<bool> {
    let url = format!(
        "{}/api/v1/internal/streams/{}/{}",
        base.replacen("http", "ws", 1),
        key.camera_id,
        key.kind.as_str()
    );
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert(KEY_HEADER, HeaderValue::from_str(cluster_key)?);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(req),
    )
    .await??;
    tracing::info!(camera = key.camera_id, node = %base, "relay: streaming from the recording node");
    let stream = hub.stream(key);
    let mut params = None;
    let mut idle = Idle::default();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        let msg = match msg {
            Err(_) => anyhow::bail!("no frame for 5 s"),
            Ok(None) => return Ok(false),
            Ok(Some(m)) => m?,
        };
        if let Message::Binary(b) = msg {
            stream.publish(Arc::new(wire::decode(b, &mut params)?));
        }
        if idle.over(stream.consumers()) {
            return Ok(true);
        }
    }
}

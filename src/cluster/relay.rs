//! Live video of a camera another server has: one stream per camera and stream kind, however many viewers
//! this server has, published into this server's hub so that MSE, WebRTC and snapshots work as for a
//! camera of its own. Used between the nodes of a cluster (the node that records the camera) and from a
//! province to a city over a link (`federation`), each with its own [`Source`].
//!
//! Invariants: a relay runs while the stream has viewers here (it ends when none has watched for
//! [`IDLE`]); it asks its source for the request anew at every connection (a cluster camera's lease may
//! have moved, a link's signature is only good for a minute); the frames it receives are checked
//! ([`super::wire`]) before they reach the hub.

use super::wire;
use crate::hub::{Hub, StreamKey};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};

/// A WebSocket request to open a stream with.
pub type StreamRequest = tokio_tungstenite::tungstenite::handshake::client::Request;

/// A relay with no viewer for this long stops.
pub const IDLE: Duration = Duration::from_secs(20);
/// The header that carries the cluster key on node-to-node calls.
pub const KEY_HEADER: &str = "x-vigil-cluster-key";

/// The relays running on this node.
#[derive(Default)]
pub struct Relays {
    running: Mutex<HashMap<StreamKey, tokio::task::JoinHandle<()>>>,
}

/// Where a relay reads from.
pub trait Source: Send + Sync + 'static {
    /// The request that opens the stream now (with its authentication), or None when there is nowhere to
    /// read it from at the moment.
    fn request(&self, key: StreamKey) -> futures::future::BoxFuture<'_, Option<StreamRequest>>;

    /// Whether the answer that opened the stream comes from the server meant (a link's city proves it
    /// holds the credential); nodes of one cluster need no more than their key.
    fn accept<'a>(
        &'a self,
        _request: &'a StreamRequest,
        _answer: &'a tokio_tungstenite::tungstenite::http::HeaderMap,
    ) -> futures::future::BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}

/// The request of a cluster node's stream: its internal route with the cluster key.
pub fn node_request(
    base: &str,
    key: StreamKey,
    cluster_key: &str,
) -> anyhow::Result<StreamRequest> {
    let url = format!(
        "{}/api/v1/internal/streams/{}/{}",
        base.replacen("http", "ws", 1),
        key.camera_id,
        key.kind.as_str()
    );
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert(KEY_HEADER, HeaderValue::from_str(cluster_key)?);
    Ok(req)
}

impl Relays {
    /// Makes sure the stream is relayed here.
    pub fn ensure(&self, key: StreamKey, hub: Arc<Hub>, source: Arc<dyn Source>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&key).is_some_and(|h| !h.is_finished()) {
            return;
        }
        let task = tokio::spawn(run(key, hub, source));
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

async fn run(key: StreamKey, hub: Arc<Hub>, source: Arc<dyn Source>) {
    let stream = hub.stream(key);
    let mut idle = Idle::default();
    loop {
        if idle.over(stream.consumers()) {
            tracing::debug!(camera = key.camera_id, "relay: no viewer; stopped");
            return;
        }
        match source.request(key).await {
            Some(req) => {
                let from = req
                    .uri()
                    .authority()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let done = relay_once(key, &hub, req, source.as_ref()).await;
                stream.reset();
                match done {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::info!(camera = key.camera_id, from = %from, error = %e, "relay: stream ended")
                    }
                }
            }
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Reads the source's stream into the hub until it ends (false), fails, or nobody here watches for
/// [`IDLE`] (true).
async fn relay_once(
    key: StreamKey,
    hub: &Hub,
    req: StreamRequest,
    source: &dyn Source,
) -> anyhow::Result<bool> {
    let from = req.uri().to_string();
    let (mut ws, answer) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(req.clone()),
    )
    .await??;
    if !source.accept(&req, answer.headers()).await {
        anyhow::bail!("the answer is not from the server meant");
    }
    tracing::info!(camera = key.camera_id, from = %from, "relay: streaming");
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

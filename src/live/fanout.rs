//! The registry of a live output kind (MSE fragments, RTP frames): one builder per stream and source,
//! started with its first viewer and stopped when the last one leaves.
//!
//! Invariant: viewers are counted under the registry lock, so a viewer arriving while the last one leaves
//! either joins the running builder or starts a new one, never a stopping one.

use super::{Live, TranscodeLease};
use crate::hub::{Frame, Received, StreamKey, Subscriber};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// A stream and its source: `true` for the registry's transcode of it.
pub type Key = (StreamKey, bool);

struct Entry<S> {
    shared: Arc<S>,
    viewers: usize,
    cancel: CancellationToken,
    /// The transcode this builder reads from, if any (dropped with the entry).
    _transcode: Option<TranscodeLease>,
}

/// What starting a builder gives: the state its viewers share, and the transcode it reads from.
pub struct Started<S> {
    pub shared: Arc<S>,
    pub transcode: Option<TranscodeLease>,
}

/// The builders of one output kind, by stream and source.
pub struct Fanouts<S> {
    entries: Mutex<HashMap<Key, Entry<S>>>,
}

impl<S> Default for Fanouts<S> {
    fn default() -> Self {
        Fanouts {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<S> Fanouts<S> {
    /// Counts a viewer in, starting the builder (`start`, given the token that stops it) if none runs.
    pub fn join(&self, key: Key, start: impl FnOnce(CancellationToken) -> Started<S>) -> Arc<S> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(key).or_insert_with(|| {
            let cancel = CancellationToken::new();
            let started = start(cancel.clone());
            Entry {
                shared: started.shared,
                viewers: 0,
                cancel,
                _transcode: started.transcode,
            }
        });
        entry.viewers += 1;
        entry.shared.clone()
    }

    /// Counts a viewer out; the last one stops the builder.
    fn leave(&self, key: Key) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&key) {
            e.viewers = e.viewers.saturating_sub(1);
            if e.viewers == 0 {
                e.cancel.cancel();
                map.remove(&key);
            }
        }
    }

    /// Streams with a running builder, with their viewer counts.
    pub fn streams(&self) -> Vec<(Key, usize)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, e)| (*k, e.viewers)).collect()
    }
}

/// A viewer's hold on a builder; dropping it counts the viewer out.
pub struct Lease<S: 'static> {
    live: Arc<Live>,
    key: Key,
    registry: fn(&Live) -> &Fanouts<S>,
}

impl<S> Lease<S> {
    pub fn new(live: Arc<Live>, key: Key, registry: fn(&Live) -> &Fanouts<S>) -> Lease<S> {
        Lease {
            live,
            key,
            registry,
        }
    }
}

impl<S> Drop for Lease<S> {
    fn drop(&mut self) {
        (self.registry)(&self.live).leave(self.key);
    }
}

/// Runs a builder: hands it each frame of the hub's stream until `cancel` fires or the stream is removed.
/// A builder that falls behind the hub skips to the next keyframe like any consumer (logged, as it means
/// the machine is short of CPU).
pub async fn feed(
    key: StreamKey,
    what: &'static str,
    mut sub: Subscriber,
    cancel: CancellationToken,
    mut push: impl FnMut(&Frame),
) {
    let camera = key.camera_id;
    let stream = key.kind.as_str();
    tracing::debug!(camera, stream, what, "live builder started");
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => break,
            r = sub.recv() => r,
        };
        match received {
            Received::Frame(frame) => push(&frame),
            Received::Skipped { skipped } => {
                tracing::warn!(
                    camera,
                    stream,
                    what,
                    skipped,
                    "live builder fell behind the hub"
                )
            }
            Received::Closed => break,
        }
    }
    tracing::debug!(camera, stream, what, "live builder stopped");
}

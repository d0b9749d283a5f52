//! A one-off test of a stream before it is saved: connect exactly as a camera session does, wait for the
//! first keyframe or the first failure, and stop. It runs the same session code on a private broadcast, so
//! what the test says is what the camera would do once added; it never touches the cameras being recorded.

use super::session::{run_stream, StreamSource};
use super::status::{StreamState, StreamStatus};
use crate::config::IngestConfig;
use crate::hub::{Frame, Hub, Received, StreamKey, StreamKind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a probe saw: the stream's status when it ended, and its first keyframe if one came.
pub struct Probe {
    pub status: StreamStatus,
    pub keyframe: Option<Arc<Frame>>,
    pub elapsed: Duration,
}

/// Connects to `source` and returns at the first keyframe, at the first failure, or after `timeout`.
pub async fn probe(source: StreamSource, cfg: &IngestConfig, timeout: Duration) -> Probe {
    let started = Instant::now();
    let hub = Hub::new(64);
    let stream = hub.stream(StreamKey {
        camera_id: source.camera_id,
        kind: StreamKind::Main,
    });
    let (_, mut frames) = stream.subscribe();
    let status = Arc::new(Mutex::new(StreamStatus::connecting()));
    let cancel = CancellationToken::new();
    // A refused or failed attempt ends the probe, so the backoff's length does not matter here.
    let session = tokio::spawn(run_stream(
        source,
        stream,
        status.clone(),
        cfg.clone(),
        cancel.clone(),
    ));
    let read = || status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    let keyframe = loop {
        tokio::select! {
            r = frames.recv() => match r {
                Received::Frame(f) if f.keyframe => break Some(f),
                Received::Frame(_) | Received::Skipped { .. } => {}
                Received::Closed => break None,
            },
            _ = poll.tick() => {
                let st = read().state;
                if matches!(st, StreamState::Offline | StreamState::AuthFailed | StreamState::Unsupported) {
                    break None;
                }
            }
            _ = tokio::time::sleep_until(deadline) => break None,
        }
    };
    cancel.cancel();
    let _ = session.await;
    let mut status = read();
    match (&keyframe, status.state) {
        (Some(_), _) => status.state = StreamState::Online,
        (None, StreamState::Online | StreamState::Connecting) => {
            status.state = StreamState::Offline;
            status.error = Some(format!("no picture within {} s", timeout.as_secs()));
        }
        _ => {}
    }
    Probe {
        status,
        keyframe,
        elapsed: started.elapsed(),
    }
}

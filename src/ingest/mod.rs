//! Ingest: one retina session per camera stream (main, and sub when the camera has one), kept alive for as
//! long as the camera exists, feeding the hub.
//!
//! The [`Supervisor`] owns the tasks. The API calls [`Supervisor::apply`] after every create or change and
//! [`Supervisor::remove`] after a delete, so sessions start, restart or stop at once without a server
//! restart. A change that does not touch a stream's source leaves that stream's session running.

pub mod annexb;
mod audio;
pub mod clock;
mod probe;
mod publish;
pub mod reorder;
mod session;
pub mod status;

pub use probe::Probe;
pub use publish::{Incoming, IncomingAudio, Publisher};
pub use reorder::DecodeTimes;
pub use session::RunError;
pub use session::StreamSource;
pub use session::{open_stream, play_once, Opened};
pub use status::{StreamState, StreamStatus};

use crate::config::IngestConfig;
use crate::hub::{Hub, StreamHub, StreamKey, StreamKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the supervisor needs to know of a camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraSpec {
    pub id: i64,
    pub main: StreamSource,
    pub sub: Option<StreamSource>,
}

/// Pulls streams whose URL scheme is not RTSP (e.g. `gb28181://DEVICE/CHANNEL`): a part above ingest
/// registers itself for its scheme with [`Supervisor::register_scheme`], so that ingest needs to know
/// nothing of the protocol. The future runs until `cancel` fires, and keeps `status` as an RTSP session
/// does.
pub trait SchemeRunner: Send + Sync {
    fn run(
        &self,
        source: StreamSource,
        hub: Arc<StreamHub>,
        status: Arc<Mutex<StreamStatus>>,
        cancel: CancellationToken,
    ) -> futures::future::BoxFuture<'static, ()>;
}

struct Running {
    source: StreamSource,
    status: Arc<Mutex<StreamStatus>>,
    cancel: CancellationToken,
}

pub struct Supervisor {
    hub: Arc<Hub>,
    cfg: IngestConfig,
    streams: Mutex<HashMap<StreamKey, Running>>,
    schemes: Mutex<HashMap<&'static str, Arc<dyn SchemeRunner>>>,
}

impl Supervisor {
    pub fn new(hub: Arc<Hub>, cfg: IngestConfig) -> Supervisor {
        Supervisor {
            hub,
            cfg,
            streams: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
        }
    }

    /// Streams whose URL has this scheme are run by `runner` from now on.
    pub fn register_scheme(&self, scheme: &'static str, runner: Arc<dyn SchemeRunner>) {
        let mut schemes = self.schemes.lock().unwrap_or_else(|e| e.into_inner());
        schemes.insert(scheme, runner);
    }

    fn runner(&self, scheme: &str) -> Option<Arc<dyn SchemeRunner>> {
        let schemes = self.schemes.lock().unwrap_or_else(|e| e.into_inner());
        schemes.get(scheme).cloned()
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Starts the camera's sessions, or restarts those whose source changed. Must run inside tokio.
    pub fn apply(&self, spec: &CameraSpec) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, source) in [
            (StreamKind::Main, Some(&spec.main)),
            (StreamKind::Sub, spec.sub.as_ref()),
        ] {
            let key = StreamKey {
                camera_id: spec.id,
                kind,
            };
            match (streams.get(&key), source) {
                (Some(running), Some(src)) if running.source == *src => continue,
                (Some(_), _) => {
                    if let Some(old) = streams.remove(&key) {
                        old.cancel.cancel();
                    }
                }
                (None, None) => continue,
                (None, Some(_)) => {}
            }
            let Some(src) = source else { continue };
            let status = Arc::new(Mutex::new(StreamStatus::connecting()));
            let cancel = CancellationToken::new();
            let span = tracing::info_span!("ingest", camera = spec.id, stream = kind.as_str());
            let hub = self.hub.stream(key);
            match self.runner(src.url.scheme()) {
                Some(runner) => {
                    let run = runner.run(src.clone(), hub, status.clone(), cancel.clone());
                    tokio::spawn(run.instrument(span));
                }
                None => {
                    // The camera's audio comes with its main stream only (sub streams repeat it).
                    let mut cfg = self.cfg.clone();
                    cfg.audio &= kind == StreamKind::Main;
                    let run =
                        session::run_stream(src.clone(), hub, status.clone(), cfg, cancel.clone());
                    tokio::spawn(run.instrument(span));
                }
            }
            streams.insert(
                key,
                Running {
                    source: src.clone(),
                    status,
                    cancel,
                },
            );
        }
    }

    /// Stops the camera's sessions and closes its broadcasts.
    pub fn remove(&self, camera_id: i64) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.retain(|key, running| {
            if key.camera_id == camera_id {
                running.cancel.cancel();
                false
            } else {
                true
            }
        });
        self.hub.remove_camera(camera_id);
    }

    /// Tests a stream once without adding it (see [`probe`]).
    pub async fn probe(&self, source: StreamSource, timeout: std::time::Duration) -> Probe {
        probe::probe(source, &self.cfg, timeout).await
    }

    pub fn status(&self, key: StreamKey) -> Option<StreamStatus> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams
            .get(&key)
            .map(|r| r.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// The state of a camera's main stream (what lists and health pages show of a camera); `Offline`
    /// when it is not ingested.
    pub fn main_state(&self, camera_id: i64) -> StreamState {
        let key = StreamKey {
            camera_id,
            kind: crate::hub::StreamKind::Main,
        };
        self.status(key).map_or(StreamState::Offline, |st| st.state)
    }

    /// Every stream's status, for metrics and health pages.
    pub fn all_statuses(&self) -> Vec<(StreamKey, StreamStatus)> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = streams
            .iter()
            .map(|(k, r)| {
                (
                    *k,
                    r.status.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                )
            })
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// Stops every session (server shutdown).
    pub fn shutdown(&self) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        for (_, running) in streams.drain() {
            running.cancel.cancel();
        }
    }
}

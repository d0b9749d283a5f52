//! Live view: per-stream fMP4 fragments for MSE over WebSocket (and RTP packets for WebRTC), built once per
//! stream and fanned out to every viewer.
//!
//! Live depends on the hub and media, never the other way round.
//!
//! Invariants:
//! - One builder task per stream and output kind. It starts with the stream's first viewer and stops when
//!   the last one leaves ([`MseLease`] counts viewers under the registry lock, so a viewer arriving while
//!   the last one leaves either joins the running task or starts a new one, never a stopping one).
//! - A builder subscribes to the hub like any consumer: the hub, the recorder and other consumers never
//!   wait for it, and it never waits for a viewer (see [`mse`]).
//! - A new viewer starts from the builder's cache of the current GOP, so it has a decodable picture at
//!   once, wherever the camera is in its GOP.

pub mod mse;
pub mod rtc;
pub mod rtp;
pub mod stats;
pub mod transcode;
pub mod vui;
pub mod ws;

use crate::config::LiveConfig;
use crate::hub::{Hub, StreamKey};
use mse::MseShared;
use rtp::RtpShared;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Unsent bytes a connection's kernel buffer may hold before a write waits (`TCP_NOTSENT_LOWAT`).
pub const UNSENT_LIMIT: i32 = 128 * 1024;

/// Per-connection socket options for live latency, applied to every accepted HTTP connection:
/// `TCP_NODELAY` (a small P-frame fragment must not wait for Nagle) and `TCP_NOTSENT_LOWAT`, which bounds
/// what the kernel queues for a slow viewer, so that backpressure reaches the live ring (and the viewer
/// skips to a keyframe) instead of seconds of video piling up unsent in the kernel. It does not limit
/// throughput (bytes in flight are not counted), so downloads are unaffected.
pub fn tune_socket(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let v: libc::c_int = UNSENT_LIMIT;
        // SAFETY: a valid socket descriptor owned by `tcp`, and a pointer to a live c_int with its size.
        let r = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_NOTSENT_LOWAT not set");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("message not understood: {0}")]
    BadMessage(String),
    #[error("this browser cannot play {codec} and no transcode is available for it")]
    Unsupported { codec: String },
    #[error("the stream ended")]
    Ended,
    #[error("WebRTC: {0}")]
    Rtc(String),
}

struct MseEntry {
    shared: Arc<MseShared>,
    viewers: usize,
    cancel: CancellationToken,
    /// The transcode this builder reads from, if any (dropped with the entry).
    _transcode: Option<TranscodeLease>,
}

struct TranscodeEntry {
    users: usize,
    cancel: CancellationToken,
}

/// A builder's hold on a transcode; the last one dropped stops it.
pub struct TranscodeLease {
    live: Arc<Live>,
    key: StreamKey,
}

impl Drop for TranscodeLease {
    fn drop(&mut self) {
        let mut map = self
            .live
            .transcoders
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&self.key) {
            e.users = e.users.saturating_sub(1);
            if e.users == 0 {
                e.cancel.cancel();
                map.remove(&self.key);
            }
        }
    }
}

struct RtpEntry {
    shared: Arc<RtpShared>,
    viewers: usize,
    cancel: CancellationToken,
    _transcode: Option<TranscodeLease>,
}

/// Every live stream being watched, by stream.
pub struct Live {
    hub: Arc<Hub>,
    cfg: LiveConfig,
    /// MSE builders by stream and source (`true`: the H.264 transcode of an H.265 stream).
    mse: Mutex<HashMap<(StreamKey, bool), MseEntry>>,
    /// H.264 transcodes of H.265 streams, by the same stream keys (see [`transcode`]).
    transcoded: Arc<Hub>,
    /// Running transcodes by their output stream key.
    transcoders: Mutex<HashMap<StreamKey, TranscodeEntry>>,
    rtp: Mutex<HashMap<(StreamKey, bool), RtpEntry>>,
    /// WHEP sessions by resource id: dropping the sender ends the session.
    whep: Mutex<HashMap<String, tokio::sync::mpsc::Sender<rtc::Control>>>,
    pub stats: stats::Stats,
}

/// A viewer's hold on a stream's MSE builder; dropping it may stop the builder.
pub struct MseLease {
    live: Arc<Live>,
    key: (StreamKey, bool),
}

impl Live {
    pub fn new(hub: Arc<Hub>, cfg: LiveConfig) -> Arc<Live> {
        Arc::new(Live {
            hub,
            cfg,
            mse: Mutex::new(HashMap::new()),
            transcoded: Arc::new(Hub::new(256)),
            transcoders: Mutex::new(HashMap::new()),
            rtp: Mutex::new(HashMap::new()),
            whep: Mutex::new(HashMap::new()),
            stats: stats::Stats::default(),
        })
    }

    pub fn config(&self) -> &LiveConfig {
        &self.cfg
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Holds the transcode whose output is `out` in the registry's own hub, starting it if needed: for a
    /// sub stream, the main stream scaled to `sub_width`; for a main stream, its H.264 (of H.265).
    fn transcode_lease(self: &Arc<Self>, out: StreamKey) -> TranscodeLease {
        let mut map = self.transcoders.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(out).or_insert_with(|| {
            let cancel = CancellationToken::new();
            let (source_key, target) = match out.kind {
                crate::hub::StreamKind::Sub => (
                    StreamKey {
                        camera_id: out.camera_id,
                        kind: crate::hub::StreamKind::Main,
                    },
                    transcode::Target::Scaled {
                        width: self.cfg.sub_width,
                    },
                ),
                crate::hub::StreamKind::Main => (out, transcode::Target::H264),
            };
            let (source, hub, c) = (self.hub.clone(), self.transcoded.clone(), cancel.clone());
            hub.stream(out).reset();
            tokio::spawn(async move {
                let r = transcode::run(source_key, out, target, source, hub.clone(), c).await;
                if let Err(e) = r {
                    tracing::warn!(camera = out.camera_id, error = %e, "live transcode failed");
                }
                hub.stream(out).reset();
            });
            TranscodeEntry { users: 0, cancel }
        });
        entry.users += 1;
        TranscodeLease {
            live: self.clone(),
            key: out,
        }
    }

    /// Joins the stream's MSE fan-out, starting its builder if this is the first viewer. With
    /// `transcoded`, the fan-out of the stream's H.264 transcode, started with its first viewer.
    pub fn join_mse(self: &Arc<Self>, key: StreamKey, transcoded: bool) -> (MseLease, mse::Start) {
        let mut map = self.mse.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry((key, transcoded)).or_insert_with(|| {
            let shared = Arc::new(MseShared::new(self.cfg.viewer_queue));
            let cancel = CancellationToken::new();
            let transcode = transcoded.then(|| self.transcode_lease(key));
            let hub = if transcoded {
                &self.transcoded
            } else {
                &self.hub
            };
            let (gop, sub) = hub.stream(key).subscribe();
            let builder = mse::Builder::new(&shared, &gop, self.cfg.rewrite_vui);
            tokio::spawn(mse::run(key, builder, sub, shared.clone(), cancel.clone()));
            MseEntry {
                shared,
                viewers: 0,
                cancel,
                _transcode: transcode,
            }
        });
        entry.viewers += 1;
        let mut start = entry.shared.join();
        start.shared = Some(entry.shared.clone());
        self.stats.mse_viewers.fetch_add(1, Relaxed);
        (
            MseLease {
                live: self.clone(),
                key: (key, transcoded),
            },
            start,
        )
    }

    /// Joins the stream's RTP fan-out, starting its packetizer if this is the first WebRTC viewer.
    pub fn join_rtp(
        self: &Arc<Self>,
        key: StreamKey,
        transcoded: bool,
    ) -> (RtpLease, Vec<rtp::Item>, rtp::RtpViewer) {
        let mut map = self.rtp.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry((key, transcoded)).or_insert_with(|| {
            let shared = Arc::new(RtpShared::new(self.cfg.viewer_queue));
            let cancel = CancellationToken::new();
            let transcode = transcoded.then(|| self.transcode_lease(key));
            let hub = if transcoded {
                &self.transcoded
            } else {
                &self.hub
            };
            let (gop, sub) = hub.stream(key).subscribe();
            let builder = rtp::Builder::new(&shared, &gop, self.cfg.rewrite_vui);
            tokio::spawn(rtp::run(key, builder, sub, shared.clone(), cancel.clone()));
            RtpEntry {
                shared,
                viewers: 0,
                cancel,
                _transcode: transcode,
            }
        });
        entry.viewers += 1;
        let (gop, viewer) = entry.shared.join();
        (
            RtpLease {
                live: self.clone(),
                key: (key, transcoded),
            },
            gop,
            viewer,
        )
    }

    /// Starts a WHEP session from an SDP offer: the answer and the session's resource id.
    pub async fn whep(
        self: &Arc<Self>,
        key: StreamKey,
        transcoded: bool,
        offer: &str,
        user: String,
    ) -> Result<(String, String), LiveError> {
        let (answer, ctl) = rtc::accept(self, key, transcoded, offer, user).await?;
        let id = format!("{:032x}", rand::random::<u128>());
        let mut map = self.whep.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, c| !c.is_closed());
        map.insert(id.clone(), ctl);
        Ok((answer, id))
    }

    /// Whether a WHEP session is still running.
    pub fn whep_alive(&self, id: &str) -> bool {
        let map = self.whep.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).is_some_and(|c| !c.is_closed())
    }

    /// Ends a WHEP session; false when there is none by that id.
    pub fn whep_delete(&self, id: &str) -> bool {
        let mut map = self.whep.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id).is_some()
    }

    /// Streams with a running MSE builder, with their viewer counts.
    pub fn mse_streams(&self) -> Vec<(StreamKey, usize)> {
        let map = self.mse.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, e)| (k.0, e.viewers)).collect()
    }
}

/// A WebRTC viewer's hold on a stream's RTP packetizer.
pub struct RtpLease {
    live: Arc<Live>,
    key: (StreamKey, bool),
}

impl Drop for RtpLease {
    fn drop(&mut self) {
        let mut map = self.live.rtp.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&self.key) {
            e.viewers = e.viewers.saturating_sub(1);
            if e.viewers == 0 {
                e.cancel.cancel();
                map.remove(&self.key);
            }
        }
    }
}

impl Drop for MseLease {
    fn drop(&mut self) {
        self.live.stats.mse_viewers.fetch_sub(1, Relaxed);
        let mut map = self.live.mse.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&self.key) {
            e.viewers = e.viewers.saturating_sub(1);
            if e.viewers == 0 {
                e.cancel.cancel();
                map.remove(&self.key);
            }
        }
    }
}

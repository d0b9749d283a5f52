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

pub mod fanout;
pub mod mse;
pub mod opus;
pub mod replay;
pub mod rtc;
mod rtc_audio;
pub mod rtp;
#[allow(unsafe_code)] // one setsockopt; see the module's doc
pub mod socket;
pub mod stats;
pub mod transcode;
pub mod udp;
pub mod vui;
pub mod ws;

use crate::config::LiveConfig;
use crate::hub::{Hub, StreamKey};
use fanout::{Fanouts, Lease, Started};
use mse::MseShared;
use rtp::RtpShared;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// A running transcode (its output goes to the registry's own hub).
pub struct Transcode;

/// A builder's hold on a transcode; the last one dropped stops it.
pub type TranscodeLease = Lease<Transcode>;
/// A viewer's hold on a stream's MSE builder; dropping it may stop the builder.
pub type MseLease = Lease<MseShared>;
/// A WebRTC viewer's hold on a stream's RTP packetizer.
pub type RtpLease = Lease<RtpShared>;
/// A WebRTC listener's hold on a camera's Opus transcode.
pub type OpusLease = Lease<opus::OpusShared>;

/// Every live stream being watched, by stream.
pub struct Live {
    hub: Arc<Hub>,
    cfg: LiveConfig,
    /// MSE builders by stream and source (`true`: the H.264 transcode of an H.265 stream).
    mse: Fanouts<MseShared>,
    /// H.264 transcodes of H.265 streams and scaled sub streams, by their output keys (see [`transcode`]).
    transcoded: Arc<Hub>,
    /// Running transcodes by their output stream key (the source flag is always `true`).
    transcoders: Fanouts<Transcode>,
    rtp: Fanouts<RtpShared>,
    /// Opus transcodes of cameras' audio, by the camera's main stream.
    opus: Fanouts<opus::OpusShared>,
    /// WHEP sessions by resource id: dropping the sender ends the session.
    whep: Mutex<HashMap<String, tokio::sync::mpsc::Sender<rtc::Control>>>,
    pub stats: stats::Stats,
}

impl Live {
    pub fn new(hub: Arc<Hub>, cfg: LiveConfig) -> Arc<Live> {
        Arc::new(Live {
            hub,
            cfg,
            mse: Fanouts::default(),
            transcoded: Arc::new(Hub::new(256)),
            transcoders: Fanouts::default(),
            rtp: Fanouts::default(),
            opus: Fanouts::default(),
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
        self.transcoders.join((out, true), |cancel| {
            let (source_key, target) = self.transcode_source(out);
            let (source, hub) = (self.hub.clone(), self.transcoded.clone());
            hub.stream(out).reset();
            tokio::spawn(async move {
                let r = transcode::run(source_key, out, target, source, hub.clone(), cancel).await;
                if let Err(e) = r {
                    tracing::warn!(camera = out.camera_id, error = %e, "live transcode failed");
                }
                hub.stream(out).reset();
            });
            Started {
                shared: Arc::new(Transcode),
                transcode: None,
            }
        });
        Lease::new(self.clone(), (out, true), |l| &l.transcoders)
    }

    /// A transcode's source stream and what it makes: a sub stream is the main stream scaled to
    /// `sub_width`; a main stream's transcode is its H.264 (of H.265).
    fn transcode_source(&self, out: StreamKey) -> (StreamKey, transcode::Target) {
        match out.kind {
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
        }
    }

    /// The hub a builder reads: the cameras' own, or the registry's transcodes (started for it).
    fn source(
        self: &Arc<Self>,
        key: StreamKey,
        transcoded: bool,
    ) -> (&Arc<Hub>, Option<TranscodeLease>) {
        if transcoded {
            (&self.transcoded, Some(self.transcode_lease(key)))
        } else {
            (&self.hub, None)
        }
    }

    /// Joins the stream's MSE fan-out, starting its builder if this is the first viewer. With
    /// `transcoded`, the fan-out of the stream's H.264 transcode, started with its first viewer.
    pub fn join_mse(self: &Arc<Self>, key: StreamKey, transcoded: bool) -> (MseLease, mse::Start) {
        let shared = self.mse.join((key, transcoded), |cancel| {
            let shared = Arc::new(MseShared::new(self.cfg.viewer_queue));
            let (hub, transcode) = self.source(key, transcoded);
            let stream = hub.stream(key);
            // The camera's sound comes with its own stream, not with a transcode of it.
            let (gop, sub) = if transcoded {
                stream.subscribe()
            } else {
                stream.subscribe_av()
            };
            let sound = (!transcoded).then_some(stream);
            let builder = mse::Builder::new(&shared, &gop, self.cfg.rewrite_vui, sound);
            tokio::spawn(mse::run(key, builder, sub, shared.clone(), cancel));
            Started { shared, transcode }
        });
        let lease = Lease::new(self.clone(), (key, transcoded), |l| &l.mse);
        (lease, shared.join())
    }

    /// Joins the camera's Opus transcode (starting it for the first listener), when the camera sends
    /// audio that is taken.
    pub fn join_opus(self: &Arc<Self>, camera_id: i64) -> Option<(OpusLease, opus::OpusListener)> {
        let key = StreamKey::main(camera_id);
        let stream = self.hub.get(key)?;
        stream.audio()?;
        let shared = self.opus.join((key, false), |cancel| {
            let shared = Arc::new(opus::OpusShared::new());
            let task = opus::run(stream, shared.clone(), cancel);
            tokio::spawn(async move {
                if let Err(e) = task.await {
                    tracing::warn!(camera = camera_id, error = %e, "audio transcode failed");
                }
            });
            Started {
                shared,
                transcode: None,
            }
        });
        let lease = Lease::new(self.clone(), (key, false), |l| &l.opus);
        Some((lease, shared.join()))
    }

    /// Joins the stream's RTP fan-out, starting its packetizer if this is the first WebRTC viewer.
    pub fn join_rtp(
        self: &Arc<Self>,
        key: StreamKey,
        transcoded: bool,
    ) -> (RtpLease, Vec<rtp::Item>, rtp::RtpViewer) {
        let shared = self.rtp.join((key, transcoded), |cancel| {
            let shared = Arc::new(RtpShared::new(self.cfg.viewer_queue));
            let (hub, transcode) = self.source(key, transcoded);
            let (gop, sub) = hub.stream(key).subscribe();
            let builder = rtp::Builder::new(&shared, &gop, self.cfg.rewrite_vui);
            tokio::spawn(rtp::run(key, builder, sub, shared.clone(), cancel));
            Started { shared, transcode }
        });
        let (gop, viewer) = shared.join();
        let lease = Lease::new(self.clone(), (key, transcoded), |l| &l.rtp);
        (lease, gop, viewer)
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
        self.mse
            .streams()
            .into_iter()
            .map(|((k, _), n)| (k, n))
            .collect()
    }

    /// The live path's measurements, with the MSE viewers counted now.
    pub fn stats_snapshot(&self) -> stats::Snapshot {
        let mut snap = self.stats.snapshot();
        snap.mse_viewers = self.mse.streams().iter().map(|(_, n)| *n as u64).sum();
        snap
    }
}

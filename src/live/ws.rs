//! The live WebSocket protocol of the v1 contract, on an upgraded socket (the HTTP side, access and the
//! camera's region are checked in `api` before the upgrade).
//!
//! Client to server (JSON text): `{"type":"mse","codecs":[...]}` starts MSE with the codecs the browser
//! accepts; `{"type":"webrtc/offer","sdp"}` and `{"type":"webrtc/candidate","candidate"}` start WebRTC.
//! Server to client: `{"type":"mse","mime"}`, then one binary init segment, then binary fragments
//! (`moof`+`mdat`, one frame each); `{"type":"mse","mime"}` + init again when the camera changes its
//! parameters; `{"type":"skip","skipped":N}` before the keyframe a slow viewer resumes at;
//! `{"type":"webrtc/answer","sdp","audio"}` (`audio`: the camera's sound comes on the offer's audio
//! track); `{"type":"error","message"}`.
//!
//! Invariants:
//! - One writer task owns the socket's sending half; the reading half only forwards parsed messages to
//!   it. A send that stays blocked for `send_timeout_ms` ends the connection, so a viewer that never
//!   reads holds at most one fragment and the socket's buffers.
//! - The first binary message after `{"type":"mse"}` is the init segment, the next a keyframe fragment.

use super::mse::{Frag, Init, MseViewer};
use super::{rtc, Live, LiveError, MseLease};
use crate::hub::{Received, StreamKey};
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    #[serde(rename = "mse")]
    Mse {
        #[serde(default)]
        codecs: Vec<String>,
    },
    #[serde(rename = "webrtc/offer")]
    WebrtcOffer { sdp: String },
    #[serde(rename = "webrtc/candidate")]
    WebrtcCandidate {
        #[serde(default)]
        candidate: Option<String>,
    },
}

/// Who is watching what, for logs.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub key: StreamKey,
    pub user: String,
    /// A sub stream the camera does not have: served from the registry's scaled transcode.
    pub scaled: bool,
}

/// Whether the browser said it can play this codec. An empty list means "not said": try anyway.
pub fn accepts(codecs: &[String], init: &Init) -> bool {
    if codecs.is_empty() {
        return true;
    }
    let prefixes: &[&str] = if init.h265 {
        &["hvc1", "hev1"]
    } else {
        &["avc1", "avc3"]
    };
    codecs.iter().any(|c| {
        prefixes
            .iter()
            .any(|p| c.to_ascii_lowercase().starts_with(p))
    })
}

/// The sending half of a viewer's socket, with the live statistics it counts into.
pub(super) struct Conn {
    sink: futures::stream::SplitSink<WebSocket, Message>,
    timeout: Duration,
    live: Arc<Live>,
}

impl Conn {
    pub(super) fn new(
        sink: futures::stream::SplitSink<WebSocket, Message>,
        live: Arc<Live>,
    ) -> Conn {
        Conn {
            sink,
            timeout: Duration::from_millis(live.config().send_timeout_ms.max(100)),
            live,
        }
    }

    pub(super) async fn send(&mut self, m: Message) -> Result<(), ()> {
        match tokio::time::timeout(self.timeout, self.sink.send(m)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    pub(super) async fn text(&mut self, v: serde_json::Value) -> Result<(), ()> {
        self.send(Message::Text(Utf8Bytes::from(v.to_string())))
            .await
    }

    pub(super) async fn error(&mut self, e: &LiveError) -> Result<(), ()> {
        self.text(json!({"type": "error", "message": e.to_string()}))
            .await
    }

    pub(super) async fn binary(&mut self, b: Bytes) -> Result<(), ()> {
        self.send(Message::Binary(b)).await
    }

    pub(super) async fn init(&mut self, init: &Init) -> Result<(), ()> {
        self.text(json!({"type": "mse", "mime": &*init.mime, "codec": &*init.codec}))
            .await?;
        self.binary(init.data.clone()).await
    }

    pub(super) async fn fragment(&mut self, f: &Frag, live: bool) -> Result<(), ()> {
        self.binary(f.data.clone()).await?;
        self.live.stats.fragments_sent.fetch_add(1, Relaxed);
        let bytes = f.data.len() as u64;
        self.live.stats.bytes_sent.fetch_add(bytes, Relaxed);
        if live {
            self.live.stats.record(f.received.elapsed());
        }
        Ok(())
    }
}

/// What the socket loop does after a message or an item.
enum Flow {
    Go,
    Stop,
}

/// An MSE session on the socket.
struct MseSession {
    _lease: MseLease,
    viewer: MseViewer,
    key: StreamKey,
    codecs: Vec<String>,
    /// Fragments skipped since the last one sent (told to the viewer before the next).
    skipped: u64,
    /// The init segment last sent; fragments of another wait for a keyframe and go after it.
    sent_init: Option<Arc<Init>>,
    /// Watching the H.264 transcode of an H.265 stream (or a scaled sub stream).
    transcoded: bool,
}

impl MseSession {
    /// Joins a stream's MSE fan-out (or its transcode's) and sends its cached GOP.
    async fn start(
        live: &Arc<Live>,
        conn: &mut Conn,
        key: StreamKey,
        codecs: Vec<String>,
        transcoded: bool,
    ) -> Result<(MseSession, Flow), ()> {
        let (lease, start) = live.join_mse(key, transcoded);
        let mut session = MseSession {
            _lease: lease,
            viewer: start.viewer,
            key,
            codecs,
            skipped: 0,
            sent_init: None,
            transcoded,
        };
        for f in &start.gop {
            if let Flow::Stop = session.on_frag(live, conn, f, false).await? {
                return Ok((session, Flow::Stop));
            }
        }
        Ok((session, Flow::Go))
    }

    async fn on_next(
        &mut self,
        live: &Arc<Live>,
        conn: &mut Conn,
        next: Received<Frag>,
    ) -> Result<Flow, ()> {
        match next {
            Received::Closed => {
                let _ = conn.error(&LiveError::Ended).await;
                Ok(Flow::Stop)
            }
            Received::Skipped { skipped } => {
                self.skipped += skipped;
                live.stats.skips.fetch_add(1, Relaxed);
                let (camera, stream) = (self.key.camera_id, self.key.kind.as_str());
                tracing::debug!(
                    camera,
                    stream,
                    skipped,
                    "slow live viewer skips to the next keyframe"
                );
                Ok(Flow::Go)
            }
            Received::Frame(f) => self.on_frag(live, conn, &f, true).await,
        }
    }

    /// Sends a fragment, after its init segment when that is new. An H.265 stream for a browser that
    /// plays only H.264 moves the session to the stream's transcode.
    async fn on_frag(
        &mut self,
        live: &Arc<Live>,
        conn: &mut Conn,
        f: &Frag,
        is_live: bool,
    ) -> Result<Flow, ()> {
        let new_init = !self
            .sent_init
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &f.init));
        if new_init {
            if !f.keyframe {
                return Ok(Flow::Go); // a decoder starts at a keyframe with its parameters
            }
            if !self.transcoded && wants_transcode(&self.codecs, &f.init) {
                let codecs = std::mem::take(&mut self.codecs);
                let (session, flow) =
                    Box::pin(Self::start(live, conn, self.key, codecs, true)).await?;
                *self = session;
                return Ok(flow);
            }
            if !accepts(&self.codecs, &f.init) {
                conn.error(&LiveError::Unsupported {
                    codec: f.init.codec.to_string(),
                })
                .await?;
                return Ok(Flow::Stop);
            }
            conn.init(&f.init).await?;
            self.sent_init = Some(f.init.clone());
        }
        if self.skipped > 0 {
            let skipped = std::mem::take(&mut self.skipped);
            conn.text(json!({"type": "skip", "skipped": skipped, "reason": "slow"}))
                .await?;
        }
        conn.fragment(f, is_live).await?;
        Ok(Flow::Go)
    }
}

/// An H.265 stream for a browser that plays H.264 but not H.265: it gets the transcode.
fn wants_transcode(codecs: &[String], init: &Init) -> bool {
    init.h265
        && !accepts(codecs, init)
        && codecs
            .iter()
            .any(|c| c.to_ascii_lowercase().starts_with("avc1"))
}

/// Reads the client's messages and forwards them parsed; the socket loop owns the sending half.
pub(super) fn spawn_reader<M: serde::de::DeserializeOwned + Send + 'static>(
    mut source: futures::stream::SplitStream<WebSocket>,
    ctl_tx: mpsc::Sender<Result<M, LiveError>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            let parsed = match msg {
                Message::Text(t) => serde_json::from_str::<M>(t.as_str())
                    .map_err(|e| LiveError::BadMessage(e.to_string())),
                Message::Binary(_) => Err(LiveError::BadMessage(
                    "binary messages are not expected from clients".into(),
                )),
                Message::Close(_) => break,
                _ => continue,
            };
            if ctl_tx.send(parsed).await.is_err() {
                break;
            }
        }
    })
}

/// One socket's sessions: MSE, WebRTC, or both.
struct Socket {
    live: Arc<Live>,
    viewer: Viewer,
    conn: Conn,
    mse: Option<MseSession>,
    rtc: Option<mpsc::Sender<rtc::Control>>,
}

impl Socket {
    async fn on_message(&mut self, msg: Result<ClientMessage, LiveError>) -> Result<Flow, ()> {
        match msg {
            Err(e) => self.conn.error(&e).await?,
            Ok(ClientMessage::Mse { codecs }) => {
                if self.mse.is_some() {
                    let e = LiveError::BadMessage("MSE already started".into());
                    self.conn.error(&e).await?;
                    return Ok(Flow::Go);
                }
                let (key, scaled) = (self.viewer.key, self.viewer.scaled);
                let (session, flow) =
                    MseSession::start(&self.live, &mut self.conn, key, codecs, scaled).await?;
                self.mse = Some(session);
                return Ok(flow);
            }
            Ok(ClientMessage::WebrtcOffer { sdp }) => {
                let v = &self.viewer;
                match rtc::accept(&self.live, v.key, v.scaled, &sdp, v.user.clone()).await {
                    Ok((answer, ctl)) => {
                        // A new offer replaces the previous session (dropping its handle ends it).
                        self.rtc = Some(ctl);
                        // Whether the camera's sound will come on the audio track (if offered).
                        let audio = self
                            .live
                            .hub()
                            .get(crate::hub::StreamKey::main(v.key.camera_id))
                            .is_some_and(|s| s.audio().is_some());
                        self.conn
                            .text(json!({"type": "webrtc/answer", "sdp": answer, "audio": audio}))
                            .await?;
                    }
                    Err(e) => self.conn.error(&e).await?,
                }
            }
            Ok(ClientMessage::WebrtcCandidate { candidate }) => {
                if let (Some(ctl), Some(c)) = (&self.rtc, candidate) {
                    if !c.is_empty() {
                        let _ = ctl.try_send(rtc::Control::RemoteCandidate(c));
                    }
                }
            }
        }
        Ok(Flow::Go)
    }

    /// The server ended the view (the caller's rights ended): the viewer is told why.
    async fn end(&mut self, why: &'static str) {
        let v = &self.viewer;
        let (camera, stream) = (v.key.camera_id, v.key.kind.as_str());
        tracing::info!(camera, stream, user = %v.user, reason = why, "live view ended by the server");
        let _ = self
            .conn
            .text(json!({"type": "error", "code": "ended", "message": why}))
            .await;
        let frame = CloseFrame {
            code: close_code::POLICY,
            reason: Utf8Bytes::from(why),
        };
        let _ = self.conn.send(Message::Close(Some(frame))).await;
    }
}

/// Serves one upgraded live socket until the client leaves, the connection fails, or `end` resolves
/// (the caller's rights ended: the viewer is told why, and the socket closes).
pub async fn serve(
    socket: WebSocket,
    live: Arc<Live>,
    viewer: Viewer,
    end: impl std::future::Future<Output = &'static str>,
) {
    tokio::pin!(end);
    let (camera, stream) = (viewer.key.camera_id, viewer.key.kind.as_str());
    let (sink, source) = socket.split();
    let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
    let reader = spawn_reader(source, ctl_tx);
    tracing::info!(camera, stream, user = %viewer.user, "live view started");
    let conn = Conn::new(sink, live.clone());
    let user = viewer.user.clone();
    let mut socket = Socket {
        live,
        viewer,
        conn,
        mse: None,
        rtc: None,
    };
    let result: Result<(), ()> = async {
        loop {
            let flow = tokio::select! {
                why = &mut end => {
                    socket.end(why).await;
                    Flow::Stop
                }
                msg = ctl_rx.recv() => match msg {
                    None => Flow::Stop,
                    Some(msg) => socket.on_message(msg).await?,
                },
                next = next_item(&mut socket.mse) => match socket.mse.as_mut() {
                    Some(mse) => mse.on_next(&socket.live, &mut socket.conn, next).await?,
                    None => Flow::Go,
                },
            };
            if let Flow::Stop = flow {
                return Ok(());
            }
        }
    }
    .await;
    if result.is_err() {
        tracing::info!(camera, stream, %user, "live viewer dropped: its connection accepted nothing in time or failed");
    } else {
        tracing::info!(camera, stream, %user, "live view ended");
    }
    reader.abort();
}

/// The next item of the MSE session, or never when there is none.
async fn next_item(mse: &mut Option<MseSession>) -> Received<Frag> {
    match mse {
        Some(s) => s.viewer.recv().await,
        None => std::future::pending().await,
    }
}

//! The live WebSocket protocol of the v1 contract, on an upgraded socket (the HTTP side, access and the
//! camera's region are checked in `api` before the upgrade).
//!
//! Client to server (JSON text): `{"type":"mse","codecs":[...]}` starts MSE with the codecs the browser
//! accepts; `{"type":"webrtc/offer","sdp"}` and `{"type":"webrtc/candidate","candidate"}` start WebRTC.
//! Server to client: `{"type":"mse","mime"}`, then one binary init segment, then binary fragments
//! (`moof`+`mdat`, one frame each); `{"type":"mse","mime"}` + init again when the camera changes its
//! parameters; `{"type":"skip","skipped":N}` before the keyframe a slow viewer resumes at;
//! `{"type":"webrtc/answer","sdp"}`; `{"type":"error","message"}`.
//!
//! Invariants:
//! - One writer task owns the socket's sending half; the reading half only forwards parsed messages to
//!   it. A send that stays blocked for `send_timeout_ms` ends the connection, so a viewer that never
//!   reads holds at most one fragment and the socket's buffers.
//! - The first binary message after `{"type":"mse"}` is the init segment, the next a keyframe fragment.

use super::mse::{Frag, Init, Item, MseViewer, Next};
use super::{rtc, Live, LiveError, MseLease};
use crate::hub::StreamKey;
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

struct Conn {
    sink: futures::stream::SplitSink<WebSocket, Message>,
    timeout: Duration,
    live: Arc<Live>,
}

impl Conn {
    async fn send(&mut self, m: Message) -> Result<(), ()> {
        match tokio::time::timeout(self.timeout, self.sink.send(m)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn text(&mut self, v: serde_json::Value) -> Result<(), ()> {
        self.send(Message::Text(Utf8Bytes::from(v.to_string())))
            .await
    }

    async fn error(&mut self, e: &LiveError) -> Result<(), ()> {
        self.text(json!({"type": "error", "message": e.to_string()}))
            .await
    }

    async fn binary(&mut self, b: Bytes) -> Result<(), ()> {
        self.send(Message::Binary(b)).await
    }

    async fn init(&mut self, init: &Init) -> Result<(), ()> {
        self.text(json!({"type": "mse", "mime": &*init.mime, "codec": &*init.codec}))
            .await?;
        self.binary(init.data.clone()).await
    }

    async fn fragment(&mut self, f: &Frag, live: bool) -> Result<(), ()> {
        self.binary(f.data.clone()).await?;
        self.live.stats.fragments_sent.fetch_add(1, Relaxed);
        if live {
            self.live.stats.record(f.received.elapsed());
        }
        Ok(())
    }
}

/// An MSE session on the socket.
struct MseState {
    _lease: MseLease,
    viewer: MseViewer,
    codecs: Vec<String>,
    /// Set once the init segment went out; fragments wait for it and for a keyframe.
    started: bool,
    skipped: u64,
    /// The init segment last sent, and the stream's state to check it against after a skip (an init
    /// segment may have been among the items skipped).
    sent_init: Option<Arc<Init>>,
    shared: Option<Arc<super::mse::MseShared>>,
    /// The init segment of the join, before it is checked and sent.
    pending_init: Option<Arc<Init>>,
    /// Watching the H.264 transcode of an H.265 stream.
    transcoded: bool,
}

/// Joins a stream's MSE fan-out (or its transcode's); returns the state and the cached GOP to send.
fn join(
    live: &Arc<Live>,
    key: StreamKey,
    codecs: Vec<String>,
    transcoded: bool,
) -> (MseState, Vec<Frag>) {
    let (lease, start) = live.join_mse(key, transcoded);
    (
        MseState {
            _lease: lease,
            viewer: start.viewer,
            codecs,
            started: false,
            skipped: 0,
            sent_init: None,
            shared: start.shared,
            pending_init: start.init,
            transcoded,
        },
        start.gop,
    )
}

/// An H.265 stream for a browser that plays H.264 but not H.265: it gets the transcode.
fn wants_transcode(codecs: &[String], init: &Init) -> bool {
    init.h265
        && !accepts(codecs, init)
        && codecs
            .iter()
            .any(|c| c.to_ascii_lowercase().starts_with("avc1"))
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
    let camera = viewer.key.camera_id;
    let stream = viewer.key.kind.as_str();
    let (sink, mut source) = socket.split();
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Result<ClientMessage, LiveError>>(16);
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            let parsed = match msg {
                Message::Text(t) => serde_json::from_str::<ClientMessage>(t.as_str())
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
    });
    tracing::info!(camera, stream, user = %viewer.user, "live view started");
    let mut conn = Conn {
        sink,
        timeout: Duration::from_millis(live.config().send_timeout_ms.max(100)),
        live: live.clone(),
    };
    let mut mse: Option<MseState> = None;
    let mut rtc: Option<mpsc::Sender<rtc::Control>> = None;
    let result: Result<(), ()> = async {
        loop {
            tokio::select! {
                why = &mut end => {
                    tracing::info!(camera, stream, user = %viewer.user, reason = why, "live view ended by the server");
                    let _ = conn.text(json!({"type": "error", "code": "ended", "message": why})).await;
                    let frame = CloseFrame { code: close_code::POLICY, reason: Utf8Bytes::from(why) };
                    let _ = conn.send(Message::Close(Some(frame))).await;
                    return Ok(());
                }
                ctl = ctl_rx.recv() => match ctl {
                    None => return Ok(()),
                    Some(Err(e)) => conn.error(&e).await?,
                    Some(Ok(ClientMessage::Mse { codecs })) => {
                        if mse.is_some() {
                            conn.error(&LiveError::BadMessage("MSE already started".into())).await?;
                            continue;
                        }
                        let codecs_c = codecs.clone();
                        let mut state = join(&live, viewer.key, codecs, viewer.scaled);
                        let mut start_gop = std::mem::take(&mut state.1);
                        let mut state = state.0;
                        if let Some(init) = state.pending_init.take() {
                            if !viewer.scaled && wants_transcode(&codecs_c, &init) {
                                let (s2, gop2) = join(&live, viewer.key, codecs_c, true);
                                state = s2;
                                start_gop = gop2;
                            } else if !accepts(&state.codecs, &init) {
                                conn.error(&LiveError::Unsupported { codec: init.codec.to_string() }).await?;
                                return Ok(());
                            } else {
                                state.pending_init = Some(init);
                            }
                        }
                        if let Some(init) = state.pending_init.take() {
                            conn.init(&init).await?;
                            state.started = true;
                            state.sent_init = Some(init);
                            for f in &start_gop {
                                conn.fragment(f, false).await?;
                            }
                        }
                        mse = Some(state);
                    }
                    Some(Ok(ClientMessage::WebrtcOffer { sdp })) => {
                        match rtc::accept(&live, viewer.key, viewer.scaled, &sdp, viewer.user.clone()).await {
                            Ok((answer, ctl)) => {
                                // A new offer replaces the previous session (dropping its handle ends it).
                                rtc = Some(ctl);
                                conn.text(json!({"type": "webrtc/answer", "sdp": answer})).await?;
                            }
                            Err(e) => conn.error(&e).await?,
                        }
                    }
                    Some(Ok(ClientMessage::WebrtcCandidate { candidate })) => {
                        if let (Some(ctl), Some(c)) = (&rtc, candidate) {
                            if !c.is_empty() {
                                let _ = ctl.try_send(rtc::Control::RemoteCandidate(c));
                            }
                        }
                    }
                },
                next = next_item(&mut mse) => {
                    let Some(state) = mse.as_mut() else { continue };
                    match next {
                        Next::Closed => {
                            let _ = conn.error(&LiveError::Ended).await;
                            return Ok(());
                        }
                        Next::Skipped { skipped } => {
                            state.skipped += skipped;
                            live.stats.skips.fetch_add(1, Relaxed);
                            tracing::debug!(camera, stream, skipped, "slow live viewer skips to the next keyframe");
                        }
                        Next::Item(Item::Init(init)) => {
                            if !state.transcoded && wants_transcode(&state.codecs, &init) {
                                // The camera turned out to be H.265: move to its transcode.
                                let (mut s2, gop) = join(&live, viewer.key, state.codecs.clone(), true);
                                if let Some(init) = s2.pending_init.take() {
                                    conn.init(&init).await?;
                                    s2.started = true;
                                    s2.sent_init = Some(init);
                                    for f in &gop {
                                        conn.fragment(f, false).await?;
                                    }
                                }
                                *state = s2;
                                continue;
                            }
                            if !accepts(&state.codecs, &init) {
                                conn.error(&LiveError::Unsupported { codec: init.codec.to_string() }).await?;
                                return Ok(());
                            }
                            conn.init(&init).await?;
                            state.started = true;
                            state.sent_init = Some(init);
                        }
                        Next::Item(Item::Fragment(f)) => {
                            if state.skipped > 0 {
                                let skipped = std::mem::take(&mut state.skipped);
                                // An init segment skipped over is sent before the keyframe.
                                let current = state.shared.as_ref().and_then(|s| s.current_init());
                                if let Some(init) = current {
                                    let same = state.sent_init.as_ref().is_some_and(|s| Arc::ptr_eq(s, &init));
                                    if !same {
                                        if !accepts(&state.codecs, &init) {
                                            conn.error(&LiveError::Unsupported { codec: init.codec.to_string() }).await?;
                                            return Ok(());
                                        }
                                        conn.init(&init).await?;
                                        state.started = true;
                                        state.sent_init = Some(init);
                                    }
                                }
                                if state.started {
                                    conn.text(json!({"type": "skip", "skipped": skipped, "reason": "slow"})).await?;
                                }
                            }
                            if !state.started || (!f.keyframe && state.sent_init.is_none()) {
                                continue;
                            }
                            conn.fragment(&f, true).await?;
                        }
                    }
                }
            }
        }
    }
    .await;
    if result.is_err() {
        tracing::info!(camera, stream, user = %viewer.user, "live viewer dropped: its connection accepted nothing in time or failed");
    } else {
        tracing::info!(camera, stream, user = %viewer.user, "live view ended");
    }
    reader.abort();
}

/// The next item of the MSE session, or never when there is none.
async fn next_item(mse: &mut Option<MseState>) -> Next {
    match mse {
        Some(s) => s.viewer.next().await,
        None => std::future::pending().await,
    }
}

//! The WebSocket of a stream that is not a camera's live one (a device's own footage, played back): the
//! MSE messages of live view, plus the viewer's steering, and `end` when the footage ended.
//!
//! Client to server: `{"type":"mse","codecs":[...]}` first; then `{"type":"pause"}`, `{"type":"play"}`,
//! `{"type":"speed","scale":4}` and `{"type":"seek","offset_s":30}` (seconds after the start of the
//! range). Server to client: `{"type":"mse","mime","codec"}`, the init segment, fragments (time scaled
//! by the speed, continuous across seeks); `{"type":"steered","command"}` once a command was passed on;
//! `{"type":"end"}` once the source ended and every fragment was sent; `{"type":"error","message"}`.
//!
//! Invariants: the viewer joins the stream's fragments when the socket opens, so nothing sent before its
//! `mse` message is lost (up to the viewer queue); the socket's sending half has one owner (this loop).

use super::mse::{self, Frag, Init, MseShared};
use super::ws::{accepts, spawn_reader, Conn};
use super::{Live, LiveError};
use crate::hub::{Received, StreamHub};
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a viewer asks of the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Steer {
    Pause,
    Play,
    Speed { scale: f64 },
    Seek { offset_s: f64 },
}

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    Mse {
        #[serde(default)]
        codecs: Vec<String>,
    },
    Pause,
    Play,
    Speed {
        scale: f64,
    },
    Seek {
        offset_s: f64,
    },
}

impl ClientMessage {
    /// The steering it asks for (`None` for the MSE start).
    fn steer(&self) -> Option<Steer> {
        Some(match *self {
            ClientMessage::Mse { .. } => return None,
            ClientMessage::Pause => Steer::Pause,
            ClientMessage::Play => Steer::Play,
            ClientMessage::Speed { scale } => Steer::Speed { scale },
            ClientMessage::Seek { offset_s } => Steer::Seek { offset_s },
        })
    }
}

/// How long the end waits for fragments still coming after the source said it ended.
const DRAIN: Duration = Duration::from_millis(1500);

/// Serves one socket until the client leaves, the source ended and was sent, or `end` resolves (the
/// caller's rights ended). `steer` passes a command on; false when the source cannot take it now.
pub async fn serve(
    socket: WebSocket,
    live: Arc<Live>,
    stream: Arc<StreamHub>,
    steer: impl Fn(Steer) -> bool,
    ended: CancellationToken,
    end: impl std::future::Future<Output = &'static str>,
) {
    tokio::pin!(end);
    let (sink, source) = socket.split();
    let (ctl_tx, mut ctl_rx) = mpsc::channel(16);
    let reader = spawn_reader::<ClientMessage>(source, ctl_tx);
    let mut conn = Conn::new(sink, live.clone());
    let shared = Arc::new(MseShared::new(live.config().viewer_queue));
    let (gop, sub) = stream.subscribe();
    let builder = mse::Builder::new(&shared, &gop, live.config().rewrite_vui, None);
    let stop = CancellationToken::new();
    tokio::spawn(mse::run(
        stream.key(),
        builder,
        sub,
        shared.clone(),
        stop.clone(),
    ));
    let start = shared.join();
    let mut viewer = start.viewer;
    let mut backlog: std::collections::VecDeque<Frag> = start.gop.into();
    let mut codecs: Option<Vec<String>> = None;
    let mut sent_init: Option<Arc<Init>> = None;
    let result: Result<&'static str, ()> = async {
        loop {
            tokio::select! {
                why = &mut end => return Ok(why),
                msg = ctl_rx.recv() => match msg {
                    None => return Ok("client left"),
                    Some(Err(e)) => conn.error(&e).await?,
                    Some(Ok(ClientMessage::Mse { codecs: c })) => codecs = Some(c),
                    Some(Ok(m)) => if let Some(cmd) = m.steer() {
                        if steer(cmd) {
                            conn.text(json!({"type": "steered", "command": cmd_name(&cmd)})).await?;
                        } else {
                            let e = LiveError::BadMessage("the device cannot take this command now".into());
                            conn.error(&e).await?;
                        }
                    }
                },
                next = next_frag(&mut backlog, &mut viewer, codecs.is_some()) => match next {
                    Some(f) => {
                        let wanted = codecs.as_deref().unwrap_or_default();
                        if !send(&mut conn, &mut sent_init, wanted, &f).await? {
                            return Ok("codec not playable");
                        }
                    }
                    None => return Ok("source closed"),
                },
                _ = ended.cancelled(), if codecs.is_some() => {
                    drain(&mut conn, &mut backlog, &mut viewer, &mut sent_init, codecs.as_deref().unwrap_or_default()).await?;
                    conn.text(json!({"type": "end"})).await?;
                    return Ok("footage ended");
                }
            }
        }
    }
    .await;
    stop.cancel();
    reader.abort();
    if let Ok(why) = result {
        let frame = CloseFrame {
            code: close_code::NORMAL,
            reason: Utf8Bytes::from(why),
        };
        let _ = conn.send(Message::Close(Some(frame))).await;
        tracing::info!(reason = why, "playback view ended");
    }
}

fn cmd_name(cmd: &Steer) -> &'static str {
    match cmd {
        Steer::Pause => "pause",
        Steer::Play => "play",
        Steer::Speed { .. } => "speed",
        Steer::Seek { .. } => "seek",
    }
}

/// The next fragment once the client started MSE: the joined GOP first, then the ring.
async fn next_frag(
    backlog: &mut std::collections::VecDeque<Frag>,
    viewer: &mut mse::MseViewer,
    started: bool,
) -> Option<Frag> {
    if !started {
        return std::future::pending().await;
    }
    if let Some(f) = backlog.pop_front() {
        return Some(f);
    }
    loop {
        match viewer.recv().await {
            Received::Frame(f) => return Some(f),
            Received::Skipped { .. } => continue,
            Received::Closed => return None,
        }
    }
}

/// Sends what is still coming until the source is quiet for [`DRAIN`].
async fn drain(
    conn: &mut Conn,
    backlog: &mut std::collections::VecDeque<Frag>,
    viewer: &mut mse::MseViewer,
    sent_init: &mut Option<Arc<Init>>,
    codecs: &[String],
) -> Result<(), ()> {
    while let Ok(Some(f)) = tokio::time::timeout(DRAIN, next_frag(backlog, viewer, true)).await {
        send(conn, sent_init, codecs, &f).await?;
    }
    Ok(())
}

/// Sends a fragment, after its init segment when that is new; false when the browser cannot play it.
async fn send(
    conn: &mut Conn,
    sent_init: &mut Option<Arc<Init>>,
    codecs: &[String],
    f: &Frag,
) -> Result<bool, ()> {
    let new_init = !sent_init.as_ref().is_some_and(|s| Arc::ptr_eq(s, &f.init));
    if new_init {
        if !f.keyframe {
            return Ok(true);
        }
        if !accepts(codecs, &f.init) {
            let e = LiveError::Unsupported {
                codec: f.init.codec.to_string(),
            };
            conn.error(&e).await?;
            return Ok(false);
        }
        conn.init(&f.init).await?;
        *sent_init = Some(f.init.clone());
    }
    conn.fragment(f, false).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_viewers_messages() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"mse","codecs":["avc1.64001f"]}"#).unwrap();
        assert!(matches!(m, ClientMessage::Mse { ref codecs } if codecs.len() == 1));
        let m: ClientMessage = serde_json::from_str(r#"{"type":"speed","scale":4}"#).unwrap();
        assert_eq!(m.steer(), Some(Steer::Speed { scale: 4.0 }));
        let m: ClientMessage = serde_json::from_str(r#"{"type":"seek","offset_s":12.5}"#).unwrap();
        assert!(matches!(m.steer(), Some(Steer::Seek { .. })));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"explode"}"#).is_err());
    }
}

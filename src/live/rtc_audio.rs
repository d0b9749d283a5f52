//! The sound of a WebRTC viewer's session (`rtc.rs`): the camera's audio as Opus from its shared
//! transcode ([`super::opus`]), on the session's audio track when the browser offered one.
//!
//! Invariants: a viewer without an audio track, or a camera without audio, costs nothing here (no
//! transcode is started); the audio's sequence numbers and RTP time offset are the viewer's own; a slow
//! listener loses packets (the browser conceals them), it never delays the video.

use super::opus::{OpusListener, OpusPacket};
use super::{Live, LiveError, OpusLease};
use crate::hub::Received;
use std::sync::Arc;
use std::time::Instant;
use str0m::format::Codec;
use str0m::media::{Mid, Pt};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::Rtc;

/// A session's audio sender.
pub(super) struct AudioOut {
    _lease: OpusLease,
    listener: OpusListener,
    pt: Pt,
    ssrc: Ssrc,
    seq: u64,
    time_offset: u32,
}

/// The Opus payload type the browser offered on `mid`.
fn opus_pt(rtc: &Rtc, mid: Mid) -> Option<Pt> {
    let remote = rtc.media(mid)?.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == Codec::Opus && remote.contains(&p.pt()))
        .map(|p| p.pt())
}

impl AudioOut {
    /// The sender of the camera's sound on track `mid`, when the browser takes Opus there and the
    /// camera sends audio.
    pub fn start(live: &Arc<Live>, rtc: &mut Rtc, mid: Mid, camera_id: i64) -> Option<AudioOut> {
        let Some(pt) = opus_pt(rtc, mid) else {
            tracing::debug!(camera = camera_id, "the browser offered no Opus: no sound");
            return None;
        };
        let Some(ssrc) = rtc
            .direct_api()
            .stream_tx_by_mid(mid, None)
            .map(|s| s.ssrc())
        else {
            tracing::debug!(camera = camera_id, "no audio send stream: no sound");
            return None;
        };
        let (lease, listener) = live.join_opus(camera_id)?;
        tracing::debug!(
            camera = camera_id,
            "WebRTC viewer listens to the camera's audio"
        );
        Some(AudioOut {
            _lease: lease,
            listener,
            pt,
            ssrc,
            seq: 0,
            time_offset: rand::random(),
        })
    }

    /// Writes one packet (a lost stretch is passed over).
    pub fn send(&mut self, rtc: &mut Rtc, next: Received<OpusPacket>) -> Result<(), LiveError> {
        let p = match next {
            Received::Frame(p) => p,
            Received::Skipped { .. } => return Ok(()),
            Received::Closed => return Err(LiveError::Ended),
        };
        let mut api = rtc.direct_api();
        let Some(tx) = api.stream_tx(&self.ssrc) else {
            return Err(LiveError::Rtc("audio send stream gone".into()));
        };
        self.seq += 1;
        let time = p.time.wrapping_add(self.time_offset);
        tx.write_rtp(RtpWrite::new(
            self.pt,
            SeqNo::from(self.seq),
            time,
            Instant::now(),
            p.data,
        ));
        Ok(())
    }
}

/// The next packet of the session's audio, or never when it has none.
pub(super) async fn next_packet(audio: &mut Option<AudioOut>) -> Received<OpusPacket> {
    match audio {
        Some(a) => a.listener.recv().await,
        None => std::future::pending().await,
    }
}

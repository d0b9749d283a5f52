//! One WebRTC viewer: a str0m `Rtc` in RTP mode fed with the stream's shared RTP payloads
//! ([`super::rtp`]). Per viewer only the SSRC, sequence numbers, RTP time offset and SRTP differ.
//!
//! Sockets: each session binds its own UDP socket on each candidate address (`live.webrtc_ips`, by default
//! 127.0.0.1 and the address of the default route), on an ephemeral port, and offers them as host
//! candidates. One socket per session keeps demultiplexing trivial and lets the kernel spread sessions; a
//! deployment behind NAT lists its reachable address in `webrtc_ips`.
//!
//! Invariants:
//! - Media is sent only once the DTLS handshake is done (`Event::Connected`) and the video track is known;
//!   the viewer then joins the stream's fan-out and gets the cached GOP first, so the picture starts at
//!   once.
//! - A viewer that falls behind skips to the next keyframe like an MSE viewer; its sequence numbers stay
//!   continuous, so the browser sees a timestamp jump and no loss.
//! - The camera's sound goes on the browser's audio track, when it offered one, as Opus
//!   ([`super::rtc_audio`]), from the moment the video starts.
//! - The session ends when ICE disconnects, the signalling side goes away (`Control` channel closed), or
//!   nothing comes from the browser for 30 s after the handshake.

use super::rtc_audio::{self, AudioOut};
use super::rtp::RtpViewer;
use super::udp::{Incoming, Outbox, Socket};
use super::{Live, LiveError, RtpLease};
use crate::hub::Received;
use crate::hub::StreamKey;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Messages from the signalling side to a running session.
#[derive(Debug)]
pub enum Control {
    RemoteCandidate(String),
}

/// Installs str0m's crypto provider once per process.
fn init_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// The addresses host candidates are offered on.
pub fn candidate_ips(configured: &[IpAddr]) -> Vec<IpAddr> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    // The address of the default route, without sending anything.
    if let Ok(s) = std::net::UdpSocket::bind("0.0.0.0:0") {
        if s.connect("192.0.2.1:9").is_ok() {
            if let Ok(a) = s.local_addr() {
                if !a.ip().is_loopback() && !a.ip().is_unspecified() {
                    ips.push(a.ip());
                }
            }
        }
    }
    ips
}

/// Accepts an SDP offer for the stream: returns the answer and a handle for trickled candidates; the
/// session runs in its own task until the viewer leaves.
pub async fn accept(
    live: &Arc<Live>,
    key: StreamKey,
    transcoded: bool,
    offer: &str,
    user: String,
) -> Result<(String, mpsc::Sender<Control>), LiveError> {
    init_crypto();
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| LiveError::Rtc(format!("bad SDP offer: {e}")))?;
    // Only the mid extension (BUNDLE's demultiplexing) is negotiated. Transport-wide congestion control
    // (transport-cc) and abs-send-time feed a sender's bandwidth estimate, and a camera's stream cannot be
    // made smaller for one viewer: without them the viewer sends no per-packet feedback and str0m keeps no
    // register of every packet sent (about 4 % of the server's CPU at 150 viewers, `docs/perf.md`). NACK
    // retransmission and RTCP reports are not extensions and stay.
    let mut rtc = Rtc::builder()
        .clear_extension_map()
        .set_extension(4, Extension::RtpMid)
        .set_rtp_mode(true)
        .set_ice_lite(false)
        .build(Instant::now());
    let mut sockets = Vec::new();
    for ip in candidate_ips(&live.config().webrtc_ips) {
        let sock = match UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .and_then(Socket::new)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%ip, error = %e, "no WebRTC socket on this address");
                continue;
            }
        };
        let addr = sock.local;
        match Candidate::host(addr, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
                sockets.push(sock);
            }
            Err(e) => tracing::debug!(%addr, error = %e, "address not usable as a candidate"),
        }
    }
    if sockets.is_empty() {
        return Err(LiveError::Rtc("no UDP address to offer".into()));
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| LiveError::Rtc(format!("offer not accepted: {e}")))?;
    let (ctl_tx, ctl_rx) = mpsc::channel(32);
    let session = Session {
        rtc,
        sockets,
        live: live.clone(),
        key,
        transcoded,
        user,
        outbox: Outbox::default(),
        mid: None,
        audio_mid: None,
        audio: None,
        connected: false,
        send: None,
        viewer: None,
        seq: 0,
        time_offset: rand::random(),
        started: Instant::now(),
        last_input: Instant::now(),
        sent_at: None,
    };
    tokio::spawn(session.run(ctl_rx));
    Ok((answer.to_sdp_string(), ctl_tx))
}

struct Session {
    rtc: Rtc,
    sockets: Vec<Arc<Socket>>,
    /// Datagrams of the current poll, sent together when str0m has nothing more to send.
    outbox: Outbox,
    live: Arc<Live>,
    key: StreamKey,
    /// Reading the registry's transcode of the stream (a made sub stream).
    transcoded: bool,
    user: String,
    mid: Option<Mid>,
    /// The browser's audio track, and the camera's sound on it once the video started.
    audio_mid: Option<Mid>,
    audio: Option<AudioOut>,
    /// DTLS is up: media may go out.
    connected: bool,
    /// The payload type and SSRC media goes out with, once known.
    send: Option<(Pt, Ssrc)>,
    viewer: Option<(RtpLease, RtpViewer)>,
    seq: u64,
    time_offset: u32,
    started: Instant,
    last_input: Instant,
    /// When the last frame written came from the hub, until its packets went to the socket.
    sent_at: Option<Instant>,
}

/// The H.264 payload type to send with: packetization mode 1, the stream's profile when the browser
/// offered it.
fn choose_pt(rtc: &Rtc, mid: Mid, profile: u8) -> Option<Pt> {
    let media = rtc.media(mid)?;
    let remote = media.remote_pts();
    let candidates: Vec<_> = rtc
        .codec_config()
        .params()
        .iter()
        .filter(|p| p.spec().codec == Codec::H264 && remote.contains(&p.pt()))
        .filter(|p| p.spec().format.packetization_mode == Some(1))
        .collect();
    candidates
        .iter()
        .find(|p| {
            p.spec()
                .format
                .profile_level_id
                .is_some_and(|id| (id >> 16) as u8 == profile)
        })
        .or(candidates.first())
        .map(|p| p.pt())
}

impl Session {
    async fn run(mut self, mut ctl: mpsc::Receiver<Control>) {
        let camera = self.key.camera_id;
        let stream = self.key.kind.as_str();
        self.live.stats.rtc_viewers.fetch_add(1, Relaxed);
        tracing::info!(camera, stream, user = %self.user, "WebRTC live view started");
        let (dgram_tx, mut dgram_rx) = mpsc::channel::<Incoming>(256);
        let readers: Vec<_> = self
            .sockets
            .iter()
            .map(|sock| tokio::spawn(sock.clone().receive(dgram_tx.clone())))
            .collect();
        drop(dgram_tx);
        let result = self.drive(&mut ctl, &mut dgram_rx).await;
        for r in readers {
            r.abort();
        }
        self.live.stats.rtc_viewers.fetch_sub(1, Relaxed);
        match result {
            Ok(()) => tracing::info!(camera, stream, user = %self.user, "WebRTC live view ended"),
            Err(e) => {
                tracing::info!(camera, stream, user = %self.user, error = %e, "WebRTC live view failed")
            }
        }
    }

    async fn drive(
        &mut self,
        ctl: &mut mpsc::Receiver<Control>,
        dgrams: &mut mpsc::Receiver<Incoming>,
    ) -> Result<(), LiveError> {
        loop {
            let deadline = match self.poll().await? {
                Some(d) => d,
                None => return Ok(()),
            };
            if let Some(received) = self.sent_at.take() {
                self.live.stats.record(received.elapsed());
            }
            if self.last_input.elapsed() > Duration::from_secs(30)
                || (self.viewer.is_none() && self.started.elapsed() > Duration::from_secs(30))
            {
                return Err(LiveError::Rtc("no traffic from the browser".into()));
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            tokio::select! {
                d = dgrams.recv() => {
                    let Some((source, destination, data)) = d else { return Ok(()) };
                    self.last_input = Instant::now();
                    let Ok(contents) = data.as_slice().try_into() else { continue };
                    let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination, contents });
                    if self.rtc.accepts(&input) {
                        self.rtc.handle_input(input).map_err(|e| LiveError::Rtc(e.to_string()))?;
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| LiveError::Rtc(e.to_string()))?;
                }
                c = ctl.recv() => match c {
                    Some(Control::RemoteCandidate(c)) => {
                        let c = c.trim().trim_start_matches("a=");
                        match Candidate::from_sdp_string(c) {
                            Ok(c) => self.rtc.add_remote_candidate(c),
                            Err(e) => tracing::debug!(error = %e, "remote candidate ignored"),
                        }
                    }
                    // The signalling side is gone (the viewer's WebSocket closed, or a WHEP DELETE).
                    None => return Ok(()),
                },
                n = next_frame(&mut self.viewer) => self.send_frame(n)?,
                p = rtc_audio::next_packet(&mut self.audio) => {
                    if let Some(a) = self.audio.as_mut() {
                        a.send(&mut self.rtc, p)?;
                        self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| LiveError::Rtc(e.to_string()))?;
                    }
                }
            }
        }
    }

    /// Sends what str0m has to send and handles its events; the time it wants to be woken, or `None`
    /// when the session is over.
    async fn poll(&mut self) -> Result<Option<Instant>, LiveError> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.flush();
                    return Ok(Some(t));
                }
                Ok(Output::Transmit(t)) => {
                    if let Some(i) = self.sockets.iter().position(|s| s.local == t.source) {
                        self.outbox.push(i, t.destination, &t.contents);
                    }
                }
                Ok(Output::Event(e)) => match e {
                    Event::MediaAdded(m) if m.kind == MediaKind::Video => {
                        self.mid = Some(m.mid);
                        self.start()?;
                    }
                    Event::MediaAdded(m) if m.kind == MediaKind::Audio => {
                        self.audio_mid = Some(m.mid);
                        self.start_audio();
                    }
                    Event::Connected => {
                        self.connected = true;
                        self.start()?;
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Ok(None)
                    }
                    _ => {}
                },
                Err(e) => return Err(LiveError::Rtc(e.to_string())),
            }
        }
    }

    /// Sends the datagrams of this poll in as few system calls as the kernel allows.
    fn flush(&mut self) {
        let batch = self.live.config().webrtc_batch;
        let done = self.outbox.flush(&self.sockets, batch);
        let stats = &self.live.stats;
        stats.rtc_sends.fetch_add(done.sends as u64, Relaxed);
        stats.bytes_sent.fetch_add(done.bytes as u64, Relaxed);
        if done.dropped > 0 {
            stats.rtc_dropped.fetch_add(done.dropped as u64, Relaxed);
            tracing::debug!(
                camera = self.key.camera_id,
                dropped = done.dropped,
                "WebRTC socket buffer full: datagrams dropped"
            );
        }
    }

    /// DTLS is up and the video track known (str0m may tell it after `Connected`): join the stream's RTP
    /// fan-out and send the cached GOP (sent before the track is known, it would be lost, and the
    /// picture would wait for the next keyframe).
    fn start(&mut self) -> Result<(), LiveError> {
        if !self.connected || self.mid.is_none() || self.viewer.is_some() {
            return Ok(());
        }
        // WebRTC carries H.264: an H.265 stream is served from its transcode.
        let h265 = self
            .live
            .hub()
            .stream(self.key)
            .current_gop()
            .first()
            .is_some_and(|f| f.params.is_h265());
        let (lease, gop, viewer) = self.live.join_rtp(self.key, self.transcoded || h265);
        self.viewer = Some((lease, viewer));
        self.start_audio();
        for f in gop {
            self.send_frame(Received::Frame(f))?;
        }
        Ok(())
    }

    /// The camera's sound on the browser's audio track, once both the video has started and the track is
    /// known (str0m may tell the track after `Connected`).
    fn start_audio(&mut self) {
        if let (Some(mid), Some(_), None) = (self.audio_mid, &self.viewer, &self.audio) {
            self.audio = AudioOut::start(&self.live, &mut self.rtc, mid, self.key.camera_id);
        }
    }

    fn send_frame(&mut self, next: Received<super::rtp::Item>) -> Result<(), LiveError> {
        let frame = match next {
            Received::Frame(f) => f,
            Received::Skipped { skipped } => {
                self.live.stats.skips.fetch_add(1, Relaxed);
                tracing::debug!(
                    camera = self.key.camera_id,
                    skipped,
                    "slow WebRTC viewer skips to the next keyframe"
                );
                return Ok(());
            }
            Received::Closed => return Err(LiveError::Ended),
        };
        if self.send.is_none() {
            let Some(mid) = self.mid else {
                return Ok(());
            };
            let pt = choose_pt(&self.rtc, mid, frame.profile)
                .ok_or_else(|| LiveError::Rtc("the browser offered no usable H.264".into()))?;
            let ssrc = self
                .rtc
                .direct_api()
                .stream_tx_by_mid(mid, None)
                .map(|s| s.ssrc())
                .ok_or_else(|| LiveError::Rtc("no send stream".into()))?;
            self.send = Some((pt, ssrc));
        }
        let Some((pt, ssrc)) = self.send else {
            return Ok(());
        };
        let now = Instant::now();
        let time = frame.time.wrapping_add(self.time_offset);
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx(&ssrc) else {
            return Err(LiveError::Rtc("send stream gone".into()));
        };
        for p in &frame.packets {
            // Below 65536 for the first packet: the browser starts its rollover counter at 0.
            self.seq += 1;
            tx.write_rtp(
                RtpWrite::new(pt, SeqNo::from(self.seq), time, now, p.payload.clone())
                    .marker(p.marker),
            );
        }
        self.live
            .stats
            .rtp_packets_sent
            .fetch_add(frame.packets.len() as u64, Relaxed);
        self.rtc
            .handle_input(Input::Timeout(now))
            .map_err(|e| LiveError::Rtc(e.to_string()))?;
        // The latency is counted once `poll` has handed the packets to the socket.
        self.sent_at = Some(frame.received);
        Ok(())
    }
}

async fn next_frame(viewer: &mut Option<(RtpLease, RtpViewer)>) -> Received<super::rtp::Item> {
    match viewer {
        Some((_, v)) => v.recv().await,
        None => std::future::pending().await,
    }
}

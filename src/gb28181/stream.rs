//! The ingest runner of `gb28181://DEVICE/CHANNEL` cameras: an INVITE for live PS over RTP when the
//! stream is needed (a recorder or a viewer subscribed to the hub), a BYE when nobody has needed it for
//! `idle_s`, and a new INVITE after a failure, with backoff.
//!
//! Invariants: a recording camera keeps its stream (its recorder is a consumer); a stream is only
//! invited while its device is registered; every INVITE that was answered 200 gets its BYE.

use super::media::{self, MediaTransport, Ports, Receiver};
use super::registry::Registry;
use super::sip::{self, Outgoing};
use crate::hub::StreamHub;
use crate::ingest::{
    DecodeTimes, Publisher, RunError, SchemeRunner, StreamSource, StreamState, StreamStatus,
};
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Method, Response};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub struct Runner {
    pub registry: Arc<Registry>,
    pub ports: Ports,
    /// What the SDP offers as the media address.
    pub media_ip: IpAddr,
    pub stall: Duration,
    ssrc_seq: AtomicU32,
}

/// What ingest holds: the runner behind an `Arc`, so each stream's task owns a handle.
pub struct Handle(pub Arc<Runner>);

impl SchemeRunner for Handle {
    fn run(
        &self,
        source: StreamSource,
        hub: Arc<StreamHub>,
        status: Arc<Mutex<StreamStatus>>,
        cancel: CancellationToken,
    ) -> futures::future::BoxFuture<'static, ()> {
        let runner = self.0.clone();
        Box::pin(async move { runner.stream(source, hub, status, cancel).await })
    }
}

/// The target of a `gb28181://DEVICE/CHANNEL` URL.
pub fn target(url: &url::Url) -> Option<(String, String)> {
    let device = url.host_str()?.to_owned();
    let channel = url.path().trim_start_matches('/').to_owned();
    let valid = super::registry::valid_id(&device) && super::registry::valid_id(&channel);
    valid.then_some((device, channel))
}

/// How a `gb28181://` camera's media comes: UDP, or TCP where the device connects, or (with
/// `?setup=active`) TCP where Vigil connects.
pub fn media_transport(url: &url::Url, udp: bool) -> MediaTransport {
    let active = url
        .query_pairs()
        .any(|(k, v)| k == "setup" && v == "active");
    match (udp, active) {
        (true, _) => MediaTransport::Udp,
        (false, true) => MediaTransport::TcpActive,
        (false, false) => MediaTransport::TcpPassive,
    }
}

/// An answered INVITE: what its in-dialog requests (INFO, BYE) need.
pub struct Dialog {
    call_id: String,
    from_tag: String,
    to_tag: String,
    cseq: AtomicU32,
    pub device: String,
    pub channel: String,
    /// The device's SDP answer (where to connect, for TCP where Vigil connects).
    pub answer: String,
}

/// What an INVITE asks for: the live stream, or the footage of a range (Unix seconds) on the device.
#[derive(Clone, Copy, Debug)]
pub enum Wanted {
    Live,
    Playback { start_s: i64, end_s: i64 },
}

fn update(status: &Mutex<StreamStatus>, f: impl FnOnce(&mut StreamStatus)) {
    f(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
}

impl Runner {
    pub fn new(registry: Arc<Registry>, ports: Ports, media_ip: IpAddr, stall: Duration) -> Runner {
        Runner {
            registry,
            ports,
            media_ip,
            stall,
            ssrc_seq: AtomicU32::new(1),
        }
    }

    async fn stream(
        self: Arc<Self>,
        source: StreamSource,
        hub: Arc<StreamHub>,
        status: Arc<Mutex<StreamStatus>>,
        cancel: CancellationToken,
    ) {
        let Some((device, channel)) = target(&source.url) else {
            update(&status, |s| {
                s.state = StreamState::Unsupported;
                s.error = Some(format!("{} is not gb28181://DEVICE/CHANNEL", source.url));
            });
            return;
        };
        let transport = media_transport(&source.url, source.udp);
        let mut decode = DecodeTimes::default();
        let mut backoff = Duration::from_secs(1);
        let mut run = 0u64;
        loop {
            if !self.wait_needed(&device, &hub, &status, &cancel).await {
                return;
            }
            run += 1;
            update(&status, |s| {
                s.attempts += 1;
                s.state = StreamState::Connecting;
            });
            let err = self
                .run_once(
                    &device,
                    &channel,
                    transport,
                    &hub,
                    &status,
                    run,
                    &mut decode,
                    &cancel,
                )
                .await;
            hub.reset();
            if cancel.is_cancelled() {
                return;
            }
            let healthy = matches!(err, RunError::Ended);
            warn!(device, channel, error = %err, "GB/T 28181 stream down");
            update(&status, |s| {
                s.state = if matches!(err, RunError::Unsupported(_)) {
                    StreamState::Unsupported
                } else {
                    StreamState::Offline
                };
                s.error = Some(err.to_string());
                s.fps = None;
                s.bitrate_bps = None;
            });
            backoff = if healthy {
                Duration::from_secs(1)
            } else {
                (backoff * 2).min(Duration::from_secs(30))
            };
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// Waits until someone needs the stream and the device is registered; false when cancelled.
    async fn wait_needed(
        &self,
        device: &str,
        hub: &StreamHub,
        status: &Mutex<StreamStatus>,
        cancel: &CancellationToken,
    ) -> bool {
        loop {
            let registered = self.registry.session(device).is_some();
            if hub.consumers() > 0 && registered {
                return true;
            }
            // Registered and unneeded is idle, not down: no offline alarm for a stream nobody asked for.
            let (state, waiting) = if registered {
                (StreamState::Idle, None)
            } else {
                (StreamState::Offline, Some("device offline"))
            };
            update(status, |s| {
                s.state = state;
                if s.error.as_deref() != waiting {
                    s.error = waiting.map(Into::into);
                }
            });
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = cancel.cancelled() => return false,
            }
        }
    }

    /// One INVITE, its media until it ends, and its BYE.
    #[allow(clippy::too_many_arguments)]
    async fn run_once(
        &self,
        device: &str,
        channel: &str,
        transport: MediaTransport,
        hub: &StreamHub,
        status: &Mutex<StreamStatus>,
        run: u64,
        decode: &mut DecodeTimes,
        cancel: &CancellationToken,
    ) -> RunError {
        let Some(port) = self.ports.take() else {
            return RunError::Rtsp("no free media port in gb28181.media_ports".into());
        };
        let bind_ip: IpAddr = if self.media_ip.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            [0u16; 8].into()
        };
        let rx = match Receiver::bind(bind_ip, port.port, transport).await {
            Ok(rx) => rx,
            Err(e) => return RunError::Rtsp(format!("media port {}: {e}", port.port)),
        };
        let ssrc = self.ssrc(Wanted::Live);
        let (dialog, ended) = match self
            .invite(device, channel, Wanted::Live, transport, port.port, ssrc)
            .await
        {
            Ok(d) => d,
            Err(e) => return e,
        };
        let rx = match rx.connect_to(&dialog.answer).await {
            Ok(rx) => rx,
            Err(e) => {
                self.bye(&dialog).await;
                return RunError::Rtsp(format!("device media: {e}"));
            }
        };
        info!(
            device,
            channel,
            port = port.port,
            ssrc,
            "GB/T 28181 stream invited"
        );
        let label = format!("gb28181://{device}/{channel}");
        let mut publisher = Publisher::new(hub, status, &label, run);
        decode.new_run();
        let idle = Duration::from_secs(self.registry.cfg.idle_s);
        let err = tokio::select! {
            e = media::receive(rx, ssrc, None, self.stall, &mut publisher, decode) => e,
            _ = ended.cancelled() => RunError::Rtsp("the device ended the session (BYE)".into()),
            _ = cancel.cancelled() => RunError::Ended,
            _ = unneeded(hub, idle) => RunError::Ended,
        };
        self.bye(&dialog).await;
        err
    }

    /// The SSRC of `y=`: 0 (live) or 1 (playback), five digits of the domain, four of a sequence.
    pub(super) fn ssrc(&self, wanted: Wanted) -> u32 {
        let domain = &self.registry.cfg.domain;
        let mid: u32 = domain.get(3..8).and_then(|d| d.parse().ok()).unwrap_or(0);
        let n = self.ssrc_seq.fetch_add(1, Ordering::Relaxed) % 10_000;
        let first = match wanted {
            Wanted::Live => 0,
            Wanted::Playback { .. } => 1_000_000_000,
        };
        first + mid * 10_000 + n
    }

    pub(super) async fn invite(
        &self,
        device: &str,
        channel: &str,
        wanted: Wanted,
        transport: MediaTransport,
        port: u16,
        ssrc: u32,
    ) -> Result<(Dialog, CancellationToken), RunError> {
        let session = self
            .registry
            .session(device)
            .ok_or_else(|| RunError::Rtsp("device not registered".into()))?;
        let cfg = &self.registry.cfg;
        let sdp = offer(
            &cfg.id,
            channel,
            wanted,
            self.media_ip,
            port,
            transport,
            ssrc,
        );
        let mut out = Outgoing::new(
            Method::Invite,
            channel,
            session.addr.addr.to_string(),
            &cfg.id,
            &cfg.domain,
        );
        out.transport = session.addr.r#type.unwrap_or_default();
        out.body = Some((sip::SDP, sdp.into_bytes()));
        out.headers
            .push(("Subject", format!("{channel}:{ssrc:010},{}:0", cfg.id)));
        let req = self
            .registry
            .stack
            .request(out)
            .map_err(|e| RunError::Rtsp(e.to_string()))?;
        let call_id = sip::call_id(&req);
        let from_tag = req
            .from_header()
            .ok()
            .and_then(|f| f.typed().ok())
            .and_then(|f| f.tag().map(|t| t.value().to_owned()))
            .unwrap_or_default();
        let cseq = req
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or(1);
        // Registered before the answer: a device may send its BYE right after the 200.
        let ended = CancellationToken::new();
        lock(&self.registry.dialogs).insert(call_id.clone(), ended.clone());
        let resp = self
            .registry
            .stack
            .send(req, session.addr, Duration::from_secs(10))
            .await;
        let resp = match resp {
            Ok(r) if r.status_code.code() == 200 => r,
            other => {
                lock(&self.registry.dialogs).remove(&call_id);
                return Err(match other {
                    Ok(r) => RunError::Rtsp(format!("INVITE answered {}", r.status_code.code())),
                    Err(e) => RunError::Rtsp(format!("INVITE: {e}")),
                });
            }
        };
        check_answer(&resp, ssrc, device);
        let dialog = Dialog {
            call_id,
            from_tag,
            to_tag: to_tag(&resp),
            cseq: AtomicU32::new(cseq),
            device: device.to_owned(),
            channel: channel.to_owned(),
            answer: String::from_utf8_lossy(resp.body()).into_owned(),
        };
        Ok((dialog, ended))
    }

    /// Sends a request within the dialog (INFO, BYE); the device's answer code.
    pub(super) async fn in_dialog(
        &self,
        d: &Dialog,
        method: Method,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<u16, sip::SipError> {
        let session = self
            .registry
            .session(&d.device)
            .ok_or_else(|| sip::SipError::Address(format!("{} is not registered", d.device)))?;
        let cfg = &self.registry.cfg;
        let mut out = Outgoing::new(
            method,
            &d.channel,
            session.addr.addr.to_string(),
            &cfg.id,
            &cfg.domain,
        );
        out.transport = session.addr.r#type.unwrap_or_default();
        out.call_id = Some(&d.call_id);
        out.from_tag = Some(d.from_tag.clone());
        out.to_tag = Some(d.to_tag.clone());
        out.cseq = Some(d.cseq.fetch_add(1, Ordering::Relaxed) + 1);
        out.body = body;
        let req = self.registry.stack.request(out)?;
        let resp = self
            .registry
            .stack
            .send(req, session.addr, Duration::from_secs(5))
            .await?;
        Ok(resp.status_code.code())
    }

    pub(super) async fn bye(&self, d: &Dialog) {
        lock(&self.registry.dialogs).remove(&d.call_id);
        if self.registry.session(&d.device).is_none() {
            return; // the device is gone; its session went with it
        }
        let sent = self.in_dialog(d, Method::Bye, None).await;
        match sent {
            Ok(_) => info!(
                device = d.device,
                channel = d.channel,
                "GB/T 28181 stream closed (BYE)"
            ),
            Err(e) => warn!(device = d.device, channel = d.channel, error = %e, "BYE not answered"),
        }
    }
}

/// Resolves once the hub has had no consumer for `idle`.
async fn unneeded(hub: &StreamHub, idle: Duration) {
    let mut since: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if hub.consumers() > 0 {
            since = None;
            continue;
        }
        let start = *since.get_or_insert_with(tokio::time::Instant::now);
        if start.elapsed() >= idle {
            return;
        }
    }
}

/// The SDP offer of an INVITE (GB/T 28181-2016 §C.2): PS over RTP, `y=` SSRC; for playback `s=Playback`,
/// `u=CHANNEL:0` and the range in `t=`.
pub fn offer(
    platform_id: &str,
    channel: &str,
    wanted: Wanted,
    ip: IpAddr,
    port: u16,
    transport: MediaTransport,
    ssrc: u32,
) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let (proto, tcp) = match transport {
        MediaTransport::Udp => ("RTP/AVP", ""),
        MediaTransport::TcpPassive => ("TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n"),
        MediaTransport::TcpActive => ("TCP/RTP/AVP", "a=setup:active\r\na=connection:new\r\n"),
    };
    let (session, times) = match wanted {
        Wanted::Live => ("s=Play".to_owned(), "t=0 0".to_owned()),
        Wanted::Playback { start_s, end_s } => (
            format!("s=Playback\r\nu={channel}:0"),
            format!("t={start_s} {end_s}"),
        ),
    };
    format!(
        "v=0\r\no={platform_id} 0 0 IN {family} {ip}\r\n{session}\r\nc=IN {family} {ip}\r\n{times}\r\n\
         m=video {port} {proto} 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n{tcp}y={ssrc:010}\r\n"
    )
}

/// The SSRC in an SDP's `y=` line.
pub fn sdp_ssrc(sdp: &str) -> Option<u32> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("y="))
        .and_then(|v| v.trim().parse().ok())
}

fn check_answer(resp: &Response, offered: u32, device: &str) {
    let body = String::from_utf8_lossy(resp.body());
    if let Some(answered) = sdp_ssrc(&body) {
        if answered != offered {
            warn!(
                device,
                offered, answered, "device answered another SSRC than offered"
            );
        }
    }
}

fn to_tag(resp: &Response) -> String {
    resp.to_header()
        .ok()
        .and_then(|t| t.typed().ok())
        .and_then(|t| t.tag().map(|t| t.value().to_owned()))
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

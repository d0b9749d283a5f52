//! Receiving PS over RTP from a device into the hub: over UDP, or over TCP where the device connects to
//! the platform (RFC 4571 framing), one port per stream from the configured range.
//!
//! Invariants:
//! - Whatever arrives (garbage, another SSRC, packets out of order, a PS with no video) never panics
//!   and never grows memory: the PS demuxer and the access unit assembler are bounded, late packets
//!   are dropped and counted as loss.
//! - Packets of another SSRC than the one offered in `y=` are still used (many devices ignore `y=`),
//!   but the mismatch is logged once: it is the commonest cause of "stream receive timeout".
//! - Over UDP the first sender of RTP is taken as the device; datagrams from other addresses are dropped
//!   (counted, logged once), so that nobody else can inject into a recording.

use crate::ingest::annexb::{AnnexB, Codec};
use crate::ingest::{DecodeTimes, Incoming, Publisher, RunError};
use crate::media::ps::{self, Demuxer, Frames};
use bytes::{Bytes, BytesMut};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tracing::{info, warn};

/// The largest access unit assembled from PS (a 4K keyframe fits).
/// How long connecting to a device's media may take (TCP where Vigil connects).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const MAX_FRAME: usize = 8 << 20;

/// The media port range, handing out free ports.
pub struct Ports {
    first: u16,
    last: u16,
    used: Mutex<BTreeSet<u16>>,
}

/// A port taken from [`Ports`]; given back when dropped.
pub struct Port<'a> {
    pub port: u16,
    ports: &'a Ports,
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        self.ports
            .used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.port);
    }
}

impl Ports {
    pub fn new(first: u16, last: u16) -> Ports {
        Ports {
            first,
            last,
            used: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn take(&self) -> Option<Port<'_>> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let port = (self.first..=self.last).find(|p| !used.contains(p))?;
        used.insert(port);
        Some(Port { port, ports: self })
    }
}

/// How the device sends media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaTransport {
    Udp,
    /// The platform listens, the device connects (SDP `a=setup:passive` on the platform's side).
    TcpPassive,
    /// TCP where Vigil connects to the address of the device's answer (`a=setup:active` offered).
    TcpActive,
}

/// A bound receive socket, before the device sends.
pub enum Receiver {
    Udp(UdpSocket),
    Tcp(TcpListener),
    /// TCP where Vigil connects: nothing to bind before the device's answer says where.
    Pending,
    Connected(TcpStream),
}

impl Receiver {
    pub async fn bind(
        ip: IpAddr,
        port: u16,
        transport: MediaTransport,
    ) -> std::io::Result<Receiver> {
        let addr = SocketAddr::new(ip, port);
        Ok(match transport {
            MediaTransport::Udp => Receiver::Udp(udp_socket(addr)?),
            MediaTransport::TcpPassive => Receiver::Tcp(TcpListener::bind(addr).await?),
            MediaTransport::TcpActive => Receiver::Pending,
        })
    }

    /// For TCP where Vigil connects: connects to the address of the device's SDP answer.
    pub async fn connect_to(self, answer: &str) -> std::io::Result<Receiver> {
        let Receiver::Pending = self else {
            return Ok(self);
        };
        let target = super::send::Target::parse(answer).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the answer names no media address",
            )
        })?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to the device's media",
                )
            })??;
        info!(device = %target.addr, "connected to the device's media (TCP)");
        Ok(Receiver::Connected(conn))
    }
}

/// Bytes of receive buffer asked for a media socket (the kernel caps it at `net.core.rmem_max`): a
/// keyframe of a 4 Mbit/s stream comes as a burst of some 150 datagrams, more than the default holds
/// while the server is busy with other streams.
const RECEIVE_BUFFER: usize = 4 << 20;

fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(e) = s.set_recv_buffer_size(RECEIVE_BUFFER) {
        warn!(error = %e, "media socket keeps its default receive buffer");
    }
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// One stream's receive state: RTP → PS → access units → frames.
/// What a playback session's MANSRTSP commands change in reception: the speed its timestamps are
/// scaled by (so that footage sent at 4x plays at 4x), and whether a silence is a pause rather than a
/// stall.
pub struct Steering {
    scale_bits: AtomicU64,
    paused: AtomicBool,
}

impl Default for Steering {
    fn default() -> Self {
        Steering {
            scale_bits: AtomicU64::new(1f64.to_bits()),
            paused: AtomicBool::new(false),
        }
    }
}

impl Steering {
    pub fn scale(&self) -> f64 {
        f64::from_bits(self.scale_bits.load(Ordering::Relaxed))
    }
    pub fn set_scale(&self, scale: f64) {
        self.scale_bits.store(scale.to_bits(), Ordering::Relaxed);
    }
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }
}

/// Footage time to playback time: divided by the scale, re-based where the scale changes or the
/// footage jumps (a seek), so that the output never jumps.
struct Rescale {
    steering: Arc<Steering>,
    scale: f64,
    base_in: i64,
    base_out: i64,
    last: Option<(i64, i64)>,
}

/// A jump of footage time larger than this is a seek, not a gap.
const SEEK_TICKS: i64 = 5 * 90_000;

impl Rescale {
    fn map(&mut self, pts: i64) -> i64 {
        let scale = self.steering.scale();
        if let Some((last_in, last_out)) = self.last {
            let seek = (pts - last_in).abs() > SEEK_TICKS;
            if seek || scale != self.scale {
                let step = if seek {
                    3_600
                } else {
                    ((pts - last_in) as f64 / self.scale) as i64
                };
                (self.base_in, self.base_out, self.scale) = (pts, last_out + step, scale);
            }
        } else {
            (self.base_in, self.base_out, self.scale) = (pts, 0, scale);
        }
        let out = self.base_out + ((pts - self.base_in) as f64 / self.scale) as i64;
        self.last = Some((pts, out));
        out
    }
}

pub struct Depacketizer {
    expected_ssrc: u32,
    warned_ssrc: bool,
    last_seq: Option<u16>,
    loss: u16,
    demux: Demuxer,
    frames: Frames,
    annexb: Option<AnnexB>,
    pts: Unwrap,
    rescale: Option<Rescale>,
    /// Why the stream cannot be used (an unsupported codec), once known.
    pub fatal: Option<RunError>,
}

impl Depacketizer {
    pub fn new(expected_ssrc: u32) -> Depacketizer {
        Depacketizer {
            expected_ssrc,
            warned_ssrc: false,
            last_seq: None,
            loss: 0,
            demux: Demuxer::new(),
            frames: Frames::new(MAX_FRAME),
            annexb: None,
            pts: Unwrap::default(),
            rescale: None,
            fatal: None,
        }
    }

    /// A depacketizer of playback: timestamps scaled by the session's speed.
    pub fn steered(expected_ssrc: u32, steering: Arc<Steering>) -> Depacketizer {
        let mut d = Depacketizer::new(expected_ssrc);
        d.rescale = Some(Rescale {
            steering,
            scale: 1.0,
            base_in: 0,
            base_out: 0,
            last: None,
        });
        d
    }

    /// Whether a silence of the source is expected (a paused playback).
    fn paused(&self) -> bool {
        self.rescale.as_ref().is_some_and(|r| r.steering.paused())
    }

    /// Takes one RTP packet; publishes the frames it completes.
    pub fn packet(&mut self, data: Bytes, out: &mut Publisher<'_>, decode: &mut DecodeTimes) {
        let Ok(p) = super::rtp::parse(data) else {
            return;
        };
        if p.ssrc != self.expected_ssrc && !self.warned_ssrc {
            self.warned_ssrc = true;
            warn!(
                offered = self.expected_ssrc,
                received = p.ssrc,
                "device sends another SSRC than the SDP's y="
            );
        }
        if let Some(last) = self.last_seq {
            let step = p.sequence.wrapping_sub(last);
            if step == 0 || step > 0x8000 {
                return; // duplicate or late: dropped
            }
            self.loss = self.loss.saturating_add(step - 1);
        }
        self.last_seq = Some(p.sequence);
        let arrived = Instant::now();
        for pes in self.demux.push(&p.payload) {
            if !pes.is_video() {
                continue;
            }
            if let Some(unit) = self.frames.push(pes) {
                self.unit(unit, arrived, out, decode);
            }
        }
    }

    fn unit(
        &mut self,
        unit: ps::VideoUnit,
        arrived: Instant,
        out: &mut Publisher<'_>,
        decode: &mut DecodeTimes,
    ) {
        let codec = match unit.stream_type {
            ps::STREAM_TYPE_H264 => Codec::H264,
            ps::STREAM_TYPE_H265 => Codec::H265,
            other => {
                self.fatal = Some(RunError::Unsupported(format!(
                    "PS stream type {other:#x}; only H.264 and H.265 are recorded"
                )));
                return;
            }
        };
        let conv = match &mut self.annexb {
            Some(c) if c.codec() == codec => c,
            _ => self.annexb.insert(AnnexB::new(codec)),
        };
        match conv.convert(&unit.data) {
            Ok(Some(u)) => {
                let mut pts = self.pts.next(unit.pts);
                if let Some(r) = &mut self.rescale {
                    pts = r.map(pts);
                }
                out.frame(
                    Incoming {
                        pts,
                        data: u.data,
                        keyframe: u.keyframe,
                        params: u.params,
                        loss: std::mem::take(&mut self.loss),
                        arrived,
                    },
                    decode,
                );
            }
            Ok(None) => {}
            Err(e) => self.fatal = Some(e),
        }
    }

    /// Bytes of PS dropped as garbage so far.
    pub fn skipped(&self) -> u64 {
        self.demux.skipped
    }
}

/// 33-bit PS timestamps to a rising 64-bit count.
#[derive(Default)]
struct Unwrap {
    last: Option<u64>,
    value: i64,
}

impl Unwrap {
    fn next(&mut self, raw: u64) -> i64 {
        const M: i64 = 1 << 33;
        if let Some(last) = self.last {
            let mut d = (raw as i64 - last as i64).rem_euclid(M);
            if d >= M / 2 {
                d -= M;
            }
            self.value += d;
        }
        self.last = Some(raw);
        self.value
    }
}

/// Receives until `until` resolves, the device stops sending for `stall`, or the stream proves
/// unusable. Returns why it ended.
pub async fn receive(
    rx: Receiver,
    ssrc: u32,
    steering: Option<Arc<Steering>>,
    stall: Duration,
    out: &mut Publisher<'_>,
    decode: &mut DecodeTimes,
) -> RunError {
    let mut d = match steering {
        Some(s) => Depacketizer::steered(ssrc, s),
        None => Depacketizer::new(ssrc),
    };
    let result = match rx {
        Receiver::Udp(socket) => udp(&socket, stall, &mut d, out, decode).await,
        Receiver::Tcp(listener) => match accept(&listener, stall).await {
            Ok(conn) => tcp(conn, stall, &mut d, out, decode).await,
            Err(e) => e,
        },
        Receiver::Connected(conn) => tcp(conn, stall, &mut d, out, decode).await,
        Receiver::Pending => RunError::Rtsp("media connection never made".into()),
    };
    if d.skipped() > 0 {
        info!(skipped = d.skipped(), "PS bytes skipped as garbage");
    }
    result
}

async fn udp(
    socket: &UdpSocket,
    stall: Duration,
    d: &mut Depacketizer,
    out: &mut Publisher<'_>,
    decode: &mut DecodeTimes,
) -> RunError {
    let mut buf = vec![0u8; 65_536];
    // The first sender of RTP is the device; datagrams from anywhere else are dropped (injection).
    let mut source: Option<SocketAddr> = None;
    let mut foreign = 0u64;
    loop {
        let (n, from) = match tokio::time::timeout(stall, socket.recv_from(&mut buf)).await {
            Err(_) if d.paused() => continue,
            Err(_) => return RunError::Stalled(stall),
            Ok(Err(e)) => return RunError::Rtsp(format!("media socket: {e}")),
            Ok(Ok(r)) => r,
        };
        match source {
            Some(s) if s != from => {
                foreign += 1;
                if foreign == 1 {
                    warn!(%from, device = %s, "media from another address than the device's dropped");
                }
                continue;
            }
            None if n >= 12 && buf[0] >> 6 == 2 => source = Some(from),
            _ => {}
        }
        d.packet(Bytes::copy_from_slice(&buf[..n]), out, decode);
        if let Some(e) = d.fatal.take() {
            return e;
        }
    }
}

/// Waits for the device to connect its media.
async fn accept(listener: &TcpListener, stall: Duration) -> Result<TcpStream, RunError> {
    let (conn, peer) = match tokio::time::timeout(stall, listener.accept()).await {
        Err(_) => return Err(RunError::Stalled(stall)),
        Ok(Err(e)) => return Err(RunError::Rtsp(format!("media listener: {e}"))),
        Ok(Ok(c)) => c,
    };
    info!(%peer, "device connected its media (TCP)");
    Ok(conn)
}

async fn tcp(
    mut conn: TcpStream,
    stall: Duration,
    d: &mut Depacketizer,
    out: &mut Publisher<'_>,
    decode: &mut DecodeTimes,
) -> RunError {
    let mut buf = BytesMut::with_capacity(128 << 10);
    loop {
        // RFC 4571: a two-byte length, then the packet.
        while buf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if buf.len() < 2 + len {
                break;
            }
            let mut frame = buf.split_to(2 + len);
            let packet = frame.split_off(2).freeze();
            d.packet(packet, out, decode);
            if let Some(e) = d.fatal.take() {
                return e;
            }
        }
        buf.reserve(64 << 10);
        match tokio::time::timeout(stall, conn.read_buf(&mut buf)).await {
            Err(_) if d.paused() => {}
            Err(_) => return RunError::Stalled(stall),
            Ok(Err(e)) => return RunError::Rtsp(format!("media connection: {e}")),
            Ok(Ok(0)) => return RunError::Ended,
            Ok(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rescale(steering: &Arc<Steering>) -> Rescale {
        Rescale {
            steering: steering.clone(),
            scale: 1.0,
            base_in: 0,
            base_out: 0,
            last: None,
        }
    }

    #[test]
    fn footage_time_is_divided_by_the_speed_and_never_jumps() {
        let steering = Arc::new(Steering::default());
        let mut r = rescale(&steering);
        // 1x: 40 ms frames stay 40 ms apart, counted from the first frame.
        assert_eq!(r.map(900_000), 0);
        assert_eq!(r.map(903_600), 3_600);
        // 4x from the next frame on: a quarter of the footage time.
        steering.set_scale(4.0);
        assert_eq!(r.map(907_200), 3_600 + 3_600);
        assert_eq!(r.map(910_800), 7_200 + 900);
        // A seek (footage jumps by minutes, either way) continues the output one frame later.
        let before = r.map(914_400);
        assert_eq!(r.map(914_400 + 90_000 * 120), before + 3_600);
        let after = r.map(914_400 + 90_000 * 120 + 3_600);
        assert_eq!(after, before + 3_600 + 900);
        assert_eq!(r.map(100_000), after + 3_600);
    }
}

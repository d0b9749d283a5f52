//! Sending PS over RTP to the address an INVITE's SDP names: over UDP, or over TCP where the sender
//! connects (RFC 4571 framing). Used by the upward cascade (Vigil answering a superior platform) and by
//! the simulated device.

use super::mansrtsp::{self, Command, MansrtspError};
use super::rtp;
use super::sip::{self, SipError, Stack};
use crate::media::ps;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::Transaction;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where and how the receiver wants the media, from its SDP offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub tcp: bool,
    pub ssrc: u32,
    /// `s=Playback` (or `Download`) with `t=START END` (Unix seconds): footage of that range, not live.
    pub playback: Option<(i64, i64)>,
    /// Over TCP, the receiver connects (`a=setup:active` in its offer): the sender listens.
    pub receiver_connects: bool,
}

impl Target {
    /// Reads `c=`, `m=video PORT PROTO` and `y=` of an offer. `None` without an address and port.
    pub fn parse(sdp: &str) -> Option<Target> {
        let (mut ip, mut port, mut tcp, mut ssrc) = (None, None, false, 0);
        let (mut recorded, mut range, mut connects) = (false, None, false);
        for line in sdp.lines().map(str::trim) {
            if let Some(c) = line
                .strip_prefix("c=IN IP4 ")
                .or_else(|| line.strip_prefix("c=IN IP6 "))
            {
                ip = c.trim().parse().ok();
            } else if let Some(m) = line.strip_prefix("m=video ") {
                let mut parts = m.split_whitespace();
                port = parts
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p != 0);
                tcp = parts
                    .next()
                    .is_some_and(|p| p.to_ascii_uppercase().starts_with("TCP"));
            } else if let Some(y) = line.strip_prefix("y=") {
                ssrc = y.trim().parse().unwrap_or(0);
            } else if line.eq_ignore_ascii_case("a=setup:active") {
                connects = true;
            } else if let Some(name) = line.strip_prefix("s=") {
                let name = name.trim();
                recorded =
                    name.eq_ignore_ascii_case("Playback") || name.eq_ignore_ascii_case("Download");
            } else if let Some(t) = line.strip_prefix("t=") {
                let mut parts = t.split_whitespace().map(|v| v.parse::<i64>().ok());
                if let (Some(Some(a)), Some(Some(b))) = (parts.next(), parts.next()) {
                    range = (a > 0 && b > a).then_some((a, b));
                }
            }
        }
        Some(Target {
            addr: SocketAddr::new(ip?, port?),
            tcp,
            ssrc,
            playback: if recorded { range } else { None },
            receiver_connects: tcp && connects,
        })
    }

    /// The SDP answer of a sender: PS, `sendonly`, the offer's SSRC; `listening` is the port the sender
    /// accepts the receiver's connection on, when the receiver connects.
    fn answer(&self, id: &str, local: std::net::IpAddr, listening: Option<u16>) -> String {
        let proto = if self.tcp { "TCP/RTP/AVP" } else { "RTP/AVP" };
        let setup = match (self.tcp, listening) {
            (false, _) => "",
            (true, None) => "a=setup:active\r\na=connection:new\r\n",
            (true, Some(_)) => "a=setup:passive\r\na=connection:new\r\n",
        };
        let port = listening.unwrap_or(9);
        format!(
            "v=0\r\no={id} 0 0 IN IP4 {local}\r\ns=Play\r\nc=IN IP4 {local}\r\nt=0 0\r\nm=video {port} {proto} 96\r\n\
             a=sendonly\r\na=rtpmap:96 PS/90000\r\n{setup}y={:010}\r\n",
            self.ssrc
        )
        .replacen("s=Play\r\n", self.session_line(), 1)
    }
}

impl Target {
    fn session_line(&self) -> &'static str {
        if self.playback.is_some() {
            "s=Playback\r\n"
        } else {
            "s=Play\r\n"
        }
    }
}

/// How long a listening sender waits for the receiver to connect.
const ACCEPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The sender's end of an answered INVITE: the target, and a listener when the receiver connects.
pub struct Answering {
    pub target: Target,
    listener: Option<tokio::net::TcpListener>,
    answer: String,
}

impl Answering {
    /// Prepares the answer of `id` at `local` (binding a listener there when the receiver connects).
    pub async fn new(
        target: Target,
        id: &str,
        local: std::net::IpAddr,
    ) -> std::io::Result<Answering> {
        let listener = if target.receiver_connects {
            Some(tokio::net::TcpListener::bind(SocketAddr::new(local, 0)).await?)
        } else {
            None
        };
        let port = match &listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let answer = target.answer(id, local, port);
        Ok(Answering {
            target,
            listener,
            answer,
        })
    }

    /// The SDP answer.
    pub fn answer(&self) -> &str {
        &self.answer
    }

    /// The media link: connected to the target, or the receiver's connection accepted.
    pub async fn open(self, video_type: u8) -> std::io::Result<PsSink> {
        let Some(listener) = self.listener else {
            return PsSink::open(&self.target, video_type).await;
        };
        let (stream, _) = tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept())
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the receiver never connected")
            })??;
        stream.set_nodelay(true)?;
        Ok(PsSink::with_link(
            Link::Tcp(stream),
            &self.target,
            video_type,
        ))
    }
}

/// Answers an INVITE as the sender of its media, as `id` at the stack's address: 488 for an offer that
/// names no address, 500 without a media socket, else 200 with the SDP answer. The prepared sender, or
/// `None` when the INVITE was refused.
pub async fn accept_invite(
    tx: &mut Transaction,
    stack: &Stack,
    id: &str,
) -> Result<Option<Answering>, SipError> {
    let Some(target) = Target::parse(&String::from_utf8_lossy(tx.original.body())) else {
        tx.reply(StatusCode::NotAcceptableHere).await?;
        return Ok(None);
    };
    let answering = match Answering::new(target, id, stack.contact_addr.ip()).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "no media socket for an INVITE");
            tx.reply(StatusCode::ServerInternalError).await?;
            return Ok(None);
        }
    };
    let headers = vec![
        Header::ContentType(sip::SDP.into()),
        Header::Contact(format!("<sip:{id}@{}>", stack.contact_addr).into()),
    ];
    let answer = answering.answer().as_bytes().to_vec();
    tx.reply_with(StatusCode::OK, headers, Some(answer)).await?;
    Ok(Some(answering))
}

/// The media sessions a sender serves, by Call-ID: a BYE ends one, an INFO (MANSRTSP) steers a playback.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

struct Session {
    cancel: CancellationToken,
    control: Option<mpsc::Sender<Command>>,
}

impl Sessions {
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a session: its end, and for a playback the receiver of its commands.
    pub fn open(
        &self,
        call: &str,
        playback: bool,
    ) -> (CancellationToken, Option<mpsc::Receiver<Command>>) {
        let cancel = CancellationToken::new();
        let (control, steer) = if playback {
            let (tx, rx) = mpsc::channel(8);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let session = Session {
            cancel: cancel.clone(),
            control,
        };
        self.lock().insert(call.to_owned(), session);
        (cancel, steer)
    }

    /// Ends a session (the receiver's BYE); whether it was known.
    pub fn bye(&self, call: &str) -> bool {
        let session = self.lock().remove(call);
        session.map(|s| s.cancel.cancel()).is_some()
    }

    /// Forgets a session that ended by itself.
    pub fn remove(&self, call: &str) {
        self.lock().remove(call);
    }

    /// Passes an INFO's MANSRTSP on to its playback: 200, 481 without such a session, 503 when its
    /// commands queue up; an error for a body that is not MANSRTSP.
    pub fn steer(&self, call: &str, body: &[u8]) -> Result<(Command, StatusCode), MansrtspError> {
        let cmd = mansrtsp::parse(body)?;
        let control = self.lock().get(call).and_then(|s| s.control.clone());
        let status = match control {
            Some(c) if c.try_send(cmd).is_ok() => StatusCode::OK,
            Some(_) => StatusCode::ServiceUnavailable,
            None => StatusCode::CallTransactionDoesNotExist,
        };
        Ok((cmd, status))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Link {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
}

/// One outgoing PS-over-RTP stream.
pub struct PsSink {
    link: Link,
    video_type: u8,
    ssrc: u32,
    seq: u16,
    ps: Vec<u8>,
    out: Vec<u8>,
}

impl PsSink {
    /// Connects (TCP) or binds a socket (UDP) towards the target.
    pub async fn open(target: &Target, video_type: u8) -> std::io::Result<PsSink> {
        let link = if target.tcp {
            let s = TcpStream::connect(target.addr).await?;
            s.set_nodelay(true)?;
            Link::Tcp(s)
        } else {
            let bind: SocketAddr = if target.addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            Link::Udp(UdpSocket::bind(bind).await?, target.addr)
        };
        Ok(PsSink::with_link(link, target, video_type))
    }

    fn with_link(link: Link, target: &Target, video_type: u8) -> PsSink {
        PsSink {
            link,
            video_type,
            ssrc: target.ssrc,
            seq: rand::random(),
            ps: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Sends one Annex B access unit (90 kHz times).
    pub async fn frame(
        &mut self,
        annexb: &[u8],
        pts: u64,
        dts: u64,
        keyframe: bool,
    ) -> std::io::Result<()> {
        self.ps.clear();
        self.out.clear();
        ps::mux_frame(&mut self.ps, self.video_type, pts, dts, keyframe, annexb);
        let framed = matches!(self.link, Link::Tcp(_));
        rtp::packetize(
            &mut self.out,
            &self.ps,
            &mut self.seq,
            pts as u32,
            self.ssrc,
            framed,
        );
        match &mut self.link {
            Link::Tcp(s) => s.write_all(&self.out).await,
            Link::Udp(sock, addr) => {
                let mut at = 0;
                for len in rtp::packet_spans(self.ps.len()) {
                    sock.send_to(&self.out[at..at + len], *addr).await?;
                    at += len;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_offers_of_platforms() {
        let udp = "v=0\r\nc=IN IP4 10.1.2.3\r\nm=video 30000 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n";
        let t = Target::parse(udp).unwrap();
        assert_eq!(
            (t.addr, t.tcp, t.ssrc),
            ("10.1.2.3:30000".parse().unwrap(), false, 100_000_001)
        );
        let tcp = udp.replace("RTP/AVP", "TCP/RTP/AVP");
        assert!(Target::parse(&tcp).unwrap().tcp);
        assert_eq!(t.playback, None);
        let playback = udp.replace(
            "v=0\r\n",
            "v=0\r\ns=Playback\r\nt=1700000000 1700000060\r\n",
        );
        let p = Target::parse(&playback).unwrap();
        assert_eq!(p.playback, Some((1_700_000_000, 1_700_000_060)));
        assert!(p
            .answer("1", [127, 0, 0, 1].into(), None)
            .contains("s=Playback\r\n"));
        let active = tcp.replace("y=", "a=setup:active\r\ny=");
        let a = Target::parse(&active).unwrap();
        assert!(a.receiver_connects);
        let answer = a.answer("1", [127, 0, 0, 1].into(), Some(4000));
        assert!(answer.contains("m=video 4000 TCP/RTP/AVP") && answer.contains("a=setup:passive"));
        assert!(Target::parse("v=0\r\nm=video 0 RTP/AVP 96\r\n").is_none());
        assert!(Target::parse("garbage").is_none());
    }
}

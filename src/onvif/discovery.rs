//! WS-Discovery (ONVIF Core §7.3): a Probe for NetworkVideoTransmitters sent to 239.255.255.250:3702 from
//! each interface an admin picked, and the ProbeMatches that answer it within a deadline.
//!
//! Invariants: an answer counts only when it relates to this probe's MessageID and every address it
//! gives is on the host that sent it: a forged answer pointing elsewhere (a camera that is not there, a
//! server to be probed with the admin's password) is set aside with the reason, never added or called.
//! Answers are read to [`MAX_DATAGRAM`] bytes each and [`MAX_DEVICES`] devices; nothing is added to
//! Vigil by discovery.

use super::soap::{self, Doc};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
pub const PORT: u16 = 3702;
pub const MAX_DATAGRAM: usize = 16 << 10;
pub const MAX_DEVICES: usize = 256;
const WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
const DN: &str = "http://www.onvif.org/ver10/network/wsdl";
pub const PROBE_ACTION: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe";
pub const MATCHES_ACTION: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches";

/// A device that answered: who sent it and its service addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub from: IpAddr,
    pub xaddrs: Vec<url::Url>,
}

/// An answer set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub from: String,
    pub xaddrs: String,
    pub why: String,
}

/// A WS-Discovery message: WS-Addressing `action`, `header` (its ids) and `body`.
fn message(action: &str, header: impl FnOnce(&mut Doc), body: impl FnOnce(&mut Doc)) -> Vec<u8> {
    let mut d = Doc::new();
    let ns = [
        ("xmlns:s", soap::ENV),
        ("xmlns:a", WSA),
        ("xmlns:d", WSD),
        ("xmlns:dn", DN),
    ];
    d.open("s:Envelope", &ns)
        .open("s:Header", &[])
        .field("a:Action", &[], action);
    header(&mut d);
    d.close("s:Header").open("s:Body", &[]);
    body(&mut d);
    d.close("s:Body").close("s:Envelope");
    d.finish()
}

/// A Probe with `message_id`.
pub fn probe(message_id: &str) -> Vec<u8> {
    message(
        PROBE_ACTION,
        |d| {
            d.field("a:MessageID", &[], message_id).field(
                "a:To",
                &[],
                "urn:schemas-xmlsoap-org:ws:2005:04:discovery",
            );
        },
        |d| {
            d.open("d:Probe", &[])
                .field("d:Types", &[], "dn:NetworkVideoTransmitter")
                .close("d:Probe");
        },
    )
}

/// The ProbeMatches answer (the simulator's): `xaddr` for a probe of `relates_to`.
pub fn probe_matches(relates_to: &str, endpoint: &str, xaddr: &str) -> Vec<u8> {
    message(
        MATCHES_ACTION,
        |d| {
            d.field("a:MessageID", &[], &format!("urn:uuid:{}", uuid()))
                .field("a:RelatesTo", &[], relates_to);
        },
        |d| {
            d.open("d:ProbeMatches", &[])
                .open("d:ProbeMatch", &[])
                .open("a:EndpointReference", &[])
                .field("a:Address", &[], endpoint)
                .close("a:EndpointReference")
                .field("d:Types", &[], "dn:NetworkVideoTransmitter")
                .field("d:XAddrs", &[], xaddr)
                .field("d:MetadataVersion", &[], "1")
                .close("d:ProbeMatch")
                .close("d:ProbeMatches");
        },
    )
}

/// A random UUID (v4) as text.
pub fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The MessageID a Probe carries, for an answer's RelatesTo (the simulator's side).
pub fn message_id(envelope: &crate::xml::Element) -> Option<&str> {
    envelope.child("Header")?.text_of("MessageID")
}

/// Reads one answer to the probe `message_id` from `from`: the device, or why it is set aside; None for
/// a datagram that is not an answer to this probe.
pub fn read_answer(
    bytes: &[u8],
    from: IpAddr,
    message_id: &str,
) -> Option<Result<Found, Rejected>> {
    let env = crate::xml::parse(bytes).ok()?;
    let header = env.child("Header")?;
    if header.text_of("RelatesTo") != Some(message_id) {
        return None;
    }
    let m = env
        .child("Body")?
        .child("ProbeMatches")?
        .child("ProbeMatch")?;
    let text = m.text_of("XAddrs").unwrap_or_default();
    let reject = |why: &str| {
        Some(Err(Rejected {
            from: from.to_string(),
            xaddrs: text.chars().take(300).collect(),
            why: why.to_owned(),
        }))
    };
    let mut xaddrs = Vec::new();
    for a in text.split_whitespace().take(8) {
        let Ok(u) = url::Url::parse(a) else {
            return reject("an address is not a URL");
        };
        if !matches!(u.scheme(), "http" | "https") {
            return reject("an address is not http(s)");
        }
        let host = u
            .host_str()
            .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok());
        if host != Some(from) {
            return reject("the answer points to another host than the one that sent it");
        }
        xaddrs.push(u);
    }
    if xaddrs.is_empty() {
        return reject("no service address");
    }
    Some(Ok(Found { from, xaddrs }))
}

/// Probes from each interface address in `interfaces` and gathers answers until `wait` has passed. One
/// socket: the probe leaves by each interface in turn, the answers come back to its port.
pub async fn discover(
    interfaces: &[Ipv4Addr],
    wait: Duration,
) -> std::io::Result<(Vec<Found>, Vec<Rejected>)> {
    let message_id = format!("urn:uuid:{}", uuid());
    let body = probe(&message_id);
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_multicast_ttl_v4(1)?;
    s.set_multicast_loop_v4(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).into())?;
    for ip in interfaces {
        s.set_multicast_if_v4(ip)?;
        s.send_to(&body, &SocketAddr::new(IpAddr::V4(GROUP), PORT).into())?;
    }
    let socket = UdpSocket::from_std(s.into())?;
    let mut found: BTreeMap<IpAddr, Found> = BTreeMap::new();
    let mut rejected = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while found.len() < MAX_DEVICES && rejected.len() < MAX_DEVICES {
        let Ok(got) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await else {
            break;
        };
        let Ok((n, from)) = got else { continue };
        match read_answer(&buf[..n], from.ip(), &message_id) {
            Some(Ok(f)) => {
                found.entry(f.from).or_insert(f);
            }
            Some(Err(r)) => {
                tracing::warn!(from = %r.from, xaddrs = %r.xaddrs, why = %r.why, "ONVIF discovery answer set aside");
                rejected.push(r);
            }
            None => {}
        }
    }
    Ok((found.into_values().collect(), rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_taken_only_from_the_host_they_name() {
        let id = "urn:uuid:1";
        let from: IpAddr = "192.0.2.7".parse().unwrap();
        let ok = probe_matches(
            id,
            "urn:uuid:dev",
            "http://192.0.2.7:8080/onvif/device_service",
        );
        let f = read_answer(&ok, from, id)
            .expect("an answer")
            .expect("accepted");
        assert_eq!(f.xaddrs[0].port(), Some(8080));
        // Another probe's answer is not ours.
        assert!(read_answer(&ok, from, "urn:uuid:2").is_none());
        // Forged: sent by one host, pointing to another.
        let forged = probe_matches(
            id,
            "urn:uuid:dev",
            "http://203.0.113.9/onvif/device_service",
        );
        let r = read_answer(&forged, from, id)
            .expect("an answer")
            .expect_err("set aside");
        assert!(r.why.contains("another host"), "{r:?}");
        let odd = probe_matches(id, "urn:uuid:dev", "file:///etc/passwd");
        assert!(read_answer(&odd, from, id).expect("an answer").is_err());
        assert!(read_answer(b"\x00garbage<", from, id).is_none());
        let p = crate::xml::parse(&probe(id)).expect("parses");
        assert_eq!(message_id(&p), Some(id));
    }
}

//! RTP as GB/T 28181 carries PS: the fixed header (RFC 3550 §5.1) read and written, and the RFC 4571
//! two-byte length framing of RTP over TCP.
//!
//! Invariants: [`parse`] accepts only version 2 packets whose CSRC list, extension and padding fit
//! inside the packet; it never panics on any input.

use bytes::{BufMut, Bytes};

/// The payload type GB/T 28181 uses for PS (dynamic, announced as `PS/90000`).
pub const PAYLOAD_TYPE_PS: u8 = 96;
/// RTP payload bytes per packet Vigil and its simulator send (fits an Ethernet MTU with headers).
pub const MAX_PAYLOAD: usize = 1400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload_type: u8,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("RTP packet of {0} bytes is too short")]
    Short(usize),
    #[error("RTP version {0}, not 2")]
    Version(u8),
    #[error("RTP header extension or padding runs past the packet")]
    Overrun,
}

/// Reads one RTP packet.
pub fn parse(data: Bytes) -> Result<Packet, RtpError> {
    if data.len() < 12 {
        return Err(RtpError::Short(data.len()));
    }
    let version = data[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let padding = data[0] & 0x20 != 0;
    let extension = data[0] & 0x10 != 0;
    let csrc = usize::from(data[0] & 0x0f);
    let mut start = 12 + 4 * csrc;
    if extension {
        let words = data.get(start + 2..start + 4).ok_or(RtpError::Overrun)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = data.len();
    if padding {
        let pad = usize::from(data[end - 1]);
        end = end.checked_sub(pad).ok_or(RtpError::Overrun)?;
    }
    if start > end {
        return Err(RtpError::Overrun);
    }
    Ok(Packet {
        sequence: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        marker: data[1] & 0x80 != 0,
        payload_type: data[1] & 0x7f,
        payload: data.slice(start..end),
    })
}

/// Splits `payload` (one frame's PS bytes) into RTP packets, the marker on the last; `seq` advances.
/// With `framed`, each packet is preceded by its RFC 4571 length (for TCP).
pub fn packetize(
    out: &mut Vec<u8>,
    payload: &[u8],
    seq: &mut u16,
    timestamp: u32,
    ssrc: u32,
    framed: bool,
) {
    let chunks = payload.chunks(MAX_PAYLOAD);
    let n = chunks.len();
    for (i, chunk) in chunks.enumerate() {
        if framed {
            out.put_u16((12 + chunk.len()) as u16);
        }
        out.put_u8(0x80);
        out.put_u8(PAYLOAD_TYPE_PS | if i + 1 == n { 0x80 } else { 0 });
        out.put_u16(*seq);
        out.put_u32(timestamp);
        out.put_u32(ssrc);
        out.extend_from_slice(chunk);
        *seq = seq.wrapping_add(1);
    }
}

/// Packet boundaries of the [`packetize`] output without framing: `(start, end)` of each packet.
pub fn packet_spans(payload_len: usize) -> impl Iterator<Item = usize> {
    (0..payload_len.div_ceil(MAX_PAYLOAD))
        .map(move |i| (payload_len - i * MAX_PAYLOAD).min(MAX_PAYLOAD) + 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packetize_then_parse() {
        let ps: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let mut seq = 65535;
        packetize(&mut out, &ps, &mut seq, 90_000, 0x1234, false);
        assert_eq!(seq, 2);
        let mut at = 0;
        let mut joined = Vec::new();
        let spans: Vec<usize> = packet_spans(ps.len()).collect();
        assert_eq!(spans.len(), 3);
        for (i, len) in spans.iter().enumerate() {
            let p = parse(Bytes::copy_from_slice(&out[at..at + len])).unwrap();
            assert_eq!(p.marker, i == 2);
            assert_eq!(p.ssrc, 0x1234);
            joined.extend_from_slice(&p.payload);
            at += len;
        }
        assert_eq!(joined, ps);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(
            parse(Bytes::from_static(&[0x80; 5])),
            Err(RtpError::Short(5))
        );
        assert_eq!(
            parse(Bytes::from_static(&[0x40; 12])),
            Err(RtpError::Version(1))
        );
        let mut ext = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff];
        assert_eq!(parse(Bytes::from(ext.clone())), Err(RtpError::Overrun));
        ext[0] = 0xa0;
        ext[15] = 200;
        assert_eq!(parse(Bytes::from(ext)), Err(RtpError::Overrun));
    }
}

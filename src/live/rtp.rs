//! The WebRTC side of live view, per stream: one task turns the hub's H.264 frames into RTP payloads
//! (RFC 6184: single NAL unit packets and FU-A fragments), once, and shares them with every WebRTC viewer.
//! A viewer's session ([`super::rtc`]) adds only what must differ per viewer: SSRC, sequence numbers and
//! SRTP (str0m in RTP mode).
//!
//! Invariants:
//! - Payloads are `Arc<[u8]>`, built once per stream; str0m takes them as they are.
//! - A keyframe's packets start with the SPS and PPS (from the stream's parameters when the frame does not
//!   carry them), so any keyframe is a valid start for a decoder.
//! - The RTP clock is the hub's continuous [`Timeline`] (as the MSE fragments' decode time is), so it
//!   never goes back across camera reconnects.
//! - Publishing never waits: the stream's RTP frames are a hub [`Ring`], with a cursor per viewer; a
//!   lagging viewer skips to the next keyframe.

use super::vui;
use crate::hub::{
    Frame, ResumePoint, Ring, StreamKey, Subscriber, Timeline, VideoParams, GOP_CACHE_BYTES,
};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Largest RTP payload: fits a 1200-byte datagram with RTP header, extensions and SRTP tag.
pub const MAX_PAYLOAD: usize = 1_100;

#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub payload: Arc<[u8]>,
    /// Last packet of the frame.
    pub marker: bool,
}

/// The packets of one frame.
#[derive(Debug)]
pub struct RtpFrame {
    pub packets: Vec<RtpPacket>,
    /// 90 kHz RTP time (before each viewer's random offset).
    pub time: u32,
    pub keyframe: bool,
    /// When the packetizer received the frame from the hub.
    pub received: std::time::Instant,
    /// H.264 `profile_idc`, for choosing the payload type; 0 when unknown.
    pub profile: u8,
}

pub type Item = Arc<RtpFrame>;

/// State shared between a stream's RTP task and its viewers: the hub's ring type, over RTP frames.
pub struct RtpShared {
    ring: Ring<Item>,
}

impl ResumePoint for Item {
    fn is_resume_point(&self) -> bool {
        self.keyframe
    }
    fn size(&self) -> usize {
        self.packets.iter().map(|p| p.payload.len()).sum()
    }
}

/// One viewer's cursor into the stream's ring (the hub's skip-to-resume-point receiver).
pub type RtpViewer = Subscriber<Item>;

impl RtpShared {
    pub fn new(queue: usize) -> RtpShared {
        RtpShared {
            ring: Ring::new(queue, GOP_CACHE_BYTES),
        }
    }

    /// The cached GOP (keyframe first) and a cursor on what follows it.
    pub fn join(&self) -> (Vec<Item>, RtpViewer) {
        self.ring.subscribe()
    }

    fn publish(&self, f: Item) {
        self.ring.publish(f);
    }
}

/// Iterates the NAL units of a length-prefixed access unit; stops at the first malformed length.
pub fn nal_units(au: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut p = 0;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(au.get(p..p + 4)?.try_into().ok()?) as usize;
        let nal = au.get(p + 4..p + 4 + len)?;
        p += 4 + len;
        Some(nal)
    })
}

/// SPS and PPS NAL units from an `avcC` body.
pub fn parameter_sets(avcc: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let Some(&n) = avcc.get(5) else { return out };
    let mut p = 6;
    let mut take = |count: usize, p: &mut usize| {
        for _ in 0..count {
            let Some(len) = avcc
                .get(*p..*p + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            else {
                return;
            };
            if let Some(nal) = avcc.get(*p + 2..*p + 2 + len) {
                out.push(nal);
            }
            *p += 2 + len;
        }
    };
    take(usize::from(n & 0x1f), &mut p);
    let pps = avcc.get(p).copied().unwrap_or(0);
    p += 1;
    take(usize::from(pps), &mut p);
    out
}

/// Appends the RTP payloads of one NAL unit.
fn packetize_nal(nal: &[u8], out: &mut Vec<RtpPacket>) {
    let Some((&header, body)) = nal.split_first() else {
        return;
    };
    if nal.len() <= MAX_PAYLOAD {
        out.push(RtpPacket {
            payload: Arc::from(nal),
            marker: false,
        });
        return;
    }
    let indicator = (header & 0xe0) | 28; // FU-A
    let kind = header & 0x1f;
    let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut p = Vec::with_capacity(chunk.len() + 2);
        p.push(indicator);
        p.push(kind | if i == 0 { 0x80 } else { 0 } | if i == last { 0x40 } else { 0 });
        p.extend_from_slice(chunk);
        out.push(RtpPacket {
            payload: Arc::from(p),
            marker: false,
        });
    }
}

/// The RTP payloads of an access unit (length-prefixed NAL units); `sets` are put before a keyframe
/// that does not carry its own SPS and PPS.
pub fn packetize(au: &[u8], keyframe: bool, sets: &[Vec<u8>]) -> Vec<RtpPacket> {
    let mut out = Vec::new();
    let has_sps = nal_units(au).any(|n| n.first().is_some_and(|h| h & 0x1f == 7));
    if keyframe && !has_sps {
        for s in sets {
            packetize_nal(s, &mut out);
        }
    }
    for nal in nal_units(au) {
        // Access unit delimiters carry nothing a WebRTC decoder needs.
        if nal.first().is_some_and(|h| h & 0x1f == 9) {
            continue;
        }
        packetize_nal(nal, &mut out);
    }
    if let Some(last) = out.last_mut() {
        last.marker = true;
    }
    out
}

/// Turns frames into RTP payloads and publishes them.
pub struct Builder {
    params: Option<Arc<VideoParams>>,
    sets: Vec<Vec<u8>>,
    profile: u8,
    rewrite_vui: bool,
    timeline: Timeline,
}

impl Builder {
    /// A builder that has published the hub's cached GOP into the cache (see [`super::mse::Builder::new`]).
    pub fn new(shared: &RtpShared, gop: &[Arc<Frame>], rewrite_vui: bool) -> Builder {
        let mut b = Builder {
            params: None,
            sets: Vec::new(),
            profile: 0,
            rewrite_vui,
            timeline: Timeline::default(),
        };
        for f in gop {
            b.push(shared, f);
        }
        b
    }

    fn push(&mut self, shared: &RtpShared, frame: &Frame) {
        let received = std::time::Instant::now();
        if frame.params.is_h265() {
            return; // WebRTC here carries H.264 only; H.265 goes through the transcode path.
        }
        if self
            .params
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, &frame.params))
        {
            self.params = Some(frame.params.clone());
            self.profile = frame.params.extra_data.get(1).copied().unwrap_or(0);
            self.sets = parameter_sets(&frame.params.extra_data)
                .into_iter()
                .map(|n| {
                    if self.rewrite_vui && n.first().is_some_and(|h| h & 0x1f == 7) {
                        vui::rewrite_sps(n).unwrap_or_else(|_| n.to_vec())
                    } else {
                        n.to_vec()
                    }
                })
                .collect();
        }
        // RTP time wraps at 32 bits by design (RFC 3550); each viewer adds its own random offset. It is
        // the presentation time: with B-frames it goes back and forth in decode order, as the camera sent it.
        let dts = self.timeline.place(frame).0;
        let time = dts.wrapping_add(u64::from(frame.composition_offset)) as u32;
        let data = if self.rewrite_vui {
            vui::rewrite_in_band(&frame.data)
        } else {
            frame.data.clone()
        };
        shared.publish(Arc::new(RtpFrame {
            packets: packetize(&data, frame.keyframe, &self.sets),
            time,
            keyframe: frame.keyframe,
            received,
            profile: self.profile,
        }));
    }
}

/// Builds RTP payloads for one stream until `cancel` fires or the stream is removed.
pub async fn run(
    key: StreamKey,
    mut builder: Builder,
    sub: Subscriber,
    shared: Arc<RtpShared>,
    cancel: CancellationToken,
) {
    super::fanout::feed(key, "rtp", sub, cancel, |f| builder.push(&shared, f)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_nal_units_become_fu_a_and_the_last_packet_is_marked() {
        let mut au = Vec::new();
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..3000).map(|i| i as u8))
            .collect();
        au.extend((big.len() as u32).to_be_bytes());
        au.extend(&big);
        let sets = vec![vec![0x67, 1, 2], vec![0x68, 3]];
        let pk = packetize(&au, true, &sets);
        assert_eq!(&*pk[0].payload, &[0x67, 1, 2]);
        assert_eq!(&*pk[1].payload, &[0x68, 3]);
        assert_eq!(pk[2].payload[0], 0x7c); // FU-A, NRI of the IDR
        assert_eq!(pk[2].payload[1], 0x85); // start, type 5
        assert!(pk.iter().all(|p| p.payload.len() <= MAX_PAYLOAD));
        let last = pk.last().expect("packets");
        assert!(last.marker && last.payload[1] == 0x45);
        assert_eq!(pk.iter().filter(|p| p.marker).count(), 1);
        // Reassembly gives the NAL unit back.
        let mut nal = vec![(pk[2].payload[0] & 0xe0) | (pk[2].payload[1] & 0x1f)];
        for p in &pk[2..] {
            nal.extend_from_slice(&p.payload[2..]);
        }
        assert_eq!(nal, big);
    }

    #[test]
    fn malformed_access_units_give_no_panic() {
        for au in [
            &[0u8, 0, 0, 9, 1][..],
            &[],
            &[0, 0, 0, 0],
            &[255, 255, 255, 255, 1],
        ] {
            let _ = packetize(au, true, &[]);
            let _ = parameter_sets(au);
        }
    }
}

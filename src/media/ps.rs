//! MPEG-2 program stream (ISO/IEC 13818-1 §2.5), as GB/T 28181 devices send it over RTP: a streaming
//! demuxer that turns bytes into elementary-stream packets, and the muxer that Vigil and its simulator
//! use to send frames the same way.
//!
//! The demuxer is fed bytes from outside (RTP payloads of a device) and so must survive anything:
//! - It keeps at most [`MAX_BUFFER`] bytes of an incomplete unit; beyond that, or on bytes that are no
//!   start code where one must be, it drops up to the next plausible start code and counts the bytes
//!   it skipped (`skipped`), never panics and never stalls.
//! - Units split across pushes (packs and PES cut by RTP packet boundaries) are reassembled.
//! - Vendor quirks are tolerated: private stream 1 (0xBD) and padding/private 2 (0xBE/0xBF) packets
//!   are skipped, G.711 audio (stream types 0x90/0x91) is passed on as audio, a PES of length 0 is
//!   refused (a PS must bound its PES; such bytes are skipped to the next start code), and a video stream
//!   whose program stream map has not arrived yet is typed by its first NAL unit.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of incomplete input the demuxer keeps before it gives up on the unit and resynchronises.
pub const MAX_BUFFER: usize = 2 << 20;

pub const STREAM_TYPE_H264: u8 = 0x1b;
pub const STREAM_TYPE_H265: u8 = 0x24;

/// The stream type of a video codec.
pub fn video_type(h265: bool) -> u8 {
    if h265 {
        STREAM_TYPE_H265
    } else {
        STREAM_TYPE_H264
    }
}
pub const STREAM_TYPE_AAC: u8 = 0x0f;
pub const STREAM_TYPE_G711A: u8 = 0x90;
pub const STREAM_TYPE_G711U: u8 = 0x91;

const PACK_START: u8 = 0xba;
const SYSTEM_HEADER: u8 = 0xbb;
const PROGRAM_STREAM_MAP: u8 = 0xbc;
const END_CODE: u8 = 0xb9;
const VIDEO_ID: u8 = 0xe0;
const AUDIO_ID: u8 = 0xc0;

/// One elementary-stream packet (PES payload) out of the program stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    pub stream_id: u8,
    /// From the program stream map; for video before any map, guessed from the first NAL unit; 0 when
    /// unknown.
    pub stream_type: u8,
    /// 90 kHz, 33 bits.
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub payload: Bytes,
}

impl Pes {
    pub fn is_video(&self) -> bool {
        (0xe0..=0xef).contains(&self.stream_id)
    }
    pub fn is_audio(&self) -> bool {
        (0xc0..=0xdf).contains(&self.stream_id)
    }
}

/// A streaming program-stream demuxer.
#[derive(Default)]
pub struct Demuxer {
    buf: BytesMut,
    /// stream_id → stream_type, from the last program stream map.
    map: Vec<(u8, u8)>,
    /// Bytes dropped while resynchronising (garbage, overlong units).
    pub skipped: u64,
}

enum Step {
    /// A unit was consumed; maybe a PES came out of it.
    Unit(Option<Pes>),
    /// Not enough bytes for the unit at the front.
    NeedMore,
    /// The front is not a valid unit: drop bytes up to the next start code.
    Resync,
}

impl Demuxer {
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    /// Adds bytes and returns every PES completed by them.
    pub fn push(&mut self, data: &[u8]) -> Vec<Pes> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            match self.step() {
                Step::Unit(Some(pes)) => out.push(pes),
                Step::Unit(None) => {}
                Step::NeedMore => {
                    if self.buf.len() > MAX_BUFFER {
                        self.resync(1);
                        continue;
                    }
                    return out;
                }
                Step::Resync => self.resync(1),
            }
        }
    }

    /// The stream type the map (or a guess) gives a stream id.
    pub fn stream_type(&self, stream_id: u8) -> Option<u8> {
        self.map
            .iter()
            .find(|(id, _)| *id == stream_id)
            .map(|(_, t)| *t)
    }

    /// Drops at least `min` bytes, then everything before the next `00 00 01 xx` with a known id.
    fn resync(&mut self, min: usize) {
        let from = min.min(self.buf.len());
        let next = self.buf[from..]
            .windows(4)
            .position(|w| w[..3] == [0, 0, 1] && is_known_id(w[3]))
            .map(|p| p + from);
        // Keep a possible start code cut at the end of the buffer.
        let drop = next.unwrap_or_else(|| self.buf.len().saturating_sub(3).max(from));
        self.skipped += drop as u64;
        self.buf.advance(drop);
    }

    fn step(&mut self) -> Step {
        let b = &self.buf[..];
        if b.len() < 4 {
            return Step::NeedMore;
        }
        if b[..3] != [0, 0, 1] {
            return Step::Resync;
        }
        match b[3] {
            PACK_START => self.pack_header(),
            END_CODE => {
                self.buf.advance(4);
                Step::Unit(None)
            }
            PROGRAM_STREAM_MAP => self.with_length(|d, body| {
                d.read_map(body);
                None
            }),
            id if is_pes_id(id) => self.with_length(move |d, body| d.read_pes(id, body)),
            SYSTEM_HEADER | 0xbd..=0xbf => self.with_length(|_, _| None),
            _ => Step::Resync,
        }
    }

    fn pack_header(&mut self) -> Step {
        let b = &self.buf[..];
        if b.len() < 14 {
            return Step::NeedMore;
        }
        // MPEG-2 packs start with '01'; MPEG-1 packs ('0010') are 12 bytes and have no stuffing.
        let len = if b[4] >> 6 == 0b01 {
            14 + usize::from(b[13] & 7)
        } else if b[4] >> 4 == 0b0010 {
            12
        } else {
            return Step::Resync;
        };
        if b.len() < len {
            return Step::NeedMore;
        }
        self.buf.advance(len);
        Step::Unit(None)
    }

    /// A unit with a 16-bit length after its start code: hands its body to `f` once complete.
    fn with_length(&mut self, f: impl FnOnce(&mut Demuxer, Bytes) -> Option<Pes>) -> Step {
        if self.buf.len() < 6 {
            return Step::NeedMore;
        }
        let len = usize::from(u16::from_be_bytes([self.buf[4], self.buf[5]]));
        if len == 0 {
            return Step::Resync;
        }
        if self.buf.len() < 6 + len {
            return Step::NeedMore;
        }
        let unit = self.buf.split_to(6 + len).freeze();
        Step::Unit(f(self, unit.slice(6..)))
    }

    fn read_map(&mut self, body: Bytes) {
        // current_next/version (1), marker (1), program_stream_info_length (2), info, es_map_length (2).
        let Some(info_len) = be16(&body, 2) else {
            return;
        };
        let es_at = 4 + usize::from(info_len);
        let Some(es_len) = be16(&body, es_at) else {
            return;
        };
        let end = (es_at + 2 + usize::from(es_len)).min(body.len());
        let mut p = es_at + 2;
        let mut map = Vec::new();
        while p + 4 <= end {
            let (stream_type, id) = (body[p], body[p + 1]);
            let info = usize::from(u16::from_be_bytes([body[p + 2], body[p + 3]]));
            map.push((id, stream_type));
            p += 4 + info;
        }
        if !map.is_empty() {
            self.map = map;
        }
    }

    fn read_pes(&mut self, stream_id: u8, body: Bytes) -> Option<Pes> {
        let (pts, dts, start) = pes_header(&body)?;
        let payload = body.slice(start..);
        let stream_type = match self.stream_type(stream_id) {
            Some(t) => t,
            None if is_video_id(stream_id) => {
                let guess = guess_video_type(&payload)?;
                self.map.push((stream_id, guess));
                guess
            }
            None => 0,
        };
        Some(Pes {
            stream_id,
            stream_type,
            pts,
            dts,
            payload,
        })
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn is_video_id(id: u8) -> bool {
    (0xe0..=0xef).contains(&id)
}

fn is_pes_id(id: u8) -> bool {
    (0xc0..=0xef).contains(&id)
}

fn is_known_id(id: u8) -> bool {
    matches!(
        id,
        PACK_START | SYSTEM_HEADER | PROGRAM_STREAM_MAP | END_CODE
    ) || (0xbd..=0xef).contains(&id)
}

/// The MPEG-2 PES header: PTS, DTS and where the payload starts. `None` when the header is malformed.
fn pes_header(body: &[u8]) -> Option<(Option<u64>, Option<u64>, usize)> {
    if body.len() < 3 || body[0] >> 6 != 0b10 {
        return None;
    }
    let flags = body[1] >> 6;
    let header_len = usize::from(body[2]);
    let start = 3 + header_len;
    if start > body.len() {
        return None;
    }
    let h = &body[3..start];
    let pts = if flags & 0b10 != 0 {
        timestamp(h.get(..5)?)
    } else {
        None
    };
    let dts = if flags == 0b11 {
        timestamp(h.get(5..10)?)
    } else {
        None
    };
    Some((pts, dts, start))
}

fn timestamp(b: &[u8]) -> Option<u64> {
    if b.len() < 5 || b[0] & 1 != 1 || b[2] & 1 != 1 || b[4] & 1 != 1 {
        return None;
    }
    Some(
        (u64::from(b[0] >> 1 & 7) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1),
    )
}

/// H.264 or H.265 from the first NAL unit of an Annex B payload (a parameter set or a slice).
fn guess_video_type(payload: &[u8]) -> Option<u8> {
    let at = payload.windows(3).position(|w| w == [0, 0, 1])? + 3;
    let header = *payload.get(at)?;
    let h265 = (header >> 1) & 0x3f;
    let h264 = header & 0x1f;
    // An H.265 VPS/SPS/PPS/AUD (32..=35) has forbidden_zero 0 and a layer id byte following.
    if header & 0x80 == 0
        && (32..=35).contains(&h265)
        && payload.get(at + 1).is_some_and(|b| b & 0xf8 == 0)
    {
        return Some(STREAM_TYPE_H265);
    }
    // Only unambiguous H.264 units (IDR, SPS, AUD): a plain slice header can look like an H.265 one.
    if matches!(h264, 5 | 7 | 9) {
        return Some(STREAM_TYPE_H264);
    }
    None
}

/// Writes one frame as a program stream: a pack header (SCR from the DTS), on keyframes the system
/// header and program stream map, then PES packets of at most 64 KiB carrying the Annex B `frame`.
pub fn mux_frame(
    out: &mut Vec<u8>,
    video_type: u8,
    pts: u64,
    dts: u64,
    keyframe: bool,
    frame: &[u8],
) {
    pack_header(out, dts);
    if keyframe {
        system_header(out);
        stream_map(out, video_type);
    }
    pes(out, VIDEO_ID, pts, dts, frame);
}

/// Writes one audio frame (e.g. G.711 bytes) as a pack with one PES.
pub fn mux_audio(out: &mut Vec<u8>, pts: u64, data: &[u8]) {
    pack_header(out, pts);
    pes(out, AUDIO_ID, pts, pts, data);
}

fn pack_header(out: &mut Vec<u8>, scr: u64) {
    let s = scr & ((1 << 33) - 1);
    // program_mux_rate in 50 B/s units (about 6.5 Mbit/s), then two marker bits.
    let rate: u32 = (0x3fff << 2) | 0b11;
    out.extend_from_slice(&[0, 0, 1, PACK_START]);
    out.extend_from_slice(&[
        0x44 | ((s >> 27) as u8 & 0x38) | ((s >> 28) as u8 & 0x03),
        (s >> 20) as u8,
        0x04 | ((s >> 12) as u8 & 0xf8) | ((s >> 13) as u8 & 0x03),
        (s >> 5) as u8,
        0x04 | ((s << 3) as u8 & 0xf8), // SCR extension 0
        0x01,
        (rate >> 16) as u8,
        (rate >> 8) as u8,
        rate as u8,
        0xf8, // reserved, no stuffing
    ]);
}

fn system_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 1, SYSTEM_HEADER, 0, 12]);
    // rate_bound (22) with markers, audio_bound 1, flags, video_bound 1, then two stream bounds.
    // marker, rate_bound, marker; audio_bound 1; locks, marker, video_bound 1; no rate restriction.
    out.extend_from_slice(&[0x80, 0x7f, 0xff, 0x04, 0xe1, 0x7f]);
    // Per stream: '11', buffer bound scale and size (video 128 KiB, audio 4 KiB).
    out.extend_from_slice(&[VIDEO_ID, 0xe0, 0x80, AUDIO_ID, 0xc0, 0x20]);
}

fn stream_map(out: &mut Vec<u8>, video_type: u8) {
    let entries = [(video_type, VIDEO_ID), (STREAM_TYPE_G711A, AUDIO_ID)];
    let es_len = entries.len() * 4;
    let body_len = 2 + 2 + 2 + es_len + 4; // flags, info length, es map length, entries, CRC
    out.extend_from_slice(&[0, 0, 1, PROGRAM_STREAM_MAP]);
    out.extend_from_slice(&(body_len as u16).to_be_bytes());
    let crc_from = out.len() - 6;
    out.extend_from_slice(&[0xe0, 0xff, 0, 0]);
    out.extend_from_slice(&(es_len as u16).to_be_bytes());
    for (t, id) in entries {
        out.extend_from_slice(&[t, id, 0, 0]);
    }
    let crc = crc32_mpeg(&out[crc_from..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Payload bytes per PES: the 16-bit length covers the 13-byte PTS/DTS header part too.
const PES_PAYLOAD: usize = 0xffff - 13;

fn pes(out: &mut Vec<u8>, id: u8, pts: u64, dts: u64, data: &[u8]) {
    let mut first = true;
    for chunk in data.chunks(PES_PAYLOAD) {
        out.extend_from_slice(&[0, 0, 1, id]);
        if first {
            out.extend_from_slice(&((chunk.len() + 13) as u16).to_be_bytes());
            out.extend_from_slice(&[0x80, 0xc0, 10]);
            put_timestamp(out, 0b0011, pts);
            put_timestamp(out, 0b0001, dts);
        } else {
            // Continuation PES: no timestamps, so the demuxer joins it to the frame.
            out.extend_from_slice(&((chunk.len() + 3) as u16).to_be_bytes());
            out.extend_from_slice(&[0x80, 0x00, 0]);
        }
        out.extend_from_slice(chunk);
        first = false;
    }
}

fn put_timestamp(out: &mut Vec<u8>, prefix: u8, t: u64) {
    let t = t & ((1 << 33) - 1);
    out.extend_from_slice(&[
        (prefix << 4) | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xfe) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8) | 1,
    ]);
}

/// CRC-32/MPEG-2, as the program stream map's trailer wants it.
fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Groups video PES payloads into access units: PES without a PTS, or with the PTS of the unit being
/// built, continue it; the next PTS (or [`Frames::flush`]) completes it.
#[derive(Default)]
pub struct Frames {
    current: Option<VideoUnit>,
    /// A unit larger than this is dropped (a device that never changes its PTS cannot grow memory).
    pub max_bytes: usize,
}

/// One Annex B access unit from the program stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoUnit {
    pub stream_type: u8,
    pub pts: u64,
    pub dts: u64,
    pub data: BytesMut,
}

impl Frames {
    pub fn new(max_bytes: usize) -> Frames {
        Frames {
            current: None,
            max_bytes,
        }
    }

    /// Takes a video PES; returns the access unit it completed, if any.
    pub fn push(&mut self, pes: Pes) -> Option<VideoUnit> {
        let continues = match (&self.current, pes.pts) {
            (Some(_), None) => true,
            (Some(cur), Some(pts)) => cur.pts == pts,
            (None, _) => false,
        };
        if continues {
            let cur = self.current.as_mut()?;
            if cur.data.len() + pes.payload.len() > self.max_bytes {
                self.current = None;
                return None;
            }
            cur.data.extend_from_slice(&pes.payload);
            return None;
        }
        let done = self.current.take();
        if let Some(pts) = pes.pts {
            self.current = Some(VideoUnit {
                stream_type: pes.stream_type,
                pts,
                dts: pes.dts.unwrap_or(pts),
                data: BytesMut::from(&pes.payload[..]),
            });
        }
        done
    }

    /// Completes the unit being built (the RTP marker bit says the frame ended).
    pub fn flush(&mut self) -> Option<VideoUnit> {
        self.current.take()
    }
}

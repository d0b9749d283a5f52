//! Fragmented MP4 building blocks, shared by the recorder (segment files) and live view (MSE).
//!
//! - [`init_segment`]: `ftyp` + `moov` for one video track from the hub's ready-made sample entry
//!   (`VideoParams::sample_entry`, a complete `avc1`/`hvc1` box), with an optional `udta` payload.
//! - [`Fragment::build`]: one `moof` + `mdat` (optionally preceded by a `prft` box carrying the wall-clock
//!   time of its first frame) from a list of frames. Only the small header is built (a `Vec` of a few
//!   hundred bytes); the frames' `Bytes` stay as they are, so a writer can hand header and frames to one
//!   vectored write (`Fragment::io_slices`) and a live sender can queue them without a copy.
//!
//! Invariants:
//! - One track (`track_ID` 1), timescale 90 kHz (RTP video clock), decode order = presentation order
//!   (no composition offsets: cameras on the recording path send no B-frames; see docs/storage.md).
//! - Sample data are the access units as retina delivers them (4-byte length-prefixed NAL units), so the
//!   `mdat` payload is exactly the concatenation of the frames.
//! - `trun` always carries per-sample duration, size and flags and a data offset relative to the `moof`
//!   (`default-base-is-moof`), so a fragment is self-describing and can be parsed back alone
//!   ([`parse_moof`]).

use bytes::Bytes;
use std::io::IoSlice;

/// Media timescale of every track we write: the 90 kHz RTP clock of video.
pub const TIMESCALE: u32 = 90_000;

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// `sample_flags` of a sync sample (depends on nothing) and of any other sample.
pub const SAMPLE_FLAGS_SYNC: u32 = 0x0200_0000;
pub const SAMPLE_FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// Writes ISO BMFF boxes into a `Vec`, patching each box's size when it is closed.
pub struct BoxWriter<'a> {
    buf: &'a mut Vec<u8>,
    open: Vec<usize>,
}

impl<'a> BoxWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> BoxWriter<'a> {
        BoxWriter {
            buf,
            open: Vec::with_capacity(8),
        }
    }
    /// Opens a plain box.
    pub fn open(&mut self, fourcc: &[u8; 4]) -> &mut Self {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(fourcc);
        self
    }
    /// Opens a full box (version and flags).
    pub fn open_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> &mut Self {
        self.open(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff))
    }
    /// Closes the innermost open box. Boxes over 4 GiB are not built this way.
    pub fn close(&mut self) -> &mut Self {
        if let Some(start) = self.open.pop() {
            let size = (self.buf.len() - start) as u32;
            self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
        self
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }
    /// The position of the next byte written, relative to the start of the buffer.
    pub fn pos(&self) -> usize {
        self.buf.len()
    }
    /// Overwrites a big-endian u32 at `at` (for offsets known only later).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// What goes into the `moov` of an init segment or of a whole (progressive) file.
pub struct TrackHeader {
    pub width: u32,
    pub height: u32,
    /// Duration in [`TIMESCALE`] units (0 in a fragmented file).
    pub duration: u64,
}

/// `ftyp` of every file we write.
pub fn write_ftyp(w: &mut BoxWriter<'_>) {
    w.open(b"ftyp")
        .bytes(b"isom")
        .u32(0x200)
        .bytes(b"isom")
        .bytes(b"iso6")
        .bytes(b"mp41")
        .close();
}

/// `mvhd` (version 1, 64-bit times) with the movie timescale equal to [`TIMESCALE`].
pub fn write_mvhd(w: &mut BoxWriter<'_>, duration: u64) {
    w.open_full(b"mvhd", 1, 0)
        .u64(0)
        .u64(0)
        .u32(TIMESCALE)
        .u64(duration)
        .u32(0x0001_0000) // rate 1.0
        .u16(0x0100) // volume 1.0
        .zeros(10);
    for m in UNITY_MATRIX {
        w.u32(m);
    }
    w.zeros(24).u32(2).close(); // next_track_ID
}

/// `tkhd` (version 1) of track 1.
pub fn write_tkhd(w: &mut BoxWriter<'_>, t: &TrackHeader) {
    w.open_full(b"tkhd", 1, 0x3)
        .u64(0)
        .u64(0)
        .u32(1)
        .u32(0)
        .u64(t.duration)
        .zeros(8)
        .u16(0) // layer
        .u16(0) // alternate group
        .u16(0) // volume
        .u16(0);
    for m in UNITY_MATRIX {
        w.u32(m);
    }
    w.u32(t.width << 16).u32(t.height << 16).close();
}

/// `mdhd` (version 1, 90 kHz, language "und") and `hdlr` of a video track.
pub fn write_mdhd_hdlr(w: &mut BoxWriter<'_>, duration: u64) {
    w.open_full(b"mdhd", 1, 0)
        .u64(0)
        .u64(0)
        .u32(TIMESCALE)
        .u64(duration)
        .u16(0x55c4) // "und"
        .u16(0)
        .close();
    w.open_full(b"hdlr", 0, 0)
        .u32(0)
        .bytes(b"vide")
        .zeros(12)
        .bytes(b"Vigil\0")
        .close();
}

/// `vmhd` and `dinf` (self-contained data reference).
pub fn write_vmhd_dinf(w: &mut BoxWriter<'_>) {
    w.open_full(b"vmhd", 0, 1).zeros(8).close();
    w.open(b"dinf").open_full(b"dref", 0, 0).u32(1);
    w.open_full(b"url ", 0, 1).close();
    w.close().close();
}

/// `stsd` holding the given sample entries (complete `avc1`/`hvc1` boxes).
pub fn write_stsd(w: &mut BoxWriter<'_>, entries: &[&[u8]]) {
    w.open_full(b"stsd", 0, 0).u32(entries.len() as u32);
    for e in entries {
        w.bytes(e);
    }
    w.close();
}

/// Options of an init segment.
#[derive(Default)]
pub struct InitOptions<'a> {
    /// Payload boxes put into a `moov/udta` (e.g. the recorder's segment metadata).
    pub udta: Option<&'a [u8]>,
}

/// `ftyp` + `moov` of a fragmented file with one video track.
pub fn init_segment(
    sample_entry: &[u8],
    width: u32,
    height: u32,
    opts: &InitOptions<'_>,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(768 + sample_entry.len() + opts.udta.map_or(0, |u| u.len()));
    let mut w = BoxWriter::new(&mut buf);
    write_ftyp(&mut w);
    w.open(b"moov");
    write_mvhd(&mut w, 0);
    w.open(b"trak");
    write_tkhd(
        &mut w,
        &TrackHeader {
            width,
            height,
            duration: 0,
        },
    );
    w.open(b"mdia");
    write_mdhd_hdlr(&mut w, 0);
    w.open(b"minf");
    write_vmhd_dinf(&mut w);
    w.open(b"stbl");
    write_stsd(&mut w, &[sample_entry]);
    w.open_full(b"stts", 0, 0).u32(0).close();
    w.open_full(b"stsc", 0, 0).u32(0).close();
    w.open_full(b"stsz", 0, 0).u32(0).u32(0).close();
    w.open_full(b"stco", 0, 0).u32(0).close();
    w.close().close().close().close(); // stbl minf mdia trak
    w.open(b"mvex");
    w.open_full(b"trex", 0, 0)
        .u32(1)
        .u32(1)
        .u32(0)
        .u32(0)
        .u32(0)
        .close();
    w.close();
    if let Some(u) = opts.udta {
        w.open(b"udta").bytes(u).close();
    }
    w.close(); // moov
    buf
}

/// One frame of a fragment: its data and its duration in [`TIMESCALE`] units.
#[derive(Clone, Debug)]
pub struct Sample {
    pub data: Bytes,
    pub duration: u32,
    pub keyframe: bool,
    /// Presentation time minus decode time (B-frames), [`TIMESCALE`] units.
    pub composition_offset: u32,
}

/// A built fragment: its header (`prft`? + `moof` + `mdat` header) and the frames' data, untouched.
pub struct Fragment {
    pub header: Vec<u8>,
    pub data: Vec<Bytes>,
    /// Where the `moof` starts within `header` (after the optional `prft`).
    pub moof_offset: usize,
}

/// Unix microseconds to a 64-bit NTP timestamp, rounded up so that [`ntp_to_unix_us`] gives the same
/// microsecond back.
pub fn unix_us_to_ntp(us: i64) -> u64 {
    let secs = us.div_euclid(1_000_000);
    let frac_us = us.rem_euclid(1_000_000) as u64;
    let frac = (frac_us << 32).div_ceil(1_000_000);
    ((secs as u64).wrapping_add(NTP_UNIX_OFFSET) << 32).wrapping_add(frac)
}

/// A 64-bit NTP timestamp to Unix microseconds (rounded down).
pub fn ntp_to_unix_us(ntp: u64) -> i64 {
    let secs = (ntp >> 32) as i64 - NTP_UNIX_OFFSET as i64;
    let frac = ((ntp & 0xffff_ffff) * 1_000_000) >> 32;
    secs * 1_000_000 + frac as i64
}

impl Fragment {
    /// Builds a fragment. `sequence` is the `mfhd` sequence number (from 1), `base_media_time` the decode
    /// time of the first sample in [`TIMESCALE`] units, `wall_us` (when given) the wall-clock time of the
    /// first sample, written as a `prft` box before the `moof`.
    pub fn build(
        sequence: u32,
        base_media_time: u64,
        wall_us: Option<i64>,
        samples: &[Sample],
    ) -> Fragment {
        let mut header = Vec::with_capacity(128 + samples.len() * 12);
        let mut w = BoxWriter::new(&mut header);
        if let Some(us) = wall_us {
            w.open_full(b"prft", 1, 0)
                .u32(1)
                .u64(unix_us_to_ntp(us))
                .u64(base_media_time)
                .close();
        }
        let moof_offset = w.pos();
        w.open(b"moof");
        w.open_full(b"mfhd", 0, 0).u32(sequence).close();
        w.open(b"traf");
        w.open_full(b"tfhd", 0, 0x02_0000).u32(1).close(); // default-base-is-moof
        w.open_full(b"tfdt", 1, 0).u64(base_media_time).close();
        // data offset, duration, size, flags per sample; composition offsets when any frame has one
        let reordered = samples.iter().any(|s| s.composition_offset != 0);
        let trun_flags = 0x0001 | 0x0100 | 0x0200 | 0x0400 | if reordered { 0x0800 } else { 0 };
        w.open_full(b"trun", 0, trun_flags)
            .u32(samples.len() as u32);
        let data_offset_at = w.pos();
        w.u32(0);
        let mut total: u64 = 0;
        for s in samples {
            total += s.data.len() as u64;
            w.u32(s.duration)
                .u32(s.data.len() as u32)
                .u32(if s.keyframe {
                    SAMPLE_FLAGS_SYNC
                } else {
                    SAMPLE_FLAGS_NON_SYNC
                });
            if reordered {
                w.u32(s.composition_offset);
            }
        }
        w.close().close().close(); // trun traf moof
        let moof_len = w.pos() - moof_offset;
        let large = total + 8 > u64::from(u32::MAX);
        let mdat_header = if large { 16 } else { 8 };
        w.patch_u32(data_offset_at, (moof_len + mdat_header) as u32);
        if large {
            w.u32(1).bytes(b"mdat").u64(total + 16);
        } else {
            w.u32((total + 8) as u32).bytes(b"mdat");
        }
        Fragment {
            header,
            data: samples.iter().map(|s| s.data.clone()).collect(),
            moof_offset,
        }
    }

    /// Bytes of the whole fragment (header and data).
    pub fn len(&self) -> u64 {
        self.header.len() as u64 + self.data.iter().map(|d| d.len() as u64).sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Header and data as slices for one vectored write.
    pub fn io_slices(&self) -> Vec<IoSlice<'_>> {
        let mut v = Vec::with_capacity(1 + self.data.len());
        v.push(IoSlice::new(&self.header));
        v.extend(self.data.iter().map(|d| IoSlice::new(d)));
        v
    }

    /// The whole fragment in one buffer (for senders that need one message).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.len() as usize);
        out.extend_from_slice(&self.header);
        for d in &self.data {
            out.extend_from_slice(d);
        }
        Bytes::from(out)
    }
}

/// Writes every byte of `slices` with vectored writes.
pub fn write_all_vectored(
    w: &mut impl std::io::Write,
    mut slices: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What [`parse_moof`] reads back from a `moof`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoofInfo {
    pub sequence: u32,
    pub base_media_time: u64,
    /// Offset of the first sample's data from the start of the `moof`.
    pub data_offset: u32,
    /// (size, duration, keyframe) of each sample.
    pub samples: Vec<(u32, u32, bool)>,
    /// Each sample's composition offset, when the `trun` has them (streams with B-frames); empty
    /// otherwise.
    pub composition_offsets: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed box: {0}")]
pub struct ParseError(pub &'static str);

/// Iterates the child boxes of a box body: (fourcc, body).
pub fn children(mut body: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), ParseError>> {
    std::iter::from_fn(move || {
        if body.is_empty() {
            return None;
        }
        if body.len() < 8 {
            body = &[];
            return Some(Err(ParseError("truncated box header")));
        }
        let size = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        let fourcc = [body[4], body[5], body[6], body[7]];
        let (hdr, size) = if size == 1 {
            if body.len() < 16 {
                body = &[];
                return Some(Err(ParseError("truncated large box")));
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[8..16]);
            (16, u64::from_be_bytes(b) as usize)
        } else if size == 0 {
            (8, body.len())
        } else {
            (8, size)
        };
        if size < hdr || size > body.len() {
            body = &[];
            return Some(Err(ParseError("box size out of range")));
        }
        let inner = &body[hdr..size];
        body = &body[size..];
        Some(Ok((fourcc, inner)))
    })
}

/// The first child box named `fourcc`.
pub fn find<'b>(body: &'b [u8], fourcc: &[u8; 4]) -> Result<Option<&'b [u8]>, ParseError> {
    for c in children(body) {
        let (f, b) = c?;
        if &f == fourcc {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

fn be32(b: &[u8], at: usize) -> Result<u32, ParseError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(ParseError("short field"))
}

fn be64(b: &[u8], at: usize) -> Result<u64, ParseError> {
    Ok((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at + 4)?))
}

/// The sample defaults of a `tfhd`.
struct TrackDefaults {
    duration: u32,
    size: u32,
    flags: u32,
}

impl Default for TrackDefaults {
    fn default() -> Self {
        TrackDefaults {
            duration: 0,
            size: 0,
            flags: SAMPLE_FLAGS_NON_SYNC,
        }
    }
}

fn parse_tfhd(b: &[u8]) -> Result<TrackDefaults, ParseError> {
    let mut d = TrackDefaults::default();
    let flags = be32(b, 0)? & 0xff_ffff;
    let mut at = 8;
    if flags & 0x1 != 0 {
        at += 8;
    }
    if flags & 0x2 != 0 {
        at += 4;
    }
    if flags & 0x8 != 0 {
        d.duration = be32(b, at)?;
        at += 4;
    }
    if flags & 0x10 != 0 {
        d.size = be32(b, at)?;
        at += 4;
    }
    if flags & 0x20 != 0 {
        d.flags = be32(b, at)?;
    }
    Ok(d)
}

/// A `trun`'s data offset and samples `(size, duration, sync)`, its absent fields taken from `d`.
fn parse_trun(b: &[u8], d: &TrackDefaults, info: &mut MoofInfo) -> Result<(), ParseError> {
    let flags = be32(b, 0)? & 0xff_ffff;
    let count = be32(b, 4)? as usize;
    let mut at = 8;
    if flags & 0x1 != 0 {
        info.data_offset = be32(b, at)?;
        at += 4;
    }
    let mut first_flags = None;
    if flags & 0x4 != 0 {
        first_flags = Some(be32(b, at)?);
        at += 4;
    }
    let per = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|bit| flags & **bit != 0)
        .count()
        * 4;
    if count.saturating_mul(per) > b.len().saturating_sub(at) {
        return Err(ParseError("trun shorter than its sample count"));
    }
    info.samples.reserve(count);
    for i in 0..count {
        let (mut dur, mut size) = (d.duration, d.size);
        let mut sflags = match (i, first_flags) {
            (0, Some(f)) => f,
            _ => d.flags,
        };
        if flags & 0x100 != 0 {
            dur = be32(b, at)?;
            at += 4;
        }
        if flags & 0x200 != 0 {
            size = be32(b, at)?;
            at += 4;
        }
        if flags & 0x400 != 0 {
            sflags = be32(b, at)?;
            at += 4;
        }
        if flags & 0x800 != 0 {
            // Signed in version 1 `trun`s; a negative offset (which Vigil never writes) reads as 0.
            let offset = be32(b, at)?;
            let version = b.first().copied().unwrap_or(0);
            let negative = version == 1 && offset & 0x8000_0000 != 0;
            info.composition_offsets
                .push(if negative { 0 } else { offset });
            at += 4;
        }
        // sample_is_non_sync_sample (bit 16) clear and depends_on != 1: a sync sample.
        let key = sflags & 0x0001_0000 == 0 && (sflags >> 24) & 0x3 != 1;
        info.samples.push((size, dur, key));
    }
    Ok(())
}

/// Parses the body of a `moof` written by [`Fragment::build`] (or any single-track `moof` whose `trun`
/// has sizes; missing durations or flags fall back to the `tfhd` defaults or 0).
pub fn parse_moof(body: &[u8]) -> Result<MoofInfo, ParseError> {
    let mut info = MoofInfo::default();
    let mfhd = find(body, b"mfhd")?.ok_or(ParseError("no mfhd"))?;
    info.sequence = be32(mfhd, 4)?;
    let traf = find(body, b"traf")?.ok_or(ParseError("no traf"))?;
    let mut defaults = TrackDefaults::default();
    let mut seen_trun = false;
    for c in children(traf) {
        let (f, b) = c?;
        match &f {
            b"tfhd" => defaults = parse_tfhd(b)?,
            b"tfdt" => {
                let version = b.first().copied().ok_or(ParseError("empty tfdt"))?;
                info.base_media_time = if version == 1 {
                    be64(b, 4)?
                } else {
                    u64::from(be32(b, 4)?)
                };
            }
            b"trun" if !seen_trun => {
                seen_trun = true;
                parse_trun(b, &defaults, &mut info)?;
            }
            _ => {}
        }
    }
    if !seen_trun {
        return Err(ParseError("no trun"));
    }
    Ok(info)
}

/// Reads `(ntp wall time, media time)` from a `prft` body.
pub fn parse_prft(body: &[u8]) -> Result<(i64, u64), ParseError> {
    let version = body.first().copied().ok_or(ParseError("empty prft"))?;
    let ntp = be64(body, 8)?;
    let media = if version == 1 {
        be64(body, 16)?
    } else {
        u64::from(be32(body, 16)?)
    };
    Ok((ntp_to_unix_us(ntp), media))
}

/// The first sample entry (the whole `avc1`/`hvc1` box) of the `stsd` inside a `moov` body.
pub fn sample_entry_of_moov(moov: &[u8]) -> Result<&[u8], ParseError> {
    let trak = find(moov, b"trak")?.ok_or(ParseError("no trak"))?;
    let mdia = find(trak, b"mdia")?.ok_or(ParseError("no mdia"))?;
    let minf = find(mdia, b"minf")?.ok_or(ParseError("no minf"))?;
    let stbl = find(minf, b"stbl")?.ok_or(ParseError("no stbl"))?;
    let stsd = find(stbl, b"stsd")?.ok_or(ParseError("no stsd"))?;
    let entries = stsd.get(8..).ok_or(ParseError("short stsd"))?;
    let size = be32(entries, 0)? as usize;
    entries.get(..size).ok_or(ParseError("short sample entry"))
}

#[cfg(test)]
#[path = "fmp4_tests.rs"]
pub(crate) mod tests;

//! Reading fragmented MP4 back (the other half of `fmp4`): box iteration, `moof` (video `traf`, and the
//! audio `traf` of track 2 when present), `prft` and the sample entries of a `moov`.
//!
//! Invariant: outside bytes never panic the reader; every size is checked against the bytes there are.

use super::{ntp_to_unix_us, AudioTrack, SAMPLE_FLAGS_NON_SYNC};

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
    /// The audio `traf` (track 2), when the fragment has one.
    pub audio: Option<AudioInfo>,
}

/// The audio run of a fragment, as [`parse_moof`] reads it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioInfo {
    /// In the audio track's timescale.
    pub base_media_time: u64,
    /// Offset of its first sample's data from the start of the `moof`.
    pub data_offset: u32,
    /// (size, duration) of each sample.
    pub samples: Vec<(u32, u32)>,
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

/// A `tfhd`'s track and sample defaults.
fn parse_tfhd(b: &[u8]) -> Result<(u32, TrackDefaults), ParseError> {
    let mut d = TrackDefaults::default();
    let flags = be32(b, 0)? & 0xff_ffff;
    let track = be32(b, 4)?;
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
    Ok((track, d))
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

/// Parses the body of a `moof` written by [`Fragment::build_av`] (or any `moof` whose first `traf` is
/// the video and whose `trun`s have sizes; missing durations or flags fall back to the `tfhd` defaults
/// or 0). A `traf` of track 2 after the first is the audio.
pub fn parse_moof(body: &[u8]) -> Result<MoofInfo, ParseError> {
    let mfhd = find(body, b"mfhd")?.ok_or(ParseError("no mfhd"))?;
    let sequence = be32(mfhd, 4)?;
    let mut video: Option<MoofInfo> = None;
    let mut audio = None;
    for c in children(body) {
        let (f, traf) = c?;
        if &f != b"traf" {
            continue;
        }
        let (track, info) = parse_traf(traf)?;
        if video.is_none() {
            video = Some(info);
        } else if track == 2 && audio.is_none() {
            audio = Some(AudioInfo {
                base_media_time: info.base_media_time,
                data_offset: info.data_offset,
                samples: info.samples.iter().map(|&(s, d, _)| (s, d)).collect(),
            });
        }
    }
    let mut info = video.ok_or(ParseError("no traf"))?;
    info.sequence = sequence;
    info.audio = audio;
    Ok(info)
}

/// One `traf`: its track and its first `trun`'s samples.
fn parse_traf(traf: &[u8]) -> Result<(u32, MoofInfo), ParseError> {
    let mut info = MoofInfo::default();
    let mut defaults = TrackDefaults::default();
    let mut track = 0;
    let mut seen_trun = false;
    for c in children(traf) {
        let (f, b) = c?;
        match &f {
            b"tfhd" => (track, defaults) = parse_tfhd(b)?,
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
    Ok((track, info))
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
    sample_entry_of_trak(trak)
}

/// The audio track of a `moov` body (a `trak` whose handler is `soun`), if it has one.
pub fn audio_of_moov(moov: &[u8]) -> Result<Option<AudioTrack<'_>>, ParseError> {
    for c in children(moov) {
        let (f, trak) = c?;
        if &f != b"trak" {
            continue;
        }
        let mdia = find(trak, b"mdia")?.ok_or(ParseError("no mdia"))?;
        let hdlr = find(mdia, b"hdlr")?.ok_or(ParseError("no hdlr"))?;
        if hdlr.get(8..12) != Some(b"soun".as_slice()) {
            continue;
        }
        let mdhd = find(mdia, b"mdhd")?.ok_or(ParseError("no mdhd"))?;
        let version = mdhd.first().copied().ok_or(ParseError("empty mdhd"))?;
        let rate = be32(mdhd, if version == 1 { 20 } else { 12 })?;
        return Ok(Some(AudioTrack {
            sample_entry: sample_entry_of_trak(trak)?,
            rate,
        }));
    }
    Ok(None)
}

fn sample_entry_of_trak(trak: &[u8]) -> Result<&[u8], ParseError> {
    let mdia = find(trak, b"mdia")?.ok_or(ParseError("no mdia"))?;
    let minf = find(mdia, b"minf")?.ok_or(ParseError("no minf"))?;
    let stbl = find(minf, b"stbl")?.ok_or(ParseError("no stbl"))?;
    let stsd = find(stbl, b"stsd")?.ok_or(ParseError("no stsd"))?;
    let entries = stsd.get(8..).ok_or(ParseError("short stsd"))?;
    let size = be32(entries, 0)? as usize;
    entries.get(..size).ok_or(ParseError("short sample entry"))
}

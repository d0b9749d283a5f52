//! Fragmented MP4 building blocks, shared by the recorder (segment files) and live view (MSE).
//!
//! - [`init_segment`]: `ftyp` + `moov` for one video track from the hub's ready-made sample entry
//!   (`VideoParams::sample_entry`, a complete `avc1`/`hvc1` box), with an optional `udta` payload and an
//!   optional audio track (`AudioParams::sample_entry`).
//! - [`Fragment::build`]: one `moof` + `mdat` (optionally preceded by a `prft` box carrying the wall-clock
//!   time of its first frame) from a list of frames. Only the small header is built (a `Vec` of a few
//!   hundred bytes); the frames' `Bytes` stay as they are, so a writer can hand header and frames to one
//!   vectored write (`Fragment::io_slices`) and a live sender can queue them without a copy.
//!
//! Invariants:
//! - Video is `track_ID` 1, timescale 90 kHz (RTP video clock); composition offsets only for streams with
//!   B-frames. Audio, when present, is `track_ID` 2 with its sample rate as timescale.
//! - In a fragment the video `traf` comes first and its data first in the `mdat`; the audio `traf`'s data
//!   follows it. A reader that knows only video ([`parse_moof`]'s video fields) still reads it right.
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

/// `mvhd` (version 1, 64-bit times) with the movie timescale equal to [`TIMESCALE`], for `tracks`
/// tracks numbered from 1.
pub fn write_mvhd(w: &mut BoxWriter<'_>, duration: u64, tracks: u32) {
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
    w.zeros(24).u32(tracks + 1).close(); // next_track_ID
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
    write_mdhd_hdlr_of(w, TIMESCALE, duration, b"vide");
}

/// `mdhd` and `hdlr` of a track with this timescale and handler (`vide`, `soun`).
fn write_mdhd_hdlr_of(w: &mut BoxWriter<'_>, timescale: u32, duration: u64, handler: &[u8; 4]) {
    w.open_full(b"mdhd", 1, 0)
        .u64(0)
        .u64(0)
        .u32(timescale)
        .u64(duration)
        .u16(0x55c4) // "und"
        .u16(0)
        .close();
    w.open_full(b"hdlr", 0, 0)
        .u32(0)
        .bytes(handler)
        .zeros(12)
        .bytes(b"Vigil\0")
        .close();
}

/// The audio track of a file: the sample entry and its timescale (the sample rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack<'a> {
    pub sample_entry: &'a [u8],
    pub rate: u32,
}

/// Opens `trak` 2 (audio) down to its `stbl` and writes the `stsd`: the caller writes the sample tables
/// and closes `stbl minf mdia trak`. `duration` in the movie timescale, `media_duration` in `rate`'s.
pub fn open_audio_trak(
    w: &mut BoxWriter<'_>,
    a: &AudioTrack<'_>,
    duration: u64,
    media_duration: u64,
    edits: &[(u64, i64)],
) {
    w.open(b"trak");
    w.open_full(b"tkhd", 1, 0x3)
        .u64(0)
        .u64(0)
        .u32(2)
        .u32(0)
        .u64(duration)
        .zeros(8)
        .u16(0) // layer
        .u16(1) // alternate group: audio
        .u16(0x0100) // volume 1.0
        .u16(0);
    for m in UNITY_MATRIX {
        w.u32(m);
    }
    w.u32(0).u32(0).close();
    if !edits.is_empty() {
        w.open(b"edts")
            .open_full(b"elst", 1, 0)
            .u32(edits.len() as u32);
        for (d, media) in edits {
            w.u64(*d).u64(*media as u64).u16(1).u16(0);
        }
        w.close().close();
    }
    w.open(b"mdia");
    write_mdhd_hdlr_of(w, a.rate, media_duration, b"soun");
    w.open(b"minf");
    w.open_full(b"smhd", 0, 0).zeros(4).close();
    w.open(b"dinf").open_full(b"dref", 0, 0).u32(1);
    w.open_full(b"url ", 0, 1).close();
    w.close().close();
    w.open(b"stbl");
    write_stsd(w, &[a.sample_entry]);
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

/// A G.711 `AudioSampleEntry` (`alaw` or `ulaw`, as QuickTime and FFmpeg name them): 8-bit samples
/// at `rate` Hz.
pub fn g711_sample_entry(fourcc: &[u8; 4], channels: u16, rate: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(36);
    let mut w = BoxWriter::new(&mut buf);
    w.open(fourcc)
        .zeros(6)
        .u16(1) // data_reference_index
        .zeros(8)
        .u16(channels)
        .u16(16) // samplesize, as ISO/IEC 14496-12 fixes it
        .zeros(4)
        .u32(rate.min(0xffff) << 16)
        .close();
    buf
}

/// Options of an init segment.
#[derive(Default)]
pub struct InitOptions<'a> {
    /// Payload boxes put into a `moov/udta` (e.g. the recorder's segment metadata).
    pub udta: Option<&'a [u8]>,
    /// An audio track (`track_ID` 2) besides the video.
    pub audio: Option<AudioTrack<'a>>,
}

/// Empty sample tables and closes `stbl minf mdia trak` (a fragmented file's track).
fn close_empty_trak(w: &mut BoxWriter<'_>) {
    w.open_full(b"stts", 0, 0).u32(0).close();
    w.open_full(b"stsc", 0, 0).u32(0).close();
    w.open_full(b"stsz", 0, 0).u32(0).u32(0).close();
    w.open_full(b"stco", 0, 0).u32(0).close();
    w.close().close().close().close(); // stbl minf mdia trak
}

/// `trex` of track `id`: its samples' defaults are given by every fragment.
fn write_trex(w: &mut BoxWriter<'_>, id: u32) {
    w.open_full(b"trex", 0, 0)
        .u32(id)
        .u32(1)
        .u32(0)
        .u32(0)
        .u32(0)
        .close();
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
    write_mvhd(&mut w, 0, 1 + u32::from(opts.audio.is_some()));
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
    close_empty_trak(&mut w);
    if let Some(a) = &opts.audio {
        open_audio_trak(&mut w, a, 0, 0, &[]);
        close_empty_trak(&mut w);
    }
    w.open(b"mvex");
    write_trex(&mut w, 1);
    if opts.audio.is_some() {
        write_trex(&mut w, 2);
    }
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

/// The audio of a fragment: its samples (durations in the audio track's timescale) and the decode time
/// of the first, in that timescale.
pub struct AudioRun<'a> {
    pub base_media_time: u64,
    pub samples: &'a [Sample],
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
        Fragment::build_av(sequence, base_media_time, wall_us, samples, None)
    }

    /// [`Fragment::build`] with an audio run (track 2) after the video, when it has samples.
    pub fn build_av(
        sequence: u32,
        base_media_time: u64,
        wall_us: Option<i64>,
        samples: &[Sample],
        audio: Option<AudioRun<'_>>,
    ) -> Fragment {
        let audio = audio.filter(|a| !a.samples.is_empty());
        let mut header = Vec::with_capacity(160 + samples.len() * 12);
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
        // An audio-only fragment (live MSE sends each audio frame as it comes) has no video `traf`.
        let video_offset_at =
            (!samples.is_empty()).then(|| write_traf(&mut w, 1, base_media_time, samples, true));
        let audio_offset_at = audio
            .as_ref()
            .map(|a| write_traf(&mut w, 2, a.base_media_time, a.samples, false));
        w.close(); // moof
        let video_total: u64 = samples.iter().map(|s| s.data.len() as u64).sum();
        let audio_total: u64 = audio
            .as_ref()
            .map_or(0, |a| a.samples.iter().map(|s| s.data.len() as u64).sum());
        let total = video_total + audio_total;
        let moof_len = w.pos() - moof_offset;
        let large = total + 8 > u64::from(u32::MAX);
        let mdat_header = if large { 16 } else { 8 };
        let data_at = (moof_len + mdat_header) as u32;
        if let Some(at) = video_offset_at {
            w.patch_u32(at, data_at);
        }
        if let Some(at) = audio_offset_at {
            w.patch_u32(at, data_at + video_total as u32);
        }
        if large {
            w.u32(1).bytes(b"mdat").u64(total + 16);
        } else {
            w.u32((total + 8) as u32).bytes(b"mdat");
        }
        let mut data: Vec<Bytes> = samples.iter().map(|s| s.data.clone()).collect();
        if let Some(a) = &audio {
            data.extend(a.samples.iter().map(|s| s.data.clone()));
        }
        Fragment {
            header,
            data,
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

/// One `traf` (track `id`, `default-base-is-moof`): its `tfdt` and a `trun` with per-sample duration and
/// size (and flags, for video). Returns where the `trun`'s data offset is, to be patched.
fn write_traf(
    w: &mut BoxWriter<'_>,
    id: u32,
    base_media_time: u64,
    samples: &[Sample],
    video: bool,
) -> usize {
    w.open(b"traf");
    if video {
        w.open_full(b"tfhd", 0, 0x02_0000).u32(id).close();
    } else {
        // Every audio sample is a sync sample: one default instead of flags per sample.
        w.open_full(b"tfhd", 0, 0x02_0020)
            .u32(id)
            .u32(SAMPLE_FLAGS_SYNC)
            .close();
    }
    w.open_full(b"tfdt", 1, 0).u64(base_media_time).close();
    let reordered = samples.iter().any(|s| s.composition_offset != 0);
    let per_sample_flags = if video { 0x0400 } else { 0 };
    let trun_flags =
        0x0001 | 0x0100 | 0x0200 | per_sample_flags | if reordered { 0x0800 } else { 0 };
    w.open_full(b"trun", 0, trun_flags)
        .u32(samples.len() as u32);
    let data_offset_at = w.pos();
    w.u32(0);
    for s in samples {
        w.u32(s.duration).u32(s.data.len() as u32);
        if video {
            w.u32(if s.keyframe {
                SAMPLE_FLAGS_SYNC
            } else {
                SAMPLE_FLAGS_NON_SYNC
            });
        }
        if reordered {
            w.u32(s.composition_offset);
        }
    }
    w.close().close(); // trun traf
    data_offset_at
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

#[path = "fmp4_parse.rs"]
mod parse;
pub use parse::{
    audio_of_moov, children, find, parse_moof, parse_prft, sample_entry_of_moov, AudioInfo,
    MoofInfo, ParseError,
};

#[cfg(test)]
#[path = "fmp4_tests.rs"]
pub(crate) mod tests;

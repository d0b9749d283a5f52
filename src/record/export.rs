//! Playback export: one progressive MP4 for a wall-clock range of a stream, across segments and gaps.
//!
//! The file is virtual: a small header built in memory (`ftyp`, `moov` with complete sample tables, the
//! `mdat` header) followed by byte ranges of the segment files (each fragment's sample data is contiguous
//! there, so each fragment is one chunk). Its length is known before the first byte is sent, so HTTP Range
//! requests are served from the plan without building the file.
//!
//! Invariants:
//! - The file starts at the keyframe at or before `start` (a fragment start: one fragment per GOP) and an
//!   edit list trims the presentation to begin exactly at `start` (or the first footage after it).
//! - Within a run the timeline is media time (exact frame durations). Across runs, gaps (over 0.5 s) and
//!   clock steps a fragment is placed at its wall-clock offset from the first: the last frame before it is
//!   lengthened (the picture holds over a gap), and the gaps are reported.
//! - A change of codec parameters between segments adds a sample entry (`stsd` with several entries).
//! - The camera's audio, where the segments recorded it, is a second track (`export_audio.rs`); each
//!   fragment's audio is its own chunk, right after the fragment's video chunk.
//! - Only bytes covered by the index are read (an open segment is cut at its indexed length).
//! - A segment file that is missing or unreadable is a gap (listed in `missing`), never a failure of the
//!   whole range.
//! - A keyframe-only file (fast playback, 8x) holds the first frame of each fragment lasting the whole
//!   fragment: the same timeline, a fraction of the bytes.

use super::export_audio::AudioPlan;
use super::footage::{Footage, Location};
use super::index::SegmentRow;
use super::scan::{ScanError, ScannedFragment};
use super::segment::{ticks_to_us, us_to_ticks};
use crate::media::fmp4::{self, BoxWriter, TrackHeader};
use bytes::Bytes;
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;

/// A gap longer than this between fragments is reported.
const GAP_REPORT_US: i64 = 500_000;

#[derive(Debug, Clone)]
pub enum Part {
    Mem(Bytes),
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
    /// Bytes of a segment in the object storage tier.
    Object {
        bucket: Arc<crate::storage::Bucket>,
        key: String,
        offset: u64,
        len: u64,
    },
    /// Bytes of segment `id` on another node's disk (cluster).
    Peer {
        peers: Arc<dyn super::footage::Peers>,
        node: String,
        id: i64,
        offset: u64,
        len: u64,
    },
}

impl Part {
    pub fn len(&self) -> u64 {
        match self {
            Part::Mem(b) => b.len() as u64,
            Part::File { len, .. } | Part::Object { len, .. } | Part::Peer { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub parts: Vec<Part>,
    pub len: u64,
    pub etag: String,
    /// The range the file presents (within the requested one).
    pub start_us: i64,
    pub end_us: i64,
    pub gaps: Vec<(i64, i64)>,
    /// Ranges of indexed segments whose files could not be read (missing, unreadable): gaps too, but
    /// footage that the index says exists.
    pub missing: Vec<(i64, i64)>,
    pub frames: usize,
}

struct Chunk {
    /// A chunk of the audio track (else of the video).
    audio: bool,
    entry: u32,
    at: Location,
    offset: u64,
    len: u64,
    samples: u32,
}

/// Plans the MP4 of `[start_us, end_us)` from the stream's overlapping segment rows (oldest first).
/// `None` when no footage falls in the range. Blocking (reads the segments' fragment headers). A segment
/// that cannot be read is left out and listed in [`Plan::missing`].
pub fn plan(
    footage: &Footage,
    rows: &[SegmentRow],
    start_us: i64,
    end_us: i64,
) -> Result<Option<Plan>, ScanError> {
    plan_with(footage, rows, start_us, end_us, false)
}

/// [`plan`], or with `keyframes_only` the file of the keyframes alone, each lasting its whole fragment.
pub fn plan_with(
    footage: &Footage,
    rows: &[SegmentRow],
    start_us: i64,
    end_us: i64,
    keyframes_only: bool,
) -> Result<Option<Plan>, ScanError> {
    let mut p = Planner::new(start_us, end_us);
    p.keyframes_only = keyframes_only;
    for row in rows {
        p.add_segment(footage, row);
    }
    Ok(p.finish())
}

/// The sample tables of the planned file as its segments' fragments are taken in.
struct Planner {
    start_us: i64,
    end_us: i64,
    /// Each fragment's keyframe alone, lasting the fragment.
    keyframes_only: bool,
    entries: Vec<Vec<u8>>,
    chunks: Vec<Chunk>,
    durations: Vec<u32>,
    /// Composition offset of each sample (all 0 without B-frames).
    offsets: Vec<u32>,
    sizes: Vec<u32>,
    /// 1-based numbers of the keyframe samples.
    syncs: Vec<u32>,
    gaps: Vec<(i64, i64)>,
    missing: Vec<(i64, i64)>,
    /// Wall time of the first fragment taken: the file's time zero.
    t0: Option<i64>,
    /// End of the timeline so far, in ticks from `t0`.
    dts: i64,
    last_wall_end: i64,
    last_frag_wall: i64,
    last_run: i64,
    width: u32,
    height: u32,
    audio: AudioPlan,
}

impl Planner {
    fn new(start_us: i64, end_us: i64) -> Planner {
        Planner {
            start_us,
            end_us,
            keyframes_only: false,
            entries: Vec::new(),
            chunks: Vec::new(),
            durations: Vec::new(),
            offsets: Vec::new(),
            sizes: Vec::new(),
            syncs: Vec::new(),
            gaps: Vec::new(),
            missing: Vec::new(),
            t0: None,
            dts: 0,
            last_wall_end: i64::MIN,
            last_frag_wall: i64::MIN,
            last_run: i64::MIN,
            width: 0,
            height: 0,
            audio: AudioPlan::default(),
        }
    }

    /// Takes in the fragments of one segment that fall in the range. A segment whose file is gone or
    /// unreadable is a gap in the footage, not a failure of the range: the rest plays, and the hole is
    /// reported.
    fn add_segment(&mut self, footage: &Footage, row: &SegmentRow) {
        let (s, at) = match footage.scan(row) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(camera = row.camera_id, path = %row.path, stored = %row.stored, error = %e,
                    "segment unreadable: played as a gap");
                let span = (row.start_us.max(self.start_us), row.end_us.min(self.end_us));
                self.missing.push(span);
                return;
            }
        };
        let entry = match self.entries.iter().position(|e| *e == s.sample_entry) {
            Some(i) => i,
            None => {
                self.entries.push(s.sample_entry.clone());
                self.entries.len() - 1
            }
        } as u32;
        self.audio
            .segment(s.audio.as_ref().filter(|_| !self.keyframes_only));
        for f in &s.fragments {
            self.add_fragment(row, &at, entry + 1, f);
        }
    }

    fn add_fragment(&mut self, row: &SegmentRow, at: &Location, entry: u32, f: &ScannedFragment) {
        let f_end = f.wall_us + ticks_to_us(f.duration_90k());
        // Within a run a fragment follows the one before it: its wall time may read a little earlier than
        // that one's end (the clock is slewed toward the server's), but it starts where that one ended. So
        // a range ending at the end of the footage recorded so far does not take in the next fragment once
        // it is written: the range's bytes never change as recording goes on.
        let begins = if row.run == self.last_run {
            f.wall_us.max(self.last_wall_end)
        } else {
            f.wall_us
        };
        if f_end <= self.start_us || begins >= self.end_us || f.wall_us <= self.last_frag_wall {
            return;
        }
        self.last_frag_wall = f.wall_us;
        let base = *self.t0.get_or_insert(f.wall_us);
        if self.width == 0 {
            (self.width, self.height) = (row.width as u32, row.height as u32);
        }
        self.place(row.run, f.wall_us, base);
        self.last_run = row.run;
        let video_at = self.dts;
        let limit = us_to_ticks(self.end_us - base);
        let (len, samples) = self.take_samples(f, limit);
        self.last_wall_end = f_end;
        self.chunks.push(Chunk {
            audio: false,
            entry,
            at: at.clone(),
            offset: f.data_offset,
            len,
            samples,
        });
        if let Some(a) = self.audio.take(f, video_at, limit.min(self.dts)) {
            self.chunks.push(Chunk {
                audio: true,
                entry: 1,
                at: at.clone(),
                offset: a.offset,
                len: a.len,
                samples: a.samples,
            });
        }
    }

    /// Within a run, media time is the clock (exact durations). Across runs, gaps and clock steps, the
    /// fragment goes at its wall-clock position: the last frame before it is stretched (gap) or trimmed.
    fn place(&mut self, run: i64, wall_us: i64, base: i64) {
        let target = us_to_ticks(wall_us - base);
        let Some(last) = self.durations.last_mut() else {
            return;
        };
        if run != self.last_run || (target - self.dts).abs() > us_to_ticks(GAP_REPORT_US) {
            let prev_start = self.dts - i64::from(*last);
            let d = (target - prev_start).clamp(1, i64::from(u32::MAX));
            *last = d as u32;
            self.dts = prev_start + d;
        }
        if wall_us - self.last_wall_end > GAP_REPORT_US {
            self.gaps.push((self.last_wall_end, wall_us));
        }
    }

    /// The fragment's samples up to `limit` (ticks from `t0`): their bytes and count.
    fn take_samples(&mut self, f: &ScannedFragment, limit: i64) -> (u64, u32) {
        if self.keyframes_only {
            return self.take_keyframe(f, limit);
        }
        let (mut len, mut n) = (0u64, 0u32);
        for (i, (size, dur, key)) in f.samples.iter().enumerate() {
            if n > 0 && self.dts >= limit {
                break;
            }
            self.offsets
                .push(f.composition_offsets.get(i).copied().unwrap_or(0));
            if *key {
                self.syncs.push(self.sizes.len() as u32 + 1);
            }
            self.sizes.push(*size);
            self.durations.push(*dur);
            self.dts += i64::from(*dur);
            len += u64::from(*size);
            n += 1;
        }
        (len, n)
    }

    /// The fragment's keyframe (its first sample, where its data starts), lasting what the fragment's
    /// samples up to `limit` last: its bytes and count.
    fn take_keyframe(&mut self, f: &ScannedFragment, limit: i64) -> (u64, u32) {
        let Some(&(size, _, key)) = f.samples.first() else {
            return (0, 0);
        };
        let mut dur = 0i64;
        for (_, d, _) in &f.samples {
            if dur > 0 && self.dts + dur >= limit {
                break;
            }
            dur += i64::from(*d);
        }
        self.offsets.push(0);
        if key {
            self.syncs.push(self.sizes.len() as u32 + 1);
        }
        self.sizes.push(size);
        self.durations
            .push(dur.clamp(1, i64::from(u32::MAX)) as u32);
        self.dts += dur;
        (u64::from(size), 1)
    }

    /// The plan: the header built with the chunks' final offsets, then the chunks' file ranges.
    fn finish(self) -> Option<Plan> {
        let base = self.t0?;
        let eff_start = self.start_us.max(base);
        let eff_end = self.end_us.min(base + ticks_to_us(self.dts));
        if eff_end <= eff_start {
            return None;
        }
        let edit = Edit {
            media: us_to_ticks(eff_start - base) as u64,
            duration: us_to_ticks(eff_end - eff_start).max(1) as u64,
        };
        let data_len: u64 = self.chunks.iter().map(|c| c.len).sum();
        let header_len = self.moov(&edit, 0).len() as u64 + 16;
        let mut header = self.moov(&edit, header_len);
        header.extend_from_slice(&1u32.to_be_bytes());
        header.extend_from_slice(b"mdat");
        header.extend_from_slice(&(data_len + 16).to_be_bytes());
        let mut parts = Vec::with_capacity(self.chunks.len() + 1);
        parts.push(Part::Mem(Bytes::from(header)));
        parts.extend(self.chunks.into_iter().map(|c| match c.at {
            Location::File(path) => Part::File {
                path,
                offset: c.offset,
                len: c.len,
            },
            Location::Object { bucket, key } => Part::Object {
                bucket,
                key,
                offset: c.offset,
                len: c.len,
            },
            Location::Peer { peers, node, id } => Part::Peer {
                peers,
                node,
                id,
                offset: c.offset,
                len: c.len,
            },
        }));
        let len = parts.iter().map(Part::len).sum();
        let etag = etag(&parts);
        Some(Plan {
            parts,
            len,
            etag,
            start_us: eff_start,
            end_us: eff_end,
            gaps: self.gaps,
            missing: self.missing,
            frames: self.sizes.len(),
        })
    }

    /// `ftyp` and `moov`, with chunk offsets counted from `offsets_base` (where the data starts).
    fn moov(&self, edit: &Edit, offsets_base: u64) -> Vec<u8> {
        let mut buf = Vec::with_capacity(1024 + self.sizes.len() * 8 + self.chunks.len() * 20);
        let mut w = BoxWriter::new(&mut buf);
        fmp4::write_ftyp(&mut w);
        w.open(b"moov");
        let tracks = 1 + u32::from(!self.audio.is_empty());
        fmp4::write_mvhd(&mut w, edit.duration, tracks);
        w.open(b"trak");
        let track = TrackHeader {
            width: self.width,
            height: self.height,
            duration: edit.duration,
        };
        fmp4::write_tkhd(&mut w, &track);
        w.open(b"edts").open_full(b"elst", 1, 0).u32(1);
        w.u64(edit.duration).u64(edit.media).u16(1).u16(0);
        w.close().close();
        w.open(b"mdia");
        fmp4::write_mdhd_hdlr(&mut w, self.dts as u64);
        w.open(b"minf");
        fmp4::write_vmhd_dinf(&mut w);
        w.open(b"stbl");
        let entry_refs: Vec<&[u8]> = self.entries.iter().map(Vec::as_slice).collect();
        fmp4::write_stsd(&mut w, &entry_refs);
        let mut at = offsets_base;
        let (mut video, mut audio) = (Vec::new(), Vec::new());
        for c in &self.chunks {
            if c.audio {
                audio.push((at, c.samples));
            } else {
                video.push((at, c.samples, c.entry));
            }
            at += c.len;
        }
        self.write_sample_tables(&mut w, video);
        w.close().close().close().close(); // stbl minf mdia trak
        if !self.audio.is_empty() {
            self.audio
                .write_trak(&mut w, edit.media, edit.duration, &audio);
        }
        w.close(); // moov
        buf
    }

    /// `stts` (run-length durations), `ctts` (B-frames' composition offsets, when any), `stss`, `stsz`,
    /// and the chunks `(offset, samples, entry)`.
    fn write_sample_tables(&self, w: &mut BoxWriter<'_>, chunks: Vec<(u64, u32, u32)>) {
        write_stts(w, &self.durations);
        if self.offsets.iter().any(|&o| o != 0) {
            let runs = run_lengths(&self.offsets);
            w.open_full(b"ctts", 0, 0).u32(runs.len() as u32);
            for (n, v) in &runs {
                w.u32(*n).u32(*v);
            }
            w.close();
        }
        w.open_full(b"stss", 0, 0).u32(self.syncs.len() as u32);
        for s in &self.syncs {
            w.u32(*s);
        }
        w.close();
        write_stsz(w, &self.sizes);
        write_chunks(w, chunks.into_iter());
    }
}

/// `stts`: the samples' durations, run-length coded.
pub(super) fn write_stts(w: &mut BoxWriter<'_>, durations: &[u32]) {
    let runs = run_lengths(durations);
    w.open_full(b"stts", 0, 0).u32(runs.len() as u32);
    for (n, v) in &runs {
        w.u32(*n).u32(*v);
    }
    w.close();
}

/// `stsz`: each sample's size.
pub(super) fn write_stsz(w: &mut BoxWriter<'_>, sizes: &[u32]) {
    w.open_full(b"stsz", 0, 0).u32(0).u32(sizes.len() as u32);
    for s in sizes {
        w.u32(*s);
    }
    w.close();
}

/// `stsc` and `co64` of chunks `(file offset, samples, sample entry)`.
pub(super) fn write_chunks(w: &mut BoxWriter<'_>, chunks: impl Iterator<Item = (u64, u32, u32)>) {
    let chunks: Vec<_> = chunks.collect();
    let mut stsc: Vec<(u32, u32, u32)> = Vec::new();
    for (i, &(_, samples, entry)) in chunks.iter().enumerate() {
        if stsc.last().is_none_or(|l| l.1 != samples || l.2 != entry) {
            stsc.push((i as u32 + 1, samples, entry));
        }
    }
    w.open_full(b"stsc", 0, 0).u32(stsc.len() as u32);
    for (a, b, c) in &stsc {
        w.u32(*a).u32(*b).u32(*c);
    }
    w.close();
    w.open_full(b"co64", 0, 0).u32(chunks.len() as u32);
    for (off, _, _) in &chunks {
        w.u64(*off);
    }
    w.close();
}

/// `(count, value)` runs of equal values, as `stts` and `ctts` store them.
fn run_lengths(values: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &v in values {
        match runs.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => runs.push((1, v)),
        }
    }
    runs
}

/// The edit list's one entry: where in the media the presentation starts, and how long it lasts (ticks).
struct Edit {
    media: u64,
    duration: u64,
}

/// A strong validator of the planned bytes: the header and which bytes of which segment files follow it
/// (indexed bytes of a segment file are never rewritten). It changes only when the bytes do: a range whose
/// open segment grows past its end keeps its tag, so a client holding part of it can go on reading it.
fn etag(parts: &[Part]) -> String {
    let mut hasher = sha2::Sha256::new();
    for p in parts {
        match p {
            Part::Mem(b) => {
                hasher.update(b"mem ");
                hasher.update((b.len() as u64).to_be_bytes());
                hasher.update(b);
            }
            Part::File { path, offset, len } => {
                hasher.update(format!("file {} {offset} {len}\n", path.display()));
            }
            Part::Object {
                key, offset, len, ..
            } => {
                hasher.update(format!("object {key} {offset} {len}\n"));
            }
            Part::Peer {
                node,
                id,
                offset,
                len,
                ..
            } => {
                hasher.update(format!("peer {node} {id} {offset} {len}\n"));
            }
        }
    }
    format!("\"{}\"", hex::encode(&hasher.finalize()[..16]))
}

impl Plan {
    /// The bytes `[from, to)` of the planned file, read lazily in chunks of at most `chunk` bytes. Only
    /// the parts that hold them are taken from the plan (a Range request near the end of a 24 h plan
    /// copies a few of its 1,440 parts, not all).
    pub fn body(
        &self,
        from: u64,
        to: u64,
        chunk: usize,
    ) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
        // `first`: where the first part kept starts in the file; `at`: where the current one does.
        let (mut first, mut at) = (0, 0);
        let mut parts = Vec::new();
        for p in &self.parts {
            let end = at + p.len();
            if end > from && at < to {
                if parts.is_empty() {
                    first = at;
                }
                parts.push(p.clone());
            }
            if end >= to {
                break;
            }
            at = end;
        }
        stream_from(parts, first, from, to, chunk)
    }
}

/// The bytes `[from, to)` of a planned file, read lazily in chunks of at most `chunk` bytes.
pub fn stream(
    plan_parts: Vec<Part>,
    from: u64,
    to: u64,
    chunk: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    stream_from(plan_parts, 0, from, to, chunk)
}

/// `n` bytes of `part` from `within` it; `file` keeps the last file opened (consecutive reads of one
/// segment open it once).
async fn read_part(
    part: &Part,
    within: u64,
    n: usize,
    file: &mut Option<(PathBuf, tokio::fs::File)>,
) -> std::io::Result<Bytes> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    match part {
        Part::Mem(b) => Ok(b.slice(within as usize..within as usize + n)),
        Part::Object {
            bucket,
            key,
            offset,
            ..
        } => bucket
            .get_range(key, offset + within..offset + within + n as u64)
            .await
            .map_err(|e| std::io::Error::other(e.to_string())),
        Part::Peer {
            peers,
            node,
            id,
            offset,
            ..
        } => peers.read(node, *id, offset + within, n as u64).await,
        Part::File { path, offset, .. } => {
            if file.as_ref().is_none_or(|(p, _)| p != path) {
                *file = Some((path.clone(), tokio::fs::File::open(path).await?));
            }
            let Some((_, f)) = file.as_mut() else {
                return Err(std::io::Error::other("file not open"));
            };
            f.seek(std::io::SeekFrom::Start(offset + within)).await?;
            let mut buf = vec![0u8; n];
            f.read_exact(&mut buf).await?;
            Ok(Bytes::from(buf))
        }
    }
}

/// [`stream`] of parts whose first starts at byte `parts_start` of the file.
fn stream_from(
    plan_parts: Vec<Part>,
    parts_start: u64,
    from: u64,
    to: u64,
    chunk: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    struct St {
        parts: std::vec::IntoIter<Part>,
        part_start: u64,
        cur: Option<(Part, u64)>,
        pos: u64,
        to: u64,
        file: Option<(PathBuf, tokio::fs::File)>,
    }
    let st = St {
        parts: plan_parts.into_iter(),
        part_start: parts_start,
        cur: None,
        pos: from,
        to,
        file: None,
    };
    futures::stream::unfold(st, move |mut st| async move {
        loop {
            if st.pos >= st.to {
                return None;
            }
            if st.cur.as_ref().is_none_or(|(p, s)| st.pos >= s + p.len()) {
                let p = st.parts.next()?;
                let s = st.part_start;
                st.part_start += p.len();
                st.cur = Some((p, s));
                continue;
            }
            let (part, pstart) = st.cur.clone()?;
            let within = st.pos - pstart;
            let n = (part.len() - within).min(st.to - st.pos).min(chunk as u64) as usize;
            let res = read_part(&part, within, n, &mut st.file).await;
            return match res {
                Ok(b) => {
                    st.pos += b.len() as u64;
                    Some((Ok(b), st))
                }
                Err(e) => {
                    st.pos = st.to;
                    Some((Err(e), st))
                }
            };
        }
    })
}

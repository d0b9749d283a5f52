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
//! - Only bytes covered by the index are read (an open segment is cut at its indexed length).
//! - A segment file that is missing or unreadable is a gap (listed in `missing`), never a failure of the
//!   whole range.

use super::index::SegmentRow;
use super::scan::{scan, ScanError};
use super::segment::{ticks_to_us, us_to_ticks};
use crate::media::fmp4::{self, BoxWriter, TrackHeader};
use bytes::Bytes;
use sha2::Digest;
use std::path::{Path, PathBuf};

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
}

impl Part {
    pub fn len(&self) -> u64 {
        match self {
            Part::Mem(b) => b.len() as u64,
            Part::File { len, .. } => *len,
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
    entry: u32,
    path: PathBuf,
    offset: u64,
    len: u64,
    samples: u32,
}

/// Plans the MP4 of `[start_us, end_us)` from the stream's overlapping segment rows (oldest first).
/// `None` when no footage falls in the range. Blocking (reads the segments' fragment headers). A segment
/// that cannot be read is left out and listed in [`Plan::missing`].
pub fn plan(
    data_dir: &Path,
    rows: &[SegmentRow],
    start_us: i64,
    end_us: i64,
) -> Result<Option<Plan>, ScanError> {
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut durations: Vec<u32> = Vec::new();
    let mut sizes: Vec<u32> = Vec::new();
    let mut syncs: Vec<u32> = Vec::new();
    let mut gaps = Vec::new();
    let mut t0: Option<i64> = None;
    let mut dts: i64 = 0; // end of the timeline so far, in ticks from t0
    let mut last_wall_end: i64 = i64::MIN;
    let mut last_frag_wall: i64 = i64::MIN;
    let mut last_run: i64 = i64::MIN;
    let (mut width, mut height) = (0u32, 0u32);
    let mut missing = Vec::new();
    for row in rows {
        let abs = data_dir.join(&row.path);
        // A segment whose file is gone or unreadable is a gap in the footage, not a failure of the range:
        // the rest plays, and the hole is reported.
        let s = match scan(&abs, Some(row.bytes as u64)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(camera = row.camera_id, path = %abs.display(), error = %e,
                    "segment unreadable: played as a gap");
                missing.push((row.start_us.max(start_us), row.end_us.min(end_us)));
                continue;
            }
        };
        let entry = match entries.iter().position(|e| *e == s.sample_entry) {
            Some(i) => i,
            None => {
                entries.push(s.sample_entry.clone());
                entries.len() - 1
            }
        } as u32;
        for f in &s.fragments {
            let f_end = f.wall_us + ticks_to_us(f.duration_90k());
            // Within a run a fragment follows the one before it: its wall time may read a little earlier
            // than that one's end (the clock is slewed toward the server's), but it starts where that one
            // ended. So a range ending at the end of the footage recorded so far does not take in the next
            // fragment once it is written: the range's bytes never change as recording goes on.
            let begins = if row.run == last_run {
                f.wall_us.max(last_wall_end)
            } else {
                f.wall_us
            };
            if f_end <= start_us || begins >= end_us || f.wall_us <= last_frag_wall {
                continue;
            }
            last_frag_wall = f.wall_us;
            let base = *t0.get_or_insert(f.wall_us);
            if width == 0 {
                width = row.width as u32;
                height = row.height as u32;
            }
            let target = us_to_ticks(f.wall_us - base);
            if let Some(last) = durations.last_mut() {
                // Within a run, media time is the clock (exact durations). Across runs, gaps and clock
                // steps, place the fragment at its wall-clock position: stretch (gap) or trim the last
                // frame before it.
                if row.run != last_run || (target - dts).abs() > us_to_ticks(GAP_REPORT_US) {
                    let prev_start = dts - i64::from(*last);
                    let d = (target - prev_start).clamp(1, i64::from(u32::MAX));
                    *last = d as u32;
                    dts = prev_start + d;
                }
                if f.wall_us - last_wall_end > GAP_REPORT_US {
                    gaps.push((last_wall_end, f.wall_us));
                }
            }
            last_run = row.run;
            let limit = us_to_ticks(end_us - base);
            let mut len = 0u64;
            let mut n = 0u32;
            for (size, dur, key) in &f.samples {
                if n > 0 && dts >= limit {
                    break;
                }
                if *key {
                    syncs.push(sizes.len() as u32 + 1);
                }
                sizes.push(*size);
                durations.push(*dur);
                dts += i64::from(*dur);
                len += u64::from(*size);
                n += 1;
            }
            last_wall_end = f_end;
            chunks.push(Chunk {
                entry: entry + 1,
                path: abs.clone(),
                offset: f.data_offset,
                len,
                samples: n,
            });
        }
    }
    let Some(base) = t0 else { return Ok(None) };
    let eff_start = start_us.max(base);
    let eff_end = end_us.min(base + ticks_to_us(dts));
    if eff_end <= eff_start {
        return Ok(None);
    }
    let edit_media = us_to_ticks(eff_start - base);
    let edit_dur = us_to_ticks(eff_end - eff_start).max(1);
    let entry_refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let data_len: u64 = chunks.iter().map(|c| c.len).sum();
    let moov = |offsets_base: u64| -> Vec<u8> {
        let mut buf = Vec::with_capacity(1024 + sizes.len() * 8 + chunks.len() * 20);
        let mut w = BoxWriter::new(&mut buf);
        fmp4::write_ftyp(&mut w);
        w.open(b"moov");
        fmp4::write_mvhd(&mut w, edit_dur as u64);
        w.open(b"trak");
        fmp4::write_tkhd(
            &mut w,
            &TrackHeader {
                width,
                height,
                duration: edit_dur as u64,
            },
        );
        w.open(b"edts").open_full(b"elst", 1, 0).u32(1);
        w.u64(edit_dur as u64).u64(edit_media as u64).u16(1).u16(0);
        w.close().close();
        w.open(b"mdia");
        fmp4::write_mdhd_hdlr(&mut w, dts as u64);
        w.open(b"minf");
        fmp4::write_vmhd_dinf(&mut w);
        w.open(b"stbl");
        fmp4::write_stsd(&mut w, &entry_refs);
        // stts: run-length durations
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for d in &durations {
            match runs.last_mut() {
                Some((n, v)) if v == d => *n += 1,
                _ => runs.push((1, *d)),
            }
        }
        w.open_full(b"stts", 0, 0).u32(runs.len() as u32);
        for (n, v) in &runs {
            w.u32(*n).u32(*v);
        }
        w.close();
        w.open_full(b"stss", 0, 0).u32(syncs.len() as u32);
        for s in &syncs {
            w.u32(*s);
        }
        w.close();
        w.open_full(b"stsz", 0, 0).u32(0).u32(sizes.len() as u32);
        for s in &sizes {
            w.u32(*s);
        }
        w.close();
        let mut stsc: Vec<(u32, u32, u32)> = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            if stsc
                .last()
                .is_none_or(|l| l.1 != c.samples || l.2 != c.entry)
            {
                stsc.push((i as u32 + 1, c.samples, c.entry));
            }
        }
        w.open_full(b"stsc", 0, 0).u32(stsc.len() as u32);
        for (a, b, c) in &stsc {
            w.u32(*a).u32(*b).u32(*c);
        }
        w.close();
        w.open_full(b"co64", 0, 0).u32(chunks.len() as u32);
        let mut off = offsets_base;
        for c in &chunks {
            w.u64(off);
            off += c.len;
        }
        w.close();
        w.close().close().close().close(); // stbl minf mdia trak
        w.close(); // moov
        buf
    };
    let probe = moov(0);
    let header_len = probe.len() as u64 + 16;
    let mut header = moov(header_len);
    header.extend_from_slice(&1u32.to_be_bytes());
    header.extend_from_slice(b"mdat");
    header.extend_from_slice(&(data_len + 16).to_be_bytes());
    let mut parts = Vec::with_capacity(chunks.len() + 1);
    parts.push(Part::Mem(Bytes::from(header)));
    parts.extend(chunks.into_iter().map(|c| Part::File {
        path: c.path,
        offset: c.offset,
        len: c.len,
    }));
    let len = parts.iter().map(Part::len).sum();
    let etag = etag(&parts);
    Ok(Some(Plan {
        parts,
        len,
        etag,
        start_us: eff_start,
        end_us: eff_end,
        gaps,
        missing,
        frames: sizes.len(),
    }))
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
        }
    }
    format!("\"{}\"", hex::encode(&hasher.finalize()[..16]))
}

/// The bytes `[from, to)` of a planned file, read lazily in chunks of at most `chunk` bytes.
pub fn stream(
    plan_parts: Vec<Part>,
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
        part_start: 0,
        cur: None,
        pos: from,
        to,
        file: None,
    };
    futures::stream::unfold(st, move |mut st| async move {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
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
            let res = match &part {
                Part::Mem(b) => Ok(b.slice(within as usize..within as usize + n)),
                Part::File { path, offset, .. } => {
                    let r: std::io::Result<Bytes> = async {
                        if st.file.as_ref().is_none_or(|(p, _)| p != path) {
                            st.file = Some((path.clone(), tokio::fs::File::open(path).await?));
                        }
                        let Some((_, f)) = st.file.as_mut() else {
                            return Err(std::io::Error::other("file not open"));
                        };
                        f.seek(std::io::SeekFrom::Start(offset + within)).await?;
                        let mut buf = vec![0u8; n];
                        f.read_exact(&mut buf).await?;
                        Ok(Bytes::from(buf))
                    }
                    .await;
                    r
                }
            };
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

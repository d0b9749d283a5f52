//! Recorded footage as frames again, for senders that replay it as a stream (GB/T 28181 playback of
//! Vigil's recordings to a superior platform): the samples of one stream's segments over a range, one
//! fragment (one GOP) at a time, with their wall time and the decoder configuration they need.
//!
//! Invariants: at most one fragment's samples are held at a time; frames come in decode order, from the
//! fragment that holds the range's start (it starts with a keyframe) to the last frame that starts
//! before its end; a segment that cannot be read is skipped with a warning, and what follows still plays.

use super::footage::{Footage, Location};
use super::index::SegmentRow;
use super::scan::Scanned;
use super::segment::ticks_to_us;
use bytes::Bytes;

/// One recorded frame: its sample as stored (length-prefixed NAL units).
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    pub wall_us: i64,
    pub data: Bytes,
    pub keyframe: bool,
    /// Presentation minus decode time, 90 kHz (B-frames).
    pub composition_offset: u32,
}

/// The frames of one fragment and how to decode them.
#[derive(Debug, Clone)]
pub struct Gop {
    pub frames: Vec<RecordedFrame>,
    /// The `avcC`/`hvcC` body of the segment's sample entry.
    pub extra: Bytes,
    pub h265: bool,
}

/// Reads a range of one stream's rows (oldest first), a fragment at a time. Blocking.
pub struct Reader {
    footage: Footage,
    rows: Vec<SegmentRow>,
    /// The range asked for, and where reading goes on from (its start, or a seek's target).
    range: (i64, i64),
    start_us: i64,
    end_us: i64,
    row: usize,
    fragment: usize,
    scanned: Option<(Scanned, Location, Bytes)>,
}

impl Reader {
    pub fn new(footage: Footage, rows: Vec<SegmentRow>, start_us: i64, end_us: i64) -> Reader {
        Reader {
            footage,
            rows,
            range: (start_us, end_us),
            start_us,
            end_us,
            row: 0,
            fragment: 0,
            scanned: None,
        }
    }

    /// Goes on from the fragment that holds `at_us` (clipped to the range), forwards or back.
    pub fn seek(&mut self, at_us: i64) {
        self.start_us = at_us.clamp(self.range.0.min(self.range.1), self.range.1);
        self.row = 0;
        self.fragment = 0;
        self.scanned = None;
    }

    /// The next fragment's frames, `None` at the end of the range.
    pub fn next_gop(&mut self) -> Option<Gop> {
        while self.row < self.rows.len() {
            // Rows wholly before the position are not scanned (a seek forward reads no file twice).
            let before = self.rows[self.row].end_us <= self.start_us;
            if before || (self.scanned.is_none() && !self.open_row()) {
                self.scanned = None;
                self.fragment = 0;
                self.row += 1;
                continue;
            }
            if let Some(gop) = self.read_fragment() {
                return Some(gop);
            }
            self.scanned = None;
            self.fragment = 0;
            self.row += 1;
        }
        None
    }

    /// Scans the current row; false when it cannot be read.
    fn open_row(&mut self) -> bool {
        let row = &self.rows[self.row];
        match self.footage.scan(row) {
            Ok((s, at)) => match super::thumbs::decoder_config(&s.sample_entry) {
                Some(extra) => {
                    let extra = Bytes::copy_from_slice(extra);
                    self.scanned = Some((s, at, extra));
                    true
                }
                None => {
                    tracing::warn!(
                        segment = row.path,
                        "segment without a decoder configuration skipped"
                    );
                    false
                }
            },
            Err(e) => {
                tracing::warn!(segment = row.path, error = %e, "segment not readable; skipped");
                false
            }
        }
    }

    /// The next fragment of the current row within the range; `None` when the row has no more.
    fn read_fragment(&mut self) -> Option<Gop> {
        let row = &self.rows[self.row];
        let (s, at, extra) = self.scanned.as_ref()?;
        while let Some(f) = s.fragments.get(self.fragment) {
            self.fragment += 1;
            let end = f.wall_us + ticks_to_us(f.duration_90k());
            if end <= self.start_us {
                continue;
            }
            if f.wall_us >= self.end_us {
                return None;
            }
            let data = match at.read_blocking(f.data_offset, f.data_len) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(segment = row.path, error = %e, "fragment not readable; skipped");
                    continue;
                }
            };
            let mut frames = Vec::with_capacity(f.samples.len());
            let (mut offset, mut media) = (0usize, 0i64);
            for (i, &(size, duration, keyframe)) in f.samples.iter().enumerate() {
                let wall_us = f.wall_us + ticks_to_us(media);
                let Some(sample) = data.get(offset..offset + size as usize) else {
                    break;
                };
                if wall_us >= self.end_us {
                    break;
                }
                frames.push(RecordedFrame {
                    wall_us,
                    data: data.slice_ref(sample),
                    keyframe,
                    composition_offset: f.composition_offsets.get(i).copied().unwrap_or(0),
                });
                offset += size as usize;
                media += i64::from(duration);
            }
            let h265 = row.codec.starts_with("hvc1") || row.codec.starts_with("hev1");
            return Some(Gop {
                frames,
                extra: extra.clone(),
                h265,
            });
        }
        None
    }
}

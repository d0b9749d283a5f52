//! The audio track of an export (`export.rs`): the segments' AAC or G.711 samples placed beside the video
//! they were recorded with.
//!
//! Invariants:
//! - Each fragment's audio is placed at the video's position in the file plus its own offset from that
//!   fragment's video (both come from the camera's one clock, see `ingest::publish`); within a run,
//!   samples follow each other by their durations, and a hole of more than [`MAX_DRIFT`] (a gap in the
//!   footage) stretches the last sample before it, as the video does with its last frame.
//! - One sample entry: a segment whose audio differs from the first one taken in (another codec or
//!   rate: a camera reconfigured mid-range) is left silent rather than mislabelled.
//! - No audio in keyframe-only files (fast playback).

use super::scan::ScannedFragment;
use crate::media::fmp4::{self, BoxWriter};

/// More than this (in seconds, as a fraction) between where audio is and where it belongs is a hole.
const MAX_DRIFT: f64 = 0.1;

#[derive(Default)]
pub(super) struct AudioPlan {
    /// Sample entry and timescale (the sample rate).
    entry: Option<(Vec<u8>, u32)>,
    /// Whether the segment being taken in has audio of that entry.
    taking: bool,
    sizes: Vec<u32>,
    durations: Vec<u32>,
    /// Audio ticks from the file's time zero where the first sample sits, and where the last ends.
    start: Option<i64>,
    dts: i64,
}

/// Where an audio chunk lies in its segment: offset, length, samples.
pub(super) struct AudioChunk {
    pub offset: u64,
    pub len: u64,
    pub samples: u32,
}

impl AudioPlan {
    /// A new segment with this audio (or none).
    pub fn segment(&mut self, audio: Option<&(Vec<u8>, u32)>) {
        self.taking = match (audio, &self.entry) {
            (None, _) => false,
            (Some(a), None) => {
                self.entry = Some(a.clone());
                true
            }
            (Some(a), Some(e)) => a == e,
        };
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    fn rate(&self) -> i64 {
        self.entry
            .as_ref()
            .map_or(90_000, |e| i64::from(e.1.max(1)))
    }

    fn as_90k(&self, t: i64) -> i64 {
        t * 90_000 / self.rate()
    }

    fn ticks_of_90k(&self, t: i64) -> i64 {
        t * self.rate() / 90_000
    }

    /// The fragment's audio, whose video was placed at `video_at` (90 kHz ticks from time zero), up to
    /// `limit` (same units).
    pub fn take(&mut self, f: &ScannedFragment, video_at: i64, limit: i64) -> Option<AudioChunk> {
        let a = f.audio.as_ref().filter(|_| self.taking)?;
        let own_offset = a.base as i64 - self.ticks_of_90k(f.base_media as i64);
        let target = self.ticks_of_90k(video_at) + own_offset;
        match self.start {
            None => {
                self.start = Some(target);
                self.dts = target;
            }
            Some(_) if target - self.dts > (self.rate() as f64 * MAX_DRIFT) as i64 => {
                if let Some(last) = self.durations.last_mut() {
                    let d = i64::from(*last) + target - self.dts;
                    *last = d.clamp(1, i64::from(u32::MAX)) as u32;
                }
                self.dts = target;
            }
            Some(_) => {}
        }
        let (mut len, mut n) = (0u64, 0u32);
        for &(size, dur) in &a.samples {
            if self.as_90k(self.dts) >= limit {
                break;
            }
            self.sizes.push(size);
            self.durations.push(dur);
            self.dts += i64::from(dur);
            len += u64::from(size);
            n += 1;
        }
        (n > 0).then_some(AudioChunk {
            offset: a.data_offset,
            len,
            samples: n,
        })
    }

    /// `trak` 2 for a presentation of `duration` from `media` (90 kHz ticks from time zero), with
    /// chunks at `offsets`, `counts` samples each.
    pub fn write_trak(
        &self,
        w: &mut BoxWriter<'_>,
        media: u64,
        duration: u64,
        chunks: &[(u64, u32)],
    ) {
        let (Some((entry, rate)), Some(start)) = (&self.entry, self.start) else {
            return;
        };
        // Where the presentation starts, on the audio's own timeline (which starts at `start`).
        let at = self.ticks_of_90k(media as i64) - start;
        let edits: Vec<(u64, i64)> = if at >= 0 {
            vec![(duration, at)]
        } else {
            let empty = (self.as_90k(-at) as u64).min(duration);
            vec![(empty, -1), (duration - empty, 0)]
        };
        let track = fmp4::AudioTrack {
            sample_entry: entry,
            rate: *rate,
        };
        let media_duration: u64 = self.durations.iter().map(|d| u64::from(*d)).sum();
        fmp4::open_audio_trak(w, &track, duration, media_duration, &edits);
        super::export::write_stts(w, &self.durations);
        super::export::write_stsz(w, &self.sizes);
        super::export::write_chunks(w, chunks.iter().map(|&(o, n)| (o, n, 1)));
        w.close().close().close().close(); // stbl minf mdia trak
    }
}

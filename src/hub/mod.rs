//! The hub: one broadcast per camera stream, between ingest and every consumer (recorder, live viewers,
//! snapshots).
//!
//! Invariants:
//! - Publishing never waits. Each stream is a [`Ring`]: a bounded broadcast in which a consumer that falls
//!   more than the ring behind is told how many frames it lost and resumes at the next keyframe
//!   ([`Subscriber::recv`]). The camera session and the other consumers never notice.
//! - Frames are shared (`Arc<Frame>` around `Bytes`), never copied per consumer.
//! - The ring's cache is the current GOP (the last keyframe and every frame after it, up to
//!   [`GOP_CACHE_BYTES`]); a new consumer gets it and the live frames that follow with no gap and no
//!   duplicate.
//! - A camera's audio rides in its main stream's ring, interleaved with the video in arrival order
//!   ([`Frame::audio`]); audio frames are never resume points. Only consumers that ask for it
//!   ([`StreamHub::subscribe_av`]) see audio: everything else gets the video alone, so no video consumer
//!   ever mistakes an AAC frame for an access unit.

mod ring;
mod subscriber;
mod timeline;
pub use ring::Ring;
pub use subscriber::{Received, ResumePoint, Subscriber};
pub use timeline::Timeline;

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Bytes the GOP cache keeps at most: bounds memory when a camera sends keyframes rarely (or never). A
/// GOP of 10 s at 12 Mbit/s fits.
pub const GOP_CACHE_BYTES: usize = 16 << 20;

/// Codec parameters of a stream. A new `Arc` is made whenever the camera changes them, so consumers compare
/// pointers (or `generation`) to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    /// RFC 6381 codec string, e.g. `avc1.64001F` or `hvc1.1.6.L120.90`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// The body of the `avcC` or `hvcC` box: what a decoder or an MP4 sample entry needs.
    pub extra_data: Bytes,
    /// A complete MP4 sample entry box (`avc1`/`hvc1`), built once per parameter change.
    pub sample_entry: Bytes,
    /// Counts parameter changes within a run of the stream, from 0.
    pub generation: u64,
}

impl VideoParams {
    pub fn is_h265(&self) -> bool {
        self.codec.starts_with("hvc1") || self.codec.starts_with("hev1")
    }
}

/// Audio codecs Vigil records as they come (never transcoded on the recording path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC (raw access units, no ADTS), as RFC 3640 `mpeg4-generic` carries it.
    Aac,
    /// G.711 A-law.
    Pcma,
    /// G.711 µ-law.
    Pcmu,
}

impl AudioCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            AudioCodec::Aac => "aac",
            AudioCodec::Pcma => "pcma",
            AudioCodec::Pcmu => "pcmu",
        }
    }
}

/// Codec parameters of a camera's audio. A new `Arc` whenever they change, as for [`VideoParams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioParams {
    pub codec: AudioCodec,
    /// Samples per second: the audio track's timescale.
    pub sample_rate: u32,
    pub channels: u16,
    /// RFC 6381 codec string for MSE (`mp4a.40.2`), None where MSE has no such codec (G.711).
    pub rfc6381: Option<String>,
    /// A complete MP4 sample entry box (`mp4a` with its `esds`, or `alaw`/`ulaw`).
    pub sample_entry: Bytes,
    /// What a decoder needs besides the frames: AAC's AudioSpecificConfig, empty for G.711.
    pub config: Bytes,
}

impl AudioParams {
    /// Samples (per channel) in a frame of `len` bytes: 1024 for AAC, one byte per sample for G.711.
    pub fn frame_samples(&self, len: usize) -> u32 {
        match self.codec {
            AudioCodec::Aac => 1024,
            AudioCodec::Pcma | AudioCodec::Pcmu => (len / usize::from(self.channels.max(1))) as u32,
        }
    }

    /// A media time (90 kHz) in this stream's sample clock.
    pub fn ticks_from_90k(&self, t: i64) -> i64 {
        (i128::from(t) * i128::from(self.sample_rate) / 90_000) as i64
    }
}

/// One access unit as it came from the camera: length-prefixed NAL units (MP4 framing), never decoded.
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Bytes,
    /// Decode time in 90 kHz units from the RTP timestamps, rising within one run of the session
    /// (frames come in decode order; see `ingest::reorder`).
    pub media_time: i64,
    /// Presentation time minus decode time, 90 kHz ticks: 0 unless the stream has B-frames. RTP
    /// timestamps and MP4 composition offsets carry it.
    pub composition_offset: u32,
    /// Wall-clock time of the frame, Unix microseconds, anchored per run (see docs/time.md).
    pub wall_time_us: i64,
    pub keyframe: bool,
    pub params: Arc<VideoParams>,
    /// Identifies one run of the session (one connection); media time restarts with each run.
    pub run: u64,
    /// RTP packets lost just before this frame, as retina counts them.
    pub loss: u16,
    /// Set on an audio frame (`data` is one AAC access unit or a run of G.711 samples; `keyframe` is
    /// false; `media_time` and `wall_time_us` are on the video's clocks; `params` are the video's).
    pub audio: Option<Arc<AudioParams>>,
}

impl Frame {
    pub fn is_audio(&self) -> bool {
        self.audio.is_some()
    }
}

fn is_video(f: &Arc<Frame>) -> bool {
    f.audio.is_none()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    Main,
    Sub,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Main => "main",
            StreamKind::Sub => "sub",
        }
    }

    pub fn parse(s: &str) -> Option<StreamKind> {
        match s {
            "main" => Some(StreamKind::Main),
            "sub" => Some(StreamKind::Sub),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub camera_id: i64,
    pub kind: StreamKind,
}

impl StreamKey {
    /// The camera's main stream.
    pub fn main(camera_id: i64) -> StreamKey {
        StreamKey {
            camera_id,
            kind: StreamKind::Main,
        }
    }
}

/// The broadcast of one camera stream: a [`Ring`] of frames whose cache is the current GOP.
pub struct StreamHub {
    key: StreamKey,
    ring: Ring<Arc<Frame>>,
    /// The audio the current run declared (set up with the camera before any frame), so that a live
    /// output can describe its tracks before the first audio frame arrives.
    audio: RwLock<Option<Arc<AudioParams>>>,
}

impl ResumePoint for Arc<Frame> {
    fn is_resume_point(&self) -> bool {
        self.keyframe
    }
    fn size(&self) -> usize {
        self.data.len()
    }
}

impl StreamHub {
    fn new(key: StreamKey, capacity: usize) -> StreamHub {
        StreamHub {
            key,
            ring: Ring::new(capacity, GOP_CACHE_BYTES),
            audio: RwLock::new(None),
        }
    }

    /// A broadcast outside the hub's map, for streams only their owner hands out (a device's playback).
    pub fn standalone(key: StreamKey, capacity: usize) -> StreamHub {
        StreamHub::new(key, capacity)
    }

    pub fn key(&self) -> StreamKey {
        self.key
    }

    /// Hands a frame to every consumer. Never waits.
    pub fn publish(&self, frame: Arc<Frame>) {
        self.ring.publish(frame);
    }

    /// The audio track of the run starting now (None: the camera sends none, or it is not taken).
    pub fn declare_audio(&self, audio: Option<Arc<AudioParams>>) {
        *self.audio.write().unwrap_or_else(|e| e.into_inner()) = audio;
    }

    /// The audio the current run declared: its frames carry these same parameters (same `Arc`).
    pub fn audio(&self) -> Option<Arc<AudioParams>> {
        self.audio.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets the GOP cache: called when a session run ends, so that nobody starts from stale frames.
    pub fn reset(&self) {
        self.ring.reset();
    }

    /// The cached GOP (from its keyframe on) and a subscriber to the video frames that follow it.
    pub fn subscribe(&self) -> (Vec<Arc<Frame>>, Subscriber) {
        let (mut gop, sub) = self.ring.subscribe();
        gop.retain(is_video);
        (gop, sub.only(is_video))
    }

    /// [`StreamHub::subscribe`] with the camera's audio frames too, in arrival order.
    pub fn subscribe_av(&self) -> (Vec<Arc<Frame>>, Subscriber) {
        self.ring.subscribe()
    }

    /// The cached GOP's video alone (for snapshots).
    pub fn current_gop(&self) -> Vec<Arc<Frame>> {
        let mut gop = self.ring.cached();
        gop.retain(is_video);
        gop
    }

    pub fn consumers(&self) -> usize {
        self.ring.consumers()
    }
}

/// Every stream's broadcast, by camera and stream kind.
pub struct Hub {
    capacity: usize,
    streams: RwLock<HashMap<StreamKey, Arc<StreamHub>>>,
}

impl Hub {
    /// `capacity`: frames a consumer may fall behind before it skips.
    pub fn new(capacity: usize) -> Hub {
        Hub {
            capacity,
            streams: RwLock::new(HashMap::new()),
        }
    }

    /// The stream's broadcast, made on first use so that consumers may subscribe before ingest starts.
    pub fn stream(&self, key: StreamKey) -> Arc<StreamHub> {
        if let Some(s) = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return s.clone();
        }
        let mut map = self.streams.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| Arc::new(StreamHub::new(key, self.capacity)))
            .clone()
    }

    pub fn get(&self, key: StreamKey) -> Option<Arc<StreamHub>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    /// Drops the camera's streams; their subscribers see `Closed` once the last sender is gone.
    pub fn remove_camera(&self, camera_id: i64) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| k.camera_id != camera_id);
    }
}

#[cfg(test)]
pub(crate) mod tests;

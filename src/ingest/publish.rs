//! What every ingest path does with a frame once it has one, whatever the protocol that brought it
//! (RTSP through retina, PS over RTP from a GB/T 28181 device): decode times, the wall clock, the rate
//! meter, the hub, and the stream's status.
//!
//! Invariants: frames before a run's first keyframe are dropped (consumers start at keyframes), audio
//! frames too; the hub is never waited on. Audio takes its wall time from the video's clock (the one
//! anchor of the run), so the two stay in step in recordings and live.

use super::clock::WallClock;
use super::reorder::DecodeTimes;
use super::status::{RateMeter, StreamState, StreamStatus};
use crate::hub::{AudioParams, Frame, StreamHub, VideoParams};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::info;

/// One run's state between frames.
pub struct Publisher<'a> {
    hub: &'a StreamHub,
    status: &'a Mutex<StreamStatus>,
    /// What the status log line names (a URL without credentials, a device channel).
    source: &'a str,
    run: u64,
    meter: RateMeter,
    clock: Option<WallClock>,
    seen_keyframe: bool,
    /// The video parameters of the last frame, which audio frames carry along.
    last_video: Option<Arc<VideoParams>>,
}

/// One audio frame as a protocol delivers it.
pub struct IncomingAudio {
    /// Presentation time on the video's 90 kHz timeline of the run.
    pub pts: i64,
    pub data: Bytes,
    pub params: Arc<AudioParams>,
    pub loss: u16,
}

/// One frame as a protocol delivers it.
pub struct Incoming {
    /// Presentation time, 90 kHz ticks since an arbitrary start of the run.
    pub pts: i64,
    /// MP4 framing (4-byte lengths).
    pub data: Bytes,
    pub keyframe: bool,
    pub params: Arc<VideoParams>,
    pub loss: u16,
    /// When the frame's last byte arrived.
    pub arrived: Instant,
}

impl<'a> Publisher<'a> {
    pub fn new(
        hub: &'a StreamHub,
        status: &'a Mutex<StreamStatus>,
        source: &'a str,
        run: u64,
    ) -> Publisher<'a> {
        Publisher {
            hub,
            status,
            source,
            run,
            meter: RateMeter::default(),
            clock: None,
            seen_keyframe: false,
            last_video: None,
        }
    }

    /// Publishes an audio frame once the run's video has started (before that there is no clock and no
    /// consumer could start there).
    pub fn audio(&mut self, f: IncomingAudio) {
        let (Some(clock), Some(video)) = (self.clock.as_ref(), self.last_video.as_ref()) else {
            return;
        };
        self.hub.publish(Arc::new(Frame {
            data: f.data,
            media_time: f.pts,
            composition_offset: 0,
            wall_time_us: clock.at(f.pts),
            keyframe: false,
            params: video.clone(),
            run: self.run,
            loss: f.loss,
            audio: Some(f.params),
        }));
    }

    /// Publishes the frame (unless it comes before the run's first keyframe) and updates the status.
    pub fn frame(&mut self, f: Incoming, decode: &mut DecodeTimes) {
        if !self.seen_keyframe && !f.keyframe {
            return;
        }
        self.seen_keyframe = true;
        let (media_time, composition_offset) = decode.next(f.pts);
        let wall_now_us = crate::time::now_us();
        let wall_time_us = match self.clock.as_mut() {
            Some(c) => c.frame(media_time, wall_now_us, f.arrived),
            None => {
                self.clock = Some(WallClock::new(media_time, wall_now_us, f.arrived));
                wall_now_us
            }
        };
        let len = f.data.len();
        self.meter.push(media_time, len);
        let params = f.params;
        self.hub.publish(Arc::new(Frame {
            data: f.data,
            media_time,
            composition_offset,
            wall_time_us,
            keyframe: f.keyframe,
            params: params.clone(),
            run: self.run,
            loss: f.loss,
            audio: None,
        }));
        self.last_video = Some(params.clone());
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        online(
            &mut s,
            self.source,
            &params,
            len as u64,
            wall_now_us,
            &self.meter,
        );
    }
}

/// The status after a frame: online, with its codec, size and rates.
fn online(
    s: &mut StreamStatus,
    source: &str,
    p: &VideoParams,
    len: u64,
    wall_now_us: i64,
    meter: &RateMeter,
) {
    if s.state != StreamState::Online {
        info!(source, "stream online");
    }
    s.state = StreamState::Online;
    s.error = None;
    if s.codec.as_deref() != Some(p.codec.as_str()) {
        s.codec = Some(p.codec.clone());
    }
    s.width = Some(p.width);
    s.height = Some(p.height);
    s.frames += 1;
    s.bytes += len;
    s.last_frame_at = chrono::DateTime::from_timestamp_micros(wall_now_us);
    if let Some((fps, bps)) = meter.rates() {
        s.fps = Some((fps * 100.0).round() / 100.0);
        s.bitrate_bps = Some(bps);
    }
}

//! A camera's audio for WebRTC: Opus made from its AAC or G.711 by a GStreamer pipeline
//! (`pipelines/live-audio-opus.txt`), once per camera, shared by every WebRTC viewer of the camera (main
//! or sub stream: the sound is the camera's, it comes with the main stream).
//!
//! Invariants:
//! - Transcoded only while someone listens: started with the camera's first WebRTC viewer whose browser
//!   took an audio track, stopped with the last (a [`super::fanout`] registry). MSE viewers get the AAC
//!   as recorded, without this.
//! - Pushing into the pipeline never blocks the task (`appsrc block=false`, bounded); the appsink drops
//!   when the task is slow; packets go into a hub [`Ring`] where every packet is a resume point, so a slow
//!   viewer loses sound, never the camera, the recorder or the other viewers.
//! - The encoder's input timeline is continuous across the camera's reconnects
//!   ([`crate::hub::Timeline`]); packets carry their time on the 48 kHz RTP clock of Opus.

use super::transcode::{self, TranscodeError};
use crate::hub::{AudioCodec, AudioParams, Frame, Received, ResumePoint, Ring, StreamHub};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const PIPELINE: &str = include_str!("../../pipelines/live-audio-opus.txt");
/// Opus's RTP clock (RFC 7587), whatever the audio's own rate.
pub const OPUS_RATE: u64 = 48_000;
/// Packets a listener may fall behind (20 ms each) before it loses some.
const QUEUE: usize = 50;

/// One Opus packet (20 ms).
#[derive(Debug, Clone)]
pub struct OpusPacket {
    pub data: Arc<[u8]>,
    /// 48 kHz ticks on the camera's continuous audio timeline.
    pub time: u32,
    pub received: Instant,
}

impl ResumePoint for OpusPacket {
    fn is_resume_point(&self) -> bool {
        true
    }
    fn size(&self) -> usize {
        self.data.len()
    }
}

/// What the listeners of one camera share.
pub struct OpusShared {
    ring: Ring<OpusPacket>,
}

/// One listener's cursor.
pub type OpusListener = crate::hub::Subscriber<OpusPacket>;

impl OpusShared {
    pub fn new() -> OpusShared {
        OpusShared {
            ring: Ring::new(QUEUE, 4096),
        }
    }

    pub fn join(&self) -> OpusListener {
        self.ring.subscribe().1
    }
}

impl Default for OpusShared {
    fn default() -> Self {
        OpusShared::new()
    }
}

/// The caps of the camera's audio as the pipeline's `appsrc` takes it.
fn caps_of(a: &AudioParams) -> gst::Caps {
    let rate = i32::try_from(a.sample_rate).unwrap_or(8000);
    let channels = i32::from(a.channels.max(1));
    match a.codec {
        AudioCodec::Aac => gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("rate", rate)
            .field("channels", channels)
            .field("codec_data", gst::Buffer::from_slice(a.config.clone()))
            .build(),
        AudioCodec::Pcma | AudioCodec::Pcmu => {
            let media = if a.codec == AudioCodec::Pcma {
                "audio/x-alaw"
            } else {
                "audio/x-mulaw"
            };
            gst::Caps::builder(media)
                .field("rate", rate)
                .field("channels", channels)
                .build()
        }
    }
}

/// Publishes the encoder's packets into the listeners' ring.
fn publish_output(sink: &gst_app::AppSink, shared: Arc<OpusShared>) {
    transcode::on_buffers(sink, move |buffer, data, _| {
        let ns = buffer.pts().map_or(0, |t| t.nseconds());
        shared.ring.publish(OpusPacket {
            data: Arc::from(data),
            time: (u128::from(ns) * u128::from(OPUS_RATE) / 1_000_000_000) as u32,
            received: Instant::now(),
        });
    });
}

/// Feeds the decoder the camera's audio frames, on one timeline across the camera's runs.
struct Input {
    src: gst_app::AppSrc,
    caps_set: Option<Arc<AudioParams>>,
    timeline: crate::hub::Timeline,
    camera: i64,
}

impl Input {
    fn push(&mut self, f: &Frame) {
        let Some(a) = &f.audio else { return };
        if self.caps_set.as_ref().is_none_or(|p| !Arc::ptr_eq(p, a)) {
            self.src.set_caps(Some(&caps_of(a)));
            self.caps_set = Some(a.clone());
        }
        let (dts, _) = self.timeline.place(f);
        let mut buf = gst::Buffer::from_slice(f.data.clone());
        if let Some(b) = buf.get_mut() {
            let us = crate::time::ticks_to_us(dts as i64) as u64;
            b.set_pts(gst::ClockTime::from_useconds(us));
            let samples = u64::from(a.frame_samples(f.data.len()));
            let rate = u64::from(a.sample_rate.max(1));
            b.set_duration(gst::ClockTime::from_useconds(samples * 1_000_000 / rate));
        }
        if self.src.push_buffer(buf).is_err() {
            tracing::debug!(camera = self.camera, "audio transcode refused a buffer");
        }
    }
}

/// Transcodes the audio frames of `stream` (a camera's main stream) to Opus for `shared`'s listeners
/// until `cancel` fires or the stream is removed.
pub async fn run(
    stream: Arc<StreamHub>,
    shared: Arc<OpusShared>,
    cancel: CancellationToken,
) -> Result<(), TranscodeError> {
    let camera = stream.key().camera_id;
    let p = transcode::launch(&transcode::description(PIPELINE))?;
    publish_output(&p.sink, shared);
    p.pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| TranscodeError::Gst(e.to_string()))?;
    tracing::info!(camera, "live audio transcode (Opus) started");
    let mut sub = stream.subscribe_av().1.only(|f| f.is_audio());
    let mut input = Input {
        src: p.src.clone(),
        caps_set: None,
        timeline: crate::hub::Timeline::default(),
        camera,
    };
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => break,
            r = sub.recv() => r,
        };
        match r {
            Received::Frame(f) => input.push(&f),
            Received::Skipped { .. } => {}
            Received::Closed => break,
        }
    }
    let _ = p.pipeline.set_state(gst::State::Null);
    tracing::info!(camera, "live audio transcode (Opus) stopped");
    Ok(())
}

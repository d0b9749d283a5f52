//! H.265 -> H.264 on demand for browsers that cannot decode H.265 (Chromium here): a GStreamer pipeline
//! from `pipelines/live-transcode-h264.txt`, fed with the camera's frames and publishing H.264 frames into
//! the live registry's own hub under the same stream key, where the usual MSE builder picks them up.
//!
//! Invariants:
//! - Started by the first viewer that needs it, stopped with the last (it shares the cancellation token of
//!   the transcoded stream's builder).
//! - Pushing into the pipeline never blocks the task (`appsrc block=false`, bounded); the appsink drops when
//!   nobody pulls. The hub publish never waits.
//! - Output frames are length-prefixed (avc framing) with parameters built from the encoder's `avcC`,
//!   made anew whenever the encoder's caps change (the camera's resolution changed): a new init segment.
//! - The encoder's input timeline is continuous across the camera's reconnects ([`crate::hub::Timeline`]).

use crate::hub::{Frame, Hub, Received, StreamKey, VideoParams};
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const PIPELINE: &str = include_str!("../../pipelines/live-transcode-h264.txt");
const SCALE: &str = include_str!("../../pipelines/live-scale-h264.txt");

/// What a transcode makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// H.264 of an H.265 stream, same size.
    H264,
    /// A scaled H.264 sub stream of this width from the main stream (any codec).
    Scaled { width: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("GStreamer: {0}")]
    Gst(String),
}

/// A pipeline file's description: its lines without comments, joined.
pub(super) fn description(template: &str) -> String {
    template
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(target: Target) -> String {
    let (template, width) = match target {
        Target::H264 => (PIPELINE, 0),
        Target::Scaled { width } => (SCALE, width),
    };
    description(template)
        .replace("{gop}", "50")
        .replace("{width}", &width.to_string())
}

/// An `avc1` sample entry box for an `avcC` body.
pub fn avc1_sample_entry(width: u32, height: u32, avcc: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(86 + 8 + avcc.len());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(b"avc1");
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&(width as u16).to_be_bytes());
    b.extend_from_slice(&(height as u16).to_be_bytes());
    b.extend_from_slice(&0x0048_0000u32.to_be_bytes());
    b.extend_from_slice(&0x0048_0000u32.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&[0; 32]);
    b.extend_from_slice(&0x0018u16.to_be_bytes());
    b.extend_from_slice(&0xffffu16.to_be_bytes());
    b.extend_from_slice(&((avcc.len() + 8) as u32).to_be_bytes());
    b.extend_from_slice(b"avcC");
    b.extend_from_slice(avcc);
    let len = b.len() as u32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn params_from_caps(caps: &gst::CapsRef, generation: u64) -> Option<VideoParams> {
    let s = caps.structure(0)?;
    let width = s.get::<i32>("width").ok()? as u32;
    let height = s.get::<i32>("height").ok()? as u32;
    let avcc = s.get::<gst::Buffer>("codec_data").ok()?;
    let avcc = avcc.map_readable().ok()?.as_slice().to_vec();
    if avcc.len() < 4 {
        return None;
    }
    Some(VideoParams {
        codec: format!("avc1.{:02X}{:02X}{:02X}", avcc[1], avcc[2], avcc[3]),
        width,
        height,
        sample_entry: Bytes::from(avc1_sample_entry(width, height, &avcc)),
        extra_data: Bytes::from(avcc),
        generation,
    })
}

/// The output parameters of a transcode and the caps they were made from.
#[derive(Default)]
struct OutputParams {
    caps: Option<gst::Caps>,
    params: Option<Arc<VideoParams>>,
    generation: u64,
}

impl OutputParams {
    /// The parameters of a sample with these caps: the same `Arc` while the caps stay, new ones (next
    /// generation) when they change.
    fn for_caps(&mut self, caps: &gst::CapsRef) -> Option<Arc<VideoParams>> {
        if self.caps.as_ref().is_none_or(|c| c.as_ref() != caps) {
            let made = params_from_caps(caps, self.generation).map(Arc::new)?;
            self.generation += 1;
            self.caps = Some(caps.to_owned());
            self.params = Some(made);
        }
        self.params.clone()
    }
}

/// A transcode's pipeline and its two ends.
pub(super) struct Pipeline {
    pub pipeline: gst::Pipeline,
    pub src: gst_app::AppSrc,
    pub sink: gst_app::AppSink,
}

fn build(target: Target) -> Result<Pipeline, TranscodeError> {
    launch(&describe(target))
}

/// Parses a pipeline description whose ends are `appsrc name=src` and `appsink name=sink`.
pub(super) fn launch(description: &str) -> Result<Pipeline, TranscodeError> {
    let gst_err = |e: &dyn std::fmt::Display| TranscodeError::Gst(e.to_string());
    gst::init().map_err(|e| gst_err(&e))?;
    let pipeline = gst::parse::launch(description)
        .map_err(|e| gst_err(&e))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| gst_err(&"not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| gst_err(&"no appsrc"))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| gst_err(&"no appsink"))?;
    Ok(Pipeline {
        pipeline,
        src,
        sink,
    })
}

/// Publishes the encoder's output into `out_stream`, one hub frame per sample. The output's parameters
/// are remade whenever the encoder's caps change (a new size after the camera changed resolution): a new
/// `Arc` means a new init segment for the viewers.
fn publish_output(sink: &gst_app::AppSink, out_stream: Arc<crate::hub::StreamHub>) {
    let run_id: u64 = rand::random();
    let mut state = OutputParams::default();
    on_buffers(sink, move |buffer, data, caps| {
        let Some(params) = caps.and_then(|c| state.for_caps(c)) else {
            return;
        };
        let pts = buffer.pts().map_or(0, |t| t.nseconds());
        out_stream.publish(Arc::new(Frame {
            data: Bytes::copy_from_slice(data),
            media_time: (pts as u128 * 90_000 / 1_000_000_000) as i64,
            composition_offset: 0,
            wall_time_us: crate::time::now_us(),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            params,
            run: run_id,
            loss: 0,
            audio: None,
        }));
    });
}

/// Calls `f` with each buffer the sink receives (its bytes, and the sample's caps).
pub(super) fn on_buffers(
    sink: &gst_app::AppSink,
    mut f: impl FnMut(&gst::BufferRef, &[u8], Option<&gst::CapsRef>) + Send + 'static,
) {
    let on_sample = move |sink: &gst_app::AppSink| {
        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
        let Some(buffer) = sample.buffer() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let Ok(map) = buffer.map_readable() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        f(buffer, map.as_slice(), sample.caps());
        Ok(gst::FlowSuccess::Ok)
    };
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(on_sample)
            .build(),
    );
}

/// Feeds the encoder: the camera's frames on one input timeline across its runs (a reconnect restarts
/// its media time, the encoder's input must not go back), with caps set from each new set of parameters.
struct Input {
    src: gst_app::AppSrc,
    target: Target,
    caps_set: Option<Arc<VideoParams>>,
    timeline: crate::hub::Timeline,
    camera: i64,
}

impl Input {
    fn push(&mut self, f: &Frame) {
        if self.target == Target::H264 && !f.params.is_h265() {
            return;
        }
        if self
            .caps_set
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, &f.params))
        {
            let (media, format) = if f.params.is_h265() {
                ("video/x-h265", "hvc1")
            } else {
                ("video/x-h264", "avc")
            };
            let caps = gst::Caps::builder(media)
                .field("stream-format", format)
                .field("alignment", "au")
                .field(
                    "codec_data",
                    gst::Buffer::from_slice(f.params.extra_data.clone()),
                )
                .build();
            self.src.set_caps(Some(&caps));
            self.caps_set = Some(f.params.clone());
        }
        let (dts, _) = self.timeline.place(f);
        let mut buf = gst::Buffer::from_slice(f.data.clone());
        if let Some(b) = buf.get_mut() {
            let ns = |ticks: u64| {
                gst::ClockTime::from_nseconds(crate::time::ticks_to_us(ticks as i64) as u64 * 1000)
            };
            b.set_dts(ns(dts));
            b.set_pts(ns(dts + u64::from(f.composition_offset)));
            if !f.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        if self.src.push_buffer(buf).is_err() {
            tracing::debug!(camera = self.camera, "transcode appsrc refused a buffer");
        }
    }
}

/// Transcodes the stream `key` of `source` (the camera hub) into the stream `out_key` of `out` (the live
/// registry's own hub) until `cancel` fires.
pub async fn run(
    key: StreamKey,
    out_key: StreamKey,
    target: Target,
    source: Arc<Hub>,
    out: Arc<Hub>,
    cancel: CancellationToken,
) -> Result<(), TranscodeError> {
    let camera = key.camera_id;
    let stream = out_key.kind.as_str();
    let p = build(target)?;
    publish_output(&p.sink, out.stream(out_key));
    p.pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| TranscodeError::Gst(e.to_string()))?;
    tracing::info!(camera, stream, ?target, "live transcode started");
    let (gop, mut sub) = source.stream(key).subscribe();
    let mut input = Input {
        src: p.src.clone(),
        target,
        caps_set: None,
        timeline: crate::hub::Timeline::default(),
        camera,
    };
    for f in &gop {
        input.push(f);
    }
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
    tracing::info!(camera, stream, ?target, "live transcode stopped");
    Ok(())
}

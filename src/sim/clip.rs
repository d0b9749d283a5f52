//! Clip mode: every mount replays one encoded clip in a loop, in real time.
//!
//! The live test pattern of the other modes is a still picture with a clock: its P-frames are
//! nearly empty, so it costs a recorder far less than footage does. A clip of moving footage
//! (made once by `pipelines/sim-clip-h264.txt` and cached, or any H.264 file the user gives)
//! has the frame sizes, B-frames and bitrate of a real camera's main stream.
//!
//! Invariants:
//! - The clip is read into memory once; every loop hands out the same buffers (mounts get
//!   shallow copies through the relay hub, see `relay.rs`), so replaying costs no parsing.
//! - Timestamps keep rising across loops: loop `k` is shifted by `k` clip durations. The clip
//!   starts at a keyframe (leading frames before the first one are dropped), so the loop
//!   boundary is a keyframe too.
//! - Frames are handed out in decode order at their decode time plus the clip's largest
//!   reorder delay, so no frame's presentation time is ever in the future when it leaves.
//! - A cached clip is written under a temporary name and renamed when complete: a simulator
//!   killed while making it leaves no half clip behind for the next run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tracing::{debug, info, warn};

use super::pipelines::{render, CLIP_H264};
use super::relay::{Frame, Hub};
use super::{SimError, SimOptions};

/// How long making the moving-footage clip may take before it is given up.
const MAKE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One access unit of the clip, times relative to the clip's first decode time.
struct ClipFrame {
    buffer: gst::Buffer,
    pts: gst::ClockTime,
    dts: gst::ClockTime,
    keyframe: bool,
}

/// A clip in memory, ready to loop.
pub struct Clip {
    frames: Vec<ClipFrame>,
    /// One loop: the last decode time plus one frame.
    duration: gst::ClockTime,
    /// The largest presentation delay over decode time (B-frame reordering).
    reorder: gst::ClockTime,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) fps: u32,
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("frames", &self.frames.len())
            .field("duration", &self.duration)
            .field("size", &(self.width, self.height))
            .field("fps", &self.fps)
            .finish()
    }
}

/// Where made clips are kept: `$VIGIL_CACHE_DIR`, else `$XDG_CACHE_HOME/vigil`, else
/// `~/.cache/vigil`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VIGIL_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("vigil")
}

/// The moving-footage clip for these options (size, rate, bitrate, GOP) and length: made on
/// first use (about twice the clip's length at 1080p on two cores), then taken from the cache.
pub fn moving_footage(opts: &SimOptions, seconds: u32) -> Result<PathBuf, SimError> {
    let dir = cache_dir();
    let name = format!(
        "moving-v1-{}x{}-{}fps-{}k-gop{}-{}s.mp4",
        opts.width, opts.height, opts.fps, opts.bitrate_kbps, opts.gop, seconds
    );
    let path = dir.join(name);
    if path.is_file() {
        debug!(path = %path.display(), "sim clip from the cache");
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| SimError::setup(format!("cannot create {}: {e}", dir.display())))?;
    let partial = dir.join(format!(".making-{}-{}", std::process::id(), seconds));
    info!(path = %path.display(), seconds, "sim making the moving-footage clip (once; cached)");
    let launch = render(
        "clip",
        CLIP_H264,
        &[
            ("width", opts.width.to_string()),
            ("height", opts.height.to_string()),
            ("fps", opts.fps.to_string()),
            ("bitrate_kbps", opts.bitrate_kbps.to_string()),
            ("gop", opts.gop.to_string()),
            (
                "frames",
                (u64::from(seconds) * u64::from(opts.fps)).to_string(),
            ),
            ("location", partial.display().to_string()),
        ],
    )?;
    let made = run_to_end("clip", &launch, MAKE_TIMEOUT);
    if let Err(e) = made {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &path)
        .map_err(|e| SimError::setup(format!("cannot store the clip {}: {e}", path.display())))?;
    Ok(path)
}

/// Runs a finite pipeline until end of stream.
fn run_to_end(what: &'static str, launch: &str, timeout: Duration) -> Result<(), SimError> {
    let pipeline =
        gst::parse::launch(launch).map_err(|source| SimError::Pipeline { what, source })?;
    let outcome = wait_for_end(&pipeline, timeout);
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

fn wait_for_end(pipeline: &gst::Element, timeout: Duration) -> Result<(), SimError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| SimError::setup("pipeline has no bus"))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| SimError::setup("pipeline refused to start"))?;
    let message = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    match message.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(SimError::setup(format!(
            "pipeline failed: {} ({:?})",
            e.error(),
            e.debug()
        ))),
        _ => Err(SimError::setup(format!(
            "pipeline did not finish within {timeout:?}"
        ))),
    }
}

impl Clip {
    /// Reads an H.264 clip (any container GStreamer parses: MP4, Matroska, MPEG-TS) into
    /// memory.
    pub fn load(path: &Path) -> Result<Clip, SimError> {
        if !path.is_file() {
            return Err(SimError::InvalidOptions(format!(
                "clip {} is not a readable file",
                path.display()
            )));
        }
        let launch = "filesrc name=file ! parsebin ! h264parse \
             ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false";
        let pipeline = gst::parse::launch(launch)
            .map_err(|source| SimError::Pipeline {
                what: "clip reader",
                source,
            })?
            .downcast::<gst::Bin>()
            .map_err(|_| SimError::setup("clip reader is not a bin"))?;
        let by_name = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| SimError::setup(format!("clip reader has no {name}")))
        };
        by_name("file")?.set_property("location", path.display().to_string());
        let sink = by_name("sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| SimError::setup("clip reader sink is not an appsink"))?;
        let samples = pull_all(&pipeline, &sink);
        let _ = pipeline.set_state(gst::State::Null);
        Clip::from_samples(path, samples?)
    }

    fn from_samples(path: &Path, samples: Vec<gst::Sample>) -> Result<Clip, SimError> {
        let bad = |why: &str| {
            Err(SimError::InvalidOptions(format!(
                "clip {}: {why}",
                path.display()
            )))
        };
        let Some(caps) = samples.first().and_then(|s| s.caps_owned()) else {
            return bad("no H.264 video in it");
        };
        let (width, height, fps) = picture(&caps).ok_or_else(|| {
            SimError::InvalidOptions(format!("clip {}: no size or frame rate", path.display()))
        })?;
        let frame_time = gst::ClockTime::SECOND / u64::from(fps);
        let mut frames = Vec::with_capacity(samples.len());
        let mut origin = None;
        for sample in samples {
            let Some(buffer) = sample.buffer_owned() else {
                continue;
            };
            let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            if frames.is_empty() && !keyframe {
                continue; // start at a keyframe
            }
            let (Some(pts), dts) = (buffer.pts(), buffer.dts()) else {
                return bad("a frame has no timestamp");
            };
            let dts = dts.unwrap_or(pts);
            let origin = *origin.get_or_insert(dts);
            let (Some(pts), Some(dts)) = (pts.checked_sub(origin), dts.checked_sub(origin)) else {
                return bad("timestamps go backwards");
            };
            frames.push(ClipFrame {
                buffer,
                pts,
                dts,
                keyframe,
            });
        }
        let Some(last) = frames.last() else {
            return bad("no keyframe in it");
        };
        let duration = last.dts + frame_time;
        let reorder = frames
            .iter()
            .map(|f| f.pts.saturating_sub(f.dts))
            .max()
            .unwrap_or_default();
        info!(path = %path.display(), frames = frames.len(), %duration, width, height, fps, "sim clip loaded");
        Ok(Clip {
            frames,
            duration,
            reorder,
            width,
            height,
            fps,
        })
    }
}

/// Every sample of a finite pipeline, or its error.
fn pull_all(pipeline: &gst::Bin, sink: &gst_app::AppSink) -> Result<Vec<gst::Sample>, SimError> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| SimError::setup("clip reader refused to start"))?;
    let mut samples = Vec::new();
    // pull_sample fails at end of stream, and on an error (then the bus says which).
    while let Ok(sample) = sink.pull_sample() {
        samples.push(sample);
    }
    let error = pipeline.bus().and_then(|bus| {
        bus.pop_filtered(&[gst::MessageType::Error])
            .map(|m| match m.view() {
                gst::MessageView::Error(e) => format!("{} ({:?})", e.error(), e.debug()),
                _ => String::new(),
            })
    });
    match error {
        Some(e) => Err(SimError::setup(format!("cannot read the clip: {e}"))),
        None => Ok(samples),
    }
}

/// Width, height and whole frames per second from H.264 caps.
fn picture(caps: &gst::CapsRef) -> Option<(u32, u32, u32)> {
    let s = caps.structure(0)?;
    let width = u32::try_from(s.get::<i32>("width").ok()?).ok()?;
    let height = u32::try_from(s.get::<i32>("height").ok()?).ok()?;
    let rate = s.get::<gst::Fraction>("framerate").ok()?;
    let fps = u32::try_from(rate.numer().checked_div(rate.denom())?).ok()?;
    (fps > 0).then_some((width, height, fps))
}

/// Plays a clip in a loop to the hub's mounts until dropped.
pub(super) struct ClipPlayer {
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClipPlayer {
    pub(super) fn start(clip: Arc<Clip>, max_backlog_bytes: u64) -> Result<ClipPlayer, SimError> {
        let hub = Arc::new(Hub::new(max_backlog_bytes));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("vigil-sim-clip".into())
            .spawn({
                let (hub, stop) = (Arc::clone(&hub), Arc::clone(&stop));
                move || play(&clip, &hub, &stop)
            })
            .map_err(SimError::Thread)?;
        info!("sim clip player started");
        Ok(ClipPlayer {
            hub,
            stop,
            thread: Some(thread),
        })
    }

    pub(super) fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.hub)
    }
}

impl Drop for ClipPlayer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                warn!("sim clip player panicked");
            }
        }
        self.hub.clear();
    }
}

/// The player thread: each frame at its decode time (plus the reorder delay) on the system
/// clock, the clock the relay mounts rebase from.
fn play(clip: &Clip, hub: &Hub, stop: &AtomicBool) {
    let clock = gst::SystemClock::obtain();
    let start = clock.time() + clip.reorder;
    for round in 0u64.. {
        let base = start + clip.duration * round;
        for frame in &clip.frames {
            let due = base + frame.dts + clip.reorder;
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let now = clock.time();
                if now >= due {
                    break;
                }
                std::thread::park_timeout(Duration::from_nanos((due - now).nseconds()));
            }
            hub.publish(&Frame {
                buffer: &frame.buffer,
                pts: base + frame.pts,
                dts: Some(base + frame.dts),
                keyframe: frame.keyframe,
            });
        }
    }
}

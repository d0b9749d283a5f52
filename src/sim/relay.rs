//! Shared-encoder mode: one encode for the whole server, relayed to every mount.
//!
//! The encoder pipeline (`pipelines/sim-shared-*.txt`) ends in an appsink; each mount's
//! media (`pipelines/sim-relay-*.txt`) starts with an appsrc that registers with the [`Hub`]
//! when the media is configured and unregisters when it is unprepared. The hub hands every
//! encoded access unit to every registered appsrc.
//!
//! Invariants:
//! - Each mount gets its own `gst::Buffer` object. It shares the encoded memory (a shallow
//!   copy, no bytes copied) but carries its own PTS/DTS, rebased to that mount's running
//!   time. Pushing one buffer object to several pipelines would let them overwrite each
//!   other's timestamps, and clients would see non-monotonic streams.
//! - Rebasing goes through the clock both pipelines share (the system clock, set on both):
//!   a frame captured at clock time C is stamped `C - mount base time`, exactly what the
//!   mount's own live source would have stamped. Encoder latency or stalls therefore never
//!   shift a mount's timeline, and PTS never decreases.
//! - A mount starts at a keyframe: deltas are dropped until the next keyframe, and again
//!   after the mount fell behind (its appsrc queue over the backlog limit), so a client never
//!   receives a frame whose reference it did not get.
//! - The hub only holds weak references to appsrcs: a media that goes away without
//!   unregistering is dropped at the next buffer, and nothing is pushed into a dead appsrc.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tracing::{debug, error, info, warn};

use super::pipelines::ENCODER_SINK;
use super::SimError;

/// The running shared encoder; encoding stops when it is dropped.
pub(super) struct SharedEncoder {
    pipeline: gst::Pipeline,
    hub: Arc<Hub>,
    _bus_watch: gst::bus::BusWatchGuard,
}

impl SharedEncoder {
    /// Builds and starts the encoder. Must run on the simulator thread with its main context
    /// as the thread default: the bus watch attaches there.
    pub(super) fn start(launch: &str, max_backlog_bytes: u64) -> Result<SharedEncoder, SimError> {
        let pipeline = gst::parse::launch(launch)
            .map_err(|source| SimError::Pipeline {
                what: "encoder",
                source,
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| SimError::setup("encoder description is not a pipeline"))?;
        let sink = pipeline
            .by_name(ENCODER_SINK)
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| SimError::setup("encoder pipeline has no appsink named \"sink\""))?;

        pipeline.use_clock(Some(&gst::SystemClock::obtain()));

        let hub = Arc::new(Hub::new(max_backlog_bytes));
        let weak_hub = Arc::downgrade(&hub);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    match weak_hub.upgrade() {
                        Some(hub) => {
                            hub.distribute(sink, &sample);
                            Ok(gst::FlowSuccess::Ok)
                        }
                        None => Err(gst::FlowError::Flushing),
                    }
                })
                .build(),
        );

        let bus = pipeline
            .bus()
            .ok_or_else(|| SimError::setup("encoder pipeline has no bus"))?;
        let bus_watch = bus
            .add_watch(|_, msg| {
                match msg.view() {
                    gst::MessageView::Error(e) => error!(
                        error = %e.error(),
                        debug = ?e.debug(),
                        "sim shared encoder failed; mounts will receive no more video"
                    ),
                    gst::MessageView::Warning(w) => {
                        warn!(warning = %w.error(), "sim shared encoder warning")
                    }
                    _ => {}
                }
                glib::ControlFlow::Continue
            })
            .map_err(|e| SimError::setup(format!("encoder bus watch: {e}")))?;

        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| SimError::setup("shared encoder pipeline refused to start"))?;
        info!("sim shared encoder started");
        Ok(SharedEncoder {
            pipeline,
            hub,
            _bus_watch: bus_watch,
        })
    }

    pub(super) fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.hub)
    }
}

impl Drop for SharedEncoder {
    /// Stops encoding and forgets every mount (also when start-up fails after the encoder
    /// started, e.g. on a port in use).
    fn drop(&mut self) {
        if self.pipeline.set_state(gst::State::Null).is_err() {
            warn!("sim shared encoder did not stop cleanly");
        }
        self.hub.clear();
        debug!("sim shared encoder stopped");
    }
}

/// Fans encoded access units out to the registered mounts.
pub(super) struct Hub {
    subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
    max_backlog_bytes: u64,
    /// Where every access unit is also recorded (NVR mode, `super::nvr`).
    archive: std::sync::OnceLock<super::nvr::SharedArchive>,
}

/// Handle returned by [`Hub::register`], to unregister with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SubscriberId(u64);

struct Subscriber {
    id: SubscriberId,
    mount: String,
    appsrc: glib::WeakRef<gst_app::AppSrc>,
    /// False until the first keyframe was pushed, and again after falling behind.
    streaming: bool,
    /// Decode time (or PTS, without one) last pushed, so a restart never steps backwards.
    last_pushed: Option<gst::ClockTime>,
}

enum Fate {
    Keep,
    Drop,
}

impl Hub {
    pub(super) fn new(max_backlog_bytes: u64) -> Hub {
        Hub {
            subscribers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            max_backlog_bytes,
            archive: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn register(&self, mount: &str, appsrc: &gst_app::AppSrc) -> SubscriberId {
        let id = SubscriberId(self.next_id.fetch_add(1, Ordering::Relaxed));
        // The appsrc queue is bounded by our own backlog check (which drops whole GOPs);
        // max-bytes only makes appsrc's own accounting agree with it.
        appsrc.set_max_bytes(self.max_backlog_bytes);
        let mut subs = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subs.push(Subscriber {
            id,
            mount: mount.to_owned(),
            appsrc: appsrc.downgrade(),
            streaming: false,
            last_pushed: None,
        });
        debug!(
            mount,
            subscriber = id.0,
            mounts = subs.len(),
            "sim relay mount registered"
        );
        id
    }

    pub(super) fn unregister(&self, id: SubscriberId) {
        let mut subs = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subs.retain(|s| s.id != id);
        debug!(
            subscriber = id.0,
            mounts = subs.len(),
            "sim relay mount unregistered"
        );
    }

    pub(super) fn clear(&self) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Called on the encoder's streaming thread for every access unit.
    fn distribute(&self, sink: &gst_app::AppSink, sample: &gst::Sample) {
        let Some(buffer) = sample.buffer() else {
            return;
        };
        let (Some(pts), Some(base)) = (buffer.pts(), sink.base_time()) else {
            warn!("sim shared encoder produced a buffer without PTS or base time; dropped");
            return;
        };
        // Encoder running time, then clock time: what every mount can rebase from.
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>());
        let to_clock = |t: gst::ClockTime| {
            segment
                .and_then(|s| s.to_running_time(t))
                .unwrap_or(t)
                .saturating_add(base)
        };
        let frame = Frame {
            buffer,
            pts: to_clock(pts),
            dts: buffer.dts().map(to_clock),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        };
        self.publish(&frame);
    }

    /// Records every access unit from now on into `archive` (as an NVR does).
    pub(super) fn record_into(&self, archive: super::nvr::SharedArchive) {
        let _ = self.archive.set(archive);
    }

    /// Hands one access unit to every registered mount (the encoder's streaming thread, or the
    /// clip player's thread).
    pub(super) fn publish(&self, frame: &Frame<'_>) {
        if let (Some(archive), Ok(map)) = (self.archive.get(), frame.buffer.map_readable()) {
            let au = super::gb28181::Au {
                data: bytes::Bytes::copy_from_slice(map.as_slice()),
                pts: frame.pts.nseconds() * 9 / 100_000,
                keyframe: frame.keyframe,
            };
            let at = crate::time::now_ms();
            archive
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(at, Arc::new(au));
        }
        let mut subs = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subs.retain_mut(|sub| match sub.feed(frame, self.max_backlog_bytes) {
            Fate::Keep => true,
            Fate::Drop => false,
        });
    }
}

/// One access unit, timestamps as clock times (of the system clock every mount uses).
pub(super) struct Frame<'a> {
    pub(super) buffer: &'a gst::BufferRef,
    pub(super) pts: gst::ClockTime,
    /// Decode time; differs from `pts` in streams with B-frames, whose frames arrive in
    /// decode order.
    pub(super) dts: Option<gst::ClockTime>,
    pub(super) keyframe: bool,
}

impl Subscriber {
    fn feed(&mut self, frame: &Frame<'_>, max_backlog_bytes: u64) -> Fate {
        let Some(appsrc) = self.appsrc.upgrade() else {
            debug!(mount = %self.mount, "sim relay mount gone; forgetting it");
            return Fate::Drop;
        };
        // The base time is only meaningful while playing (live media play from preroll on).
        if appsrc.current_state() != gst::State::Playing {
            return Fate::Keep;
        }
        let Some(mount_base) = appsrc.base_time() else {
            return Fate::Keep;
        };

        // A mount whose pipeline does not drain (client gone quiet, or blocked between
        // DESCRIBE and PLAY) gets nothing more, not even keyframes, until it catches up;
        // it then restarts at a keyframe. This bounds its queue.
        let queued = appsrc.current_level_bytes();
        if queued > max_backlog_bytes {
            if self.streaming {
                warn!(mount = %self.mount, queued, "sim relay mount fell behind; skipping to a keyframe once it drains");
                self.streaming = false;
            }
            return Fate::Keep;
        }
        if !self.streaming && !frame.keyframe {
            return Fate::Keep;
        }
        // Captured before this mount started playing: not part of its timeline.
        let Some(pts) = frame.pts.checked_sub(mount_base) else {
            return Fate::Keep;
        };
        let dts = frame.dts.and_then(|dts| dts.checked_sub(mount_base));
        // Frames come in decode order: with B-frames only the decode time rises steadily.
        let order = dts.unwrap_or(pts);
        if self.last_pushed.is_some_and(|last| order <= last) {
            // Only possible if the mount pipeline's base time moved; never step back.
            debug!(mount = %self.mount, %pts, "sim relay frame not after the last one; dropped");
            self.streaming = false;
            return Fate::Keep;
        }
        let starting = !self.streaming;
        if starting {
            debug!(mount = %self.mount, %pts, "sim relay mount starts at a keyframe");
        }

        // Shallow copy: a new buffer object whose memories are references to the encoder's.
        let mut out = frame.buffer.copy();
        {
            let out = out.make_mut();
            out.set_pts(pts);
            out.set_dts(dts);
            // Tell the parser and payloader that the stream (re)starts here.
            if starting {
                out.set_flags(gst::BufferFlags::DISCONT);
            } else {
                out.unset_flags(gst::BufferFlags::DISCONT);
            }
        }
        match appsrc.push_buffer(out) {
            Ok(_) => {
                self.streaming = true;
                self.last_pushed = Some(order);
                Fate::Keep
            }
            Err(flow) => {
                // Flushing or EOS: the media is being torn down; it will not come back
                // (unprepared media are not reused), so stop feeding it.
                debug!(mount = %self.mount, ?flow, "sim relay mount refused a buffer; forgetting it");
                Fate::Drop
            }
        }
    }
}

//! The hub: one broadcast per camera stream, between ingest and every consumer (recorder, live viewers,
//! snapshots).
//!
//! Invariants:
//! - Publishing never waits. Frames go into a bounded `tokio::sync::broadcast` ring; a consumer that falls
//!   more than the ring behind is told how many frames it lost and resumes at the next keyframe
//!   ([`Subscriber::recv`]). The camera session and the other consumers never notice.
//! - Frames are shared (`Arc<Frame>` around `Bytes`), never copied per consumer.
//! - The GOP cache holds the last keyframe and every frame after it. [`StreamHub::subscribe`] takes the cache
//!   and the live receiver under one lock, so a new consumer sees each frame exactly once: the cached GOP,
//!   then the live frames that follow it, with no gap and no duplicate.

mod timeline;
pub use timeline::Timeline;

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

/// Frames the GOP cache keeps at most: bounds memory when a camera sends keyframes rarely (or never).
const GOP_CACHE_MAX_FRAMES: usize = 600;

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

/// One access unit as it came from the camera: length-prefixed NAL units (MP4 framing), never decoded.
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Bytes,
    /// Media time in 90 kHz units from the RTP timestamps, monotonic within one run of the session.
    pub media_time: i64,
    /// Wall-clock time of the frame, Unix microseconds, anchored per run (see docs/time.md).
    pub wall_time_us: i64,
    pub keyframe: bool,
    pub params: Arc<VideoParams>,
    /// Identifies one run of the session (one connection); media time restarts with each run.
    pub run: u64,
    /// RTP packets lost just before this frame, as retina counts them.
    pub loss: u16,
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

/// The broadcast of one camera stream.
pub struct StreamHub {
    key: StreamKey,
    tx: broadcast::Sender<Arc<Frame>>,
    gop: Mutex<Vec<Arc<Frame>>>,
}

/// An item of a broadcast at which a consumer that lost items can resume decoding: a keyframe, or what
/// carries new codec parameters. The live paths' own broadcasts (fMP4 fragments, RTP frames) use the same
/// receiver as the hub's.
pub trait ResumePoint {
    fn is_resume_point(&self) -> bool;
}

impl ResumePoint for Arc<Frame> {
    fn is_resume_point(&self) -> bool {
        self.keyframe
    }
}

/// What a consumer gets from [`Subscriber::recv`].
#[derive(Debug)]
pub enum Received<T = Arc<Frame>> {
    Frame(T),
    /// The consumer fell behind and `skipped` items were dropped for it; the next item it gets is a
    /// resume point (a keyframe).
    Skipped {
        skipped: u64,
    },
    /// The stream was removed (camera deleted or server stopping).
    Closed,
}

/// One consumer's cursor on a broadcast. Never makes the sender wait: a consumer that falls more than the
/// ring behind loses items, learns how many, and resumes at the next resume point.
///
/// Cancel-safe: [`Subscriber::recv`] may be dropped at any await (a `select!` branch that lost) without
/// losing its place. The only await is the broadcast's own `recv`, which is cancel-safe, and what a lag
/// started (the count, and that items must be dropped up to the next resume point) is kept in the
/// subscriber, not in the future: a consumer never gets an item after a hole that is not a resume point.
pub struct Subscriber<T = Arc<Frame>> {
    rx: broadcast::Receiver<T>,
    /// A resume point found while skipping, handed out by the next `recv`.
    pending: Option<T>,
    /// Items lost since a lag, while waiting for the next resume point.
    skipping: Option<u64>,
}

impl<T: ResumePoint + Clone> Subscriber<T> {
    pub fn new(rx: broadcast::Receiver<T>) -> Subscriber<T> {
        Subscriber {
            rx,
            pending: None,
            skipping: None,
        }
    }

    /// The next item. After a lag, items up to the next resume point are dropped too, since they cannot
    /// be decoded without the ones lost, and the lag is reported once before that resume point.
    pub async fn recv(&mut self) -> Received<T> {
        loop {
            if let Some(item) = self.pending.take() {
                return Received::Frame(item);
            }
            let got = self.rx.recv().await;
            // From here on nothing awaits: the state below changes only once an item was taken.
            match (got, self.skipping) {
                (Ok(item), None) => return Received::Frame(item),
                (Ok(item), Some(skipped)) if item.is_resume_point() => {
                    self.skipping = None;
                    self.pending = Some(item);
                    return Received::Skipped { skipped };
                }
                (Ok(_), Some(skipped)) => self.skipping = Some(skipped + 1),
                (Err(broadcast::error::RecvError::Lagged(n)), s) => {
                    self.skipping = Some(s.unwrap_or(0) + n)
                }
                (Err(broadcast::error::RecvError::Closed), _) => return Received::Closed,
            }
        }
    }
}

impl StreamHub {
    fn new(key: StreamKey, capacity: usize) -> StreamHub {
        let (tx, _) = broadcast::channel(capacity.max(2));
        StreamHub {
            key,
            tx,
            gop: Mutex::new(Vec::new()),
        }
    }

    pub fn key(&self) -> StreamKey {
        self.key
    }

    /// Hands a frame to every consumer. Never waits: the GOP lock is held only to push a pointer.
    pub fn publish(&self, frame: Arc<Frame>) {
        let mut gop = self.gop.lock().unwrap_or_else(|e| e.into_inner());
        if frame.keyframe {
            gop.clear();
        }
        // Without a keyframe the cache is useless to a new consumer; keep it empty until one arrives.
        if !gop.is_empty() || frame.keyframe {
            if gop.len() >= GOP_CACHE_MAX_FRAMES {
                gop.clear();
            } else {
                gop.push(frame.clone());
            }
        }
        // An error only means nobody listens right now.
        let _ = self.tx.send(frame);
    }

    /// Forgets the GOP cache: called when a session run ends, so that nobody starts from stale frames.
    pub fn reset(&self) {
        self.gop.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The cached GOP (from its keyframe on) and a subscriber to the frames that follow it.
    pub fn subscribe(&self) -> (Vec<Arc<Frame>>, Subscriber) {
        let gop = self.gop.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        (gop.clone(), Subscriber::new(rx))
    }

    /// The cached GOP alone (for snapshots).
    pub fn current_gop(&self) -> Vec<Arc<Frame>> {
        self.gop.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn consumers(&self) -> usize {
        self.tx.receiver_count()
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
mod tests;

//! The MSE side of live view: one task per stream turns the hub's frames into fMP4 fragments, once, and
//! shares them with every WebSocket viewer of that stream.
//!
//! Invariants:
//! - Each frame becomes exactly one fragment (`moof`+`mdat`, built by [`crate::media::fmp4`]) for the
//!   lowest latency; the bytes are built once per stream and every viewer gets a `Bytes` clone.
//! - The decode timeline is continuous for the life of the task, across camera reconnects: the media time
//!   of a new run is re-based after the last frame of the previous one, so a viewer's `SourceBuffer` never
//!   sees time go backwards.
//! - A frame's duration is not known before the next frame arrives; waiting for it would add a frame of
//!   latency, so a fragment carries the previous frame interval as its duration (the decode time in `tfdt`
//!   stays exact, so the estimate never accumulates).
//! - The fragment cache holds the current GOP (keyframe first) in fragment form, and the init segment it
//!   needs; [`MseShared::join`] takes both and a receiver under one lock, so a viewer sees every fragment
//!   once, from a keyframe on, with no gap.
//! - Publishing never waits: fragments go into a bounded `broadcast` ring in which each viewer has its own
//!   cursor (its bounded queue). A viewer that falls more than the ring behind is told it lagged and skips
//!   to the next keyframe ([`MseViewer::next`]); nobody else notices.

use super::vui;
use crate::hub::{Frame, Received, ResumePoint, StreamKey, Subscriber, VideoParams};
use crate::media::fmp4;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Fragments the cache keeps at most (matches the hub's GOP cache bound).
const CACHE_MAX: usize = 600;

/// The init segment of a stream with the MIME type a `SourceBuffer` needs for it.
#[derive(Debug, Clone)]
pub struct Init {
    pub mime: Arc<str>,
    /// RFC 6381 codec string of the stream (as the SPS says).
    pub codec: Arc<str>,
    pub h265: bool,
    pub data: Bytes,
}

/// What the stream task publishes.
#[derive(Debug, Clone)]
pub enum Item {
    /// Codec parameters changed: a new init segment follows and the next fragment is a keyframe.
    Init(Arc<Init>),
    Fragment(Frag),
}

#[derive(Debug, Clone)]
pub struct Frag {
    pub data: Bytes,
    pub keyframe: bool,
    /// When the builder received the frame from the hub (the start of the server-added latency).
    pub received: std::time::Instant,
}

#[derive(Default)]
struct Cache {
    init: Option<Arc<Init>>,
    gop: Vec<Frag>,
}

/// State shared between a stream's task and its viewers.
pub struct MseShared {
    tx: broadcast::Sender<Item>,
    cache: Mutex<Cache>,
}

/// What a viewer starts from.
pub struct Start {
    /// `None` while the stream has delivered no frame yet (camera offline or connecting).
    pub init: Option<Arc<Init>>,
    /// The current GOP, keyframe first.
    pub gop: Vec<Frag>,
    pub viewer: MseViewer,
    /// The stream's shared state (set by the registry), to look up the init segment after a skip.
    pub shared: Option<Arc<MseShared>>,
}

impl MseShared {
    pub fn new(queue: usize) -> MseShared {
        let (tx, _) = broadcast::channel(queue.max(2));
        MseShared {
            tx,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The init segment in force.
    pub fn current_init(&self) -> Option<Arc<Init>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .init
            .clone()
    }

    pub fn join(&self) -> Start {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        Start {
            init: cache.init.clone(),
            gop: cache.gop.clone(),
            viewer: MseViewer {
                inner: Subscriber::new(self.tx.subscribe()),
            },
            shared: None,
        }
    }

    fn publish(&self, item: Item) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match &item {
            Item::Init(init) => {
                cache.init = Some(init.clone());
                cache.gop.clear();
            }
            Item::Fragment(f) => {
                if f.keyframe {
                    cache.gop.clear();
                }
                if cache.gop.len() >= CACHE_MAX {
                    cache.gop.clear();
                }
                if f.keyframe || !cache.gop.is_empty() {
                    cache.gop.push(f.clone());
                }
            }
        }
        // An error only means that no viewer listens right now.
        let _ = self.tx.send(item);
    }
}

/// What a viewer gets next.
#[derive(Debug)]
pub enum Next {
    Item(Item),
    /// The viewer fell behind; `skipped` fragments were dropped and the next item is a keyframe (or an
    /// init segment).
    Skipped {
        skipped: u64,
    },
    Closed,
}

impl ResumePoint for Item {
    fn is_resume_point(&self) -> bool {
        match self {
            Item::Init(_) => true,
            Item::Fragment(f) => f.keyframe,
        }
    }
}

/// One viewer's cursor into the stream's ring (the hub's skip-to-resume-point receiver).
pub struct MseViewer {
    inner: Subscriber<Item>,
}

impl MseViewer {
    pub async fn next(&mut self) -> Next {
        match self.inner.recv().await {
            Received::Frame(item) => Next::Item(item),
            Received::Skipped { skipped } => Next::Skipped { skipped },
            Received::Closed => Next::Closed,
        }
    }
}

/// The MIME type of a stream for `MediaSource.isTypeSupported` / `addSourceBuffer`.
pub fn mime_of(codec: &str) -> String {
    // H.264 codec strings are hex and case-insensitive; browsers and the contract use lower case.
    let codec = if codec.starts_with("avc1.") {
        codec.to_ascii_lowercase()
    } else {
        codec.to_owned()
    };
    format!("video/mp4; codecs=\"{codec}\"")
}

fn build_init(params: &VideoParams, rewrite_vui: bool) -> Init {
    let rewritten = if rewrite_vui && !params.is_h265() {
        match vui::rewrite_sample_entry(&params.sample_entry) {
            Ok(e) => Some(e),
            Err(vui::VuiError::AlreadyRestricted) => None,
            Err(e) => {
                tracing::debug!(error = %e, "VUI not rewritten; init segment as the camera sent it");
                None
            }
        }
    } else {
        None
    };
    let entry: &[u8] = rewritten.as_deref().unwrap_or(&params.sample_entry);
    let data = fmp4::init_segment(
        entry,
        params.width,
        params.height,
        &fmp4::InitOptions::default(),
    );
    Init {
        mime: mime_of(&params.codec).into(),
        codec: params.codec.as_str().into(),
        h265: params.is_h265(),
        data: Bytes::from(data),
    }
}

/// The fragment builder's own timeline (see the module invariants): the hub's continuous timeline and
/// the fragments' sequence numbers.
struct Timeline {
    sequence: u32,
    clock: crate::hub::Timeline,
}

impl Timeline {
    fn new() -> Timeline {
        Timeline {
            sequence: 0,
            clock: crate::hub::Timeline::default(),
        }
    }

    /// The decode time and estimated duration of this frame, and the fragment's sequence number.
    fn place(&mut self, frame: &Frame) -> (u32, u64, u32) {
        let (dts, duration) = self.clock.place(frame);
        self.sequence = self.sequence.wrapping_add(1).max(1);
        (self.sequence, dts, duration)
    }
}

/// Builds fragments for one stream until `cancel` fires or the stream is removed. The builder has already
/// turned the hub's cached GOP into the fragment cache ([`Builder::new`]).
pub async fn run(
    key: StreamKey,
    mut builder: Builder,
    mut sub: Subscriber,
    shared: Arc<MseShared>,
    cancel: CancellationToken,
) {
    let camera = key.camera_id;
    let stream = key.kind.as_str();
    tracing::debug!(camera, stream, "live MSE task started");
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => break,
            r = sub.recv() => r,
        };
        match received {
            Received::Frame(frame) => builder.push(&shared, &frame),
            Received::Skipped { skipped } => {
                tracing::warn!(camera, stream, skipped, "live MSE task fell behind the hub")
            }
            Received::Closed => break,
        }
    }
    tracing::debug!(camera, stream, "live MSE task stopped");
}

/// Turns frames into fragments and publishes them.
pub struct Builder {
    timeline: Timeline,
    params: Option<Arc<VideoParams>>,
    rewrite_vui: bool,
}

impl Builder {
    /// A builder that has published the hub's cached GOP (into the cache: nobody listens yet), so the
    /// first viewer starts from it at once rather than from a burst through the ring.
    pub fn new(shared: &MseShared, gop: &[Arc<Frame>], rewrite_vui: bool) -> Builder {
        let mut b = Builder {
            timeline: Timeline::new(),
            params: None,
            rewrite_vui,
        };
        for f in gop {
            b.push(shared, f);
        }
        b
    }

    fn push(&mut self, shared: &MseShared, frame: &Frame) {
        let received = std::time::Instant::now();
        let changed = match &self.params {
            Some(p) => !Arc::ptr_eq(p, &frame.params) && **p != *frame.params,
            None => true,
        };
        if changed {
            self.params = Some(frame.params.clone());
            shared.publish(Item::Init(Arc::new(build_init(
                &frame.params,
                self.rewrite_vui,
            ))));
        }
        let (sequence, dts, duration) = self.timeline.place(frame);
        let data = if self.rewrite_vui && !frame.params.is_h265() {
            vui::rewrite_in_band(&frame.data)
        } else {
            frame.data.clone()
        };
        let fragment = fmp4::Fragment::build(
            sequence,
            dts,
            None,
            &[fmp4::Sample {
                data,
                duration,
                keyframe: frame.keyframe,
            }],
        );
        shared.publish(Item::Fragment(Frag {
            data: fragment.to_bytes(),
            keyframe: frame.keyframe,
            received,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, StreamKind};

    fn params(generation: u64) -> Arc<VideoParams> {
        Arc::new(VideoParams {
            codec: "avc1.64001F".into(),
            width: 320,
            height: 240,
            extra_data: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            sample_entry: Bytes::from_static(b"\0\0\0\x08avc1"),
            generation,
        })
    }

    fn frame(i: i64, keyframe: bool, p: &Arc<VideoParams>) -> Arc<Frame> {
        Arc::new(Frame {
            data: Bytes::from(vec![0, 0, 0, 2, 0x65, i as u8]),
            media_time: 1_000 + i * 3_600,
            wall_time_us: i,
            keyframe,
            params: p.clone(),
            run: 1,
            loss: 0,
        })
    }

    #[test]
    fn timeline_is_continuous_across_runs() {
        let p = params(0);
        let mut t = Timeline::new();
        assert_eq!(t.place(&frame(0, true, &p)).1, 0);
        assert_eq!(t.place(&frame(1, false, &p)), (2, 3_600, 3_600));
        let mut f = (*frame(2, true, &p)).clone();
        f.run = 2;
        f.media_time = 5; // a new run restarts media time
        assert_eq!(t.place(&f).1, 7_200);
        let mut g = f.clone();
        g.media_time = 3_005;
        assert_eq!(t.place(&g), (4, 10_200, 3_000));
    }

    #[tokio::test]
    async fn viewer_starts_at_cached_keyframe_and_skips_when_slow() {
        let hub = Hub::new(64);
        let key = StreamKey {
            camera_id: 1,
            kind: StreamKind::Main,
        };
        let s = hub.stream(key);
        let p = params(0);
        let shared = Arc::new(MseShared::new(4));
        for i in 0..3 {
            s.publish(frame(i, i == 0, &p));
        }
        let (gop, sub) = s.subscribe();
        let builder = Builder::new(&shared, &gop, false);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(key, builder, sub, shared.clone(), cancel.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut start = shared.join();
        assert!(start.init.is_some());
        assert_eq!(start.gop.len(), 3);
        assert!(start.gop[0].keyframe);
        // Ten frames without reading: the 4-slot ring overflows; the viewer skips to the keyframe at 10.
        for i in 3..13 {
            s.publish(frame(i, i == 10, &p));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        match start.viewer.next().await {
            Next::Skipped { skipped } => assert!(skipped >= 6, "{skipped}"),
            other => panic!("expected a skip, got {other:?}"),
        }
        match start.viewer.next().await {
            Next::Item(Item::Fragment(f)) => assert!(f.keyframe),
            other => panic!("expected the keyframe, got {other:?}"),
        }
        cancel.cancel();
        task.await.expect("task");
    }
}

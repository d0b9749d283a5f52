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
//! - Fragments go into a hub [`Ring`]: its cache holds the current GOP (keyframe first) in fragment form,
//!   each fragment pointing at the init segment it needs ([`Frag::init`]), so a viewer sees every fragment
//!   once, from a keyframe on, with no gap.
//! - Publishing never waits: each viewer has its own cursor on the ring; a viewer that falls more than the
//!   ring behind is told it lagged and skips to the next keyframe ([`MseViewer::next`]); nobody else
//!   notices.

use super::vui;
use crate::hub::{Frame, ResumePoint, Ring, StreamKey, Subscriber, VideoParams, GOP_CACHE_BYTES};
use crate::media::fmp4;
use bytes::Bytes;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The init segment of a stream with the MIME type a `SourceBuffer` needs for it.
#[derive(Debug, Clone)]
pub struct Init {
    pub mime: Arc<str>,
    /// RFC 6381 codec string of the stream (as the SPS says).
    pub codec: Arc<str>,
    pub h265: bool,
    pub data: Bytes,
}

/// One frame as a fragment, with the init segment it needs. Every fragment points at its init segment
/// (an `Arc`, shared by the fragments of one set of codec parameters), so a viewer sees a parameter change
/// at the keyframe that brings it, even after a skip, and never needs a separate message for it.
#[derive(Debug, Clone)]
pub struct Frag {
    pub data: Bytes,
    pub keyframe: bool,
    pub init: Arc<Init>,
    /// When the builder received the frame from the hub (the start of the server-added latency).
    pub received: std::time::Instant,
}

impl ResumePoint for Frag {
    fn is_resume_point(&self) -> bool {
        self.keyframe
    }
    fn size(&self) -> usize {
        self.data.len()
    }
}

/// State shared between a stream's task and its viewers: the hub's ring type, over fragments.
pub struct MseShared {
    ring: Ring<Frag>,
}

/// What a viewer starts from.
pub struct Start {
    /// The current GOP, keyframe first; empty while the stream has delivered no frame yet (camera
    /// offline or connecting).
    pub gop: Vec<Frag>,
    pub viewer: MseViewer,
}

impl MseShared {
    pub fn new(queue: usize) -> MseShared {
        MseShared {
            ring: Ring::new(queue, GOP_CACHE_BYTES),
        }
    }

    pub fn join(&self) -> Start {
        let (gop, inner) = self.ring.subscribe();
        Start { gop, viewer: inner }
    }
}

/// One viewer's cursor into the stream's ring (the hub's skip-to-resume-point receiver).
pub type MseViewer = Subscriber<Frag>;

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
    sub: Subscriber,
    shared: Arc<MseShared>,
    cancel: CancellationToken,
) {
    super::fanout::feed(key, "mse", sub, cancel, |f| builder.push(&shared, f)).await
}

/// Turns frames into fragments and publishes them.
pub struct Builder {
    timeline: Timeline,
    /// The parameters in force and their init segment.
    init: Option<(Arc<VideoParams>, Arc<Init>)>,
    rewrite_vui: bool,
}

impl Builder {
    /// A builder that has published the hub's cached GOP (into the cache: nobody listens yet), so the
    /// first viewer starts from it at once rather than from a burst through the ring.
    pub fn new(shared: &MseShared, gop: &[Arc<Frame>], rewrite_vui: bool) -> Builder {
        let mut b = Builder {
            timeline: Timeline::new(),
            init: None,
            rewrite_vui,
        };
        for f in gop {
            b.push(shared, f);
        }
        b
    }

    /// The init segment of the frame's parameters, built again only when they changed.
    fn init_for(&mut self, params: &Arc<VideoParams>) -> Arc<Init> {
        match &self.init {
            Some((p, init)) if Arc::ptr_eq(p, params) || **p == **params => init.clone(),
            _ => {
                let init = Arc::new(build_init(params, self.rewrite_vui));
                self.init = Some((params.clone(), init.clone()));
                init
            }
        }
    }

    fn push(&mut self, shared: &MseShared, frame: &Frame) {
        let received = std::time::Instant::now();
        let init = self.init_for(&frame.params);
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
                composition_offset: frame.composition_offset,
            }],
        );
        shared.ring.publish(Frag {
            data: fragment.to_bytes(),
            keyframe: frame.keyframe,
            init,
            received,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, Received, StreamKind};

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
            composition_offset: 0,
            wall_time_us: i,
            keyframe,
            params: p.clone(),
            run: 1,
            loss: 0,
            audio: None,
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
        assert_eq!(start.gop.len(), 3);
        assert!(start.gop[0].keyframe);
        // Ten frames without reading: the 4-slot ring overflows; the viewer skips to the keyframe at 10.
        for i in 3..13 {
            s.publish(frame(i, i == 10, &p));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        match start.viewer.recv().await {
            Received::Skipped { skipped } => assert!(skipped >= 6, "{skipped}"),
            other => panic!("expected a skip, got {other:?}"),
        }
        match start.viewer.recv().await {
            Received::Frame(f) => assert!(f.keyframe),
            other => panic!("expected the keyframe, got {other:?}"),
        }
        cancel.cancel();
        task.await.expect("task");
    }
}

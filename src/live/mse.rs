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
//! - A camera's AAC audio goes in the same fragments' stream (track 2 of the init segment, one fragment
//!   per audio frame, in arrival order). Whether the init segment has an audio track is decided at a
//!   keyframe, from the audio the stream declared ([`StreamHub::audio`]), before its first audio frame:
//!   a `SourceBuffer` cannot gain a track later. Audio is placed on the video's output timeline (same
//!   offset per run) and runs on sample-exact while it stays within [`AUDIO_SLACK`] of it. G.711 has no
//!   MSE codec: such a stream plays without sound here (WebRTC carries it).
//! - Publishing never waits: each viewer has its own cursor on the ring; a viewer that falls more than the
//!   ring behind is told it lagged and skips to the next keyframe ([`MseViewer::next`]); nobody else
//!   notices.

use super::vui;
use crate::hub::{
    AudioParams, Frame, ResumePoint, Ring, StreamHub, StreamKey, Subscriber, VideoParams,
    GOP_CACHE_BYTES,
};
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

/// Audio may drift this far (seconds) from where the video's clock puts it before it is re-placed there.
const AUDIO_SLACK: f64 = 0.1;

fn build_init(params: &VideoParams, audio: Option<&AudioParams>, rewrite_vui: bool) -> Init {
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
    let opts = fmp4::InitOptions {
        udta: None,
        audio: audio.map(|a| fmp4::AudioTrack {
            sample_entry: &a.sample_entry,
            rate: a.sample_rate,
        }),
    };
    let data = fmp4::init_segment(entry, params.width, params.height, &opts);
    let mut mime = mime_of(&params.codec);
    if let Some(codec) = audio.and_then(|a| a.rfc6381.as_deref()) {
        // `video/mp4; codecs="avc1.64001f"` -> `video/mp4; codecs="avc1.64001f, mp4a.40.2"`
        mime.pop();
        mime.push_str(&format!(", {codec}\""));
    }
    Init {
        mime: mime.into(),
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
    /// The parameters in force (video, and the audio track the init segment has) and their init segment.
    init: Option<InForce>,
    rewrite_vui: bool,
    /// The stream whose declared audio the init segments take in (None: video only).
    sound: Option<Arc<StreamHub>>,
    audio: AudioClock,
}

/// The parameters an init segment was built for (video, and the audio track it has) and the segment.
type InForce = (Arc<VideoParams>, Option<Arc<AudioParams>>, Arc<Init>);

/// Where audio goes on the output timeline: the video's offset of the current run, and where the last
/// audio frame ended (in the audio's timescale).
#[derive(Default)]
struct AudioClock {
    /// (run, output dts minus media time) of the last video frame.
    offset: Option<(u64, i64)>,
    next: Option<u64>,
}

impl AudioClock {
    /// The decode time of this audio frame in the audio's timescale, None before the run's video.
    fn place(&mut self, frame: &Frame, params: &AudioParams, samples: u32) -> Option<u64> {
        let (run, offset) = self.offset?;
        if run != frame.run {
            return None;
        }
        let at = params.ticks_from_90k(frame.media_time + offset).max(0) as u64;
        let slack = (f64::from(params.sample_rate) * AUDIO_SLACK) as u64;
        let dts = match self.next {
            Some(n) if n.abs_diff(at) <= slack => n,
            _ => at,
        };
        self.next = Some(dts + u64::from(samples));
        Some(dts)
    }
}

impl Builder {
    /// A builder that has published the hub's cached GOP (into the cache: nobody listens yet), so the
    /// first viewer starts from it at once rather than from a burst through the ring. With `sound`, the
    /// stream's AAC audio goes in too.
    pub fn new(
        shared: &MseShared,
        gop: &[Arc<Frame>],
        rewrite_vui: bool,
        sound: Option<Arc<StreamHub>>,
    ) -> Builder {
        let mut b = Builder {
            timeline: Timeline::new(),
            init: None,
            rewrite_vui,
            sound,
            audio: AudioClock::default(),
        };
        for f in gop {
            b.push(shared, f);
        }
        b
    }

    /// The init segment of the frame's parameters, built again only when they changed. The audio track is
    /// decided at keyframes only (a fragment stream changes its tracks where a new one can start).
    fn init_for(&mut self, frame: &Frame) -> Arc<Init> {
        let params = &frame.params;
        let audio = match (&self.init, frame.keyframe) {
            (_, true) => self
                .sound
                .as_ref()
                .and_then(|h| h.audio())
                .filter(|a| a.rfc6381.is_some()),
            (Some((_, a, _)), false) => a.clone(),
            (None, false) => None,
        };
        match &self.init {
            Some((p, a, init))
                if (Arc::ptr_eq(p, params) || **p == **params) && same_audio(a, &audio) =>
            {
                init.clone()
            }
            _ => {
                let init = Arc::new(build_init(params, audio.as_deref(), self.rewrite_vui));
                self.init = Some((params.clone(), audio, init.clone()));
                init
            }
        }
    }

    fn push(&mut self, shared: &MseShared, frame: &Frame) {
        if frame.is_audio() {
            self.push_audio(shared, frame);
            return;
        }
        let received = std::time::Instant::now();
        let init = self.init_for(frame);
        let (sequence, dts, duration) = self.timeline.place(frame);
        self.audio.offset = Some((frame.run, dts as i64 - frame.media_time));
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

    /// An audio frame as a fragment of track 2, when the init segment in force has that audio.
    fn push_audio(&mut self, shared: &MseShared, frame: &Frame) {
        let Some((_, Some(audio), init)) = &self.init else {
            return;
        };
        if !frame.audio.as_ref().is_some_and(|a| Arc::ptr_eq(a, audio)) {
            return;
        }
        let (audio, init) = (audio.clone(), init.clone());
        let samples = audio.frame_samples(frame.data.len());
        let Some(dts) = self.audio.place(frame, &audio, samples) else {
            return;
        };
        self.timeline.sequence = self.timeline.sequence.wrapping_add(1).max(1);
        let sample = fmp4::Sample {
            data: frame.data.clone(),
            duration: samples,
            keyframe: true,
            composition_offset: 0,
        };
        let run = fmp4::AudioRun {
            base_media_time: dts,
            samples: std::slice::from_ref(&sample),
        };
        let fragment = fmp4::Fragment::build_av(self.timeline.sequence, 0, None, &[], Some(run));
        shared.ring.publish(Frag {
            data: fragment.to_bytes(),
            keyframe: false,
            init,
            received: std::time::Instant::now(),
        });
    }
}

fn same_audio(a: &Option<Arc<AudioParams>>, b: &Option<Arc<AudioParams>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || **a == **b,
        _ => false,
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
        let builder = Builder::new(&shared, &gop, false, None);
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

    /// A camera with AAC: the init segment, built at the keyframe from the declared audio, has both
    /// tracks (the MIME type names both codecs), and each audio frame becomes a fragment of track 2 on
    /// the video's timeline.
    #[test]
    fn declared_aac_goes_into_the_init_segment_and_its_own_fragments() {
        let hub = Hub::new(64);
        let s = hub.stream(StreamKey::main(1));
        let (p, a) = (params(0), crate::hub::tests::aac());
        s.declare_audio(Some(a.clone()));
        let shared = MseShared::new(16);
        let mut b = Builder::new(&shared, &[], false, Some(s.clone()));
        b.push(&shared, &frame(0, true, &p));
        b.push(&shared, &crate::hub::tests::audio_frame(0, &p, &a));
        b.push(&shared, &frame(1, false, &p));
        let start = shared.join();
        assert_eq!(start.gop.len(), 3);
        let init = &start.gop[0].init;
        assert_eq!(&*init.mime, "video/mp4; codecs=\"avc1.64001f, mp4a.40.2\"");
        let moov = fmp4::children(&init.data)
            .filter_map(Result::ok)
            .find(|b| &b.0 == b"moov")
            .expect("moov")
            .1;
        assert_eq!(
            fmp4::audio_of_moov(moov)
                .expect("moov")
                .expect("audio")
                .rate,
            16_000
        );
        let frag = &start.gop[1];
        assert!(!frag.keyframe && Arc::ptr_eq(&frag.init, init));
        let moof = fmp4::children(&frag.data)
            .next()
            .expect("moof")
            .expect("box");
        let info = fmp4::parse_moof(moof.1).expect("parse");
        // The only traf is the audio's: read as the first, it has one 1024-sample (sync) AAC frame at the
        // video's time 0 (the video's first frame was at media time 1000, output time 0).
        assert_eq!(info.samples, vec![(3, 1024, true)]);
        assert_eq!(info.base_media_time, 0);
    }
}

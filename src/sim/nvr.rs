//! The RTSP simulator as an NVR (`vigil sim --outage START_S:DURATION_S`): it keeps recording what its
//! encoder makes (the last five minutes, `gb_replay::Archive`), its line to the platform drops over the
//! outage (every RTSP client is cut off and new ones are refused, while recording goes on), and it serves
//! what it recorded at Hikvision's playback paths, `/Streaming/tracks/{n}01?starttime=...&endtime=...`
//! (times `YYYYMMDDTHHMMSSZ`, UTC), besides its live mounts at `/cam{n}` and `/Streaming/Channels/{n}01`.
//!
//! Invariants: a playback starts at the keyframe at or before `starttime` and ends with the last frame at
//! or before `endtime`, sent in real time with the recorded spacing, then end of stream; a range the
//! archive has nothing of is refused (the client gets an RTSP error, as from an NVR with no recording).

use super::gb28181::Au;
use super::gb_replay::Archive;
use super::SimCodec;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp as gst_rtsp;
use gstreamer_rtsp_server as rtsp_server;
use rtsp_server::subclass::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The recording, shared by the encoder's tap and the playback mounts.
pub type SharedArchive = Arc<Mutex<Archive>>;

fn lock(a: &SharedArchive) -> std::sync::MutexGuard<'_, Archive> {
    a.lock().unwrap_or_else(|e| e.into_inner())
}

/// The NVR's line to the platform and when it is down.
#[derive(Clone, Copy)]
pub struct Line {
    down: (Instant, Instant),
}

impl Line {
    pub fn new((start_s, duration_s): (u64, u64)) -> Line {
        let from = Instant::now() + Duration::from_secs(start_s);
        Line {
            down: (from, from + Duration::from_secs(duration_s)),
        }
    }

    pub fn is_down(&self) -> bool {
        let now = Instant::now();
        now >= self.down.0 && now < self.down.1
    }
}

/// Parses Hikvision's playback time, `20261206T101500Z`, to Unix ms.
pub fn hik_time(v: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%SZ").ok()?;
    Some(t.and_utc().timestamp_millis())
}

/// The range a playback URL asks for (Unix ms).
fn asked_range(request_uri: &str) -> Option<(i64, i64)> {
    let url = url::Url::parse(request_uri).ok()?;
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .and_then(|(_, v)| hik_time(&v))
    };
    let (start, end) = (get("starttime")?, get("endtime")?);
    (end > start).then_some((start, end))
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct PlaybackFactory {
        pub(super) archive: OnceLock<SharedArchive>,
        pub(super) codec: OnceLock<SimCodec>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for PlaybackFactory {
        const NAME: &'static str = "VigilSimPlaybackFactory";
        type Type = super::PlaybackFactory;
        type ParentType = rtsp_server::RTSPMediaFactory;
    }

    impl ObjectImpl for PlaybackFactory {}

    impl RTSPMediaFactoryImpl for PlaybackFactory {
        fn create_element(&self, url: &gst_rtsp::RTSPUrl) -> Option<gst::Element> {
            let uri = url.request_uri();
            let Some((start, end)) = asked_range(&uri) else {
                warn!(%uri, "sim playback: no starttime/endtime range");
                return None;
            };
            let clip = lock(self.archive.get()?).range(start, end);
            if clip.is_empty() {
                info!(%uri, "sim playback: nothing recorded in the range");
                return None;
            }
            info!(%uri, frames = clip.len(), "sim playback starts");
            playback_element(clip, *self.codec.get()?)
        }
    }
}

glib::wrapper! {
    /// Serves recorded ranges at a playback path.
    pub struct PlaybackFactory(ObjectSubclass<imp::PlaybackFactory>)
        @extends rtsp_server::RTSPMediaFactory;
}

impl PlaybackFactory {
    pub fn new(archive: SharedArchive, codec: SimCodec) -> PlaybackFactory {
        let f: PlaybackFactory = glib::Object::new();
        let _ = f.imp().archive.set(archive);
        let _ = f.imp().codec.set(codec);
        f
    }
}

/// A bin that sends `clip` (Annex B access units with their recording times) once, in real time.
fn playback_element(clip: Vec<(i64, Arc<Au>)>, codec: SimCodec) -> Option<gst::Element> {
    let (caps, parse, pay) = match codec {
        SimCodec::H264 => ("video/x-h264", "h264parse", "rtph264pay"),
        SimCodec::H265 => ("video/x-h265", "h265parse", "rtph265pay"),
    };
    let desc = format!(
        "appsrc name=src format=time is-live=false \
         caps={caps},stream-format=byte-stream,alignment=au \
         ! {parse} ! {pay} name=pay0 pt=96 config-interval=-1"
    );
    let bin = gst::parse::bin_from_description(&desc, false).ok()?;
    let src = bin.by_name("src")?.downcast::<gst_app::AppSrc>().ok()?;
    let first = clip.first().map_or(0, |(at, _)| *at);
    let mut next = 0usize;
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                let Some((at, au)) = clip.get(next) else {
                    let _ = src.end_of_stream();
                    return;
                };
                next += 1;
                let mut buf = gst::Buffer::from_slice(au.data.clone());
                if let Some(b) = buf.get_mut() {
                    let t = gst::ClockTime::from_mseconds((at - first).max(0) as u64);
                    b.set_pts(t);
                    b.set_dts(t);
                    if !au.keyframe {
                        b.set_flags(gst::BufferFlags::DELTA_UNIT);
                    }
                }
                let _ = src.push_buffer(buf);
            })
            .build(),
    );
    Some(bin.upcast())
}

/// Cuts every client off when the line goes down and refuses new ones until it is back; a source on the
/// simulator's main context (every 200 ms).
pub fn watch_line(server: &rtsp_server::RTSPServer, line: Line) -> glib::Source {
    use rtsp_server::prelude::*;
    server.connect_client_connected(move |_, client| {
        if line.is_down() {
            client.close();
        }
    });
    let server = server.downgrade();
    let mut was_down = false;
    glib::timeout_source_new(
        Duration::from_millis(200),
        None,
        glib::Priority::DEFAULT,
        move || {
            let down = line.is_down();
            if down && !was_down {
                if let Some(server) = server.upgrade() {
                    cut_off(&server);
                }
                info!("sim NVR: the line is down (clients cut off, recording goes on)");
            } else if !down && was_down {
                info!("sim NVR: the line is back");
            }
            was_down = down;
            glib::ControlFlow::Continue
        },
    )
}

fn cut_off(server: &rtsp_server::RTSPServer) {
    use rtsp_server::prelude::*;
    use rtsp_server::RTSPFilterResult;
    server.client_filter(Some(&mut |_, client| {
        client.close();
        RTSPFilterResult::Remove
    }));
    if let Some(pool) = server.session_pool() {
        pool.filter(Some(&mut |_, _| RTSPFilterResult::Remove));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_urls_name_their_range() {
        assert_eq!(hik_time("20261206T101500Z"), Some(1_796_552_100_000));
        assert_eq!(
            asked_range("rtsp://h:554/Streaming/tracks/101?starttime=20261206T101500Z&endtime=20261206T101600Z"),
            Some((1_796_552_100_000, 1_796_552_160_000))
        );
        assert_eq!(asked_range("rtsp://h:554/Streaming/tracks/101"), None);
        assert_eq!(
            asked_range("rtsp://h/x?starttime=20261206T101600Z&endtime=20261206T101500Z"),
            None
        );
    }
}

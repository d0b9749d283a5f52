//! One camera stream: connect with retina, hand every video frame (and the camera's audio, AAC or
//! G.711, when it sends one and `ingest.audio` is on) to the hub, reconnect with capped exponential
//! backoff and jitter when the camera drops, and keep the stream's status.
//!
//! Invariants:
//! - The session never waits on a consumer: frames go to the hub, which never blocks.
//! - A wrong password or an unsupported codec is retried only after `refused_retry_ms` (no reconnect
//!   storm that locks the camera's account or fills its log).
//! - Credentials are handed to retina separately; the URL that is logged or reported never holds them.
//! - Anything the camera sends that retina rejects ends this run with an error and a reconnect; it never
//!   panics the server.
//! - Audio is optional: an audio track the camera refuses to set up, or in a codec Vigil does not
//!   record, leaves the video alone.

use super::audio::AudioTrack;
use super::publish::{Incoming, Publisher};
use super::reorder::DecodeTimes;
use super::status::{StreamState, StreamStatus};
use crate::config::IngestConfig;
use crate::hub::{StreamHub, VideoParams};
use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use retina::client::{
    Credentials, InitialSequenceNumberPolicy, PlayOptions, SessionOptions, SetupOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Everything needed to pull one stream.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamSource {
    pub camera_id: i64,
    pub url: url::Url,
    pub username: Option<String>,
    pub password: Option<String>,
    pub udp: bool,
}

impl std::fmt::Debug for StreamSource {
    // Hand-written so that the password can never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSource")
            .field("camera_id", &self.camera_id)
            .field("url", &self.url.as_str())
            .field("username", &self.username)
            .field("udp", &self.udp)
            .finish_non_exhaustive()
    }
}

/// Why a run of the session ended.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("unsupported stream: {0}")]
    Unsupported(String),
    #[error("no frame for {0:?}")]
    Stalled(Duration),
    #[error("stream ended")]
    Ended,
    #[error("{0}")]
    Rtsp(String),
    #[error("timed out connecting")]
    ConnectTimeout,
    /// The server has nothing at that URL (404, or 454/457 for a recording's range).
    #[error("not found: {0}")]
    NotFound(String),
}

/// The loop of one stream until `cancel` fires. The caller attaches the tracing span (camera, stream).
pub async fn run_stream(
    source: StreamSource,
    hub: Arc<StreamHub>,
    status: Arc<Mutex<StreamStatus>>,
    cfg: IngestConfig,
    cancel: CancellationToken,
) {
    let mut delay = Duration::from_millis(cfg.backoff_initial_ms);
    let mut run: u64 = 0;
    // Learned once per stream: whether (and how deep) it reorders frames.
    let mut decode = DecodeTimes::default();
    loop {
        run += 1;
        update(&status, |s| {
            s.attempts += 1;
            if s.state != StreamState::AuthFailed {
                s.state = StreamState::Connecting;
            }
        });
        let started = Instant::now();
        let result = tokio::select! {
            r = run_once(&source, &hub, &status, &cfg, run, &mut decode) => r,
            _ = cancel.cancelled() => return,
        };
        hub.reset();
        let err = match result {
            Ok(()) => RunError::Ended,
            Err(e) => e,
        };
        let (state, wait) = match &err {
            RunError::Auth(_) => (
                StreamState::AuthFailed,
                Duration::from_millis(cfg.refused_retry_ms),
            ),
            RunError::Unsupported(_) => (
                StreamState::Unsupported,
                Duration::from_millis(cfg.refused_retry_ms),
            ),
            _ => {
                // A run that stayed up a while was healthy: its failure starts the backoff afresh.
                if started.elapsed() > Duration::from_secs(30) {
                    delay = Duration::from_millis(cfg.backoff_initial_ms);
                }
                let wait = jitter(delay);
                delay = (delay * 2).min(Duration::from_millis(cfg.backoff_max_ms));
                (StreamState::Offline, wait)
            }
        };
        warn!(url = %source.url, error = %err, retry_in_ms = wait.as_millis() as u64, "stream down");
        update(&status, |s| {
            s.state = state;
            s.error = Some(err.to_string());
            s.fps = None;
            s.bitrate_bps = None;
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// Spreads reconnects of many cameras over time: between 75 % and 125 % of the nominal delay.
fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::thread_rng().gen_range(0.75..1.25);
    d.mul_f64(f)
}

fn update(status: &Mutex<StreamStatus>, f: impl FnOnce(&mut StreamStatus)) {
    f(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
}

fn is_supported(encoding: &str) -> bool {
    encoding.eq_ignore_ascii_case("h264") || encoding.eq_ignore_ascii_case("h265")
}

pub(super) fn convert_params(
    p: &retina::codec::VideoParameters,
    generation: u64,
) -> Result<VideoParams, RunError> {
    let (width, height) = p.pixel_dimensions();
    let sample_entry = p
        .mp4_sample_entry()
        .build()
        .map_err(|e| RunError::Unsupported(format!("sample entry: {e}")))?;
    Ok(VideoParams {
        codec: p.rfc6381_codec().to_owned(),
        width,
        height,
        extra_data: Bytes::copy_from_slice(p.extra_data()),
        sample_entry: Bytes::from(sample_entry),
        generation,
    })
}

/// A playing session: the demuxed stream, the video stream's index and the audio stream's, if any.
struct Playing {
    demuxed: retina::client::Demuxed,
    video: usize,
    audio: Option<usize>,
}

/// Connects (DESCRIBE, SETUP of the video stream and of a supported audio stream, PLAY).
async fn connect(source: &StreamSource, cfg: &IngestConfig) -> Result<Playing, RunError> {
    let connect_timeout = Duration::from_millis(cfg.stall_timeout_ms.max(1000) * 2);
    let creds = match (&source.username, &source.password) {
        (Some(u), p) => Some(Credentials {
            username: u.clone(),
            password: p.clone().unwrap_or_default(),
        }),
        _ => None,
    };
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent("Vigil".to_owned());
    let rtsp_err = |e: retina::Error| match e.status_code() {
        Some(401 | 403) => RunError::Auth(e.to_string()),
        Some(404 | 454 | 457) => RunError::NotFound(e.to_string()),
        _ => RunError::Rtsp(e.to_string()),
    };
    let describe = retina::client::Session::describe(source.url.clone(), options);
    let mut session = tokio::time::timeout(connect_timeout, describe)
        .await
        .map_err(|_| RunError::ConnectTimeout)?
        .map_err(rtsp_err)?;
    let index = video_stream(session.streams())?;
    let transport = if source.udp {
        Transport::Udp(Default::default())
    } else {
        Transport::Tcp(Default::default())
    };
    let setup = SetupOptions::default()
        .transport(transport.clone())
        .frame_format(FrameFormat::MP4);
    tokio::time::timeout(connect_timeout, session.setup(index, setup))
        .await
        .map_err(|_| RunError::ConnectTimeout)?
        .map_err(rtsp_err)?;
    let mut audio = None;
    if let Some(a) = cfg
        .audio
        .then(|| super::audio::stream(session.streams()))
        .flatten()
    {
        let setup = SetupOptions::default()
            .transport(transport)
            .frame_format(FrameFormat::MP4);
        match tokio::time::timeout(connect_timeout, session.setup(a, setup)).await {
            Ok(Ok(())) => audio = Some(a),
            Ok(Err(e)) => warn!(url = %source.url, error = %e, "audio track refused; video only"),
            Err(_) => return Err(RunError::ConnectTimeout),
        }
    }
    // The first packet, not RTP-Info, starts the sequence: servers with shared media (gst-rtsp-server,
    // many NVRs) can send one packet queued before the PLAY answer, one below RTP-Info's seq, and
    // retina would refuse the whole session for it.
    let play = PlayOptions::default().initial_seq(InitialSequenceNumberPolicy::Ignore);
    let playing = tokio::time::timeout(connect_timeout, session.play(play))
        .await
        .map_err(|_| RunError::ConnectTimeout)?
        .map_err(rtsp_err)?;
    let demuxed = playing
        .demuxed()
        .map_err(|e| RunError::Unsupported(e.to_string()))?;
    debug!(url = %source.url, audio = audio.is_some(), "playing");
    Ok(Playing {
        demuxed,
        video: index,
        audio,
    })
}

/// The index of the session's first video stream, when it is H.264 or H.265.
fn video_stream(streams: &[retina::client::Stream]) -> Result<usize, RunError> {
    let video = streams.iter().position(|s| s.media() == "video");
    let Some(index) = video else {
        return Err(RunError::Unsupported("no video stream".into()));
    };
    let encoding = streams[index].encoding_name();
    if !is_supported(encoding) {
        return Err(RunError::Unsupported(format!(
            "codec {encoding}; only H.264 and H.265 are recorded"
        )));
    }
    Ok(index)
}

/// The run's codec parameters, as retina last reported them.
#[derive(Default)]
struct Params {
    current: Option<Arc<VideoParams>>,
    generation: u64,
}

impl Params {
    fn update(&mut self, p: &retina::codec::VideoParameters) -> Result<(), RunError> {
        let converted = convert_params(p, self.generation)?;
        self.generation += 1;
        info!(codec = %converted.codec, width = converted.width, height = converted.height, "stream parameters");
        self.current = Some(Arc::new(converted));
        Ok(())
    }
}

impl Params {
    /// The parameters of a video frame of stream `index`, read again when the frame brings new ones;
    /// None until the first (they come with the first keyframe at the latest; before, a frame is unusable).
    fn of(
        &mut self,
        frame: &retina::codec::VideoFrame,
        demuxed: &retina::client::Demuxed,
        index: usize,
    ) -> Result<Option<Arc<VideoParams>>, RunError> {
        if frame.has_new_parameters() || self.current.is_none() {
            let Some(ParametersRef::Video(p)) = demuxed.streams()[index].parameters() else {
                return Ok(None);
            };
            self.update(p)?;
        }
        Ok(self.current.clone())
    }
}

/// The run's audio, as the stream's status and the hub declare it before the first frame.
fn declare_audio(audio: Option<&AudioTrack>, hub: &StreamHub, status: &Mutex<StreamStatus>) {
    let declared = audio.and_then(AudioTrack::params);
    let codec = declared.as_ref().map(|a| a.codec.as_str().to_owned());
    update(status, |s| s.audio = codec);
    hub.declare_audio(declared);
}

async fn run_once(
    source: &StreamSource,
    hub: &StreamHub,
    status: &Mutex<StreamStatus>,
    cfg: &IngestConfig,
    run: u64,
    decode: &mut DecodeTimes,
) -> Result<(), RunError> {
    let opened = Opened(connect(source, cfg).await?);
    stream(opened, source, hub, status, cfg, run, decode).await
}

/// A session connected and playing, not yet read.
pub struct Opened(Playing);

/// Connects to a stream (DESCRIBE, SETUP, PLAY) without reading it: what a one-off pull of a recording
/// checks first (a range the server has nothing of is [`RunError::NotFound`]).
pub async fn open_stream(source: &StreamSource, cfg: &IngestConfig) -> Result<Opened, RunError> {
    Ok(Opened(connect(source, cfg).await?))
}

/// Reads an opened stream into `hub` until it ends or stalls, once (no reconnect).
pub async fn play_once(
    opened: Opened,
    source: &StreamSource,
    hub: &StreamHub,
    cfg: &IngestConfig,
) -> Result<(), RunError> {
    let status = Mutex::new(StreamStatus::connecting());
    let mut decode = DecodeTimes::default();
    stream(opened, source, hub, &status, cfg, 1, &mut decode).await
}

/// Reads frames of a connected session into the hub until it ends, fails or stalls.
async fn stream(
    Opened(playing): Opened,
    source: &StreamSource,
    hub: &StreamHub,
    status: &Mutex<StreamStatus>,
    cfg: &IngestConfig,
    run: u64,
    decode: &mut DecodeTimes,
) -> Result<(), RunError> {
    let Playing {
        mut demuxed,
        video: index,
        audio,
    } = playing;
    let mut audio = audio.map(|a| AudioTrack::new(a, &demuxed));
    declare_audio(audio.as_ref(), hub, status);
    decode.new_run();
    let stall = Duration::from_millis(cfg.stall_timeout_ms);
    let url = source.url.to_string();
    let mut publisher = Publisher::new(hub, status, &url, run);
    let mut params = Params::default();
    // One timer for the whole run, re-armed only when it fires (from the last video frame's time): a
    // timeout around every read would insert and remove a timer 50 times a second per camera.
    // The last video frame's arrival: sound alone does not keep a stream that lost its picture online.
    let mut last_video = tokio::time::Instant::now();
    let watchdog = tokio::time::sleep(stall);
    tokio::pin!(watchdog);
    loop {
        let next = tokio::select! {
            next = demuxed.next() => next,
            () = &mut watchdog => {
                if last_video.elapsed() >= stall {
                    return Err(RunError::Stalled(stall));
                }
                watchdog.as_mut().reset(last_video + stall);
                continue;
            }
        };
        let item = match next {
            None => return Ok(()),
            Some(Err(e)) => return Err(RunError::Rtsp(e.to_string())),
            Some(Ok(item)) => item,
        };
        let frame = match item {
            CodecItem::VideoFrame(frame) => {
                last_video = tokio::time::Instant::now();
                frame
            }
            CodecItem::AudioFrame(a) => {
                if let Some(track) = audio.as_mut() {
                    if let Some(incoming) = track.frame(&demuxed, a) {
                        publisher.audio(incoming);
                    }
                }
                continue;
            }
            _ => continue,
        };
        if frame.stream_id() != index {
            continue;
        }
        let Some(p) = params.of(&frame, &demuxed, index)? else {
            continue;
        };
        publisher.frame(
            Incoming {
                pts: frame.timestamp().elapsed(),
                keyframe: frame.is_random_access_point(),
                loss: frame.loss(),
                data: Bytes::from(frame.into_data()),
                params: p,
                arrived: last_video.into_std(),
            },
            decode,
        );
    }
}

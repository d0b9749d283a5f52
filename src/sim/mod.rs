//! Simulated RTSP cameras (`vigil sim`, `vigil demo`, and tests that need cameras).
//!
//! A [`SimServer`] serves `rtsp://ADDR/cam1` ... `camN` with gst-rtsp-server. Each picture
//! shows a label and a running wall clock, so a recording or a live view can be checked by
//! eye. Two modes:
//! - per camera (default): every mount runs its own encoder, labelled with its name
//!   (`pipelines/sim-h264.txt`, `sim-h265.txt`);
//! - shared encoder (`shared_encoder: true`, the cheap mode for load tests): one encoder for
//!   the whole server, relayed to every mount (`pipelines/sim-shared-*.txt`,
//!   `sim-relay-*.txt`, see `relay.rs`), so dozens of 1080p cameras fit on two cores.
//! - clip (`clip: Some(..)`): every mount replays one encoded clip of moving footage in a loop
//!   through the same relay (`clip.rs`): the stimulus that costs a recorder what a real camera's
//!   main stream costs, which a still test pattern does not.
//!
//! In per-camera mode `audio: Some(..)` adds a second stream to every mount, a 440 Hz tone as AAC or
//! G.711 A-law (`pipelines/sim-audio-*.txt`), as cameras with a microphone send.
//!
//! Invariants:
//! - Each server owns a private GLib main context, run by a dedicated thread. Nothing
//!   touches the global default context, so simulators coexist with tokio and with each
//!   other in one process.
//! - [`SimServer::start`] returns only once the port listens (a client may connect at
//!   once); a port already in use is an error.
//! - Mount media are shared: one encode per mount however many clients connect. A media is
//!   torn down when its last client leaves and built afresh for the next one.
//! - Mounts behave like live cameras: a client joining a mount that is already streaming
//!   gets it from the current frame (mid-GOP), PLAY ranges are ignored, and other clients
//!   of the mount are never disturbed. The first client of a shared-encoder mount waits in
//!   DESCRIBE for the next keyframe (at most one GOP); a fresh per-camera media starts with
//!   one.
//! - Stopping (or dropping) a server closes every client connection, so a recorder sees the
//!   camera go offline, and frees the port: a new server can bind it right away.
//! - With credentials, every mount requires them (basic or digest); others get 401.

pub mod clip;
pub mod gb28181;
pub mod gb_replay;
mod nvr;
pub mod onvif;
mod pipelines;
mod relay;
#[allow(unsafe_code)] // one GStreamer call the binding lacks; see the module's doc
mod server;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use tracing::{error, warn};

use pipelines::Plan;
use server::Running;

/// Video codec the simulated cameras send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimCodec {
    #[default]
    H264,
    H265,
}

impl fmt::Display for SimCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimCodec::H264 => "h264",
            SimCodec::H265 => "h265",
        })
    }
}

impl FromStr for SimCodec {
    type Err = SimError;

    /// Accepts the `--codec` spellings: `h264` / `h265` (also `avc`, `hevc`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "h.264" | "avc" => Ok(SimCodec::H264),
            "h265" | "h.265" | "hevc" => Ok(SimCodec::H265),
            _ => Err(SimError::InvalidOptions(format!(
                "unknown codec {s:?} (h264 or h265)"
            ))),
        }
    }
}

/// The audio track a simulated camera sends besides its video (`--audio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimAudio {
    /// AAC-LC, 16 kHz mono, RFC 3640 (mpeg4-generic).
    Aac,
    /// G.711 A-law, 8 kHz mono, payload type 8.
    Pcma,
}

impl FromStr for SimAudio {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "aac" => Ok(SimAudio::Aac),
            "pcma" | "g711a" => Ok(SimAudio::Pcma),
            _ => Err(SimError::InvalidOptions(format!(
                "unknown audio {s:?} (aac or pcma)"
            ))),
        }
    }
}

/// What to simulate. `Default` gives four 640x360 H.264 cameras at 25 fps on
/// `127.0.0.1:8554`, without credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// Number of mounts, `/cam1` to `/camN`.
    pub cameras: u32,
    /// Address to listen on; port 0 picks a free port (see [`SimServer::local_addr`]).
    pub listen: SocketAddr,
    pub codec: SimCodec,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Target encoder bitrate.
    pub bitrate_kbps: u32,
    /// Frames from one keyframe to the next.
    pub gop: u32,
    /// With `password`, every mount requires these credentials.
    pub username: Option<String>,
    pub password: Option<String>,
    /// One encoder for all mounts (cheap mode) instead of one per mount.
    pub shared_encoder: bool,
    /// Replay a clip to every mount instead of encoding a test pattern.
    pub clip: Option<ClipSource>,
    /// NVR mode (`nvr`): record, drop the line over `(start_s, duration_s)` after the start, and serve
    /// the recording at playback paths. Needs the shared encoder (or a clip).
    pub outage: Option<(u64, u64)>,
    /// An audio track besides the video (per-camera encoder only).
    pub audio: Option<SimAudio>,
}

/// The clip of clip mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipSource {
    /// Moving footage of the options' size, rate, bitrate and GOP, this many seconds long,
    /// made once and cached (see [`clip::cache_dir`]).
    MovingFootage { seconds: u32 },
    /// An H.264 file (MP4, Matroska, MPEG-TS), e.g. footage of a real camera; its own size,
    /// rate and bitrate apply.
    File(PathBuf),
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            cameras: 4,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8554),
            codec: SimCodec::H264,
            width: 640,
            height: 360,
            fps: 25,
            bitrate_kbps: 1000,
            gop: 25,
            username: None,
            password: None,
            shared_encoder: false,
            clip: None,
            outage: None,
            audio: None,
        }
    }
}

// Hand-written so the password never reaches a log.
impl fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimOptions")
            .field("cameras", &self.cameras)
            .field("listen", &self.listen)
            .field("codec", &self.codec)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("bitrate_kbps", &self.bitrate_kbps)
            .field("gop", &self.gop)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("shared_encoder", &self.shared_encoder)
            .field("clip", &self.clip)
            .field("audio", &self.audio)
            .finish()
    }
}

impl SimOptions {
    fn validate(&self) -> Result<(), SimError> {
        let bad = |msg: String| Err(SimError::InvalidOptions(msg));
        if self.cameras == 0 {
            return bad("cameras must be at least 1".into());
        }
        // 4:2:0 needs even dimensions; x264/x265 refuse odd ones.
        if self.width == 0
            || self.height == 0
            || !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
        {
            return bad(format!(
                "picture size {}x{} must be non-zero and even",
                self.width, self.height
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return bad(format!("fps {} must be within 1..=120", self.fps));
        }
        if self.bitrate_kbps == 0 || self.gop == 0 {
            return bad("bitrate and gop must be at least 1".into());
        }
        match &self.clip {
            Some(_) if self.codec != SimCodec::H264 => {
                return bad("clip mode replays H.264 only".into())
            }
            Some(ClipSource::MovingFootage { seconds: 0 }) => {
                return bad("a clip lasts at least one second".into())
            }
            _ => {}
        }
        if self.audio.is_some()
            && (self.shared_encoder || self.clip.is_some() || self.outage.is_some())
        {
            return bad(
                "an audio track needs the per-camera encoder (not the shared encoder, a clip or an outage)"
                    .into(),
            );
        }
        match (&self.username, &self.password) {
            (None, None) => Ok(()),
            (Some(user), Some(_)) if user.is_empty() || user.contains(':') => {
                bad("username must be non-empty and contain no ':'".into())
            }
            (Some(_), Some(_)) => Ok(()),
            _ => bad("username and password go together".into()),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator options: {0}")]
    InvalidOptions(String),
    #[error("GStreamer initialisation failed: {0}")]
    Init(#[source] glib::Error),
    #[error("simulator {what} pipeline description uses an unknown placeholder {placeholder}")]
    Template {
        what: &'static str,
        placeholder: String,
    },
    #[error("simulator {what} pipeline cannot be built (missing GStreamer plugin?): {source}")]
    Pipeline {
        what: &'static str,
        #[source]
        source: glib::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: glib::Error,
    },
    #[error("simulator setup failed: {0}")]
    Setup(String),
    #[error("cannot start the simulator thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the simulator thread ended before the server was listening")]
    ThreadExited,
}

impl SimError {
    fn setup(msg: impl Into<String>) -> SimError {
        SimError::Setup(msg.into())
    }
}

/// A running simulator. [`SimServer::stop`] or dropping it shuts it down: listening socket
/// closed, clients disconnected, media and encoders stopped, thread joined. Stopping blocks
/// for the teardown (milliseconds); from async code, consider `spawn_blocking`.
pub struct SimServer {
    local_addr: SocketAddr,
    cameras: u32,
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Starts serving; returns once the server listens.
    pub fn start(opts: SimOptions) -> Result<SimServer, SimError> {
        opts.validate()?;
        gst::init().map_err(SimError::Init)?;
        let plan = match &opts.clip {
            None => Plan::new(&opts)?,
            Some(source) => {
                let path = match source {
                    ClipSource::MovingFootage { seconds } => clip::moving_footage(&opts, *seconds)?,
                    ClipSource::File(path) => path.clone(),
                };
                Plan::clip(&opts, Arc::new(clip::Clip::load(&path)?))?
            }
        };
        plan.check_elements()?;

        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<SocketAddr, SimError>>(1);
        let cameras = opts.cameras;
        let thread = std::thread::Builder::new()
            .name(format!("vigil-sim-{}", opts.listen.port()))
            .spawn({
                let context = context.clone();
                let main_loop = main_loop.clone();
                move || serve(&opts, &plan, &context, &main_loop, ready_tx)
            })
            .map_err(SimError::Thread)?;

        let outcome = ready_rx.recv();
        match outcome {
            Ok(Ok(local_addr)) => Ok(SimServer {
                local_addr,
                cameras,
                context,
                main_loop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                join(thread);
                Err(e)
            }
            Err(mpsc::RecvError) => {
                join(thread);
                Err(SimError::ThreadExited)
            }
        }
    }

    /// `rtsp://HOST:PORT/camN`, without credentials. An unspecified listen address
    /// (0.0.0.0, ::) is given as loopback. Mounts exist for `1..=cameras`.
    pub fn url(&self, n: u32) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!(
            "rtsp://{}/{}",
            SocketAddr::new(ip, self.local_addr.port()),
            pipelines::mount_name(n)
        )
    }

    /// The address actually bound (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Number of mounts served.
    pub fn cameras(&self) -> u32 {
        self.cameras
    }

    /// Shuts the server down and waits until it is gone.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Quit from inside the loop: a quit() racing ahead of run() would be lost, an
        // invoked callback is not.
        let main_loop = self.main_loop.clone();
        self.context.invoke(move || main_loop.quit());
        join(thread);
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for SimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimServer")
            .field("local_addr", &self.local_addr)
            .field("cameras", &self.cameras)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

/// Body of the simulator thread: build the server with `context` as thread default, report
/// readiness, serve until quit, tear down.
fn serve(
    opts: &SimOptions,
    plan: &Plan,
    context: &glib::MainContext,
    main_loop: &glib::MainLoop,
    ready: mpsc::SyncSender<Result<SocketAddr, SimError>>,
) {
    let ready_on_error = ready.clone();
    let owned = context.with_thread_default(|| {
        let running = match Running::start(opts, plan, context) {
            Ok(running) => running,
            Err(e) => {
                // The receiver only disappears if start() itself went away; nothing to tell.
                let _ = ready.send(Err(e));
                return;
            }
        };
        if ready.send(Ok(running.local_addr())).is_err() {
            warn!("sim start() abandoned; shutting down");
        } else {
            main_loop.run();
        }
        running.shutdown(context);
    });
    if let Err(e) = owned {
        let _ = ready_on_error.send(Err(SimError::setup(format!(
            "cannot own the sim main context: {e}"
        ))));
    }
}

fn join(thread: JoinHandle<()>) {
    if thread.join().is_err() {
        error!("sim thread panicked");
    }
}

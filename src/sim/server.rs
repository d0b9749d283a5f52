//! The RTSP side of the simulator: server, mounts and credentials, built and torn down on
//! the simulator thread (whose private main context is the thread default while these run).
//!
//! Unsafe: `gst_rtsp_auth_set_supported_methods` takes a bit set of methods where the Rust binding
//! takes one enum value, so offering Basic and Digest together goes through its FFI function once.

use std::net::SocketAddr;
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::ToGlibPtr;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp as gst_rtsp;
use gstreamer_rtsp_server as rtsp_server;
use rtsp_server::prelude::*;
use rtsp_server::{gio, RTSPAuth, RTSPFilterResult, RTSPMediaFactory, RTSPServer, RTSPToken};
use tracing::{debug, info, warn};

use super::clip::ClipPlayer;
use super::pipelines::{mount_name, Plan, RELAY_SRC};
use super::relay::{Hub, SharedEncoder};
use super::{SimError, SimOptions};

/// Role given to the one configured user; every mount grants it access.
const ROLE: &str = "camera-viewer";

/// How many pending connections the listening socket queues. gst-rtsp-server's default (5)
/// makes a recorder that connects to 64 cameras at once see refused or retried connects.
const LISTEN_BACKLOG: i32 = 256;

/// How much encoded video one relay mount may have queued before it skips to the next
/// keyframe: two seconds at the configured bitrate, and never less than 1 MiB.
fn max_backlog_bytes(opts: &SimOptions) -> u64 {
    (u64::from(opts.bitrate_kbps) * 1000 / 8 * 2).max(1 << 20)
}

/// Everything alive while the simulator serves.
pub(super) struct Running {
    server: RTSPServer,
    listen: glib::Source,
    session_cleanup: glib::Source,
    /// NVR mode: cuts clients off while the line is down.
    line_watch: Option<glib::Source>,
    mounts: Vec<String>,
    encoder: Option<Source>,
    local_addr: SocketAddr,
}

/// What feeds the relay mounts: the shared encoder or the clip player.
enum Source {
    Encoder(SharedEncoder),
    Clip(ClipPlayer),
}

impl Source {
    fn start(plan: &Plan, opts: &SimOptions) -> Result<Option<Source>, SimError> {
        Ok(match plan {
            Plan::Shared { encoder, .. } => Some(Source::Encoder(SharedEncoder::start(
                encoder,
                max_backlog_bytes(opts),
            )?)),
            Plan::Clip { clip, .. } => Some(Source::Clip(ClipPlayer::start(
                Arc::clone(clip),
                max_backlog_bytes(opts),
            )?)),
            Plan::PerCamera { .. } => None,
        })
    }

    fn hub(&self) -> Arc<Hub> {
        match self {
            Source::Encoder(encoder) => encoder.hub(),
            Source::Clip(player) => player.hub(),
        }
    }
}

/// The media factory of camera `n`: its own encoder, or a relay of the shared one; the credentials'
/// role when the simulator asks for them.
fn camera_factory(
    n: u32,
    name: &str,
    plan: &Plan,
    encoder: Option<&Source>,
    credentials: bool,
) -> Result<RTSPMediaFactory, SimError> {
    let factory = RTSPMediaFactory::new();
    // One media per mount, whatever the number of clients: one encode per camera.
    factory.set_shared(true);
    factory.connect_media_configure(|_, media| refuse_seeks(media));
    match (plan, encoder) {
        (Plan::PerCamera { launches }, _) => {
            let launch = launches
                .get(n as usize - 1)
                .ok_or_else(|| SimError::setup("fewer camera descriptions than cameras"))?;
            factory.set_launch(&format!("( {launch} )"));
        }
        (Plan::Shared { relay, .. } | Plan::Clip { relay, .. }, Some(encoder)) => {
            factory.set_launch(&format!("( {relay} )"));
            // The relay rebases timestamps through the clock it shares with the encoder; pin both to
            // the system clock rather than rely on defaults.
            factory.set_clock(Some(&gst::SystemClock::obtain()));
            connect_relay(&factory, name, encoder.hub());
        }
        (Plan::Shared { .. } | Plan::Clip { .. }, None) => {
            return Err(SimError::setup("shared encoder missing"))
        }
    }
    if credentials {
        add_role(&factory);
    }
    Ok(factory)
}

/// Grants the configured user's role access to a factory's media.
fn add_role(factory: &RTSPMediaFactory) {
    factory.add_role_from_structure(
        &gst::Structure::builder(ROLE)
            .field(rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS.as_str(), true)
            .field(
                rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT.as_str(),
                true,
            )
            .build(),
    );
}

/// NVR mode: the encoder's access units are recorded, every camera also answers at Hikvision's live path
/// (`/Streaming/Channels/{n}01`), and its recording plays at `/Streaming/tracks/{n}01` (`super::nvr`).
fn nvr_mounts(
    opts: &SimOptions,
    plan: &Plan,
    encoder: Option<&Source>,
    credentials: bool,
    (mount_points, mounts): (&rtsp_server::RTSPMountPoints, &mut Vec<String>),
    outage: (u64, u64),
) -> Result<super::nvr::Line, SimError> {
    let encoder =
        encoder.ok_or_else(|| SimError::setup("--outage needs the shared encoder or a clip"))?;
    let archive = super::nvr::SharedArchive::default();
    encoder.hub().record_into(archive.clone());
    for n in 1..=opts.cameras {
        let live = camera_factory(n, &mount_name(n), plan, Some(encoder), credentials)?;
        let (live_path, playback_path) = (
            format!("/Streaming/Channels/{n}01"),
            format!("/Streaming/tracks/{n}01"),
        );
        mount_points.add_factory(&live_path, live);
        let playback = super::nvr::PlaybackFactory::new(archive.clone(), opts.codec);
        playback.connect_media_configure(|_, media| refuse_seeks(media));
        if credentials {
            add_role(playback.upcast_ref());
        }
        mount_points.add_factory(&playback_path, playback);
        mounts.extend([live_path, playback_path]);
    }
    Ok(super::nvr::Line::new(outage))
}

/// Sessions of clients that vanish without TEARDOWN (UDP clients) expire through this watch; TCP
/// sessions end with their connection.
fn session_cleanup(server: &RTSPServer) -> Result<glib::Source, SimError> {
    let pool = server
        .session_pool()
        .ok_or_else(|| SimError::setup("RTSP server has no session pool"))?;
    Ok(pool.create_watch(None, glib::Priority::DEFAULT, |pool| {
        let removed = pool.cleanup();
        if removed > 0 {
            debug!(removed, "sim expired RTSP sessions removed");
        }
        glib::ControlFlow::Continue
    }))
}

/// The RTSP server on the options' address, with a thread per connection.
fn rtsp_server(opts: &SimOptions) -> RTSPServer {
    let server = RTSPServer::new();
    server.set_address(&opts.listen.ip().to_string());
    server.set_service(&opts.listen.port().to_string());
    server.set_backlog(LISTEN_BACKLOG);
    // One thread per connection. With gst-rtsp-server's default (one thread for every
    // client), a DESCRIBE that waits for its media to preroll (in shared-encoder mode,
    // up to one GOP, until the next keyframe) stalls every other client's requests,
    // and a recorder connecting to many cameras at once times out.
    if let Some(pool) = server.thread_pool() {
        pool.set_max_threads(-1);
    }
    server
}

/// The cameras' mounts (and, in NVR mode, its playback mounts): their paths, and the NVR's line.
fn add_mounts(
    server: &RTSPServer,
    opts: &SimOptions,
    plan: &Plan,
    encoder: Option<&Source>,
    credentials: bool,
) -> Result<(Vec<String>, Option<super::nvr::Line>), SimError> {
    let mount_points = server
        .mount_points()
        .ok_or_else(|| SimError::setup("RTSP server has no mount points"))?;
    let mut mounts = Vec::with_capacity(opts.cameras as usize);
    for n in 1..=opts.cameras {
        let name = mount_name(n);
        let factory = camera_factory(n, &name, plan, encoder, credentials)?;
        let path = format!("/{name}");
        mount_points.add_factory(&path, factory);
        mounts.push(path);
    }
    let nvr = match opts.outage {
        Some(outage) => Some(nvr_mounts(
            opts,
            plan,
            encoder,
            credentials,
            (&mount_points, &mut mounts),
            outage,
        )?),
        None => None,
    };
    Ok((mounts, nvr))
}

/// Binds and listens now rather than in attach(), to report "address in use" as an error.
/// gst-rtsp-server binds with SO_REUSEADDR, so a port freed by a stopped simulator can be
/// bound again at once (TIME_WAIT does not block it).
fn listen(
    server: &RTSPServer,
    opts: &SimOptions,
    context: &glib::MainContext,
) -> Result<(glib::Source, SocketAddr), SimError> {
    let listen = server
        .create_source(None::<&gio::Cancellable>)
        .map_err(|source| SimError::Bind {
            addr: opts.listen,
            source,
        })?;
    listen.attach(Some(context));
    let port = u16::try_from(server.bound_port())
        .map_err(|_| SimError::setup("RTSP server reports no bound port"))?;
    Ok((listen, SocketAddr::new(opts.listen.ip(), port)))
}

impl Running {
    /// Builds the server and starts listening. Returns once the socket listens, so clients
    /// can connect as soon as the caller learns the address (the kernel queues them until
    /// the main loop runs).
    pub(super) fn start(
        opts: &SimOptions,
        plan: &Plan,
        context: &glib::MainContext,
    ) -> Result<Running, SimError> {
        let server = rtsp_server(opts);

        let credentials = match (&opts.username, &opts.password) {
            (Some(user), Some(pass)) => {
                server.set_auth(Some(&make_auth(user, pass)));
                true
            }
            _ => false,
        };

        // Start the encoder before the mounts exist, so no media can configure against a hub
        // that is not fed yet.
        let encoder = Source::start(plan, opts)?;
        let (mounts, nvr) = add_mounts(&server, opts, plan, encoder.as_ref(), credentials)?;
        let (listen, local_addr) = listen(&server, opts, context)?;

        let session_cleanup = session_cleanup(&server)?;
        session_cleanup.attach(Some(context));
        let line_watch = nvr.map(|line| {
            let watch = super::nvr::watch_line(&server, line);
            watch.attach(Some(context));
            watch
        });

        info!(
            %local_addr,
            cameras = opts.cameras,
            codec = ?opts.codec,
            shared_encoder = opts.shared_encoder,
            credentials,
            "sim RTSP server listening"
        );
        Ok(Running {
            server,
            listen,
            session_cleanup,
            line_watch,
            mounts,
            encoder,
            local_addr,
        })
    }

    pub(super) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening, closes every client connection (a recorder sees the camera drop),
    /// tears down every media and stops the encoder. Runs on the simulator thread after its
    /// main loop returned.
    pub(super) fn shutdown(self, context: &glib::MainContext) {
        let Running {
            server,
            listen,
            session_cleanup,
            line_watch,
            mounts,
            encoder,
            local_addr,
        } = self;
        if let Some(w) = line_watch {
            w.destroy();
        }
        // Destroying the source drops the last reference to the listening socket: closed.
        listen.destroy();
        if let Some(mount_points) = server.mount_points() {
            for path in &mounts {
                mount_points.remove_factory(path);
            }
        }
        let mut clients = 0usize;
        server.client_filter(Some(&mut |_, client| {
            client.close();
            clients += 1;
            RTSPFilterResult::Remove
        }));
        // Sessions outlive their connection for UDP clients; removing them unprepares the
        // media, which stops the per-camera pipelines.
        let mut sessions = 0usize;
        if let Some(pool) = server.session_pool() {
            pool.filter(Some(&mut |_, _| {
                sessions += 1;
                RTSPFilterResult::Remove
            }));
        }
        session_cleanup.destroy();
        drop(encoder);
        // Let callbacks queued on our context by the teardown run before it is dropped.
        let mut spins = 0;
        while context.pending() && spins < 1000 {
            context.iteration(false);
            spins += 1;
        }
        info!(%local_addr, clients, sessions, "sim RTSP server stopped");
    }
}

fn make_auth(user: &str, pass: &str) -> RTSPAuth {
    let auth = RTSPAuth::new();
    let token = RTSPToken::builder()
        .field(rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(), ROLE)
        .build();
    auth.add_basic(RTSPAuth::make_basic(user, pass).as_str(), &token);
    // Cameras commonly offer digest; offering both lets clients exercise either.
    auth.add_digest(user, pass, &token);
    // The C API takes a bit set of methods, the binding a single enum value; go through FFI.
    // SAFETY: `auth` is a valid GstRTSPAuth for the duration of the call, and the value is
    // an OR of GstRTSPAuthMethod bits, which the function documents as accepted.
    unsafe {
        rtsp_server::ffi::gst_rtsp_auth_set_supported_methods(
            auth.to_glib_none().0,
            gst_rtsp::ffi::GST_RTSP_AUTH_BASIC | gst_rtsp::ffi::GST_RTSP_AUTH_DIGEST,
        );
    }
    auth.set_realm(Some("Vigil simulator"));
    // No default token: a client without credentials is refused with 401.
    auth
}

/// Makes a media report itself unseekable, as a live camera is.
///
/// videotestsrc answers the SEEKING query with "seekable" even when live, so gst-rtsp-server
/// would honour the `Range: npt=0.000-` that ffmpeg (and others) send with PLAY by flushing
/// the shared pipeline: every client already watching the mount would see its RTP sequence
/// numbers jump and timestamps go backwards. Answering the query at the payloader makes
/// gst-rtsp-server ignore the range instead.
fn refuse_seeks(media: &rtsp_server::RTSPMedia) {
    let pad = media
        .element()
        .downcast::<gst::Bin>()
        .ok()
        .and_then(|bin| bin.by_name("pay0"))
        .and_then(|pay| pay.static_pad("src"));
    let Some(pad) = pad else {
        warn!("sim media has no pay0 src pad; clients' PLAY ranges may disturb other clients");
        return;
    };
    pad.add_probe(gst::PadProbeType::QUERY_UPSTREAM, |_, info| {
        if let Some(gst::PadProbeData::Query(query)) = info.data.as_mut() {
            if let gst::QueryViewMut::Seeking(seeking) = query.view_mut() {
                let none = gst::GenericFormattedValue::none_for_format(seeking.format());
                seeking.set(false, none, none);
                return gst::PadProbeReturn::Handled;
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Registers each new media of a relay mount with the hub, and unregisters it when the media
/// is unprepared (last client gone, or server stopping).
fn connect_relay(factory: &RTSPMediaFactory, mount: &str, hub: Arc<Hub>) {
    let mount = mount.to_owned();
    factory.connect_media_configure(move |_, media| {
        let appsrc = media
            .element()
            .downcast::<gst::Bin>()
            .ok()
            .and_then(|bin| bin.by_name(RELAY_SRC))
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok());
        let Some(appsrc) = appsrc else {
            warn!(mount = %mount, "sim relay media has no appsrc named \"src\"; it will stay silent");
            return;
        };
        let id = hub.register(&mount, &appsrc);
        let hub = Arc::downgrade(&hub);
        media.connect_unprepared(move |_| {
            if let Some(hub) = hub.upgrade() {
                hub.unregister(id);
            }
        });
    });
}

//! `vigil sim` and `vigil demo`: the simulated cameras, in a binary built with the `sim` feature (on by
//! default). Without it the server links no GStreamer RTSP server and these commands say so.

use clap::Args;
use std::net::SocketAddr;

#[derive(Args)]
pub struct SimArgs {
    #[arg(long, default_value_t = 4)]
    cameras: u32,
    #[arg(long, default_value = "127.0.0.1:8554")]
    listen: SocketAddr,
    #[arg(long, default_value = "h264", value_parser = ["h264", "h265"])]
    codec: String,
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 360)]
    height: u32,
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// Bitrate in kbit/s.
    #[arg(long, default_value_t = 1000)]
    bitrate: u32,
    /// Frames from one keyframe to the next.
    #[arg(long, default_value_t = 25)]
    gop: u32,
    #[arg(long, requires = "password")]
    username: Option<String>,
    /// The RTSP password (with --username), or the GB/T 28181 registration password.
    #[arg(long)]
    password: Option<String>,
    /// Encode once and serve every camera from it (cheap enough for 64+ cameras on 2 cores); the picture
    /// then shows "Vigil sim" instead of each camera's name.
    #[arg(long)]
    shared_encoder: bool,
    /// Replay a clip of moving footage (made once at these settings with x264 "faster", High profile,
    /// B-frames, constant bitrate, and cached) to every camera, instead of a test pattern: the stimulus
    /// that costs a recorder what a real camera does.
    #[arg(long, conflicts_with = "clip_file")]
    clip: bool,
    /// Length of the --clip footage, in seconds.
    #[arg(long, default_value_t = 30, requires = "clip")]
    clip_seconds: u32,
    /// Send an audio track too: `aac` (AAC-LC 16 kHz, mpeg4-generic) or `pcma` (G.711 A-law 8 kHz), a
    /// 440 Hz tone. Per-camera encoder only.
    #[arg(long, value_parser = ["aac", "pcma"], conflicts_with_all = ["shared_encoder", "clip", "clip_file", "outage", "gb28181"])]
    audio: Option<String>,
    /// Replay this H.264 file (MP4, Matroska, MPEG-TS) to every camera, e.g. a real camera's footage.
    #[arg(long, value_name = "FILE")]
    clip_file: Option<std::path::PathBuf>,
    /// Be a GB/T 28181 device (an NVR with --channels channels) that registers to --platform, instead
    /// of RTSP cameras.
    #[arg(long, requires = "platform")]
    gb28181: bool,
    /// The platform's SIP address (UDP).
    #[arg(long, value_name = "HOST:PORT")]
    platform: Option<SocketAddr>,
    /// The platform's 20-digit SIP id.
    #[arg(long, default_value = "34020000002000000001")]
    platform_id: String,
    /// This device's 20-digit id.
    #[arg(long, default_value = "34020000001180000001")]
    device_id: String,
    /// Channels in the catalog.
    #[arg(long, default_value_t = 4)]
    channels: u32,
    /// Catalog items per MESSAGE.
    #[arg(long, default_value_t = 4)]
    catalog_page: u32,
    /// Seconds between keepalives.
    #[arg(long, default_value_t = 60)]
    keepalive: u64,
    /// Registration expiry asked for, in seconds.
    #[arg(long, default_value_t = 3600)]
    expires: u32,
    /// The device's own SIP address.
    #[arg(long, default_value = "127.0.0.1:0")]
    sip_listen: SocketAddr,
    /// Drop the link to the platform from START_S seconds after the start for DURATION_S seconds while the
    /// device keeps recording, as a site's line that goes down. GB/T 28181 mode: no SIP, no live media.
    /// RTSP mode (an NVR, on the shared encoder): every client is cut off and new ones refused; what was
    /// recorded plays at /Streaming/tracks/{n}01?starttime=YYYYMMDDTHHMMSSZ&endtime=... (Hikvision's path).
    #[arg(long, value_name = "START_S:DURATION_S", value_parser = outage)]
    outage: Option<(u64, u64)>,
    /// Also be an ONVIF camera: answer WS-Discovery probes and the device, media and PTZ services (with
    /// the simulator's credentials as WS-Security digest) on --onvif-listen.
    #[arg(long, conflicts_with = "gb28181")]
    onvif: bool,
    /// Where the ONVIF services listen (port 0: any free one, printed at start).
    #[arg(long, default_value = "0.0.0.0:0")]
    onvif_listen: SocketAddr,
    /// The device records nothing during the outage either (a power cut at the site): the platform finds
    /// nothing to fetch back (GB/T 28181 mode).
    #[arg(long, requires = "outage", requires = "gb28181")]
    outage_unrecorded: bool,
}

/// `START_S:DURATION_S`.
fn outage(v: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{v:?} is not START_S:DURATION_S (seconds)");
    let (a, b) = v.split_once(':').ok_or_else(bad)?;
    let start = a.trim().parse().map_err(|_| bad())?;
    let duration: u64 = b.trim().parse().map_err(|_| bad())?;
    if duration == 0 {
        return Err(bad());
    }
    Ok((start, duration))
}

#[cfg(not(feature = "sim"))]
const NO_SIM: &str = "this vigil was built without the simulator (cargo feature `sim`)";

#[cfg(not(feature = "sim"))]
pub async fn run(_: SimArgs) -> anyhow::Result<()> {
    anyhow::bail!(NO_SIM)
}

#[cfg(not(feature = "sim"))]
pub async fn demo(_: SocketAddr, _: std::path::PathBuf) -> anyhow::Result<()> {
    anyhow::bail!(NO_SIM)
}

#[cfg(feature = "sim")]
pub use with_sim::{demo, run};

#[cfg(feature = "sim")]
mod with_sim {
    use super::SimArgs;
    use anyhow::Context;
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use vigil::config::Config;
    use vigil::server::{shutdown_signal, Server};
    use vigil::sim::{ClipSource, SimAudio, SimCodec, SimOptions, SimServer};

    /// Runs the simulated cameras until Ctrl-C, after printing their URLs.
    pub async fn run(args: SimArgs) -> anyhow::Result<()> {
        if args.gb28181 {
            return gb_device(&args).await;
        }
        let sim = SimServer::start(sim_options(&args))?;
        for n in 1..=args.cameras {
            println!("{}", sim.url(n));
        }
        let _onvif = match args.onvif {
            true => Some(onvif(&args, sim.local_addr()).await?),
            false => None,
        };
        shutdown_signal().await;
        sim.stop();
        Ok(())
    }

    /// The ONVIF side of the simulated camera.
    async fn onvif(a: &SimArgs, rtsp: SocketAddr) -> anyhow::Result<vigil::sim::onvif::OnvifSim> {
        use vigil::onvif::soap::Credentials;
        let credentials = match (&a.username, &a.password) {
            (Some(u), Some(p)) => Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        };
        let sim = vigil::sim::onvif::start(vigil::sim::onvif::OnvifOptions {
            http: a.onvif_listen,
            rtsp,
            width: a.width,
            height: a.height,
            credentials,
        })
        .await
        .context("starting the ONVIF services (WS-Discovery needs UDP port 3702)")?;
        println!("onvif http://{}/onvif/device_service", sim.http_addr);
        Ok(sim)
    }

    /// The GB/T 28181 device until Ctrl-C.
    async fn gb_device(a: &SimArgs) -> anyhow::Result<()> {
        use vigil::sim::gb28181::{channel_id, start, DeviceOptions};
        let platform = a
            .platform
            .context("--platform is required with --gb28181")?;
        let device = start(DeviceOptions {
            platform,
            platform_id: a.platform_id.clone(),
            device_id: a.device_id.clone(),
            password: a.password.clone().unwrap_or_default(),
            channels: a.channels,
            catalog_page: a.catalog_page,
            keepalive_s: a.keepalive.max(1),
            expires_s: a.expires,
            listen: a.sip_listen,
            video: sim_options(a),
            outage: a.outage,
            outage_recorded: !a.outage_unrecorded,
        })
        .await?;
        println!(
            "device {} on {} registering to {platform}",
            a.device_id, device.sip_addr
        );
        for n in 1..=a.channels {
            println!("channel {}", channel_id(&a.device_id, n));
        }
        shutdown_signal().await;
        drop(device);
        Ok(())
    }

    fn sim_options(a: &SimArgs) -> SimOptions {
        SimOptions {
            cameras: a.cameras,
            listen: a.listen,
            codec: if a.codec == "h265" {
                SimCodec::H265
            } else {
                SimCodec::H264
            },
            width: a.width,
            height: a.height,
            fps: a.fps,
            bitrate_kbps: a.bitrate,
            gop: a.gop,
            username: a.username.clone(),
            password: a.password.clone(),
            // An NVR records what its one encoder makes: NVR mode runs on the shared encoder.
            shared_encoder: a.shared_encoder || (a.outage.is_some() && !a.gb28181),
            outage: a.outage.filter(|_| !a.gb28181),
            // clap allows only the spellings SimAudio parses.
            audio: a.audio.as_deref().and_then(|s| s.parse::<SimAudio>().ok()),
            clip: match (&a.clip_file, a.clip) {
                (Some(path), _) => Some(ClipSource::File(path.clone())),
                (None, true) => Some(ClipSource::MovingFootage {
                    seconds: a.clip_seconds,
                }),
                (None, false) => None,
            },
        }
    }

    /// The demo: simulated cameras and the server on `config/demo.toml`.
    pub async fn demo(listen: SocketAddr, data_dir: PathBuf) -> anyhow::Result<()> {
        let mut cfg = Config::parse(include_str!("../../config/demo.toml"))
            .context("embedded demo configuration")?;
        cfg.listen = listen;
        cfg.data_dir = data_dir;
        let sim = SimServer::start(SimOptions {
            cameras: 8,
            listen: SocketAddr::from(([127, 0, 0, 1], 8554)),
            ..SimOptions::default()
        })
        .context("starting the simulator on 127.0.0.1:8554")?;
        let server = Server::bind(cfg.clone()).await?;
        let addr = server.local_addr()?;
        vigil::demo::start_feeder(
            server.state.cases.clone(),
            std::time::Duration::from_secs(30),
        );
        println!();
        println!("Vigil demo is running.");
        println!("  console:  http://{addr}/");
        println!("  API:      http://{addr}/api/v1/openapi.json");
        for u in &cfg.seed.users {
            println!("  login:    {} / {}  ({})", u.username, u.password, u.role);
        }
        println!("  cameras:  {} ... {} (simulated)", sim.url(1), sim.url(8));
        println!("  cases:    a simulated approval system posts case events every 30 s");
        println!("Press Ctrl-C to stop.");
        let result = server.run(shutdown_signal()).await;
        sim.stop();
        result
    }
}

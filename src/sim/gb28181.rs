//! The simulated GB/T 28181 device (`vigil sim --gb28181`): an NVR that registers to a platform with
//! digest authentication, keeps alive, answers Catalog (in pages) and DeviceInfo, and answers live
//! INVITEs by sending PS over RTP, over UDP or over TCP where it connects to the platform (RFC 4571),
//! until the BYE. It also records what it encodes and serves it to RecordInfo and Playback INVITEs
//! (`super::gb_replay`).
//!
//! One encoder (the shared-encoder pipeline of `pipelines/`) feeds every channel and every session;
//! each session muxes the access units into PS itself (`media::ps`), so the platform's demuxer is
//! exercised by bytes that ffprobe also reads.

use super::gb_replay::{self, Archive};
use super::pipelines::{self, ENCODER_SINK};
use super::{SimCodec, SimError, SimOptions};
use crate::gb28181::send::{accept_invite, Answering, Sessions};
use crate::gb28181::sip::{self, Outgoing, Stack};
use crate::gb28181::xml::{self, Body};
use crate::media::ps;
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{Method, StatusCode, Transport};
use rsipstack::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What the simulated device is.
#[derive(Clone)]
pub struct DeviceOptions {
    pub platform: SocketAddr,
    pub platform_id: String,
    pub device_id: String,
    pub password: String,
    pub channels: u32,
    /// Catalog items per MESSAGE (devices page their catalogs).
    pub catalog_page: u32,
    pub keepalive_s: u64,
    pub expires_s: u32,
    pub listen: SocketAddr,
    /// The picture (codec, size, rate, bitrate, GOP) of the one encoder.
    pub video: SimOptions,
    /// `(start_s, duration_s)`: the link to the platform is down over that interval after the start
    /// (no SIP sent or answered, no live media), while the device keeps recording.
    pub outage: Option<(u64, u64)>,
    /// Whether the device records during the outage (false: a power cut, nothing to fetch back).
    pub outage_recorded: bool,
}

/// One encoded access unit, Annex B, with its 90 kHz time.
#[derive(Clone)]
pub struct Au {
    pub data: Bytes,
    pub pts: u64,
    pub keyframe: bool,
}

struct Device {
    opts: DeviceOptions,
    stack: Stack,
    platform: SipAddr,
    frames: broadcast::Sender<Arc<Au>>,
    archive: Arc<Mutex<Archive>>,
    link: Link,
    sessions: Sessions,
    sn: std::sync::atomic::AtomicU32,
}

/// The running device; stops when dropped.
pub struct GbDevice {
    pub sip_addr: SocketAddr,
    cancel: CancellationToken,
    pipeline: gst::Pipeline,
}

impl Drop for GbDevice {
    fn drop(&mut self) {
        self.cancel.cancel();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Starts the device: the encoder, SIP, the registration loop and the request handler.
pub async fn start(opts: DeviceOptions) -> Result<GbDevice, SimError> {
    gst::init().map_err(|e| SimError::setup(format!("GStreamer: {e}")))?;
    let (frames, _) = broadcast::channel(64);
    let pipeline = encoder(&opts.video, frames.clone())?;
    let cancel = CancellationToken::new();
    let (stack, mut incoming) = Stack::start(opts.listen, None, false, cancel.clone())
        .await
        .map_err(|e| SimError::setup(e.to_string()))?;
    let sip_addr = stack.contact_addr;
    let archive = Arc::new(Mutex::new(Archive::default()));
    let link = Link::new(opts.outage);
    let unrecorded = (!opts.outage_recorded).then_some(link);
    tokio::spawn(record(
        frames.subscribe(),
        archive.clone(),
        unrecorded,
        cancel.clone(),
    ));
    let device = Arc::new(Device {
        platform: SipAddr {
            r#type: Some(Transport::Udp),
            addr: opts.platform.into(),
        },
        opts,
        stack,
        frames,
        archive,
        link,
        sessions: Sessions::default(),
        sn: std::sync::atomic::AtomicU32::new(1),
    });
    tokio::spawn(device.clone().register_loop(cancel.clone()));
    let handler = device.clone();
    tokio::spawn(async move {
        while let Some(tx) = incoming.recv().await {
            let d = handler.clone();
            tokio::spawn(async move { d.handle(tx).await });
        }
    });
    Ok(GbDevice {
        sip_addr,
        cancel,
        pipeline,
    })
}

/// The device's line to the platform, and when it is down.
#[derive(Clone, Copy)]
struct Link {
    down: Option<(tokio::time::Instant, tokio::time::Instant)>,
}

impl Link {
    fn new(outage: Option<(u64, u64)>) -> Link {
        let now = tokio::time::Instant::now();
        Link {
            down: outage.map(|(start, duration)| {
                let from = now + Duration::from_secs(start);
                (from, from + Duration::from_secs(duration))
            }),
        }
    }

    fn is_down(&self) -> bool {
        let now = tokio::time::Instant::now();
        self.down.is_some_and(|(a, b)| now >= a && now < b)
    }
}

/// Keeps what the encoder makes, as an NVR records (except while `unrecorded` is down).
async fn record(
    mut frames: broadcast::Receiver<Arc<Au>>,
    archive: Arc<Mutex<Archive>>,
    unrecorded: Option<Link>,
    cancel: CancellationToken,
) {
    loop {
        let au = tokio::select! {
            r = frames.recv() => match r {
                Ok(au) => au,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = cancel.cancelled() => return,
        };
        if unrecorded.is_some_and(|l| l.is_down()) {
            continue;
        }
        lock(&archive).push(crate::time::now_ms(), au);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared encoder pipeline, its access units sent to `frames`.
fn encoder(
    video: &SimOptions,
    frames: broadcast::Sender<Arc<Au>>,
) -> Result<gst::Pipeline, SimError> {
    let launch = pipelines::shared_encoder(video)?;
    let pipeline = gst::parse::launch(&launch)
        .map_err(|source| SimError::Pipeline {
            what: "encoder",
            source,
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| SimError::setup("encoder description is not a pipeline"))?;
    let sink = pipeline
        .by_name(ENCODER_SINK)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| SimError::setup("encoder pipeline has no appsink"))?;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let Some(buffer) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let Ok(map) = buffer.map_readable() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let pts = buffer
                    .pts()
                    .map(|t| t.nseconds() * 9 / 100_000)
                    .unwrap_or(0);
                let au = Au {
                    data: Bytes::copy_from_slice(&map),
                    pts,
                    keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                };
                let _ = frames.send(Arc::new(au));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| SimError::setup("encoder pipeline refused to start"))?;
    Ok(pipeline)
}

impl Device {
    fn next_sn(&self) -> u32 {
        self.sn.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Registers (retrying every few seconds until accepted), re-registers before expiry, and sends
    /// keepalives in between.
    async fn register_loop(self: Arc<Self>, cancel: CancellationToken) {
        let credential = Credential {
            username: self.opts.device_id.clone(),
            password: self.opts.password.clone(),
            realm: None,
            auth_username: None,
        };
        let server = format!("sip:{}@{}", self.opts.platform_id, self.opts.platform);
        let Ok(server) = rsipstack::sip::Uri::try_from(server.as_str()) else {
            warn!(%server, "bad platform address");
            return;
        };
        loop {
            if self.link.is_down() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    _ = cancel.cancelled() => return,
                }
            }
            let mut reg = Registration::new(self.stack.inner().clone(), Some(credential.clone()));
            let accepted = match reg
                .register(server.clone(), Some(self.opts.expires_s))
                .await
            {
                Ok(resp) if resp.status_code == StatusCode::OK => true,
                Ok(resp) => {
                    warn!(status = %resp.status_code, "registration refused");
                    false
                }
                Err(e) => {
                    warn!(error = %e, "registration failed");
                    false
                }
            };
            if !accepted {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3)) => continue,
                    _ = cancel.cancelled() => return,
                }
            }
            info!(device = self.opts.device_id, "registered");
            let renew = Duration::from_secs(u64::from(self.opts.expires_s) * 2 / 3);
            let until = tokio::time::Instant::now() + renew;
            while tokio::time::Instant::now() < until {
                if self.link.is_down() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                if !self.keepalive().await {
                    break; // the platform forgot the registration: register again
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(self.opts.keepalive_s)) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }

    /// False when the platform refused it (it no longer knows the registration).
    async fn keepalive(&self) -> bool {
        let mut b = Body::new("Notify");
        b.field("CmdType", "Keepalive")
            .field("SN", &self.next_sn().to_string())
            .field("DeviceID", &self.opts.device_id)
            .field("Status", "OK");
        match self.message(b.finish("Notify")).await {
            Ok(()) => true,
            Err(sip::SipError::Status(code)) => {
                warn!(code, "keepalive refused");
                false
            }
            Err(e) => {
                warn!(error = %e, "keepalive not answered");
                true
            }
        }
    }

    async fn message(&self, body: Vec<u8>) -> Result<(), sip::SipError> {
        let domain = self
            .opts
            .platform_id
            .get(..10)
            .unwrap_or_default()
            .to_owned();
        let mut out = Outgoing::new(
            Method::Message,
            &self.opts.platform_id,
            self.opts.platform.to_string(),
            &self.opts.device_id,
            &domain,
        );
        out.body = Some((sip::MANSCDP, body));
        let req = self.stack.request(out)?;
        let resp = self
            .stack
            .send(req, self.platform.clone(), Duration::from_secs(5))
            .await?;
        match resp.status_code.code() {
            200..=299 => Ok(()),
            code => Err(sip::SipError::Status(code)),
        }
    }

    async fn handle(self: Arc<Self>, mut tx: Transaction) {
        if self.link.is_down() {
            return; // the line is down: the request never arrived
        }
        let result = match tx.original.method {
            Method::Message => self.query(&mut tx).await,
            Method::Invite => self.invite(&mut tx).await,
            Method::Bye => {
                let call = sip::call_id(&tx.original);
                if self.sessions.bye(&call) {
                    info!(call, "media session ended by the platform");
                }
                tx.reply(StatusCode::OK).await.map_err(Into::into)
            }
            Method::Info => self.info(&mut tx).await,
            _ => tx.reply(StatusCode::OK).await.map_err(Into::into),
        };
        if let Err(e) = result {
            warn!(error = %e, "request not handled");
        }
    }

    /// A DeviceControl: a PTZ command is logged (what a dome would do) and answered OK; a garbled one is
    /// answered with an error result.
    async fn control(&self, q: &xml::Element, sn: &str) -> Result<(), sip::SipError> {
        let channel = q.text_of("DeviceID").unwrap_or_default();
        let result = match q.text_of("PTZCmd").map(crate::gb28181::ptz::parse) {
            Some(Ok(cmd)) => {
                info!(channel, ?cmd, "ptz command");
                "OK"
            }
            Some(Err(e)) => {
                warn!(channel, error = %e, "ptz command refused");
                "ERROR"
            }
            None => "OK", // other controls (record, guard, reboot) are accepted and ignored
        };
        let mut b = Body::new("Response");
        b.field("CmdType", "DeviceControl")
            .field("SN", sn)
            .field("DeviceID", channel)
            .field("Result", result);
        self.message(b.finish("Response")).await
    }

    async fn query(&self, tx: &mut Transaction) -> Result<(), sip::SipError> {
        let Ok(q) = xml::parse(tx.original.body()) else {
            return Ok(tx.reply(StatusCode::BadRequest).await?);
        };
        tx.reply(StatusCode::OK).await?;
        let sn = q.text_of("SN").unwrap_or("0").to_owned();
        match q.text_of("CmdType") {
            Some("DeviceControl") => self.control(&q, &sn).await?,
            Some("Catalog") => {
                for page in self.catalog(&sn) {
                    self.message(page).await?;
                }
            }
            Some("RecordInfo") => {
                let channel = q.text_of("DeviceID").unwrap_or_default();
                let time = |n| {
                    q.text_of(n)
                        .and_then(|t| crate::time::gb_to_ms(t, gb_replay::UTC_OFFSET_MINUTES))
                };
                let asked = (
                    time("StartTime").unwrap_or(0),
                    time("EndTime").unwrap_or(i64::MAX),
                );
                let spans = lock(&self.archive).spans();
                for page in gb_replay::record_info(&sn, channel, &spans, asked) {
                    self.message(page).await?;
                }
            }
            Some("DeviceStatus") => {
                let mut b = Body::new("Response");
                let now =
                    crate::time::ms_to_gb(crate::time::now_ms(), gb_replay::UTC_OFFSET_MINUTES);
                b.field("CmdType", "DeviceStatus")
                    .field("SN", &sn)
                    .field("DeviceID", &self.opts.device_id)
                    .field("Result", "OK")
                    .field("Online", "ONLINE")
                    .field("Status", "OK")
                    .field("Encode", "ON")
                    .field("Record", "ON")
                    .field("DeviceTime", &now);
                self.message(b.finish("Response")).await?;
            }
            Some("DeviceInfo") => {
                let id = &self.opts.device_id;
                let body = xml::device_info(
                    &sn,
                    id,
                    "Vigil 模拟 NVR",
                    "SIM-GB",
                    Some(self.opts.channels),
                );
                self.message(body).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The catalog's MESSAGE bodies, `catalog_page` channels each.
    fn catalog(&self, sn: &str) -> Vec<Vec<u8>> {
        let ids: Vec<u32> = (1..=self.opts.channels).collect();
        let civil = self.opts.device_id.get(..6).unwrap_or("340200");
        ids.chunks(self.opts.catalog_page.max(1) as usize)
            .map(|page| {
                let mut b = Body::new("Response");
                b.field("CmdType", "Catalog")
                    .field("SN", sn)
                    .field("DeviceID", &self.opts.device_id)
                    .field("SumNum", &self.opts.channels.to_string())
                    .open("DeviceList", &[("Num", &page.len().to_string())]);
                for n in page {
                    b.open("Item", &[])
                        .field("DeviceID", &channel_id(&self.opts.device_id, *n))
                        .field("Name", &format!("通道 {n}"))
                        .field("Manufacturer", "Vigil")
                        .field("Model", "SIM-GB")
                        .field("CivilCode", civil)
                        .field("ParentID", &self.opts.device_id)
                        .field("Status", "ON")
                        .close("Item");
                }
                b.close("DeviceList");
                b.finish("Response")
            })
            .collect()
    }

    async fn invite(self: &Arc<Self>, tx: &mut Transaction) -> Result<(), sip::SipError> {
        let Some(answering) = accept_invite(tx, &self.stack, &self.opts.device_id).await? else {
            return Ok(());
        };
        let call = sip::call_id(&tx.original);
        let video_type = ps::video_type(matches!(self.opts.video.codec, SimCodec::H265));
        let target = answering.target.clone();
        let (cancel, steer) = self.sessions.open(&call, target.playback.is_some());
        if let (Some((start, end)), Some(steer)) = (target.playback, steer) {
            let channel = tx.original.uri.user().unwrap_or_default().to_owned();
            let clip = lock(&self.archive).range(start * 1000, end * 1000);
            info!(call, start, end, frames = clip.len(), addr = %target.addr, "playback session starts");
            let me = self.clone();
            tokio::spawn(async move {
                match gb_replay::replay(answering, clip, video_type, steer, cancel).await {
                    Ok(true) => {
                        let body = xml::end_of_file(me.next_sn(), &channel);
                        if let Err(e) = me.message(body).await {
                            warn!(error = %e, "end of playback not told");
                        }
                    }
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "playback session ended"),
                }
            });
            return Ok(());
        }
        info!(call, addr = %target.addr, tcp = target.tcp, ssrc = target.ssrc, "live session starts");
        let frames = self.frames.subscribe();
        let link = self.link;
        tokio::spawn(async move {
            if let Err(e) = send(answering, frames, video_type, link, cancel).await {
                warn!(error = %e, "live session ended");
            }
        });
        Ok(())
    }

    /// MANSRTSP in a playback dialog: pause, play, speed and seek.
    async fn info(&self, tx: &mut Transaction) -> Result<(), sip::SipError> {
        let call = sip::call_id(&tx.original);
        let status = match self.sessions.steer(&call, tx.original.body()) {
            Ok((cmd, status)) => {
                info!(call, ?cmd, %status, "playback steered");
                status
            }
            Err(e) => {
                warn!(call, error = %e, "MANSRTSP refused");
                StatusCode::BadRequest
            }
        };
        Ok(tx.reply(status).await?)
    }
}

/// A channel id of the device: its first 10 digits, type 131 (camera), its last 3 digits and a
/// 4-digit number, so that channels of simulated devices never collide.
pub fn channel_id(device_id: &str, n: u32) -> String {
    let prefix = device_id.get(..10).unwrap_or("3402000000");
    let suffix = device_id
        .get(device_id.len().saturating_sub(3)..)
        .unwrap_or("000");
    format!("{prefix}131{suffix}{:04}", n % 10_000)
}

/// Sends PS over RTP from the next keyframe on until cancelled.
async fn send(
    answering: Answering,
    mut frames: broadcast::Receiver<Arc<Au>>,
    video_type: u8,
    link: Link,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let mut sink = answering.open(video_type).await?;
    let mut started = false;
    loop {
        let au = tokio::select! {
            r = frames.recv() => match r {
                Ok(au) => au,
                Err(broadcast::error::RecvError::Lagged(_)) => { started = false; continue }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = cancel.cancelled() => return Ok(()),
        };
        if link.is_down() {
            // A line that drops ends the session, as a device that loses its platform does.
            info!("live session lost with the line");
            return Ok(());
        }
        started |= au.keyframe;
        if started {
            sink.frame(&au.data, au.pts, au.pts, au.keyframe).await?;
        }
    }
}

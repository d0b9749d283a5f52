//! The upward cascade: Vigil registers to superior platforms (`[[gb28181.upstream]]`) as a device,
//! answers their Catalog with the regions, sites and cameras the link shares, and their INVITEs by sending
//! the camera's live stream as PS over RTP to the address of their SDP.
//!
//! Invariants:
//! - Nothing crosses a region: the link's scope (its `region_codes` and their subregions) is resolved at
//!   the time of each catalog answer and each INVITE, so a region removed from the tree or a camera moved
//!   out is no longer shared from that moment; an INVITE for a camera outside it is answered 404.
//! - Registration is retried at most 30 s apart until accepted, renewed at two thirds of its expiry, and
//!   redone when the superior refuses a keepalive.
//! - Every upward view is audited (`live.start`/`live.stop`, actor `gb28181:NAME`, the camera's region).
//! - Upward viewers are consumers of the camera's hub stream like any viewer: one ingest per camera
//!   whatever their number, and a slow superior skips to the next keyframe, never stalls the camera.

use super::archive;
use super::mansrtsp::{self, Command};
use super::send::{Answering, PsSink, Target};
use super::sip::{self, Outgoing, Stack};
use super::xml::{self, Body};
use crate::config::UpstreamConfig;
use crate::db::{self, Pool};
use crate::hub::{Hub, Received, StreamKey, StreamKind, Timeline};
use crate::ingest::annexb::{parameter_sets, to_annex_b};
use crate::media::ps;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode, Transport};
use rsipstack::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Catalog items per MESSAGE.
const PAGE: usize = 8;

/// One superior platform and the state of Vigil's registration to it.
pub struct Link {
    pub cfg: UpstreamConfig,
    pub state: Mutex<LinkState>,
}

/// What the console shows of a link: whether the superior accepted Vigil, since when, and what went
/// wrong last.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LinkState {
    pub registered: bool,
    /// Unix ms of the last accepted registration (or renewal) and of the last answered keepalive.
    pub registered_at: Option<i64>,
    pub last_keepalive: Option<i64>,
    pub error: Option<String>,
}

impl Link {
    fn set(&self, f: impl FnOnce(&mut LinkState)) {
        f(&mut lock(&self.state));
    }

    pub fn state(&self) -> LinkState {
        lock(&self.state).clone()
    }
}

/// Every superior, and what answering them needs.
pub struct Upstreams {
    pub links: Vec<Arc<Link>>,
    stack: Arc<Stack>,
    pool: Pool,
    hub: Arc<Hub>,
    audit: Option<crate::audit::Log>,
    online: Arc<dyn Fn(i64) -> bool + Send + Sync>,
    footage: crate::record::footage::Footage,
    utc_offset_minutes: i32,
    sessions: Mutex<HashMap<String, Session>>,
}

/// A superior's media session: its end, and for a playback its MANSRTSP steering.
struct Session {
    cancel: CancellationToken,
    control: Option<mpsc::Sender<Command>>,
}

impl Upstreams {
    pub fn new(
        cfgs: &[UpstreamConfig],
        stack: Arc<Stack>,
        pool: Pool,
        shared: super::Shared,
        utc_offset_minutes: i32,
    ) -> Upstreams {
        let links = cfgs
            .iter()
            .map(|cfg| {
                Arc::new(Link {
                    cfg: cfg.clone(),
                    state: Mutex::new(LinkState::default()),
                })
            })
            .collect();
        Upstreams {
            links,
            stack,
            pool,
            hub: shared.hub,
            audit: shared.audit,
            online: shared.online,
            footage: shared.footage,
            utc_offset_minutes,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the registration loop of every link.
    pub fn start(self: &Arc<Self>) {
        for link in &self.links {
            tokio::spawn(self.clone().register_loop(link.clone()));
        }
    }

    /// The link a request comes from (its From user is the superior's id), if any.
    /// Only from the superior's own address: anyone can write its id in a From header, and an INVITE
    /// in its name would send a camera's video wherever the SDP says.
    pub fn link_of(&self, req: &rsipstack::sip::Request) -> Option<Arc<Link>> {
        let from = sip::from_user(req)?;
        let link = self.links.iter().find(|l| l.cfg.server_id == from)?;
        let server = SipAddr {
            r#type: None,
            addr: link.cfg.server.into(),
        };
        if !sip::from_host(req, &server) {
            warn!(
                link = link.cfg.name,
                "a request in the superior's name from another address refused"
            );
            return None;
        }
        Some(link.clone())
    }

    async fn register_loop(self: Arc<Self>, link: Arc<Link>) {
        let cfg = &link.cfg;
        let credential = Credential {
            username: cfg.local_id.clone(),
            password: cfg.password.clone(),
            realm: None,
            auth_username: None,
        };
        let Ok(server) = sip::sip_uri(&cfg.server_id, &cfg.server.to_string()) else {
            warn!(link = cfg.name, "bad superior address");
            return;
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let mut reg = Registration::new(self.stack.inner().clone(), Some(credential.clone()));
            match reg.register(server.clone(), Some(cfg.expires_s)).await {
                Ok(r) if r.status_code == StatusCode::OK => {
                    info!(link = cfg.name, "registered to the superior platform");
                    link.set(|s| {
                        s.registered = true;
                        s.registered_at = Some(crate::time::now_ms());
                        s.error = None;
                    });
                    backoff = Duration::from_secs(1);
                    self.keep_alive(&link).await;
                    link.set(|s| s.registered = false);
                }
                Ok(r) => {
                    warn!(link = cfg.name, status = %r.status_code, "superior refused the registration");
                    link.set(|s| {
                        s.error = Some(format!("registration refused: {}", r.status_code))
                    });
                }
                Err(e) => {
                    warn!(link = cfg.name, error = %e, "registration to the superior failed");
                    link.set(|s| s.error = Some(format!("registration failed: {e}")));
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Keepalives until the registration needs renewing, or the superior refuses or stops answering.
    async fn keep_alive(&self, link: &Link) {
        let cfg = &link.cfg;
        let until =
            tokio::time::Instant::now() + Duration::from_secs(u64::from(cfg.expires_s) * 2 / 3);
        let mut missed = 0;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(cfg.keepalive_s)).await;
            let mut b = Body::new("Notify");
            b.field("CmdType", "Keepalive")
                .field("SN", &sn().to_string())
                .field("DeviceID", &cfg.local_id)
                .field("Status", "OK");
            match self.message(link, b.finish("Notify")).await {
                Ok(()) => {
                    missed = 0;
                    link.set(|s| s.last_keepalive = Some(crate::time::now_ms()));
                }
                Err(sip::SipError::Status(code)) => {
                    link.set(|s| s.error = Some(format!("keepalive refused: {code}")));
                    warn!(
                        link = cfg.name,
                        code, "superior refused a keepalive; registering again"
                    );
                    return;
                }
                Err(e) => {
                    missed += 1;
                    warn!(link = cfg.name, error = %e, missed, "keepalive not answered");
                    if missed >= 3 {
                        return;
                    }
                }
            }
        }
    }

    async fn message(&self, link: &Link, body: Vec<u8>) -> Result<(), sip::SipError> {
        let cfg = &link.cfg;
        let mut out = Outgoing::new(
            Method::Message,
            &cfg.server_id,
            cfg.server.to_string(),
            &cfg.local_id,
            &cfg.domain,
        );
        out.body = Some((sip::MANSCDP, body));
        let req = self.stack.request(out)?;
        let dest = SipAddr {
            r#type: Some(Transport::Udp),
            addr: cfg.server.into(),
        };
        let resp = self.stack.send(req, dest, Duration::from_secs(5)).await?;
        match resp.status_code.code() {
            200..=299 => Ok(()),
            code => Err(sip::SipError::Status(code)),
        }
    }

    /// Handles a request of a superior.
    pub async fn handle(self: &Arc<Self>, link: Arc<Link>, mut tx: Transaction) {
        let result = match tx.original.method {
            Method::Message => self.query(&link, &mut tx).await,
            Method::Invite => self.invite(&link, &mut tx).await,
            Method::Bye => {
                let call = sip::call_id(&tx.original);
                if let Some(s) = lock(&self.sessions).remove(&call) {
                    s.cancel.cancel();
                }
                tx.reply(StatusCode::OK).await.map_err(Into::into)
            }
            Method::Info => self.info(&link, &mut tx).await,
            _ => tx.reply(StatusCode::OK).await.map_err(Into::into),
        };
        if let Err(e) = result {
            warn!(link = link.cfg.name, error = %e, "superior's request not handled");
        }
    }

    async fn query(&self, link: &Link, tx: &mut Transaction) -> Result<(), sip::SipError> {
        let Ok(q) = xml::parse(tx.original.body()) else {
            return Ok(tx.reply(StatusCode::BadRequest).await?);
        };
        tx.reply(StatusCode::OK).await?;
        let sn = q.text_of("SN").unwrap_or("0").to_owned();
        match q.text_of("CmdType") {
            Some("Catalog") => {
                let items = match self.catalog(link).await {
                    Ok(items) => items,
                    Err(e) => {
                        warn!(link = link.cfg.name, error = %e, "catalog not built");
                        return Ok(());
                    }
                };
                let sum = items.len().to_string();
                for page in items.chunks(PAGE) {
                    let mut b = Body::new("Response");
                    b.field("CmdType", "Catalog")
                        .field("SN", &sn)
                        .field("DeviceID", &link.cfg.local_id)
                        .field("SumNum", &sum);
                    b.open("DeviceList", &[("Num", &page.len().to_string())]);
                    for item in page {
                        item.write(&mut b);
                    }
                    b.close("DeviceList");
                    self.message(link, b.finish("Response")).await?;
                }
            }
            Some("DeviceInfo") => {
                let body =
                    xml::device_info(&sn, &link.cfg.local_id, "Vigil", "Vigil platform", None);
                self.message(link, body).await?;
            }
            Some("RecordInfo") => {
                for page in self.record_info(link, &q, &sn).await {
                    self.message(link, page).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The regions, sites and cameras the link shares, as of now.
    async fn catalog(&self, link: &Link) -> Result<Vec<Item>, db::DbError> {
        let scope: std::collections::BTreeSet<String> = if link.cfg.region_codes.is_empty() {
            Default::default()
        } else {
            db::regions::subtree(&self.pool, &link.cfg.region_codes)
                .await?
                .into_iter()
                .collect()
        };
        let mut items = Vec::new();
        for r in db::regions::list(&self.pool)
            .await?
            .into_iter()
            .filter(|r| scope.contains(&r.code))
        {
            let parent = r
                .parent_code
                .filter(|p| scope.contains(p))
                .unwrap_or_else(|| link.cfg.local_id.clone());
            items.push(Item {
                id: r.code.clone(),
                name: r.name,
                civil: r.code,
                parent,
                status: None,
            });
        }
        let sites = db::sites::list(&self.pool).await?;
        for s in sites.iter().filter(|s| scope.contains(&s.region_code)) {
            let id = site_id(&s.region_code, s.id);
            items.push(Item {
                id,
                name: s.name.clone(),
                civil: s.region_code.clone(),
                parent: s.region_code.clone(),
                status: None,
            });
        }
        for c in db::cameras::list(&self.pool)
            .await?
            .into_iter()
            .filter(|c| scope.contains(&c.region_code))
        {
            let on = (self.online)(c.id);
            items.push(Item {
                id: camera_id(&c.region_code, c.id),
                parent: site_id(&c.region_code, c.site_id),
                civil: c.region_code,
                name: c.name,
                status: Some(if on { "ON" } else { "OFF" }),
            });
        }
        Ok(items)
    }

    async fn invite(
        self: &Arc<Self>,
        link: &Link,
        tx: &mut Transaction,
    ) -> Result<(), sip::SipError> {
        let req = &tx.original;
        let channel = req.to_header().ok().and_then(|t| {
            use rsipstack::sip::prelude::ToTypedHeader;
            t.typed().ok()?.uri.auth.map(|a| a.user)
        });
        let camera = match channel.as_deref().and_then(camera_of) {
            Some(id) => self.shared_camera(link, id).await,
            None => None,
        };
        let Some(camera) = camera else {
            warn!(
                link = link.cfg.name,
                channel, "superior asked for a camera it is not shared"
            );
            return Ok(tx.reply(StatusCode::NotFound).await?);
        };
        let Some(target) = Target::parse(&String::from_utf8_lossy(req.body())) else {
            return Ok(tx.reply(StatusCode::NotAcceptableHere).await?);
        };
        let call = sip::call_id(req);
        let local = self.stack.contact_addr.ip();
        let answering = match Answering::new(target, &link.cfg.local_id, local).await {
            Ok(a) => a,
            Err(e) => {
                warn!(link = link.cfg.name, error = %e, "no media port for the superior");
                return Ok(tx.reply(StatusCode::ServerInternalError).await?);
            }
        };
        let answer = answering.answer().to_owned();
        let target = answering.target.clone();
        let contact = format!("<sip:{}@{}>", link.cfg.local_id, self.stack.contact_addr);
        let headers = vec![
            Header::ContentType(sip::SDP.into()),
            Header::Contact(contact.into()),
        ];
        tx.reply_with(StatusCode::OK, headers, Some(answer.into_bytes()))
            .await?;
        let cancel = CancellationToken::new();
        if let Some(range) = target.playback {
            let (control, steer) = mpsc::channel(8);
            let session = Session {
                cancel: cancel.clone(),
                control: Some(control),
            };
            lock(&self.sessions).insert(call.clone(), session);
            let channel = channel.unwrap_or_default();
            self.clone().play_back(
                link,
                camera,
                channel,
                range,
                answering,
                (steer, cancel),
                call,
            );
            return Ok(());
        }
        let session = Session {
            cancel: cancel.clone(),
            control: None,
        };
        lock(&self.sessions).insert(call.clone(), session);
        info!(link = link.cfg.name, camera = camera.id, addr = %target.addr, tcp = target.tcp, "superior watches a camera");
        let me = self.clone();
        let name = link.cfg.name.clone();
        tokio::spawn(async move {
            me.audit(&name, "live.start", &camera).await;
            let key = StreamKey {
                camera_id: camera.id,
                kind: StreamKind::Main,
            };
            if let Err(e) = send(me.hub.clone(), key, answering, cancel).await {
                warn!(link = name, camera = camera.id, error = %e, "upward stream ended");
            }
            lock(&me.sessions).remove(&call);
            me.audit(&name, "live.stop", &camera).await;
        });
        Ok(())
    }

    /// Serves a superior's Playback INVITE from the camera's recordings, until its end or BYE.
    #[allow(clippy::too_many_arguments)]
    fn play_back(
        self: Arc<Self>,
        link: &Link,
        camera: db::cameras::Camera,
        channel: String,
        range: (i64, i64),
        answering: Answering,
        (steer, cancel): (mpsc::Receiver<Command>, CancellationToken),
        call: String,
    ) {
        let name = link.cfg.name.clone();
        info!(
            link = name,
            camera = camera.id,
            start = range.0,
            end = range.1,
            "superior plays recordings back"
        );
        tokio::spawn(async move {
            self.audit(&name, "playback", &camera).await;
            let footage = self.footage.clone();
            let ended = cancel.clone();
            let r = archive::replay(
                &self.pool, footage, camera.id, range, answering, steer, cancel,
            )
            .await;
            match r {
                Ok(true) => {
                    let body = xml::end_of_file(sn(), &channel);
                    if let Some(link) = self.links.iter().find(|l| l.cfg.name == name) {
                        if let Err(e) = self.message(link, body).await {
                            warn!(link = name, error = %e, "end of playback not told");
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(link = name, camera = camera.id, error = %e, "upward playback ended")
                }
            }
            // The session stays for the superior's BYE, a minute at most.
            let _ = tokio::time::timeout(Duration::from_secs(60), ended.cancelled()).await;
            lock(&self.sessions).remove(&call);
        });
    }

    /// A superior's MANSRTSP for one of its playback sessions.
    async fn info(&self, link: &Link, tx: &mut Transaction) -> Result<(), sip::SipError> {
        let call = sip::call_id(&tx.original);
        let cmd = match mansrtsp::parse(tx.original.body()) {
            Ok(c) => c,
            Err(e) => {
                warn!(link = link.cfg.name, error = %e, "MANSRTSP refused");
                return Ok(tx.reply(StatusCode::BadRequest).await?);
            }
        };
        let control = lock(&self.sessions)
            .get(&call)
            .and_then(|s| s.control.clone());
        let status = match control {
            Some(c) if c.try_send(cmd).is_ok() => StatusCode::OK,
            Some(_) => StatusCode::ServiceUnavailable,
            None => StatusCode::CallTransactionDoesNotExist,
        };
        Ok(tx.reply(status).await?)
    }

    /// The RecordInfo answer pages for a shared camera (an empty answer for anything else).
    async fn record_info(&self, link: &Link, q: &xml::Element, sn: &str) -> Vec<Vec<u8>> {
        let channel = q.text_of("DeviceID").unwrap_or_default();
        let offset = self.utc_offset_minutes;
        let time = |n| q.text_of(n).and_then(|t| crate::time::gb_to_ms(t, offset));
        let camera = match camera_of(channel) {
            Some(id) => self.shared_camera(link, id).await,
            None => None,
        };
        let (Some(camera), Some(start), Some(end)) = (camera, time("StartTime"), time("EndTime"))
        else {
            warn!(
                link = link.cfg.name,
                channel, "RecordInfo for no shared camera or without a range"
            );
            return archive::record_info(&self.pool, 0, channel, sn, (0, 0), offset)
                .await
                .unwrap_or_default();
        };
        match archive::record_info(&self.pool, camera.id, channel, sn, (start, end), offset).await {
            Ok(pages) => pages,
            Err(e) => {
                warn!(link = link.cfg.name, error = %e, "RecordInfo not answered");
                Vec::new()
            }
        }
    }

    /// The camera, when it exists and its region is shared by the link now.
    async fn shared_camera(&self, link: &Link, id: i64) -> Option<db::cameras::Camera> {
        let cam = db::cameras::get(&self.pool, id).await.ok()?;
        if link.cfg.region_codes.is_empty() {
            return None;
        }
        let scope = db::regions::subtree(&self.pool, &link.cfg.region_codes)
            .await
            .ok()?;
        scope.contains(&cam.region_code).then_some(cam)
    }

    async fn audit(&self, link: &str, action: &str, camera: &db::cameras::Camera) {
        let Some(log) = &self.audit else { return };
        let entry = crate::audit::Entry {
            actor: format!("gb28181:{link}"),
            role: None,
            action: action.to_owned(),
            target: Some(if action == "playback" {
                format!("/cameras/{}/video.mp4", camera.id)
            } else {
                format!("/cameras/{}/live?stream=main", camera.id)
            }),
            region_code: Some(camera.region_code.clone()),
            status: 200,
            client: None,
            detail: Some("GB/T 28181 superior platform".into()),
        };
        if let Err(e) = log.append(&entry).await {
            tracing::error!(camera = camera.id, error = %e, "audit of an upward view failed");
        }
    }
}

/// Sends the camera's live stream as PS over RTP until cancelled or the receiver goes away.
async fn send(
    hub: Arc<Hub>,
    key: StreamKey,
    answering: Answering,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let (gop, mut sub) = hub.stream(key).subscribe();
    let mut pending = Some(answering);
    let mut sink: Option<PsSink> = None;
    let mut timeline = Timeline::default();
    let mut buf = Vec::new();
    let mut backlog = gop.into_iter();
    loop {
        let frame = match backlog.next() {
            Some(f) => f,
            None => tokio::select! {
                r = sub.recv() => match r {
                    Received::Frame(f) => f,
                    Received::Skipped { .. } => continue,
                    Received::Closed => return Ok(()),
                },
                _ = cancel.cancelled() => return Ok(()),
            },
        };
        let h265 = frame.params.is_h265();
        if let Some(answering) = pending.take() {
            let video_type = if h265 {
                ps::STREAM_TYPE_H265
            } else {
                ps::STREAM_TYPE_H264
            };
            sink = Some(answering.open(video_type).await?);
        }
        let (dts, _) = timeline.place(&frame);
        buf.clear();
        let sets = if frame.keyframe {
            parameter_sets(&frame.params.extra_data, h265)
        } else {
            Vec::new()
        };
        to_annex_b(&mut buf, &sets, &frame.data);
        let pts = dts + u64::from(frame.composition_offset);
        if let Some(s) = sink.as_mut() {
            s.frame(&buf, pts, dts, frame.keyframe).await?;
        }
    }
}

/// One catalog item.
struct Item {
    id: String,
    name: String,
    civil: String,
    parent: String,
    /// Cameras only: ON or OFF.
    status: Option<&'static str>,
}

impl Item {
    fn write(&self, b: &mut Body) {
        b.open("Item", &[])
            .field("DeviceID", &self.id)
            .field("Name", &self.name);
        if let Some(status) = self.status {
            b.field("Manufacturer", "Vigil")
                .field("Model", "camera")
                .field("Owner", "Vigil");
            b.field("CivilCode", &self.civil)
                .field("Parental", "0")
                .field("ParentID", &self.parent);
            b.field("SafetyWay", "0")
                .field("RegisterWay", "1")
                .field("Secrecy", "0")
                .field("Status", status);
        } else {
            b.field("CivilCode", &self.civil)
                .field("ParentID", &self.parent)
                .field("Parental", "1");
        }
        b.close("Item");
    }
}

/// Six digits of a region code (GB/T 2260), padded or cut.
fn civil6(region: &str) -> String {
    format!(
        "{:0<6}",
        region
            .chars()
            .filter(char::is_ascii_digit)
            .take(6)
            .collect::<String>()
    )
}

/// A site's 20-digit id: its region, 0000, type 216 (virtual organisation), the site id.
pub fn site_id(region: &str, site: i64) -> String {
    format!(
        "{}0000216{:07}",
        civil6(region),
        site.rem_euclid(10_000_000)
    )
}

/// A camera's 20-digit id: its region, 0000, type 131 (camera), the camera id.
pub fn camera_id(region: &str, camera: i64) -> String {
    format!(
        "{}0000131{:07}",
        civil6(region),
        camera.rem_euclid(10_000_000)
    )
}

/// The camera id in a camera's 20-digit id.
fn camera_of(channel: &str) -> Option<i64> {
    if channel.len() != 20 || channel.get(10..13)? != "131" {
        return None;
    }
    channel.get(13..)?.parse().ok()
}

fn sn() -> u32 {
    static SN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    SN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_sites_and_cameras() {
        assert_eq!(camera_id("360702", 42), "36070200001310000042");
        assert_eq!(site_id("3607", 3), "36070000002160000003");
        assert_eq!(camera_of("36070200001310000042"), Some(42));
        assert_eq!(camera_of("36070200002160000042"), None);
        assert_eq!(camera_of("3607"), None);
    }
}

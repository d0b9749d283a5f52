//! The upward cascade: Vigil registers to superior platforms (`[[gb28181.upstream]]`) as a device,
//! answers their Catalog with the regions, sites and cameras the link shares (`catalog`), their live
//! INVITEs by sending the camera's stream as PS over RTP to the address of their SDP, and their RecordInfo
//! and playback INVITEs from Vigil's recordings (`serve`, `super::archive`).
//!
//! Invariants:
//! - Nothing crosses a region: the link's scope (its `region_codes` and their subregions) is resolved at
//!   the time of each catalog answer and each INVITE, so a region removed from the tree or a camera moved
//!   out is no longer shared from that moment; an INVITE for a camera outside it is answered 404.
//! - Registration is retried at most 30 s apart until accepted, renewed at two thirds of its expiry, and
//!   redone when the superior refuses a keepalive.
//! - Every upward view is audited (`live.start`/`live.stop`, `playback`; actor `gb28181:NAME`, the camera's
//!   region).
//! - Upward viewers are consumers of the camera's hub stream like any viewer: one ingest per camera
//!   whatever their number, and a slow superior skips to the next keyframe, never stalls the camera.

mod catalog;
mod serve;

use super::send::Sessions;
use super::sip::{self, Outgoing, Stack};
use super::xml::{self, Body};
use crate::config::UpstreamConfig;
use crate::db::{self, Pool};
use crate::hub::Hub;
use catalog::camera_of;
pub use catalog::{camera_id, site_id};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{Method, StatusCode, Transport};
use rsipstack::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
    sessions: Sessions,
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
            sessions: Sessions::default(),
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
                self.sessions.bye(&sip::call_id(&tx.original));
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
            Some("Catalog") => match self.catalog_pages(link, &sn).await {
                Ok(pages) => {
                    for page in pages {
                        self.message(link, page).await?;
                    }
                }
                Err(e) => warn!(link = link.cfg.name, error = %e, "catalog not built"),
            },
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

fn sn() -> u32 {
    static SN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    SN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

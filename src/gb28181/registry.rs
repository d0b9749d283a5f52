//! The platform's side of registration: REGISTER with digest authentication and expiry, keepalives
//! (offline after three missed), and the Catalog and DeviceInfo queries sent to a device when it comes
//! online, their (paged) answers stored in `db::gb`.
//!
//! Invariants:
//! - A device is only known once it registered with the right digest (when a password is set); a
//!   MESSAGE from an unregistered device is refused with 403 and changes nothing.
//! - Memory is bounded whatever devices send: at most [`MAX_DEVICES`] registrations, [`MAX_NONCES`]
//!   outstanding challenges, [`MAX_CHANNELS`] catalog items per device.
//! - A request another device's id cannot act for it: the device id is the From user of a
//!   digest-checked registration, and later requests are tied to it by that id and the address the
//!   registration came from.

use super::sip::{self, Stack};
use super::xml::{self, Element};
use crate::config::Gb28181Config;
use crate::db::{self, gb::Channel, Pool};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use rsipstack::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub const MAX_DEVICES: usize = 10_000;
pub const MAX_NONCES: usize = 4_096;
pub const MAX_CHANNELS: usize = 4_096;
/// How long a digest challenge may be answered.
const NONCE_LIFE: Duration = Duration::from_secs(300);

/// A registered device as the SIP side knows it.
#[derive(Clone, Debug)]
pub struct Session {
    pub addr: SipAddr,
    pub expires: Instant,
    pub last_seen: Instant,
    /// What the device last answered to DeviceStatus.
    pub status: Option<DeviceStatus>,
}

/// A DeviceStatus answer (GB/T 28181-2016 §A.2.6.7), as the device says it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DeviceStatus {
    /// `ONLINE` / `OFFLINE`.
    pub online: String,
    /// `OK` or `ERROR`: the device's own health.
    pub status: String,
    pub encode: String,
    pub record: String,
    pub device_time: String,
    /// The device's clock minus the platform's when it answered, in seconds (footage times on its disk
    /// are off by this much).
    pub clock_skew_s: Option<i64>,
}

/// A catalog being received (its pages arrive as separate MESSAGEs).
#[derive(Default)]
struct Catalog {
    sum: usize,
    /// Items received, channels or not (regions and organisations of a cascaded catalog count too).
    received: usize,
    items: Vec<Channel>,
}

pub struct Registry {
    pub cfg: Gb28181Config,
    pub pool: Pool,
    pub stack: Arc<Stack>,
    /// The superior platforms, whose requests are theirs to answer.
    pub upstream: std::sync::OnceLock<Arc<super::upstream::Upstreams>>,
    sessions: Mutex<HashMap<String, Session>>,
    nonces: Mutex<HashMap<String, Instant>>,
    catalogs: Mutex<HashMap<String, Catalog>>,
    sn: AtomicU32,
    /// Media dialogs by Call-ID: a BYE from the device cancels its stream's run.
    pub dialogs: Mutex<HashMap<String, tokio_util::sync::CancellationToken>>,
    /// Queries waiting for their answers (RecordInfo), by device and SN.
    waiters: Mutex<HashMap<(String, String), mpsc::Sender<Element>>>,
    /// Playback sessions by device and channel: the device's "end of file" (MediaStatus 121) ends them.
    playbacks: Mutex<Vec<(String, String, CancellationToken)>>,
}

/// At most this many queries wait for answers at once (each holds a small channel).
pub const MAX_WAITERS: usize = 1_024;

impl Registry {
    pub fn new(cfg: Gb28181Config, pool: Pool, stack: Arc<Stack>) -> Registry {
        Registry {
            cfg,
            pool,
            stack,
            upstream: std::sync::OnceLock::new(),
            sessions: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
            catalogs: Mutex::new(HashMap::new()),
            sn: AtomicU32::new(1),
            dialogs: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            playbacks: Mutex::new(Vec::new()),
        }
    }

    pub fn session(&self, device: &str) -> Option<Session> {
        lock(&self.sessions).get(device).cloned()
    }

    pub fn next_sn(&self) -> u32 {
        self.sn.fetch_add(1, Ordering::Relaxed)
    }

    /// Handles one incoming request (other than those of media dialogs, see `stream`).
    pub async fn handle(self: &Arc<Self>, mut tx: Transaction) {
        if let Some(up) = self.upstream.get() {
            if let Some(link) = up.link_of(&tx.original) {
                return up.handle(link, tx).await;
            }
        }
        let result = match tx.original.method {
            Method::Register => self.register(&mut tx).await,
            Method::Message => self.message(&mut tx).await,
            // Devices do not call the platform; refusing at once keeps an INVITE flood cheap.
            Method::Invite | Method::Subscribe | Method::Notify => {
                tx.reply(StatusCode::Forbidden).await.map_err(Into::into)
            }
            Method::Options => tx.reply(StatusCode::OK).await.map_err(Into::into),
            Method::Bye => {
                let call = sip::call_id(&tx.original);
                let known = lock(&self.dialogs).remove(&call);
                let status = match known {
                    Some(cancel) => {
                        info!(call, "device ended a media session (BYE)");
                        cancel.cancel();
                        StatusCode::OK
                    }
                    None => StatusCode::CallTransactionDoesNotExist,
                };
                tx.reply(status).await.map_err(Into::into)
            }
            _ => tx
                .reply(StatusCode::MethodNotAllowed)
                .await
                .map_err(Into::into),
        };
        if let Err(e) = result {
            warn!(error = %e, method = %tx.original.method, "SIP request not handled");
        }
    }

    async fn register(self: &Arc<Self>, tx: &mut Transaction) -> Result<(), sip::SipError> {
        let req = &tx.original;
        let Some(device) = sip::from_user(req).filter(|d| valid_id(d)) else {
            return Ok(tx.reply(StatusCode::BadRequest).await?);
        };
        if !self.cfg.password.is_empty() && !self.digest_ok(req) {
            let nonce = self.new_nonce();
            let challenge = format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5",
                self.cfg.domain
            );
            if req.authorization_header().is_some() {
                warn!(device, "REGISTER with a wrong digest refused");
            }
            let h = Header::WwwAuthenticate(challenge.into());
            return Ok(tx
                .reply_with(StatusCode::Unauthorized, vec![h], None)
                .await?);
        }
        let asked = req
            .expires_header()
            .and_then(|e| e.value().trim().parse::<u32>().ok())
            .unwrap_or(3600);
        let addr = sip::peer_addr(req)?;
        if asked == 0 {
            tx.reply(StatusCode::OK).await?;
            info!(device, "device unregistered");
            self.set_offline(&device).await;
            return Ok(());
        }
        let expires = asked.min(self.cfg.max_expires_s);
        let Some(known) = self.remember(&device, &addr, expires) else {
            return Ok(tx.reply(StatusCode::ServiceUnavailable).await?);
        };
        let headers = vec![
            Header::Expires(expires.to_string().into()),
            Header::Date(
                crate::time::ms_to_gb(crate::time::now_ms(), self.cfg.utc_offset_minutes).into(),
            ),
        ];
        tx.reply_with(StatusCode::OK, headers, None).await?;
        let transport = addr.r#type.unwrap_or_default().to_string().to_lowercase();
        if let Err(e) = db::gb::registered(
            &self.pool,
            &device,
            &transport,
            &addr.addr.to_string(),
            i64::from(expires) * 1000,
        )
        .await
        {
            warn!(device, error = %e, "registration not stored");
        }
        if !known {
            info!(device, addr = %addr, "device registered");
        }
        // Asked at every registration and its renewals, so that channels added since are learnt.
        let me = self.clone();
        tokio::spawn(async move { me.query_device(&device).await });
        Ok(())
    }

    /// Stores the registration; whether the device was registered already, `None` when the table of
    /// registrations is full.
    fn remember(&self, device: &str, addr: &SipAddr, expires: u32) -> Option<bool> {
        let mut sessions = lock(&self.sessions);
        if !sessions.contains_key(device) && sessions.len() >= MAX_DEVICES {
            return None;
        }
        let now = Instant::now();
        let status = sessions.get(device).and_then(|s| s.status.clone());
        let session = Session {
            addr: addr.clone(),
            expires: now + Duration::from_secs(u64::from(expires)),
            last_seen: now,
            status,
        };
        Some(sessions.insert(device.to_owned(), session).is_some())
    }

    fn digest_ok(&self, req: &Request) -> bool {
        let Some(raw) = req.authorization_header() else {
            return false;
        };
        let Ok(auth) = rsipstack::sip::typed::Authorization::parse(raw.value()) else {
            return false;
        };
        let fresh = lock(&self.nonces)
            .get(&auth.nonce)
            .is_some_and(|t| t.elapsed() < NONCE_LIFE);
        fresh
            && auth.realm == self.cfg.domain
            && rsipstack::dialog::authenticate::verify_digest(
                &auth,
                &self.cfg.password,
                &Method::Register,
                raw.value(),
            )
    }

    fn new_nonce(&self) -> String {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let mut nonces = lock(&self.nonces);
        if nonces.len() >= MAX_NONCES {
            nonces.retain(|_, t| t.elapsed() < NONCE_LIFE);
            if nonces.len() >= MAX_NONCES {
                // A flood of REGISTERs without answers: forget the oldest half.
                let mut ages: Vec<Instant> = nonces.values().copied().collect();
                ages.sort();
                let cut = ages[ages.len() / 2];
                nonces.retain(|_, t| *t > cut);
            }
        }
        nonces.insert(nonce.clone(), Instant::now());
        nonce
    }

    async fn message(self: &Arc<Self>, tx: &mut Transaction) -> Result<(), sip::SipError> {
        let req = &tx.original;
        let device = sip::from_user(req).unwrap_or_default();
        // Registered, and from where it registered: a device id in a From header proves nothing alone.
        let registered = lock(&self.sessions)
            .get(&device)
            .is_some_and(|s| sip::from_host(req, &s.addr));
        if !registered {
            return Ok(tx.reply(StatusCode::Forbidden).await?);
        }
        let body = match xml::parse(req.body()) {
            Ok(b) => b,
            Err(e) => {
                warn!(device, error = %e, "MANSCDP body refused");
                return Ok(tx.reply(StatusCode::BadRequest).await?);
            }
        };
        tx.reply(StatusCode::OK).await?;
        if let Some(s) = lock(&self.sessions).get_mut(&device) {
            s.last_seen = Instant::now();
        }
        let cmd = body.text_of("CmdType").unwrap_or_default().to_owned();
        match (body.name.as_str(), cmd.as_str()) {
            ("Notify", "Keepalive") => {
                if let Err(e) = db::gb::keepalive(&self.pool, &device).await {
                    warn!(device, error = %e, "keepalive not stored");
                }
            }
            ("Response", "Catalog") => self.catalog_page(&device, &body).await,
            ("Response", "RecordInfo") => self.answer(&device, body),
            ("Response", "DeviceStatus") => self.device_status(&device, &body),
            ("Notify", "MediaStatus") if body.text_of("NotifyType") == Some("121") => {
                self.end_of_file(&device, body.text_of("DeviceID").unwrap_or_default());
            }
            ("Response", "DeviceInfo") => {
                let t = |n| body.text_of(n).unwrap_or_default();
                let r = db::gb::set_info(
                    &self.pool,
                    &device,
                    t("DeviceName"),
                    t("Manufacturer"),
                    t("Model"),
                    t("Firmware"),
                )
                .await;
                if let Err(e) = r {
                    warn!(device, error = %e, "device info not stored");
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn catalog_page(&self, device: &str, body: &Element) {
        let sum: usize = body
            .text_of("SumNum")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
            .min(MAX_CHANNELS);
        let all: Vec<&Element> = body
            .child("DeviceList")
            .map(|l| l.children_named("Item").collect())
            .unwrap_or_default();
        let received = all.len();
        let items: Vec<Channel> = all.into_iter().filter_map(|i| channel(device, i)).collect();
        let complete = {
            let mut catalogs = lock(&self.catalogs);
            let c = catalogs.entry(device.to_owned()).or_default();
            c.sum = sum;
            c.received = c.received.saturating_add(received);
            for item in items {
                if c.items.len() >= MAX_CHANNELS {
                    break;
                }
                if !c.items.iter().any(|i| i.channel_id == item.channel_id) {
                    c.items.push(item);
                }
            }
            if c.received >= c.sum || c.items.len() >= MAX_CHANNELS {
                catalogs.remove(device)
            } else {
                None
            }
        };
        if let Some(c) = complete {
            info!(device, channels = c.items.len(), "catalog received");
            if let Err(e) = db::gb::store_catalog(&self.pool, device, &c.items).await {
                warn!(device, error = %e, "catalog not stored");
            }
        }
    }

    /// Asks a device that came online for its information and catalog.
    async fn query_device(&self, device: &str) {
        for cmd in ["DeviceInfo", "DeviceStatus", "Catalog"] {
            if let Err(e) = self.query(device, cmd).await {
                warn!(device, error = %e, cmd, "query not answered");
            }
        }
    }

    /// Waits for the answers of the query numbered `sn` (until the receiver is dropped, see
    /// [`Registry::forget_answers`]); `None` when too many queries wait already.
    pub fn await_answers(&self, device: &str, sn: u32) -> Option<mpsc::Receiver<Element>> {
        let mut waiters = lock(&self.waiters);
        waiters.retain(|_, w| !w.is_closed());
        if waiters.len() >= MAX_WAITERS {
            return None;
        }
        let (tx, rx) = mpsc::channel(16);
        waiters.insert((device.to_owned(), sn.to_string()), tx);
        Some(rx)
    }

    pub fn forget_answers(&self, device: &str, sn: u32) {
        lock(&self.waiters).remove(&(device.to_owned(), sn.to_string()));
    }

    fn device_status(&self, device: &str, body: &Element) {
        let t = |n| {
            body.text_of(n)
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect::<String>()
        };
        let device_time = t("DeviceTime");
        let offset = self.cfg.utc_offset_minutes;
        let clock_skew_s = crate::time::gb_to_ms(&device_time, offset)
            .map(|at| (at - crate::time::now_ms()) / 1000);
        if clock_skew_s.is_some_and(|s| s.abs() > 10) {
            warn!(
                device,
                clock_skew_s, "device clock is off; its footage times are too"
            );
        }
        let status = DeviceStatus {
            online: t("Online"),
            status: t("Status"),
            encode: t("Encode"),
            record: t("Record"),
            device_time,
            clock_skew_s,
        };
        if let Some(s) = lock(&self.sessions).get_mut(device) {
            s.status = Some(status);
        }
    }

    /// Hands an answer to the query waiting for it.
    fn answer(&self, device: &str, body: Element) {
        let sn = body.text_of("SN").unwrap_or_default().to_owned();
        let waiter = lock(&self.waiters).get(&(device.to_owned(), sn)).cloned();
        match waiter {
            Some(w) => {
                let _ = w.try_send(body);
            }
            // Late (its query timed out) or never asked: a device could send many, so not a warning.
            None => tracing::debug!(device, "an answer nobody waits for dropped"),
        }
    }

    /// The device sent the last of a playback (MediaStatus 121): its sessions of the channel end.
    fn end_of_file(&self, device: &str, channel: &str) {
        let mut playbacks = lock(&self.playbacks);
        playbacks.retain(|(_, _, t)| !t.is_cancelled());
        for (d, c, ended) in playbacks.iter() {
            if d == device && c == channel {
                info!(device, channel, "device reached the end of a playback");
                ended.cancel();
            }
        }
    }

    /// A token the device's "end of file" for this channel cancels.
    pub fn watch_end_of_file(&self, device: &str, channel: &str) -> CancellationToken {
        let token = CancellationToken::new();
        let mut playbacks = lock(&self.playbacks);
        playbacks.retain(|(_, _, t)| !t.is_cancelled());
        playbacks.push((device.to_owned(), channel.to_owned(), token.clone()));
        token
    }

    /// Sends a MANSCDP query MESSAGE to a registered device.
    pub async fn query(&self, device: &str, cmd: &str) -> Result<(), sip::SipError> {
        let body = xml::query(cmd, self.next_sn(), device);
        self.send_query(device, body).await
    }

    /// Sends a MANSCDP body (a query) to a registered device; Ok once it accepted the MESSAGE.
    pub async fn send_query(&self, device: &str, body: Vec<u8>) -> Result<(), sip::SipError> {
        let s = self
            .session(device)
            .ok_or_else(|| sip::SipError::Address(format!("{device} is not registered")))?;
        let mut out = sip::Outgoing::new(
            Method::Message,
            device,
            s.addr.addr.to_string(),
            &self.cfg.id,
            &self.cfg.domain,
        );
        out.transport = s.addr.r#type.unwrap_or_default();
        out.body = Some((sip::MANSCDP, body));
        let req = self.stack.request(out)?;
        let resp = self
            .stack
            .send(req, s.addr, Duration::from_secs(10))
            .await?;
        match resp.status_code.code() {
            200..=299 => Ok(()),
            code => Err(sip::SipError::Status(code)),
        }
    }

    async fn set_offline(&self, device: &str) {
        lock(&self.sessions).remove(device);
        lock(&self.catalogs).remove(device);
        if let Err(e) = db::gb::offline(&self.pool, device).await {
            warn!(device, error = %e, "offline state not stored");
        }
    }

    /// Marks offline the devices that missed three keepalives or whose registration lapsed; runs until
    /// the process ends.
    pub async fn watch_keepalives(self: Arc<Self>) {
        let period = Duration::from_secs(self.cfg.keepalive_s);
        let mut tick = tokio::time::interval((period / 2).max(Duration::from_millis(500)));
        loop {
            tick.tick().await;
            let now = Instant::now();
            let lost: Vec<String> = lock(&self.sessions)
                .iter()
                .filter(|(_, s)| now >= s.expires || now.duration_since(s.last_seen) > period * 3)
                .map(|(id, _)| id.clone())
                .collect();
            for device in lost {
                warn!(
                    device,
                    "device offline: three keepalives missed or registration lapsed"
                );
                self.set_offline(&device).await;
            }
        }
    }
}

/// A catalog item, when it is a video channel: a valid id that is not a region (a short civil code) nor
/// an organisation (types 2xx: platforms, business groups, virtual organisations of a cascaded catalog).
fn channel(device: &str, item: &Element) -> Option<Channel> {
    let id = item.text_of("DeviceID").filter(|d| valid_id(d))?;
    if id.len() == 20 && id.as_bytes()[10] == b'2' {
        return None;
    }
    let text = |n: &str| {
        item.text_of(n)
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect::<String>()
    };
    Some(Channel {
        device_id: device.to_owned(),
        channel_id: id.to_owned(),
        name: text("Name"),
        civil_code: text("CivilCode"),
        status: text("Status"),
        camera_id: None,
    })
}

/// A GB/T 28181 id: 20 digits (some devices use 18; accepted).
pub fn valid_id(id: &str) -> bool {
    (18..=20).contains(&id.len()) && id.chars().all(|c| c.is_ascii_digit())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

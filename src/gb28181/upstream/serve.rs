//! A superior's media requests: live INVITEs (the camera's hub stream as PS), playback INVITEs and
//! RecordInfo queries (Vigil's recordings, `archive`), and the MANSRTSP INFO that steers a playback.

use super::{camera_of, lock, sn, Link, Session, Upstreams};
use crate::db;
use crate::gb28181::archive;
use crate::gb28181::mansrtsp::{self, Command};
use crate::gb28181::send::{Answering, PsSink, Target};
use crate::gb28181::{sip, xml};
use crate::hub::{Hub, Received, StreamKey, StreamKind, Timeline};
use crate::ingest::annexb::{parameter_sets, to_annex_b};
use crate::media::ps;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::Transaction;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Upward media sessions at most (all superiors together): each holds a socket, and a playback reads
/// footage.
const MAX_SESSIONS: usize = 256;

impl Upstreams {
    pub(super) async fn invite(
        self: &Arc<Self>,
        link: &Link,
        tx: &mut Transaction,
    ) -> Result<(), sip::SipError> {
        let req = &tx.original;
        let (channel, camera) = self.invited_camera(link, req).await;
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
        if lock(&self.sessions).len() >= MAX_SESSIONS {
            warn!(
                link = link.cfg.name,
                "too many upward sessions; INVITE refused"
            );
            return Ok(tx.reply(StatusCode::BusyHere).await?);
        }
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

    /// The channel an INVITE names (its To user) and its camera, when that is shared by the link now.
    async fn invited_camera(
        &self,
        link: &Link,
        req: &rsipstack::sip::Request,
    ) -> (Option<String>, Option<db::cameras::Camera>) {
        let channel = req.to_header().ok().and_then(|t| {
            use rsipstack::sip::prelude::ToTypedHeader;
            t.typed().ok()?.uri.auth.map(|a| a.user)
        });
        let camera = match channel.as_deref().and_then(camera_of) {
            Some(id) => self.shared_camera(link, id).await,
            None => None,
        };
        (channel, camera)
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
    pub(super) async fn info(
        &self,
        link: &Link,
        tx: &mut Transaction,
    ) -> Result<(), sip::SipError> {
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
    pub(super) async fn record_info(
        &self,
        link: &Link,
        q: &xml::Element,
        sn: &str,
    ) -> Vec<Vec<u8>> {
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

//! A superior's media requests: live INVITEs (the camera's hub stream as PS), playback INVITEs and
//! RecordInfo queries (Vigil's recordings, `archive`), and the MANSRTSP INFO that steers a playback.

use super::{camera_of, sn, Link, Upstreams};
use crate::db;
use crate::gb28181::archive;
use crate::gb28181::mansrtsp::Command;
use crate::gb28181::send::{accept_invite, Answering, PsSink};
use crate::gb28181::{sip, xml};
use crate::hub::{Hub, Received, StreamKey, StreamKind, Timeline};
use crate::ingest::annexb::{parameter_sets, to_annex_b};
use crate::media::ps;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::StatusCode;
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
        link: &Arc<Link>,
        tx: &mut Transaction,
    ) -> Result<(), sip::SipError> {
        let (channel, camera) = self.invited_camera(link, &tx.original).await;
        let Some(camera) = camera else {
            warn!(
                link = link.cfg.name,
                channel, "superior asked for a camera it is not shared"
            );
            return Ok(tx.reply(StatusCode::NotFound).await?);
        };
        if self.sessions.len() >= MAX_SESSIONS {
            warn!(
                link = link.cfg.name,
                "too many upward sessions; INVITE refused"
            );
            return Ok(tx.reply(StatusCode::BusyHere).await?);
        }
        let Some(answering) = accept_invite(tx, &self.stack, &link.cfg.local_id).await? else {
            return Ok(());
        };
        let call = sip::call_id(&tx.original);
        let playback = answering.target.playback;
        let (cancel, steer) = self.sessions.open(&call, playback.is_some());
        match (playback, steer) {
            (Some(range), Some(steer)) => {
                let channel = channel.unwrap_or_default();
                let session = (answering, steer, cancel, call);
                self.clone()
                    .play_back(link.clone(), camera, channel, range, session);
            }
            _ => self.clone().watch(link, camera, answering, cancel, call),
        }
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

    /// Sends the camera's live stream to a superior until its BYE.
    fn watch(
        self: Arc<Self>,
        link: &Link,
        camera: db::cameras::Camera,
        answering: Answering,
        cancel: CancellationToken,
        call: String,
    ) {
        let target = &answering.target;
        info!(link = link.cfg.name, camera = camera.id, addr = %target.addr, tcp = target.tcp, "superior watches a camera");
        let name = link.cfg.name.clone();
        tokio::spawn(async move {
            self.audit(&name, "live.start", &camera).await;
            let key = StreamKey {
                camera_id: camera.id,
                kind: StreamKind::Main,
            };
            if let Err(e) = send(self.hub.clone(), key, answering, cancel).await {
                warn!(link = name, camera = camera.id, error = %e, "upward stream ended");
            }
            self.sessions.remove(&call);
            self.audit(&name, "live.stop", &camera).await;
        });
    }

    /// Serves a superior's Playback INVITE from the camera's recordings, until its end or BYE.
    fn play_back(
        self: Arc<Self>,
        link: Arc<Link>,
        camera: db::cameras::Camera,
        channel: String,
        range: (i64, i64),
        (answering, steer, cancel, call): (
            Answering,
            mpsc::Receiver<Command>,
            CancellationToken,
            String,
        ),
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
                    if let Err(e) = self.message(&link, body).await {
                        warn!(link = name, error = %e, "end of playback not told");
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(link = name, camera = camera.id, error = %e, "upward playback ended")
                }
            }
            // The session stays for the superior's BYE, a minute at most.
            let _ = tokio::time::timeout(Duration::from_secs(60), ended.cancelled()).await;
            self.sessions.remove(&call);
        });
    }

    /// A superior's MANSRTSP for one of its playback sessions.
    pub(super) async fn info(
        &self,
        link: &Link,
        tx: &mut Transaction,
    ) -> Result<(), sip::SipError> {
        let call = sip::call_id(&tx.original);
        let status = match self.sessions.steer(&call, tx.original.body()) {
            Ok((_, status)) => status,
            Err(e) => {
                warn!(link = link.cfg.name, error = %e, "MANSRTSP refused");
                StatusCode::BadRequest
            }
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
        let spans = match (camera, time("StartTime"), time("EndTime")) {
            (Some(camera), Some(start), Some(end)) => {
                match archive::record_spans(&self.pool, camera.id, (start, end)).await {
                    Ok(spans) => spans,
                    Err(e) => {
                        warn!(link = link.cfg.name, error = %e, "RecordInfo not answered");
                        return Vec::new();
                    }
                }
            }
            _ => {
                warn!(
                    link = link.cfg.name,
                    channel, "RecordInfo for no shared camera or without a range"
                );
                Vec::new()
            }
        };
        xml::record_info_pages(sn, channel, "Vigil", &spans, archive::PAGE, offset)
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
            sink = Some(answering.open(ps::video_type(h265)).await?);
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

//! Footage on a device's own disk (GB/T 28181-2016 §9.7 RecordInfo, §9.8 playback): the records a channel
//! holds for a range, and playback sessions that INVITE `s=Playback` for a range, receive its PS into a
//! private hub stream (never the camera's, so never recorded nor shown as live), and steer it with
//! MANSRTSP (pause, play, speed, seek).
//!
//! Invariants:
//! - A RecordInfo answer is awaited at most [`QUERY_TIMEOUT`] and read to at most [`MAX_RECORDS`] items,
//!   whatever `SumNum` the device claims.
//! - A session's task sends the BYE whatever ends it: the viewer gone (its [`Playback`] dropped), the
//!   device's end of file, the device's BYE, or a failure; then it cancels [`Playback::ended`].
//! - Timestamps of the footage are divided by the speed in force (`media::Steering`), so that 4x plays
//!   in a quarter of the time; a seek continues the output timeline instead of jumping.

use super::mansrtsp::{self, Command};
use super::media::{self, MediaTransport, Receiver, Steering};
use super::sip::SipError;
use super::stream::{Dialog, Runner, Wanted};
use super::xml;
use crate::hub::{StreamHub, StreamKey, StreamKind};
use crate::ingest::{DecodeTimes, Publisher, StreamStatus};
use rsipstack::sip::Method;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_RECORDS: usize = 2_000;
/// The longest range one playback session may ask for.
pub const MAX_RANGE_S: i64 = 24 * 3600;
/// Frames a viewer of a playback may fall behind before it skips (as live viewers do).
const QUEUE: usize = 256;

/// One record a device reports for a channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub start_ms: i64,
    pub end_ms: i64,
    pub name: String,
    /// `time`, `alarm`, `manual` (what the device says).
    pub kind: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("the device is not registered")]
    NotRegistered,
    #[error("too many queries or sessions at once; try again")]
    Busy,
    #[error("the device did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the device refused: {0}")]
    Refused(String),
    #[error("the range is empty or longer than {MAX_RANGE_S} s")]
    Range,
}

impl From<SipError> for PlaybackError {
    fn from(e: SipError) -> Self {
        PlaybackError::Refused(e.to_string())
    }
}

impl Runner {
    /// The records a device holds for a channel within `[start, end]` (Unix milliseconds).
    pub async fn record_info(
        &self,
        device: &str,
        channel: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Record>, PlaybackError> {
        let registry = &self.registry;
        if registry.session(device).is_none() {
            return Err(PlaybackError::NotRegistered);
        }
        let offset = registry.cfg.utc_offset_minutes;
        let gb = |ms| crate::time::ms_to_gb(ms, offset);
        let sn = registry.next_sn();
        let mut answers = registry
            .await_answers(device, sn)
            .ok_or(PlaybackError::Busy)?;
        let body = xml::record_info_query(sn, channel, &gb(start_ms), &gb(end_ms));
        let result = async {
            registry.send_query(device, body).await?;
            collect(&mut answers, offset).await
        }
        .await;
        registry.forget_answers(device, sn);
        result
    }

    /// Starts a playback session of `[start, end]` (Unix milliseconds) of a device's channel, its frames
    /// timed for a viewer or as the footage (see [`Timing`]).
    pub async fn playback(
        self: &Arc<Self>,
        device: &str,
        channel: &str,
        transport: MediaTransport,
        (start_ms, end_ms): (i64, i64),
        timing: Timing,
    ) -> Result<Playback, PlaybackError> {
        let (start_s, end_s) = (start_ms.div_euclid(1000), (end_ms + 999).div_euclid(1000));
        if end_s <= start_s || end_s - start_s > MAX_RANGE_S {
            return Err(PlaybackError::Range);
        }
        if self.registry.session(device).is_none() {
            return Err(PlaybackError::NotRegistered);
        }
        // A private stream: the key is never the hub's, so nothing else sees it.
        let stream = Arc::new(StreamHub::standalone(
            StreamKey {
                camera_id: 0,
                kind: StreamKind::Main,
            },
            QUEUE,
        ));
        let (control, steer) = mpsc::channel(8);
        let (ready, started) = oneshot::channel();
        let ended = CancellationToken::new();
        let session = Session {
            device: device.to_owned(),
            channel: channel.to_owned(),
            wanted: Wanted::Playback { start_s, end_s },
            transport,
            timing,
            stream: stream.clone(),
            ended: ended.clone(),
        };
        tokio::spawn(self.clone().session(session, ready, steer));
        match started.await {
            Ok(Ok(())) => Ok(Playback {
                stream,
                ended,
                control,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PlaybackError::Refused("session setup failed".into())),
        }
    }

    /// Binds a media port and invites the device: what a session receives with.
    async fn open(&self, s: &Session) -> Result<Opened<'_>, PlaybackError> {
        let port = self.ports.take().ok_or(PlaybackError::Busy)?;
        let bind: IpAddr = if self.media_ip.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            [0u16; 8].into()
        };
        let rx = Receiver::bind(bind, port.port, s.transport)
            .await
            .map_err(|e| PlaybackError::Refused(format!("media port: {e}")))?;
        let ssrc = self.ssrc(s.wanted);
        let eof = self.registry.watch_end_of_file(&s.device, &s.channel);
        let invited = self
            .invite(
                &s.device,
                &s.channel,
                s.wanted,
                s.transport,
                port.port,
                ssrc,
            )
            .await;
        let (dialog, bye) = invited.map_err(|e| {
            eof.cancel();
            PlaybackError::Refused(e.to_string())
        })?;
        let rx = match rx.connect_to(&dialog.answer).await {
            Ok(rx) => rx,
            Err(e) => {
                self.bye(&dialog).await;
                eof.cancel();
                return Err(PlaybackError::Refused(format!("device media: {e}")));
            }
        };
        info!(
            device = s.device,
            channel = s.channel,
            port = port.port,
            "playback session invited"
        );
        Ok(Opened {
            _port: port,
            rx,
            ssrc,
            eof,
            dialog,
            bye,
        })
    }

    async fn session(
        self: Arc<Self>,
        s: Session,
        ready: oneshot::Sender<Result<(), PlaybackError>>,
        mut steer: mpsc::Receiver<Command>,
    ) {
        let o = match self.open(&s).await {
            Ok(o) => o,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let steering = Arc::new(Steering::default());
        let status = Mutex::new(StreamStatus::connecting());
        let label = format!("gb28181://{}/{} (playback)", s.device, s.channel);
        let mut publisher = Publisher::new(&s.stream, &status, &label, 1);
        let mut decode = DecodeTimes::default();
        let rescale = (s.timing == Timing::Viewer).then(|| steering.clone());
        let receive = media::receive(
            o.rx,
            o.ssrc,
            rescale,
            self.stall,
            &mut publisher,
            &mut decode,
        );
        tokio::pin!(receive);
        let mut cseq = 0u32;
        let why = loop {
            tokio::select! {
                e = &mut receive => break e.to_string(),
                _ = o.bye.cancelled() => break "the device ended the session (BYE)".to_owned(),
                _ = o.eof.cancelled() => {
                    // The device sent its last packet before telling; take what is still in flight.
                    let _ = tokio::time::timeout(Duration::from_secs(1), &mut receive).await;
                    break "end of the footage".to_owned();
                }
                cmd = steer.recv() => match cmd {
                    Some(cmd) => {
                        cseq += 1;
                        self.steer(&o.dialog, &steering, cmd, cseq).await;
                    }
                    None => break "the viewer left".to_owned(),
                },
            }
        };
        info!(
            device = s.device,
            channel = s.channel,
            why,
            "playback session ends"
        );
        self.bye(&o.dialog).await;
        o.eof.cancel();
        s.stream.reset();
        s.ended.cancel();
    }

    /// Sends a MANSRTSP command; once the device accepted it, reception follows it.
    async fn steer(&self, d: &Dialog, steering: &Steering, cmd: Command, cseq: u32) {
        let body = mansrtsp::build(&cmd, cseq);
        match self
            .in_dialog(d, Method::Info, Some((mansrtsp::CONTENT_TYPE, body)))
            .await
        {
            Ok(200) => match cmd {
                Command::Pause => steering.set_paused(true),
                Command::Play { scale, .. } => {
                    if let Some(scale) = scale {
                        steering.set_scale(scale);
                    }
                    steering.set_paused(false);
                }
            },
            Ok(code) => warn!(
                device = d.device,
                channel = d.channel,
                code,
                ?cmd,
                "device refused MANSRTSP"
            ),
            Err(e) => {
                warn!(device = d.device, channel = d.channel, error = %e, ?cmd, "MANSRTSP not answered")
            }
        }
    }
}

/// The times a session's frames carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Divided by the speed in force: 4x plays in a quarter of the time.
    Viewer,
    /// The footage's own, at any speed (what edge retrieval records).
    Footage,
}

/// What a session's task owns.
struct Session {
    device: String,
    channel: String,
    wanted: Wanted,
    transport: MediaTransport,
    timing: Timing,
    stream: Arc<StreamHub>,
    ended: CancellationToken,
}

/// An invited session's media port, receiver and dialog.
struct Opened<'a> {
    _port: media::Port<'a>,
    rx: Receiver,
    ssrc: u32,
    eof: CancellationToken,
    dialog: Dialog,
    bye: CancellationToken,
}

/// A running playback session; dropping it ends the session (BYE).
pub struct Playback {
    /// The footage, as frames (time scaled by the speed in force).
    pub stream: Arc<StreamHub>,
    /// Cancelled when the session ended, for whatever reason.
    pub ended: CancellationToken,
    control: mpsc::Sender<Command>,
}

impl Playback {
    /// Queues a command for the device; false when the session ended or too many are queued.
    pub fn steer(&self, cmd: Command) -> bool {
        self.control.try_send(cmd).is_ok()
    }
}

/// Reads the pages of a RecordInfo answer until `SumNum` items arrived (or the bounds).
async fn collect(
    answers: &mut mpsc::Receiver<xml::Element>,
    offset: i32,
) -> Result<Vec<Record>, PlaybackError> {
    let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
    let mut records = Vec::new();
    let mut received = 0usize;
    loop {
        let page = match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => return Err(PlaybackError::Timeout(QUERY_TIMEOUT)),
        };
        let sum: usize = page
            .text_of("SumNum")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (items, found) = records_of(&page, offset);
        received += items;
        records.extend(found);
        records.truncate(MAX_RECORDS);
        if received >= sum || received >= MAX_RECORDS {
            records.sort_by_key(|r| r.start_ms);
            return Ok(records);
        }
    }
}

/// The records of one RecordInfo page: how many items it had, and those that are valid records.
pub fn records_of(page: &xml::Element, offset: i32) -> (usize, Vec<Record>) {
    let items: Vec<&xml::Element> = page
        .child("RecordList")
        .map(|l| l.children_named("Item").collect())
        .unwrap_or_default();
    let n = items.len();
    (
        n,
        items
            .into_iter()
            .filter_map(|i| record(i, offset))
            .collect(),
    )
}

fn record(item: &xml::Element, offset: i32) -> Option<Record> {
    let time = |n| crate::time::gb_to_ms(item.text_of(n)?, offset);
    let (start_ms, end_ms) = (time("StartTime")?, time("EndTime")?);
    let text = |n| {
        item.text_of(n)
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect::<String>()
    };
    (end_ms > start_ms).then(|| Record {
        start_ms,
        end_ms,
        name: text("Name"),
        kind: text("Type"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn record_info_pages_are_collected_to_their_sum() {
        let (tx, mut rx) = mpsc::channel(4);
        let page = |a: &str, b: &str| {
            let text = format!(
                "<Response><CmdType>RecordInfo</CmdType><SN>1</SN><SumNum>2</SumNum><RecordList Num=\"1\">\
                 <Item><Name>a</Name><StartTime>{a}</StartTime><EndTime>{b}</EndTime><Type>time</Type></Item>\
                 </RecordList></Response>"
            );
            xml::parse(text.as_bytes()).expect("parses")
        };
        tx.send(page("2026-03-01T10:00:00", "2026-03-01T11:00:00"))
            .await
            .unwrap();
        tx.send(page("2026-03-01T09:00:00", "2026-03-01T09:30:00"))
            .await
            .unwrap();
        let records = collect(&mut rx, 480).await.expect("two pages");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].end_ms - records[0].start_ms, 1_800_000);
        assert_eq!(records[1].kind, "time");
        drop(tx);
        assert!(matches!(
            collect(&mut rx, 480).await,
            Err(PlaybackError::Timeout(_))
        ));
    }
}

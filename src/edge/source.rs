//! What a camera's lost footage can be fetched from: the GB/T 28181 device it is a channel of (RecordInfo
//! lists what the device holds, a Playback session sends it at the speed asked), or the NVR behind an RTSP
//! camera whose URL is a vendor's live path (the vendor's playback URL for the range, played in real time).

use super::pull::Started;
use crate::config::IngestConfig;
use crate::db::cameras::Camera;
use crate::gb28181::mansrtsp::Command;
use crate::gb28181::media::MediaTransport;
use crate::gb28181::playback::{PlaybackError, Timing};
use crate::gb28181::Platform;
use crate::hub::{StreamHub, StreamKey, StreamKind};
use crate::ingest::{RunError, StreamSource};
use std::sync::Arc;

/// An RTSP camera's main stream as ingest pulls it (credentials opened): given by the server, which
/// holds the key of camera passwords.
pub type LiveSource = Arc<dyn Fn(&Camera) -> Option<StreamSource> + Send + Sync>;

#[derive(Debug, Clone)]
pub enum Source {
    Gb {
        device: String,
        channel: String,
        transport: MediaTransport,
    },
    Rtsp {
        /// The live stream's source (URL, credentials, transport).
        live: StreamSource,
        vendor: Vendor,
    },
}

/// Whose playback URL an RTSP camera's NVR answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vendor {
    /// `/Streaming/Channels/{track}` live; `/Streaming/tracks/{track}?starttime=...Z&endtime=...Z` (UTC).
    Hikvision { track: String },
    /// `/cam/realmonitor?channel=&subtype=` live; `/cam/playback?...&starttime=Y_m_d_H_M_S` (device time).
    Dahua { channel: String, subtype: String },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("GB/T 28181 is not enabled on this server")]
    NoPlatform,
    #[error(transparent)]
    Device(#[from] PlaybackError),
    #[error("the NVR has no recording of the range: {0}")]
    Nothing(String),
    #[error("the NVR's playback: {0}")]
    Rtsp(String),
}

/// Whole seconds around a piece: what a device is asked for (its times have no fraction).
fn seconds((start_us, end_us): (i64, i64)) -> (i64, i64) {
    (
        start_us.div_euclid(1_000_000) * 1000,
        (end_us + 999_999).div_euclid(1_000_000) * 1000,
    )
}

impl Source {
    /// The source of a camera's footage, None for a camera nothing can be fetched from. `live` gives an
    /// RTSP camera's main stream source (with its password opened).
    pub fn of(cam: &Camera, live: &LiveSource) -> Option<Source> {
        let url = url::Url::parse(&cam.main_url).ok()?;
        if url.scheme() == "rtsp" || url.scheme() == "rtsps" {
            let vendor = Vendor::of(&url)?;
            return Some(Source::Rtsp {
                live: live(cam)?,
                vendor,
            });
        }
        if url.scheme() == "gb28181" {
            let (device, channel) = crate::gb28181::stream::target(&url)?;
            let transport = crate::gb28181::stream::media_transport(&url, cam.transport == "udp");
            return Some(Source::Gb {
                device,
                channel,
                transport,
            });
        }
        None
    }

    /// Where the footage comes from, as the backfill row and the audit log name it.
    pub fn name(&self) -> String {
        match self {
            Source::Gb {
                device, channel, ..
            } => format!("gb28181://{device}/{channel}"),
            // The playback path without credentials or the range.
            Source::Rtsp { live, vendor } => {
                let mut u = vendor.playback(&live.url, None);
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.to_string()
            }
        }
    }

    /// The fastest this source can send: a GB/T 28181 device takes a speed, an RTSP NVR plays in real
    /// time.
    pub fn max_speed(&self) -> f64 {
        match self {
            Source::Gb { .. } => f64::INFINITY,
            Source::Rtsp { .. } => 1.0,
        }
    }

    /// The spans (Unix µs) the source holds within `range`.
    pub async fn records(
        &self,
        gb: Option<&Arc<Platform>>,
        range: (i64, i64),
    ) -> Result<Vec<(i64, i64)>, SourceError> {
        match self {
            Source::Gb {
                device, channel, ..
            } => {
                let gb = gb.ok_or(SourceError::NoPlatform)?;
                let (start, end) = seconds(range);
                let records = gb.runner.record_info(device, channel, start, end).await?;
                Ok(records
                    .into_iter()
                    .map(|r| (r.start_ms * 1000, r.end_ms * 1000))
                    .collect())
            }
            // RTSP NVRs have no listing: the whole range is asked for, and an NVR with nothing refuses.
            Source::Rtsp { .. } => Ok(vec![range]),
        }
    }

    /// Starts sending `piece` at `speed`; returns the running session and the wall time (µs) its first
    /// frame is taken to be at.
    pub async fn start(
        &self,
        (gb, ingest): (Option<&Arc<Platform>>, &IngestConfig),
        piece: (i64, i64),
        speed: f64,
    ) -> Result<(Started, i64), SourceError> {
        match self {
            Source::Rtsp { live, vendor } => {
                let (start, end) = seconds(piece);
                let source = StreamSource {
                    url: vendor.playback(&live.url, Some((start, end))),
                    ..live.clone()
                };
                Ok((rtsp_pull(source, ingest.clone()).await?, start * 1000))
            }
            Source::Gb {
                device,
                channel,
                transport,
            } => {
                let gb = gb.ok_or(SourceError::NoPlatform)?;
                let (start, end) = seconds(piece);
                let session = gb
                    .runner
                    .playback(device, channel, *transport, (start, end), Timing::Footage)
                    .await?;
                if speed > 1.0 {
                    session.steer(Command::Play {
                        scale: Some(speed),
                        from_s: None,
                    });
                }
                let started = Started {
                    stream: session.stream.clone(),
                    ended: session.ended.clone(),
                    session: Box::new(session),
                };
                Ok((started, start * 1000))
            }
        }
    }
}

impl Vendor {
    /// The vendor whose live path `url` is, if Vigil knows its playback URL.
    pub fn of(url: &url::Url) -> Option<Vendor> {
        let path = url.path();
        let lower = path.to_ascii_lowercase();
        if let Some(track) = lower.strip_prefix("/streaming/channels/") {
            let track = track.trim_end_matches('/');
            return (!track.is_empty() && track.bytes().all(|b| b.is_ascii_digit())).then(|| {
                Vendor::Hikvision {
                    track: track.to_owned(),
                }
            });
        }
        if lower == "/cam/realmonitor" {
            let get = |k: &str| {
                url.query_pairs()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.into_owned())
            };
            let channel = get("channel").filter(|c| c.bytes().all(|b| b.is_ascii_digit()))?;
            let subtype = get("subtype").unwrap_or_else(|| "0".into());
            return Some(Vendor::Dahua { channel, subtype });
        }
        None
    }

    /// A time (Unix ms) as the vendor's playback URL writes it.
    fn time(&self, ms: i64) -> String {
        let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        match self {
            Vendor::Hikvision { .. } => utc.format("%Y%m%dT%H%M%SZ").to_string(),
            Vendor::Dahua { .. } => {
                let local = utc + chrono::Duration::minutes(i64::from(DAHUA_UTC_OFFSET_MINUTES));
                local.format("%Y_%m_%d_%H_%M_%S").to_string()
            }
        }
    }

    /// The playback URL on the live URL's host, of `[start, end]` (Unix ms) when a range is given.
    fn playback(&self, live: &url::Url, range: Option<(i64, i64)>) -> url::Url {
        let mut u = live.clone();
        u.set_query(None);
        match self {
            Vendor::Hikvision { track } => u.set_path(&format!("/Streaming/tracks/{track}")),
            Vendor::Dahua { channel, subtype } => {
                u.set_path("/cam/playback");
                u.query_pairs_mut()
                    .append_pair("channel", channel)
                    .append_pair("subtype", subtype);
            }
        }
        if let Some((start, end)) = range {
            u.query_pairs_mut()
                .append_pair("starttime", &self.time(start))
                .append_pair("endtime", &self.time(end));
        }
        u
    }
}

/// Dahua playback times are the NVR's local time; China Standard Time, as the sites run.
const DAHUA_UTC_OFFSET_MINUTES: i32 = 480;

/// Opens the NVR's playback (refused: nothing recorded) and reads it into a private stream.
async fn rtsp_pull(source: StreamSource, mut cfg: IngestConfig) -> Result<Started, SourceError> {
    // Backfilled footage is video only (docs/edge.md): the NVR's sound is not asked for.
    cfg.audio = false;
    let opened = crate::ingest::open_stream(&source, &cfg)
        .await
        .map_err(|e| match e {
            RunError::NotFound(why) => SourceError::Nothing(why),
            e => SourceError::Rtsp(e.to_string()),
        })?;
    let key = StreamKey {
        camera_id: 0,
        kind: StreamKind::Main,
    };
    let stream = Arc::new(StreamHub::standalone(key, 256));
    let ended = tokio_util::sync::CancellationToken::new();
    let (hub, done) = (stream.clone(), ended.clone());
    let task = tokio::spawn(async move {
        let r = crate::ingest::play_once(opened, &source, &hub, &cfg).await;
        tracing::debug!(url = %source.url, result = ?r.err(), "NVR playback ended");
        done.cancel();
    });
    Ok(Started {
        stream,
        ended,
        session: Box::new(AbortOnDrop(task)),
    })
}

/// Ends a pull's reading task with the pull.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_playback_urls() {
        let hik = url::Url::parse("rtsp://nvr:554/Streaming/Channels/301").unwrap();
        let v = Vendor::of(&hik).expect("hikvision");
        let t = 1_796_552_100_000;
        assert_eq!(
            v.playback(&hik, Some((t, t + 60_000))).as_str(),
            "rtsp://nvr:554/Streaming/tracks/301?starttime=20261206T101500Z&endtime=20261206T101600Z"
        );
        let dahua = url::Url::parse("rtsp://nvr/cam/realmonitor?channel=2&subtype=0").unwrap();
        let v = Vendor::of(&dahua).expect("dahua");
        assert_eq!(
            v.playback(&dahua, Some((t, t + 1000))).as_str(),
            "rtsp://nvr/cam/playback?channel=2&subtype=0&starttime=2026_12_06_18_15_00&endtime=2026_12_06_18_15_01"
        );
        assert_eq!(
            Vendor::of(&url::Url::parse("rtsp://cam/live/ch1").unwrap()),
            None
        );
        assert_eq!(
            Vendor::of(&url::Url::parse("rtsp://cam/Streaming/Channels/x").unwrap()),
            None
        );
    }
}

//! What a camera's lost footage can be fetched from: the GB/T 28181 device it is a channel of (RecordInfo
//! lists what the device holds, a Playback session sends it at the speed asked).

use super::pull::Started;
use crate::db::cameras::Camera;
use crate::gb28181::mansrtsp::Command;
use crate::gb28181::media::MediaTransport;
use crate::gb28181::playback::PlaybackError;
use crate::gb28181::Platform;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Source {
    Gb {
        device: String,
        channel: String,
        transport: MediaTransport,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("GB/T 28181 is not enabled on this server")]
    NoPlatform,
    #[error(transparent)]
    Device(#[from] PlaybackError),
}

/// Whole seconds around a piece: what a device is asked for (its times have no fraction).
fn seconds((start_us, end_us): (i64, i64)) -> (i64, i64) {
    (
        start_us.div_euclid(1_000_000) * 1000,
        (end_us + 999_999).div_euclid(1_000_000) * 1000,
    )
}

impl Source {
    /// The source of a camera's footage, None for a camera nothing can be fetched from.
    pub fn of(cam: &Camera) -> Option<Source> {
        let url = url::Url::parse(&cam.main_url).ok()?;
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
        }
    }

    /// Starts sending `piece` at `speed`; returns the running session and the wall time (µs) its first
    /// frame is taken to be at.
    pub async fn start(
        &self,
        gb: Option<&Arc<Platform>>,
        piece: (i64, i64),
        speed: f64,
    ) -> Result<(Started, i64), SourceError> {
        match self {
            Source::Gb {
                device,
                channel,
                transport,
            } => {
                let gb = gb.ok_or(SourceError::NoPlatform)?;
                let (start, end) = seconds(piece);
                let session = gb
                    .runner
                    .fetch(device, channel, *transport, start, end)
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

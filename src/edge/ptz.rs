//! PTZ of the cameras that have it: a command goes to the camera's device (GB/T 28181 device control) or
//! to the camera itself (ONVIF PTZ, for cameras added from ONVIF discovery); each move is bounded in time,
//! each camera's commands in rate.
//!
//! Invariants:
//! - Every move is followed by a stop after its duration (at most `MAX_MOVE`) unless a newer command of
//!   the camera came first: a viewer whose connection drops mid-drag never leaves a dome spinning.
//! - A camera takes at most [`PER_SECOND`] commands a second (a flood is refused, not queued); the state
//!   kept is one small entry per camera ever steered.

use super::source::LiveSource;
use crate::db::cameras::Camera;
use crate::db::Pool;
use crate::gb28181::Platform;
use crate::onvif::soap::Credentials;
use crate::ptz::Ptz;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The longest a move runs without a newer command.
pub const MAX_MOVE: Duration = Duration::from_secs(5);
/// Commands a camera takes per second.
pub const PER_SECOND: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum PtzFailure {
    #[error(
        "this camera cannot be steered (it is neither a GB/T 28181 channel nor added from ONVIF)"
    )]
    Unsupported,
    #[error("the camera has no PTZ service")]
    NoPtzService,
    #[error("GB/T 28181 is not enabled on this server")]
    NoPlatform,
    #[error("more than {PER_SECOND} PTZ commands a second for this camera; slow down")]
    TooFast,
    #[error("the device refused or did not answer: {0}")]
    Device(String),
}

#[derive(Default)]
struct Steering {
    generation: u64,
    window: Option<Instant>,
    count: u32,
}

pub struct Controller {
    gb: Option<Arc<Platform>>,
    pool: Pool,
    /// An RTSP camera's credentials (the ONVIF account is the camera's).
    live: LiveSource,
    http: reqwest::Client,
    cameras: Mutex<HashMap<i64, Steering>>,
    /// ONVIF cameras' PTZ service addresses, as their GetCapabilities said.
    ptz_services: Mutex<HashMap<i64, String>>,
}

/// Where a camera's commands go.
#[derive(Clone)]
enum Target {
    Gb {
        device: String,
        channel: String,
    },
    Onvif {
        device_url: String,
        profile: String,
        auth: Option<Credentials>,
    },
}

impl Controller {
    pub fn new(gb: Option<Arc<Platform>>, pool: Pool, live: LiveSource) -> Arc<Controller> {
        Arc::new(Controller {
            gb,
            pool,
            live,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            cameras: Mutex::new(HashMap::new()),
            ptz_services: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a camera can be steered at all (its source can carry PTZ).
    pub fn steerable(cam: &Camera) -> bool {
        target(cam).is_some()
    }

    /// Sends `cmd` to the camera; a move is stopped after `move_for` (capped at [`MAX_MOVE`]).
    pub async fn command(
        self: &Arc<Self>,
        cam: &Camera,
        cmd: Ptz,
        move_for: Duration,
    ) -> Result<(), PtzFailure> {
        let target = self.target(cam).await?;
        let generation = self.admit(cam.id)?;
        self.send(cam.id, &target, &cmd).await?;
        info!(camera = cam.id, ?cmd, "ptz command sent");
        if matches!(cmd, Ptz::Move { .. }) {
            let me = self.clone();
            let camera = cam.id;
            tokio::spawn(async move {
                tokio::time::sleep(move_for.min(MAX_MOVE)).await;
                if me.generation(camera) != generation {
                    return;
                }
                if let Err(e) = me.send(camera, &target, &Ptz::Stop).await {
                    warn!(camera, error = %e, "ptz: the stop after a move failed");
                }
            });
        }
        Ok(())
    }

    async fn target(&self, cam: &Camera) -> Result<Target, PtzFailure> {
        if let Some((device, channel)) = target(cam) {
            return Ok(Target::Gb { device, channel });
        }
        let found = crate::db::cameras::onvif(&self.pool, cam.id)
            .await
            .map_err(|e| PtzFailure::Device(e.to_string()))?;
        let (device_url, profile) = found.ok_or(PtzFailure::Unsupported)?;
        let auth = (self.live)(cam).and_then(|s| {
            Some(Credentials {
                username: s.username?,
                password: s.password.unwrap_or_default(),
            })
        });
        Ok(Target::Onvif {
            device_url,
            profile,
            auth,
        })
    }

    async fn send(&self, camera: i64, target: &Target, cmd: &Ptz) -> Result<(), PtzFailure> {
        let device = |e: &dyn std::fmt::Display| PtzFailure::Device(e.to_string());
        match target {
            Target::Gb { device: d, channel } => {
                let gb = self.gb.as_ref().ok_or(PtzFailure::NoPlatform)?;
                gb.registry
                    .ptz(d, channel, cmd)
                    .await
                    .map_err(|e| device(&e))
            }
            Target::Onvif {
                device_url,
                profile,
                auth,
            } => {
                let xaddr = self.ptz_service(camera, device_url, auth.as_ref()).await?;
                let timeout_s = MAX_MOVE.as_secs();
                crate::onvif::ptz::send(&self.http, &xaddr, auth.as_ref(), profile, cmd, timeout_s)
                    .await
                    .map_err(|e| device(&e))
            }
        }
    }

    /// The camera's PTZ service, asked once (GetCapabilities) and remembered.
    async fn ptz_service(
        &self,
        camera: i64,
        device_url: &str,
        auth: Option<&Credentials>,
    ) -> Result<String, PtzFailure> {
        let known = self
            .ptz_services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&camera)
            .cloned();
        if let Some(x) = known {
            return Ok(x);
        }
        let (_, ptz) = crate::onvif::device::services(&self.http, device_url, auth)
            .await
            .map_err(|e| PtzFailure::Device(e.to_string()))?;
        let ptz = ptz.ok_or(PtzFailure::NoPtzService)?;
        self.ptz_services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(camera, ptz.clone());
        Ok(ptz)
    }

    /// Counts the command against the camera's rate; its generation (newer commands cancel a pending stop).
    fn admit(&self, camera: i64) -> Result<u64, PtzFailure> {
        let mut cams = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        let s = cams.entry(camera).or_default();
        let now = Instant::now();
        match s.window {
            Some(w) if now.duration_since(w) < Duration::from_secs(1) => {
                if s.count >= PER_SECOND {
                    return Err(PtzFailure::TooFast);
                }
                s.count += 1;
            }
            _ => {
                s.window = Some(now);
                s.count = 1;
            }
        }
        s.generation += 1;
        Ok(s.generation)
    }

    fn generation(&self, camera: i64) -> u64 {
        let cams = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        cams.get(&camera).map_or(0, |s| s.generation)
    }
}

/// The device and channel of a GB/T 28181 camera.
fn target(cam: &Camera) -> Option<(String, String)> {
    let url = url::Url::parse(&cam.main_url).ok()?;
    (url.scheme() == "gb28181")
        .then(|| crate::gb28181::stream::target(&url))
        .flatten()
}

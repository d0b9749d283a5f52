//! PTZ of the cameras that have it: a command goes to the camera's device (GB/T 28181 device control),
//! each move is bounded in time, each camera's commands in rate.
//!
//! Invariants:
//! - Every move is followed by a stop after its duration (at most `MAX_MOVE`) unless a newer command of
//!   the camera came first: a viewer whose connection drops mid-drag never leaves a dome spinning.
//! - A camera takes at most [`PER_SECOND`] commands a second (a flood is refused, not queued); the state
//!   kept is one small entry per camera ever steered.

use crate::db::cameras::Camera;
use crate::gb28181::ptz::Ptz;
use crate::gb28181::Platform;
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
    #[error("this camera cannot be steered (only GB/T 28181 device channels are, so far)")]
    Unsupported,
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
    cameras: Mutex<HashMap<i64, Steering>>,
}

impl Controller {
    pub fn new(gb: Option<Arc<Platform>>) -> Arc<Controller> {
        Arc::new(Controller {
            gb,
            cameras: Mutex::new(HashMap::new()),
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
        let (device, channel) = target(cam).ok_or(PtzFailure::Unsupported)?;
        let gb = self.gb.clone().ok_or(PtzFailure::NoPlatform)?;
        let generation = self.admit(cam.id)?;
        gb.registry
            .ptz(&device, &channel, &cmd)
            .await
            .map_err(|e| PtzFailure::Device(e.to_string()))?;
        info!(camera = cam.id, device, channel, ?cmd, "ptz command sent");
        if matches!(cmd, Ptz::Move { .. }) {
            let me = self.clone();
            let camera = cam.id;
            tokio::spawn(async move {
                tokio::time::sleep(move_for.min(MAX_MOVE)).await;
                if me.generation(camera) != generation {
                    return;
                }
                if let Err(e) = gb.registry.ptz(&device, &channel, &Ptz::Stop).await {
                    warn!(camera, device, error = %e, "ptz: the stop after a move failed");
                }
            });
        }
        Ok(())
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

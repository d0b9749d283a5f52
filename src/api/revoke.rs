//! Long-lived views end when their caller's rights end. A live WebSocket, a WHEP session or a
//! notification stream was let in by the access layer once, at its start; [`until_revoked`] looks the
//! caller up again every `auth.recheck_seconds` and resolves, with the reason, as soon as the session or
//! token is gone (logout, expiry, revocation, the user deleted or given another password, role or regions),
//! the role is another, or the region of what is watched has left the caller's scope. It also resolves
//! when the view reached its maximum duration. A database that cannot answer for a moment ends nothing.
//!
//! The views of one caller (a wall of sixteen cameras is sixteen views of one session) and of one camera
//! share their answers through [`Rechecks`]: the database is asked at most once per half period for each,
//! so a view still ends at most one and a half periods after its rights did, and a hundred viewers cost
//! the database what one does.

use super::recent::Recent;
use super::AppState;
use crate::auth::{self, Principal};
use std::time::{Duration, Instant as StdInstant};
use tokio::time::Instant;

/// Why a view was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    SignedOut,
    RightsChanged,
    MaxDuration,
}

impl Ended {
    /// What the viewer is told (the console shows it).
    pub fn message(self) -> &'static str {
        match self {
            Ended::SignedOut => "your session or token has ended",
            Ended::RightsChanged => "your rights to this view have changed",
            Ended::MaxDuration => "the live session reached its maximum duration; open it again",
        }
    }
}

/// Resolves when `p` may no longer hold the view (see the module doc). `region_now` gives the region of
/// what is watched, looked up anew at each check (a camera's region), or `None` for a view of the
/// caller's whole scope (notifications, which filter by region themselves).
pub async fn until_revoked<F, Fut>(
    state: AppState,
    p: Principal,
    max: Option<Duration>,
    region_now: F,
) -> Ended
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let every = Duration::from_secs(state.cfg.auth.recheck_seconds.max(1));
    let deadline = max.map(|m| Instant::now() + m);
    let idle_ms = (state.cfg.auth.session_idle_minutes * 60_000) as i64;
    loop {
        let next = Instant::now() + every;
        match deadline {
            Some(d) if d <= next => {
                tokio::time::sleep_until(d).await;
                return Ended::MaxDuration;
            }
            _ => tokio::time::sleep_until(next).await,
        }
        match state.rechecks.caller(&state.pool, &p, idle_ms).await {
            Ok(None) => return Ended::SignedOut,
            Ok(Some(now)) => {
                if now.role != p.role {
                    return Ended::RightsChanged;
                }
                if let Some(region) = region_now().await {
                    if !now.scope.allows(&region) {
                        return Ended::RightsChanged;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(actor = %p.actor(), error = %e, "rechecking a live view's caller failed")
            }
        }
    }
}

/// The region a camera is in now: no region's (`""`, in no scope but a global one) when it is gone, and
/// `None` (not checked this time) when the database cannot say.
pub async fn camera_region(state: &AppState, camera_id: i64) -> Option<String> {
    state.rechecks.camera_region(&state.pool, camera_id).await
}

/// Recent answers of the rechecks (see the module doc): callers by credential, cameras' regions by id,
/// each read back for half a recheck period. What the database could not answer is not kept.
pub struct Rechecks {
    fresh: Duration,
    callers: Recent<String, Option<Principal>>,
    regions: Recent<i64, String>,
}

impl Rechecks {
    pub fn new(recheck_seconds: u64) -> Self {
        // Nothing is read back after a minute (the longest recheck period is far shorter); a few thousand
        // callers and cameras are a busy server's.
        let keep = Duration::from_secs(60);
        Rechecks {
            fresh: Duration::from_secs(recheck_seconds.max(1)) / 2,
            callers: Recent::new(keep, 4096),
            regions: Recent::new(keep, 4096),
        }
    }

    /// [`auth::recheck`] of `p`, or its answer for the same credential of less than half a period ago.
    async fn caller(
        &self,
        pool: &crate::db::Pool,
        p: &Principal,
        idle_ms: i64,
    ) -> Result<Option<Principal>, auth::AuthError> {
        if let Some(now) = self
            .callers
            .get(&p.credential, self.fresh, StdInstant::now())
        {
            return Ok(now);
        }
        let now = auth::recheck(pool, p, idle_ms).await?;
        self.callers
            .put(p.credential.clone(), now.clone(), StdInstant::now());
        Ok(now)
    }

    async fn camera_region(&self, pool: &crate::db::Pool, camera_id: i64) -> Option<String> {
        if let Some(region) = self.regions.get(&camera_id, self.fresh, StdInstant::now()) {
            return Some(region);
        }
        let region = match crate::db::cameras::get(pool, camera_id).await {
            Ok(c) => c.region_code,
            Err(crate::db::DbError::NotFound) => String::new(),
            Err(_) => return None,
        };
        self.regions
            .put(camera_id, region.clone(), StdInstant::now());
        Some(region)
    }
}

/// The longest a live session may last.
pub fn live_max(state: &AppState) -> Option<Duration> {
    Some(Duration::from_secs(
        state.cfg.live.max_session_seconds.max(1),
    ))
}

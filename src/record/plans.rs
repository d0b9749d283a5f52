//! Playback plans, cached: `video.mp4` of a range is planned once, and the Range requests a `<video>`
//! element sends while it plays or seeks reuse that plan.
//!
//! Planning reads the fragment headers of every segment in the range (a 24 h range of one-minute
//! segments is 1,440 files). A cached plan is keyed by camera, stream and range, and is valid while the
//! index rows it was made from are unchanged: each lookup compares the range's
//! [`index::Fingerprint`] (one aggregate query over the same index range scans, no rows sent) with the
//! one the plan was made with. A fragment committed to a segment in the range, a segment added, retimed
//! or removed by retention, changes the fingerprint, and the range is planned again.
//!
//! Invariants:
//! - A cached plan is served only with the fingerprint it was made from: never stale with respect to
//!   the index (which is what a plan reads, together with segment files the index never lets change
//!   within their indexed bytes).
//! - The cache is bounded ([`CAPACITY`] plans, least recently used out first); plans of one range that
//!   raced are both correct, the later one stays.

use std::sync::{Arc, Mutex, PoisonError};

use hashlink::LruCache;

use super::export::{self, Plan};
use super::footage::Footage;
use super::index::{self, Fingerprint};
use super::scan::ScanError;
use crate::db::{DbError, Pool};

/// Plans kept. A plan of 24 h of one-minute segments is about 100 KiB (its header and 1,440 parts).
pub const CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    camera_id: i64,
    stream: String,
    start_us: i64,
    end_us: i64,
    keyframes_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("planning task failed: {0}")]
    Task(String),
}

/// Where a plan came from, for the caller's timing and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cached,
    Planned,
}

pub struct PlanCache {
    footage: Footage,
    plans: Mutex<LruCache<Key, (Fingerprint, Arc<Plan>)>>,
}

impl PlanCache {
    pub fn new(footage: Footage) -> PlanCache {
        PlanCache {
            footage,
            plans: Mutex::new(LruCache::new(CAPACITY)),
        }
    }

    /// The plan of `[start_us, end_us)` of a camera's stream (`None`: no footage there), from the
    /// cache when the index rows of the range are unchanged.
    pub async fn plan(
        &self,
        pool: &Pool,
        camera_id: i64,
        stream: &str,
        start_us: i64,
        end_us: i64,
    ) -> Result<(Option<Arc<Plan>>, Source), PlanError> {
        self.plan_with(pool, camera_id, stream, (start_us, end_us), false)
            .await
    }

    /// [`PlanCache::plan`] of the whole footage, or of its keyframes alone (`export::plan_with`).
    pub async fn plan_with(
        &self,
        pool: &Pool,
        camera_id: i64,
        stream: &str,
        (start_us, end_us): (i64, i64),
        keyframes_only: bool,
    ) -> Result<(Option<Arc<Plan>>, Source), PlanError> {
        let key = Key {
            camera_id,
            stream: stream.to_owned(),
            start_us,
            end_us,
            keyframes_only,
        };
        let print = index::fingerprint(pool, camera_id, stream, start_us, end_us).await?;
        if let Some((cached, plan)) = self.lock().get(&key) {
            if *cached == print {
                return Ok((Some(Arc::clone(plan)), Source::Cached));
            }
        }
        let rows = index::overlapping(pool, camera_id, stream, start_us, end_us).await?;
        // The rows just read are what the plan is made from: their own fingerprint is its key's.
        let print = Fingerprint::of(&rows);
        let footage = self.footage.clone();
        let plan = tokio::task::spawn_blocking(move || {
            export::plan_with(&footage, &rows, start_us, end_us, keyframes_only)
        })
        .await
        .map_err(|e| PlanError::Task(e.to_string()))??
        .map(Arc::new);
        if let Some(plan) = &plan {
            self.lock().insert(key, (print, Arc::clone(plan)));
        }
        Ok((plan, Source::Planned))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Key, (Fingerprint, Arc<Plan>)>> {
        self.plans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

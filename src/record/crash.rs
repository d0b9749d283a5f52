//! Crash points: a test hook that kills the process between two steps of the write ordering
//! (docs/storage.md), so that the storage tests can check, for every step, that what start-up recovery
//! finds afterwards keeps the invariants.
//!
//! `VIGIL_CRASH_AT=NAME[:N]` makes the N-th arrival (1 when not given) at the point NAME abort the
//! process (`std::process::abort`: no destructor, no flush, as `kill -9`). Unset, a point is one relaxed
//! load. The points, in the order a segment lives through them: `segment.written` (header written, not
//! yet fsynced), `segment.synced` (file and folder fsynced, no row yet), `segment.indexed` (row `open`),
//! `fragment.written` (fragment written, not fsynced), `fragment.synced` (fsynced, row not updated),
//! `fragment.indexed`, `segment.completed`; and for deletion `garbage.listed` (rows gone and files
//! listed, committed), `garbage.unlinked` (file unlinked, folder not yet fsynced), `garbage.synced`
//! (folder fsynced, garbage row not yet removed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The configured point and after how many arrivals it fires.
fn target() -> Option<&'static (String, u64)> {
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let v = std::env::var("VIGIL_CRASH_AT").ok()?;
            let (name, n) = match v.split_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                None => (v, 1),
            };
            Some((name, n.max(1)))
        })
        .as_ref()
}

/// Aborts the process here when this is the configured point's N-th arrival.
pub fn point(name: &str) {
    static ARRIVALS: AtomicU64 = AtomicU64::new(0);
    let Some((want, n)) = target() else { return };
    if want == name && ARRIVALS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
        eprintln!("crash point {name}: aborting");
        std::process::abort();
    }
}

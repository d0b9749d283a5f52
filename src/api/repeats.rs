//! Repeated reads in the audit log. A `<video>` element fetches one recording as many byte ranges and
//! revalidates it, so "who played which camera's footage of which time" would otherwise be written dozens of
//! times a minute and bury the rows a supervisor looks for. A handler may mark its response's audit row as
//! collapsible ([`super::access::AuditNote::collapse`]): an identical successful row (same actor, action,
//! target and detail) written less than [`WINDOW`] ago is not written again.
//!
//! Invariants: the first request of a view is always written (a key is remembered only once its row is
//! appended); refusals and errors are never collapsed; another range, camera or actor is a new row; memory is
//! bounded (expired keys go first, and at most [`MAX_KEYS`] are kept).

use super::recent::Recent;
use std::time::{Duration, Instant};

/// How long an identical read is the same view.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Keys remembered at most (a few hundred viewers with a few dozen views each).
pub const MAX_KEYS: usize = 20_000;

/// Actor, action, target, detail.
pub type Key = (String, String, Option<String>, Option<String>);

pub struct Repeats {
    seen: Recent<Key, ()>,
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats {
            // Too many live keys: writing a few rows twice is better than growing without bound.
            seen: Recent::new(WINDOW, MAX_KEYS),
        }
    }
}

impl Repeats {
    /// Whether `key` was written less than [`WINDOW`] before `now`.
    pub fn is_repeat(&self, key: &Key, now: Instant) -> bool {
        self.seen.get(key, WINDOW, now).is_some()
    }

    /// Remembers that `key`'s row was written at `now`.
    pub fn remember(&self, key: Key, now: Instant) {
        self.seen.put(key, (), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(actor: &str, detail: &str) -> Key {
        (
            actor.into(),
            "playback".into(),
            Some("/api/v1/cameras/1/video.mp4".into()),
            Some(detail.into()),
        )
    }

    #[test]
    fn a_repeat_is_the_same_key_within_the_window() {
        let r = Repeats::default();
        let t0 = Instant::now();
        assert!(!r.is_repeat(&key("inv", "a"), t0));
        r.remember(key("inv", "a"), t0);
        assert!(r.is_repeat(&key("inv", "a"), t0 + Duration::from_secs(60)));
        assert!(!r.is_repeat(&key("inv", "b"), t0), "another range");
        assert!(!r.is_repeat(&key("other", "a"), t0), "another actor");
        assert!(
            !r.is_repeat(&key("inv", "a"), t0 + WINDOW),
            "the window has passed"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let r = Repeats::default();
        let t0 = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            r.remember(key("inv", &i.to_string()), t0);
        }
        assert!(r.seen.len() <= MAX_KEYS);
        // Expired keys go before live ones.
        let later = t0 + WINDOW;
        r.remember(key("inv", "new"), later);
        for i in 0..MAX_KEYS {
            r.remember(key("inv", &format!("n{i}")), later);
        }
        assert!(r.seen.len() <= MAX_KEYS);
    }
}

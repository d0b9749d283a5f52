//! Login throttling per client address (in memory). The per-account side (consecutive failures and the
//! lock they lead to) lives in the `users` table, so that it survives a restart and an admin can lift it.
//!
//! Invariants: an attempt counts from the moment it begins (before its password is checked, so that
//! concurrent attempts cannot overrun the limit), and only a good login hands its own count back; a
//! success does not reset the address's count (one valid account must not let an attacker guess others'
//! passwords faster); the table is bounded (expired windows are dropped when it grows).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct AddressThrottle {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl AddressThrottle {
    pub fn new(max_failures: u32, window_seconds: u64) -> AddressThrottle {
        AddressThrottle {
            max_failures: max_failures.max(1),
            window: Duration::from_secs(window_seconds.max(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from the address before its password is checked (so that attempts made at
    /// the same moment cannot all pass a check none of them has counted yet); `Err(seconds)` when the
    /// address must wait that long first. A good login hands its count back with [`Self::release`].
    pub fn begin(&self, addr: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, (start, _)| now < *start + window);
        }
        let entry = map.entry(addr.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.max_failures {
            return Err((entry.0 + self.window - now).as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    /// The attempt begun from the address was a good login, or checked no password (a locked account):
    /// it does not count as a failure.
    pub fn release(&self, addr: &str) {
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(addr) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_max_failures_per_address() {
        let t = AddressThrottle::new(3, 60);
        for _ in 0..3 {
            assert!(t.begin("1.2.3.4").is_ok());
        }
        let wait = t.begin("1.2.3.4").expect_err("throttled");
        assert!((1..=60).contains(&wait));
        assert!(
            t.begin("5.6.7.8").is_ok(),
            "other addresses are not affected"
        );
    }

    #[test]
    fn a_good_login_does_not_count() {
        let t = AddressThrottle::new(2, 60);
        for _ in 0..5 {
            assert!(t.begin("1.2.3.4").is_ok());
            t.release("1.2.3.4");
        }
        assert!(t.begin("1.2.3.4").is_ok());
        assert!(t.begin("1.2.3.4").is_ok());
        assert!(t.begin("1.2.3.4").is_err());
    }
}

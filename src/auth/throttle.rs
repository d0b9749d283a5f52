//! Login throttling per client address (in memory). The per-account side (consecutive failures and the
//! lock they lead to) lives in the `users` table, so that it survives a restart and an admin can lift it.
//!
//! Invariants: only failures count, and a success from an address does not reset its count (one valid
//! account must not let an attacker guess others' passwords faster); the table is bounded (expired windows
//! are dropped when it grows).

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

    /// `Err(seconds)` when the address must wait that long before trying again.
    pub fn check(&self, addr: &str) -> Result<(), u64> {
        let now = Instant::now();
        let map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(addr) {
            Some((start, n)) if *n >= self.max_failures && now < *start + self.window => {
                Err((*start + self.window - now).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed login from the address.
    pub fn fail(&self, addr: &str) {
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
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_max_failures_per_address() {
        let t = AddressThrottle::new(3, 60);
        for _ in 0..3 {
            assert!(t.check("1.2.3.4").is_ok());
            t.fail("1.2.3.4");
        }
        let wait = t.check("1.2.3.4").expect_err("throttled");
        assert!((1..=60).contains(&wait));
        assert!(
            t.check("5.6.7.8").is_ok(),
            "other addresses are not affected"
        );
    }
}

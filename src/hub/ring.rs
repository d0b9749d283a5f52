//! The one fan-out of the server: a bounded broadcast ring plus a cache of the items since the last
//! resume point (a keyframe). The hub's frame broadcast, the live MSE fragments and the live RTP frames are
//! each a [`Ring`] of their own item type.
//!
//! Invariants:
//! - Publishing never waits: the cache lock is held only to push a pointer, and the broadcast drops the
//!   oldest item for a consumer that fell more than the ring behind ([`Subscriber`] then skips to the next
//!   resume point).
//! - Items are shared by reference (`Arc`, `Bytes`); the ring and the cache never copy a payload.
//! - The cache starts at a resume point and holds every item after it, up to a byte budget. An item that
//!   would pass the budget empties it (a camera that never sends a keyframe cannot grow it); the cache
//!   stays empty until the next resume point, since without one its items are of no use to a new consumer.
//! - [`Ring::subscribe`] takes the cache and the receiver under one lock, so a new consumer sees each item
//!   exactly once: the cached items, then the live ones that follow them, with no gap and no duplicate.

use super::subscriber::{ResumePoint, Subscriber};
use std::sync::Mutex;
use tokio::sync::broadcast;

struct Cache<T> {
    items: Vec<T>,
    bytes: usize,
}

/// A broadcast ring with its cache of the items since the last resume point.
pub struct Ring<T> {
    tx: broadcast::Sender<T>,
    cache: Mutex<Cache<T>>,
    cache_bytes: usize,
}

impl<T: ResumePoint + Clone> Ring<T> {
    /// `capacity`: items a consumer may fall behind before it skips; `cache_bytes`: the cache's budget.
    pub fn new(capacity: usize, cache_bytes: usize) -> Ring<T> {
        let (tx, _) = broadcast::channel(capacity.max(2));
        Ring {
            tx,
            cache: Mutex::new(Cache {
                items: Vec::new(),
                bytes: 0,
            }),
            cache_bytes,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache<T>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an item to every consumer and to the cache. Never waits.
    pub fn publish(&self, item: T) {
        let mut cache = self.cache();
        let size = item.size();
        if item.is_resume_point() || cache.bytes + size > self.cache_bytes {
            cache.items.clear();
            cache.bytes = 0;
        }
        if (item.is_resume_point() || !cache.items.is_empty()) && size <= self.cache_bytes {
            cache.items.push(item.clone());
            cache.bytes += size;
        }
        // An error only means that nobody listens right now.
        let _ = self.tx.send(item);
    }

    /// Empties the cache, so that nobody starts from stale items (a camera run ended).
    pub fn reset(&self) {
        let mut cache = self.cache();
        cache.items.clear();
        cache.bytes = 0;
    }

    /// The cached items (from a resume point on) and a subscriber to the items that follow them.
    pub fn subscribe(&self) -> (Vec<T>, Subscriber<T>) {
        let cache = self.cache();
        (cache.items.clone(), Subscriber::new(self.tx.subscribe()))
    }

    /// The cached items alone.
    pub fn cached(&self) -> Vec<T> {
        self.cache().items.clone()
    }

    pub fn consumers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct It(u32, bool, usize);

    impl ResumePoint for It {
        fn is_resume_point(&self) -> bool {
            self.1
        }
        fn size(&self) -> usize {
            self.2
        }
    }

    #[test]
    fn the_cache_starts_at_a_resume_point_and_keeps_to_its_budget() {
        let ring = Ring::new(8, 100);
        ring.publish(It(0, false, 10));
        assert!(
            ring.cached().is_empty(),
            "nothing before the first resume point"
        );
        ring.publish(It(1, true, 40));
        ring.publish(It(2, false, 40));
        assert_eq!(ring.cached().len(), 2);
        ring.publish(It(3, false, 40)); // over the budget: dropped with the rest
        assert!(ring.cached().is_empty());
        ring.publish(It(4, false, 10));
        assert!(
            ring.cached().is_empty(),
            "stays empty until the next resume point"
        );
        ring.publish(It(5, true, 500)); // a resume point larger than the budget is not cached
        assert!(ring.cached().is_empty());
        ring.publish(It(6, true, 10));
        assert_eq!(ring.cached(), vec![It(6, true, 10)]);
    }

    #[tokio::test]
    async fn a_new_subscriber_sees_each_item_once() {
        let ring = Ring::new(8, 1_000);
        ring.publish(It(1, true, 1));
        ring.publish(It(2, false, 1));
        let (cached, mut sub) = ring.subscribe();
        ring.publish(It(3, false, 1));
        assert_eq!(cached, vec![It(1, true, 1), It(2, false, 1)]);
        match sub.recv().await {
            super::super::Received::Frame(it) => assert_eq!(it, It(3, false, 1)),
            other => panic!("{other:?}"),
        }
    }
}

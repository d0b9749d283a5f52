//! A consumer's cursor on a [`super::Ring`]: it never makes the sender wait, and after a lag it skips to
//! the next resume point.

use super::Frame;
use std::sync::Arc;
use tokio::sync::broadcast;

/// An item of a ring: whether a consumer that lost items may resume at it, and what it weighs.
pub trait ResumePoint {
    fn is_resume_point(&self) -> bool;
    /// Payload bytes the item holds, for the cache's budget.
    fn size(&self) -> usize;
}

/// What a consumer gets from [`Subscriber::recv`].
#[derive(Debug)]
pub enum Received<T = Arc<Frame>> {
    Frame(T),
    /// The consumer fell behind and `skipped` items were dropped for it; the next item it gets is a
    /// resume point (a keyframe).
    Skipped {
        skipped: u64,
    },
    /// The stream was removed (camera deleted or server stopping).
    Closed,
}

/// One consumer's cursor on a broadcast. Never makes the sender wait: a consumer that falls more than the
/// ring behind loses items, learns how many, and resumes at the next resume point.
///
/// Cancel-safe: [`Subscriber::recv`] may be dropped at any await (a `select!` branch that lost) without
/// losing its place. The only await is the broadcast's own `recv`, which is cancel-safe, and what a lag
/// started (the count, and that items must be dropped up to the next resume point) is kept in the
/// subscriber, not in the future: a consumer never gets an item after a hole that is not a resume point.
pub struct Subscriber<T = Arc<Frame>> {
    rx: broadcast::Receiver<T>,
    /// A resume point found while skipping, handed out by the next `recv`.
    pending: Option<T>,
    /// Items lost since a lag, while waiting for the next resume point.
    skipping: Option<u64>,
    /// Items this consumer wants (others are passed over silently); resume points always pass.
    keep: fn(&T) -> bool,
}

impl<T: ResumePoint + Clone> Subscriber<T> {
    pub fn new(rx: broadcast::Receiver<T>) -> Subscriber<T> {
        Subscriber {
            rx,
            pending: None,
            skipping: None,
            keep: |_| true,
        }
    }

    /// This subscriber, handing out only the items `keep` accepts (a video consumer of a stream that
    /// carries audio too).
    pub fn only(mut self, keep: fn(&T) -> bool) -> Subscriber<T> {
        self.keep = keep;
        self
    }

    /// The next item. After a lag, items up to the next resume point are dropped too, since they cannot
    /// be decoded without the ones lost, and the lag is reported once before that resume point.
    pub async fn recv(&mut self) -> Received<T> {
        loop {
            if let Some(item) = self.pending.take().filter(|i| (self.keep)(i)) {
                return Received::Frame(item);
            }
            let got = self.rx.recv().await;
            // From here on nothing awaits: the state below changes only once an item was taken.
            match (got, self.skipping) {
                (Ok(item), None) if (self.keep)(&item) => return Received::Frame(item),
                (Ok(_), None) => {}
                (Ok(item), Some(skipped)) if item.is_resume_point() => {
                    self.skipping = None;
                    self.pending = Some(item);
                    return Received::Skipped { skipped };
                }
                (Ok(_), Some(skipped)) => self.skipping = Some(skipped + 1),
                (Err(broadcast::error::RecvError::Lagged(n)), s) => {
                    self.skipping = Some(s.unwrap_or(0) + n)
                }
                (Err(broadcast::error::RecvError::Closed), _) => return Received::Closed,
            }
        }
    }
}

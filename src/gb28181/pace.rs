//! The pace of a playback that a sender serves (Vigil's recordings to a superior, the simulated NVR's
//! footage to a platform): when each frame of footage is due, at the speed, pause and position MANSRTSP
//! asked for.
//!
//! Invariant: a frame of footage time `t` is due at `wall + (t - footage) / scale`, counted from the last
//! anchor; every change (speed, pause, resume, seek) re-anchors at the next frame to send, so the output
//! never bursts nor stalls across a change.

use super::mansrtsp::Command;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Pace {
    pub scale: f64,
    pub paused: bool,
    wall: Instant,
    footage_ms: i64,
}

impl Pace {
    /// A pace at 1x whose first frame, at footage time `first_ms`, is due now.
    pub fn new(first_ms: i64) -> Pace {
        Pace {
            scale: 1.0,
            paused: false,
            wall: Instant::now(),
            footage_ms: first_ms,
        }
    }

    /// Counts from now, with the frame at footage time `next_ms` due at once.
    pub fn anchor(&mut self, next_ms: i64) {
        self.wall = Instant::now();
        self.footage_ms = next_ms;
    }

    /// When the frame at footage time `at_ms` is due.
    pub fn due(&self, at_ms: i64) -> Instant {
        let s = (at_ms - self.footage_ms).max(0) as f64 / 1000.0 / self.scale;
        self.wall + Duration::from_secs_f64(s)
    }

    /// Applies a command's speed and pause; its seek (seconds after the range's start) is returned for
    /// the sender to carry out, after which it calls [`Pace::anchor`] with the frame it goes on from.
    pub fn apply(&mut self, cmd: Command) -> Option<f64> {
        match cmd {
            Command::Pause => {
                self.paused = true;
                None
            }
            Command::Play { scale, from_s } => {
                if let Some(s) = scale {
                    self.scale = s;
                }
                self.paused = false;
                from_s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_times_is_a_quarter_of_the_time() {
        let mut p = Pace::new(10_000);
        assert_eq!(p.due(11_000) - p.due(10_000), Duration::from_secs(1));
        assert_eq!(
            p.apply(Command::Play {
                scale: Some(4.0),
                from_s: None
            }),
            None
        );
        p.anchor(11_000);
        assert_eq!(p.due(15_000) - p.due(11_000), Duration::from_secs(1));
        assert_eq!(p.apply(Command::Pause), None);
        assert!(p.paused);
        let seek = p.apply(Command::Play {
            scale: None,
            from_s: Some(3.0),
        });
        assert_eq!((seek, p.paused, p.scale), (Some(3.0), false, 4.0));
    }
}

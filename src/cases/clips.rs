//! Clip rules: which footage shows a case. A pure function of the case's events, the site's rules and
//! the cameras of its positions, so that the same events in any order give the same clips.
//!
//! - Approval case: for each event at a position, every camera of that position from the event minus
//!   the pre-roll until the next later event of the case at the same position, or plus the post-roll
//!   when there is none.
//! - Bid case: each session (opening_start..opening_end, evaluation_start..evaluation_end) on every camera
//!   of the rooms and seats the session's events name (their position and `attributes.positions`). A
//!   session still running ends now (at most `OPEN_SESSION_MS` after its start).
//!
//! Invariants: clips are sorted (start, camera, end) and unique; a clip never ends before it starts.

use std::collections::{BTreeMap, BTreeSet};

/// A session without its end event is taken to last at most this long.
pub const OPEN_SESSION_MS: i64 = 24 * 3600 * 1000;

/// Per-site rules (or the configured defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rules {
    pub pre_roll_s: i64,
    pub post_roll_s: i64,
    /// Deadline after the first event when no event names one.
    pub deadline_hours: Option<i64>,
    /// Red card this long after the deadline.
    pub followup_hours: i64,
}

/// What the rules need of an event.
#[derive(Debug, Clone)]
pub struct EventRef {
    pub event_id: String,
    pub kind: String,
    pub at: i64,
    pub position: String,
    pub extra_positions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClipPlan {
    pub start: i64,
    pub camera_id: i64,
    pub end: i64,
    pub position: String,
    /// What the clip shows: the event id (approval) or the session (`opening`, `evaluation`).
    pub reason: String,
    /// The session has no end event yet.
    pub open: bool,
}

/// Orders events the same way whatever order they arrived in.
pub fn sort_events(events: &mut [EventRef]) {
    events.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.event_id.cmp(&b.event_id)));
}

/// The clips of a case. `cameras` maps a position code to its camera ids; `events` must be sorted by
/// [`sort_events`].
pub fn clips(
    case_type: &str,
    events: &[EventRef],
    rules: &Rules,
    cameras: &BTreeMap<String, Vec<i64>>,
    now: i64,
) -> Vec<ClipPlan> {
    let mut out = BTreeSet::new();
    let cams = |p: &str| cameras.get(p).map(Vec::as_slice).unwrap_or(&[]);
    if case_type == "approval" {
        for (i, e) in events.iter().enumerate() {
            let next = events[i + 1..]
                .iter()
                .find(|n| n.position == e.position && n.at > e.at);
            let start = e.at - rules.pre_roll_s * 1000;
            let end = match next {
                Some(n) => n.at,
                None => e.at + rules.post_roll_s * 1000,
            };
            for &camera_id in cams(&e.position) {
                out.insert(ClipPlan {
                    start,
                    camera_id,
                    end,
                    position: e.position.clone(),
                    reason: e.event_id.clone(),
                    open: false,
                });
            }
        }
    } else {
        for s in sessions(events, now) {
            for p in &s.positions {
                for &camera_id in cams(p) {
                    out.insert(ClipPlan {
                        start: s.start,
                        camera_id,
                        end: s.end,
                        position: p.clone(),
                        reason: s.name.to_owned(),
                        open: s.open,
                    });
                }
            }
        }
    }
    // One clip per camera and stretch: a camera covering two positions of a session gives one clip.
    let mut seen = BTreeSet::new();
    out.into_iter()
        .filter(|c| c.end > c.start && seen.insert((c.camera_id, c.start, c.end)))
        .collect()
}

/// A bid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub name: &'static str,
    pub start: i64,
    pub end: i64,
    pub open: bool,
    pub positions: BTreeSet<String>,
}

/// Pairs each session start with the next end of the same kind; an end without a start is ignored.
pub fn sessions(events: &[EventRef], now: i64) -> Vec<Session> {
    let mut out = Vec::new();
    for (name, start_kind, end_kind) in [
        ("opening", "opening_start", "opening_end"),
        ("evaluation", "evaluation_start", "evaluation_end"),
    ] {
        let mut i = 0;
        while i < events.len() {
            let e = &events[i];
            if e.kind != start_kind {
                i += 1;
                continue;
            }
            let mut positions: BTreeSet<String> = BTreeSet::new();
            let mut add = |ev: &EventRef| {
                positions.insert(ev.position.clone());
                positions.extend(ev.extra_positions.iter().cloned());
            };
            add(e);
            // The end is the first end after this start (before another start of the same kind).
            let mut end = None;
            let mut j = i + 1;
            while j < events.len() {
                let n = &events[j];
                if n.kind == end_kind {
                    add(n);
                    end = Some(n.at);
                    break;
                }
                if n.kind == start_kind {
                    break;
                }
                j += 1;
            }
            let (end, open) = match end {
                Some(t) => (t, false),
                None => ((now).clamp(e.at + 1, e.at + OPEN_SESSION_MS), true),
            };
            out.push(Session {
                name,
                start: e.at,
                end,
                open,
                positions,
            });
            i = if open { i + 1 } else { j + 1 };
        }
    }
    out.sort_by_key(|s| (s.start, s.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, kind: &str, at_s: i64, pos: &str) -> EventRef {
        EventRef {
            event_id: id.into(),
            kind: kind.into(),
            at: at_s * 1000,
            position: pos.into(),
            extra_positions: vec![],
        }
    }

    const RULES: Rules = Rules {
        pre_roll_s: 30,
        post_roll_s: 120,
        deadline_hours: None,
        followup_hours: 72,
    };

    #[test]
    fn approval_clips_run_to_the_next_event_at_the_position() {
        let cams = BTreeMap::from([("A1".into(), vec![1, 2]), ("B1".into(), vec![3])]);
        let mut events = vec![
            ev("c", "completed", 1000, "A1"),
            ev("a", "accepted", 100, "A1"),
            ev("b", "reviewed", 500, "B1"),
        ];
        sort_events(&mut events);
        let c = clips("approval", &events, &RULES, &cams, 0);
        let got: Vec<_> = c
            .iter()
            .map(|c| (c.camera_id, c.start / 1000, c.end / 1000))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 70, 1000),
                (2, 70, 1000),
                (3, 470, 620),
                (1, 970, 1120),
                (2, 970, 1120)
            ]
        );
        // Any order, same clips.
        events.reverse();
        sort_events(&mut events);
        assert_eq!(clips("approval", &events, &RULES, &cams, 0), c);
    }

    #[test]
    fn bid_sessions_cover_rooms_and_seats() {
        let cams = BTreeMap::from([
            ("R1".into(), vec![1]),
            ("R2".into(), vec![2]),
            ("S1".into(), vec![3]),
        ]);
        let mut e2 = ev("e1", "evaluation_start", 200, "R2");
        e2.extra_positions = vec!["S1".into()];
        let mut events = vec![
            ev("o1", "opening_start", 100, "R1"),
            ev("o2", "opening_end", 150, "R1"),
            e2,
        ];
        sort_events(&mut events);
        let c = clips("bid", &events, &RULES, &cams, 260_000);
        let got: Vec<_> = c
            .iter()
            .map(|c| (c.camera_id, c.start / 1000, c.end / 1000, c.open))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 100, 150, false),
                (2, 200, 260, true),
                (3, 200, 260, true)
            ]
        );
    }
}

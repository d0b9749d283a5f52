//! Where a camera's recording has holes worth fetching back, and which parts of a hole a device's records
//! can fill. Pure functions over spans (Unix µs, sorted, disjoint: `record::index::merge_spans`).

/// The holes between consecutive spans at least `min_us` long. Only holes with footage after them count:
/// a camera still offline has no hole yet, its link has not come back.
pub fn holes(spans: &[(i64, i64)], min_us: i64) -> Vec<(i64, i64)> {
    spans
        .windows(2)
        .map(|w| (w[0].1, w[1].0))
        .filter(|(a, b)| b - a >= min_us)
        .collect()
}

/// The parts of `range` that `spans` do not cover.
pub fn uncovered(range: (i64, i64), spans: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut at = range.0;
    for &(s, e) in spans {
        if e <= at || s >= range.1 {
            continue;
        }
        if s > at {
            out.push((at, s.min(range.1)));
        }
        at = at.max(e);
    }
    if at < range.1 {
        out.push((at, range.1));
    }
    out
}

/// The parts of the holes that the device's records cover, each a piece to fetch.
pub fn pieces(holes: &[(i64, i64)], records: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(hs, he) in holes {
        for &(rs, re) in records {
            let (s, e) = (hs.max(rs), he.min(re));
            if e > s {
                out.push((s, e));
            }
        }
    }
    out.sort_unstable();
    // Records of one device may overlap (a time record and an alarm record of the same minutes).
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_need_footage_on_both_sides() {
        let spans = [(0, 10), (12, 20), (40, 50)];
        assert_eq!(holes(&spans, 5), vec![(20, 40)]);
        assert_eq!(holes(&spans, 1), vec![(10, 12), (20, 40)]);
        assert!(holes(&[(0, 10)], 1).is_empty());
    }

    #[test]
    fn uncovered_parts_of_a_range() {
        assert_eq!(uncovered((0, 100), &[]), vec![(0, 100)]);
        assert_eq!(
            uncovered((10, 100), &[(0, 20), (30, 40), (90, 120)]),
            vec![(20, 30), (40, 90)]
        );
        assert!(uncovered((10, 20), &[(0, 30)]).is_empty());
    }

    #[test]
    fn pieces_are_what_records_cover_merged() {
        let holes = [(100, 200), (300, 400)];
        let records = [(50, 150), (120, 180), (170, 260), (390, 500)];
        assert_eq!(pieces(&holes, &records), vec![(100, 200), (390, 400)]);
        assert!(pieces(&holes, &[(200, 300)]).is_empty());
    }
}

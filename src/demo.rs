//! `vigil demo`'s stand-in for the approval and bid-trading systems: every `period` it posts the events of
//! a few cases at the demo's positions (config/demo.toml), through the same path as `POST /events`, so the
//! investigator workspace has cases with footage, and the wall sees a yellow card now and then.
//!
//! Each run numbers its cases from its start time, so a demo restarted on the same data directory never
//! reuses a case number or an event id. Every fourth approval case is given a deadline 90 s away and never
//! completed: it earns a yellow card, whose alarm pops its cameras onto the supervisors' walls.

use crate::auth::Scope;
use crate::cases::CaseService;
use crate::db::ms_to_rfc3339;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Where the demo's events happen: (site name, positions, case number prefix).
const HALLS: &[(&str, &[&str], &str)] = &[
    ("章贡区政务服务中心", &["A01", "A12"], "ZG"),
    ("南昌市行政服务中心", &["B03"], "NC"),
];
const BID_SITE: &str = "赣州市公共资源交易中心";
/// Bid project steps by tick: (tick, kind, room).
const BID_STEPS: &[(u64, &str, &str)] = &[
    (1, "opening_start", "开标室1"),
    (3, "opening_end", "开标室1"),
    (4, "evaluation_start", "评标室2"),
    (8, "evaluation_end", "评标室2"),
];

async fn site_id(cases: &CaseService, name: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT id FROM sites WHERE name = $1")
        .bind(name)
        .fetch_optional(&cases.pool)
        .await
        .ok()
        .flatten()
}

fn event(case_no: &str, case_type: &str, kind: &str, site: i64, position: &str) -> Value {
    let now = crate::time::now_ms();
    json!({
        "event_id": format!("demo-{case_no}-{kind}"), "case_no": case_no, "case_type": case_type,
        "kind": kind, "at": ms_to_rfc3339(now), "site_id": site, "position": position,
        "operator": "演示窗口人员",
    })
}

/// The events of tick `n` (1, 2, ...) of a run started at `run` (a `YYYYMMDD-HHMM` stamp).
fn tick_events(run: &str, n: u64, halls: &[(i64, &[&str], &str)], bid: Option<i64>) -> Vec<Value> {
    let mut out = Vec::new();
    let now = crate::time::now_ms();
    for &(site, positions, prefix) in halls {
        let no = |k: u64| format!("{prefix}-{run}-{k:03}");
        let pos = |k: u64| positions[(k as usize) % positions.len()];
        let late = |k: u64| k.is_multiple_of(4);
        let mut accepted = event(&no(n), "approval", "accepted", site, pos(n));
        if late(n) {
            accepted["deadline"] = json!(ms_to_rfc3339(now + 90_000));
        }
        out.push(accepted);
        if n > 1 && !late(n - 1) {
            out.push(event(
                &no(n - 1),
                "approval",
                "processing",
                site,
                pos(n - 1),
            ));
        }
        if n > 2 && !late(n - 2) {
            out.push(event(&no(n - 2), "approval", "completed", site, pos(n - 2)));
        }
    }
    if let Some(site) = bid {
        for (_, kind, room) in BID_STEPS.iter().filter(|s| s.0 == n) {
            out.push(event(&format!("GZGC-{run}"), "bid", kind, site, room));
        }
    }
    out
}

/// Starts posting the demo's case events every `period`.
pub fn start_feeder(cases: Arc<CaseService>, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let run = chrono::Local::now().format("%Y%m%d-%H%M").to_string();
        let mut halls = Vec::new();
        for &(name, positions, prefix) in HALLS {
            if let Some(id) = site_id(&cases, name).await {
                halls.push((id, positions, prefix));
            }
        }
        let bid = site_id(&cases, BID_SITE).await;
        let mut n = 0;
        loop {
            // The first events come after a period of footage, so that their clips have pre-roll.
            tokio::time::sleep(period).await;
            n += 1;
            let items = tick_events(&run, n, &halls, bid);
            match cases
                .post_events(&Scope::All, "demo:approval-system", &items)
                .await
            {
                Ok(r) if r.rejected.is_empty() => {}
                Ok(r) => tracing::warn!(rejected = ?r.rejected, "demo events rejected"),
                Err(e) => tracing::error!(error = %e, "demo events failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_event_is_valid_and_cases_complete_except_the_late_ones() {
        let halls: Vec<(i64, &[&str], &str)> = vec![(1, &["A01", "A12"], "ZG")];
        let mut all = Vec::new();
        for n in 1..=12 {
            all.extend(tick_events("20261122-0300", n, &halls, Some(3)));
        }
        let mut ids = std::collections::HashSet::new();
        for e in &all {
            crate::cases::model::check(e).unwrap_or_else(|err| panic!("{e}: {err}"));
            assert!(ids.insert(e["event_id"].to_string()), "duplicate id {e}");
        }
        let completed = |no: &str| {
            all.iter()
                .any(|e| e["case_no"] == no && e["kind"] == "completed")
        };
        assert!(completed("ZG-20261122-0300-001"));
        assert!(
            !completed("ZG-20261122-0300-004"),
            "the late case stays open"
        );
        let late = all
            .iter()
            .find(|e| e["case_no"] == "ZG-20261122-0300-004")
            .expect("case 4");
        assert!(late["deadline"].is_string());
        let bid: Vec<&str> = all
            .iter()
            .filter(|e| e["case_type"] == "bid")
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(
            bid,
            [
                "opening_start",
                "opening_end",
                "evaluation_start",
                "evaluation_end"
            ]
        );
    }
}

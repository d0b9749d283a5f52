//! Cases: the events the approval and bid-trading systems post, the cases they make, the footage that
//! shows each case (clips), cards and alarms, holds by case, and signed evidence packages.
//!
//! Parts:
//! - `model`: one event item checked on its own (no database).
//! - `store`: batch ingestion (idempotent by `event_id`, order-independent case rows), reads, search.
//! - `clips`: the clip rules (pure). `coverage`: clips against the segment index. `view`: the case as
//!   `GET /cases/{case_no}` shows it.
//! - `cards`: yellow/red cards, their alarms and notifications, the deadline sweep.
//! - `camera_alarms`: camera status notifications and camera-offline alarms.
//! - `holds`: holds by case on the recording engine's `holds` table; bid sessions held automatically.
//! - `signing`: the Ed25519 key of the data directory. `package`: writing and verifying packages.
//! - `export`: the background export job.
//!
//! Invariants are written in each module; the decisions in docs/cases.md.

pub mod camera_alarms;
pub mod cards;
pub mod clips;
pub mod countersign;
pub mod coverage;
pub mod export;
pub mod holds;
pub mod model;
pub mod package;
pub mod rows;
pub mod signing;
pub mod store;
pub mod thumbnail;
pub mod uptime;
pub mod verify;
pub mod view;

use crate::config::CasesConfig;
use crate::db::Pool;
use clips::Rules;
use ed25519_dalek::SigningKey;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// What the case handlers share: the rules' defaults, the signing key, the notification channel and the
/// progress of running exports.
pub struct CaseService {
    pub pool: Pool,
    pub cfg: CasesConfig,
    pub data_dir: PathBuf,
    /// Where recorded segments are read from (local disk or bucket).
    pub footage: crate::record::footage::Footage,
    pub key: SigningKey,
    /// JSON notifications: case cards, camera status changes and alarms.
    pub notify: broadcast::Sender<Arc<str>>,
    pub exports: Mutex<HashMap<String, Arc<AtomicU32>>>,
}

impl CaseService {
    /// Loads (or makes) the signing key. Call inside tokio; [`CaseService::start_sweeper`] starts the card
    /// sweep.
    pub fn new(
        pool: Pool,
        cfg: CasesConfig,
        data_dir: PathBuf,
        footage: crate::record::footage::Footage,
    ) -> Result<Arc<CaseService>, signing::KeyError> {
        let key = signing::load_or_create(&data_dir)?;
        let (notify, _) = broadcast::channel(256);
        Ok(Arc::new(CaseService {
            pool,
            cfg,
            data_dir,
            footage,
            key,
            notify,
            exports: Mutex::new(HashMap::new()),
        }))
    }

    pub fn defaults(&self) -> Rules {
        Rules {
            pre_roll_s: self.cfg.pre_roll_seconds as i64,
            post_roll_s: self.cfg.post_roll_seconds.max(1) as i64,
            deadline_hours: (self.cfg.deadline_hours > 0).then_some(self.cfg.deadline_hours as i64),
            followup_hours: self.cfg.followup_hours.max(1) as i64,
        }
    }

    /// Stores a batch of raw event items for `actor` within `scope` (see [`store::ingest`]), then raises
    /// and announces the cards the batch changed.
    pub async fn post_events(
        &self,
        scope: &crate::auth::Scope,
        actor: &str,
        items: &[serde_json::Value],
    ) -> Result<store::IngestReport, crate::db::DbError> {
        let mut report = store::ingest(&self.pool, scope, actor, items, &self.defaults()).await?;
        tracing::info!(
            actor,
            accepted = report.accepted,
            duplicates = report.duplicates,
            rejected = report.rejected.len(),
            "case events"
        );
        let changes = std::mem::take(&mut report.card_changes);
        self.announce(changes).await;
        for n in cases_updated(std::mem::take(&mut report.touched)) {
            let _ = self.notify.send(Arc::from(n.to_string()));
        }
        Ok(report)
    }

    /// Raises the alarms of changed cards and sends their notifications (cards are announced before the
    /// batch's `cases_updated`, so a page refreshing on the latter sees its card).
    pub async fn announce(&self, changes: Vec<(store::CaseRow, cards::Card)>) {
        for (case, card) in changes {
            match cards::raise_card_alarm(&self.pool, &case, card).await {
                Ok(Some(n)) => {
                    let _ = self.notify.send(Arc::from(n.to_string()));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(case = %case.case_no, error = %e, "raising a card alarm failed")
                }
            }
        }
    }

    /// Every `card_interval_seconds`, gives cards to open cases whose deadlines passed.
    pub fn start_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(me.cfg.card_interval_seconds.max(1));
            loop {
                tokio::time::sleep(every).await;
                match cards::sweep(&me.pool, crate::db::now_ms()).await {
                    Ok(changes) => me.announce(changes).await,
                    Err(e) => tracing::error!(error = %e, "card sweep failed"),
                }
                if let Err(e) = export::expire(&me, crate::db::now_ms()).await {
                    tracing::error!(error = %e, "export expiry failed");
                }
            }
        })
    }
}

/// Case numbers sent in one `cases_updated` notification at most.
const CASES_PER_NOTIFICATION: usize = 500;

/// The `cases_updated` notifications of a batch: one per region (notifications are filtered by the
/// `region_code` of each), so a large batch costs a few messages, not one per case, and cannot push the
/// card alarms out of a slow viewer's queue.
fn cases_updated(touched: Vec<(String, String)>) -> Vec<serde_json::Value> {
    let mut by_region: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (case_no, region) in touched {
        by_region.entry(region).or_default().push(case_no);
    }
    by_region
        .into_iter()
        .flat_map(|(region, nos)| {
            nos.chunks(CASES_PER_NOTIFICATION)
                .map(|c| serde_json::json!({"type": "cases_updated", "region_code": region, "case_nos": c}))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod notification_tests {
    use super::*;

    #[test]
    fn one_cases_updated_per_region_and_chunk() {
        let mut touched: Vec<(String, String)> = (0..1001)
            .map(|i| (format!("A{i:04}"), "360702".to_owned()))
            .collect();
        touched.push(("B1".into(), "360100".into()));
        let n = cases_updated(touched);
        assert_eq!(n.len(), 4, "{n:?}");
        assert_eq!(n[0]["region_code"], "360100");
        assert_eq!(n[0]["case_nos"], serde_json::json!(["B1"]));
        let sizes: Vec<usize> = n[1..]
            .iter()
            .map(|m| m["case_nos"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, vec![500, 500, 1]);
        assert!(n.iter().all(|m| m["type"] == "cases_updated"));
    }
}

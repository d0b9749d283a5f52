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
pub mod coverage;
pub mod export;
pub mod holds;
pub mod model;
pub mod package;
pub mod signing;
pub mod store;
pub mod thumbnail;
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
    ) -> Result<Arc<CaseService>, signing::KeyError> {
        let key = signing::load_or_create(&data_dir)?;
        let (notify, _) = broadcast::channel(256);
        Ok(Arc::new(CaseService {
            pool,
            cfg,
            data_dir,
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
        Ok(report)
    }

    /// Raises the alarms of changed cards and sends their notifications.
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
            }
        })
    }
}

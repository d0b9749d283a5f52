//! Cases in the database: batch ingestion of events, the case row derived from its events, reads and
//! search.
//!
//! Invariants:
//! - A batch is one write transaction (`BEGIN IMMEDIATE`): its good items are all stored with their cases
//!   brought up to date, or nothing is. Bad items are skipped and reported; they never abort the batch.
//! - `event_id` is unique: an item whose id is stored with the same content hash is a duplicate (nothing
//!   written); with another hash it is refused.
//! - Every column of `cases` but `case_no` is recomputed from all the case's events (sorted by time, then
//!   `event_id`) whenever one arrives, so that the same events in any order give the same case.
//! - A case has one type and one site: an event that contradicts the stored ones is refused.

use super::cards::{card_for, Card};
use super::clips::{sort_events, EventRef, Rules};
use super::model::{self, Event};
pub use super::rows::{events, get, CaseRow, EventRow};
use super::rows::{get_conn, CASE_COLUMNS};
use crate::auth::Scope;
use crate::db::sql::SqlBuilder;
use crate::db::{now_ms, DbError, Pool};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// What one `POST /events` did.
#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejected>,
    /// Cases whose card changed (for alarms and notifications); not part of the answer.
    #[serde(skip)]
    pub card_changes: Vec<(CaseRow, Card)>,
    /// Every case the batch changed, with its region (for the `cases_updated` notification).
    #[serde(skip)]
    pub touched: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub event_id: Option<String>,
    pub error: String,
}

/// The rules in force at a site.
pub async fn rules_for(
    conn: &mut crate::db::Conn,
    site_id: i64,
    defaults: &Rules,
) -> Result<Rules, DbError> {
    let row: Option<(i64, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT pre_roll_s, post_roll_s, deadline_hours, followup_hours FROM case_rules WHERE site_id = $1",
    )
    .bind(site_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some((pre, post, dl, fu)) => Rules {
            pre_roll_s: pre,
            post_roll_s: post,
            deadline_hours: dl,
            followup_hours: fu,
        },
        None => *defaults,
    })
}

pub async fn set_rules(pool: &Pool, site_id: i64, r: &Rules) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO case_rules (site_id, pre_roll_s, post_roll_s, deadline_hours, followup_hours, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (site_id) DO UPDATE SET pre_roll_s = excluded.pre_roll_s,
             post_roll_s = excluded.post_roll_s, deadline_hours = excluded.deadline_hours,
             followup_hours = excluded.followup_hours, updated_at = excluded.updated_at",
    )
    .bind(site_id)
    .bind(r.pre_roll_s)
    .bind(r.post_roll_s)
    .bind(r.deadline_hours)
    .bind(r.followup_hours)
    .bind(now_ms())
    .execute(pool)
    .await
    .map_err(|e| DbError::from_constraint(e, "case rules"))?;
    Ok(())
}

/// A site as the batch sees it: its region and its position codes.
struct SiteInfo {
    region_code: String,
    positions: BTreeSet<String>,
}

async fn site_info(
    tx: &mut crate::db::Tx<'_>,
    cache: &mut HashMap<i64, Option<SiteInfo>>,
    site_id: i64,
) -> Result<(), DbError> {
    if cache.contains_key(&site_id) {
        return Ok(());
    }
    let region: Option<(String,)> = sqlx::query_as("SELECT region_code FROM sites WHERE id = $1")
        .bind(site_id)
        .fetch_optional(&mut **tx)
        .await?;
    let info = match region {
        None => None,
        Some((region_code,)) => {
            let codes: Vec<(String,)> =
                sqlx::query_as("SELECT code FROM positions WHERE site_id = $1")
                    .bind(site_id)
                    .fetch_all(&mut **tx)
                    .await?;
            Some(SiteInfo {
                region_code,
                positions: codes.into_iter().map(|(c,)| c).collect(),
            })
        }
    };
    cache.insert(site_id, info);
    Ok(())
}

/// What became of one item of a batch.
enum Outcome {
    Accepted,
    Duplicate,
    Rejected(String),
}

/// A batch being stored: its transaction and what it learned so far.
struct Batch<'a> {
    tx: crate::db::Tx<'static>,
    scope: &'a Scope,
    actor: &'a str,
    now: i64,
    sites: HashMap<i64, Option<SiteInfo>>,
    /// Cases as known in this batch: (type, site, region).
    known: HashMap<String, (String, i64, String)>,
    /// Content hashes of the events stored by this batch.
    batch_ids: HashMap<String, String>,
    touched: BTreeSet<String>,
}

/// Stores a batch of raw items; see the module invariants.
pub async fn ingest(
    pool: &Pool,
    scope: &Scope,
    actor: &str,
    items: &[Value],
    defaults: &Rules,
) -> Result<IngestReport, DbError> {
    let mut report = IngestReport::default();
    let mut b = Batch {
        tx: crate::db::begin_write(pool).await?,
        scope,
        actor,
        now: now_ms(),
        sites: HashMap::new(),
        known: HashMap::new(),
        batch_ids: HashMap::new(),
        touched: BTreeSet::new(),
    };
    for (index, item) in items.iter().enumerate() {
        let (event_id, outcome) = match model::check(item) {
            Ok(e) => (Some(e.event_id.clone()), b.store(&e).await?),
            Err(msg) => {
                let id = item.get("event_id").and_then(Value::as_str);
                (id.map(str::to_owned), Outcome::Rejected(msg))
            }
        };
        match outcome {
            Outcome::Accepted => report.accepted += 1,
            Outcome::Duplicate => report.duplicates += 1,
            Outcome::Rejected(error) => report.rejected.push(Rejected {
                index,
                event_id,
                error,
            }),
        }
    }
    b.finish(defaults, &mut report).await?;
    Ok(report)
}

impl Batch<'_> {
    async fn store(&mut self, e: &Event) -> Result<Outcome, DbError> {
        // Idempotency first: a retry of a stored event is a duplicate whatever changed since.
        if let Some(hash) = self.stored_hash(&e.event_id).await? {
            return Ok(if hash == e.content_hash {
                Outcome::Duplicate
            } else {
                let msg = format!(
                    "event_id {:?} was already used for a different event",
                    e.event_id
                );
                Outcome::Rejected(msg)
            });
        }
        let region = match self.site_region(e).await? {
            Ok(r) => r,
            Err(msg) => return Ok(Outcome::Rejected(msg)),
        };
        if let Err(msg) = self.case_for(e, &region).await? {
            return Ok(Outcome::Rejected(msg));
        }
        self.insert_event(e).await?;
        Ok(Outcome::Accepted)
    }

    async fn stored_hash(&mut self, event_id: &str) -> Result<Option<String>, DbError> {
        if let Some(h) = self.batch_ids.get(event_id) {
            return Ok(Some(h.clone()));
        }
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT content_hash FROM case_events WHERE event_id = $1",
        )
        .bind(event_id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// The region of the event's site, or why the event cannot be filed there (a site out of the
    /// sender's scope reads as unknown).
    async fn site_region(&mut self, e: &Event) -> Result<Result<String, String>, DbError> {
        site_info(&mut self.tx, &mut self.sites, e.site_id).await?;
        let site = match self.sites.get(&e.site_id) {
            Some(Some(s)) if self.scope.allows(&s.region_code) => s,
            _ => {
                return Ok(Err(format!(
                    "unknown site: site_id {} does not exist",
                    e.site_id
                )))
            }
        };
        let mut positions = std::iter::once(&e.position).chain(e.extra_positions.iter());
        if let Some(p) = positions.find(|p| !site.positions.contains(*p)) {
            let msg = format!("unknown position: site {} has no position {p:?}", e.site_id);
            return Ok(Err(msg));
        }
        Ok(Ok(site.region_code.clone()))
    }

    /// Checks the event against its case (made when new), or says why it does not fit it.
    async fn case_for(&mut self, e: &Event, region: &str) -> Result<Result<(), String>, DbError> {
        let case = match self.known.get(&e.case_no) {
            Some(c) => Some(c.clone()),
            None => {
                sqlx::query_as::<_, (String, i64, String)>(
                    "SELECT case_type, site_id, region_code FROM cases WHERE case_no = $1",
                )
                .bind(&e.case_no)
                .fetch_optional(&mut *self.tx)
                .await?
            }
        };
        let refused = match &case {
            // Another region's case: say nothing of it (its type, its site), only that this sender cannot
            // file under that number.
            Some((_, _, r)) if !self.scope.allows(r) => Some(format!(
                "case_no {} is not available to this sender",
                e.case_no
            )),
            Some((t, _, _)) if *t != e.case_type => Some(format!(
                "case {} is a {t} case, not {}",
                e.case_no, e.case_type
            )),
            Some((_, s, _)) if *s != e.site_id => Some(format!(
                "case {} belongs to site {s}, not {}",
                e.case_no, e.site_id
            )),
            Some(_) => None,
            None => {
                self.insert_case(e, region).await?;
                None
            }
        };
        if let Some(msg) = refused {
            return Ok(Err(msg));
        }
        let known = (e.case_type.clone(), e.site_id, region.to_owned());
        self.known.insert(e.case_no.clone(), known);
        Ok(Ok(()))
    }

    async fn insert_case(&mut self, e: &Event, region: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO cases (case_no, case_type, site_id, region_code, status, first_at, last_at,
                 card, events, updated_at)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, 'none', 0, $7)",
        )
        .bind(&e.case_no)
        .bind(&e.case_type)
        .bind(e.site_id)
        .bind(region)
        .bind(e.at)
        .bind(e.at)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_event(&mut self, e: &Event) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO case_events (event_id, content_hash, case_no, case_type, kind, at, site_id, position,
                 operator, deadline, attributes, received_at, received_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&e.event_id)
        .bind(&e.content_hash)
        .bind(&e.case_no)
        .bind(&e.case_type)
        .bind(&e.kind)
        .bind(e.at)
        .bind(e.site_id)
        .bind(&e.position)
        .bind(&e.operator)
        .bind(e.deadline)
        .bind(&e.attributes)
        .bind(self.now)
        .bind(self.actor)
        .execute(&mut *self.tx)
        .await?;
        self.batch_ids
            .insert(e.event_id.clone(), e.content_hash.clone());
        self.touched.insert(e.case_no.clone());
        Ok(())
    }

    /// Brings every touched case up to date (its row, its bid holds, its card) and commits.
    async fn finish(mut self, defaults: &Rules, report: &mut IngestReport) -> Result<(), DbError> {
        let mut rules_cache: HashMap<i64, Rules> = HashMap::new();
        let now = self.now;
        for case_no in &self.touched {
            let (before, after) =
                recompute(&mut self.tx, case_no, defaults, &mut rules_cache, now).await?;
            report
                .touched
                .push((after.case_no.clone(), after.region_code.clone()));
            if after.case_type == "bid" {
                super::holds::redo_bid_holds(&mut self.tx, &after, now).await?;
            }
            let card = Card::parse(&after.card);
            if before != Some(card) && card != Card::None {
                report.card_changes.push((after, card));
            }
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Recomputes a case from all its events; returns the card before and the row after.
async fn recompute(
    tx: &mut crate::db::Tx<'_>,
    case_no: &str,
    defaults: &Rules,
    rules_cache: &mut HashMap<i64, Rules>,
    now: i64,
) -> Result<(Option<Card>, CaseRow), DbError> {
    let before = get_conn(tx, case_no).await?;
    let evs = events(tx, case_no).await?;
    let (Some(first), Some(last)) = (evs.first(), evs.last()) else {
        return Err(DbError::NotFound);
    };
    let rules = match rules_cache.get(&before.site_id) {
        Some(r) => *r,
        None => {
            let r = rules_for(tx, before.site_id, defaults).await?;
            rules_cache.insert(before.site_id, r);
            r
        }
    };
    let done_kind = if before.case_type == "approval" {
        "completed"
    } else {
        "evaluation_end"
    };
    let completed_at = evs
        .iter()
        .filter(|e| e.kind == done_kind)
        .map(|e| e.at)
        .max();
    let status = if completed_at.is_some() {
        "completed"
    } else {
        "open"
    };
    // The latest event that names a deadline sets it; otherwise the site's rule from the first event.
    let deadline = evs
        .iter()
        .rev()
        .find_map(|e| e.deadline)
        .or_else(|| rules.deadline_hours.map(|h| first.at + h * 3_600_000));
    let followup = deadline.map(|d| d + rules.followup_hours * 3_600_000);
    let card = card_for(completed_at, deadline, followup, now);
    let mut refs: Vec<EventRef> = evs.iter().map(EventRow::to_ref).collect();
    sort_events(&mut refs);
    sqlx::query(
        "UPDATE cases SET status = $1, first_at = $2, last_at = $3, completed_at = $4, deadline = $5,
             followup_deadline = $6, card = $7, events = $8, updated_at = $9 WHERE case_no = $10",
    )
    .bind(status)
    .bind(first.at)
    .bind(last.at)
    .bind(completed_at)
    .bind(deadline)
    .bind(followup)
    .bind(card.as_str())
    .bind(evs.len() as i64)
    .bind(now)
    .bind(case_no)
    .execute(&mut **tx)
    .await?;
    let after = get_conn(tx, case_no).await?;
    Ok((Some(Card::parse(&before.card)), after))
}

/// Search filters of `GET /cases`.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub prefix: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub site_id: Option<i64>,
    pub case_type: Option<String>,
    pub card: Option<String>,
    /// Continue after this case number (the last one of the previous page).
    pub after: Option<String>,
    pub limit: i64,
}

/// The smallest string greater than every string that starts with `prefix` (for an index range scan).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Cases matching the filter within the scope, by case number.
pub async fn search(pool: &Pool, scope: &Scope, f: &Filter) -> Result<Vec<CaseRow>, DbError> {
    let mut q = SqlBuilder::new(format!("SELECT {CASE_COLUMNS} FROM cases WHERE 1 = 1"));
    if let Some(p) = f.prefix.as_deref().filter(|p| !p.is_empty()) {
        q.push(" AND case_no >= ").push_bind(p.to_owned());
        q.push(" AND case_no < ").push_bind(prefix_end(p));
    }
    if let Some(a) = &f.after {
        q.push(" AND case_no > ").push_bind(a.clone());
    }
    if let Some(from) = f.from {
        q.push(" AND last_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND first_at < ").push_bind(to);
    }
    if let Some(s) = f.site_id {
        q.push(" AND site_id = ").push_bind(s);
    }
    if let Some(t) = &f.case_type {
        q.push(" AND case_type = ").push_bind(t.clone());
    }
    if let Some(c) = &f.card {
        q.push(" AND card = ").push_bind(c.clone());
    }
    if !scope.push_filter(&mut q, "region_code") {
        return Ok(Vec::new());
    }
    q.push(" ORDER BY case_no LIMIT ").push_bind(f.limit);
    Ok(q.fetch_all::<CaseRow>(pool).await?)
}

/// Cameras of the positions of a site, by position code, with their names and the region they are in
/// now (their own site's, which may no longer be this site's: a camera moved to another city keeps its
/// old links until an admin edits the positions).
pub async fn position_cameras(
    pool: &Pool,
    site_id: i64,
) -> Result<Vec<(String, i64, String, String)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT p.code, c.id, c.name, s.region_code FROM positions p
         JOIN position_cameras pc ON pc.position_id = p.id JOIN cameras c ON c.id = pc.camera_id
         JOIN sites s ON s.id = c.site_id
         WHERE p.site_id = $1 ORDER BY p.code, c.id",
    )
    .bind(site_id)
    .fetch_all(pool)
    .await?)
}

/// One case event as a camera's timeline shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CameraEvent {
    #[serde(serialize_with = "ser_ms")]
    pub at: i64,
    pub case_no: String,
    pub case_type: String,
    pub kind: String,
    pub position: String,
    pub site_id: i64,
}

fn ser_ms<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::db::ms_to_rfc3339(*ms))
}

/// The events at the positions a camera covers, in `[from, to)` (Unix ms), in time order, at most `limit`.
pub async fn camera_events(
    pool: &Pool,
    scope: &Scope,
    camera_id: i64,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<CameraEvent>, DbError> {
    // Only the events of cases the caller may see: a camera that moved to another city keeps its links
    // to its old site's positions, whose cases are not the new city's to see.
    let mut q = SqlBuilder::new(
        "SELECT e.at, e.case_no, e.case_type, e.kind, e.position, e.site_id FROM position_cameras pc
         JOIN positions p ON p.id = pc.position_id
         JOIN case_events e ON e.site_id = p.site_id AND e.position = p.code
         JOIN cases c ON c.case_no = e.case_no WHERE pc.camera_id = ",
    );
    q.push_bind(camera_id);
    q.push(" AND e.at >= ").push_bind(from);
    q.push(" AND e.at < ").push_bind(to);
    if !scope.push_filter(&mut q, "c.region_code") {
        return Ok(Vec::new());
    }
    q.push(" ORDER BY e.at, e.id LIMIT ").push_bind(limit);
    Ok(q.fetch_all::<CameraEvent>(pool).await?)
}

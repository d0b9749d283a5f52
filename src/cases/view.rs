//! The investigator's view of a case: its events and its clips, each with camera, coverage, playback and
//! thumbnail URLs. Built on read from the stored events, the site's rules, the cameras of its positions
//! and the segment index, so that it always reflects the recordings as they are now.

use super::clips::{clips, sort_events, ClipPlan, EventRef};
use super::coverage::{self, Coverage};
use super::store::{self, CaseRow, EventRow};
use crate::auth::Scope;
use crate::db::{ms_to_rfc3339, DbError, Pool};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Serialize)]
pub struct ClipView {
    pub index: usize,
    pub camera_id: i64,
    pub camera_name: String,
    pub position: String,
    /// What the clip shows: the event id (approval) or the session (bid).
    pub reason: String,
    pub start: String,
    pub end: String,
    #[serde(skip)]
    pub start_ms: i64,
    #[serde(skip)]
    pub end_ms: i64,
    pub coverage: Coverage,
    /// Recorded seconds within the clip.
    pub recorded_seconds: f64,
    /// The bid session has not ended yet.
    pub open: bool,
    pub video_url: String,
    pub thumbnail_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub event_id: String,
    pub kind: String,
    pub at: String,
    pub position: String,
    pub operator: Option<String>,
    pub deadline: Option<String>,
    pub attributes: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    pub case_no: String,
    pub case_type: String,
    pub status: String,
    pub card: String,
    pub site_id: i64,
    pub site_name: Option<String>,
    pub region_code: String,
    pub first_at: String,
    pub last_at: String,
    pub completed_at: Option<String>,
    pub deadline: Option<String>,
    pub followup_deadline: Option<String>,
    pub events: Vec<EventView>,
    pub clips: Vec<ClipView>,
}

/// Percent-encodes a query value (RFC 3339 times carry `+` and `:`).
fn q(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

pub fn event_view(e: &EventRow) -> EventView {
    EventView {
        event_id: e.event_id.clone(),
        kind: e.kind.clone(),
        at: ms_to_rfc3339(e.at),
        position: e.position.clone(),
        operator: e.operator.clone(),
        deadline: e.deadline.map(ms_to_rfc3339),
        attributes: serde_json::from_str(&e.attributes).unwrap_or_default(),
    }
}

/// The clips of a case with coverage, and the events they come from, as a caller with `scope` may see
/// them: a camera is shown only while the region it is in *now* is in the scope. A case's links to
/// cameras are made by its site's positions; a camera that moved to another city since carries its
/// footage there, and no case of its old city shows it any more.
pub async fn case_clips(
    pool: &Pool,
    case: &CaseRow,
    defaults: &super::clips::Rules,
    now: i64,
    scope: &Scope,
) -> Result<(Vec<EventRow>, Vec<ClipView>), DbError> {
    // Three independent reads, each on its own connection: one round trip of latency, not three.
    let events = async {
        let mut conn = pool.acquire().await?;
        store::events(&mut conn, &case.case_no).await
    };
    let rules = async {
        let mut conn = pool.acquire().await?;
        store::rules_for(&mut conn, case.site_id, defaults).await
    };
    let (evs, rules, pos_cams) =
        tokio::try_join!(events, rules, store::position_cameras(pool, case.site_id))?;
    let mut cams: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut names: HashMap<i64, String> = HashMap::new();
    for (code, id, name, region) in pos_cams {
        if !scope.allows(&region) {
            continue;
        }
        cams.entry(code).or_default().push(id);
        names.insert(id, name);
    }
    let mut refs: Vec<EventRef> = evs.iter().map(EventRow::to_ref).collect();
    sort_events(&mut refs);
    let plans: Vec<ClipPlan> = clips(&case.case_type, &refs, &rules, &cams, now);
    let ranges: Vec<(i64, i64, i64)> = plans
        .iter()
        .map(|c| (c.camera_id, c.start * 1000, c.end * 1000))
        .collect();
    let all_spans = coverage::spans_many(pool, &ranges).await?;
    let mut out = Vec::with_capacity(plans.len());
    for ((index, c), spans) in plans.into_iter().enumerate().zip(all_spans) {
        let (s_us, e_us) = (c.start * 1000, c.end * 1000);
        let cov = coverage::classify(&spans, s_us, e_us);
        let recorded: i64 = spans.iter().map(|(a, b)| b - a).sum();
        let (start, end) = (ms_to_rfc3339(c.start), ms_to_rfc3339(c.end));
        out.push(ClipView {
            index,
            camera_id: c.camera_id,
            camera_name: names.get(&c.camera_id).cloned().unwrap_or_default(),
            position: c.position,
            reason: c.reason,
            video_url: format!(
                "/api/v1/cameras/{}/video.mp4?start={}&end={}",
                c.camera_id,
                q(&start),
                q(&end)
            ),
            thumbnail_url: format!("/api/v1/cases/{}/clips/{index}/thumbnail.jpg", case.case_no),
            start,
            end,
            start_ms: c.start,
            end_ms: c.end,
            coverage: cov,
            recorded_seconds: recorded as f64 / 1e6,
            open: c.open,
        });
    }
    Ok((evs, out))
}

pub async fn case_view(
    pool: &Pool,
    case: CaseRow,
    defaults: &super::clips::Rules,
    now: i64,
    scope: &Scope,
) -> Result<CaseView, DbError> {
    let site = async {
        sqlx::query_scalar::<_, String>("SELECT name FROM sites WHERE id = $1")
            .bind(case.site_id)
            .fetch_optional(pool)
            .await
            .map_err(DbError::from)
    };
    let ((evs, clips), site_name) =
        tokio::try_join!(case_clips(pool, &case, defaults, now, scope), site)?;
    Ok(CaseView {
        case_no: case.case_no,
        case_type: case.case_type,
        status: case.status,
        card: case.card,
        site_id: case.site_id,
        site_name,
        region_code: case.region_code,
        first_at: ms_to_rfc3339(case.first_at),
        last_at: ms_to_rfc3339(case.last_at),
        completed_at: case.completed_at.map(ms_to_rfc3339),
        deadline: case.deadline.map(ms_to_rfc3339),
        followup_deadline: case.followup_deadline.map(ms_to_rfc3339),
        events: evs.iter().map(event_view).collect(),
        clips,
    })
}

/// Whether a clip has any footage (for exports and holds).
pub fn has_footage(c: &ClipView) -> bool {
    c.coverage != Coverage::Missing
}

//! Case events, case search, exports, the signing key, alarms and per-site case rules
//! (`src/cases/` does the work; this is the HTTP side).

use super::access::scoped;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::sites::visible_site;
use super::AppState;
use crate::auth::{Principal, Role};
use crate::cases::{cards, clips::Rules, export, model, store, thumbnail, view};
use crate::db::{ms_to_rfc3339, now_ms};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Who may post events: the machines (and admins).
pub const EVENT_SENDERS: &[Role] = &[Role::Admin, Role::Integrator];
/// Who may search cases, export and hold.
pub const INVESTIGATORS: &[Role] = &[Role::Admin, Role::Investigator];
/// Who sees alarms.
pub const ALARM_READERS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Investigator];

pub async fn post_events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<Value>,
) -> ApiResult<Json<store::IngestReport>> {
    let Some(items) = body.get("events").and_then(Value::as_array) else {
        return Err(ApiError::invalid("the body must be {\"events\": [...]}"));
    };
    if let Some(k) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "events"))
    {
        return Err(ApiError::invalid(format!("unknown field {k:?}")));
    }
    if items.len() > model::MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "a batch takes at most {} events; got {}",
            model::MAX_BATCH,
            items.len()
        )));
    }
    Ok(Json(
        s.cases.post_events(&p.scope, &p.actor(), items).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    /// Case number prefix.
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    site_id: Option<i64>,
    case_type: Option<String>,
    card: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct CaseSummary {
    case_no: String,
    case_type: String,
    status: String,
    card: String,
    site_id: i64,
    region_code: String,
    first_at: String,
    last_at: String,
    events: i64,
    url: String,
}

#[derive(Serialize)]
pub struct CaseList {
    cases: Vec<CaseSummary>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<String>,
}

fn time(field: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    v.as_deref()
        .map(|t| model::parse_time(field, t).map_err(ApiError::invalid))
        .transpose()
}

/// `GET /cases`: this server's cases in the caller's regions; on the first page, with the linked cities'
/// (`super::remote_cases`).
pub async fn search_cases(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<CaseQuery>,
    uri: axum::http::Uri,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let first_page = q.after.is_none();
    let local = list_cases(State(s.clone()), Extension(p.clone()), Query(q)).await?;
    if !first_page {
        return Ok(local.into_response());
    }
    let (remote, unreachable) = super::remote_cases::fan_out(&s, &p, uri.query()).await;
    if remote.is_empty() && unreachable.is_empty() {
        return Ok(local.into_response());
    }
    let mut body = serde_json::to_value(&local.0).map_err(ApiError::internal)?;
    if let Some(cases) = body["cases"].as_array_mut() {
        cases.extend(remote);
    }
    body["unreachable"] = serde_json::json!(unreachable);
    Ok(axum::Json(body).into_response())
}

pub async fn list_cases(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<CaseQuery>,
) -> ApiResult<Json<CaseList>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 500"));
    }
    if let Some(t) = &q.case_type {
        if !model::CASE_TYPES.contains(&t.as_str()) {
            return Err(ApiError::invalid("case_type must be approval or bid"));
        }
    }
    if let Some(c) = &q.card {
        if !["none", "yellow", "red"].contains(&c.as_str()) {
            return Err(ApiError::invalid("card must be none, yellow or red"));
        }
    }
    let f = store::Filter {
        prefix: q.q.as_deref().map(str::trim).map(str::to_owned),
        from: time("from", &q.from)?,
        to: time("to", &q.to)?,
        site_id: q.site_id,
        case_type: q.case_type,
        card: q.card,
        after: q.after,
        limit,
    };
    let rows = store::search(&s.pool, &p.scope, &f).await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.case_no.clone()))
        .flatten();
    Ok(Json(CaseList {
        cases: rows
            .into_iter()
            .map(|r| CaseSummary {
                url: format!("/api/v1/cases/{}", r.case_no),
                case_no: r.case_no,
                case_type: r.case_type,
                status: r.status,
                card: r.card,
                site_id: r.site_id,
                region_code: r.region_code,
                first_at: ms_to_rfc3339(r.first_at),
                last_at: ms_to_rfc3339(r.last_at),
                events: r.events,
            })
            .collect(),
        next_after,
    }))
}

/// The case, if it exists and is in the caller's scope (out of scope reads as not found).
pub async fn visible_case(s: &AppState, p: &Principal, case_no: &str) -> ApiResult<store::CaseRow> {
    let case_no = model::case_no(case_no).map_err(|_| ApiError::not_found())?;
    let case = store::get(&s.pool, &case_no).await?;
    scoped(p, &case.region_code)?;
    Ok(case)
}

pub async fn get_case(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(case_no): Path<String>,
    Query(q): Query<LinkQuery>,
) -> ApiResult<Response> {
    if let Some(link) = q.link.as_deref() {
        return super::remote_cases::case_detail(&s, &p, link, &case_no).await;
    }
    Ok(Json(local_case(&s, &p, &case_no).await?).into_response())
}

/// This server's own case, as the caller may see it.
pub(super) async fn local_case(
    s: &AppState,
    p: &Principal,
    case_no: &str,
) -> ApiResult<view::CaseView> {
    let case = visible_case(s, p, case_no).await?;
    Ok(view::case_view(&s.pool, case, &s.cases.defaults(), now_ms(), &p.scope).await?)
}

/// The query of a case's routes: at a province, the linked city that holds the case (see
/// `remote_cases`, `remote_exports`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    link: Option<String>,
}

pub async fn start_export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(case_no): Path<String>,
    Query(q): Query<LinkQuery>,
) -> ApiResult<Response> {
    if let Some(link) = q.link.as_deref() {
        return super::remote_exports::start(&s, &p, link, &case_no).await;
    }
    let case = visible_case(&s, &p, &case_no).await?;
    let no = case.case_no.clone();
    let id = export::start(s.cases.clone(), case, p.actor(), p.scope.clone())
        .await
        .map_err(start_error)?;
    tracing::info!(case = %no, actor = %p.actor(), export = %id, "export started");
    let body = json!({"export_id": id, "status_url": format!("/api/v1/exports/{id}")});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Why an export did not start, as the API says it.
pub(super) fn start_error(e: export::StartError) -> ApiError {
    match e {
        export::StartError::Quota(m) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", m)
        }
        export::StartError::Db(e) => e.into(),
    }
}

async fn visible_export(s: &AppState, p: &Principal, id: &str) -> ApiResult<export::ExportRow> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found());
    }
    let row = export::get(&s.pool, id).await?;
    // The access layer has checked the export's regions, its cameras' included (`api::target`); those of
    // a city's cameras (negative ids, exported through a link) are known here, while the link is up.
    scoped(p, &row.region_code)?;
    let cameras: Vec<i64> = serde_json::from_str(&row.camera_ids).unwrap_or_default();
    for c in cameras.into_iter().filter(|c| *c < 0) {
        if let Some((_, cam)) = s.federation.camera(c) {
            scoped(p, &cam.region_code)?;
        }
    }
    Ok(row)
}

pub async fn get_export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = visible_export(&s, &p, &id).await?;
    let progress = match row.state.as_str() {
        "running" => export::progress(&s.cases, &id).unwrap_or(row.progress),
        _ => row.progress,
    };
    let state = if row.expired_at.is_some() {
        "expired"
    } else {
        row.state.as_str()
    };
    Ok(Json(json!({
        "id": row.id,
        "case_no": row.case_no,
        "state": state,
        "expired_at": row.expired_at.map(ms_to_rfc3339),
        "progress": progress,
        "download_url": (state == "done").then(|| format!("/api/v1/exports/{}/download", row.id)),
        "bytes": row.bytes,
        "sha256": row.sha256,
        "error": row.error,
        "created_by": row.created_by,
        "created_at": ms_to_rfc3339(row.created_at),
        "finished_at": row.finished_at.map(ms_to_rfc3339),
    })))
}

pub async fn download_export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let row = visible_export(&s, &p, &id).await?;
    if row.expired_at.is_some() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            "this export expired and its package was removed; export the case again",
        ));
    }
    let (Some(rel), "done") = (row.path.as_deref(), row.state.as_str()) else {
        return Err(ApiError::conflict("the export is not finished"));
    };
    let file = tokio::fs::File::open(s.cfg.data_dir.join(rel))
        .await
        .map_err(ApiError::internal)?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    tracing::info!(export = %id, case = %row.case_no, actor = %p.actor(), "export downloaded");
    Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(header::CONTENT_LENGTH, len)
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"evidence-{}-{}.zip\"",
                row.case_no,
                &id[..8]
            ),
        )
        .body(Body::from_stream(tokio_util::io::ReaderStream::new(file)))
        .map_err(ApiError::internal)
}

pub async fn signing_key(State(s): State<AppState>) -> Json<Value> {
    let vk = s.cases.key.verifying_key();
    Json(json!({
        "algorithm": "ed25519",
        "public_key": hex::encode(vk.as_bytes()),
        "fingerprint": crate::cases::signing::fingerprint(&vk),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmQuery {
    state: Option<String>,
    limit: Option<i64>,
}

pub async fn list_alarms(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AlarmQuery>,
    uri: axum::http::Uri,
) -> ApiResult<Json<Vec<Value>>> {
    let limit = q.limit.unwrap_or(200).clamp(1, 1000) as usize;
    let mut alarms = local_alarms(&s, &p, &q).await?;
    // At a province, the linked cities' alarms too (docs/federation.md).
    alarms.extend(super::remote_status::city_alarms(&s, &p, uri.query()).await);
    alarms.sort_by(|a, b| b["raised_at"].as_str().cmp(&a["raised_at"].as_str()));
    alarms.truncate(limit);
    Ok(Json(alarms))
}

/// This server's own alarms in the caller's regions.
pub(super) async fn local_alarms(
    s: &AppState,
    p: &Principal,
    q: &AlarmQuery,
) -> ApiResult<Vec<Value>> {
    if let Some(st) = &q.state {
        if st != "active" && st != "cleared" {
            return Err(ApiError::invalid("state must be active or cleared"));
        }
    }
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let rows = cards::list_alarms(&s.pool, q.state.as_deref(), limit).await?;
    Ok(rows
        .into_iter()
        .filter(|a| p.scope.allows(&a.region_code))
        .map(|a| {
            json!({
                "id": a.id, "kind": a.kind, "subject": a.subject, "region_code": a.region_code,
                "site_id": a.site_id, "case_no": a.case_no,
                "camera_ids": serde_json::from_str::<Value>(&a.camera_ids).unwrap_or(json!([])),
                "message": a.message, "state": a.state, "raised_at": ms_to_rfc3339(a.raised_at),
                "cleared_at": a.cleared_at.map(ms_to_rfc3339),
            })
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    pre_roll_seconds: i64,
    post_roll_seconds: i64,
    #[serde(default)]
    deadline_hours: Option<i64>,
    followup_hours: i64,
}

fn rules_json(r: &Rules) -> Value {
    json!({"pre_roll_seconds": r.pre_roll_s, "post_roll_seconds": r.post_roll_s,
           "deadline_hours": r.deadline_hours, "followup_hours": r.followup_hours})
}

pub async fn get_rules(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    visible_site(&s, &p, id).await?;
    let mut conn = s.pool.acquire().await.map_err(ApiError::internal)?;
    let r = store::rules_for(&mut conn, id, &s.cases.defaults()).await?;
    Ok(Json(rules_json(&r)))
}

pub async fn put_rules(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Json(b): Json<RulesBody>,
) -> ApiResult<Json<Value>> {
    visible_site(&s, &p, id).await?;
    let day = 86_400;
    if !(0..=day).contains(&b.pre_roll_seconds) {
        return Err(ApiError::invalid(
            "pre_roll_seconds must be between 0 and 86400",
        ));
    }
    if !(1..=day).contains(&b.post_roll_seconds) {
        return Err(ApiError::invalid(
            "post_roll_seconds must be between 1 and 86400",
        ));
    }
    if b.deadline_hours
        .is_some_and(|h| !(1..=24 * 366).contains(&h))
    {
        return Err(ApiError::invalid(
            "deadline_hours must be between 1 and 8784",
        ));
    }
    if !(1..=24 * 366).contains(&b.followup_hours) {
        return Err(ApiError::invalid(
            "followup_hours must be between 1 and 8784",
        ));
    }
    let r = Rules {
        pre_roll_s: b.pre_roll_seconds,
        post_roll_s: b.post_roll_seconds,
        deadline_hours: b.deadline_hours,
        followup_hours: b.followup_hours,
    };
    store::set_rules(&s.pool, id, &r).await?;
    tracing::info!(site = id, actor = %p.actor(), "case rules changed");
    Ok(Json(rules_json(&r)))
}

pub async fn clip_thumbnail(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((case_no, index)): Path<(String, usize)>,
    Query(q): Query<LinkQuery>,
) -> ApiResult<Response> {
    if let Some(link) = q.link.as_deref() {
        return super::remote_cases::clip_picture(&s, &p, link, &case_no, index).await;
    }
    let case = visible_case(&s, &p, &case_no).await?;
    let (_, clips) =
        view::case_clips(&s.pool, &case, &s.cases.defaults(), now_ms(), &p.scope).await?;
    let clip = clips.get(index).ok_or_else(ApiError::not_found)?;
    let no_footage = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_footage",
            "no footage at this clip's start",
        )
    };
    let (seg, at) = thumbnail::segment_at(
        &s.pool,
        clip.camera_id,
        clip.start_ms * 1000,
        clip.end_ms * 1000,
    )
    .await?
    .ok_or_else(no_footage)?;
    let footage = s.recorders.shared().footage.clone();
    let jpg = tokio::task::spawn_blocking(move || thumbnail::thumbnail(&footage, &seg, at))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            thumbnail::ThumbError::NoFootage => no_footage(),
            other => ApiError::internal(other),
        })?;
    Response::builder()
        .header(header::CONTENT_TYPE, "image/jpeg")
        .header(header::CACHE_CONTROL, "private, max-age=60")
        .body(Body::from(jpg))
        .map_err(ApiError::internal)
}

/// `POST /holds {case_no, reason}`: holds every clip of the case that the caller may see, as it is now
/// (one hold per clip, on the recording engine's `holds` table). Returns the holds made.
pub async fn hold_case(
    s: &AppState,
    p: &Principal,
    case: store::CaseRow,
    reason: &str,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::invalid(
            "reason is required (at most 500 characters)",
        ));
    }
    let (_, clips) =
        view::case_clips(&s.pool, &case, &s.cases.defaults(), now_ms(), &p.scope).await?;
    if clips.is_empty() {
        return Err(ApiError::conflict(
            "the case has no clips to hold (no camera covers its positions)",
        ));
    }
    let actor = p.actor();
    let now = now_ms();
    let mut tx = s.pool.begin().await.map_err(ApiError::internal)?;
    let mut holds = Vec::with_capacity(clips.len());
    for c in &clips {
        let id = crate::cases::holds::insert(
            &mut tx,
            c.camera_id,
            &case.case_no,
            c.start_ms,
            c.end_ms,
            reason,
            &actor,
            now,
        )
        .await?;
        holds.push(json!({"id": id, "camera_id": c.camera_id, "start": c.start, "end": c.end}));
    }
    tx.commit().await.map_err(ApiError::internal)?;
    tracing::info!(case = %case.case_no, actor = %actor, holds = holds.len(), "case held");
    let body =
        json!({"case_no": case.case_no, "reason": reason, "created_by": actor, "holds": holds});
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /notifications` (WebSocket): JSON text messages (case cards; `{"type": "lagged", "missed": N}`
/// when this viewer fell behind), only those of the viewer's regions.
pub async fn notifications(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    let rx = s.cases.notify.subscribe();
    let scope = p.scope.clone();
    // The stream ends when the caller's session or token does, or their role changes. (A change of
    // regions ends a user's sessions, and so this stream, too.)
    let end = async move {
        super::revoke::until_revoked(s, p, None, || async { None })
            .await
            .message()
    };
    ws.on_upgrade(move |socket| notify_loop(socket, rx, scope, end))
}

async fn notify_loop(
    mut socket: axum::extract::ws::WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
    scope: crate::auth::Scope,
    end: impl std::future::Future<Output = &'static str>,
) {
    use axum::extract::ws::{close_code, CloseFrame, Message};
    use tokio::sync::broadcast::error::RecvError;
    tokio::pin!(end);
    loop {
        tokio::select! {
            why = &mut end => {
                let frame = CloseFrame { code: close_code::POLICY, reason: why.into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
            m = rx.recv() => {
                let text = match m {
                    Ok(text) => {
                        let region = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v.get("region_code").and_then(Value::as_str).map(str::to_owned));
                        if !region.is_some_and(|r| scope.allows(&r)) {
                            continue;
                        }
                        text.to_string()
                    }
                    Err(RecvError::Lagged(n)) => json!({"type": "lagged", "missed": n}).to_string(),
                    Err(RecvError::Closed) => return,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[derive(Serialize)]
pub struct CameraEvents {
    events: Vec<store::CameraEvent>,
}

/// The case events at the positions a camera covers, for playback's next / previous event: only those
/// of cases the caller may see. Audited as a lookup of case numbers (one row per range and caller).
pub async fn camera_events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<super::recordings::RangeQuery>,
) -> ApiResult<Response> {
    super::cameras::visible_camera(&s, &p, id).await?;
    let (start_us, end_us, _) = super::recordings::range(&q)?;
    let events = store::camera_events(
        &s.pool,
        &p.scope,
        id,
        start_us / 1000,
        end_us.saturating_add(999) / 1000,
        1000,
    )
    .await?;
    let note = super::access::AuditNote {
        detail: Some(format!("{}/{}", q.start, q.end)),
        collapse: true,
        ..Default::default()
    };
    Ok(super::access::noted(Json(CameraEvents { events }), note))
}

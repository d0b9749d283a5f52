//! Exports of a city's case made at the province (docs/federation.md): `POST
//! /cases/{case_no}/export?link=NAME`.
//!
//! The province checks its caller first: the case, as the city gives it over the link, must be filed in
//! one of the caller's regions (404 otherwise, as for its own cases). It then asks the city to make the
//! package (as `province/user`, within the caller's regions), follows the city's job, downloads the
//! package, checks it against the key the city gives over the link and countersigns it
//! (`cases::countersign`). The province's export row goes through the usual states, so `GET
//! /exports/{id}` and its download work as for the province's own cases.
//!
//! Invariants: a package that does not verify is never countersigned (the export fails with the
//! reason); the city's copy is downloaded beside the package and removed once countersigned or failed.

use super::access::{noted, AuditNote};
use super::cases::start_error;
use super::error::{ApiError, ApiResult, Json};
use super::remote_cases::{city_case, enc, within};
use super::AppState;
use crate::auth::Principal;
use crate::cases::{countersign, export, package::FileEntry};
use crate::federation::{remote, store};
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How often the city's job is asked how far it is.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// How many answers in a row the city may miss before the export fails.
const MISSES: u32 = 60;

/// Starts the export of city case `case_no` held by link `link_name`.
pub async fn start(
    s: &AppState,
    p: &Principal,
    link_name: &str,
    case_no: &str,
) -> ApiResult<Response> {
    let (link, case_no, case, region) = city_case(s, p, link_name, case_no).await?;
    let (actor, q) = (p.actor(), within(s, p, link.id));
    let path = format!("/api/v1/link/cases/{}", enc(&case_no));
    let cameras: Vec<i64> = case["clips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| remote::remote_id(link.id, c["camera_id"].as_i64()?))
        .collect();
    let (id, progress) = export::insert(&s.cases, &case_no, &region, &actor)
        .await
        .map_err(start_error)?;
    export::set_cameras(&s.cases, &id, &cameras).await?;
    let started = s
        .federation
        .json_over(link.id, Method::POST, &format!("{path}/export{q}"), &actor)
        .await;
    // The city's id goes into the paths of the next calls: an export id's form only.
    let id_of = |v: serde_json::Value| {
        v["export_id"]
            .as_str()
            .filter(|j| j.len() == 32 && j.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
    };
    let city_job = match started.map(id_of) {
        Ok(Some(job)) => job,
        failed => {
            let why = match failed {
                Err(e) => format!("the city {} did not start the export: {e}", link.name),
                _ => format!("the city {} gave no export id it could name", link.name),
            };
            export::finish(&s.cases, &id, &actor, Err(why.clone())).await;
            return Err(ApiError::unavailable(why));
        }
    };
    tracing::info!(case = %case_no, link = %link.name, export = %id, city_export = %city_job, "export of a city's case started");
    let job = Job {
        s: s.clone(),
        link: link.clone(),
        id: id.clone(),
        city_job,
        actor: actor.clone(),
        progress,
    };
    tokio::spawn(async move {
        let result = job.run().await;
        export::finish(&job.s.cases, &job.id, &job.actor, result).await;
    });
    let body =
        json!({"export_id": id, "status_url": format!("/api/v1/exports/{id}"), "link": link.name});
    let note = AuditNote {
        target: Some(format!("/cases/{case_no}")),
        region_code: Some(region),
        detail: Some(format!("link {}", link.name)),
        collapse: false,
    };
    Ok(noted((StatusCode::ACCEPTED, Json(body)), note))
}

/// The province's side of one export of a city's case.
struct Job {
    s: AppState,
    link: store::Link,
    id: String,
    city_job: String,
    actor: String,
    progress: Arc<AtomicU32>,
}

impl Job {
    async fn run(&self) -> Result<(String, FileEntry), String> {
        self.wait_for_city().await?;
        let key = self
            .s
            .federation
            .json_over(
                self.link.id,
                Method::GET,
                "/api/v1/link/signing-key",
                &self.actor,
            )
            .await
            .map_err(|e| format!("the city's signing key: {e}"))?;
        let city_key = key["public_key"].as_str().unwrap_or_default().to_owned();
        let dir = self.s.cfg.data_dir.join("exports");
        let held = dir.join(format!("{}.city.zip", self.id));
        let result = async {
            self.download(&held).await?;
            self.progress.store(950, Ordering::Relaxed);
            self.countersign(&held, &city_key).await
        }
        .await;
        let _ = tokio::fs::remove_file(&held).await;
        result
    }

    /// Follows the city's job until its package is done.
    async fn wait_for_city(&self) -> Result<(), String> {
        let target = format!("/api/v1/link/exports/{}", self.city_job);
        let mut misses = 0;
        loop {
            match self
                .s
                .federation
                .json_over(self.link.id, Method::GET, &target, &self.actor)
                .await
            {
                Ok(v) => {
                    misses = 0;
                    match v["state"].as_str() {
                        Some("done") => return Ok(()),
                        Some("running") => {
                            let f = v["progress"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0);
                            self.progress.store((f * 800.0) as u32, Ordering::Relaxed);
                        }
                        other => {
                            return Err(format!(
                                "the city's export ended {}: {}",
                                other.unwrap_or("?"),
                                v["error"].as_str().unwrap_or("no reason given")
                            ))
                        }
                    }
                }
                Err(e) if misses >= MISSES => return Err(format!("the city's export: {e}")),
                Err(_) => misses += 1,
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }

    /// Streams the city's package to `to`, fsynced.
    async fn download(&self, to: &std::path::Path) -> Result<(), String> {
        let target = format!("/api/v1/link/exports/{}/download", self.city_job);
        let resp = self
            .s
            .federation
            .send_over(self.link.id, Method::GET, &target, &self.actor, &[])
            .await
            .map_err(|e| format!("the city's package: {e}"))?;
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| e.to_string())?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("the city's package: {e}"))?;
            file.write_all(&chunk).await.map_err(|e| e.to_string())?;
        }
        file.sync_all().await.map_err(|e| e.to_string())
    }

    /// Checks the city's package and writes the countersigned one.
    async fn countersign(
        &self,
        held: &std::path::Path,
        city_key: &str,
    ) -> Result<(String, FileEntry), String> {
        let rel = format!("exports/{}.zip", self.id);
        let out = self.s.cfg.data_dir.join(&rel);
        let (held, city_key, key) = (
            held.to_owned(),
            city_key.to_owned(),
            self.s.cases.key.clone(),
        );
        let (holder, id, actor) = (self.link.name.clone(), self.id.clone(), self.actor.clone());
        let entry = tokio::task::spawn_blocking(move || {
            let st = countersign::Statement {
                holder: &holder,
                holder_key: &city_key,
                export_id: &id,
                exported_by: &actor,
                exported_at: &crate::db::ms_to_rfc3339(crate::db::now_ms()),
            };
            countersign::write(&held, &out, &st, &key).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok((rel, entry))
    }
}

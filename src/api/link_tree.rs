//! The city's shared tree and its change feed, `GET /api/v1/link/tree` (docs/federation.md): the regions a
//! grant shares (each with its subtree), their sites, and their cameras with their state, as they are at
//! the time of the call.
//!
//! The feed: the answer carries its version (`Vigil-Tree-Version`, a hash of the tree). A province that
//! sends back the version it holds (`since`) with `wait_s` gets no answer until the tree differs from it
//! or `wait_s` passed (`304`, nothing to send): a change (a camera going offline, a site added) reaches
//! the province within about a second, and a quiet link costs one request per `wait_s`, not one per
//! camera or per poll. While it waits the city looks again at every notice of a camera's state
//! ([`crate::cases::CaseService::notify`]) and at least every [`RECHECK`], and ends the wait at once when
//! the grant is paused or revoked.
//!
//! Authenticated by the request's signature alone ([`crate::federation::sign`]), outside the session
//! routes.

use super::error::{ApiResult, Query};
use super::links::{not_paused, signed_grant, unrevoked};
use super::AppState;
use crate::federation::remote::{SharedCamera, SharedRegion, SharedSite, SharedTree};
use crate::federation::{sign, store, MAX_FEED_WAIT_S, TREE_VERSION_HEADER};
use crate::ingest::StreamState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// How often a waiting feed looks at the tree again when no notice came (changes made through the API:
/// a camera or site added, moved or removed; a region shared more or less).
const RECHECK: Duration = Duration::from_secs(2);
/// How long after a notice the tree is looked at, so that a burst of notices is one look.
const SETTLE: Duration = Duration::from_millis(250);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeQuery {
    /// The version the province holds.
    since: Option<String>,
    /// How long to wait for a change from `since`, in seconds (at most [`MAX_FEED_WAIT_S`]).
    wait_s: Option<u64>,
}

/// The version of a tree: the first 16 bytes of the SHA-256 of its JSON, hex.
fn version(tree: &SharedTree) -> String {
    let json = serde_json::to_vec(tree).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..16])
}

/// `GET /api/v1/link/tree[?since=VERSION&wait_s=N]`.
pub async fn tree(
    State(s): State<AppState>,
    Query(q): Query<TreeQuery>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
    let (grant, _, proof) = signed_grant(&s, &headers, "GET", target).await?;
    let _ = store::touch_grant(&s.pool, grant.id).await;
    let deadline = Instant::now() + Duration::from_secs(q.wait_s.unwrap_or(0).min(MAX_FEED_WAIT_S));
    // Subscribed before the first look, so that no notice falls between the look and the wait.
    let mut notices = s.cases.notify.subscribe();
    loop {
        let tree = shared_tree(&s, &grant.region_codes).await?;
        let v = version(&tree);
        let unchanged = q.since.as_deref() == Some(v.as_str());
        let now = Instant::now();
        if !unchanged || now >= deadline {
            let mut resp = if unchanged {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                axum::Json(tree).into_response()
            };
            for (name, value) in [(sign::PROOF_HEADER, &proof), (TREE_VERSION_HEADER, &v)] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    resp.headers_mut().insert(name, value);
                }
            }
            return Ok(resp);
        }
        let pause = RECHECK.min(deadline - now);
        tokio::select! {
            r = notices.recv() => {
                // A burst of notices (cameras of a site going down together) is one look; a closed
                // channel (the server stopping) is a plain wait.
                let settle = if matches!(r, Err(RecvError::Closed)) { pause } else { SETTLE };
                tokio::time::sleep(settle.min(deadline.saturating_duration_since(Instant::now()))).await;
                while notices.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(pause) => {}
        }
        still_granted(&s, grant.id).await?;
    }
}

/// A grant paused or revoked while a feed waits ends the wait with the refusal a new call would get.
async fn still_granted(s: &AppState, id: i64) -> ApiResult<()> {
    not_paused(&unrevoked(s, id).await?)
}

/// The regions under `roots` (with their subtrees), their sites and cameras with their state.
async fn shared_tree(s: &AppState, roots: &[String]) -> ApiResult<SharedTree> {
    let codes: std::collections::HashSet<String> = crate::db::regions::subtree(&s.pool, roots)
        .await?
        .into_iter()
        .collect();
    let regions = crate::db::regions::list(&s.pool)
        .await?
        .into_iter()
        .filter(|r| codes.contains(&r.code))
        .map(|r| SharedRegion {
            code: r.code,
            name: r.name,
            level: r.level,
            parent_code: r.parent_code,
        })
        .collect();
    let sites = crate::db::sites::list(&s.pool)
        .await?
        .into_iter()
        .filter(|x| codes.contains(&x.region_code))
        .map(|x| SharedSite {
            id: x.id,
            name: x.name,
            kind: x.kind,
            region_code: x.region_code,
        })
        .collect();
    let cameras = crate::db::cameras::list(&s.pool)
        .await?
        .into_iter()
        .filter(|c| codes.contains(&c.region_code))
        .map(|c| {
            let state = s.ingest.main_state(c.id);
            SharedCamera {
                id: c.id,
                name: c.name,
                site_id: c.site_id,
                region_code: c.region_code,
                state: serde_json::to_value(state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "offline".into()),
                recording: state == StreamState::Online && s.recorders.is_recording(c.id),
            }
        })
        .collect();
    Ok(SharedTree {
        regions,
        sites,
        cameras,
    })
}

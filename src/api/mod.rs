//! The HTTP API of the v1 contract (`/api/v1`, `/healthz`, `/metrics`), built on axum.
//!
//! Every `/api/v1` route but the login is declared in [`routes`] with the roles it admits (see
//! [`access`]); handlers check the region of what they touch. Handlers validate every input before
//! writing anything and answer errors as `{"error": {"code", "message"}}`.

pub mod access;
mod cameras;
pub use cameras::camera_spec;
pub mod error;
mod live;
mod ops;
mod recordings;
mod session;
mod sites;
mod validate;
mod web;

use crate::auth::Role;
use crate::config::Config;
use crate::db::Pool;
use crate::ingest::Supervisor;
use crate::live::Live;
use access::{Routes, ADMIN, ADMIN_INVESTIGATOR, ANYONE, ANY_HUMAN};
use axum::http::Method;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub cfg: Arc<Config>,
    pub ingest: Arc<Supervisor>,
    pub recorders: Arc<crate::record::Recorders>,
    pub live: Arc<Live>,
    pub started: std::time::Instant,
}

/// Who may watch live video: the contract's "supervisor: live, playback, alarms", and admins.
pub const LIVE_VIEWERS: &[Role] = &[Role::Admin, Role::Supervisor];

/// The table of authenticated routes with their roles.
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::DELETE, "/session", ANYONE, delete(session::logout))
        .add(Method::GET, "/me", ANYONE, get(session::me))
        .add(Method::GET, "/regions", ANY_HUMAN, get(sites::list_regions))
        .add(Method::POST, "/regions", ADMIN, post(sites::create_region))
        .add(Method::GET, "/sites", ANY_HUMAN, get(sites::list_sites))
        .add(Method::POST, "/sites", ADMIN, post(sites::create_site))
        .add(Method::GET, "/sites/{id}", ANY_HUMAN, get(sites::get_site))
        .add(
            Method::PATCH,
            "/sites/{id}",
            ADMIN,
            patch(sites::update_site),
        )
        .add(
            Method::DELETE,
            "/sites/{id}",
            ADMIN,
            delete(sites::delete_site),
        )
        .add(
            Method::GET,
            "/sites/{id}/positions",
            ANY_HUMAN,
            get(sites::list_positions),
        )
        .add(
            Method::POST,
            "/sites/{id}/positions",
            ADMIN,
            post(sites::create_position),
        )
        .add(Method::GET, "/cameras", ANY_HUMAN, get(cameras::list))
        .add(Method::POST, "/cameras", ADMIN, post(cameras::create))
        .add(
            Method::GET,
            "/cameras/{id}",
            ANY_HUMAN,
            get(cameras::get_one),
        )
        .add(
            Method::PATCH,
            "/cameras/{id}",
            ADMIN,
            patch(cameras::update),
        )
        .add(
            Method::DELETE,
            "/cameras/{id}",
            ADMIN,
            delete(cameras::remove),
        )
        .add(
            Method::GET,
            "/cameras/{id}/status",
            ANY_HUMAN,
            get(cameras::status),
        )
        .add(
            Method::GET,
            "/cameras/{id}/snapshot.jpg",
            ANY_HUMAN,
            get(cameras::snapshot),
        )
        .add(
            Method::GET,
            "/cameras/{id}/recordings",
            ANY_HUMAN,
            get(recordings::spans),
        )
        .add(
            Method::GET,
            "/cameras/{id}/video.mp4",
            ANY_HUMAN,
            get(recordings::video),
        )
        .add(
            Method::POST,
            "/holds",
            ADMIN_INVESTIGATOR,
            post(recordings::create_hold),
        )
        .add(
            Method::GET,
            "/cameras/{id}/live",
            LIVE_VIEWERS,
            get(live::live),
        )
        .add(
            Method::POST,
            "/cameras/{id}/whep",
            LIVE_VIEWERS,
            post(live::whep),
        )
        .add(
            Method::DELETE,
            "/cameras/{id}/whep/{session}",
            LIVE_VIEWERS,
            delete(live::whep_delete),
        )
        .add(Method::GET, "/live/stats", ADMIN, get(live::stats))
        .add(
            Method::POST,
            "/live/stats/reset",
            ADMIN,
            post(live::reset_stats),
        )
        .add(Method::POST, "/nvrs", ADMIN, post(cameras::import_nvr))
        .add(Method::GET, "/openapi.json", ANYONE, get(ops::openapi))
}

/// The whole application: the public routes (login, health) and the authenticated API.
pub fn router(state: AppState) -> Router {
    let api = routes().into_router(state.clone());
    let public = Router::new().route("/session", post(session::login));
    let metrics = Routes::new()
        .add(Method::GET, "/metrics", ADMIN, get(ops::metrics))
        .into_router(state.clone());
    Router::new()
        .nest("/api/v1", public.merge(api))
        .merge(metrics)
        .route("/healthz", get(ops::healthz))
        .merge(web::router())
        .fallback(ops::not_found)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

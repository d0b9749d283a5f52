//! The HTTP API of the v1 contract (`/api/v1`, `/healthz`, `/metrics`), built on axum.
//!
//! Every `/api/v1` route but the login is declared in [`routes`] with the roles it admits (see
//! [`access`]); handlers check the region of what they touch. Handlers validate every input before
//! writing anything and answer errors as `{"error": {"code", "message"}}`.

pub mod access;
mod cameras;
pub mod cases;
pub use cameras::camera_spec;
pub mod error;
mod ops;
mod recordings;
mod session;
mod sites;
mod validate;
mod web;

use crate::config::Config;
use crate::db::Pool;
use crate::ingest::Supervisor;
use access::{Routes, ADMIN, ADMIN_INVESTIGATOR, ANYONE, ANY_HUMAN};
use axum::http::Method;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub cfg: Arc<Config>,
    pub ingest: Arc<Supervisor>,
    pub recorders: Arc<crate::record::Recorders>,
    pub cases: Arc<crate::cases::CaseService>,
    pub started: std::time::Instant,
}

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
        .add(Method::POST, "/nvrs", ADMIN, post(cameras::import_nvr))
        .add(
            Method::GET,
            "/sites/{id}/case-rules",
            ANY_HUMAN,
            get(cases::get_rules),
        )
        .add(
            Method::PUT,
            "/sites/{id}/case-rules",
            ADMIN,
            put(cases::put_rules),
        )
        .add(
            Method::POST,
            "/events",
            cases::EVENT_SENDERS,
            post(cases::post_events),
        )
        .add(
            Method::GET,
            "/cases",
            cases::INVESTIGATORS,
            get(cases::list_cases),
        )
        .add(
            Method::GET,
            "/cases/{case_no}",
            cases::INVESTIGATORS,
            get(cases::get_case),
        )
        .add(
            Method::GET,
            "/cases/{case_no}/clips/{index}/thumbnail.jpg",
            cases::INVESTIGATORS,
            get(cases::clip_thumbnail),
        )
        .add(
            Method::POST,
            "/cases/{case_no}/export",
            cases::INVESTIGATORS,
            post(cases::start_export),
        )
        .add(
            Method::GET,
            "/exports/{id}",
            cases::INVESTIGATORS,
            get(cases::get_export),
        )
        .add(
            Method::GET,
            "/exports/{id}/download",
            cases::INVESTIGATORS,
            get(cases::download_export),
        )
        .add(Method::GET, "/signing-key", ANYONE, get(cases::signing_key))
        .add(
            Method::GET,
            "/notifications",
            ANY_HUMAN,
            get(cases::notifications),
        )
        .add(
            Method::GET,
            "/alarms",
            cases::ALARM_READERS,
            get(cases::list_alarms),
        )
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

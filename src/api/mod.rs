//! The HTTP API of the v1 contract (`/api/v1`, `/healthz`, `/metrics`), built on axum.
//!
//! Every `/api/v1` route but the login is declared in [`routes`] with the roles it admits and its audit
//! action (see [`access`]); the layer checks the region of the object a path names, handlers the regions
//! of lists and of objects named in bodies. Handlers validate every input before
//! writing anything and answer errors as `{"error": {"code", "message"}}`.

pub mod access;
mod audit;
mod backfills;
mod camera_test;
mod cameras;
pub mod cases;
mod device_footage;
mod gb;
pub use cameras::{camera_spec, CameraRunner};
pub mod error;
mod fan_out;
mod health;
mod holds;
mod internal;
mod link_exports;
mod link_footage;
mod link_stream;
mod link_tree;
mod links;
mod live;
mod metrics;
mod nodes;
mod onvif;
mod ops;
mod ptz;
mod recent;
mod recordings;
mod remote_cases;
mod remote_exports;
mod remote_footage;
mod remote_status;
pub mod repeats;
mod revoke;
pub use revoke::Rechecks;
mod session;
mod sites;
pub mod target;
mod thumbnails;
mod users;
mod validate;
mod wall;
mod web;

use crate::auth::Role;
use crate::config::Config;
use crate::db::Pool;
use crate::ingest::Supervisor;
use crate::live::Live;
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
    pub live: Arc<Live>,
    pub cases: Arc<crate::cases::CaseService>,
    pub started: std::time::Instant,
    /// Failed logins per client address.
    pub login_throttle: Arc<crate::auth::throttle::AddressThrottle>,
    /// Audit rows of repeated reads already written (see [`repeats`]).
    pub audit_repeats: Arc<repeats::Repeats>,
    /// The keyed audit log.
    pub audit: crate::audit::Log,
    /// The key of camera passwords at rest.
    pub secrets: Arc<crate::auth::secrets::Secrets>,
    /// This node's membership of a cluster (None: a single server that runs every camera).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The GB/T 28181 platform, when `[gb28181] sip_listen` is set.
    pub gb: Option<Arc<crate::gb28181::Platform>>,
    /// Steering of the cameras that have PTZ.
    pub ptz: Arc<crate::edge::ptz::Controller>,
    /// This server's links to city servers and what they share.
    pub federation: Arc<crate::federation::Federation>,
    /// Answers of the rights rechecks of long-lived views, shared for a moment (see [`revoke`]).
    pub rechecks: Arc<Rechecks>,
}

/// Who may watch live video: the contract's "supervisor: live, playback, alarms", and admins.
pub const LIVE_VIEWERS: &[Role] = &[Role::Admin, Role::Supervisor];

/// The table of authenticated routes: method, path, roles, audit action, handler. Reads of footage and
/// every change carry an audit action; the access layer writes the row (see [`access`]). One line per
/// route, so that the table reads as the access policy it is.
#[rustfmt::skip]
pub fn routes() -> Routes {
    use Method as M;
    let routes = Routes::new()
        .add(M::DELETE, "/session", ANYONE, Some("logout"), delete(session::logout))
        .add(M::GET, "/me", ANYONE, None, get(session::me))
        .add(M::GET, "/me/wall", LIVE_VIEWERS, None, get(wall::get))
        .add(M::PUT, "/me/wall", LIVE_VIEWERS, Some("wall.update"), put(wall::put))
        .add(M::GET, "/regions", ANY_HUMAN, None, get(sites::list_regions))
        .add(M::POST, "/regions", ADMIN, Some("region.create"), post(sites::create_region))
        .add(M::PATCH, "/regions/{code}", ADMIN, Some("region.update"), patch(sites::update_region))
        .add(M::DELETE, "/regions/{code}", ADMIN, Some("region.delete"), delete(sites::delete_region))
        .add(M::GET, "/sites", ANY_HUMAN, None, get(sites::list_sites))
        .add(M::POST, "/sites", ADMIN, Some("site.create"), post(sites::create_site))
        .add(M::GET, "/sites/{id}", ANY_HUMAN, None, get(sites::get_site))
        .add(M::PATCH, "/sites/{id}", ADMIN, Some("site.update"), patch(sites::update_site))
        .add(M::DELETE, "/sites/{id}", ADMIN, Some("site.delete"), delete(sites::delete_site))
        .add(M::GET, "/sites/{id}/positions", ANY_HUMAN, None, get(sites::list_positions))
        .add(M::POST, "/sites/{id}/positions", ADMIN, Some("position.create"), post(sites::create_position))
        .add(M::PATCH, "/sites/{id}/positions/{position_id}", ADMIN, Some("position.update"), patch(sites::update_position))
        .add(M::DELETE, "/sites/{id}/positions/{position_id}", ADMIN, Some("position.delete"), delete(sites::delete_position))
        .add(M::GET, "/cameras", ANY_HUMAN, None, get(cameras::list))
        .add(M::POST, "/cameras", ADMIN, Some("camera.create"), post(cameras::create))
        .add(M::POST, "/cameras/test", ADMIN, Some("camera.test"), post(camera_test::test))
        .add(M::GET, "/cameras/{id}", ANY_HUMAN, None, get(cameras::get_one))
        .add(M::PATCH, "/cameras/{id}", ADMIN, Some("camera.update"), patch(cameras::update))
        .add(M::DELETE, "/cameras/{id}", ADMIN, Some("camera.delete"), delete(cameras::remove))
        .add(M::GET, "/cameras/{id}/status", ANY_HUMAN, None, get(cameras::status))
        .add(M::GET, "/cameras/{id}/snapshot.jpg", ANY_HUMAN, Some("camera.snapshot"), get(cameras::snapshot))
        .add(M::GET, "/cameras/{id}/recordings", ANY_HUMAN, None, get(remote_footage::spans))
        .add(M::GET, "/cameras/{id}/events", ANY_HUMAN, Some("camera.events"), get(cases::camera_events))
        .add(M::GET, "/cameras/{id}/video.mp4", ANY_HUMAN, Some("playback"), get(remote_footage::video))
        .add(M::GET, "/cameras/{id}/device-recordings", ANY_HUMAN, Some("playback.device_records"), get(device_footage::records))
        .add(M::POST, "/cameras/{id}/ptz", LIVE_VIEWERS, Some("ptz"), post(ptz::steer))
        .add(M::GET, "/cameras/{id}/device-playback", ANY_HUMAN, Some("playback.device"), get(device_footage::playback))
        .add(M::GET, "/cameras/{id}/thumbnails", ANY_HUMAN, None, get(remote_footage::strip))
        .add(M::GET, "/cameras/{id}/thumbnail.jpg", ANY_HUMAN, Some("playback.thumbnail"), get(remote_footage::picture))
        .add(M::GET, "/holds", ADMIN_INVESTIGATOR, None, get(holds::list))
        .add(M::POST, "/holds", ADMIN_INVESTIGATOR, Some("hold.create"), post(holds::create))
        .add(M::DELETE, "/holds/{id}", ADMIN, Some("hold.release"), delete(holds::release))
        .add(M::GET, "/cameras/{id}/live", LIVE_VIEWERS, Some("live.start"), get(live::live))
        .add(M::POST, "/cameras/{id}/whep", LIVE_VIEWERS, Some("live.start"), post(live::whep))
        .add(M::DELETE, "/cameras/{id}/whep/{session}", LIVE_VIEWERS, Some("live.stop"), delete(live::whep_delete))
        .add(M::GET, "/live/stats", ADMIN, None, get(live::stats))
        .add(M::POST, "/nvrs", ADMIN, Some("nvr.import"), post(cameras::import_nvr))
        .add(M::POST, "/onvif/discover", ADMIN, Some("onvif.discover"), post(onvif::discover))
        .add(M::GET, "/gb/devices", ADMIN, None, get(gb::list))
        .add(M::GET, "/backfills", ANY_HUMAN, None, get(backfills::list))
        .add(M::GET, "/gb/upstreams", ADMIN, None, get(gb::upstreams))
        .add(M::POST, "/gb/devices/{id}/bind", ADMIN, Some("gb.bind"), post(gb::bind))
        .add(M::GET, "/sites/{id}/case-rules", ANY_HUMAN, None, get(cases::get_rules))
        .add(M::PUT, "/sites/{id}/case-rules", ADMIN, Some("case_rules.update"), put(cases::put_rules))
        .add(M::POST, "/events", cases::EVENT_SENDERS, Some("events.post"), post(cases::post_events))
        .add(M::GET, "/cases", cases::INVESTIGATORS, None, get(cases::search_cases))
        .add(M::GET, "/cases/{case_no}", cases::INVESTIGATORS, Some("case.view"), get(cases::get_case))
        .add(M::GET, "/cases/{case_no}/clips/{index}/thumbnail.jpg", cases::INVESTIGATORS, None, get(cases::clip_thumbnail))
        .add(M::POST, "/cases/{case_no}/export", cases::INVESTIGATORS, Some("export.create"), post(cases::start_export))
        .add(M::GET, "/exports/{id}", cases::INVESTIGATORS, None, get(cases::get_export))
        .add(M::GET, "/exports/{id}/download", cases::INVESTIGATORS, Some("export.download"), get(cases::download_export))
        .add(M::GET, "/signing-key", ANYONE, None, get(cases::signing_key))
        .add(M::GET, "/notifications", ANY_HUMAN, None, get(cases::notifications))
        .add(M::GET, "/alarms", cases::ALARM_READERS, None, get(cases::list_alarms))
        .add(M::GET, "/users", ADMIN, None, get(users::list))
        .add(M::POST, "/users", ADMIN, Some("user.create"), post(users::create))
        .add(M::PATCH, "/users/{id}", ADMIN, Some("user.update"), patch(users::update))
        .add(M::DELETE, "/users/{id}", ADMIN, Some("user.delete"), delete(users::remove))
        .add(M::POST, "/users/{id}/unlock", ADMIN, Some("user.unlock"), post(users::unlock))
        .add(M::GET, "/tokens", ADMIN, None, get(users::list_tokens))
        .add(M::POST, "/tokens", ADMIN, Some("token.create"), post(users::create_token))
        .add(M::DELETE, "/tokens/{id}", ADMIN, Some("token.revoke"), delete(users::revoke_token))
        .add(M::GET, "/audit", ADMIN, None, get(audit::list))
        .add(M::GET, "/health", ANY_HUMAN, None, get(health::health))
        .add(M::GET, "/nodes", ADMIN, None, get(nodes::list))
        .add(M::GET, "/openapi.json", ANYONE, None, get(ops::openapi));
    link_routes(routes)
}

/// Federation (docs/federation.md): a city's credentials for its province, a province's links to cities.
#[rustfmt::skip]
fn link_routes(routes: Routes) -> Routes {
    use Method as M;
    routes
        .add(M::POST, "/link-credentials", ADMIN, Some("link_credential.create"), post(links::create_grant))
        .add(M::GET, "/link-credentials", ADMIN, None, get(links::list_grants))
        .add(M::PATCH, "/link-credentials/{id}", ADMIN, Some("link_credential.update"), patch(links::update_grant))
        .add(M::DELETE, "/link-credentials/{id}", ADMIN, Some("link_credential.revoke"), delete(links::revoke_grant))
        .add(M::POST, "/links", ADMIN, Some("link.create"), post(links::create_link))
        .add(M::GET, "/links", ADMIN, None, get(links::list_links))
        .add(M::PATCH, "/links/{id}", ADMIN, Some("link.update"), patch(links::update_link))
        .add(M::DELETE, "/links/{id}", ADMIN, Some("link.delete"), delete(links::delete_link))
}

/// The whole application: the public routes (login, health) and the authenticated API.
pub fn router(state: AppState) -> Router {
    let api = routes().into_router(state.clone());
    let public = Router::new().route("/session", post(session::login));
    let metrics = Routes::new()
        .add(Method::GET, "/metrics", ADMIN, None, get(metrics::metrics))
        .add(
            Method::POST,
            "/api/v1/live/stats/reset",
            ADMIN,
            Some("live.stats_reset"),
            post(live::reset_stats),
        )
        .into_router(state.clone());
    let tls = state.cfg.tls.enabled();
    let router = Router::new()
        .nest("/api/v1", public.merge(api))
        .merge(metrics)
        .route("/healthz", get(ops::healthz))
        // City to province (the request's signature, not a session): see `links`.
        .route(crate::federation::TREE_PATH, get(link_tree::tree))
        .route("/api/v1/link/cameras/{id}/stream", get(link_stream::stream))
        .route("/api/v1/link/cameras/{id}/views", get(link_stream::views))
        .route(
            "/api/v1/link/cameras/{id}/recordings",
            get(link_footage::recordings),
        )
        .route(
            "/api/v1/link/cameras/{id}/video.mp4",
            get(link_footage::video),
        )
        .route("/api/v1/link/cases", get(remote_cases::city_cases))
        .route("/api/v1/link/cases/{case_no}", get(link_exports::case))
        .route(
            "/api/v1/link/cases/{case_no}/clips/{index}/thumbnail.jpg",
            get(link_exports::clip_picture),
        )
        .route(
            "/api/v1/link/cases/{case_no}/export",
            post(link_exports::start_export),
        )
        .route("/api/v1/link/exports/{id}", get(link_exports::export_state))
        .route(
            "/api/v1/link/exports/{id}/download",
            get(link_exports::download),
        )
        .route("/api/v1/link/signing-key", get(link_exports::signing_key))
        .route("/api/v1/link/alarms", get(remote_status::link_alarms))
        .route("/api/v1/link/health", get(remote_status::link_health))
        .route(
            "/api/v1/link/cameras/{id}/thumbnails",
            get(link_footage::strip),
        )
        .route(
            "/api/v1/link/cameras/{id}/thumbnail.jpg",
            get(link_footage::picture),
        )
        // Node-to-node (cluster key, not a session): see `internal`.
        .route(
            "/api/v1/internal/streams/{camera}/{kind}",
            get(internal::stream),
        )
        .route(
            "/api/v1/internal/segments/{id}/skeleton",
            get(internal::segment_skeleton),
        )
        .route(
            "/api/v1/internal/segments/{id}/bytes",
            get(internal::segment_bytes),
        )
        .merge(web::router())
        .fallback(ops::not_found);
    security_headers(router, tls)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The console's content security policy: its own scripts, styles and API only (no inline script or
/// style attribute, no eval), video from MSE blobs, never framed by another site.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Headers on every answer: the CSP, no MIME sniffing, no framing, no referrer, and HSTS when the server
/// itself serves TLS (behind a proxy, the proxy sets HSTS).
fn security_headers(router: Router<AppState>, tls: bool) -> Router<AppState> {
    use axum::http::{header, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer as Set;
    let router = router
        .layer(Set::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(Set::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(Set::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(Set::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    if tls {
        router.layer(Set::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        router
    }
}

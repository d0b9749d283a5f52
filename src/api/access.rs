//! The access layer: every `/api/v1` route is declared here with the roles it admits and its audit action,
//! and the router is built from that table, so no route exists without an access rule and no audited route
//! can forget its audit row.
//!
//! For every request, before the handler runs:
//! 1. [`authenticate`] resolves the caller (bearer token or cookie session; 401 without one) and checks the
//!    CSRF token of a change made with a cookie (403).
//! 2. the route's guard checks the role (403), checks the `Origin` of a WebSocket upgrade
//!    ([`check_ws_origin`], 403), and resolves the object named by the path (`/cameras/{id}`,
//!    `/sites/{id}`, `/users/{id}`, `/tokens/{id}`: see [`super::target`]) to its region: an object out of
//!    the caller's scope answers 404, so another city's object cannot even be seen to exist.
//!
//! After the handler, the guard appends an audit row (`audit::Log::append`) when the route has an action: actor,
//! role, action, target (the path, or what the handler noted with [`AuditNote`]), the target's region,
//! status, client address. Refused attempts on audited routes are recorded too. If the row cannot be
//! written the answer becomes a 500: nothing audited is served without its trace. An audited call runs to
//! its end (handler and row) even when the client hangs up meanwhile.
//!
//! Handlers still receive the [`Principal`] and filter lists and check the objects named in bodies with
//! [`scoped`].

use super::error::ApiError;
use super::target;
use super::AppState;
use crate::audit;
use crate::auth::{self, Principal, Role};
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{RequestExt, Router};
use axum_extra::extract::cookie::CookieJar;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "vigil_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Roles by name, for route declarations.
pub const ANY_HUMAN: &[Role] = &[Role::Admin, Role::Supervisor, Role::Investigator];
pub const ADMIN: &[Role] = &[Role::Admin];
pub const ADMIN_INVESTIGATOR: &[Role] = &[Role::Admin, Role::Investigator];
pub const ANYONE: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Investigator,
    Role::Integrator,
];

/// One row of the access table.
#[derive(Debug, Clone)]
pub struct RouteRule {
    pub method: Method,
    pub path: &'static str,
    pub roles: &'static [Role],
    /// The audit action recorded for every call (`None`: a read that needs no trace).
    pub audit: Option<&'static str>,
}

/// What a handler may tell the audit row about the object it touched (e.g. the id and region of what it
/// created), as an extension of its response. Absent fields fall back to the path and its object.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub target: Option<String>,
    pub region_code: Option<String>,
    pub detail: Option<String>,
    /// A read a client repeats by design (a video's byte ranges): an identical successful row written
    /// lately is not written again (see [`super::repeats`]).
    pub collapse: bool,
}

/// Attaches an [`AuditNote`] to a response.
pub fn noted(resp: impl IntoResponse, note: AuditNote) -> Response {
    let mut resp = resp.into_response();
    resp.extensions_mut().insert(note);
    resp
}

/// An audit entry for `principal` doing `action` on `target`, for code that is not a whole route, e.g. the
/// end of a live view: `state.audit.append(&access::audit_entry(&p, "live.stop", "/cameras/7",
/// Some(region), 200, client))`. (The start is the route's own audit action, written by the layer.)
pub fn audit_entry(
    principal: &Principal,
    action: &str,
    target: &str,
    region_code: Option<&str>,
    status: u16,
    client: Option<&str>,
) -> audit::Entry {
    audit::Entry {
        actor: principal.actor(),
        role: Some(principal.role.as_str().to_owned()),
        action: action.to_owned(),
        target: Some(target.to_owned()),
        region_code: region_code.map(str::to_owned),
        status,
        client: client.map(str::to_owned),
        detail: None,
    }
}

/// The client address of a request (after `X-Forwarded-For` when trusted), set by [`authenticate`].
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

/// Builds the authenticated router and the table of its rules together.
pub struct Routes {
    router: Router<AppState>,
    pub rules: Vec<RouteRule>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            rules: Vec::new(),
        }
    }

    /// Adds one method of one path with the roles that may call it and its audit action.
    pub fn add(
        mut self,
        method: Method,
        path: &'static str,
        roles: &'static [Role],
        audit: Option<&'static str>,
        handler: MethodRouter<AppState>,
    ) -> Routes {
        let rule = RouteRule {
            method,
            path,
            roles,
            audit,
        };
        self.rules.push(rule.clone());
        let guarded = handler.route_layer(middleware::from_fn(move |req: Request, next: Next| {
            guard(rule.clone(), req, next)
        }));
        self.router = self.router.route(path, guarded);
        self
    }

    /// The router, with authentication in front of every route.
    pub fn into_router(self, state: AppState) -> Router<AppState> {
        self.router
            .route_layer(middleware::from_fn_with_state(state, authenticate))
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

/// The role, origin and region checks of one route, and its audit row.
///
/// An audited call runs to its end in a task of its own. A client that hangs up cancels its request
/// wherever it is; a change the handler had begun (or a live view it let in) would then be done without
/// its audit row, or its row written without the answer that ends it.
async fn guard(rule: RouteRule, req: Request, next: Next) -> Response {
    if rule.audit.is_none() {
        return checked(rule, req, next).await;
    }
    match tokio::spawn(checked(rule, req, next)).await {
        Ok(resp) => resp,
        Err(e) => ApiError::internal(format!("the request failed: {e}")).into_response(),
    }
}

async fn checked(rule: RouteRule, mut req: Request, next: Next) -> Response {
    let (Some(principal), Some(state)) = (
        req.extensions().get::<Principal>().cloned(),
        req.extensions().get::<AppState>().cloned(),
    ) else {
        return ApiError::unauthorized().into_response();
    };
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0.clone());
    let path = req.uri().path().to_owned();
    let params: Vec<(String, String)> = match req.extract_parts::<RawPathParams>().await {
        Ok(p) => p
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let (object, refused) = admit(&state, &rule, &principal, req.headers(), &params).await;
    let resp = match refused {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    };
    let Some(action) = rule.audit else {
        return resp;
    };
    let note = resp
        .extensions()
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let entry = audit::Entry {
        actor: principal.actor(),
        role: Some(principal.role.as_str().to_owned()),
        action: action.to_owned(),
        target: note.target.or(Some(path)),
        region_code: note
            .region_code
            .or_else(|| object.and_then(|o| o.region_codes.into_iter().next())),
        status: resp.status().as_u16(),
        client,
        detail: note.detail,
    };
    let collapse =
        note.collapse && (resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED);
    write_audit(&state, entry, collapse, resp).await
}

/// Whether the caller may make this request: the route's roles, a WebSocket's origin, and the region of
/// the object the path names (out of scope reads as 404). Gives the object, refused or not: a refusal's
/// audit row carries the object's region too.
async fn admit(
    state: &AppState,
    rule: &RouteRule,
    principal: &Principal,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> (Option<target::Target>, Option<ApiError>) {
    if !rule.roles.contains(&principal.role) {
        let role = principal.role.as_str();
        return (
            None,
            Some(ApiError::forbidden(format!(
                "the {role} role may not do this"
            ))),
        );
    }
    if let Err(e) = check_ws_origin(headers, &state.cfg.auth.allowed_origins) {
        return (None, Some(e));
    }
    match target::resolve(&state.pool, rule.path, params).await {
        Err(e) => (None, Some(e)),
        Ok(Some(t)) if !principal.scope.covers(&t.region_codes) => {
            (Some(t), Some(ApiError::not_found()))
        }
        Ok(object) => (object, None),
    }
}

/// Writes the audit row of a request, then gives its response; a row that cannot be written turns the
/// response into an error. A collapsible row repeated lately is not written again (see [`super::repeats`]).
pub(super) async fn write_audit(
    state: &AppState,
    entry: audit::Entry,
    collapse: bool,
    resp: Response,
) -> Response {
    let key = collapse.then(|| {
        (
            entry.actor.clone(),
            entry.action.clone(),
            entry.target.clone(),
            entry.detail.clone(),
        )
    });
    if let Some(k) = &key {
        if state.audit_repeats.is_repeat(k, std::time::Instant::now()) {
            return resp;
        }
    }
    match state.audit.append(&entry).await {
        Ok(_) => {
            if let Some(k) = key {
                state.audit_repeats.remember(k, std::time::Instant::now());
            }
            resp
        }
        Err(e) => ApiError::internal(format!("audit row not written: {e}")).into_response(),
    }
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The address of the client: the socket's peer, or the last `X-Forwarded-For` entry (the one the
/// trusted reverse proxy added) when `auth.trust_forwarded_for` is on.
pub fn client_addr(state: &AppState, req: &Request) -> Option<String> {
    if state.cfg.auth.trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|s| !s.is_empty());
        if let Some(f) = forwarded {
            return Some(f.to_owned());
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Resolves the caller, rejects the request with 401 when there is none, and checks the CSRF token of a
/// change made with a cookie.
async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = if let Some(token) = bearer(req.headers()) {
        auth::principal_from_token(&state.pool, token).await?
    } else if let Some(cookie) = session_cookie(req.headers()) {
        let idle_ms = (state.cfg.auth.session_idle_minutes * 60_000) as i64;
        let p = auth::principal_from_session(&state.pool, &cookie, idle_ms).await?;
        if let Some(p) = &p {
            if !is_safe(req.method()) {
                let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if sent.is_none() || sent != p.csrf_token.as_deref() {
                    return Err(ApiError::forbidden("missing or wrong X-CSRF-Token header"));
                }
            }
        }
        p
    } else {
        None
    };
    let Some(principal) = principal else {
        return Err(ApiError::unauthorized());
    };
    if let Some(addr) = client_addr(&state, &req) {
        req.extensions_mut().insert(ClientAddr(addr));
    }
    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(state);
    Ok(next.run(req).await)
}

/// Whether the principal may touch something in this region. Out of scope reads as "not found", so that
/// a caller cannot even learn that another city's object exists.
pub fn scoped(principal: &Principal, region_code: &str) -> Result<(), ApiError> {
    if principal.scope.allows(region_code) {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// The Origin check of a WebSocket upgrade (cross-site WebSocket hijacking rides on the victim's cookie).
/// Requests that are not upgrades pass. An upgrade from a browser carries `Origin`, which must name this
/// server (same host and port as the `Host` header) or one of `allowed` (`scheme://host[:port]`);
/// clients that send no `Origin` are not browsers and cannot carry a victim's cookie, so they pass (they
/// still need a session or token like every request).
pub fn check_ws_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return Ok(());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let refuse = || ApiError::forbidden("WebSocket from a foreign origin");
    let origin = origin.to_str().map_err(|_| refuse())?.trim_end_matches('/');
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refuse)?;
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(refuse)?;
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ws(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("origin"));
        }
        h
    }

    #[test]
    fn websocket_origin() {
        let none: &[String] = &[];
        assert!(check_ws_origin(
            &ws("vigil.local:8080", Some("http://vigil.local:8080")),
            none
        )
        .is_ok());
        assert!(check_ws_origin(&ws("vigil.local", Some("https://vigil.local")), none).is_ok());
        assert!(
            check_ws_origin(&ws("vigil.local:8080", Some("http://evil.example")), none).is_err()
        );
        assert!(check_ws_origin(
            &ws("vigil.local:8080", Some("http://vigil.local:9999")),
            none
        )
        .is_err());
        assert!(check_ws_origin(&ws("vigil.local:8080", Some("null")), none).is_err());
        assert!(check_ws_origin(
            &ws(
                "vigil.local:8080",
                Some("http://vigil.local.evil.example:8080")
            ),
            none
        )
        .is_err());
        // Not a browser: no Origin.
        assert!(check_ws_origin(&ws("vigil.local:8080", None), none).is_ok());
        let allowed = vec!["https://wall.example".to_string()];
        assert!(check_ws_origin(
            &ws("vigil.local:8080", Some("https://wall.example")),
            &allowed
        )
        .is_ok());
        // Plain requests are not upgrades.
        let mut plain = HeaderMap::new();
        plain.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(check_ws_origin(&plain, none).is_ok());
    }
}

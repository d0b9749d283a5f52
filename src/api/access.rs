//! The access layer: every `/api/v1` route is declared here with the roles it admits, and the router is
//! built from that table, so no route exists without an access rule. Authentication (cookie session or
//! bearer token), the CSRF check for cookie changes and the role check all happen before a handler runs;
//! handlers receive the [`Principal`] and check the region of what they touch with [`scoped`].

use super::error::ApiError;
use super::AppState;
use crate::auth::{self, Principal, Role};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;

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
}

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

    /// Adds one method of one path with the roles that may call it.
    pub fn add(
        mut self,
        method: Method,
        path: &'static str,
        roles: &'static [Role],
        handler: MethodRouter<AppState>,
    ) -> Routes {
        self.rules.push(RouteRule {
            method,
            path,
            roles,
        });
        let guarded = handler.route_layer(middleware::from_fn(move |req: Request, next: Next| {
            require_role(roles, req, next)
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

async fn require_role(
    roles: &'static [Role],
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(principal) = req.extensions().get::<Principal>() else {
        return Err(ApiError::unauthorized());
    };
    if !roles.contains(&principal.role) {
        return Err(ApiError::forbidden(format!(
            "the {} role may not do this",
            principal.role.as_str()
        )));
    }
    Ok(next.run(req).await)
}

fn cookie_value<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Resolves the caller, rejects the request with 401 when there is none, and checks the CSRF token of a
/// change made with a cookie.
async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = if let Some(token) = bearer(&req) {
        auth::principal_from_token(&state.pool, token).await?
    } else if let Some(cookie) = cookie_value(&req, SESSION_COOKIE) {
        let idle_ms = (state.cfg.auth.session_idle_minutes * 60_000) as i64;
        let p = auth::principal_from_session(&state.pool, cookie, idle_ms).await?;
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
    req.extensions_mut().insert(principal);
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

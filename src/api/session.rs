//! `POST /session` (login, throttled and audited), `DELETE /session` (logout), `GET /me`.

use super::access::{self, SESSION_COOKIE};
use super::error::{ApiError, ApiResult, Json};
use super::AppState;
use crate::audit;
use crate::auth::{self, Principal, Subject};
use crate::db;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum_extra::extract::cookie::CookieJar;
use cookie::{Cookie, CookieBuilder, SameSite};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

fn too_many(message: String, retry_after_s: u64) -> Response {
    let mut r =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

/// The audit rows of one login attempt. The actor of a row is a real user (or token), never a name
/// someone typed: an unknown name goes into the detail, quoted and escaped, so that it can neither pose
/// as an actor nor break a log line.
struct LoginAudit {
    log: audit::Log,
    client: Option<String>,
    tried: String,
}

impl LoginAudit {
    async fn record(
        &self,
        action: &'static str,
        status: StatusCode,
        user: Option<&db::users::User>,
    ) -> ApiResult<()> {
        let entry = audit::Entry {
            actor: user.map_or_else(|| "anonymous".to_owned(), |u| u.username.clone()),
            role: user.map(|u| u.role.clone()),
            action: action.into(),
            target: user.map(|u| format!("/users/{}", u.id)),
            region_code: user.and_then(|u| u.region_codes.first().cloned()),
            status: status.as_u16(),
            client: self.client.clone(),
            detail: user.is_none().then(|| format!("username {:?}", self.tried)),
        };
        self.log.append(&entry).await?;
        Ok(())
    }
}

/// Logs in. Throttled per client address (in memory) and per account (in the database, with a lock an
/// admin can lift); every attempt, good or bad, leaves an audit row. Each attempt is counted before its
/// password is checked, so that many attempts at once get no more guesses than one after another.
pub async fn login(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let client = access::client_addr(&state, &req);
    let Json(body): Json<Login> = Json::from_request(req, &state).await?;
    let audit = LoginAudit {
        log: state.audit.clone(),
        client: client.clone(),
        tried: body.username.chars().take(64).collect(),
    };
    let addr_key = client.unwrap_or_default();
    if let Err(wait) = state.login_throttle.begin(&addr_key) {
        audit
            .record("login_throttled", StatusCode::TOO_MANY_REQUESTS, None)
            .await?;
        return Ok(too_many(
            format!("too many failed logins from your address; try again in {wait} s"),
            wait,
        ));
    }
    let creds = db::users::credentials(&state.pool, &body.username).await?;
    let lock_minutes = match state.cfg.auth.lockout_minutes {
        0 => 100 * 365 * 24 * 60,
        m => m,
    };
    let lock_until = db::now_ms() + (lock_minutes * 60_000) as i64;
    let last_allowed = match &creds {
        Some(c) => match charge(&state, c, lock_until).await? {
            Ok(last) => last,
            Err(until) => {
                state.login_throttle.release(&addr_key);
                audit
                    .record("login_locked", StatusCode::TOO_MANY_REQUESTS, Some(&c.user))
                    .await?;
                let wait = ((until - db::now_ms()) / 1000).clamp(1, 86_400) as u64;
                let msg =
                    "this account is locked after too many failed logins; an admin can unlock it";
                return Ok(too_many(msg.into(), wait));
            }
        },
        None => false,
    };
    let password = body.password;
    let (hash, user) = match creds {
        Some(c) => (c.password_hash, Some(c.user)),
        None => (auth::dummy_hash().to_owned(), None),
    };
    // argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(u) if ok => u,
        user => {
            if let (Some(u), true) = (&user, last_allowed) {
                db::users::lock(&state.pool, u.id, lock_until).await?;
            }
            // Debug formatting quotes and escapes the name: a name with a newline cannot forge a line.
            tracing::info!(username = ?audit.tried, locked = last_allowed, "login failed");
            audit
                .record("login_failed", StatusCode::UNAUTHORIZED, user.as_ref())
                .await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong username or password",
            ));
        }
    };
    state.login_throttle.release(&addr_key);
    db::users::clear_failures(&state.pool, user.id).await?;
    let response = start_session(&state, &user).await?;
    tracing::info!(username = %user.username, "login");
    audit.record("login", StatusCode::OK, Some(&user)).await?;
    Ok(response)
}

/// Counts an attempt at an account: whether it is the last one allowed before the lock, or the end of
/// the lock already in force.
async fn charge(
    state: &AppState,
    c: &db::users::Credentials,
    lock_until: i64,
) -> ApiResult<Result<bool, i64>> {
    let max = state.cfg.auth.login_max_failures;
    let attempt = match c.locked_until {
        Some(until) => db::users::Attempt::Locked { until },
        None => db::users::charge_attempt(&state.pool, c.user.id, max, lock_until).await?,
    };
    Ok(match attempt {
        db::users::Attempt::Locked { until } => Err(until),
        db::users::Attempt::Allowed { nth } => Ok(nth >= i64::from(max)),
    })
}

/// A new session of `user`: its cookie and the CSRF token the console sends back with each change.
async fn start_session(state: &AppState, user: &db::users::User) -> ApiResult<Response> {
    let cookie = auth::random_secret();
    let csrf = auth::random_secret();
    let expires = db::now_ms() + (state.cfg.auth.session_absolute_hours * 3_600_000) as i64;
    let hash = auth::secret_hash(&cookie);
    db::users::insert_session(&state.pool, &hash, &csrf, user.id, expires).await?;
    let secure = state.cfg.auth.secure_cookies || state.cfg.tls.enabled();
    let max_age = (state.cfg.auth.session_absolute_hours * 3600) as i64;
    let jar = CookieJar::new().add(
        session_cookie(cookie)
            .max_age(cookie::time::Duration::seconds(max_age))
            .secure(secure),
    );
    Ok((jar, axum::Json(json!({"csrf_token": csrf, "user": user}))).into_response())
}

/// The session cookie: the whole site's, never readable by scripts, never sent from another site.
fn session_cookie(value: String) -> CookieBuilder<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(_principal): Extension<Principal>,
) -> ApiResult<Response> {
    if let Some(cookie) = access::session_cookie(&headers) {
        db::users::delete_session(&state.pool, &auth::secret_hash(&cookie)).await?;
    }
    let clear = session_cookie(String::new()).max_age(cookie::time::Duration::ZERO);
    Ok((CookieJar::new().add(clear), StatusCode::NO_CONTENT).into_response())
}

pub async fn me(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    let (kind, id, name) = match &p.subject {
        Subject::User { id, username } => ("user", *id, username.clone()),
        Subject::Token { id, name } => ("token", *id, name.clone()),
    };
    Json(json!({"kind": kind, "id": id, "name": name, "role": p.role, "csrf_token": p.csrf_token}))
}

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

/// Logs in. Throttled per client address (in memory) and per account (in the database, with a lock an
/// admin can lift); every attempt, good or bad, leaves an audit row. Each attempt is counted before its
/// password is checked, so that many attempts at once get no more guesses than one after another.
pub async fn login(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let client = access::client_addr(&state, &req);
    let Json(body): Json<Login> = Json::from_request(req, &state).await?;
    let cfg = &state.cfg.auth;
    let tried: String = body.username.chars().take(64).collect();
    // The actor of a row is a real user (or token), never a name someone typed: an unknown name goes
    // into the detail, quoted and escaped, so that it can neither pose as an actor nor break a log line.
    let record = |action: &'static str, status: StatusCode, user: Option<&db::users::User>| {
        let entry = audit::Entry {
            actor: user.map_or_else(|| "anonymous".to_owned(), |u| u.username.clone()),
            role: user.map(|u| u.role.clone()),
            action: action.into(),
            target: user.map(|u| format!("/users/{}", u.id)),
            region_code: user.and_then(|u| u.region_codes.first().cloned()),
            status: status.as_u16(),
            client: client.clone(),
            detail: user.is_none().then(|| format!("username {tried:?}")),
        };
        let log = state.audit.clone();
        async move { log.append(&entry).await }
    };
    let addr_key = client.clone().unwrap_or_default();
    if let Err(wait) = state.login_throttle.begin(&addr_key) {
        record("login_throttled", StatusCode::TOO_MANY_REQUESTS, None).await?;
        return Ok(too_many(
            format!("too many failed logins from your address; try again in {wait} s"),
            wait,
        ));
    }
    let creds = db::users::credentials(&state.pool, &body.username).await?;
    let lock_minutes = if cfg.lockout_minutes == 0 {
        100 * 365 * 24 * 60
    } else {
        cfg.lockout_minutes
    };
    let lock_until = db::now_ms() + (lock_minutes * 60_000) as i64;
    let mut last_allowed = false;
    if let Some(c) = &creds {
        let attempt = match c.locked_until {
            Some(until) => db::users::Attempt::Locked { until },
            None => {
                db::users::charge_attempt(
                    &state.pool,
                    c.user.id,
                    cfg.login_max_failures,
                    lock_until,
                )
                .await?
            }
        };
        match attempt {
            db::users::Attempt::Locked { until } => {
                state.login_throttle.release(&addr_key);
                record("login_locked", StatusCode::TOO_MANY_REQUESTS, Some(&c.user)).await?;
                let wait = ((until - db::now_ms()) / 1000).clamp(1, 86_400) as u64;
                return Ok(too_many(
                    "this account is locked after too many failed logins; an admin can unlock it"
                        .into(),
                    wait,
                ));
            }
            db::users::Attempt::Allowed { nth } => {
                last_allowed = nth >= i64::from(cfg.login_max_failures);
            }
        }
    }
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
            tracing::info!(username = ?tried, locked = last_allowed, "login failed");
            record("login_failed", StatusCode::UNAUTHORIZED, user.as_ref()).await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong username or password",
            ));
        }
    };
    state.login_throttle.release(&addr_key);
    db::users::clear_failures(&state.pool, user.id).await?;
    let cookie = auth::random_secret();
    let csrf = auth::random_secret();
    let expires = db::now_ms() + (state.cfg.auth.session_absolute_hours * 3_600_000) as i64;
    db::users::insert_session(
        &state.pool,
        &auth::secret_hash(&cookie),
        &csrf,
        user.id,
        expires,
    )
    .await?;
    tracing::info!(username = %user.username, "login");
    record("login", StatusCode::OK, Some(&user)).await?;
    let secure = if state.cfg.auth.secure_cookies || state.cfg.tls.enabled() {
        "; Secure"
    } else {
        ""
    };
    let max_age = state.cfg.auth.session_absolute_hours * 3600;
    let set_cookie = format!(
        "{SESSION_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie).map_err(ApiError::internal)?,
    );
    Ok((
        headers,
        axum::Json(json!({"csrf_token": csrf, "user": user})),
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(_principal): Extension<Principal>,
) -> ApiResult<Response> {
    if let Some(cookie) = access::session_cookie(&headers) {
        db::users::delete_session(&state.pool, &auth::secret_hash(cookie)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut out = HeaderMap::new();
    out.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(ApiError::internal)?,
    );
    Ok((out, StatusCode::NO_CONTENT).into_response())
}

pub async fn me(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    let (kind, id, name) = match &p.subject {
        Subject::User { id, username } => ("user", *id, username.clone()),
        Subject::Token { id, name } => ("token", *id, name.clone()),
    };
    Json(json!({"kind": kind, "id": id, "name": name, "role": p.role, "csrf_token": p.csrf_token}))
}

//! `POST /session` (login), `DELETE /session` (logout), `GET /me`.

use super::access::SESSION_COOKIE;
use super::error::{ApiError, ApiResult, Json};
use super::AppState;
use crate::auth::{self, Principal, Subject};
use crate::db;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
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

pub async fn login(State(state): State<AppState>, Json(body): Json<Login>) -> ApiResult<Response> {
    let creds = db::users::credentials(&state.pool, &body.username).await?;
    let password = body.password;
    let (hash, user) = match creds {
        Some(c) => (c.password_hash, Some(c.user)),
        None => (auth::dummy_hash().to_owned(), None),
    };
    // argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(username = %body.username, "login failed");
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong username or password",
        ));
    };
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
    let secure = if state.cfg.auth.secure_cookies {
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
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned());
    if let Some(cookie) = cookie {
        db::users::delete_session(&state.pool, &auth::secret_hash(&cookie)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut out = HeaderMap::new();
    out.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(ApiError::internal)?,
    );
    Ok((out, axum::http::StatusCode::NO_CONTENT).into_response())
}

pub async fn me(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    let (kind, id, name) = match &p.subject {
        Subject::User { id, username } => ("user", *id, username.clone()),
        Subject::Token { id, name } => ("token", *id, name.clone()),
    };
    Json(json!({"kind": kind, "id": id, "name": name, "role": p.role, "csrf_token": p.csrf_token}))
}

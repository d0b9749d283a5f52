//! Users and bearer tokens (`/users`, `/tokens`), for admins. An admin only sees and manages users and
//! tokens whose regions all lie within their own, and only grants regions within their own; a global user
//! or token (no region) is for a global admin only. Passwords are write-only; a token's secret is shown
//! once, in the answer that creates it. The access layer checks the role and the region of `{id}` and
//! writes the audit rows.

use super::access::{noted, scoped, AuditNote};
use super::error::{ApiError, ApiResult, Json, Path};
use super::{validate, AppState};
use crate::auth::{self, Principal, Role, Scope, Subject};
use crate::db::{self, tokens::Token, users::User};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use serde_json::json;

/// Checks region codes to grant: well-formed, existing, within the caller's scope; a regional admin must
/// grant at least one.
async fn grantable(s: &AppState, p: &Principal, codes: &[String]) -> ApiResult<Vec<String>> {
    if codes.len() > 100 {
        return Err(ApiError::invalid("region_codes has more than 100 entries"));
    }
    let mut out = Vec::with_capacity(codes.len());
    for c in codes {
        let code = validate::region_code("region_codes", c)?;
        let missing = || ApiError::invalid(format!("region {code} does not exist"));
        db::regions::get(&s.pool, &code)
            .await
            .map_err(|_| missing())?;
        scoped(p, &code).map_err(|_| missing())?;
        out.push(code);
    }
    out.sort();
    out.dedup();
    if out.is_empty() && p.scope != Scope::All {
        return Err(ApiError::invalid(
            "region_codes must name at least one of your regions (only a global admin grants global rights)",
        ));
    }
    Ok(out)
}

fn role(value: &str) -> ApiResult<Role> {
    Role::parse(value).ok_or_else(|| {
        ApiError::invalid(format!(
            "role must be one of admin, supervisor, investigator, integrator; got {value:?}"
        ))
    })
}

fn username(value: &str) -> ApiResult<String> {
    let u = validate::name("username", value, 64)?;
    auth::check_username(&u).map_err(ApiError::invalid)?;
    Ok(u)
}

async fn password_hash(value: &str) -> ApiResult<String> {
    if value.chars().count() < 8 || value.len() > 1024 {
        return Err(ApiError::invalid("password must have 8 to 1024 characters"));
    }
    let pw = value.to_owned();
    tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

fn user_note(u: &User) -> AuditNote {
    AuditNote {
        target: Some(format!("/users/{}", u.id)),
        region_code: u.region_codes.first().cloned(),
        detail: Some(format!("{} ({})", u.username, u.role)),
        ..Default::default()
    }
}

pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<User>>> {
    let users = db::users::list(&s.pool).await?;
    Ok(Json(
        users
            .into_iter()
            .filter(|u| p.scope.covers(&u.region_codes))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    role: String,
    #[serde(default)]
    region_codes: Vec<String>,
}

pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<NewUser>,
) -> ApiResult<Response> {
    let name = username(&b.username)?;
    let role = role(&b.role)?;
    let regions = grantable(&s, &p, &b.region_codes).await?;
    let hash = password_hash(&b.password).await?;
    let user = db::users::insert(&s.pool, &name, &hash, role.as_str(), &regions).await?;
    let note = user_note(&user);
    Ok(noted((StatusCode::CREATED, Json(user)), note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    username: Option<String>,
    password: Option<String>,
    role: Option<String>,
    region_codes: Option<Vec<String>>,
}

pub async fn update(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Json(b): Json<UserPatch>,
) -> ApiResult<Response> {
    let change = db::users::UserChange {
        username: b.username.as_deref().map(username).transpose()?,
        role: b
            .role
            .as_deref()
            .map(|r| role(r).map(|r| r.as_str().to_owned()))
            .transpose()?,
        region_codes: match &b.region_codes {
            Some(codes) => Some(grantable(&s, &p, codes).await?),
            None => None,
        },
        password_hash: match &b.password {
            Some(pw) => Some(password_hash(pw).await?),
            None => None,
        },
    };
    let user = db::users::update(&s.pool, id, &change).await?;
    let note = user_note(&user);
    Ok(noted(Json(user), note))
}

fn is_self(p: &Principal, id: i64) -> bool {
    matches!(&p.subject, Subject::User { id: me, .. } if *me == id)
}

pub async fn remove(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if is_self(&p, id) {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    db::users::delete(&s.pool, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a lock left by failed logins.
pub async fn unlock(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<User>> {
    db::users::clear_failures(&s.pool, id).await?;
    Ok(Json(db::users::get(&s.pool, id).await?))
}

pub async fn list_tokens(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<Token>>> {
    let tokens = db::tokens::list(&s.pool).await?;
    Ok(Json(
        tokens
            .into_iter()
            .filter(|t| p.scope.covers(&t.region_codes))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    role: String,
    #[serde(default)]
    region_codes: Vec<String>,
    /// RFC 3339; absent: the token does not expire.
    expires_at: Option<String>,
}

pub async fn create_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(b): Json<NewToken>,
) -> ApiResult<Response> {
    let name = username(&b.name).map_err(|_| {
        ApiError::invalid("name must be 1 to 64 printable characters without spaces")
    })?;
    let role = role(&b.role)?;
    let regions = grantable(&s, &p, &b.region_codes).await?;
    let expires = match &b.expires_at {
        Some(t) => {
            let at = crate::time::parse_ms("expires_at", t)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            if at <= db::now_ms() {
                return Err(ApiError::invalid("expires_at is in the past"));
            }
            Some(at)
        }
        None => None,
    };
    let (id, secret) =
        auth::create_token_by(&s.pool, &name, role, &regions, expires, Some(&p.actor())).await?;
    let token = db::tokens::get(&s.pool, id).await?;
    let note = AuditNote {
        target: Some(format!("/tokens/{id}")),
        region_code: regions.first().cloned(),
        detail: Some(format!("{name} ({})", role.as_str())),
        ..Default::default()
    };
    let mut body = serde_json::to_value(&token).map_err(ApiError::internal)?;
    if let Some(m) = body.as_object_mut() {
        m.insert("token".into(), json!(secret));
    }
    Ok(noted((StatusCode::CREATED, Json(body)), note))
}

/// Revokes a token: it stops working at once.
pub async fn revoke_token(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    db::tokens::revoke(&s.pool, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

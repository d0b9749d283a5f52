//! Who is calling, and what they may touch: password and token hashing, cookie sessions, bearer tokens,
//! roles and region scopes.
//!
//! Invariants:
//! - Secrets are kept only as hashes (argon2id for passwords; SHA-256 for random tokens and cookies).
//! - A [`Principal`] is resolved once per request by the API's auth layer; handlers receive it and ask
//!   [`Scope::allows`] about the region of whatever they touch. A region grants its whole subtree.
//! - An admin with no region is global; any other role with no region sees nothing.

pub mod secrets;
pub mod throttle;

use crate::db::{self, DbError, Pool};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Supervisor,
    Investigator,
    Integrator,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Supervisor,
        Role::Investigator,
        Role::Integrator,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "investigator" => Some(Role::Investigator),
            "integrator" => Some(Role::Integrator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Investigator => "investigator",
            Role::Integrator => "integrator",
        }
    }
}

/// The regions a principal may see: all of them, or an explicit set already expanded to whole subtrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Regions(BTreeSet<String>),
}

impl Scope {
    pub fn allows(&self, region_code: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Regions(set) => set.contains(region_code),
        }
    }

    /// Whether every one of these regions is in scope; an empty list (a global user or token) only for a
    /// global scope.
    pub fn covers(&self, codes: &[String]) -> bool {
        match self {
            Scope::All => true,
            Scope::Regions(_) if codes.is_empty() => false,
            Scope::Regions(_) => codes.iter().all(|c| self.allows(c)),
        }
    }

    /// Narrows a query to the scope: appends ` AND {column} IN (...)` for a regional scope (nothing for a
    /// global one). False when the scope is empty: nothing can match, the query need not run.
    pub fn push_filter(&self, q: &mut crate::db::sql::SqlBuilder, column: &str) -> bool {
        let Scope::Regions(set) = self else {
            return true;
        };
        if set.is_empty() {
            return false;
        }
        q.push(format!(" AND {column} IN "))
            .push_list(set.iter().cloned());
        true
    }

    /// Builds the scope of a role bound to the given region roots.
    pub async fn resolve(pool: &Pool, role: Role, roots: &[String]) -> Result<Scope, DbError> {
        if roots.is_empty() {
            return Ok(if role == Role::Admin {
                Scope::All
            } else {
                Scope::Regions(BTreeSet::new())
            });
        }
        Ok(Scope::Regions(
            db::regions::subtree(pool, roots)
                .await?
                .into_iter()
                .collect(),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User { id: i64, username: String },
    Token { id: i64, name: String },
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: Subject,
    pub role: Role,
    pub scope: Scope,
    /// The session's CSRF token when the caller came with a cookie; `None` for bearer tokens.
    pub csrf_token: Option<String>,
    /// The stored hash of the cookie or token the caller came with, to look it up again ([`recheck`]).
    pub credential: String,
}

impl Principal {
    /// Name for logs and the audit trail.
    pub fn actor(&self) -> String {
        match &self.subject {
            Subject::User { username, .. } => username.clone(),
            Subject::Token { name, .. } => format!("token:{name}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a real password, verified against when the user does not exist, so that a login for an
/// unknown name takes as long as one for a known name.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("vigil-dummy-password").unwrap_or_default())
}

/// A new random secret (256 bits, URL-safe base64).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How tokens and cookies are stored: SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Resolves a bearer token to its principal.
pub async fn principal_from_token(
    pool: &Pool,
    token: &str,
) -> Result<Option<Principal>, AuthError> {
    principal_from_token_hash(pool, &secret_hash(token)).await
}

async fn principal_from_token_hash(
    pool: &Pool,
    hash: &str,
) -> Result<Option<Principal>, AuthError> {
    let Some(row) = db::users::token_by_hash(pool, hash).await? else {
        return Ok(None);
    };
    let Some(role) = Role::parse(&row.role) else {
        return Ok(None);
    };
    let scope = Scope::resolve(pool, role, &row.region_codes).await?;
    Ok(Some(Principal {
        subject: Subject::Token {
            id: row.id,
            name: row.name,
        },
        role,
        scope,
        csrf_token: None,
        credential: hash.to_owned(),
    }))
}

/// Resolves a session cookie to its principal.
pub async fn principal_from_session(
    pool: &Pool,
    cookie: &str,
    idle_ms: i64,
) -> Result<Option<Principal>, AuthError> {
    principal_from_session_hash(pool, &secret_hash(cookie), idle_ms).await
}

async fn principal_from_session_hash(
    pool: &Pool,
    hash: &str,
    idle_ms: i64,
) -> Result<Option<Principal>, AuthError> {
    let Some((user, csrf)) = db::users::session_by_hash(pool, hash, idle_ms).await? else {
        return Ok(None);
    };
    let Some(role) = Role::parse(&user.role) else {
        return Ok(None);
    };
    let scope = Scope::resolve(pool, role, &user.region_codes).await?;
    Ok(Some(Principal {
        subject: Subject::User {
            id: user.id,
            username: user.username,
        },
        role,
        scope,
        csrf_token: Some(csrf),
        credential: hash.to_owned(),
    }))
}

/// The caller as the database has it now, looked up again by the credential it came with: `None` once
/// the session ended (logout, expiry, a change of the user's password, role or regions, the user
/// deleted) or the token was revoked or expired. Long-lived views (live video, notifications) ask this
/// every few seconds, so that what ends a request's rights also ends a stream's.
pub async fn recheck(
    pool: &Pool,
    p: &Principal,
    idle_ms: i64,
) -> Result<Option<Principal>, AuthError> {
    match p.subject {
        Subject::Token { .. } => principal_from_token_hash(pool, &p.credential).await,
        Subject::User { .. } => principal_from_session_hash(pool, &p.credential, idle_ms).await,
    }
}

/// The rule for user names, wherever a user is made (API, `vigil user add`, seed): 1 to 64 characters,
/// no white space or control characters, and none of `:` `/` `\`, so that a user's name can never read
/// as another kind of actor in the audit log (`token:NAME`, a linked server's `server/user`).
pub fn check_username(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err("username must have 1 to 64 characters".into());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("username must not contain spaces or control characters".into());
    }
    if name.contains([':', '/', '\\']) {
        return Err("username must not contain : / or \\".into());
    }
    Ok(())
}

/// Creates a user with a hashed password (the `vigil user add` command and the seed).
pub async fn create_user(
    pool: &Pool,
    username: &str,
    password: &str,
    role: Role,
    regions: &[String],
) -> Result<db::users::User, AuthError> {
    check_username(username).map_err(AuthError::Invalid)?;
    let hash = hash_password(password)?;
    Ok(db::users::insert(pool, username, &hash, role.as_str(), regions).await?)
}

/// Creates a bearer token and returns its secret, which is not kept and cannot be shown again.
pub async fn create_token(
    pool: &Pool,
    name: &str,
    role: Role,
    regions: &[String],
    expires_at_ms: Option<i64>,
) -> Result<String, AuthError> {
    Ok(
        create_token_by(pool, name, role, regions, expires_at_ms, None)
            .await?
            .1,
    )
}

/// [`create_token`], remembering who made it; returns the token's id and its secret.
pub async fn create_token_by(
    pool: &Pool,
    name: &str,
    role: Role,
    regions: &[String],
    expires_at_ms: Option<i64>,
    created_by: Option<&str>,
) -> Result<(i64, String), AuthError> {
    let secret = format!("vgl_{}", random_secret());
    let id = db::users::insert_token_by(
        pool,
        name,
        &secret_hash(&secret),
        role.as_str(),
        regions,
        expires_at_ms,
        created_by,
    )
    .await?;
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn scope_checks_membership() {
        let s = Scope::Regions(
            ["360700".to_string(), "360702".to_string()]
                .into_iter()
                .collect(),
        );
        assert!(s.allows("360702"));
        assert!(!s.allows("360100"));
        assert!(Scope::All.allows("anything"));
        assert!(s.covers(&["360702".into()]));
        assert!(!s.covers(&["360702".into(), "360100".into()]));
        assert!(!s.covers(&[]), "a global object is only for a global scope");
        assert!(Scope::All.covers(&[]));
    }
}

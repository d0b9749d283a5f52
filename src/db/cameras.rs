//! Cameras and NVRs. The camera password is stored for ingest and never serialized: [`Camera`] skips it, so
//! no response can carry it by accident.
//!
//! At rest the password is [`Sealed`] (`auth::secrets`): the API seals it before it gets here and ingest
//! opens it, so the database never holds it in clear (legacy plaintext rows are sealed at start-up by
//! [`seal_plaintext_rows`]).

use super::{now_ms, DbError, Pool};
use serde::Serialize;

/// A camera password as stored: sealed by the server's key (`auth::secrets`), or plaintext left by a
/// version before encryption at rest (sealed at start-up). Only the server's `Secrets` opens it; this
/// module never sees a key or a plaintext password.
#[derive(Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct Sealed(pub String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// Seals the passwords still stored in plaintext (rows written before encryption at rest, which lack
/// the sealed form's `prefix`); all or nothing. Returns how many rows were sealed.
pub async fn seal_plaintext_rows(
    pool: &Pool,
    prefix: &str,
    seal: impl Fn(&str) -> Result<Sealed, String>,
) -> Result<u64, DbError> {
    let mut tx = crate::db::begin_write(pool).await?;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, password FROM cameras WHERE password IS NOT NULL AND substr(password, 1, length($1)) <> $2",
    )
    .bind(prefix)
    .bind(prefix)
    .fetch_all(&mut *tx)
    .await?;
    for (id, plain) in &rows {
        sqlx::query("UPDATE cameras SET password = $1 WHERE id = $2")
            .bind(seal(plain).map_err(DbError::Secret)?)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

#[derive(Clone, Serialize)]
pub struct Camera {
    pub id: i64,
    pub site_id: i64,
    /// The site's region, joined in for access checks.
    pub region_code: String,
    pub nvr_id: Option<i64>,
    pub channel: Option<i64>,
    pub name: String,
    pub main_url: String,
    pub sub_url: Option<String>,
    pub username: Option<String>,
    #[serde(skip)]
    pub password: Option<Sealed>,
    pub transport: String,
    pub record: bool,
    /// Records the sub stream too (when `record` and the camera has a sub stream).
    pub record_sub: bool,
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for Camera {
    // Hand-written: `record` is an integer flag on both engines (migration 0011).
    fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(Camera {
            id: row.try_get("id")?,
            site_id: row.try_get("site_id")?,
            region_code: row.try_get("region_code")?,
            nvr_id: row.try_get("nvr_id")?,
            channel: row.try_get("channel")?,
            name: row.try_get("name")?,
            main_url: row.try_get("main_url")?,
            sub_url: row.try_get("sub_url")?,
            username: row.try_get("username")?,
            password: row.try_get("password")?,
            transport: row.try_get("transport")?,
            record: row.try_get::<i64, _>("record")? != 0,
            record_sub: row.try_get::<i64, _>("record_sub")? != 0,
        })
    }
}

impl std::fmt::Debug for Camera {
    // Hand-written: the password must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("id", &self.id)
            .field("site_id", &self.site_id)
            .field("name", &self.name)
            .field("main_url", &self.main_url)
            .field("sub_url", &self.sub_url)
            .field("username", &self.username)
            .field("transport", &self.transport)
            .field("record", &self.record)
            .field("record_sub", &self.record_sub)
            .finish_non_exhaustive()
    }
}

/// A camera to create or the new state of one to change.
#[derive(Clone)]
pub struct CameraInput {
    pub site_id: i64,
    pub nvr_id: Option<i64>,
    pub channel: Option<i64>,
    pub name: String,
    pub main_url: String,
    pub sub_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Sealed>,
    pub transport: String,
    pub record: bool,
    pub record_sub: bool,
}

const SELECT: &str =
    "SELECT c.id, c.site_id, s.region_code, c.nvr_id, c.channel, c.name, c.main_url, c.sub_url,
        c.username, c.password, c.transport, c.record, c.record_sub
    FROM cameras c JOIN sites s ON s.id = c.site_id";

pub async fn list(pool: &Pool) -> Result<Vec<Camera>, DbError> {
    Ok(
        sqlx::query_as::<_, Camera>(&format!("{SELECT} ORDER BY c.id"))
            .fetch_all(pool)
            .await?,
    )
}

pub async fn get(pool: &Pool, id: i64) -> Result<Camera, DbError> {
    sqlx::query_as::<_, Camera>(&format!("{SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)
}

pub async fn find_by_name(
    pool: &Pool,
    site_id: i64,
    name: &str,
) -> Result<Option<Camera>, DbError> {
    Ok(
        sqlx::query_as::<_, Camera>(&format!("{SELECT} WHERE c.site_id = $1 AND c.name = $2"))
            .bind(site_id)
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

async fn insert_in<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    e: E,
    c: &CameraInput,
) -> Result<i64, DbError> {
    let now = now_ms();
    let password = &c.password;
    sqlx::query_scalar::<_, i64>(
        "INSERT INTO cameras (site_id, nvr_id, channel, name, main_url, sub_url, username, password, transport,
             record, record_sub, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(c.site_id)
    .bind(c.nvr_id)
    .bind(c.channel)
    .bind(&c.name)
    .bind(&c.main_url)
    .bind(&c.sub_url)
    .bind(&c.username)
    .bind(password)
    .bind(&c.transport)
    .bind(i64::from(c.record))
    .bind(i64::from(c.record_sub))
    .bind(now)
    .bind(now)
    .fetch_one(e)
    .await
    .map_err(|e| DbError::from_constraint(e, "camera"))
}

pub async fn insert(pool: &Pool, c: &CameraInput) -> Result<Camera, DbError> {
    let id = insert_in(pool, c).await?;
    get(pool, id).await
}

pub async fn update(pool: &Pool, id: i64, c: &CameraInput) -> Result<Camera, DbError> {
    let password = &c.password;
    let done = sqlx::query(
        "UPDATE cameras SET site_id = $1, name = $2, main_url = $3, sub_url = $4, username = $5, password = $6,
             transport = $7, record = $8, record_sub = $9, updated_at = $10
         WHERE id = $11",
    )
    .bind(c.site_id)
    .bind(&c.name)
    .bind(&c.main_url)
    .bind(&c.sub_url)
    .bind(&c.username)
    .bind(password)
    .bind(&c.transport)
    .bind(i64::from(c.record))
    .bind(i64::from(c.record_sub))
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await
    .map_err(|e| DbError::from_constraint(e, "camera"))?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    get(pool, id).await
}

pub async fn delete(pool: &Pool, id: i64) -> Result<(), DbError> {
    let done = sqlx::query("DELETE FROM cameras WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// One camera of an NVR import: channel number, name, main URL, sub URL.
pub type NvrChannel = (i64, String, String, Option<String>);

/// An NVR to import: one camera per channel, made in one transaction.
pub struct NvrInput {
    pub site_id: i64,
    pub vendor: String,
    pub host: String,
    pub port: u16,
    pub url_template: String,
    pub username: Option<String>,
    pub channels: Vec<NvrChannel>,
    pub password: Option<Sealed>,
    pub transport: String,
    pub record: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nvr {
    pub id: i64,
    pub site_id: i64,
    pub vendor: String,
    pub host: String,
    pub port: u16,
    pub url_template: String,
    pub username: Option<String>,
    pub camera_ids: Vec<i64>,
}

pub async fn insert_nvr(pool: &Pool, n: &NvrInput) -> Result<Nvr, DbError> {
    let mut tx = pool.begin().await?;
    let nvr_id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO nvrs (site_id, vendor, host, port, url_template, username, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(n.site_id)
    .bind(&n.vendor)
    .bind(&n.host)
    .bind(n.port as i64)
    .bind(&n.url_template)
    .bind(&n.username)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| DbError::from_constraint(e, "nvr"))?;
    let mut camera_ids = Vec::with_capacity(n.channels.len());
    for (channel, name, main_url, sub_url) in &n.channels {
        let input = CameraInput {
            site_id: n.site_id,
            nvr_id: Some(nvr_id),
            channel: Some(*channel),
            name: name.clone(),
            main_url: main_url.clone(),
            sub_url: sub_url.clone(),
            username: n.username.clone(),
            password: n.password.clone(),
            transport: n.transport.clone(),
            record: n.record,
            record_sub: false,
        };
        camera_ids.push(insert_in(&mut *tx, &input).await?);
    }
    tx.commit().await?;
    Ok(Nvr {
        id: nvr_id,
        site_id: n.site_id,
        vendor: n.vendor.clone(),
        host: n.host.clone(),
        port: n.port,
        url_template: n.url_template.clone(),
        username: n.username.clone(),
        camera_ids,
    })
}

/// When each camera was added (Unix ms), by id.
pub async fn created_at(pool: &Pool) -> Result<std::collections::HashMap<i64, i64>, DbError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT id, created_at FROM cameras")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Where an ONVIF camera's PTZ commands go: its device service and media profile.
pub async fn set_onvif(
    pool: &Pool,
    camera_id: i64,
    device_url: &str,
    profile_token: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO camera_onvif (camera_id, device_url, profile_token) VALUES ($1, $2, $3)
         ON CONFLICT (camera_id) DO UPDATE SET device_url = $2, profile_token = $3",
    )
    .bind(camera_id)
    .bind(device_url)
    .bind(profile_token)
    .execute(pool)
    .await?;
    Ok(())
}

/// An ONVIF camera's device service and media profile.
pub async fn onvif(pool: &Pool, camera_id: i64) -> Result<Option<(String, String)>, DbError> {
    Ok(
        sqlx::query_as("SELECT device_url, profile_token FROM camera_onvif WHERE camera_id = $1")
            .bind(camera_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The cameras added from ONVIF.
pub async fn onvif_ids(pool: &Pool) -> Result<std::collections::HashSet<i64>, DbError> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT camera_id FROM camera_onvif")
        .fetch_all(pool)
        .await?;
    Ok(ids.into_iter().collect())
}

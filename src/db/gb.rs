//! GB/T 28181 devices and their catalog channels (migration 0013). The SIP side (`gb28181::registry`)
//! writes registrations, keepalives and catalogs; the API lists devices and binds them to sites, which
//! makes their channels cameras.

use super::{now_ms, DbError, Pool};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub transport: String,
    pub address: String,
    pub site_id: Option<i64>,
    pub registered_at: i64,
    pub expires_at: i64,
    pub keepalive_at: i64,
    pub online: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Channel {
    pub device_id: String,
    pub channel_id: String,
    pub name: String,
    pub civil_code: String,
    pub status: String,
    pub camera_id: Option<i64>,
}

const DEVICE: &str = "SELECT id, name, manufacturer, model, firmware, transport, address, site_id,
    registered_at, expires_at, keepalive_at, online FROM gb_devices";

pub async fn devices(pool: &Pool) -> Result<Vec<Device>, DbError> {
    Ok(sqlx::query_as(&format!("{DEVICE} ORDER BY id"))
        .fetch_all(pool)
        .await?)
}

pub async fn device(pool: &Pool, id: &str) -> Result<Device, DbError> {
    sqlx::query_as(&format!("{DEVICE} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)
}

/// Records an accepted REGISTER: the device comes online (a new device is pending, unbound).
pub async fn registered(
    pool: &Pool,
    id: &str,
    transport: &str,
    address: &str,
    expires_ms: i64,
) -> Result<(), DbError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO gb_devices (id, transport, address, registered_at, expires_at, keepalive_at, online, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7)
         ON CONFLICT (id) DO UPDATE SET transport = $8, address = $9, registered_at = $10,
             expires_at = $11, keepalive_at = $12, online = 1",
    )
    .bind(id)
    .bind(transport)
    .bind(address)
    .bind(now)
    .bind(now + expires_ms)
    .bind(now)
    .bind(now)
    .bind(transport)
    .bind(address)
    .bind(now)
    .bind(now + expires_ms)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// A keepalive (or any message) from a registered device.
pub async fn keepalive(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE gb_devices SET keepalive_at = $1, online = 1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Marks the device offline (missed keepalives, lapsed or cancelled registration).
pub async fn offline(pool: &Pool, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE gb_devices SET online = 0 WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The answer to DeviceInfo.
pub async fn set_info(
    pool: &Pool,
    id: &str,
    name: &str,
    manufacturer: &str,
    model: &str,
    firmware: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE gb_devices SET name = $1, manufacturer = $2, model = $3, firmware = $4 WHERE id = $5",
    )
    .bind(name)
    .bind(manufacturer)
    .bind(model)
    .bind(firmware)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn channels(pool: &Pool, device_id: &str) -> Result<Vec<Channel>, DbError> {
    Ok(sqlx::query_as(
        "SELECT device_id, channel_id, name, civil_code, status, camera_id FROM gb_channels
         WHERE device_id = $1 ORDER BY channel_id",
    )
    .bind(device_id)
    .fetch_all(pool)
    .await?)
}

/// Stores a complete catalog: new channels are added, known ones renamed, and the bound cameras kept.
/// Channels missing from the catalog are left (a device may list only what is on; they keep their
/// cameras and footage).
pub async fn store_catalog(pool: &Pool, device_id: &str, items: &[Channel]) -> Result<(), DbError> {
    let mut tx = super::begin_write(pool).await?;
    for c in items {
        sqlx::query(
            "INSERT INTO gb_channels (device_id, channel_id, name, civil_code, status)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device_id, channel_id) DO UPDATE SET name = $6, civil_code = $7, status = $8",
        )
        .bind(device_id)
        .bind(&c.channel_id)
        .bind(&c.name)
        .bind(&c.civil_code)
        .bind(&c.status)
        .bind(&c.name)
        .bind(&c.civil_code)
        .bind(&c.status)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Binds the device to a site (pending → bound).
pub async fn bind(pool: &Pool, device_id: &str, site_id: i64) -> Result<(), DbError> {
    let done = sqlx::query("UPDATE gb_devices SET site_id = $1 WHERE id = $2")
        .bind(site_id)
        .bind(device_id)
        .execute(pool)
        .await
        .map_err(|e| DbError::from_constraint(e, "device"))?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

pub async fn set_camera(
    pool: &Pool,
    device_id: &str,
    channel_id: &str,
    camera_id: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE gb_channels SET camera_id = $1 WHERE device_id = $2 AND channel_id = $3")
        .bind(camera_id)
        .bind(device_id)
        .bind(channel_id)
        .execute(pool)
        .await?;
    Ok(())
}

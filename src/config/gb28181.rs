//! `[gb28181]`: Vigil as a GB/T 28181 platform that devices register to (docs/gb28181.md).

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gb28181Config {
    /// SIP over UDP and TCP (`--sip-listen`); unset = no GB/T 28181 platform.
    pub sip_listen: Option<SocketAddr>,
    /// The SIP domain (realm of digest authentication), by convention the first 10 digits of `id`.
    pub domain: String,
    /// This platform's 20-digit SIP id.
    pub id: String,
    /// The password devices register with (digest). Empty = any device may register (pending anyway).
    pub password: String,
    /// The address devices send media to and the SIP Contact shows: behind NAT, the public one.
    pub media_address: Option<IpAddr>,
    /// The receive ports of media, `FIRST-LAST` (one port per live stream, UDP and TCP).
    pub media_ports: String,
    /// The keepalive interval devices are expected to keep; three missed make a device offline.
    pub keepalive_s: u64,
    /// The registration expiry granted at most (devices ask; 3600 s is normal).
    pub max_expires_s: u32,
    /// Seconds a live stream nobody watches (and nothing records) stays open before its BYE.
    pub idle_s: u64,
    /// The UTC offset of the devices' clocks, in minutes (480: China Standard Time). MANSCDP times
    /// (RecordInfo ranges) and the `Date` of a registration's answer carry no zone; they are read and
    /// written in this offset.
    pub utc_offset_minutes: i32,
    /// Superior platforms Vigil registers to (`[[gb28181.upstream]]`).
    pub upstream: Vec<UpstreamConfig>,
}

/// A superior platform: Vigil registers to it as a device whose catalog is the regions, sites and cameras
/// of `region_codes` (and their subregions), and answers its INVITEs with PS over RTP.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// What the audit log and the logs call the link.
    pub name: String,
    /// The superior's SIP address (UDP).
    pub server: SocketAddr,
    /// The superior's 20-digit SIP id.
    pub server_id: String,
    /// The superior's SIP domain.
    pub domain: String,
    /// Vigil's 20-digit id at the superior.
    pub local_id: String,
    pub password: String,
    #[serde(default = "default_expires")]
    pub expires_s: u32,
    #[serde(default = "default_keepalive")]
    pub keepalive_s: u64,
    /// The regions shared (with their subregions); empty shares nothing.
    #[serde(default)]
    pub region_codes: Vec<String>,
}

fn default_expires() -> u32 {
    3600
}

fn default_keepalive() -> u64 {
    60
}

impl std::fmt::Debug for UpstreamConfig {
    // Hand-written: the password must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("server_id", &self.server_id)
            .field("local_id", &self.local_id)
            .field("region_codes", &self.region_codes)
            .finish_non_exhaustive()
    }
}

impl Default for Gb28181Config {
    fn default() -> Self {
        Gb28181Config {
            sip_listen: None,
            domain: "3402000000".into(),
            id: "34020000002000000001".into(),
            password: String::new(),
            media_address: None,
            media_ports: "30000-30999".into(),
            keepalive_s: 60,
            max_expires_s: 3600,
            idle_s: 15,
            utc_offset_minutes: 480,
            upstream: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Gb28181Config {
    // Hand-written: the password must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gb28181Config")
            .field("sip_listen", &self.sip_listen)
            .field("domain", &self.domain)
            .field("id", &self.id)
            .field("media_address", &self.media_address)
            .field("media_ports", &self.media_ports)
            .finish_non_exhaustive()
    }
}

impl Gb28181Config {
    /// The media port range.
    pub fn ports(&self) -> Result<(u16, u16), String> {
        let bad = || {
            format!(
                "gb28181.media_ports {:?} is not FIRST-LAST",
                self.media_ports
            )
        };
        let (a, b) = self.media_ports.split_once('-').ok_or_else(bad)?;
        let (a, b): (u16, u16) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a == 0 || a > b {
            return Err(bad());
        }
        Ok((a, b))
    }

    pub fn validate(&self) -> Result<(), String> {
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if self.id.len() != 20 || !digits(&self.id) {
            return Err(format!("gb28181.id {:?} must be 20 digits", self.id));
        }
        if self.domain.is_empty() || !digits(&self.domain) {
            return Err(format!("gb28181.domain {:?} must be digits", self.domain));
        }
        if self.keepalive_s == 0 || self.max_expires_s < 60 {
            return Err(
                "gb28181.keepalive_s must be positive and max_expires_s at least 60".into(),
            );
        }
        for u in &self.upstream {
            if u.server_id.len() != 20
                || !digits(&u.server_id)
                || u.local_id.len() != 20
                || !digits(&u.local_id)
            {
                return Err(format!(
                    "gb28181.upstream {:?}: server_id and local_id must be 20 digits",
                    u.name
                ));
            }
            if u.expires_s < 60 || u.keepalive_s == 0 {
                return Err(format!(
                    "gb28181.upstream {:?}: expires_s at least 60, keepalive_s positive",
                    u.name
                ));
            }
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return Err("gb28181.utc_offset_minutes must be within ±840".into());
        }
        self.ports().map(|_| ())
    }
}

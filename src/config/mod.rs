//! Configuration: one TOML file (`config/vigil.example.toml` documents every key), overridden by flags.
//!
//! Every key has a default, so an empty file (or none) gives a working single-node server that keeps its
//! database and recordings under `./recordings`. Regions, sites and cameras listed here are seeded into the
//! database at start-up when they are missing; the database stays the source of truth afterwards.

mod cluster;
mod edge;
mod federation;
mod gb28181;
mod storage;

pub use cluster::ClusterConfig;
pub use edge::EdgeConfig;
pub use federation::FederationConfig;
pub use gb28181::{Gb28181Config, UpstreamConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
pub use storage::{ObjectConfig, StorageConfig};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for recordings and server state (keys). Created when missing.
    pub data_dir: PathBuf,
    /// Database URL, `sqlite://FILE` or `postgres://...`; defaults to `sqlite://<data_dir>/vigil.db`.
    pub database_url: Option<String>,
    pub ingest: IngestConfig,
    pub auth: AuthConfig,
    /// Built-in HTTPS (rustls); off when `cert` and `key` are not both set.
    pub tls: TlsConfig,
    pub record: RecordConfig,
    pub live: LiveConfig,
    pub cases: CasesConfig,
    /// Object storage tier (`[storage.object]`).
    pub storage: StorageConfig,
    /// This server as a node of a cluster (`[cluster]`).
    pub cluster: ClusterConfig,
    /// GB/T 28181 platform (`[gb28181]`).
    pub gb28181: Gb28181Config,
    /// Edge retrieval of lost footage (`[edge]`).
    pub edge: EdgeConfig,
    /// Links to city servers (a province's view over them).
    pub federation: FederationConfig,
    /// Objects created at start-up when missing (the demo uses this).
    pub seed: Seed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// First reconnect delay after a failure, in milliseconds.
    pub backoff_initial_ms: u64,
    /// Cap of the exponential reconnect delay, in milliseconds.
    pub backoff_max_ms: u64,
    /// Reconnect delay after the camera refused the credentials or offered no supported codec: such a
    /// camera is not retried quickly, so that it does not lock the account or fill its log.
    pub refused_retry_ms: u64,
    /// A stream that delivers no frame for this long is declared offline and reconnected.
    pub stall_timeout_ms: u64,
    /// Frames buffered per consumer of a stream before a slow consumer starts skipping.
    pub broadcast_capacity: usize,
    /// Take the camera's audio (AAC, G.711) with its video: recorded, exported and played. `false` never
    /// asks the camera for its microphone track.
    pub audio: bool,
}

/// Defaults of the clip and card rules (a site may set its own with `PUT /sites/{id}/case-rules`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasesConfig {
    /// Seconds of footage before an approval event.
    pub pre_roll_seconds: u64,
    /// Seconds of footage after an approval event with no later event at its position.
    pub post_roll_seconds: u64,
    /// Deadline of a case after its first event, in hours, when no event names one (0 = none).
    pub deadline_hours: u64,
    /// A red card this many hours after the deadline.
    pub followup_hours: u64,
    /// How often open cases are checked against their deadlines.
    pub card_interval_seconds: u64,
    /// How often each camera's state is sampled for the online rate over a period (`GET /health`).
    pub uptime_sample_seconds: u64,
    /// Exports a user may keep at once (running or done, not yet expired).
    pub export_quota: u64,
    /// Bytes of packages (MiB) a user may keep at once.
    pub export_quota_mb: u64,
    /// A finished export's package is removed after this many days, unless its case is held.
    pub export_days: u64,
}

impl Default for CasesConfig {
    fn default() -> Self {
        CasesConfig {
            pre_roll_seconds: 30,
            post_roll_seconds: 120,
            deadline_hours: 0,
            followup_hours: 72,
            card_interval_seconds: 30,
            uptime_sample_seconds: 60,
            export_quota: 50,
            export_quota_mb: 20_480,
            export_days: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    /// Target length of a segment file; segments are cut at the first keyframe past it, at times
    /// staggered per camera so that streams do not rotate files in the same second.
    pub segment_seconds: u64,
    /// Complete GOPs that may wait for the disk per stream; when the queue is full, whole GOPs are dropped
    /// and the gap is recorded (ingest never waits on the disk).
    pub queue_gops: usize,
    /// A stream that sends nothing for this long has its last GOP written and its segment closed.
    pub idle_close_ms: u64,
    /// Days footage of a `service_hall` site is kept (0 = for good).
    pub service_hall_days: u64,
    /// Days footage of a `bid_evaluation` site is kept (0 = for good).
    pub bid_evaluation_days: u64,
    /// Days a recorded sub stream is kept instead of its site kind's days (0 = the same days). Footage
    /// a site kind keeps for good is kept for good in both streams.
    pub sub_days: u64,
    /// Disk budget of the recordings in this data directory, in MiB (0 = no budget). Oldest unheld footage
    /// goes first when it is exceeded.
    pub disk_budget_mb: u64,
    /// Free space (MiB) that retention keeps on the file system of the data directory.
    pub min_free_mb: u64,
    /// How often retention runs, in seconds.
    pub retention_interval_seconds: u64,
    /// fsync every fragment (a GOP) before indexing it. Turning it off keeps crash safety against a
    /// process crash but not against a power cut.
    pub fsync: bool,
    /// Disk kept for timeline thumbnails (`<data_dir>/cache/thumbs`), in MiB; the least recently made go
    /// first when it is full (checked with every retention pass).
    pub thumbnail_cache_mb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A cookie session ends after this long without a request.
    pub session_idle_minutes: u64,
    /// A cookie session ends after this long whatever happens.
    pub session_absolute_hours: u64,
    /// Mark the session cookie `Secure` (set it when served over TLS or behind a TLS proxy). Always on
    /// when the server itself serves TLS.
    pub secure_cookies: bool,
    /// Consecutive failed logins after which an account is locked.
    pub login_max_failures: u32,
    /// How long a lock lasts, in minutes; 0 keeps it until an admin lifts it (`POST /users/{id}/unlock`).
    pub lockout_minutes: u64,
    /// Failed logins from one client address within `login_address_window_seconds` after which that
    /// address gets 429 until the window has passed.
    pub login_address_max_failures: u32,
    pub login_address_window_seconds: u64,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a reverse proxy that
    /// sets it; otherwise a client could choose its own address).
    pub trust_forwarded_for: bool,
    /// Origins (scheme://host[:port]) allowed to open WebSockets besides the server's own.
    pub allowed_origins: Vec<String>,
    /// Key that encrypts camera passwords at rest: 32 bytes, base64. When absent, a key is generated on
    /// first start into `<data_dir>/keys/secrets.key` (mode 0600) and read from there afterwards.
    pub secrets_key: Option<String>,
    /// How often a long-lived view (live video, WHEP, notifications) looks its caller up again: it ends
    /// within this many seconds of a logout, a revoked token or a change of the user's rights.
    pub recheck_seconds: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }
}

/// Live view (`[live]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Frames a live viewer may fall behind before it skips to the next keyframe.
    pub viewer_queue: usize,
    /// A viewer whose socket accepts nothing for this long is disconnected.
    pub send_timeout_ms: u64,
    /// Add `bitstream_restriction` to H.264 SPS that lack it, so browsers do not hold a full decoded
    /// picture buffer (see docs/live.md).
    pub rewrite_vui: bool,
    /// Addresses offered to WebRTC clients as host candidates (one UDP socket per session on each).
    /// Empty: 127.0.0.1 and the address of the default route.
    pub webrtc_ips: Vec<std::net::IpAddr>,
    /// Send each frame's WebRTC datagrams to a viewer in one UDP GSO send where the kernel has it
    /// (`false`: one send per datagram; for a network path that mishandles GSO, and for measuring).
    pub webrtc_batch: bool,
    /// Width of the sub stream made (GStreamer, on demand) for cameras that have none.
    pub sub_width: u32,
    /// A live session (WebSocket or WHEP) ends after this many seconds whatever happens; the console
    /// opens a new one (checked anew) when it still shows the camera.
    pub max_session_seconds: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            viewer_queue: 50,
            send_timeout_ms: 10_000,
            rewrite_vui: true,
            webrtc_ips: Vec::new(),
            webrtc_batch: true,
            sub_width: 640,
            max_session_seconds: 43_200,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seed {
    pub regions: Vec<SeedRegion>,
    pub sites: Vec<SeedSite>,
    pub users: Vec<SeedUser>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRegion {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSite {
    pub name: String,
    pub kind: String,
    pub region_code: String,
    #[serde(default)]
    pub cameras: Vec<SeedCamera>,
    #[serde(default)]
    pub positions: Vec<SeedPosition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCamera {
    pub name: String,
    pub main_url: String,
    pub sub_url: Option<String>,
    #[serde(default = "default_true")]
    pub record: bool,
    #[serde(default)]
    pub record_sub: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPosition {
    pub code: String,
    pub kind: String,
    /// Names of cameras of the same site.
    pub cameras: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub username: String,
    pub password: String,
    pub role: String,
    #[serde(default)]
    pub region_codes: Vec<String>,
}

fn default_true() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("recordings"),
            database_url: None,
            ingest: IngestConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            record: RecordConfig::default(),
            live: LiveConfig::default(),
            cases: CasesConfig::default(),
            storage: StorageConfig::default(),
            cluster: ClusterConfig::default(),
            gb28181: Gb28181Config::default(),
            edge: EdgeConfig::default(),
            federation: FederationConfig::default(),
            seed: Seed::default(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            backoff_initial_ms: 500,
            backoff_max_ms: 4_000,
            refused_retry_ms: 60_000,
            stall_timeout_ms: 3_000,
            broadcast_capacity: 256,
            audio: true,
        }
    }
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            segment_seconds: 60,
            queue_gops: 8,
            idle_close_ms: 5_000,
            service_hall_days: 30,
            bid_evaluation_days: 0,
            sub_days: 0,
            disk_budget_mb: 0,
            min_free_mb: 512,
            retention_interval_seconds: 60,
            fsync: true,
            thumbnail_cache_mb: 512,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_minutes: 60,
            session_absolute_hours: 12,
            secure_cookies: false,
            login_max_failures: 5,
            lockout_minutes: 15,
            login_address_max_failures: 20,
            login_address_window_seconds: 300,
            trust_forwarded_for: false,
            allowed_origins: Vec::new(),
            secrets_key: None,
            recheck_seconds: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

impl Config {
    /// Reads a configuration file; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The database URL in force: the configured one, or a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("vigil.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_and_demo_files_parse() {
        for text in [
            include_str!("../../config/vigil.example.toml"),
            include_str!("../../config/demo.toml"),
        ] {
            let cfg = Config::parse(text).expect("config parses");
            assert!(cfg.ingest.backoff_max_ms >= cfg.ingest.backoff_initial_ms);
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("listn = \"127.0.0.1:1\"").is_err());
    }
}

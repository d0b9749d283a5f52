//! `[storage]`: where footage goes after the local disk.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The object storage tier; none = footage stays on the local disk.
    pub object: Option<ObjectConfig>,
}

/// An S3-compatible bucket (SeaweedFS, MinIO, Ceph RGW, a cloud bucket). Closed segments older than
/// `move_after_s` are uploaded there and removed from the local disk once the upload is verified.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectConfig {
    /// `http://host:port` or `https://host`: the service's S3 endpoint (path-style requests).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Age (seconds since a segment's end) after which it moves to the bucket.
    pub move_after_s: u64,
    /// How often the mover looks for segments to move and objects to delete, in seconds.
    pub interval_s: u64,
}

impl Default for ObjectConfig {
    fn default() -> Self {
        ObjectConfig {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            access_key: String::new(),
            secret_key: String::new(),
            move_after_s: 3600,
            interval_s: 30,
        }
    }
}

/// The secret key never reaches a log.
impl std::fmt::Debug for ObjectConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("move_after_s", &self.move_after_s)
            .field("interval_s", &self.interval_s)
            .finish_non_exhaustive()
    }
}

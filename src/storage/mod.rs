//! Object storage: the bucket that keeps footage once it has left the local disk (`[storage.object]`).
//!
//! A thin layer over `object_store`'s S3 client (request signing, retries and ranged reads are the crate's;
//! nothing here speaks HTTP). It knows objects, not segments: the recorder decides what moves and when
//! (`record::tier`), and reads footage back through [`Bucket::get_range`].
//!
//! Invariants:
//! - [`Bucket::put_verified`] returns `Ok` only when the service holds exactly the bytes given: the
//!   upload carries their SHA-256 (`x-amz-checksum-sha256`, checked by the service), and the object is
//!   read back by `HEAD`: its size must match, and its ETag, when it is a plain MD5 (a single PUT without
//!   KMS), must be the MD5 of the bytes. A caller may remove its own copy only after that.
//! - Deleting an object that is already gone succeeds (deletion is repeated after a crash).
//! - Nothing here retries for long: a bucket that does not answer fails the call within
//!   [`CALL_TIMEOUT`], and the caller keeps the footage locally and tries again later.

use bytes::Bytes;
use md5::Digest;
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::ObjectConfig;

/// The longest one request may take, retries included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object storage: {0}")]
    Service(#[from] object_store::Error),
    #[error("object storage: {key} was not stored intact ({why})")]
    Mismatch { key: String, why: String },
    #[error("object storage configuration: {0}")]
    Config(String),
}

/// One S3 bucket.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    name: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket({})", self.name)
    }
}

impl Bucket {
    /// A client of the configured bucket. Nothing is sent yet: an unreachable service shows at the
    /// first call, not here (the server starts and records whether or not the bucket answers).
    pub fn connect(cfg: &ObjectConfig) -> Result<Bucket, StorageError> {
        if cfg.endpoint.is_empty() || cfg.bucket.is_empty() {
            return Err(StorageError::Config(
                "endpoint and bucket are required".into(),
            ));
        }
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        };
        let client = ClientOptions::new()
            .with_timeout(CALL_TIMEOUT / 3)
            .with_connect_timeout(Duration::from_secs(5))
            .with_allow_http(cfg.endpoint.starts_with("http://"));
        let store = AmazonS3Builder::new()
            .with_endpoint(&cfg.endpoint)
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key)
            .with_secret_access_key(&cfg.secret_key)
            .with_virtual_hosted_style_request(false)
            .with_checksum_algorithm(Checksum::SHA256)
            .with_retry(retry)
            .with_client_options(client)
            .build()?;
        Ok(Bucket {
            store: Arc::new(store),
            name: cfg.bucket.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stores `data` under `key` and checks that the service holds exactly it (see the module's
    /// invariants). Overwrites: storing the same key again (after a crash) is harmless.
    pub async fn put_verified(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        let k = Key::from(key);
        let md5 = hex::encode(md5::Md5::digest(&data));
        let len = data.len() as u64;
        self.store.put(&k, PutPayload::from_bytes(data)).await?;
        let meta = self.store.head(&k).await?;
        let mismatch = |why: String| StorageError::Mismatch {
            key: key.to_owned(),
            why,
        };
        if meta.size != len {
            return Err(mismatch(format!("{} bytes stored of {len}", meta.size)));
        }
        if let Some(tag) = meta.e_tag.as_deref().map(|t| t.trim_matches('"')) {
            let plain_md5 = tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit());
            if plain_md5 && !tag.eq_ignore_ascii_case(&md5) {
                return Err(mismatch(format!("ETag {tag}, MD5 {md5}")));
            }
        }
        Ok(())
    }

    /// The bytes `range` of the object.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        Ok(self.store.get_range(&Key::from(key), range).await?)
    }

    /// The whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        Ok(self.store.get(&Key::from(key)).await?.bytes().await?)
    }

    /// Removes the object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Bucket::get_range`] from blocking code (a planning or packaging thread of tokio's blocking
    /// pool).
    pub fn get_range_blocking(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        tokio::runtime::Handle::current().block_on(self.get_range(key, range))
    }
}

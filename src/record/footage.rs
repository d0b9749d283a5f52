//! Where a segment's bytes are read from: its local file, or its object in the bucket (docs/storage.md,
//! "Object storage"). Readers (playback plans, case packages, thumbnails) go through [`Footage`] and do not
//! care which.
//!
//! Invariants:
//! - A bucket segment is scanned from its skeleton (`record::skeleton`), fetched once and kept under
//!   `<data_dir>/cache/skeletons/` (by segment path) (written to a temporary name and renamed, so a crash never leaves half of
//!   one). An object's bytes never change under its key, so a cached skeleton never goes stale; it goes
//!   when its segment does.
//! - Frame data of a bucket segment is read by byte range from the object, at the offsets of the file.
//! - A segment whose local file is on another node's disk (cluster) is read through that node
//!   ([`Peers`]): its skeleton as that node scans it now (never cached: an open segment grows), then
//!   frame data by byte range, within the row's indexed bytes.

use super::index::SegmentRow;
use super::scan::{scan, scan_from, ScanError, Scanned};
use super::skeleton::Skeleton;
use crate::storage::Bucket;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads segments whose local file is on another node's disk (`cluster` provides it).
pub trait Peers: Send + Sync + std::fmt::Debug {
    /// The skeleton (`record::skeleton`) of segment `id` as `node` scans its file now.
    fn skeleton(
        &self,
        node: &str,
        id: i64,
    ) -> futures::future::BoxFuture<'_, std::io::Result<Bytes>>;
    /// `len` bytes at `offset` of segment `id`'s file on `node`.
    fn read(
        &self,
        node: &str,
        id: i64,
        offset: u64,
        len: u64,
    ) -> futures::future::BoxFuture<'_, std::io::Result<Bytes>>;
}

/// Where the bytes of a segment are.
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    Object {
        bucket: Arc<Bucket>,
        key: String,
    },
    /// Segment `id`, on `node`'s disk.
    Peer {
        peers: Arc<dyn Peers>,
        node: String,
        id: i64,
    },
}

impl Location {
    /// `len` bytes at `offset`. Blocking (a bucket read waits on the runtime).
    pub fn read_blocking(&self, offset: u64, len: u64) -> std::io::Result<Bytes> {
        match self {
            Location::File(p) => {
                let mut buf = vec![0u8; len as usize];
                std::os::unix::fs::FileExt::read_exact_at(
                    &std::fs::File::open(p)?,
                    &mut buf,
                    offset,
                )?;
                Ok(Bytes::from(buf))
            }
            Location::Object { bucket, key } => read_object(bucket, key, offset, len),
            Location::Peer { peers, node, id } => {
                tokio::runtime::Handle::current().block_on(peers.read(node, *id, offset, len))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Footage {
    data_dir: PathBuf,
    bucket: Option<Arc<Bucket>>,
    /// This node's name (cluster): rows of other nodes' disks are read through [`Peers`].
    node: Option<String>,
    /// Set once the cluster has started (it comes after the recorders).
    peers: Arc<std::sync::OnceLock<Arc<dyn Peers>>>,
}

/// The key of a segment's skeleton in the bucket.
pub fn skeleton_key(path: &str) -> String {
    format!("{path}.skel")
}

impl Footage {
    pub fn new(data_dir: PathBuf, bucket: Option<Arc<Bucket>>, node: Option<String>) -> Footage {
        Footage {
            data_dir,
            bucket,
            node,
            peers: Default::default(),
        }
    }

    /// Footage on the local disk only (no object storage tier).
    pub fn local(data_dir: &Path) -> Footage {
        Footage::new(data_dir.to_owned(), None, None)
    }

    /// How to read the other nodes' disks (set once, when the cluster starts).
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        let _ = self.peers.set(peers);
    }

    /// The node whose disk holds the row's local file, when it is another node's.
    fn elsewhere<'a>(&self, row: &'a SegmentRow) -> Option<&'a str> {
        let theirs = row.node.as_deref()?;
        (Some(theirs) != self.node.as_deref()).then_some(theirs)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Scans the row's segment (within its indexed bytes) wherever it lives. Blocking: call it from
    /// tokio's blocking pool (a bucket read waits on the runtime).
    pub fn scan(&self, row: &SegmentRow) -> Result<(Scanned, Location), ScanError> {
        let limit = Some(row.bytes.max(0) as u64);
        if let (false, Some(node), Some(peers)) =
            (row.in_bucket(), self.elsewhere(row), self.peers.get())
        {
            let b = tokio::runtime::Handle::current()
                .block_on(peers.skeleton(node, row.id))
                .map_err(ScanError::Io)?;
            let skel = Skeleton::decode(b)?;
            let scanned = scan_from(&skel, skel.file_len(), limit)?;
            let at = Location::Peer {
                peers: peers.clone(),
                node: node.to_owned(),
                id: row.id,
            };
            return Ok((scanned, at));
        }
        if !row.in_bucket() {
            let abs = self.data_dir.join(&row.path);
            return Ok((scan(&abs, limit)?, Location::File(abs)));
        }
        let bucket = self.bucket.clone().ok_or_else(|| {
            ScanError::Io(std::io::Error::other(
                "segment is in the bucket, and no [storage.object] is configured",
            ))
        })?;
        let skel = self.skeleton(&bucket, row)?;
        let scanned = scan_from(&skel, skel.file_len(), limit)?;
        let key = row.path.clone();
        Ok((scanned, Location::Object { bucket, key }))
    }

    /// The cached skeleton of the segment at `path` (the cache mirrors the recordings' folders).
    fn cache_path(&self, path: &str) -> PathBuf {
        self.data_dir
            .join("cache/skeletons")
            .join(skeleton_key(path))
    }

    fn skeleton(&self, bucket: &Bucket, row: &SegmentRow) -> Result<Skeleton, ScanError> {
        let cached = self.cache_path(&row.path);
        if let Ok(b) = std::fs::read(&cached) {
            if let Ok(s) = Skeleton::decode(Bytes::from(b)) {
                return Ok(s);
            }
        }
        let b = tokio::runtime::Handle::current()
            .block_on(bucket.get(&skeleton_key(&row.path)))
            .map_err(|e| ScanError::Io(std::io::Error::other(e.to_string())))?;
        let s = Skeleton::decode(b.clone())?;
        keep_cached(&cached, &b);
        Ok(s)
    }

    /// Forgets the cached skeleton of a segment that is gone.
    pub fn forget(&self, path: &str) {
        let _ = std::fs::remove_file(self.cache_path(path));
    }
}

/// Writes a cache file whole (a temporary name, then a rename: a crash never leaves half of one). A cache
/// only saves work, so failing to keep one is not an error.
pub(super) fn keep_cached(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        let tmp = path.with_extension("tmp");
        let _ = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
    }
}

/// `len` bytes at `offset` of an object, from blocking code.
pub fn read_object(bucket: &Bucket, key: &str, offset: u64, len: u64) -> std::io::Result<Bytes> {
    bucket
        .get_range_blocking(key, offset..offset + len)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

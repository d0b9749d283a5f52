//! Evidence packages: writing one (a zip of one MP4 per clip, `manifest.json`, `manifest.sig`) and
//! checking one offline (`vigil verify PACKAGE`).
//!
//! Invariants:
//! - Each MP4 is the recording engine's playback file of the clip (`record::export::plan`: the recorded
//!   frames as they came, remuxed into one progressive MP4, no transcoding), stored uncompressed; its
//!   SHA-256 is computed from the very bytes written into the zip.
//! - `manifest.json` lists every other file of the package with its size and SHA-256; `manifest.sig`
//!   signs `manifest.json` (see `signing`). A package is written to `*.zip.part`, fsynced, then renamed:
//!   a finished name is always a finished package.
//! - Packages are checked offline by [`super::verify`].

use super::signing::sign_manifest;
use crate::record::export::{plan, Part};
use crate::record::footage::{read_object, Footage};
use crate::record::index::SegmentRow;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const FORMAT: &str = "vigil-evidence/1";

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("reading recordings: {0}")]
    Scan(String),
}

/// One clip to put in a package.
pub struct ClipSource {
    pub file: String,
    pub start_us: i64,
    pub end_us: i64,
    /// The clip as the manifest describes it (camera, times, coverage); `file`, `bytes`, `sha256`,
    /// `presented_*` and `gaps` are added.
    pub meta: serde_json::Map<String, Value>,
    pub rows: Vec<SegmentRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Copies `len` bytes at `offset` of a bucket object, a few MiB per ranged GET.
fn copy_object<W: Write>(
    bucket: &crate::storage::Bucket,
    key: &str,
    offset: u64,
    len: u64,
    out: &mut W,
) -> std::io::Result<()> {
    const STEP: u64 = 8 << 20;
    let mut at = 0;
    while at < len {
        let n = STEP.min(len - at);
        out.write_all(&read_object(bucket, key, offset + at, n)?)?;
        at += n;
    }
    Ok(())
}

fn copy_parts<W: Write>(parts: &[Part], out: &mut W) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut open: Option<(PathBuf, std::fs::File)> = None;
    for p in parts {
        match p {
            Part::Mem(b) => out.write_all(b)?,
            Part::Object {
                bucket,
                key,
                offset,
                len,
            } => copy_object(bucket, key, *offset, *len, out)?,
            Part::Peer {
                peers,
                node,
                id,
                offset,
                len,
            } => {
                // Chunks of at most 8 MiB: the other node serves each as one answer.
                let mut at = 0;
                while at < *len {
                    let n = (*len - at).min(8 << 20);
                    let b = tokio::runtime::Handle::current().block_on(peers.read(
                        node,
                        *id,
                        offset + at,
                        n,
                    ))?;
                    out.write_all(&b)?;
                    at += n;
                }
            }
            Part::File { path, offset, len } => {
                if open.as_ref().is_none_or(|(p, _)| p != path) {
                    open = Some((path.clone(), std::fs::File::open(path)?));
                }
                let Some((_, f)) = open.as_mut() else {
                    return Err(std::io::Error::other("segment file not open"));
                };
                f.seek(SeekFrom::Start(*offset))?;
                let mut left = *len;
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    f.read_exact(&mut buf[..n])?;
                    out.write_all(&buf[..n])?;
                    left -= n as u64;
                }
            }
        }
    }
    Ok(())
}

/// A footage time in the manifest: RFC 3339 to the millisecond, as the package format has it.
fn us_to_rfc3339(us: i64) -> String {
    crate::time::ms_to_rfc3339(us.div_euclid(1000))
}

/// Writes one clip into the package: its metadata completed with the file's name, size, hash and the
/// range it presents, and the file's entry; a clip without footage has `"file": null` and no entry.
fn write_clip(
    zip: &mut zip::ZipWriter<std::fs::File>,
    footage: &Footage,
    c: ClipSource,
    stored: zip::write::SimpleFileOptions,
) -> Result<(serde_json::Map<String, Value>, Option<FileEntry>), PackageError> {
    let mut meta = c.meta;
    let planned = plan(footage, &c.rows, c.start_us, c.end_us)
        .map_err(|e| PackageError::Scan(e.to_string()))?;
    let Some(p) = planned else {
        meta.insert("file".into(), Value::Null);
        return Ok((meta, None));
    };
    zip.start_file(c.file.as_str(), stored)?;
    let mut w = Hashing {
        inner: zip,
        hash: Sha256::new(),
        n: 0,
    };
    copy_parts(&p.parts, &mut w)?;
    let entry = FileEntry {
        name: c.file.clone(),
        bytes: w.n,
        sha256: hex::encode(w.hash.finalize()),
    };
    let spans = |r: &[(i64, i64)]| -> Vec<Value> {
        r.iter()
            .map(|(a, b)| serde_json::json!({"start": us_to_rfc3339(*a), "end": us_to_rfc3339(*b)}))
            .collect()
    };
    meta.insert("file".into(), Value::from(c.file));
    meta.insert("bytes".into(), Value::from(entry.bytes));
    meta.insert("sha256".into(), Value::from(entry.sha256.clone()));
    meta.insert(
        "presented_start".into(),
        Value::from(us_to_rfc3339(p.start_us)),
    );
    meta.insert("presented_end".into(), Value::from(us_to_rfc3339(p.end_us)));
    meta.insert("gaps".into(), Value::from(spans(&p.gaps)));
    // Footage the index holds but whose files could not be read when the package was made.
    meta.insert("missing".into(), Value::from(spans(&p.missing)));
    Ok((meta, Some(entry)))
}

/// Writes the package to `out` (blocking). `progress` goes from 0 to 1000 (per mille).
pub fn write(
    footage: &Footage,
    out: &Path,
    mut manifest: serde_json::Map<String, Value>,
    clips: Vec<ClipSource>,
    key: &SigningKey,
    progress: &AtomicU32,
) -> Result<FileEntry, PackageError> {
    let part = out.with_extension("zip.part");
    let file = std::fs::File::create(&part)?;
    let mut zip = zip::ZipWriter::new(file);
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut files = Vec::new();
    let mut clip_meta = Vec::new();
    let total = clips.len().max(1) as u32;
    for (i, c) in clips.into_iter().enumerate() {
        let (meta, entry) = write_clip(&mut zip, footage, c, stored)?;
        files.extend(entry);
        clip_meta.push(Value::Object(meta));
        progress.store((i as u32 + 1) * 950 / total, Ordering::Relaxed);
    }
    manifest.insert("clips".into(), Value::from(clip_meta));
    manifest.insert(
        "files".into(),
        serde_json::to_value(&files).unwrap_or(Value::Null),
    );
    let manifest_bytes = serde_json::to_vec_pretty(&Value::Object(manifest))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    zip.start_file(MANIFEST, deflated)?;
    zip.write_all(&manifest_bytes)?;
    let sig = serde_json::to_vec_pretty(&sign_manifest(key, &manifest_bytes))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    zip.start_file(SIGNATURE, deflated)?;
    zip.write_all(&sig)?;
    let entry = seal(zip.finish()?, &part, out)?;
    progress.store(1000, Ordering::Relaxed);
    Ok(entry)
}

/// Makes a package written to `part` durable and gives it its finished name `out`: fsync, rename, fsync
/// of the folder; then its size and SHA-256.
pub(super) fn seal(f: std::fs::File, part: &Path, out: &Path) -> std::io::Result<FileEntry> {
    f.sync_all()?;
    drop(f);
    std::fs::rename(part, out)?;
    if let Some(dir) = out.parent() {
        let _ = crate::private::fsync_dir(dir);
    }
    let mut h = Sha256::new();
    let bytes = std::io::copy(&mut std::fs::File::open(out)?, &mut h)?;
    Ok(FileEntry {
        name: out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
        sha256: hex::encode(h.finalize()),
    })
}

//! The audit key: 32 random bytes that the chain's HMAC is made with, kept in
//! `<data_dir>/keys/audit.key` (0600) and never in the database. The file also says from which row id
//! on the chain is keyed (`v1 <base64 key> <first keyed id>`): rows before it were written by a version
//! without a key. Back it up with the signing key: without it the log can no longer be verified.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "audit key {0} is malformed (expected `v1 <base64 of 32 bytes> <first keyed row id>`)"
    )]
    Malformed(PathBuf),
    #[error("reading the audit log: {0}")]
    Db(String),
    #[error("audit key {0} is missing: the log cannot be verified without it (restore it from the backup)")]
    Missing(PathBuf),
}

pub struct AuditKey {
    key: [u8; 32],
    keyed_since: i64,
}

impl AuditKey {
    pub fn new(key: [u8; 32], keyed_since: i64) -> AuditKey {
        AuditKey { key, keyed_since }
    }

    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("keys").join("audit.key")
    }

    /// The key of `data_dir`, made when missing; a new key keys the rows from `next_id` on.
    pub fn load_or_create(data_dir: &Path, next_id: i64) -> Result<AuditKey, KeyError> {
        let path = Self::path(data_dir);
        let bytes = crate::private::load_or_create(&path, || {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let b64 = base64::engine::general_purpose::STANDARD.encode(key);
            format!("v1 {b64} {next_id}\n").into_bytes()
        })
        .map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        Self::parse(&String::from_utf8_lossy(&bytes)).ok_or(KeyError::Malformed(path))
    }

    /// The key of `data_dir` when it exists; never makes one (a check must not key a log anew).
    pub fn load(data_dir: &Path) -> Result<Option<AuditKey>, KeyError> {
        let path = Self::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text)
                .map(Some)
                .ok_or(KeyError::Malformed(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io { path, source }),
        }
    }

    fn parse(text: &str) -> Option<AuditKey> {
        let mut parts = text.split_whitespace();
        if parts.next()? != "v1" {
            return None;
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(parts.next()?)
            .ok()?
            .try_into()
            .ok()?;
        let keyed_since = parts.next()?.parse().ok()?;
        Some(AuditKey { key, keyed_since })
    }

    /// The first row id chained with this key.
    pub fn keyed_since(&self) -> i64 {
        self.keyed_since
    }

    /// HMAC-SHA-256 of the concatenated parts, hex.
    pub fn mac(&self, parts: &[&[u8]]) -> String {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            unreachable!("HMAC takes a key of any length")
        };
        for p in parts {
            m.update(p);
        }
        hex::encode(m.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = AuditKey::load_or_create(dir.path(), 42).expect("create");
        assert_eq!(a.keyed_since(), 42);
        let b = AuditKey::load_or_create(dir.path(), 99).expect("load");
        assert_eq!(b.keyed_since(), 42, "an existing key keeps its start");
        assert_eq!(a.mac(&[b"x"]), b.mac(&[b"x"]));
        assert!(AuditKey::parse("v2 abc 1").is_none());
        assert!(AuditKey::parse("v1 !!! 1").is_none());
    }
}

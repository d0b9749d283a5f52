//! Camera passwords at rest: sealed with ChaCha20-Poly1305 under a key kept in the data directory
//! (`<data_dir>/keys/secrets.key`, created on first start with mode 0600) or given in the configuration.
//!
//! Invariants:
//! - A stored camera password is `enc:v1:` + base64(nonce (12 bytes) || ciphertext+tag); a fresh random
//!   nonce per seal. A value without the prefix is a plaintext row from before this existed; the server
//!   seals those at start-up (`db::cameras::seal_plaintext_rows`).
//! - The key is a value the server owns ([`Secrets`], in its `AppState`), not process state. The database
//!   holds [`Sealed`] values only; the API seals a password as it arrives and ingest opens it when it
//!   connects, so plaintext lives only in memory on its way to the camera.
//! - Errors never carry the secret or the key.

pub use crate::db::cameras::Sealed;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::{Path, PathBuf};

pub const PREFIX: &str = "enc:v1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secrets key must be 32 bytes in base64 ({0})")]
    BadKey(String),
    #[error("a stored secret cannot be decrypted with this key (wrong key or damaged value)")]
    Decrypt,
}

/// Parses a configured key (base64 of 32 bytes).
pub fn parse_key(text: &str) -> Result<[u8; 32], SecretError> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| SecretError::BadKey(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| SecretError::BadKey(format!("got {} bytes", b.len())))
}

/// The configured key, else the one in `<data_dir>/keys/secrets.key`, else a new one written there (0600).
pub fn load_or_create_key(
    data_dir: &Path,
    configured: Option<&str>,
) -> Result<[u8; 32], SecretError> {
    if let Some(k) = configured {
        return parse_key(k);
    }
    let path = data_dir.join("keys").join("secrets.key");
    let bytes = crate::private::load_or_create(&path, || {
        let key: [u8; 32] = ChaCha20Poly1305::generate_key(&mut OsRng).into();
        format!("{}\n", B64.encode(key)).into_bytes()
    })
    .map_err(|source| SecretError::Io {
        path: path.clone(),
        source,
    })?;
    parse_key(&String::from_utf8_lossy(&bytes))
}

/// The server's key for camera passwords. Each server holds its own (in its `AppState`), so two servers
/// in one process never share or mix keys.
pub struct Secrets {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)") // the key never reaches a log line
    }
}

impl Secrets {
    pub fn new(key: [u8; 32]) -> Secrets {
        Secrets {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// The configured key, else the one in the data directory, else a new one written there.
    pub fn load(data_dir: &Path, configured: Option<&str>) -> Result<Secrets, SecretError> {
        load_or_create_key(data_dir, configured).map(Secrets::new)
    }

    /// Encrypts a secret for storage.
    pub fn seal(&self, plain: &str) -> Result<Sealed, SecretError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .map_err(|_| SecretError::Decrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(Sealed(format!("{PREFIX}{}", B64.encode(out))))
    }

    /// Decrypts a stored secret; a legacy plaintext value (no prefix) is returned as it is.
    pub fn open(&self, stored: &Sealed) -> Result<String, SecretError> {
        let Some(b64) = stored.0.strip_prefix(PREFIX) else {
            return Ok(stored.0.clone());
        };
        let bytes = B64.decode(b64).map_err(|_| SecretError::Decrypt)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| SecretError::Decrypt)
    }

    /// Seals the camera passwords an older version stored in plaintext; returns how many.
    pub async fn seal_plaintext_rows(
        &self,
        pool: &crate::db::Pool,
    ) -> Result<u64, crate::db::DbError> {
        crate::db::cameras::seal_plaintext_rows(pool, PREFIX, |plain| {
            self.seal(plain).map_err(|e| e.to_string())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = load_or_create_key(dir.path(), None).expect("key");
        let again = load_or_create_key(dir.path(), None).expect("key again");
        assert_eq!(key, again, "the key is kept");
        let mode = std::fs::metadata(dir.path().join("keys/secrets.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let secrets = Secrets::new(key);
        let a = secrets.seal("Pa55").expect("seal");
        let b = secrets.seal("Pa55").expect("seal");
        assert!(a.0.starts_with(PREFIX) && !a.0.contains("Pa55"));
        assert_ne!(a, b, "fresh nonce each time");
        assert_eq!(secrets.open(&a).expect("open"), "Pa55");
        assert_eq!(
            secrets.open(&Sealed("legacy".into())).expect("plaintext"),
            "legacy"
        );
        let forged = Sealed(format!("{PREFIX}{}", B64.encode([7u8; 40])));
        assert!(matches!(secrets.open(&forged), Err(SecretError::Decrypt)));
        assert!(secrets.open(&Sealed("enc:v1:!!".into())).is_err());
        // Another server's key opens nothing of this one's.
        assert!(Secrets::new([9u8; 32]).open(&a).is_err());
        assert!(parse_key("c2hvcnQ=").is_err());
    }
}

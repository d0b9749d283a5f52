//! Camera passwords at rest: sealed with ChaCha20-Poly1305 under a key kept in the data directory
//! (`<data_dir>/keys/secrets.key`, created on first start with mode 0600) or given in the configuration.
//!
//! Invariants:
//! - A stored camera password is `enc:v1:` + base64(nonce (12 bytes) || ciphertext+tag); a fresh random
//!   nonce per seal. A value without the prefix is a plaintext row from before this existed; the server
//!   seals those at start-up (`db::cameras::seal_plaintext_rows`).
//! - The key is installed by the server at start ([`install`]); `db::cameras` seals on write and opens on
//!   read, so the rest of the server only ever sees plaintext in memory and never writes it to disk.
//! - One process normally has one key. Tests that run several servers in one process install several:
//!   sealing uses the last installed, opening tries each (the AEAD tag tells the right one).
//! - Errors never carry the secret or the key.

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

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
    #[error("no secrets key is installed")]
    NoKey,
    #[error("a stored secret cannot be decrypted with this key (wrong key or damaged value)")]
    Decrypt,
}

static KEYS: RwLock<Vec<[u8; 32]>> = RwLock::new(Vec::new());

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

/// Installs a key: the one new secrets are sealed with from now on.
pub fn install(key: [u8; 32]) -> Result<(), SecretError> {
    let mut keys = KEYS.write().unwrap_or_else(|e| e.into_inner());
    keys.retain(|k| *k != key);
    keys.push(key);
    Ok(())
}

fn ciphers() -> Vec<ChaCha20Poly1305> {
    let keys = KEYS.read().unwrap_or_else(|e| e.into_inner());
    keys.iter()
        .rev()
        .map(|k| ChaCha20Poly1305::new(Key::from_slice(k)))
        .collect()
}

fn cipher() -> Result<ChaCha20Poly1305, SecretError> {
    ciphers().into_iter().next().ok_or(SecretError::NoKey)
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Encrypts a secret for storage.
pub fn seal(plain: &str) -> Result<String, SecretError> {
    let c = cipher()?;
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ct = c
        .encrypt(&nonce, plain.as_bytes())
        .map_err(|_| SecretError::Decrypt)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(format!("{PREFIX}{}", B64.encode(out)))
}

/// Decrypts a stored secret; a legacy plaintext value (no prefix) is returned as it is.
pub fn open(stored: &str) -> Result<String, SecretError> {
    let Some(b64) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let bytes = B64.decode(b64).map_err(|_| SecretError::Decrypt)?;
    if bytes.len() < 12 + 16 {
        return Err(SecretError::Decrypt);
    }
    let (nonce, ct) = bytes.split_at(12);
    let ciphers = ciphers();
    if ciphers.is_empty() {
        return Err(SecretError::NoKey);
    }
    let plain = ciphers
        .iter()
        .find_map(|c| c.decrypt(Nonce::from_slice(nonce), ct).ok())
        .ok_or(SecretError::Decrypt)?;
    String::from_utf8(plain).map_err(|_| SecretError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = load_or_create_key(dir.path(), None).expect("key");
        let again = load_or_create_key(dir.path(), None).expect("key again");
        assert_eq!(key, again, "the key is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys/secrets.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        install(key).expect("install");
        let a = seal("Pa55").expect("seal");
        let b = seal("Pa55").expect("seal");
        assert!(is_sealed(&a) && !a.contains("Pa55"));
        assert_ne!(a, b, "fresh nonce each time");
        assert_eq!(open(&a).expect("open"), "Pa55");
        assert_eq!(open("legacy").expect("plaintext"), "legacy");
        let forged = format!("{PREFIX}{}", B64.encode([7u8; 40]));
        assert!(matches!(open(&forged), Err(SecretError::Decrypt)));
        assert!(open("enc:v1:!!").is_err());
        // A second key (another server in the same process): old values still open, new ones use it.
        install([9u8; 32]).expect("second key");
        assert_eq!(open(&a).expect("open with the first key"), "Pa55");
        let c = seal("x").expect("seal");
        assert_eq!(open(&c).expect("open"), "x");
        assert!(parse_key("c2hvcnQ=").is_err());
    }
}

//! The evidence signing key (Ed25519) and the signature file of a package.
//!
//! Invariants:
//! - The key is made on first start and kept in `<data_dir>/keys/evidence-signing.key` (hex of the 32-byte
//!   seed, mode 0600, written to a temporary file, fsynced, then linked into place so that two starts can
//!   never end with two keys). It never leaves the server; `GET /signing-key` gives the public half.
//! - `manifest.sig` is a small JSON object: the algorithm, the public key, the SHA-256 of `manifest.json`
//!   and the Ed25519 signature of `manifest.json`'s exact bytes. The hash lets `vigil verify` tell which of
//!   the two files was altered: a changed manifest fails both the hash and the signature; a changed
//!   signature file fails one of them while the manifest still matches its hash.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} does not hold a 32-byte Ed25519 seed in hex")]
    Malformed(PathBuf),
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("evidence-signing.key")
}

/// Loads the signing key, making it on first start.
pub fn load_or_create(data_dir: &Path) -> Result<SigningKey, KeyError> {
    let path = key_path(data_dir);
    let mut made = false;
    let bytes = crate::private::load_or_create(&path, || {
        made = true;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        hex::encode(seed).into_bytes()
    })
    .map_err(|source| KeyError::Io {
        path: path.clone(),
        source,
    })?;
    if made {
        tracing::info!(path = %path.display(), "evidence signing key created");
    }
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(parse)
        .ok_or(KeyError::Malformed(path))
}

fn parse(text: &str) -> Option<SigningKey> {
    let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    Some(SigningKey::from_bytes(&bytes))
}

/// The fingerprint people compare: the first 16 bytes of SHA-256 of the public key, hex in groups.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let h = Sha256::digest(key.as_bytes());
    h[..16]
        .chunks(2)
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(":")
}

/// The contents of `manifest.sig`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigFile {
    pub algorithm: String,
    /// Public key, hex.
    pub public_key: String,
    /// SHA-256 of `manifest.json`, hex.
    pub manifest_sha256: String,
    /// Ed25519 signature of `manifest.json`, hex.
    pub signature: String,
}

pub fn sign_manifest(key: &SigningKey, manifest: &[u8]) -> SigFile {
    SigFile {
        algorithm: "ed25519".into(),
        public_key: hex::encode(key.verifying_key().as_bytes()),
        manifest_sha256: hex::encode(Sha256::digest(manifest)),
        signature: hex::encode(key.sign(manifest).to_bytes()),
    }
}

/// Which file of the pair failed, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum SigCheck {
    Valid(VerifyingKey),
    ManifestAltered,
    SignatureAltered(String),
}

pub fn check_signature(manifest: &[u8], sig: &[u8]) -> SigCheck {
    let bad = |m: &str| SigCheck::SignatureAltered(m.to_owned());
    let Ok(s) = serde_json::from_slice::<SigFile>(sig) else {
        return bad("manifest.sig is not a signature file");
    };
    if s.algorithm != "ed25519" {
        return bad("manifest.sig names an unknown algorithm");
    }
    let key = hex::decode(&s.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let sig = hex::decode(&s.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b));
    let (Some(key), Some(sig)) = (key, sig) else {
        return bad("manifest.sig holds a malformed key or signature");
    };
    let hash_ok = hex::encode(Sha256::digest(manifest)) == s.manifest_sha256;
    let sig_ok = key.verify(manifest, &sig).is_ok();
    match (hash_ok, sig_ok) {
        (true, true) => SigCheck::Valid(key),
        (false, false) => SigCheck::ManifestAltered,
        (true, false) => bad("the signature in manifest.sig does not match manifest.json"),
        (false, true) => bad("the hash in manifest.sig does not match manifest.json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_once_and_signatures_tell_which_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_create(dir.path()).unwrap();
        let k2 = load_or_create(dir.path()).unwrap();
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        let manifest = br#"{"case_no":"X"}"#.to_vec();
        let sig = serde_json::to_vec(&sign_manifest(&k1, &manifest)).unwrap();
        assert!(matches!(
            check_signature(&manifest, &sig),
            SigCheck::Valid(_)
        ));
        let mut m2 = manifest.clone();
        m2[3] ^= 1;
        assert_eq!(check_signature(&m2, &sig), SigCheck::ManifestAltered);
        for i in 0..sig.len() {
            let mut s2 = sig.clone();
            s2[i] ^= 1;
            assert!(
                matches!(
                    check_signature(&manifest, &s2),
                    SigCheck::SignatureAltered(_)
                ),
                "byte {i}"
            );
        }
    }
}

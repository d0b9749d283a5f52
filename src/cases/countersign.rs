//! Countersigned packages: a package made by the server that holds the footage (a city), carried through a
//! link and signed a second time by the server that asked for it (the province), see docs/federation.md.
//!
//! The holder's package goes into the new one as it came, byte for byte: its clips, its `manifest.json`
//! and its `manifest.sig` (the holder's signature, naming the province user as exporter). Beside them
//! the countersigner adds `countersign.json` (the SHA-256 of the holder's manifest, the holder's key, who
//! asked for the export here and when, and the countersigner's key) and `countersign.sig` (Ed25519 of
//! `countersign.json`'s exact bytes, in the format of `manifest.sig`). `vigil verify` checks both.
//!
//! Invariants:
//! - Nothing is countersigned that does not verify first: the holder's package must be intact and signed
//!   by the holder's key as the link gave it; otherwise no package is written.
//! - The package is written to `*.zip.part`, fsynced, then renamed, as every package.

use super::package::{FileEntry, MANIFEST};
use super::signing::{fingerprint, sign_manifest};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

pub const COUNTERSIGN: &str = "countersign.json";
pub const COUNTERSIGN_SIG: &str = "countersign.sig";
pub const FORMAT: &str = "vigil-countersign/1";

/// A public key as a package names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRef {
    pub algorithm: String,
    pub public_key: String,
    pub fingerprint: String,
}

impl KeyRef {
    pub fn of(key: &ed25519_dalek::VerifyingKey) -> KeyRef {
        KeyRef {
            algorithm: "ed25519".into(),
            public_key: hex::encode(key.as_bytes()),
            fingerprint: fingerprint(key),
        }
    }
}

/// The contents of `countersign.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Countersign {
    pub format: String,
    /// SHA-256 of the holder's `manifest.json`, hex.
    pub manifest_sha256: String,
    /// The server that holds the footage and signed `manifest.json`: its name as the countersigner's
    /// link names it, and its key.
    pub holder: String,
    pub holder_key: KeyRef,
    /// The countersigner's export: its id, who asked for it and when.
    pub export_id: String,
    pub exported_by: String,
    pub exported_at: String,
    pub signing_key: KeyRef,
}

#[derive(Debug, thiserror::Error)]
pub enum CountersignError {
    #[error("the holder's package does not verify: {0}")]
    NotIntact(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// What the countersigner states about the export.
pub struct Statement<'a> {
    pub holder: &'a str,
    pub holder_key: &'a str,
    pub export_id: &'a str,
    pub exported_by: &'a str,
    pub exported_at: &'a str,
}

/// Checks the holder's package at `holder_zip` against `holder_key` (hex), then writes the countersigned
/// package to `out` (blocking).
pub fn write(
    holder_zip: &Path,
    out: &Path,
    st: &Statement,
    key: &SigningKey,
) -> Result<FileEntry, CountersignError> {
    let report = super::verify::verify(holder_zip, Some(st.holder_key));
    if let Some(p) = report.problems.first() {
        return Err(CountersignError::NotIntact(format!(
            "{}: {}",
            p.file, p.message
        )));
    }
    let mut src = zip::ZipArchive::new(std::fs::File::open(holder_zip)?)?;
    let manifest_sha256 = {
        let mut m = Vec::new();
        src.by_name(MANIFEST)?.read_to_end(&mut m)?;
        hex::encode(Sha256::digest(&m))
    };
    let holder_key = hex::decode(st.holder_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| CountersignError::NotIntact("the holder's key is malformed".into()))?;
    let statement = Countersign {
        format: FORMAT.into(),
        manifest_sha256,
        holder: st.holder.into(),
        holder_key: KeyRef::of(&holder_key),
        export_id: st.export_id.into(),
        exported_by: st.exported_by.into(),
        exported_at: st.exported_at.into(),
        signing_key: KeyRef::of(&key.verifying_key()),
    };
    let part = out.with_extension("zip.part");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&part)?);
    // The holder's entries as they are (no recompression): its signature stays valid.
    for i in 0..src.len() {
        zip.raw_copy_file(src.by_index_raw(i)?)?;
    }
    let text = serde_json::to_vec_pretty(&statement).map_err(std::io::Error::other)?;
    let sig =
        serde_json::to_vec_pretty(&sign_manifest(key, &text)).map_err(std::io::Error::other)?;
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(COUNTERSIGN, deflated)?;
    zip.write_all(&text)?;
    zip.start_file(COUNTERSIGN_SIG, deflated)?;
    zip.write_all(&sig)?;
    Ok(super::package::seal(zip.finish()?, &part, out)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::verify::verify_countersigned;

    /// A holder's package with one file, signed by `key`.
    fn holder_package(path: &Path, key: &SigningKey) {
        let data = b"footage".to_vec();
        let manifest = serde_json::json!({"format": super::super::package::FORMAT, "case": {"case_no": "GZ-1"},
            "files": [{"name": "clips/a.mp4", "bytes": data.len(), "sha256": hex::encode(Sha256::digest(&data))}]});
        let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
        let sig = serde_json::to_vec(&sign_manifest(key, &manifest)).unwrap();
        let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        for (name, bytes) in [
            ("clips/a.mp4", &data),
            (MANIFEST, &manifest),
            ("manifest.sig", &sig),
        ] {
            z.start_file(name, o).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }

    fn st(holder_key: &str) -> Statement<'_> {
        Statement {
            holder: "赣州",
            holder_key,
            export_id: "x",
            exported_by: "admin",
            exported_at: "2026-12-07T00:00:00Z",
        }
    }

    fn hex_key(k: &SigningKey) -> String {
        hex::encode(k.verifying_key().as_bytes())
    }

    #[test]
    fn countersigned_packages_verify_with_both_keys_and_tampering_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (city, province) = (
            SigningKey::from_bytes(&[7; 32]),
            SigningKey::from_bytes(&[9; 32]),
        );
        let held = dir.path().join("held.zip");
        holder_package(&held, &city);
        let city_hex = hex_key(&city);
        let city_hex = city_hex.as_str();
        let out = dir.path().join("out.zip");
        // The wrong holder key: nothing is countersigned.
        let wrong = hex_key(&province);
        assert!(matches!(
            write(&held, &out, &st(&wrong), &province),
            Err(CountersignError::NotIntact(_))
        ));
        assert!(!out.exists());
        write(&held, &out, &st(city_hex), &province).unwrap();
        let r = verify_countersigned(&out, Some(city_hex), Some(&hex_key(&province)));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.holder.as_deref(), Some("赣州"));
        // A plain package asked to be countersigned, and a countersignature by another key, fail.
        let r = verify_countersigned(&held, Some(city_hex), Some(&hex_key(&province)));
        assert_eq!(r.problems[0].file, COUNTERSIGN);
        let r = verify_countersigned(&out, Some(city_hex), Some(city_hex));
        assert_eq!(r.problems[0].file, COUNTERSIGN_SIG);
        // countersign.json changed: named.
        let bad = dir.path().join("bad.zip");
        let mut src = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
        let mut z = zip::ZipWriter::new(std::fs::File::create(&bad).unwrap());
        for i in 0..src.len() {
            let mut f = src.by_index(i).unwrap();
            let name = f.name().to_owned();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            if name == COUNTERSIGN {
                bytes = String::from_utf8(bytes)
                    .unwrap()
                    .replace("admin", "other")
                    .into_bytes();
            }
            z.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(&bytes).unwrap();
        }
        z.finish().unwrap();
        let r = verify_countersigned(&bad, Some(city_hex), None);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].file, COUNTERSIGN);
    }
}

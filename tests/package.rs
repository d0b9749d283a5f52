//! `vigil verify` against hostile packages, run as the real command: a package checked without the
//! trusted key says so loudly; a name present twice, a file that inflates far past what the manifest
//! says (a zip bomb) and a foreign signer are refused, in bounded memory.
//!
//! Alone in its own test binary: the memory figure is the peak of this process's children, and no
//! server or simulator runs beside the checks.

mod common;
use common::BIN;
use ed25519_dalek::SigningKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use vigil::cases::package::{FORMAT, MANIFEST, SIGNATURE};
use vigil::cases::signing::sign_manifest;

/// Writes a signed package of `files` (name, bytes as listed in the manifest) whose zip entries are
/// `entries` (name, bytes actually stored).
fn package(path: &Path, key: &SigningKey, files: &[(&str, &[u8])], entries: &[(&str, &[u8])]) {
    let listed: Vec<_> = files
        .iter()
        .map(
            |(n, b)| json!({"name": n, "bytes": b.len(), "sha256": hex::encode(Sha256::digest(b))}),
        )
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "format": FORMAT, "case": {"case_no": "GZ-2026-0001"}, "files": listed,
    }))
    .expect("manifest");
    let sig = serde_json::to_vec(&sign_manifest(key, &manifest)).expect("signature");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, bytes) in entries {
        zip.start_file(*name, deflated).expect("entry");
        zip.write_all(bytes).expect("write");
    }
    zip.start_file(MANIFEST, deflated).expect("manifest entry");
    zip.write_all(&manifest).expect("write");
    zip.start_file(SIGNATURE, deflated)
        .expect("signature entry");
    zip.write_all(&sig).expect("write");
    zip.finish().expect("finish");
}

fn verify(path: &Path, key: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("verify").arg(path);
    if let Some(k) = key {
        cmd.args(["--key", k]);
    }
    let out = cmd.output().expect("vigil verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The largest resident set of any child this process has waited for, in KiB.
fn children_peak_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss
}

#[test]
fn a_package_is_checked_against_the_trusted_key_and_hostile_zips_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let public = hex::encode(key.verifying_key().as_bytes());
    let clip: &[u8] = b"the footage of window A12";

    let good = dir.path().join("good.zip");
    package(
        &good,
        &key,
        &[("clips/01.mp4", clip)],
        &[("clips/01.mp4", clip)],
    );
    let (ok, out) = verify(&good, None);
    assert!(ok, "{out}");
    assert!(
        out.contains("WARNING") && out.contains("only the package's integrity"),
        "a check without the key says loudly what it did not check: {out}"
    );
    let (ok, out) = verify(&good, Some(&public));
    assert!(ok && !out.contains("WARNING"), "{out}");
    let other = hex::encode(
        SigningKey::from_bytes(&[8u8; 32])
            .verifying_key()
            .as_bytes(),
    );
    let (ok, out) = verify(&good, Some(&other));
    assert!(!ok && out.contains("not the expected"), "{out}");

    // The same name twice: one copy as signed, the other altered. Tools disagree on which copy they
    // extract, so the package is refused whichever the verifier would have read.
    let twice = dir.path().join("twice.zip");
    let altered: &[u8] = b"the footage of window A13";
    package(
        &twice,
        &key,
        &[("clips/A.mp4", clip)],
        &[("clips/B.mp4", altered), ("clips/A.mp4", clip)],
    );
    let bytes = std::fs::read(&twice).expect("read");
    let patched = replace_all(&bytes, b"clips/B.mp4", b"clips/A.mp4");
    std::fs::write(&twice, patched).expect("write");
    let (ok, out) = verify(&twice, Some(&public));
    assert!(!ok, "a duplicated entry is refused: {out}");
    assert!(out.contains("present more than once"), "{out}");

    // A zip bomb: 512 MiB of zeros where the manifest lists a few bytes.
    let bomb = dir.path().join("bomb.zip");
    let zeros = vec![0u8; 512 << 20];
    package(
        &bomb,
        &key,
        &[("clips/01.mp4", clip)],
        &[("clips/01.mp4", &zeros)],
    );
    drop(zeros);
    let (ok, out) = verify(&bomb, Some(&public));
    assert!(
        !ok && out.contains("clips/01.mp4") && out.contains("altered"),
        "{out}"
    );
    let peak = children_peak_kib();
    assert!(
        peak < 128 * 1024,
        "vigil verify held {peak} KiB for a bomb whose manifest lists {} bytes",
        clip.len()
    );
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = haystack.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

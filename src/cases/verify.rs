//! Checking an evidence package offline (`vigil verify PACKAGE --key HEX`): the signature of
//! `manifest.json` by the expected key, then every file the manifest lists by size and SHA-256, and
//! nothing else in the zip; for a package countersigned through a link (`super::countersign`), the
//! countersignature too (`--countersign-key HEX` pins the countersigner).
//!
//! The package comes from outside (an inspection team, a court, a mail attachment), so the zip is read as
//! hostile input, in bounded memory:
//! - entries are hashed as they stream, never held whole; an entry is read at most one byte past the size
//!   the manifest gives it, so a zip bomb ends as "altered" after that many bytes;
//! - `manifest.json` and `manifest.sig` are read up to a fixed size;
//! - a name present twice is refused (two tools could each pick another copy; the zip reader keeps one,
//!   so the count the central directory declares is compared with the names it lists), as are more
//!   entries than a package can have.
//!
//! Every problem names the file concerned: a file altered, missing, added or duplicated, a manifest or
//! signature altered, a key other than the expected one.

use super::countersign::{Countersign, COUNTERSIGN, COUNTERSIGN_SIG, FORMAT as COUNTERSIGN_FORMAT};
use super::package::{FileEntry, FORMAT, MANIFEST, SIGNATURE};
use super::signing::{check_signature, SigCheck};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The largest manifest read (a case's manifest is a few hundred KiB at most).
const MAX_MANIFEST: u64 = 16 << 20;
/// The largest signature file read.
const MAX_SIGNATURE: u64 = 64 << 10;
/// The most entries a package may hold.
const MAX_ENTRIES: usize = 100_000;

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub message: String,
}

/// What [`verify`] found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub case_no: Option<String>,
    /// The key the manifest is signed with.
    pub public_key: Option<String>,
    /// Whether that key was compared with an expected one (otherwise only integrity was checked: anyone
    /// can sign a package with a key of their own).
    pub key_checked: bool,
    /// The countersigner's key, when the package is countersigned (see `countersign`), and the holder it
    /// names.
    pub countersigned_by: Option<String>,
    pub holder: Option<String>,
    /// Whether the countersigner's key was compared with an expected one.
    pub countersign_key_checked: bool,
    pub files_checked: usize,
    pub problems: Vec<Problem>,
}

impl Report {
    fn problem(&mut self, file: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: file.to_owned(),
            message: message.into(),
        });
    }
}

type Zip = zip::ZipArchive<std::fs::File>;

/// The number of entries the zip's central directory declares (end of central directory record, or its
/// ZIP64 form), read from the file's tail. The zip reader keeps one entry per name, so a name stored
/// twice shows only as a count larger than the entries it lists.
fn declared_entries(path: &Path) -> std::io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let tail_len = len.min(22 + 65_535 + 20);
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail)?;
    let Some(eocd) = tail.windows(4).rposition(|w| w == [0x50, 0x4b, 0x05, 0x06]) else {
        return Ok(None);
    };
    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|x| u16::from_le_bytes([x[0], x[1]]));
    let Some(total) = u16_at(&tail, eocd + 10) else {
        return Ok(None);
    };
    if total != 0xffff || eocd < 20 {
        return Ok(Some(u64::from(total)));
    }
    // ZIP64: the locator just before the record gives the offset of the ZIP64 record.
    let loc = eocd - 20;
    if tail[loc..loc + 4] != [0x50, 0x4b, 0x06, 0x07] {
        return Ok(Some(u64::from(total)));
    }
    let mut off = [0u8; 8];
    off.copy_from_slice(&tail[loc + 8..loc + 16]);
    f.seek(SeekFrom::Start(u64::from_le_bytes(off) + 32))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n)?;
    Ok(Some(u64::from_le_bytes(n)))
}

/// The index of every entry by name.
fn entries(zip: &mut Zip, r: &mut Report) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        match zip.by_index_raw(i) {
            Ok(f) => {
                out.insert(f.name().to_owned(), i);
            }
            Err(e) => r.problem(&format!("entry {i}"), format!("unreadable ({e})")),
        }
    }
    out
}

/// Streams entry `i` through SHA-256, reading at most `limit` bytes: (bytes read, hash).
fn hash_entry(zip: &mut Zip, i: usize, limit: u64) -> Result<(u64, String), String> {
    let f = zip.by_index(i).map_err(|e| format!("unreadable ({e})"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut taken = f.take(limit);
    let mut n = 0u64;
    loop {
        let k = taken
            .read(&mut buf)
            .map_err(|e| format!("altered: its bytes do not match the zip checksum ({e})"))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Reads a small entry whole, refusing one larger than `max`.
fn small_entry(
    zip: &mut Zip,
    names: &BTreeMap<String, usize>,
    name: &str,
    max: u64,
) -> Result<Vec<u8>, String> {
    let i = *names.get(name).ok_or("missing")?;
    let f = zip.by_index(i).map_err(|e| format!("unreadable ({e})"))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("altered: its bytes do not match the zip checksum ({e})"))?;
    if buf.len() as u64 > max {
        return Err(format!("larger than {max} bytes: not a package's"));
    }
    Ok(buf)
}

/// Checks a package offline. `expected_key` (hex, e.g. from `GET /signing-key`) pins the signer; without
/// it the report says that only integrity was checked.
pub fn verify(path: &Path, expected_key: Option<&str>) -> Report {
    verify_countersigned(path, expected_key, None)
}

/// [`verify`], and the countersignature when there is one; `countersign_key` pins the countersigner and
/// requires one.
pub fn verify_countersigned(
    path: &Path,
    expected_key: Option<&str>,
    countersign_key: Option<&str>,
) -> Report {
    let mut r = Report::default();
    let here = path.display().to_string();
    let mut zip = match std::fs::File::open(path).map(zip::ZipArchive::new) {
        Ok(Ok(z)) => z,
        Ok(Err(e)) => {
            r.problem(&here, format!("not a readable zip: {e}"));
            return r;
        }
        Err(e) => {
            r.problem(&here, format!("cannot open: {e}"));
            return r;
        }
    };
    if zip.len() > MAX_ENTRIES {
        r.problem(
            &here,
            format!("{} entries: more than a package holds", zip.len()),
        );
        return r;
    }
    match declared_entries(path) {
        Ok(Some(n)) if n != zip.len() as u64 => r.problem(
            &here,
            format!(
                "the zip declares {n} entries but holds {} names: a name is present more than once",
                zip.len()
            ),
        ),
        Ok(_) => {}
        Err(e) => r.problem(&here, format!("unreadable: {e}")),
    }
    let names = entries(&mut zip, &mut r);
    let Some(manifest) = signed_manifest(&mut zip, &names, expected_key, &mut r) else {
        return r;
    };
    check_countersign(&mut zip, &names, &manifest, countersign_key, &mut r);
    check_files(&mut zip, &names, &manifest, &mut r);
    r
}

/// The countersignature: `countersign.sig` signs `countersign.json`, which names this very manifest and
/// the key that signed it.
fn check_countersign(
    zip: &mut Zip,
    names: &BTreeMap<String, usize>,
    manifest: &[u8],
    expected: Option<&str>,
    r: &mut Report,
) {
    if !names.contains_key(COUNTERSIGN) && !names.contains_key(COUNTERSIGN_SIG) {
        if expected.is_some() {
            r.problem(COUNTERSIGN, "missing: the package is not countersigned");
        }
        return;
    }
    let text = small_entry(zip, names, COUNTERSIGN, MAX_SIGNATURE);
    let sig = small_entry(zip, names, COUNTERSIGN_SIG, MAX_SIGNATURE);
    let (text, sig) = match (text, sig) {
        (Ok(t), Ok(s)) => (t, s),
        (t, s) => {
            for (name, e) in [(COUNTERSIGN, t.err()), (COUNTERSIGN_SIG, s.err())] {
                if let Some(e) = e {
                    r.problem(name, e);
                }
            }
            return;
        }
    };
    let key = match check_signature(&text, &sig) {
        SigCheck::Valid(key) => hex::encode(key.as_bytes()),
        SigCheck::ManifestAltered => {
            return r.problem(COUNTERSIGN, "altered: it does not match its signature")
        }
        SigCheck::SignatureAltered(_) => {
            return r.problem(
                COUNTERSIGN_SIG,
                "altered: it does not sign countersign.json",
            )
        }
    };
    if let Some(want) = expected {
        r.countersign_key_checked = true;
        if !want.trim().eq_ignore_ascii_case(&key) {
            r.problem(
                COUNTERSIGN_SIG,
                format!(
                    "countersigned by key {key}, not the expected {}",
                    want.trim()
                ),
            );
        }
    }
    let c: Countersign = match serde_json::from_slice(&text) {
        Ok(c) => c,
        Err(e) => {
            return r.problem(
                COUNTERSIGN,
                format!("signed but not a countersignature: {e}"),
            )
        }
    };
    if c.format != COUNTERSIGN_FORMAT {
        r.problem(COUNTERSIGN, format!("unknown format {:?}", c.format));
    }
    if c.manifest_sha256 != hex::encode(Sha256::digest(manifest)) {
        r.problem(COUNTERSIGN, "countersigns another manifest.json");
    }
    if r.public_key.as_deref() != Some(c.holder_key.public_key.as_str()) {
        r.problem(
            COUNTERSIGN,
            format!(
                "names holder key {}, but manifest.json is signed by another",
                c.holder_key.public_key
            ),
        );
    }
    r.countersigned_by = Some(key);
    r.holder = Some(c.holder);
}

/// The manifest, when its signature holds (and is by the expected key, when one is given).
fn signed_manifest(
    zip: &mut Zip,
    names: &BTreeMap<String, usize>,
    expected_key: Option<&str>,
    r: &mut Report,
) -> Option<Vec<u8>> {
    let manifest = small_entry(zip, names, MANIFEST, MAX_MANIFEST);
    let sig = small_entry(zip, names, SIGNATURE, MAX_SIGNATURE);
    let (manifest, sig) = match (manifest, sig) {
        (Ok(m), Ok(s)) => (m, s),
        (m, s) => {
            if let Err(e) = m {
                r.problem(MANIFEST, e);
            }
            if let Err(e) = s {
                r.problem(SIGNATURE, e);
            }
            return None;
        }
    };
    match check_signature(&manifest, &sig) {
        SigCheck::Valid(key) => {
            let hex_key = hex::encode(key.as_bytes());
            if let Some(want) = expected_key {
                r.key_checked = true;
                if !want.trim().eq_ignore_ascii_case(&hex_key) {
                    r.problem(
                        SIGNATURE,
                        format!("signed by key {hex_key}, not the expected {}", want.trim()),
                    );
                }
            }
            r.public_key = Some(hex_key);
            Some(manifest)
        }
        SigCheck::ManifestAltered => {
            r.problem(MANIFEST, "altered: it does not match its signature");
            None
        }
        SigCheck::SignatureAltered(m) => {
            r.problem(SIGNATURE, format!("altered: {m}"));
            None
        }
    }
}

/// Every file the manifest lists, by size and hash; and nothing in the zip that it does not list.
fn check_files(zip: &mut Zip, names: &BTreeMap<String, usize>, manifest: &[u8], r: &mut Report) {
    #[derive(Deserialize)]
    struct M {
        format: String,
        case: Value,
        files: Vec<FileEntry>,
    }
    let m: M = match serde_json::from_slice(manifest) {
        Ok(m) => m,
        Err(e) => {
            r.problem(MANIFEST, format!("signed but not a manifest: {e}"));
            return;
        }
    };
    if m.format != FORMAT {
        r.problem(MANIFEST, format!("unknown format {:?}", m.format));
    }
    r.case_no = m
        .case
        .get("case_no")
        .and_then(Value::as_str)
        .map(str::to_owned);
    for f in &m.files {
        r.files_checked += 1;
        let Some(&i) = names.get(&f.name) else {
            if !r.problems.iter().any(|p| p.file == f.name) {
                r.problem(&f.name, "missing");
            }
            continue;
        };
        match hash_entry(zip, i, f.bytes.saturating_add(1)) {
            Err(e) => r.problem(&f.name, e),
            Ok((n, sha)) if n != f.bytes || sha != f.sha256 => r.problem(
                &f.name,
                format!("altered: SHA-256 {sha}, the manifest says {}", f.sha256),
            ),
            Ok(_) => {}
        }
    }
    let listed: std::collections::BTreeSet<&str> =
        m.files.iter().map(|f| f.name.as_str()).collect();
    for n in names.keys() {
        let ours = [MANIFEST, SIGNATURE, COUNTERSIGN, COUNTERSIGN_SIG].contains(&n.as_str());
        if !ours && !listed.contains(n.as_str()) {
            r.problem(n, "added: not listed in the manifest");
        }
    }
}

//! Reads a segment file back: its metadata and sample entries (video, and audio when the segment has a
//! track) from the init segment, then every complete fragment (`prft` + `moof` + `mdat` whose sizes
//! agree: the video's data, then the audio's, fill the `mdat`), stopping at the first incomplete or
//! malformed one. Used by start-up recovery, `vigil check`, the index rebuild and export.
//!
//! Invariants: reading never trusts a size it has not checked against the file length; a file that ends
//! inside a fragment yields every fragment before it and `complete_len` = where the incomplete one starts.

use super::segment::{FragmentSummary, SegmentMeta, SegmentStats, META_BOX};
use crate::media::fmp4::{self, parse_moof, parse_prft};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a segment can be read from: its file, or the skeleton of one in the bucket
/// (`record::skeleton`), which holds every byte a scan reads at the same offsets.
pub trait ReadAt {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, at)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a Vigil segment: {0}")]
    Format(String),
}

impl ScanError {
    /// Whether the error tells what the file holds (not a Vigil segment, cut short, gone), rather than
    /// that it could not be read just now (EIO, EACCES, EMFILE, ...). Only the former may lead to a
    /// file or row being removed: a disk that fails for a moment must not cost footage.
    pub fn is_about_content(&self) -> bool {
        match self {
            ScanError::Format(_) => true,
            ScanError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::InvalidData
            ),
        }
    }
}

impl From<fmp4::ParseError> for ScanError {
    fn from(e: fmp4::ParseError) -> ScanError {
        ScanError::Format(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct ScannedFragment {
    pub offset: u64,
    pub wall_us: i64,
    pub base_media: u64,
    /// File offset of the first video sample's data and the length of all the video's.
    pub data_offset: u64,
    pub data_len: u64,
    /// (size, duration, keyframe) per video sample.
    pub samples: Vec<(u32, u32, bool)>,
    /// Composition offset per sample (B-frames), or empty when the fragment has none.
    pub composition_offsets: Vec<u32>,
    /// The fragment's audio, right after the video's data.
    pub audio: Option<ScannedAudio>,
    pub end: u64,
}

/// The audio samples of a fragment.
#[derive(Debug, Clone)]
pub struct ScannedAudio {
    /// Decode time of the first sample from the segment's media origin, in the audio's timescale.
    pub base: u64,
    pub data_offset: u64,
    /// (size, duration in the audio's timescale) per sample.
    pub samples: Vec<(u32, u32)>,
}

impl ScannedAudio {
    pub fn data_len(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.0)).sum()
    }
}

impl ScannedFragment {
    pub fn duration_90k(&self) -> i64 {
        self.samples.iter().map(|s| i64::from(s.1)).sum()
    }
}

#[derive(Debug, Clone)]
pub struct Scanned {
    pub meta: SegmentMeta,
    pub sample_entry: Vec<u8>,
    /// The audio track's sample entry and timescale, when the segment has one.
    pub audio: Option<(Vec<u8>, u32)>,
    pub init_len: u64,
    pub fragments: Vec<ScannedFragment>,
    /// End of the last complete fragment (or of the init segment).
    pub complete_len: u64,
    pub file_len: u64,
    pub stats: SegmentStats,
}

const MAX_HEADER_BOX: u64 = 4 << 20;

fn read_at(f: &dyn ReadAt, at: u64, len: u64) -> Result<Vec<u8>, ScanError> {
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, at)?;
    Ok(buf)
}

/// (fourcc, header length, total length) of the box at `at`, if its header lies within `limit`.
fn box_at(f: &dyn ReadAt, at: u64, limit: u64) -> Result<Option<([u8; 4], u64, u64)>, ScanError> {
    if at + 8 > limit {
        return Ok(None);
    }
    let h = read_at(f, at, 8)?;
    let size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
    let fourcc = [h[4], h[5], h[6], h[7]];
    let (hdr, size) = if size == 1 {
        if at + 16 > limit {
            return Ok(None);
        }
        let l = read_at(f, at + 8, 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&l);
        (16, u64::from_be_bytes(b))
    } else {
        (8, size)
    };
    if size < hdr || at + size > limit {
        return Ok(None);
    }
    Ok(Some((fourcc, hdr, size)))
}

/// Scans `path`, reading no further than `limit` bytes (the whole file when `None`).
pub fn scan(path: &Path, limit: Option<u64>) -> Result<Scanned, ScanError> {
    let f = std::fs::File::open(path)?;
    let file_len = f.metadata()?.len();
    scan_from(&f, file_len, limit)
}

/// Scans a segment of `file_len` bytes read through `f`, reading no further than `limit`.
pub fn scan_from(f: &dyn ReadAt, file_len: u64, limit: Option<u64>) -> Result<Scanned, ScanError> {
    let limit = limit.map_or(file_len, |l| l.min(file_len));
    let bad = |m: &str| ScanError::Format(m.to_owned());
    let (ftyp, _, ftyp_len) = box_at(f, 0, limit)?.ok_or_else(|| bad("no complete ftyp"))?;
    if &ftyp != b"ftyp" {
        return Err(bad("does not start with ftyp"));
    }
    let (moov, moov_hdr, moov_len) =
        box_at(f, ftyp_len, limit)?.ok_or_else(|| bad("no complete moov"))?;
    if &moov != b"moov" || moov_len > MAX_HEADER_BOX {
        return Err(bad("no moov after ftyp"));
    }
    let moov_body = read_at(f, ftyp_len + moov_hdr, moov_len - moov_hdr)?;
    let sample_entry = fmp4::sample_entry_of_moov(&moov_body)?.to_vec();
    let audio = fmp4::audio_of_moov(&moov_body)?.map(|a| (a.sample_entry.to_vec(), a.rate));
    let udta = fmp4::find(&moov_body, b"udta")?.ok_or_else(|| bad("no udta"))?;
    let meta_json = fmp4::find(udta, META_BOX)?.ok_or_else(|| bad("no vgil metadata"))?;
    let meta: SegmentMeta = serde_json::from_slice(meta_json)
        .map_err(|e| ScanError::Format(format!("metadata: {e}")))?;
    let init_len = ftyp_len + moov_len;
    let mut stats = SegmentStats::new(init_len);
    let mut fragments = Vec::new();
    let mut pos = init_len;
    loop {
        match fragment_at(f, pos, limit) {
            Ok(Some(frag)) => {
                stats.push(&FragmentSummary {
                    wall_us: frag.wall_us,
                    media_offset: frag.base_media as i64,
                    byte_offset: frag.offset,
                    len: frag.end - frag.offset,
                    duration_90k: frag.duration_90k(),
                    frames: frag.samples.len() as i64,
                });
                pos = frag.end;
                fragments.push(frag);
            }
            // Incomplete or malformed: everything before it stands.
            Ok(None) | Err(ScanError::Format(_)) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Scanned {
        meta,
        sample_entry,
        audio,
        init_len,
        fragments,
        complete_len: pos,
        file_len,
        stats,
    })
}

fn fragment_at(f: &dyn ReadAt, at: u64, limit: u64) -> Result<Option<ScannedFragment>, ScanError> {
    let Some((fourcc, hdr, len)) = box_at(f, at, limit)? else {
        return Ok(None);
    };
    if &fourcc != b"prft" || len > 64 {
        return Err(ScanError::Format("expected prft".into()));
    }
    let (wall_us, _) = parse_prft(&read_at(f, at + hdr, len - hdr)?)?;
    let moof_at = at + len;
    let Some((fourcc, hdr, moof_len)) = box_at(f, moof_at, limit)? else {
        return Ok(None);
    };
    if &fourcc != b"moof" || moof_len > MAX_HEADER_BOX {
        return Err(ScanError::Format("expected moof".into()));
    }
    let info = parse_moof(&read_at(f, moof_at + hdr, moof_len - hdr)?)?;
    let mdat_at = moof_at + moof_len;
    let Some((fourcc, hdr, mdat_len)) = box_at(f, mdat_at, limit)? else {
        return Ok(None);
    };
    if &fourcc != b"mdat" {
        return Err(ScanError::Format("expected mdat".into()));
    }
    let data_len: u64 = info.samples.iter().map(|s| u64::from(s.0)).sum();
    let data_offset = moof_at + u64::from(info.data_offset);
    let audio = info.audio.map(|a| ScannedAudio {
        base: a.base_media_time,
        data_offset: moof_at + u64::from(a.data_offset),
        samples: a.samples,
    });
    let audio_len = audio.as_ref().map_or(0, ScannedAudio::data_len);
    let audio_follows = audio
        .as_ref()
        .is_none_or(|a| a.data_offset == data_offset + data_len);
    if data_offset != mdat_at + hdr
        || data_len + audio_len != mdat_len - hdr
        || !audio_follows
        || info.samples.is_empty()
    {
        return Err(ScanError::Format("moof and mdat disagree".into()));
    }
    Ok(Some(ScannedFragment {
        offset: at,
        wall_us,
        base_media: info.base_media_time,
        data_offset,
        data_len,
        samples: info.samples,
        composition_offsets: info.composition_offsets,
        audio,
        end: mdat_at + mdat_len,
    }))
}

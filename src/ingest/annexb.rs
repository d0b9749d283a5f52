//! Annex B access units (as PS and other byte-stream sources carry them) to what the hub wants: MP4
//! framing (4-byte lengths) without in-band parameter sets, a keyframe flag, and codec parameters built
//! by retina from the stream's own VPS/SPS/PPS.
//!
//! Invariants: a frame is only handed out once parameters are known (the first keyframe brings them);
//! parameter sets that change mid-stream make new parameters (a new `generation`); a unit without any
//! slice (only parameter sets, SEI, or garbage) yields nothing.

use super::session::{convert_params, RunError};
use crate::hub::VideoParams;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// Parameter sets seen last, and the parameters made of them.
pub struct AnnexB {
    codec: Codec,
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    params: Option<Arc<VideoParams>>,
    generation: u64,
}

/// One converted access unit.
pub struct Unit {
    pub data: Bytes,
    pub keyframe: bool,
    pub params: Arc<VideoParams>,
}

impl AnnexB {
    pub fn new(codec: Codec) -> AnnexB {
        AnnexB {
            codec,
            vps: None,
            sps: None,
            pps: None,
            params: None,
            generation: 0,
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Converts one access unit. `Ok(None)`: nothing to publish yet (no slice, or no parameters).
    pub fn convert(&mut self, au: &[u8]) -> Result<Option<Unit>, RunError> {
        let mut out = BytesMut::with_capacity(au.len() + 16);
        let mut keyframe = false;
        let mut changed = false;
        for nal in nal_units(au) {
            match self.kind(nal) {
                Kind::ParameterSet(slot) => {
                    let stored = self.slot(slot);
                    if stored.as_deref() != Some(nal) {
                        *stored = Some(Bytes::copy_from_slice(nal));
                        changed = true;
                    }
                }
                Kind::Skip => {}
                Kind::Slice { random_access } => {
                    keyframe |= random_access;
                    out.put_u32(nal.len() as u32);
                    out.extend_from_slice(nal);
                }
                Kind::Other => {
                    out.put_u32(nal.len() as u32);
                    out.extend_from_slice(nal);
                }
            }
        }
        if changed || self.params.is_none() {
            self.rebuild()?;
        }
        let Some(params) = self.params.clone() else {
            return Ok(None);
        };
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(Unit {
            data: out.freeze(),
            keyframe,
            params,
        }))
    }

    fn slot(&mut self, slot: Slot) -> &mut Option<Bytes> {
        match slot {
            Slot::Vps => &mut self.vps,
            Slot::Sps => &mut self.sps,
            Slot::Pps => &mut self.pps,
        }
    }

    fn kind(&self, nal: &[u8]) -> Kind {
        match self.codec {
            Codec::H264 => match nal[0] & 0x1f {
                7 => Kind::ParameterSet(Slot::Sps),
                8 => Kind::ParameterSet(Slot::Pps),
                10..=12 => Kind::Skip, // end of sequence/stream, filler (AUDs are kept, as retina does)
                5 => Kind::Slice {
                    random_access: true,
                },
                1..=4 => Kind::Slice {
                    random_access: false,
                },
                _ => Kind::Other,
            },
            Codec::H265 => match (nal[0] >> 1) & 0x3f {
                32 => Kind::ParameterSet(Slot::Vps),
                33 => Kind::ParameterSet(Slot::Sps),
                34 => Kind::ParameterSet(Slot::Pps),
                36..=38 => Kind::Skip, // EOS, EOB, filler (AUDs are kept, as retina does)
                t @ 0..=31 => Kind::Slice {
                    random_access: (16..=23).contains(&t),
                },
                _ => Kind::Other,
            },
        }
    }

    /// New parameters from the stored parameter sets, when they are complete.
    fn rebuild(&mut self) -> Result<(), RunError> {
        let unsupported = |e: String| RunError::Unsupported(format!("parameter sets: {e}"));
        let p = match (self.codec, &self.vps, &self.sps, &self.pps) {
            (Codec::H264, _, Some(sps), Some(pps)) => {
                retina::codec::h264::parameters_from_sps_and_pps(
                    sps,
                    pps,
                    retina::codec::h26x::Framing::FourByteLength,
                )
                .map_err(|e| unsupported(e.to_string()))?
            }
            (Codec::H265, Some(vps), Some(sps), Some(pps)) => {
                h265_parameters(vps, sps, pps).map_err(unsupported)?
            }
            _ => return Ok(()),
        };
        let converted = convert_params(&p, self.generation)?;
        self.generation += 1;
        tracing::info!(codec = %converted.codec, width = converted.width, height = converted.height, "stream parameters");
        self.params = Some(Arc::new(converted));
        Ok(())
    }
}

/// H.265 parameters through retina's depacketizer, which builds them from the `sprop-*` of an SDP
/// `fmtp` (retina offers no direct constructor for H.265 as it does for H.264).
fn h265_parameters(
    vps: &[u8],
    sps: &[u8],
    pps: &[u8],
) -> Result<retina::codec::VideoParameters, String> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let fmtp = format!(
        "sprop-vps={};sprop-sps={};sprop-pps={}",
        b64(vps),
        b64(sps),
        b64(pps)
    );
    let d = retina::codec::Depacketizer::new("video", "h265", 90_000, None, Some(&fmtp))?;
    match d.parameters() {
        Some(retina::codec::ParametersRef::Video(p)) => Ok(p.clone()),
        _ => Err("no video parameters in the H.265 parameter sets".into()),
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Vps,
    Sps,
    Pps,
}

enum Kind {
    ParameterSet(Slot),
    Skip,
    Slice { random_access: bool },
    Other,
}

/// The NAL units of an Annex B byte stream (start codes of 3 or 4 bytes, trailing zeros dropped).
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| s - 3)
        .chain(std::iter::once(data.len()))
        .collect();
    starts.into_iter().zip(ends).filter_map(move |(s, e)| {
        let mut e = e;
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        (e > s).then(|| &data[s..e])
    })
}

/// The parameter sets in an `avcC` (H.264) or `hvcC` (H.265) body, in order; empty when it is malformed.
pub fn parameter_sets(extra: &[u8], h265: bool) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut p = if h265 { 23 } else { 6 };
    let take = |p: &mut usize| -> Option<&[u8]> {
        let len = usize::from(u16::from_be_bytes([*extra.get(*p)?, *extra.get(*p + 1)?]));
        let nal = extra.get(*p + 2..*p + 2 + len)?;
        *p += 2 + len;
        Some(nal)
    };
    if h265 {
        let arrays = extra.get(22).copied().unwrap_or(0);
        for _ in 0..arrays {
            let Some(n) = extra.get(p + 1..p + 3) else {
                return Vec::new();
            };
            let n = u16::from_be_bytes([n[0], n[1]]);
            p += 3;
            for _ in 0..n {
                match take(&mut p) {
                    Some(nal) => out.push(nal),
                    None => return Vec::new(),
                }
            }
        }
    } else {
        let sps = extra.get(5).map_or(0, |b| b & 0x1f);
        for _ in 0..sps {
            match take(&mut p) {
                Some(nal) => out.push(nal),
                None => return Vec::new(),
            }
        }
        let Some(&pps) = extra.get(p) else {
            return Vec::new();
        };
        p += 1;
        for _ in 0..pps {
            match take(&mut p) {
                Some(nal) => out.push(nal),
                None => return Vec::new(),
            }
        }
    }
    out
}

/// An MP4-framed access unit (4-byte lengths) as an Annex B byte stream, after `prefix` NAL units (the
/// parameter sets before a keyframe). A length that runs past the data ends the unit.
pub fn to_annex_b(out: &mut Vec<u8>, prefix: &[&[u8]], mut data: &[u8]) {
    for nal in prefix {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    while data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let Some(nal) = data.get(4..4 + len) else {
            break;
        };
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        data = &data[4 + len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_units_split_on_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        let nals: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
    }

    #[test]
    fn no_frame_before_parameters_and_garbage_is_refused_cleanly() {
        let mut c = AnnexB::new(Codec::H264);
        assert!(c.convert(&[0, 0, 1, 0x65, 0x88, 0x80]).unwrap().is_none());
        // An SPS that does not parse is an error for this run, not a panic.
        let bad = [
            0, 0, 1, 0x67, 0xff, 0, 1, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 1,
        ];
        assert!(c.convert(&bad).is_err());
    }
}

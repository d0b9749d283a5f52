//! VUI rewrite of H.264 sequence parameter sets on the live path (see `docs/live.md`).
//!
//! An SPS without `bitstream_restriction` gives a decoder no bound on frame reordering, so browsers keep a
//! full decoded-picture buffer before showing anything: over a second of delay. We add
//! `bitstream_restriction` with `max_num_reorder_frames = 0` and `max_dec_frame_buffering =
//! max_num_ref_frames`, which is true of streams without B-frames. Encoders that use B-frames write
//! `bitstream_restriction` themselves (x264 does), and such an SPS is left alone (docs/live.md).
//!
//! Invariants:
//! - Only the SPS changes, and only by appending to (or adding) its VUI; every other bit is copied as read.
//!   An SPS that already has `bitstream_restriction`, or that we cannot parse, is left as it is.
//! - Nothing here panics on camera input: every read is bounds-checked and errors are values.

use bytes::Bytes;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VuiError {
    #[error("SPS ends early")]
    Truncated,
    #[error("SPS already has bitstream_restriction")]
    AlreadyRestricted,
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// Reads bits of an RBSP and writes each one it reads to the output as well (copying parse).
struct Copier<'a> {
    data: &'a [u8],
    pos: usize,
    out: BitWriter,
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bits: u8,
    cur: u8,
}

impl BitWriter {
    fn bit(&mut self, b: u32) {
        self.cur = (self.cur << 1) | (b & 1) as u8;
        self.bits += 1;
        if self.bits == 8 {
            self.bytes.push(self.cur);
            self.bits = 0;
            self.cur = 0;
        }
    }

    fn bits(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1);
        }
    }

    fn ue(&mut self, v: u32) {
        let v1 = u64::from(v) + 1;
        let len = 64 - v1.leading_zeros();
        for _ in 0..len - 1 {
            self.bit(0);
        }
        for i in (0..len).rev() {
            self.bit(((v1 >> i) & 1) as u32);
        }
    }

    /// `rbsp_trailing_bits`: a stop bit and zeros to the byte boundary.
    fn finish(mut self) -> Vec<u8> {
        self.bit(1);
        while self.bits != 0 {
            self.bit(0);
        }
        self.bytes
    }
}

impl Copier<'_> {
    fn read_bit(&mut self) -> Result<u32, VuiError> {
        let byte = *self.data.get(self.pos / 8).ok_or(VuiError::Truncated)?;
        let b = u32::from((byte >> (7 - self.pos % 8)) & 1);
        self.pos += 1;
        Ok(b)
    }

    fn u(&mut self, n: u32) -> Result<u32, VuiError> {
        let mut v = 0;
        for _ in 0..n {
            let b = self.read_bit()?;
            self.out.bit(b);
            v = (v << 1) | b;
        }
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool, VuiError> {
        Ok(self.u(1)? == 1)
    }

    fn ue(&mut self) -> Result<u32, VuiError> {
        let mut zeros = 0;
        while self.u(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(VuiError::Malformed("exp-Golomb code"));
            }
        }
        let rest = self.u(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    fn se(&mut self) -> Result<i32, VuiError> {
        let k = self.ue()?;
        Ok(if k % 2 == 1 {
            k.div_ceil(2) as i32
        } else {
            -((k / 2) as i32)
        })
    }

    fn scaling_list(&mut self, size: usize) -> Result<(), VuiError> {
        let (mut last, mut next) = (8i32, 8i32);
        for _ in 0..size {
            if next != 0 {
                let delta = self.se()?;
                next = (last + delta + 256).rem_euclid(256);
            }
            if next != 0 {
                last = next;
            }
        }
        Ok(())
    }

    fn hrd(&mut self) -> Result<(), VuiError> {
        let cpb_cnt = self.ue()?;
        if cpb_cnt > 31 {
            return Err(VuiError::Malformed("cpb_cnt"));
        }
        self.u(8)?; // bit_rate_scale, cpb_size_scale
        for _ in 0..=cpb_cnt {
            self.ue()?;
            self.ue()?;
            self.u(1)?;
        }
        self.u(20)?; // four 5-bit lengths
        Ok(())
    }
}

/// Strips emulation-prevention bytes (`00 00 03` -> `00 00`).
fn to_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Adds emulation-prevention bytes.
fn to_nal(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + 8);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

const HIGH_PROFILES: &[u32] = &[100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// The SPS NAL unit (header byte included, no start code or length) with `bitstream_restriction` added.
pub fn rewrite_sps(nal: &[u8]) -> Result<Vec<u8>, VuiError> {
    let (&header, body) = nal.split_first().ok_or(VuiError::Truncated)?;
    if header & 0x1f != 7 {
        return Err(VuiError::Malformed("not an SPS"));
    }
    let rbsp = to_rbsp(body);
    let mut c = Copier {
        data: &rbsp,
        pos: 0,
        out: BitWriter::default(),
    };
    c.sps_profile()?;
    let max_num_ref_frames = c.sps_frames()?;
    // vui_parameters_present_flag: read it, and write 1 in its place.
    let vui = c.read_bit()? == 1;
    c.out.bit(1);
    if vui {
        c.vui_before_restriction()?;
        if c.read_bit()? == 1 {
            return Err(VuiError::AlreadyRestricted);
        }
    } else {
        // aspect ratio, overscan, video signal, chroma location, timing, NAL HRD, VCL HRD, pic_struct: none.
        c.out.bits(8, 0);
    }
    let mut w = c.out;
    w.bit(1); // bitstream_restriction_flag
    w.bit(1); // motion_vectors_over_pic_boundaries_flag
    w.ue(2); // max_bytes_per_pic_denom
    w.ue(1); // max_bits_per_mb_denom
    w.ue(16); // log2_max_mv_length_horizontal
    w.ue(16); // log2_max_mv_length_vertical
    w.ue(0); // max_num_reorder_frames
    w.ue(max_num_ref_frames); // max_dec_frame_buffering
    let mut out = vec![header];
    out.extend(to_nal(&w.finish()));
    Ok(out)
}

impl Copier<'_> {
    /// `profile_idc` to the end of the high profiles' chroma and scaling-list fields.
    fn sps_profile(&mut self) -> Result<(), VuiError> {
        let profile = self.u(8)?;
        self.u(16)?; // constraint flags, level
        self.ue()?; // seq_parameter_set_id
        if !HIGH_PROFILES.contains(&profile) {
            return Ok(());
        }
        let chroma = self.ue()?;
        if chroma == 3 {
            self.u(1)?;
        }
        self.ue()?;
        self.ue()?;
        self.u(1)?;
        if self.flag()? {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if self.flag()? {
                    self.scaling_list(if i < 6 { 16 } else { 64 })?;
                }
            }
        }
        Ok(())
    }

    /// Frame numbering, picture order, reference frames, size and cropping; returns
    /// `max_num_ref_frames`.
    fn sps_frames(&mut self) -> Result<u32, VuiError> {
        self.ue()?; // log2_max_frame_num_minus4
        match self.ue()? {
            0 => {
                self.ue()?;
            }
            1 => {
                self.u(1)?;
                self.se()?;
                self.se()?;
                let n = self.ue()?;
                if n > 255 {
                    return Err(VuiError::Malformed("pic order cycle"));
                }
                for _ in 0..n {
                    self.se()?;
                }
            }
            _ => {}
        }
        let max_num_ref_frames = self.ue()?;
        self.u(1)?;
        self.ue()?;
        self.ue()?;
        if !self.flag()? {
            self.u(1)?; // mb_adaptive_frame_field_flag
        }
        self.u(1)?; // direct_8x8_inference_flag
        if self.flag()? {
            for _ in 0..4 {
                self.ue()?;
            }
        }
        Ok(max_num_ref_frames)
    }

    /// The VUI fields before `bitstream_restriction_flag`.
    fn vui_before_restriction(&mut self) -> Result<(), VuiError> {
        if self.flag()? && self.u(8)? == 255 {
            self.u(32)?;
        }
        if self.flag()? {
            self.u(1)?;
        }
        if self.flag()? {
            self.u(4)?;
            if self.flag()? {
                self.u(24)?;
            }
        }
        if self.flag()? {
            self.ue()?;
            self.ue()?;
        }
        if self.flag()? {
            self.u(32)?;
            self.u(32)?;
            self.u(1)?;
        }
        let nal_hrd = self.flag()?;
        if nal_hrd {
            self.hrd()?;
        }
        let vcl_hrd = self.flag()?;
        if vcl_hrd {
            self.hrd()?;
        }
        if nal_hrd || vcl_hrd {
            self.u(1)?;
        }
        self.u(1)?; // pic_struct_present_flag
        Ok(())
    }
}

fn be16(b: &[u8], at: usize) -> Result<usize, VuiError> {
    Ok(usize::from(u16::from_be_bytes(
        b.get(at..at + 2)
            .ok_or(VuiError::Truncated)?
            .try_into()
            .map_err(|_| VuiError::Truncated)?,
    )))
}

/// An `avcC` body with every SPS rewritten.
pub fn rewrite_avcc(avcc: &[u8]) -> Result<Vec<u8>, VuiError> {
    let head = avcc.get(..6).ok_or(VuiError::Truncated)?;
    let nsps = usize::from(head[5] & 0x1f);
    let mut out = head.to_vec();
    let mut p = 6;
    let mut changed = false;
    for _ in 0..nsps {
        let len = be16(avcc, p)?;
        let sps = avcc.get(p + 2..p + 2 + len).ok_or(VuiError::Truncated)?;
        let new = match rewrite_sps(sps) {
            Ok(n) => {
                changed = true;
                n
            }
            Err(VuiError::AlreadyRestricted) => sps.to_vec(),
            Err(e) => return Err(e),
        };
        let new_len = u16::try_from(new.len()).map_err(|_| VuiError::Malformed("SPS size"))?;
        out.extend_from_slice(&new_len.to_be_bytes());
        out.extend_from_slice(&new);
        p += 2 + len;
    }
    if !changed {
        return Err(VuiError::AlreadyRestricted);
    }
    out.extend_from_slice(avcc.get(p..).ok_or(VuiError::Truncated)?);
    Ok(out)
}

/// Size of a VisualSampleEntry before its child boxes (box header included).
const VISUAL_ENTRY_HEADER: usize = 86;

/// An `avc1`/`avc3` sample entry box with its `avcC` rewritten.
pub fn rewrite_sample_entry(entry: &[u8]) -> Result<Vec<u8>, VuiError> {
    let head = entry
        .get(..VISUAL_ENTRY_HEADER)
        .ok_or(VuiError::Truncated)?;
    if &head[4..8] != b"avc1" && &head[4..8] != b"avc3" {
        return Err(VuiError::Malformed("not an avc1 sample entry"));
    }
    let mut out = head.to_vec();
    let mut p = VISUAL_ENTRY_HEADER;
    let mut found = false;
    while p + 8 <= entry.len() {
        let size = u32::from_be_bytes(
            entry[p..p + 4]
                .try_into()
                .map_err(|_| VuiError::Truncated)?,
        ) as usize;
        if size < 8 || p + size > entry.len() {
            return Err(VuiError::Malformed("child box size"));
        }
        if &entry[p + 4..p + 8] == b"avcC" {
            let body = rewrite_avcc(&entry[p + 8..p + size])?;
            out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
            out.extend_from_slice(b"avcC");
            out.extend_from_slice(&body);
            found = true;
        } else {
            out.extend_from_slice(&entry[p..p + size]);
        }
        p += size;
    }
    if !found {
        return Err(VuiError::Malformed("no avcC"));
    }
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// A frame (4-byte length-prefixed NAL units) with any in-band SPS rewritten; the same `Bytes` (no copy)
/// when it has none to rewrite.
pub fn rewrite_in_band(frame: &Bytes) -> Bytes {
    let mut p = 0;
    let mut has_sps = false;
    while p + 4 <= frame.len() {
        let len = u32::from_be_bytes([frame[p], frame[p + 1], frame[p + 2], frame[p + 3]]) as usize;
        if frame.get(p + 4).is_some_and(|h| h & 0x1f == 7) {
            has_sps = true;
            break;
        }
        p += 4 + len;
    }
    if !has_sps {
        return frame.clone();
    }
    let mut out = Vec::with_capacity(frame.len() + 16);
    let mut p = 0;
    while p + 4 <= frame.len() {
        let len = u32::from_be_bytes([frame[p], frame[p + 1], frame[p + 2], frame[p + 3]]) as usize;
        let Some(nal) = frame.get(p + 4..p + 4 + len) else {
            return frame.clone();
        };
        match nal.first().map(|h| h & 0x1f) {
            Some(7) => match rewrite_sps(nal) {
                Ok(new) => {
                    out.extend_from_slice(&(new.len() as u32).to_be_bytes());
                    out.extend_from_slice(&new);
                }
                Err(_) => out.extend_from_slice(&frame[p..p + 4 + len]),
            },
            _ => out.extend_from_slice(&frame[p..p + 4 + len]),
        }
        p += 4 + len;
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// x264 (GStreamer, as the simulator encodes) and x264 (FFmpeg) SPS of 320x240.
    const GST_SPS: &str = "6742c00dda0507ec05a8303035280000030008000003019478a155";
    const FFMPEG_SPS: &str = "6764000dacb20283f60220000003002000000641e28549";

    #[test]
    fn rewritten_sps_gains_bitstream_restriction_and_keeps_everything_else() {
        for s in [GST_SPS, FFMPEG_SPS] {
            let sps = hex(s);
            match rewrite_sps(&sps) {
                Ok(new) => {
                    // Parsing the result finds the restriction now.
                    assert_eq!(rewrite_sps(&new), Err(VuiError::AlreadyRestricted), "{s}");
                    assert_eq!(new[..4], sps[..4]);
                }
                Err(VuiError::AlreadyRestricted) => {}
                Err(e) => panic!("{s}: {e}"),
            }
        }
    }

    #[test]
    fn exp_golomb_round_trips() {
        let mut w = BitWriter::default();
        for v in [0, 1, 2, 16, 255, 65_535] {
            w.ue(v);
        }
        let bytes = w.finish();
        let mut c = Copier {
            data: &bytes,
            pos: 0,
            out: BitWriter::default(),
        };
        for v in [0, 1, 2, 16, 255, 65_535] {
            assert_eq!(c.ue().expect("ue"), v);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 7) as u8).collect();
            let mut nal = vec![0x67];
            nal.extend(&data);
            let _ = rewrite_sps(&nal);
            let _ = rewrite_avcc(&data);
            let _ = rewrite_sample_entry(&data);
            let _ = rewrite_in_band(&Bytes::from(data));
        }
    }

    #[test]
    fn frames_without_sps_are_not_copied() {
        let f = Bytes::from(vec![0, 0, 0, 2, 0x65, 0x88]);
        assert_eq!(rewrite_in_band(&f).as_ptr(), f.as_ptr());
        let sps = hex(GST_SPS);
        let mut with = (sps.len() as u32).to_be_bytes().to_vec();
        with.extend(&sps);
        with.extend([0, 0, 0, 2, 0x65, 0x88]);
        let out = rewrite_in_band(&Bytes::from(with.clone()));
        assert!(out.ends_with(&[0, 0, 0, 2, 0x65, 0x88]));
    }
}

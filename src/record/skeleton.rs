//! The skeleton of a segment: every byte of its file that a scan reads (the init segment, and each
//! fragment's `prft`, `moof` and `mdat` header), at the offsets they have in the file, without the frames.
//!
//! A segment moved to the bucket is stored whole as one object, and its skeleton as a second, small one
//! (about 1 % of the segment). Planning a playback of bucket footage scans the skeleton (one GET, cached on
//! the local disk) instead of reading the object's fragment headers with a ranged GET each; the frames are
//! then read from the object by byte range, at the same offsets as in the file.
//!
//! Encoding (big-endian): `VGSKEL1\n`, the file's length (u64), the number of pieces (u32), then each piece
//! as offset (u64), length (u32) and its bytes. Pieces are in file order, do not overlap and lie within the
//! file. A skeleton comes from the bucket, so decoding checks all of that and never trusts a length it has
//! not checked against the input.

use super::scan::{ReadAt, ScanError, Scanned};
use bytes::{Buf, BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 8] = b"VGSKEL1\n";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    file_len: u64,
    /// (offset in the file, bytes), in file order, not overlapping.
    pieces: Vec<(u64, Bytes)>,
}

impl Skeleton {
    /// The skeleton of the file `f` of `file_len` bytes, as `scanned` found it.
    pub fn of(f: &dyn ReadAt, file_len: u64, scanned: &Scanned) -> std::io::Result<Skeleton> {
        let mut spans = vec![(0, scanned.init_len)];
        spans.extend(
            scanned
                .fragments
                .iter()
                .map(|fr| (fr.offset, fr.data_offset)),
        );
        let mut pieces = Vec::with_capacity(spans.len());
        for (from, to) in spans {
            let mut buf = vec![0u8; (to - from) as usize];
            f.read_exact_at(&mut buf, from)?;
            pieces.push((from, Bytes::from(buf)));
        }
        Ok(Skeleton { file_len, pieces })
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    pub fn encode(&self) -> Bytes {
        let size: usize = self.pieces.iter().map(|p| 12 + p.1.len()).sum();
        let mut b = BytesMut::with_capacity(20 + size);
        b.put_slice(MAGIC);
        b.put_u64(self.file_len);
        b.put_u32(self.pieces.len() as u32);
        for (at, bytes) in &self.pieces {
            b.put_u64(*at);
            b.put_u32(bytes.len() as u32);
            b.put_slice(bytes);
        }
        b.freeze()
    }

    pub fn decode(mut b: Bytes) -> Result<Skeleton, ScanError> {
        let bad = |m: &str| ScanError::Format(format!("skeleton: {m}"));
        if b.len() < 20 || &b[..8] != MAGIC {
            return Err(bad("no header"));
        }
        b.advance(8);
        let file_len = b.get_u64();
        let count = b.get_u32() as usize;
        // Each piece takes at least 12 bytes of input: a count larger than that is a lie.
        if count > b.remaining() / 12 {
            return Err(bad("more pieces than bytes"));
        }
        let mut pieces: Vec<(u64, Bytes)> = Vec::with_capacity(count);
        for _ in 0..count {
            if b.remaining() < 12 {
                return Err(bad("cut short"));
            }
            let at = b.get_u64();
            let len = b.get_u32() as usize;
            if len > b.remaining() {
                return Err(bad("piece longer than the input"));
            }
            let after_last = pieces.last().map_or(0, |(o, p)| o + p.len() as u64);
            let end = at
                .checked_add(len as u64)
                .ok_or_else(|| bad("offset overflows"))?;
            if at < after_last || end > file_len {
                return Err(bad("pieces overlap or lie outside the file"));
            }
            pieces.push((at, b.split_to(len)));
        }
        if b.has_remaining() {
            return Err(bad("trailing bytes"));
        }
        Ok(Skeleton { file_len, pieces })
    }
}

impl ReadAt for Skeleton {
    /// Reads bytes held by one piece; anything else (frame data) is an `InvalidData` error.
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        let i = self.pieces.partition_point(|(o, _)| *o <= at);
        let held = i.checked_sub(1).and_then(|i| {
            let (o, p) = &self.pieces[i];
            let from = (at - o) as usize;
            p.get(from..from.checked_add(buf.len())?)
        });
        match held {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bytes {at}+{} are not in the skeleton", buf.len()),
            )),
        }
    }
}

//! The node-to-node stream format: one binary WebSocket message per frame, as the recording node's hub
//! has it, so that a viewing node publishes the very same frames into its own hub (docs/cluster.md).
//!
//! Layout (big-endian): version `1`, flags (bit 0 keyframe, bit 1 parameters follow), media time (i64),
//! wall time in µs (i64), composition offset (u32), run (u64), loss (u16); when flagged, the parameters:
//! generation (u64), width (u32), height (u32), then codec, `avcC`/`hvcC` body and sample entry, each as a
//! u32 length and its bytes; then the frame's data to the end. Parameters are sent with the first frame
//! and whenever they change. Decoding checks every length: the bytes come from another machine.

use crate::hub::{Frame, VideoParams};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::sync::Arc;

const VERSION: u8 = 1;
const KEYFRAME: u8 = 1;
const PARAMS: u8 = 2;
/// Largest codec string, decoder configuration or sample entry accepted.
const MAX_FIELD: usize = 64 * 1024;
/// Largest picture side accepted.
const MAX_SIDE: u32 = 16_384;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame message too short")]
    Short,
    #[error("unknown frame message version {0}")]
    Version(u8),
    #[error("a frame before any stream parameters")]
    NoParams,
    #[error("bad stream parameters: {0}")]
    Params(&'static str),
    #[error("empty frame")]
    Empty,
}

/// Encodes `frame`, with its parameters when `with_params`.
pub fn encode(frame: &Frame, with_params: bool) -> Bytes {
    let p = &frame.params;
    let mut b = BytesMut::with_capacity(64 + frame.data.len());
    b.put_u8(VERSION);
    let flags = if frame.keyframe { KEYFRAME } else { 0 } | if with_params { PARAMS } else { 0 };
    b.put_u8(flags);
    b.put_i64(frame.media_time);
    b.put_i64(frame.wall_time_us);
    b.put_u32(frame.composition_offset);
    b.put_u64(frame.run);
    b.put_u16(frame.loss);
    if with_params {
        b.put_u64(p.generation);
        b.put_u32(p.width);
        b.put_u32(p.height);
        for field in [p.codec.as_bytes(), &p.extra_data[..], &p.sample_entry[..]] {
            b.put_u32(field.len() as u32);
            b.put_slice(field);
        }
    }
    b.put_slice(&frame.data);
    b.freeze()
}

/// Decodes a message; `params` is the stream's parameters so far, replaced when the message has new ones.
pub fn decode(msg: Bytes, params: &mut Option<Arc<VideoParams>>) -> Result<Frame, WireError> {
    let mut b = msg;
    if b.remaining() < 32 {
        return Err(WireError::Short);
    }
    let version = b.get_u8();
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let flags = b.get_u8();
    let (media_time, wall_time_us) = (b.get_i64(), b.get_i64());
    let (composition_offset, run, loss) = (b.get_u32(), b.get_u64(), b.get_u16());
    if flags & PARAMS != 0 {
        *params = Some(Arc::new(decode_params(&mut b)?));
    }
    let params = params.clone().ok_or(WireError::NoParams)?;
    if b.is_empty() {
        return Err(WireError::Empty);
    }
    Ok(Frame {
        data: b,
        media_time,
        composition_offset,
        wall_time_us,
        keyframe: flags & KEYFRAME != 0,
        params,
        run,
        loss,
        audio: None,
    })
}

fn decode_params(b: &mut Bytes) -> Result<VideoParams, WireError> {
    if b.remaining() < 16 {
        return Err(WireError::Short);
    }
    let (generation, width, height) = (b.get_u64(), b.get_u32(), b.get_u32());
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(WireError::Params("picture size"));
    }
    let codec = field(b)?;
    let codec = std::str::from_utf8(&codec)
        .ok()
        .filter(|c| !c.is_empty() && c.bytes().all(|x| x.is_ascii_graphic()))
        .ok_or(WireError::Params("codec"))?
        .to_owned();
    let extra_data = field(b)?;
    let sample_entry = field(b)?;
    if sample_entry.len() < 8 {
        return Err(WireError::Params("sample entry"));
    }
    Ok(VideoParams {
        codec,
        width,
        height,
        extra_data,
        sample_entry,
        generation,
    })
}

fn field(b: &mut Bytes) -> Result<Bytes, WireError> {
    if b.remaining() < 4 {
        return Err(WireError::Short);
    }
    let len = b.get_u32() as usize;
    if len > MAX_FIELD {
        return Err(WireError::Params("field too long"));
    }
    if b.remaining() < len {
        return Err(WireError::Short);
    }
    Ok(b.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(keyframe: bool) -> Frame {
        Frame {
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
            media_time: 3600,
            composition_offset: 0,
            wall_time_us: 1_700_000_000_000_000,
            keyframe,
            params: Arc::new(VideoParams {
                codec: "avc1.64001f".into(),
                width: 1280,
                height: 720,
                extra_data: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
                sample_entry: Bytes::from_static(&[0, 0, 0, 8, b'a', b'v', b'c', b'1']),
                generation: 0,
            }),
            run: 7,
            loss: 0,
            audio: None,
        }
    }

    #[test]
    fn frames_come_back_as_they_went() {
        let mut params = None;
        let first = decode(encode(&frame(true), true), &mut params).expect("first");
        assert!(first.keyframe);
        assert_eq!(first.params.codec, "avc1.64001f");
        let next = decode(encode(&frame(false), false), &mut params).expect("next");
        assert!(Arc::ptr_eq(&first.params, &next.params), "parameters kept");
        assert_eq!(
            (next.media_time, next.run, &next.data[..]),
            (3600, 7, &[0, 0, 0, 2, 0x65, 0x88][..])
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        let mut none = None;
        assert_eq!(
            decode(encode(&frame(false), false), &mut none).err(),
            Some(WireError::NoParams)
        );
        let good = encode(&frame(true), true);
        for cut in 0..good.len() - 6 {
            let mut p = None;
            assert!(decode(good.slice(..cut), &mut p).is_err(), "cut at {cut}");
        }
    }
}

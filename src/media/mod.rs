//! Media tools that work on frames outside the pass-through recording and live paths: today, keyframe
//! snapshots and thumbnails (FFmpeg decode, `image` JPEG encode).
//!
//! Decoding is CPU work that blocks: call these functions from `tokio::task::spawn_blocking`, never on
//! an async worker.

pub mod fmp4;
pub mod ps;
#[allow(unsafe_code)] // FFmpeg calls the binding lacks; see the module's doc
pub mod snapshot;

pub use snapshot::{
    decode_keyframe, encode_jpeg, init, keyframe_to_jpeg, SnapshotError, VideoCodec,
};

#[cfg(test)]
mod tests;

//! Snapshots: one keyframe decoded to an RGB picture, and from there to a JPEG (full size or thumbnail).
//!
//! This is the only place where Vigil decodes video; recording and live streaming pass frames through
//! untouched. Input is what ingest holds in the hub's GOP cache: access units in MP4 framing (NAL units
//! each prefixed by a 4-byte big-endian length, no in-band parameter sets) and the stream's
//! `extra_data`, the body of an `avcC` (H.264) or `hvcC` (H.265) box. FFmpeg's decoders accept exactly
//! that pair: given an `avcC`/`hvcC` as extradata they read the parameter sets from it and parse the
//! packets as length-prefixed NAL units.
//!
//! Invariants:
//! - Input comes from cameras and is untrusted: every malformed input is an [`SnapshotError`], never a
//!   panic, and decoding a bounded input always terminates.
//! - CPU stays small and predictable: the decoder runs single-threaded (callers run us on a blocking
//!   worker, and a burst of snapshot requests must not take every core from ingest), and the frames
//!   after the keyframe are decoded only when the keyframe alone gives no picture.
//! - A picture the decoder reports as damaged (concealed errors) is never returned: a snapshot may be
//!   evidence, and the next keyframe gives a clean one. Only H.264's decoder detects most damage;
//!   FFmpeg 5.1's HEVC decoder has no error concealment and returns a damaged slice as decoded. So
//!   callers pass only keyframes that arrived without loss (retina reports it per frame); this module
//!   cannot be the integrity check.
//!
//! Unsafe: two FFmpeg steps have no safe call in `ffmpeg-next`: giving the decoder its `extradata` (which
//! FFmpeg must own, allocated by `av_mallocz` with its padding) and setting the scaler's colour matrix
//! and range. Each block says what it relies on; nothing else in Vigil's media path is unsafe.
//! - Only a keyframe's picture is returned, never a predicted picture built on missing references.
//! - Every call builds and drops its own decoder and scaler; nothing is shared between calls or threads.

use std::ffi::c_int;
use std::io::Cursor;
use std::sync::Once;

use ffmpeg::codec::{self, threading};
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::util::{color, frame, picture};
use ffmpeg_next as ffmpeg;
use image::RgbImage;

/// Decoded pictures larger than this (in pixels) are refused before FFmpeg allocates them, so that a
/// garbage SPS cannot make us allocate gigabytes. 8192x4608 covers 8K and the largest fisheye cameras.
const MAX_PIXELS: i64 = 8192 * 4608;

/// The video codecs Vigil ingests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    /// Maps an RFC 6381 codec string (as retina reports it, and as MSE wants it) to the codec:
    /// `avc1.*`/`avc3.*` are H.264, `hvc1.*`/`hev1.*` are H.265.
    pub fn from_rfc6381(codec: &str) -> Option<Self> {
        let fourcc = codec.split('.').next()?;
        match fourcc {
            "avc1" | "avc3" => Some(Self::H264),
            "hvc1" | "hev1" => Some(Self::H265),
            _ => None,
        }
    }

    fn codec_id(self) -> codec::Id {
        match self {
            Self::H264 => codec::Id::H264,
            Self::H265 => codec::Id::HEVC,
        }
    }

    /// A cheap shape check of the decoder configuration record. FFmpeg only treats extradata as
    /// `avcC`/`hvcC` (length-prefixed packets) when it starts with configurationVersion 1; anything else
    /// it would read as Annex B start codes and then fail on every packet in confusing ways.
    fn check_extra_data(self, extra_data: &[u8]) -> Result<(), SnapshotError> {
        // avcC: 6 header bytes + SPS count; hvcC: 22 header bytes + array count.
        let min_len = match self {
            Self::H264 => 7,
            Self::H265 => 23,
        };
        if extra_data.len() < min_len || extra_data[0] != 1 {
            return Err(SnapshotError::InvalidInput(match self {
                Self::H264 => "extra_data is not an avcC decoder configuration record",
                Self::H265 => "extra_data is not an hvcC decoder configuration record",
            }));
        }
        Ok(())
    }
}

/// Why no snapshot could be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The input is unusable before decoding starts: no frame data, a malformed decoder configuration,
    /// or a `max_width` of zero.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// This FFmpeg build cannot do what the stream needs (no decoder, an unconvertible pixel format).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// FFmpeg rejected the configuration or the frames.
    #[error("decoding failed: {0}")]
    Decode(String),
    /// The decoder produced pictures, but only ones with concealed (damaged) regions.
    #[error("the keyframe decoded with errors")]
    Corrupt,
    /// The frames decoded only to predicted pictures: they did not start with a keyframe.
    #[error("the frames hold no keyframe")]
    NoKeyframe,
    /// The decoder consumed every frame without producing a picture.
    #[error("the frames produced no picture")]
    NoPicture,
    /// Pixel format conversion or scaling failed.
    #[error("scaling failed: {0}")]
    Scale(String),
    /// JPEG encoding failed.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

/// Initialises FFmpeg once per process and lowers its log level to errors (its warnings about camera
/// streams would otherwise flood stderr). Safe to call any number of times; the decode functions call it.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::warn!(error = %e, "ffmpeg initialisation failed");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    });
}

/// Decodes one keyframe (plus optionally the frames after it, for decoders that need them) to an RGB
/// picture of the stream's full size.
///
/// `frames` are access units in decoding order, starting with the keyframe (a GOP cache's head);
/// `extra_data` is the stream's `avcC`/`hvcC` body. Usually only `frames[0]` is decoded.
pub fn decode_keyframe(
    codec: VideoCodec,
    extra_data: &[u8],
    frames: &[&[u8]],
) -> Result<RgbImage, SnapshotError> {
    let picture = decode_first_picture(codec, extra_data, frames)?;
    to_rgb(&picture, None)
}

/// Like [`decode_keyframe`], encoded as a JPEG with the given quality (1-100, clamped). With
/// `max_width`, a picture wider than that is scaled down to it, keeping the aspect ratio (thumbnails);
/// narrower pictures keep their size.
pub fn keyframe_to_jpeg(
    codec: VideoCodec,
    extra_data: &[u8],
    frames: &[&[u8]],
    max_width: Option<u32>,
    quality: u8,
) -> Result<Vec<u8>, SnapshotError> {
    if max_width == Some(0) {
        return Err(SnapshotError::InvalidInput("max_width must be at least 1"));
    }
    let picture = decode_first_picture(codec, extra_data, frames)?;
    // Scaling in the same swscale pass as the YUV->RGB conversion is cheaper than resizing afterwards.
    let rgb = to_rgb(&picture, max_width)?;
    encode_jpeg(&rgb, quality)
}

/// Encodes an RGB picture as baseline JPEG.
pub fn encode_jpeg(rgb: &RgbImage, quality: u8) -> Result<Vec<u8>, SnapshotError> {
    let mut out = Cursor::new(Vec::with_capacity(rgb.as_raw().len() / 8));
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode_image(rgb)
        .map_err(|e| SnapshotError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

/// Returns the first clean keyframe picture of `frames`.
///
/// A keyframe decodes on its own, so the first pass gives the decoder only `frames[0]` and then
/// end-of-stream, which makes it output the picture at once instead of holding it back for B-frame
/// reordering (neither FFmpeg decoder lets us turn reordering off when the stream declares it). Only if
/// that yields nothing do the following frames get their turn, in a second pass with a fresh decoder.
fn decode_first_picture(
    codec: VideoCodec,
    extra_data: &[u8],
    frames: &[&[u8]],
) -> Result<frame::Video, SnapshotError> {
    init();
    codec.check_extra_data(extra_data)?;
    // An empty packet would read as end-of-stream to FFmpeg: drop those, and refuse if nothing remains.
    let frames: Vec<&[u8]> = frames.iter().copied().filter(|f| !f.is_empty()).collect();
    if frames.is_empty() {
        return Err(SnapshotError::InvalidInput("no frame data"));
    }
    // FFmpeg sizes packets with a C int (plus padding), and ffmpeg-next panics if that allocation fails.
    // No camera sends such a frame, but the input is untrusted.
    if frames.iter().any(|f| f.len() > (c_int::MAX / 2) as usize) {
        return Err(SnapshotError::InvalidInput("frame too large"));
    }
    match decode_pass(codec, extra_data, &frames[..1]) {
        Ok(picture) => Ok(picture),
        // Nothing the following frames could change.
        Err(e @ (SnapshotError::InvalidInput(_) | SnapshotError::Unsupported(_))) => Err(e),
        Err(e) if frames.len() == 1 => Err(e),
        // frames[0] did not decode to a picture on its own; the decoder may need the frames after it
        // (an H.264 recovery point that completes later).
        Err(_) => decode_pass(codec, extra_data, &frames),
    }
}

/// Runs a fresh decoder over `frames`, then end-of-stream, and returns its first clean keyframe picture.
fn decode_pass(
    codec: VideoCodec,
    extra_data: &[u8],
    frames: &[&[u8]],
) -> Result<frame::Video, SnapshotError> {
    let mut decoder = open_decoder(codec, extra_data)?;
    let mut outcome = Outcome::default();
    for data in frames {
        // Packet::copy adds the zeroed padding FFmpeg's bitstream readers may read past the end.
        if let Err(e) = decoder.send_packet(&ffmpeg::Packet::copy(data)) {
            // A broken frame need not be fatal (say, a mangled SEI): keep going and see if a picture
            // comes out; the error is reported only if none does.
            outcome.note_error(e);
        }
        if let Some(picture) = outcome.receive(&mut decoder) {
            return Ok(picture);
        }
    }
    // Decoders hold pictures back for reordering; end-of-stream makes them output what they have.
    if let Err(e) = decoder.send_eof() {
        outcome.note_error(e);
    }
    outcome
        .receive(&mut decoder)
        .ok_or_else(|| outcome.into_error())
}

fn open_decoder(
    codec: VideoCodec,
    extra_data: &[u8],
) -> Result<ffmpeg::decoder::Video, SnapshotError> {
    let decoder_codec = ffmpeg::decoder::find(codec.codec_id())
        .ok_or_else(|| SnapshotError::Unsupported(format!("no {codec:?} decoder in FFmpeg")))?;
    let mut context = codec::Context::new_with_codec(decoder_codec);
    context.set_threading(threading::Config {
        kind: threading::Type::None,
        count: 1,
        ..Default::default()
    });
    let extra_len = c_int::try_from(extra_data.len())
        .map_err(|_| SnapshotError::InvalidInput("extra_data too large"))?;
    // SAFETY: `context` owns a valid AVCodecContext that is not yet opened, and nothing else refers to
    // it. FFmpeg requires extradata to come from av_malloc, with AV_INPUT_BUFFER_PADDING_SIZE zeroed
    // bytes after it (its bit readers over-read); av_mallocz gives both, and we copy exactly
    // `extra_data.len()` bytes into a buffer that is that plus the padding long. Ownership passes to the
    // context, whose avcodec_free_context (run on drop) av_freep's extradata, so it is freed exactly once.
    unsafe {
        let ctx = context.as_mut_ptr();
        let padding = ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffmpeg::ffi::av_mallocz(extra_data.len() + padding) as *mut u8;
        if buf.is_null() {
            return Err(SnapshotError::Decode("out of memory for extradata".into()));
        }
        std::ptr::copy_nonoverlapping(extra_data.as_ptr(), buf, extra_data.len());
        (*ctx).extradata = buf;
        (*ctx).extradata_size = extra_len;
        (*ctx).max_pixels = MAX_PIXELS;
    }
    context
        .decoder()
        .open_as(decoder_codec)
        .and_then(|opened| opened.video())
        .map_err(|e| SnapshotError::Decode(format!("opening the decoder: {e}")))
}

/// What the decode loop has seen so far, to pick the most telling error when no picture comes out.
#[derive(Default)]
struct Outcome {
    first_error: Option<ffmpeg::Error>,
    saw_corrupt: bool,
    saw_predicted: bool,
}

impl Outcome {
    fn note_error(&mut self, e: ffmpeg::Error) {
        self.first_error.get_or_insert(e);
    }

    /// Drains the decoder's ready pictures and returns the first clean one that a keyframe starts.
    fn receive(&mut self, decoder: &mut ffmpeg::decoder::Video) -> Option<frame::Video> {
        // Bounded: every successful receive takes a picture out of the decoder's finite queue.
        loop {
            let mut picture = frame::Video::empty();
            match decoder.receive_frame(&mut picture) {
                Ok(()) if picture.is_corrupt() || picture.has_decode_errors() => {
                    self.saw_corrupt = true
                }
                // Without a keyframe, the HEVC decoder invents grey reference pictures and returns a
                // predicted picture built on them as if it were fine; H.264 may do the same. An intra
                // picture that is not flagged key (an H.264 I-frame without IDR or recovery point) is
                // still a complete picture. Pictures output before the keyframe (HEVC leading
                // pictures) are skipped; the keyframe follows them.
                Ok(()) if !picture.is_key() && picture.kind() != picture::Type::I => {
                    self.saw_predicted = true
                }
                Ok(()) => return Some(picture),
                // EAGAIN: it wants more input. Eof: it is drained.
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::util::error::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => return None,
                Err(e) => {
                    self.note_error(e);
                    return None;
                }
            }
        }
    }

    fn into_error(self) -> SnapshotError {
        if self.saw_corrupt {
            SnapshotError::Corrupt
        } else if self.saw_predicted {
            SnapshotError::NoKeyframe
        } else if let Some(e) = self.first_error {
            SnapshotError::Decode(e.to_string())
        } else {
            SnapshotError::NoPicture
        }
    }
}

/// Converts a decoded picture to packed RGB, scaled down to `max_width` if it is wider.
fn to_rgb(picture: &frame::Video, max_width: Option<u32>) -> Result<RgbImage, SnapshotError> {
    let (width, height) = (picture.width(), picture.height());
    if width == 0 || height == 0 || picture.format() == Pixel::None {
        return Err(SnapshotError::NoPicture);
    }
    let (out_width, out_height) = match max_width {
        Some(max) if max < width => {
            let scaled =
                (u64::from(height) * u64::from(max) + u64::from(width) / 2) / u64::from(width);
            (max, u32::try_from(scaled).unwrap_or(u32::MAX).max(1))
        }
        _ => (width, height),
    };
    // AREA averages all source pixels under each output pixel: the sharpest artefact-free downscale.
    let flags = if out_width < width {
        scaling::Flags::AREA
    } else {
        scaling::Flags::BILINEAR
    };
    let mut scaler = scaling::Context::get(
        picture.format(),
        width,
        height,
        Pixel::RGB24,
        out_width,
        out_height,
        flags,
    )
    .map_err(|e| {
        SnapshotError::Unsupported(format!("converting {:?} to RGB: {e}", picture.format()))
    })?;
    set_colorspace(&mut scaler, picture);
    let mut rgb = frame::Video::empty();
    scaler
        .run(picture, &mut rgb)
        .map_err(|e| SnapshotError::Scale(e.to_string()))?;

    // FFmpeg pads each line for SIMD (stride >= width * 3); copy the visible part of each line.
    let row = out_width as usize * 3;
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let mut pixels = Vec::with_capacity(row * out_height as usize);
    for y in 0..out_height as usize {
        let line = data
            .get(y * stride..y * stride + row)
            .ok_or_else(|| SnapshotError::Scale("scaler output smaller than expected".into()))?;
        pixels.extend_from_slice(line);
    }
    RgbImage::from_raw(out_width, out_height, pixels)
        .ok_or_else(|| SnapshotError::Scale("RGB buffer size mismatch".into()))
}

// Not in ffmpeg-sys-next's bindings; it is part of libswscale, which ffmpeg-sys-next links.
extern "C" {
    fn sws_setColorspaceDetails(
        c: *mut ffmpeg::ffi::SwsContext,
        inv_table: *const c_int,
        src_range: c_int,
        table: *const c_int,
        dst_range: c_int,
        brightness: c_int,
        contrast: c_int,
        saturation: c_int,
    ) -> c_int;
}

/// Tells swscale the picture's YUV matrix and range. Left alone, it assumes BT.601 limited range, which
/// shifts the colours of HD cameras (BT.709) and washes out the full-range ("yuvj") streams many IP
/// cameras send. Pictures that do not say follow the usual convention: BT.709 from 720 lines up.
fn set_colorspace(scaler: &mut scaling::Context, picture: &frame::Video) {
    use ffmpeg::ffi::{SWS_CS_BT2020, SWS_CS_ITU601, SWS_CS_ITU709, SWS_CS_SMPTE240M};
    let matrix = match picture.color_space() {
        color::Space::BT709 => SWS_CS_ITU709,
        color::Space::BT470BG | color::Space::SMPTE170M | color::Space::FCC => SWS_CS_ITU601,
        color::Space::SMPTE240M => SWS_CS_SMPTE240M,
        color::Space::BT2020NCL | color::Space::BT2020CL => SWS_CS_BT2020,
        _ if picture.height() >= 720 => SWS_CS_ITU709,
        _ => SWS_CS_ITU601,
    };
    let full_range = picture.color_range() == color::Range::JPEG
        || matches!(
            picture.format(),
            Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P
        );
    // SAFETY: the scaler pointer is valid and exclusively ours for the duration of the call;
    // sws_getCoefficients returns a pointer to a static 4-entry table, valid for the program's life.
    // Brightness 0, contrast and saturation 1.0 (16.16 fixed point) are the neutral values. On failure
    // (a non-YUV source) swscale keeps its defaults, which is the right fallback.
    unsafe {
        let coefficients = ffmpeg::ffi::sws_getCoefficients(matrix);
        sws_setColorspaceDetails(
            scaler.as_mut_ptr(),
            coefficients,
            c_int::from(full_range),
            coefficients,
            1, // RGB output is always full range
            0,
            1 << 16,
            1 << 16,
        );
    }
}

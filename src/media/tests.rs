//! Snapshot tests over real encoder output: the first three access units of a 640x360 SMPTE bars stream
//! per codec (x264/x265 through GStreamer's mp4mux), with the in-band parameter sets stripped as retina
//! delivers them, plus the `avcC`/`hvcC` body. Each `.samples` file is a sequence of
//! (u32 big-endian length, access unit) records; the first access unit is the keyframe.

use super::snapshot::*;

const H264_AVCC: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h264_640x360.avcc");
const H264_SAMPLES: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h264_640x360.samples");
const H265_HVCC: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h265_640x360.hvcc");
const H265_SAMPLES: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h265_640x360.samples");

fn samples(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        out.push(&data[4..4 + len]);
        data = &data[4 + len..];
    }
    out
}

/// (codec, decoder configuration, access units with the keyframe first)
type Fixture = (VideoCodec, &'static [u8], Vec<&'static [u8]>);

fn fixtures() -> [Fixture; 2] {
    [
        (VideoCodec::H264, H264_AVCC, samples(H264_SAMPLES)),
        (VideoCodec::H265, H265_HVCC, samples(H265_SAMPLES)),
    ]
}

/// A small deterministic PRNG (xorshift64*), so garbage inputs are reproducible without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn near(actual: &image::Rgb<u8>, expected: [u8; 3]) -> bool {
    actual
        .0
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= 12)
}

/// The top band of GStreamer's SMPTE pattern: seven 100% bars (white, yellow, cyan, green, magenta,
/// red, blue). Getting these right also checks the YUV matrix (the 360p fixtures are BT.601).
fn assert_smpte_bars(img: &image::RgbImage) {
    let bars = [
        [255, 255, 255],
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
    ];
    for (i, expected) in bars.into_iter().enumerate() {
        let x = (img.width() * (2 * i as u32 + 1)) / 14;
        let y = img.height() / 3;
        let px = img.get_pixel(x, y);
        assert!(
            near(px, expected),
            "bar {i} at ({x},{y}) is {:?}, expected {expected:?}",
            px.0
        );
    }
}

#[test]
fn codec_from_rfc6381() {
    assert_eq!(
        VideoCodec::from_rfc6381("avc1.640029"),
        Some(VideoCodec::H264)
    );
    assert_eq!(
        VideoCodec::from_rfc6381("avc3.42001f"),
        Some(VideoCodec::H264)
    );
    assert_eq!(
        VideoCodec::from_rfc6381("hvc1.1.6.L153.B0"),
        Some(VideoCodec::H265)
    );
    assert_eq!(
        VideoCodec::from_rfc6381("hev1.1.6.L93.B0"),
        Some(VideoCodec::H265)
    );
    assert_eq!(VideoCodec::from_rfc6381("mp4a.40.2"), None);
    assert_eq!(VideoCodec::from_rfc6381("avc1x"), None);
    assert_eq!(VideoCodec::from_rfc6381(""), None);
}

#[test]
fn decodes_keyframe_to_full_size_picture() {
    for (codec, extra, frames) in fixtures() {
        let img = decode_keyframe(codec, extra, &frames[..1]).unwrap();
        assert_eq!(img.dimensions(), (640, 360), "{codec:?}");
        assert_smpte_bars(&img);
    }
}

#[test]
fn following_frames_do_not_change_the_picture() {
    for (codec, extra, frames) in fixtures() {
        let alone = decode_keyframe(codec, extra, &frames[..1]).unwrap();
        let with_rest = decode_keyframe(codec, extra, &frames).unwrap();
        assert!(
            alone == with_rest,
            "{codec:?}: the keyframe's picture differs when more frames follow"
        );
    }
}

#[test]
fn falls_back_to_the_following_frames() {
    // frames[0] is tried alone first; when it yields nothing, the whole sequence is decoded.
    let junk = Rng(3).bytes(500);
    for (codec, extra, frames) in fixtures() {
        let alone = decode_keyframe(codec, extra, &frames[..1]).unwrap();
        let found = decode_keyframe(codec, extra, &[&junk, frames[0]]).unwrap();
        assert!(alone == found, "{codec:?}: a different picture came out");
    }
}

#[test]
fn jpeg_full_size_and_thumbnail() {
    for (codec, extra, frames) in fixtures() {
        let jpeg = keyframe_to_jpeg(codec, extra, &frames[..1], None, 85).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "{codec:?}: not a JPEG");
        let back = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        assert_eq!(back.dimensions(), (640, 360));
        assert_smpte_bars(&back);

        let thumb = keyframe_to_jpeg(codec, extra, &frames[..1], Some(160), 75).unwrap();
        let thumb = image::load_from_memory_with_format(&thumb, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        assert_eq!(thumb.dimensions(), (160, 90));
        assert_smpte_bars(&thumb);

        // Odd widths round the height; a max_width above the picture's width never upscales.
        let odd = keyframe_to_jpeg(codec, extra, &frames[..1], Some(101), 75).unwrap();
        let odd = image::load_from_memory(&odd).unwrap();
        assert_eq!((odd.width(), odd.height()), (101, 57));
        let same = keyframe_to_jpeg(codec, extra, &frames[..1], Some(4000), 75).unwrap();
        let same = image::load_from_memory(&same).unwrap();
        assert_eq!((same.width(), same.height()), (640, 360));
    }
    let err = keyframe_to_jpeg(
        VideoCodec::H264,
        H264_AVCC,
        &samples(H264_SAMPLES)[..1],
        Some(0),
        75,
    );
    assert!(
        matches!(err, Err(SnapshotError::InvalidInput(_))),
        "{err:?}"
    );
}

#[test]
fn quality_changes_size() {
    let frames = samples(H264_SAMPLES);
    let low = keyframe_to_jpeg(VideoCodec::H264, H264_AVCC, &frames[..1], None, 20).unwrap();
    let high = keyframe_to_jpeg(VideoCodec::H264, H264_AVCC, &frames[..1], None, 95).unwrap();
    assert!(
        low.len() < high.len(),
        "q20 {} bytes, q95 {} bytes",
        low.len(),
        high.len()
    );
}

#[test]
fn missing_input_is_an_error() {
    for (codec, extra, _) in fixtures() {
        assert!(matches!(
            decode_keyframe(codec, extra, &[]),
            Err(SnapshotError::InvalidInput(_))
        ));
        assert!(matches!(
            decode_keyframe(codec, extra, &[&[], &[]]),
            Err(SnapshotError::InvalidInput(_))
        ));
        let key = samples(if codec == VideoCodec::H264 {
            H264_SAMPLES
        } else {
            H265_SAMPLES
        })[0];
        assert!(matches!(
            decode_keyframe(codec, &[], &[key]),
            Err(SnapshotError::InvalidInput(_))
        ));
    }
}

#[test]
fn wrong_configuration_is_an_error() {
    let h264 = samples(H264_SAMPLES);
    let h265 = samples(H265_SAMPLES);
    // Each codec's configuration handed to the other codec's decoder, with either codec's frames.
    for (codec, extra, key) in [
        (VideoCodec::H264, H265_HVCC, h264[0]),
        (VideoCodec::H264, H265_HVCC, h265[0]),
        (VideoCodec::H265, H264_AVCC, h265[0]),
        (VideoCodec::H265, H264_AVCC, h264[0]),
        // Right configuration, frames of the other codec.
        (VideoCodec::H264, H264_AVCC, h265[0]),
        (VideoCodec::H265, H265_HVCC, h264[0]),
    ] {
        let result = decode_keyframe(codec, extra, &[key]).map(|img| img.dimensions());
        assert!(
            result.is_err(),
            "{codec:?} decoded a picture from mismatched input"
        );
    }
    // A configuration record whose parameter sets are garbage.
    let mut rng = Rng(7);
    for (codec, extra, frames) in fixtures() {
        for _ in 0..20 {
            let mut bad = extra.to_vec();
            for b in bad.iter_mut().skip(8) {
                *b = rng.next() as u8;
            }
            assert!(
                decode_keyframe(codec, &bad, &frames[..1]).is_err(),
                "{codec:?}"
            );
        }
    }
}

#[test]
fn truncated_keyframe_is_an_error() {
    for (codec, extra, frames) in fixtures() {
        let key = frames[0];
        // Cut inside the slice data: the NAL length prefix now claims more bytes than there are.
        for cut in [key.len() / 2, key.len() - 100, 5, 3] {
            let result = decode_keyframe(codec, extra, &[&key[..cut]]).map(|img| img.dimensions());
            assert!(
                result.is_err(),
                "{codec:?}: keyframe cut at {cut} of {} gave {result:?}",
                key.len()
            );
        }
    }
}

#[test]
fn frame_without_keyframe_is_an_error() {
    for (codec, extra, frames) in fixtures() {
        let result = decode_keyframe(codec, extra, &frames[1..]).map(|img| img.dimensions());
        assert!(
            result.is_err(),
            "{codec:?}: predicted frames alone decoded to {result:?}"
        );
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x5eed);
    for (codec, extra, frames) in fixtures() {
        for _ in 0..50 {
            // Random bytes as frames.
            let n = (rng.next() % 4000) as usize + 1;
            let junk = rng.bytes(n);
            assert!(decode_keyframe(codec, extra, &[&junk]).is_err());
            assert!(decode_keyframe(codec, &rng.bytes(n % 200), &[&junk]).is_err());

            // Random bytes behind a plausible NAL header and length: reaches the slice decoder.
            let mut forged = frames[0][..6].to_vec();
            forged.extend(rng.bytes(n));
            let len = (forged.len() - 4) as u32;
            forged[..4].copy_from_slice(&len.to_be_bytes());
            let _ = decode_keyframe(codec, extra, &[&forged]);

            // A real keyframe with a few bytes flipped: may decode (damage can go unnoticed), but must
            // not panic, and if it decodes it has the stream's size.
            let mut flipped = frames[0].to_vec();
            for _ in 0..4 {
                let at = (rng.next() as usize) % flipped.len();
                flipped[at] ^= rng.next() as u8 | 1;
            }
            if let Ok(img) = decode_keyframe(codec, extra, &[&flipped]) {
                assert_eq!(img.dimensions(), (640, 360));
            }
            let _ = keyframe_to_jpeg(codec, extra, &[&flipped, frames[1]], Some(64), 50);
        }
    }
}

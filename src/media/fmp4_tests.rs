//! fMP4 output checked by the real tools: ffprobe must read every frame of an init segment plus
//! fragments built from real encoder output (the snapshot fixtures), for H.264 and H.265.

use super::*;

pub(crate) const H264_AVCC: &[u8] =
    include_bytes!("../../tests/fixtures/snapshot_h264_640x360.avcc");
pub(crate) const H264_SAMPLES: &[u8] =
    include_bytes!("../../tests/fixtures/snapshot_h264_640x360.samples");
const H265_HVCC: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h265_640x360.hvcc");
const H265_SAMPLES: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h265_640x360.samples");

/// The frames of a fixture: each preceded by its 4-byte big-endian length.
pub(crate) fn samples(mut data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        out.push(Bytes::copy_from_slice(&data[4..4 + len]));
        data = &data[4 + len..];
    }
    out
}

/// A visual sample entry (`avc1`/`hvc1`) around a decoder configuration box, as retina builds it.
pub(crate) fn sample_entry(
    fourcc: &[u8; 4],
    config_fourcc: &[u8; 4],
    config: &[u8],
    w: u16,
    h: u16,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = BoxWriter::new(&mut buf);
    b.open(fourcc)
        .zeros(6)
        .u16(1)
        .zeros(16)
        .u16(w)
        .u16(h)
        .u32(0x0048_0000)
        .u32(0x0048_0000)
        .u32(0)
        .u16(1)
        .zeros(32)
        .u16(0x0018)
        .u16(0xffff);
    b.open(config_fourcc).bytes(config).close();
    b.close();
    buf
}

pub(crate) fn fixtures() -> Vec<(&'static str, Vec<u8>, Vec<Bytes>)> {
    vec![
        (
            "h264",
            sample_entry(b"avc1", b"avcC", H264_AVCC, 640, 360),
            samples(H264_SAMPLES),
        ),
        (
            "hevc",
            sample_entry(b"hvc1", b"hvcC", H265_HVCC, 640, 360),
            samples(H265_SAMPLES),
        ),
    ]
}

fn ffprobe(path: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,width,height,nb_read_frames,sample_rate,duration:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

#[test]
fn init_and_fragments_play_in_ffprobe() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (codec, entry, frames) in fixtures() {
        let mut file = init_segment(&entry, 640, 360, &InitOptions::default());
        // Two fragments (GOPs) of the same frames; 40 ms each.
        for seq in 0..2u32 {
            let samples: Vec<Sample> = frames
                .iter()
                .enumerate()
                .map(|(i, d)| Sample {
                    data: d.clone(),
                    duration: 3600,
                    keyframe: i == 0,
                    composition_offset: 0,
                })
                .collect();
            let base = u64::from(seq) * 3600 * frames.len() as u64;
            let frag = Fragment::build(
                seq + 1,
                base,
                Some(1_700_000_000_000_000 + i64::from(seq)),
                &samples,
            );
            let mut slices = frag.io_slices();
            write_all_vectored(&mut file, &mut slices).expect("write");
        }
        let path = dir.path().join(format!("{codec}.mp4"));
        std::fs::write(&path, &file).expect("write file");
        let v = ffprobe(&path);
        let s = &v["streams"][0];
        assert_eq!(s["codec_name"], codec, "{v}");
        assert_eq!(s["width"], 640);
        assert_eq!(s["nb_read_frames"], (frames.len() * 2).to_string(), "{v}");
        let dur: f64 = v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .expect("duration");
        assert!(
            (dur - 0.04 * (frames.len() * 2) as f64).abs() < 0.001,
            "{v}"
        );
    }
}

#[test]
fn fragment_parses_back() {
    let (_, _, frames) = fixtures().remove(0);
    let samples: Vec<Sample> = frames
        .iter()
        .enumerate()
        .map(|(i, d)| Sample {
            data: d.clone(),
            duration: 3000 + i as u32,
            keyframe: i == 0,
            composition_offset: 0,
        })
        .collect();
    let frag = Fragment::build(7, 123_456_789_000, Some(1_700_000_000_123_457), &samples);
    let bytes = frag.to_bytes();
    let boxes: Vec<_> = children(&bytes).collect::<Result<_, _>>().expect("boxes");
    assert_eq!(
        boxes.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![*b"prft", *b"moof", *b"mdat"]
    );
    assert_eq!(
        parse_prft(boxes[0].1).expect("prft"),
        (1_700_000_000_123_457, 123_456_789_000)
    );
    let info = parse_moof(boxes[1].1).expect("moof");
    assert_eq!(info.sequence, 7);
    assert_eq!(info.base_media_time, 123_456_789_000);
    let moof_len = 8 + boxes[1].1.len();
    assert_eq!(info.data_offset as usize, moof_len + 8);
    let expect: Vec<_> = samples
        .iter()
        .map(|s| (s.data.len() as u32, s.duration, s.keyframe))
        .collect();
    assert_eq!(info.samples, expect);
    assert_eq!(
        boxes[2].1.len(),
        samples.iter().map(|s| s.data.len()).sum::<usize>()
    );
}

#[test]
fn ntp_round_trips_every_microsecond() {
    for us in [
        0i64,
        1,
        999_999,
        1_700_000_000_000_001,
        1_763_771_234_567_890,
        -5,
    ] {
        assert_eq!(ntp_to_unix_us(unix_us_to_ntp(us)), us);
    }
    for us in 1_700_000_000_000_000i64..1_700_000_000_010_000 {
        assert_eq!(ntp_to_unix_us(unix_us_to_ntp(us)), us);
    }
}

#[test]
fn truncated_input_is_an_error_not_a_panic() {
    let (_, _, frames) = fixtures().remove(0);
    let samples: Vec<Sample> = frames
        .iter()
        .map(|d| Sample {
            data: d.clone(),
            duration: 3600,
            keyframe: true,
            composition_offset: 0,
        })
        .collect();
    let frag = Fragment::build(1, 0, None, &samples);
    let moof = &frag.header[8..frag.header.len() - 8];
    for cut in 0..moof.len() {
        let _ = parse_moof(&moof[..cut]);
        let _ = children(&frag.header[..cut]).count();
    }
}

/// G.711 A-law at 8 kHz beside the H.264 fixture: two fragments of 40 ms frames, each with 320 samples
/// of audio (silence, 0xd5) per frame, read by ffprobe as two streams of the same length, and parsed
/// back with the audio's data right after the video's.
#[test]
fn audio_track_plays_beside_the_video_and_parses_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, entry, frames) = fixtures().remove(0);
    let alaw = g711_sample_entry(b"alaw", 1, 8000);
    let opts = InitOptions {
        udta: None,
        audio: Some(AudioTrack {
            sample_entry: &alaw,
            rate: 8000,
        }),
    };
    let mut file = init_segment(&entry, 640, 360, &opts);
    let n = frames.len() as u64;
    for seq in 0..2u32 {
        let video: Vec<Sample> = frames
            .iter()
            .enumerate()
            .map(|(i, d)| Sample {
                data: d.clone(),
                duration: 3600,
                keyframe: i == 0,
                composition_offset: 0,
            })
            .collect();
        let audio: Vec<Sample> = (0..n)
            .map(|_| Sample {
                data: Bytes::from(vec![0xd5; 320]),
                duration: 320,
                keyframe: true,
                composition_offset: 0,
            })
            .collect();
        let run = AudioRun {
            base_media_time: u64::from(seq) * 320 * n,
            samples: &audio,
        };
        let frag = Fragment::build_av(seq + 1, u64::from(seq) * 3600 * n, None, &video, Some(run));
        let bytes = frag.to_bytes();
        let boxes: Vec<_> = children(&bytes).collect::<Result<_, _>>().expect("boxes");
        let info = parse_moof(boxes[0].1).expect("moof");
        let a = info.audio.expect("audio traf");
        let video_len: u32 = video.iter().map(|s| s.data.len() as u32).sum();
        assert_eq!(a.data_offset, info.data_offset + video_len);
        assert_eq!(a.samples, vec![(320, 320); n as usize]);
        assert_eq!(a.base_media_time, u64::from(seq) * 320 * n);
        file.extend_from_slice(&bytes);
    }
    let moov = children(&file)
        .filter_map(Result::ok)
        .find(|b| &b.0 == b"moov")
        .expect("moov")
        .1;
    let track = audio_of_moov(moov).expect("moov").expect("audio trak");
    assert_eq!((track.sample_entry, track.rate), (alaw.as_slice(), 8000));
    let path = dir.path().join("av.mp4");
    std::fs::write(&path, &file).expect("write file");
    let v = ffprobe(&path);
    assert_eq!(v["streams"][0]["codec_name"], "h264", "{v}");
    assert_eq!(v["streams"][1]["codec_name"], "pcm_alaw", "{v}");
    assert_eq!(v["streams"][1]["sample_rate"], "8000", "{v}");
    let secs = |s: &serde_json::Value| s["duration"].as_str().and_then(|d| d.parse::<f64>().ok());
    assert_eq!(secs(&v["streams"][0]), secs(&v["streams"][1]), "{v}");
}

//! Real encoder output (the snapshot fixtures: three access units per codec) through the PS muxer, RTP
//! packetizer and the platform's receive path: ffprobe reads the PS Vigil writes, and what the platform
//! publishes to the hub is exactly the camera's access units with the right parameters.

use super::media::Depacketizer;
use super::rtp;
use crate::hub::{Hub, StreamKey, StreamKind};
use crate::ingest::annexb::{parameter_sets, to_annex_b};
use crate::ingest::{DecodeTimes, Publisher, StreamStatus};
use crate::media::ps;
use bytes::Bytes;
use std::sync::Mutex;

const H264_AVCC: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h264_640x360.avcc");
const H264_SAMPLES: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h264_640x360.samples");
const H265_HVCC: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h265_640x360.hvcc");
const H265_SAMPLES: &[u8] = include_bytes!("../../tests/fixtures/snapshot_h265_640x360.samples");

fn records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        out.push(&data[4..4 + len]);
        data = &data[4 + len..];
    }
    out
}

/// The access units as a camera's byte stream: parameter sets before the keyframe, start codes.
fn annex_b(sets: &[&[u8]], samples: &[&[u8]]) -> Vec<Vec<u8>> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut out = Vec::new();
            to_annex_b(&mut out, if i == 0 { sets } else { &[] }, s);
            out
        })
        .collect()
}

/// (PS stream type, parameter sets, access units, ffprobe's codec name)
type Fixture = (u8, Vec<&'static [u8]>, Vec<&'static [u8]>, &'static str);

fn fixtures() -> Vec<Fixture> {
    vec![
        (
            ps::STREAM_TYPE_H264,
            parameter_sets(H264_AVCC, false),
            records(H264_SAMPLES),
            "h264",
        ),
        (
            ps::STREAM_TYPE_H265,
            parameter_sets(H265_HVCC, true),
            records(H265_SAMPLES),
            "hevc",
        ),
    ]
}

fn program_stream(stream_type: u8, aus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let t = 90_000 + i as u64 * 3600;
        ps::mux_frame(&mut out, stream_type, t, t, i == 0, au);
    }
    out
}

#[test]
fn ffprobe_reads_the_program_stream_vigil_writes() {
    for (stream_type, sets, samples, codec) in fixtures() {
        let ps = program_stream(stream_type, &annex_b(&sets, &samples));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.ps");
        std::fs::write(&path, &ps).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-f",
                "mpeg",
                "-count_frames",
                "-show_entries",
                "stream=codec_name,nb_read_frames,width",
            ])
            .args(["-of", "csv=p=0"])
            .arg(&path)
            .output()
            .expect("ffprobe");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text.trim(),
            format!("{codec},640,{}", samples.len()),
            "ffprobe: {text}"
        );
    }
}

#[tokio::test]
async fn what_arrives_over_rtp_is_what_the_camera_encoded() {
    for (stream_type, sets, samples, _) in fixtures() {
        let aus = annex_b(&sets, &samples);
        // One more frame so that the last fixture frame is completed by the next PTS.
        let mut with_tail = aus.clone();
        with_tail.push(aus[1].clone());
        let ps = program_stream(stream_type, &with_tail);
        let mut packets = Vec::new();
        let mut seq = 7;
        rtp::packetize(&mut packets, &ps, &mut seq, 0, 42, false);
        let hub = Hub::new(64);
        let stream = hub.stream(StreamKey {
            camera_id: 1,
            kind: StreamKind::Main,
        });
        let (_, mut sub) = stream.subscribe();
        let status = Mutex::new(StreamStatus::connecting());
        let mut publisher = Publisher::new(&stream, &status, "test", 1);
        let mut decode = DecodeTimes::default();
        let mut d = Depacketizer::new(42);
        let mut at = 0;
        for len in rtp::packet_spans(ps.len()) {
            d.packet(
                Bytes::copy_from_slice(&packets[at..at + len]),
                &mut publisher,
                &mut decode,
            );
            at += len;
        }
        assert!(d.fatal.is_none());
        for (i, sample) in samples.iter().enumerate() {
            let got = tokio::time::timeout(std::time::Duration::from_secs(1), sub.recv()).await;
            let Ok(crate::hub::Received::Frame(f)) = got else {
                panic!("frame {i} not published");
            };
            assert!(&f.data[..] == *sample, "frame {i}");
            assert_eq!(f.keyframe, i == 0);
            assert_eq!(f.params.width, 640);
        }
    }
}

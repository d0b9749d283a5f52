//! Fuzz targets (proptest) for the parsers of outside bytes that Vigil owns: the MP4 box reader that
//! reads segment files back (`record::scan`, `media::fmp4`), the skeletons of segments read back from
//! the object storage bucket (`record::skeleton`), the frame messages of another node (`cluster::wire`),
//! the evidence package verifier (`cases::verify`, plain and countersigned), the SPS rewriter of the live
//! path (`live::vui`, fed by cameras), the case event checker (`cases::model::check`, fed by the approval systems), and what
//! GB/T 28181 devices send: SIP (rsipstack's parser and what Vigil reads of a request), MANSCDP XML, RTP
//! and the PS demuxer. Each gets arbitrary bytes and mutations of a valid input; none may panic, hang or
//! claim that a damaged input is intact.
//!
//! `scripts/test` runs them for a bounded number of cases (proptest's default, 256); `scripts/fuzz` sets
//! `PROPTEST_CASES` far higher. (RTP and SDP of WebRTC are parsed by str0m, RTSP by retina; the event
//! batch JSON also goes through the API-level fuzzing of `tests/fuzz.rs`.)

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use vigil::media::fmp4::{self, Fragment, InitOptions, Sample};
use vigil::record::segment::SegmentMeta;

/// A valid segment file: init segment with Vigil's metadata, then three fragments.
fn segment() -> Vec<u8> {
    let meta = SegmentMeta {
        camera_id: 7,
        stream: "main".into(),
        run: 1,
        site_kind: "service_hall".into(),
        codec: "avc1.64001f".into(),
        width: 320,
        height: 240,
        backfill_id: None,
    };
    let entry = {
        let mut b = Vec::new();
        let mut w = fmp4::BoxWriter::new(&mut b);
        w.open(b"avc1")
            .zeros(78)
            .open(b"avcC")
            .bytes(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0])
            .close();
        w.close();
        b
    };
    let udta = meta.to_box();
    // With sound (G.711): the reader walks an audio traf in every fragment too.
    let alaw = fmp4::g711_sample_entry(b"alaw", 1, 8000);
    let mut out = fmp4::init_segment(
        &entry,
        320,
        240,
        &InitOptions {
            udta: Some(&udta),
            audio: Some(fmp4::AudioTrack {
                sample_entry: &alaw,
                rate: 8000,
            }),
        },
    );
    for seq in 1..=3u32 {
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample {
                data: Bytes::from(vec![0x65 + i as u8; 40 + i * 3]),
                duration: 3600,
                keyframe: i == 0,
                composition_offset: 0,
            })
            .collect();
        let audio: Vec<Sample> = (0..10)
            .map(|_| Sample {
                data: Bytes::from(vec![0xd5; 160]),
                duration: 160,
                keyframe: true,
                composition_offset: 0,
            })
            .collect();
        let f = Fragment::build_av(
            seq,
            u64::from(seq - 1) * 18_000,
            Some(1_700_000_000_000_000),
            &samples,
            Some(fmp4::AudioRun {
                base_media_time: u64::from(seq - 1) * 1600,
                samples: &audio,
            }),
        );
        out.extend_from_slice(&f.to_bytes());
    }
    out
}

/// The skeleton of [`segment`], encoded as it is stored in the bucket.
fn skeleton() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.mp4");
    let seg = segment();
    std::fs::write(&path, &seg).expect("write");
    let scanned = vigil::record::scan::scan(&path, None).expect("scan");
    let f = std::fs::File::open(&path).expect("open");
    vigil::record::skeleton::Skeleton::of(&f, seg.len() as u64, &scanned)
        .expect("skeleton")
        .encode()
        .to_vec()
}

/// A node-to-node frame message with its stream parameters (`cluster::wire`).
fn node_message() -> Vec<u8> {
    let params = std::sync::Arc::new(vigil::hub::VideoParams {
        codec: "avc1.64001f".into(),
        width: 1280,
        height: 720,
        extra_data: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff]),
        sample_entry: Bytes::from_static(&[0, 0, 0, 8, b'a', b'v', b'c', b'1']),
        generation: 0,
    });
    let frame = vigil::hub::Frame {
        data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        media_time: 3600,
        composition_offset: 0,
        wall_time_us: 1_700_000_000_000_000,
        keyframe: true,
        params,
        run: 1,
        loss: 0,
        audio: None,
    };
    vigil::cluster::wire::encode(&frame, true).to_vec()
}

/// Flips, overwrites and truncations of `base`.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..12),
        prop::option::of(0..len),
    )
        .prop_map(move |(edits, cut)| {
            let mut b = base.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            if let Some(c) = cut {
                b.truncate(c);
            }
            b
        })
}

fn package(key: &SigningKey) -> Vec<u8> {
    let clip = b"the footage of window A12".to_vec();
    let manifest = serde_json::to_vec(&json!({"format": vigil::cases::package::FORMAT,
        "case": {"case_no": "GZ-1"},
        "files": [{"name": "clips/01.mp4", "bytes": clip.len(), "sha256": hex::encode(Sha256::digest(&clip))}]}))
    .expect("manifest");
    let sig =
        serde_json::to_vec(&vigil::cases::signing::sign_manifest(key, &manifest)).expect("sig");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, bytes) in [
        ("clips/01.mp4", &clip),
        ("manifest.json", &manifest),
        ("manifest.sig", &sig),
    ] {
        zip.start_file(name, opts).expect("entry");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("zip").into_inner()
}

/// A package of `package(city)` countersigned by `province` (`cases::countersign`), as bytes.
fn countersigned(city: &SigningKey, province: &SigningKey) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (held, out) = (dir.path().join("held.zip"), dir.path().join("out.zip"));
    std::fs::write(&held, package(city)).expect("write");
    let city_hex = hex::encode(city.verifying_key().as_bytes());
    let st = vigil::cases::countersign::Statement {
        holder: "赣州",
        holder_key: &city_hex,
        export_id: "e",
        exported_by: "admin",
        exported_at: "2026-12-07T00:00:00Z",
    };
    vigil::cases::countersign::write(&held, &out, &st, province).expect("countersign");
    std::fs::read(&out).expect("read")
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,20}".prop_map(Value::String),
        Just(json!("2026-12-02T08:30:00+08:00")),
        Just(json!("accepted")),
        Just(json!("approval")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event_id".to_string()),
                    Just("case_no".to_string()),
                    Just("case_type".to_string()),
                    Just("kind".to_string()),
                    Just("at".to_string()),
                    Just("site_id".to_string()),
                    Just("position".to_string()),
                    Just("attributes".to_string()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// A skeleton from the bucket never panics the decoder, and what it decodes never panics a scan.
    #[test]
    fn the_skeleton_reader_survives_any_object(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        mutated(skeleton()),
    ]) {
        use vigil::record::skeleton::Skeleton;
        if let Ok(s) = Skeleton::decode(Bytes::from(bytes.clone())) {
            let _ = vigil::record::scan::scan_from(&s, s.file_len(), None);
            prop_assert!(s.encode().len() == bytes.len());
        }
    }

    /// A frame message from another node never panics the decoder; what it accepts has its bounds.
    #[test]
    fn the_node_stream_reader_survives_any_message(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        mutated(node_message()),
    ]) {
        let mut params = None;
        if let Ok(f) = vigil::cluster::wire::decode(Bytes::from(bytes), &mut params) {
            let p = params.expect("a frame has parameters");
            prop_assert!(!f.data.is_empty());
            prop_assert!(p.width > 0 && p.height > 0 && p.width <= 16_384 && p.sample_entry.len() >= 8);
        }
    }

    #[test]
    fn the_segment_reader_survives_any_file(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        mutated(segment()),
    ]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.mp4");
        std::fs::write(&path, &bytes).expect("write");
        let whole = vigil::record::scan::scan(&path, None);
        let _ = vigil::record::scan::scan(&path, Some(bytes.len() as u64 / 2));
        if let Ok(s) = whole {
            prop_assert!(s.complete_len <= s.file_len);
        }
        for (fourcc, body) in fmp4::children(&bytes).take(64).map_while(Result::ok) {
            if &fourcc == b"moof" {
                let _ = fmp4::parse_moof(body);
            }
            if &fourcc == b"prft" {
                let _ = fmp4::parse_prft(body);
            }
        }
    }

    #[test]
    fn the_package_verifier_survives_any_zip_and_never_passes_a_changed_one(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            mutated(package(&SigningKey::from_bytes(&[3u8; 32]))),
        ]
    ) {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let good = package(&key);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.zip");
        std::fs::write(&path, &bytes).expect("write");
        let public = hex::encode(key.verifying_key().as_bytes());
        let r = vigil::cases::verify::verify(&path, Some(&public));
        if r.problems.is_empty() {
            // Passed: then every byte that matters is as signed. The zip's own bookkeeping may differ
            // (a flipped byte in an unused field), the files may not.
            prop_assert_eq!(r.files_checked, 1);
            prop_assert!(bytes.len() >= good.len() / 2);
        }
    }

    #[test]
    fn the_countersigned_package_verifier_never_passes_a_changed_one(
        bytes in mutated(countersigned(&SigningKey::from_bytes(&[3u8; 32]), &SigningKey::from_bytes(&[5u8; 32])))
    ) {
        let hex_of = |k: &SigningKey| hex::encode(k.verifying_key().as_bytes());
        let (city, province) = (SigningKey::from_bytes(&[3u8; 32]), SigningKey::from_bytes(&[5u8; 32]));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.zip");
        std::fs::write(&path, &bytes).expect("write");
        let r = vigil::cases::verify::verify_countersigned(&path, Some(&hex_of(&city)), Some(&hex_of(&province)));
        if r.problems.is_empty() {
            // Passed: both signatures held and the files are as signed.
            prop_assert_eq!(r.files_checked, 1);
            prop_assert_eq!(r.countersigned_by, Some(hex_of(&province)));
            prop_assert_eq!(r.holder.as_deref(), Some("赣州"));
        }
    }

    #[test]
    fn the_sps_rewriter_survives_any_nal(nal in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        mutated(vec![0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00,
                     0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x83, 0x19, 0x60]),
    ]) {
        if let Ok(out) = vigil::live::vui::rewrite_sps(&nal) {
            prop_assert!(!out.is_empty());
        }
    }

    #[test]
    fn the_event_checker_survives_any_json(v in json_value()) {
        let _ = vigil::cases::model::check(&v);
    }
}

/// The seeds are valid inputs, so that their mutations reach past the first check.
#[test]
fn the_seeds_are_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seg = dir.path().join("s.mp4");
    std::fs::write(&seg, segment()).expect("write");
    let s = vigil::record::scan::scan(&seg, None).expect("a valid segment");
    assert_eq!(s.fragments.len(), 3);
    assert_eq!(s.audio.as_ref().map(|a| a.1), Some(8000));
    assert!(s
        .fragments
        .iter()
        .all(|f| f.audio.as_ref().is_some_and(|a| a.samples.len() == 10)));
    // The skeleton scans as the file does: same fragments, same sample tables, no frame read.
    let skel =
        vigil::record::skeleton::Skeleton::decode(Bytes::from(skeleton())).expect("skeleton");
    let from_skel = vigil::record::scan::scan_from(&skel, skel.file_len(), None).expect("scan");
    assert_eq!(from_skel.complete_len, s.complete_len);
    assert_eq!(from_skel.sample_entry, s.sample_entry);
    assert_eq!(from_skel.audio, s.audio);
    assert_eq!(from_skel.fragments.len(), 3);
    for (a, b) in from_skel.fragments.iter().zip(&s.fragments) {
        assert_eq!(
            (a.data_offset, a.data_len, &a.samples),
            (b.data_offset, b.data_len, &b.samples)
        );
    }
    assert!(skel.encode().len() < segment().len());
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let pkg = dir.path().join("p.zip");
    std::fs::write(&pkg, package(&key)).expect("write");
    let r = vigil::cases::verify::verify(&pkg, Some(&hex::encode(key.verifying_key().as_bytes())));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let event = json!({"event_id": "e1", "case_no": "GZ-1", "case_type": "approval", "kind": "accepted",
        "at": "2026-12-02T08:30:00+08:00", "site_id": 1, "position": "A12"});
    assert!(vigil::cases::model::check(&event).is_ok());
}

/// A program stream of three frames as a GB/T 28181 device sends it (keyframe with map, two more).
fn program_stream() -> Vec<u8> {
    use vigil::media::ps;
    let mut out = Vec::new();
    let idr = [
        &[0u8, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e][..],
        &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80],
        &[0, 0, 0, 1, 0x65],
        &[0x88; 300],
    ]
    .concat();
    ps::mux_frame(&mut out, ps::STREAM_TYPE_H264, 3600, 3600, true, &idr);
    ps::mux_frame(
        &mut out,
        ps::STREAM_TYPE_H264,
        7200,
        7200,
        false,
        &[0, 0, 1, 0x41, 0x9a, 0x11],
    );
    ps::mux_audio(&mut out, 7200, &[0xd5; 160]);
    ps::mux_frame(
        &mut out,
        ps::STREAM_TYPE_H264,
        10800,
        10800,
        false,
        &[0, 0, 1, 0x41, 0x9a, 0x22],
    );
    out
}

/// A catalog page as devices send it, GB2312-encoded.
fn catalog_page() -> Vec<u8> {
    let text = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Response><CmdType>Catalog</CmdType><SN>1</SN>\
        <DeviceID>34020000001180000001</DeviceID><SumNum>2</SumNum><DeviceList Num=\"1\"><Item>\
        <DeviceID>34020000001310000001</DeviceID><Name>评标室 &amp; 大厅</Name><Status>ON</Status></Item>\
        </DeviceList></Response>";
    encoding_rs::GB18030.encode(text).0.into_owned()
}

fn register() -> Vec<u8> {
    b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1234\r\n\
From: <sip:34020000001180000001@3402000000>;tag=abc\r\n\
To: <sip:34020000001180000001@3402000000>\r\n\
Call-ID: 1@192.168.1.64\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:34020000001180000001@192.168.1.64:5060>\r\nMax-Forwards: 70\r\n\
Authorization: Digest username=\"34020000001180000001\", realm=\"3402000000\", nonce=\"n\", uri=\"sip:34020000002000000001@3402000000\", response=\"00\", algorithm=MD5\r\n\
Expires: 3600\r\nContent-Length: 0\r\n\r\n"
        .to_vec()
}

proptest! {
    /// PS from a device: any bytes, cut anywhere, never panic the demuxer or grow it past its bound;
    /// an intact stream split at any points gives the same packets as in one piece.
    #[test]
    fn the_ps_demuxer_survives_any_stream_and_any_split(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..4096), mutated(program_stream())],
        cuts in prop::collection::vec(1usize..700, 0..12),
    ) {
        use vigil::media::ps::{Demuxer, Frames};
        let feed = |data: &[u8], cuts: &[usize]| {
            let mut d = Demuxer::new();
            let mut frames = Frames::new(1 << 20);
            let mut out = Vec::new();
            let mut rest = data;
            for &c in cuts.iter().chain(std::iter::repeat(&usize::MAX)) {
                if rest.is_empty() { break; }
                let (a, b) = rest.split_at(c.min(rest.len()));
                for pes in d.push(a) {
                    if pes.is_video() { if let Some(u) = frames.push(pes.clone()) { out.push(u.data.to_vec()); } }
                }
                rest = b;
            }
            out
        };
        let whole = feed(&bytes, &[]);
        prop_assert_eq!(&whole, &feed(&bytes, &cuts));
        if bytes == program_stream() {
            prop_assert_eq!(whole.len(), 2, "the first two frames complete (the third waits for a next PTS)");
        }
    }

    #[test]
    fn the_rtp_reader_survives_any_packet(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = vigil::gb28181::rtp::parse(Bytes::from(bytes.clone())) {
            prop_assert!(p.payload.len() + 12 <= bytes.len());
        }
    }

    /// MANSCDP bodies from devices: any bytes or a damaged catalog page never panic the reader.
    #[test]
    fn the_manscdp_reader_survives_any_body(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1024),
        mutated(catalog_page()),
    ]) {
        if let Ok(root) = vigil::gb28181::xml::parse(&bytes) {
            let _ = root.child("DeviceList").map(|l| l.children_named("Item").count());
        }
    }

    /// SIP from devices, through rsipstack's parser and what Vigil reads of a request.
    #[test]
    fn the_sip_reader_survives_any_message(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1024),
        mutated(register()),
    ]) {
        if let Ok(rsipstack::sip::SipMessage::Request(req)) = rsipstack::sip::SipMessage::try_from(bytes) {
            let _ = vigil::gb28181::sip::peer_addr(&req);
            let _ = vigil::gb28181::sip::from_user(&req);
        }
    }

    /// MANSRTSP bodies of INFO requests (what a superior or a device may send): never a panic, and a
    /// scale or seek that is read is within its bounds.
    #[test]
    fn the_mansrtsp_reader_survives_any_body(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        mutated(b"PLAY MANSRTSP/1.0\r\nCSeq: 2\r\nScale: 4.0\r\nRange: npt=12.5-\r\n\r\n".to_vec()),
    ]) {
        use vigil::gb28181::mansrtsp::{self, Command};
        if let Ok(Command::Play { scale, from_s }) = mansrtsp::parse(&bytes) {
            prop_assert!(scale.is_none_or(|s| (mansrtsp::MIN_SCALE..=mansrtsp::MAX_SCALE).contains(&s)));
            prop_assert!(from_s.is_none_or(|f| f.is_finite() && f >= 0.0));
        }
    }

    /// PTZCmd (what a platform sends a device, read by the simulated device): any text is a command whose
    /// values are in range, or an error; a command read back writes the same bytes.
    #[test]
    fn the_ptz_command_reader_survives_any_text(text in prop_oneof![
        "[0-9A-Fa-f]{16}",
        ".{0,40}",
        Just("A50F0100000000B5".to_owned()),
    ]) {
        use vigil::gb28181::ptz::{self, Ptz};
        if let Ok(cmd) = ptz::parse(&text) {
            if let Ptz::Move { pan, tilt, zoom } = cmd {
                prop_assert!([pan, tilt, zoom].iter().all(|v| (-1.0..=1.0).contains(v)));
            }
            prop_assert_eq!(ptz::parse(&ptz::to_hex(&ptz::encode(&cmd, 1))), Ok(cmd));
        }
    }

    /// WS-Discovery answers and SOAP bodies (what any host on a site's network may send): a damaged
    /// answer is ignored or set aside, never a panic, and an accepted one points only to its sender.
    #[test]
    fn onvif_answers_survive_any_bytes(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        mutated(vigil::onvif::discovery::probe_matches("urn:uuid:1", "urn:uuid:d", "http://192.0.2.7/onvif/device_service")),
    ]) {
        let from: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        if let Some(Ok(found)) = vigil::onvif::discovery::read_answer(&bytes, from, "urn:uuid:1") {
            prop_assert!(found.xaddrs.iter().all(|u| u.host_str() == Some("192.0.2.7")));
        }
        if let Ok(env) = vigil::xml::parse(&bytes) {
            let _ = vigil::onvif::soap::body_of(&env);
        }
    }

    /// RecordInfo answers: a damaged page never panics the reader of records.
    #[test]
    fn the_record_info_reader_survives_any_page(bytes in mutated(record_info_page())) {
        if let Ok(page) = vigil::gb28181::xml::parse(&bytes) {
            let _ = vigil::gb28181::playback::records_of(&page, 480);
        }
    }
}

fn record_info_page() -> Vec<u8> {
    b"<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response><CmdType>RecordInfo</CmdType><SN>3</SN>\
      <DeviceID>34020000001310000001</DeviceID><SumNum>1</SumNum><RecordList Num=\"1\"><Item>\
      <StartTime>2026-03-01T09:00:00</StartTime><EndTime>2026-03-01T10:00:00</EndTime><Type>time</Type>\
      </Item></RecordList></Response>"
        .to_vec()
}

#[test]
fn the_record_info_seed_is_one_hour() {
    let page = vigil::gb28181::xml::parse(&record_info_page()).expect("parses");
    let (n, records) = vigil::gb28181::playback::records_of(&page, 480);
    assert_eq!((n, records.len()), (1, 1));
    assert_eq!(records[0].end_ms - records[0].start_ms, 3_600_000);
}

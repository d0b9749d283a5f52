use super::*;

fn params() -> Arc<VideoParams> {
    Arc::new(VideoParams {
        codec: "avc1.64001f".into(),
        width: 640,
        height: 360,
        extra_data: Bytes::new(),
        sample_entry: Bytes::new(),
        generation: 0,
    })
}

fn frame(i: i64, keyframe: bool, params: &Arc<VideoParams>) -> Arc<Frame> {
    Arc::new(Frame {
        data: Bytes::from(vec![0u8; 16]),
        media_time: i * 3600,
        composition_offset: 0,
        wall_time_us: i * 40_000,
        keyframe,
        params: params.clone(),
        run: 1,
        loss: 0,
        audio: None,
    })
}

#[tokio::test]
async fn new_subscriber_gets_cached_gop_then_live_without_gap() {
    let hub = Hub::new(16);
    let s = hub.stream(StreamKey {
        camera_id: 1,
        kind: StreamKind::Main,
    });
    let p = params();
    s.publish(frame(0, false, &p)); // before any keyframe: not cached
    for i in 1..5 {
        s.publish(frame(i, i == 1, &p));
    }
    let (gop, mut sub) = s.subscribe();
    assert_eq!(
        gop.iter().map(|f| f.media_time / 3600).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(gop[0].keyframe);
    s.publish(frame(5, false, &p));
    match sub.recv().await {
        Received::Frame(f) => assert_eq!(f.media_time / 3600, 5),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn slow_subscriber_skips_to_next_keyframe_and_never_blocks_publisher() {
    let hub = Hub::new(4);
    let s = hub.stream(StreamKey {
        camera_id: 1,
        kind: StreamKind::Main,
    });
    let p = params();
    let (_, mut slow) = s.subscribe();
    // 100 frames, a keyframe every 10: the publisher never waits for the reader that does not read.
    for i in 0..100 {
        s.publish(frame(i, i % 10 == 0, &p));
    }
    // The ring holds frames 96..99, none a keyframe: the reader learns of the lag and waits for one.
    s.publish(frame(100, true, &p));
    match slow.recv().await {
        Received::Skipped { skipped } => assert!(skipped >= 96, "skipped {skipped}"),
        other => panic!("unexpected {other:?}"),
    }
    match slow.recv().await {
        Received::Frame(f) => {
            assert!(f.keyframe);
            assert_eq!(f.media_time / 3600, 100);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn removed_stream_closes_subscribers() {
    let hub = Hub::new(4);
    let key = StreamKey {
        camera_id: 7,
        kind: StreamKind::Sub,
    };
    let (_, mut sub) = hub.stream(key).subscribe();
    hub.remove_camera(7);
    assert!(matches!(sub.recv().await, Received::Closed));
}

#[test]
fn gop_cache_is_bounded_without_keyframes() {
    let hub = Hub::new(4);
    let s = hub.stream(StreamKey {
        camera_id: 1,
        kind: StreamKind::Main,
    });
    let p = params();
    // Frames of 1 MiB: a keyframe-less stream passes the byte budget after a few of them.
    let big = |i: i64, keyframe: bool| {
        let mut f = (*frame(i, keyframe, &p)).clone();
        f.data = Bytes::from(vec![0u8; 1 << 20]);
        Arc::new(f)
    };
    s.publish(big(0, true));
    for i in 1..40 {
        s.publish(big(i, false));
        let held: usize = s.current_gop().iter().map(|f| f.data.len()).sum();
        assert!(held <= GOP_CACHE_BYTES, "{held}");
    }
}

/// A `recv` cancelled while it skips after a lag (as a `select!` branch that lost) keeps its place: the
/// next `recv` still reports the lag and hands out the keyframe, never a frame after the hole.
#[tokio::test]
async fn a_cancelled_recv_after_a_lag_never_hands_out_a_frame_after_the_hole() {
    let hub = Hub::new(4);
    let s = hub.stream(StreamKey {
        camera_id: 1,
        kind: StreamKind::Main,
    });
    let p = params();
    let (_, mut sub) = s.subscribe();
    for i in 0..10 {
        s.publish(frame(i, i == 0, &p)); // the ring holds 4: the subscriber lags
    }
    // The receiver drains the ring's P-frames looking for a keyframe, finds none, and is cancelled.
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(50), sub.recv()).await;
    assert!(
        cancelled.is_err(),
        "no keyframe yet: still skipping when cancelled"
    );
    s.publish(frame(10, false, &p));
    s.publish(frame(11, false, &p));
    s.publish(frame(12, true, &p));
    s.publish(frame(13, false, &p));
    match sub.recv().await {
        Received::Skipped { skipped } => assert!(skipped >= 8, "{skipped}"),
        other => panic!("the lag is reported first, got {other:?}"),
    }
    match sub.recv().await {
        Received::Frame(f) => {
            assert!(f.keyframe, "resumes at the keyframe");
            assert_eq!(f.media_time / 3600, 12);
        }
        other => panic!("unexpected {other:?}"),
    }
    match sub.recv().await {
        Received::Frame(f) => assert_eq!(f.media_time / 3600, 13),
        other => panic!("unexpected {other:?}"),
    }
}

pub(crate) fn aac() -> Arc<AudioParams> {
    Arc::new(AudioParams {
        codec: AudioCodec::Aac,
        sample_rate: 16_000,
        channels: 1,
        rfc6381: Some("mp4a.40.2".into()),
        sample_entry: Bytes::from_static(b"\0\0\0\x08mp4a"),
        config: Bytes::from_static(&[0x14, 0x08]),
    })
}

pub(crate) fn audio_frame(i: i64, video: &Arc<VideoParams>, a: &Arc<AudioParams>) -> Arc<Frame> {
    let mut f = (*frame(i, false, video)).clone();
    f.data = Bytes::from_static(&[0x21, 0x10, 0x04]);
    f.audio = Some(a.clone());
    Arc::new(f)
}

/// Audio rides in the main stream's ring: a video consumer (snapshots, the GB/T 28181 sender, the
/// cluster relay) never sees it, from the cache or live; an audio-and-video consumer sees both in order.
#[tokio::test]
async fn only_consumers_that_ask_see_the_audio() {
    let hub = Hub::new(16);
    let s = hub.stream(StreamKey::main(1));
    let (p, a) = (params(), aac());
    s.publish(frame(1, true, &p));
    s.publish(audio_frame(1, &p, &a));
    s.publish(frame(2, false, &p));
    let (gop, mut video) = s.subscribe();
    let (gop_av, mut av) = s.subscribe_av();
    assert_eq!(gop.len(), 2);
    assert!(gop.iter().all(|f| !f.is_audio()));
    assert_eq!(gop_av.len(), 3);
    assert!(gop_av[1].is_audio());
    assert!(s.current_gop().iter().all(|f| !f.is_audio()));
    s.publish(audio_frame(3, &p, &a));
    s.publish(frame(3, false, &p));
    match video.recv().await {
        Received::Frame(f) => assert!(!f.is_audio() && f.media_time == 3 * 3600),
        other => panic!("{other:?}"),
    }
    match av.recv().await {
        Received::Frame(f) => assert!(f.is_audio()),
        other => panic!("{other:?}"),
    }
}

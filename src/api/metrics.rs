//! `/metrics`: the Prometheus/OpenMetrics text of the streams and recorders the caller may see, made per
//! request from the live counters (a regional admin sees the cameras of their regions only).

use super::error::ApiError;
use super::AppState;
use crate::auth::{Principal, Scope};
use crate::hub::StreamKey;
use crate::ingest::{StreamState, StreamStatus};
use crate::record::RecCounts;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stream {
    camera: i64,
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamInState {
    camera: i64,
    stream: String,
    state: String,
}

const STATES: [StreamState; 6] = [
    StreamState::Connecting,
    StreamState::Online,
    StreamState::Offline,
    StreamState::AuthFailed,
    StreamState::Unsupported,
    StreamState::Idle,
];

type Statuses = Vec<(crate::hub::StreamKey, StreamStatus)>;
/// A series: its name, its help, and how a reading gives its value.
type Series<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// The streams and recorders the caller may see.
async fn visible(
    s: &AppState,
    p: &Principal,
) -> Result<(Statuses, Vec<(StreamKey, RecCounts)>), ApiError> {
    let mut statuses = s.ingest.all_statuses();
    let mut rec = s.recorders.statuses();
    if p.scope != Scope::All {
        let visible: std::collections::HashSet<i64> = crate::db::cameras::list(&s.pool)
            .await?
            .into_iter()
            .filter(|c| p.scope.allows(&c.region_code))
            .map(|c| c.id)
            .collect();
        statuses.retain(|(k, _)| visible.contains(&k.camera_id));
        rec.retain(|(k, _)| visible.contains(&k.camera_id));
    }
    Ok((statuses, rec))
}

fn register_streams(reg: &mut Registry, statuses: &Statuses) {
    let state = Family::<StreamInState, Gauge>::default();
    reg.register(
        "vigil_stream_state",
        "1 for the state each camera stream is in",
        state.clone(),
    );
    let counters: [Series<StreamStatus, u64>; 3] = [
        ("vigil_stream_frames", "Frames received", |s| s.frames),
        ("vigil_stream_bytes", "Bytes of video received", |s| s.bytes),
        (
            "vigil_stream_connect_attempts",
            "Connection attempts",
            |s| s.attempts,
        ),
    ];
    let gauges: [Series<StreamStatus, f64>; 2] = [
        (
            "vigil_stream_fps",
            "Frame rate measured over the last two seconds",
            |s| s.fps.unwrap_or(0.0),
        ),
        (
            "vigil_stream_bitrate_bps",
            "Bitrate measured over the last two seconds",
            |s| s.bitrate_bps.unwrap_or(0) as f64,
        ),
    ];
    let counters = counters.map(|(name, help, get)| {
        let f = Family::<Stream, Counter>::default();
        reg.register(name, help, f.clone());
        (f, get)
    });
    let gauges = gauges.map(|(name, help, get)| {
        let f = Family::<Stream, Gauge<f64, AtomicU64>>::default();
        reg.register(name, help, f.clone());
        (f, get)
    });
    for (k, st) in statuses {
        let labels = Stream {
            camera: k.camera_id,
            stream: k.kind.as_str().to_owned(),
        };
        for s in STATES {
            let l = StreamInState {
                camera: k.camera_id,
                stream: labels.stream.clone(),
                state: s.as_str().to_owned(),
            };
            state.get_or_create(&l).set(i64::from(st.state == s));
        }
        for (f, get) in &counters {
            f.get_or_create(&labels).inc_by(get(st));
        }
        for (f, get) in &gauges {
            f.get_or_create(&labels).set(get(st));
        }
    }
}

fn register_recorders(reg: &mut Registry, rec: &[(StreamKey, RecCounts)], disk_alarm: bool) {
    let counters: [Series<RecCounts, u64>; 5] = [
        (
            "vigil_record_gops_written",
            "GOPs (fragments) written to disk",
            |c| c.gops_written,
        ),
        (
            "vigil_record_gops_dropped",
            "GOPs dropped because the disk writer fell behind",
            |c| c.gops_dropped,
        ),
        (
            "vigil_record_frames_skipped",
            "Frames the recorder lost because it fell behind the hub",
            |c| c.frames_skipped,
        ),
        (
            "vigil_record_bytes_written",
            "Bytes of fragments written",
            |c| c.bytes_written,
        ),
        ("vigil_record_errors", "Write, fsync or index errors", |c| {
            c.errors
        }),
    ];
    for (name, help, get) in counters {
        let f = Family::<Stream, Counter>::default();
        reg.register(name, help, f.clone());
        for (k, c) in rec {
            let labels = Stream {
                camera: k.camera_id,
                stream: k.kind.as_str().to_owned(),
            };
            f.get_or_create(&labels).inc_by(get(c));
        }
    }
    let alarm = Gauge::<i64>::default();
    alarm.set(i64::from(disk_alarm));
    reg.register(
        "vigil_record_disk_alarm",
        "1 while the disk is full or over budget with footage that may not go",
        alarm,
    );
}

/// The object storage tier (none without `[storage.object]`).
fn register_tier(reg: &mut Registry, tier: Option<&crate::record::tier::Tier>) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(t) = tier else {
        return;
    };
    let st = &t.status;
    let counters = [
        (
            "vigil_storage_moved_segments",
            "Segments moved to the bucket",
            st.moved.load(Relaxed),
        ),
        (
            "vigil_storage_moved_bytes",
            "Bytes moved to the bucket",
            st.moved_bytes.load(Relaxed),
        ),
        (
            "vigil_storage_failures",
            "Passes of the mover that failed",
            st.failures.load(Relaxed),
        ),
    ];
    for (name, help, v) in counters {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        reg.register(name, help, c);
    }
    let gauges = [
        (
            "vigil_storage_backlog_segments",
            "Segments due to move that are still on the local disk",
            st.backlog.load(Relaxed),
        ),
        (
            "vigil_storage_backlog_bytes",
            "Bytes due to move that are still on the local disk",
            st.backlog_bytes.load(Relaxed),
        ),
        (
            "vigil_storage_alarm",
            "1 while the bucket cannot be reached (footage stays local)",
            i64::from(st.alarm.load(Relaxed)),
        ),
    ];
    for (name, help, v) in gauges {
        let g = Gauge::<i64>::default();
        g.set(v);
        reg.register(name, help, g);
    }
}

pub async fn metrics(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<impl IntoResponse, ApiError> {
    let (statuses, rec) = visible(&s, &p).await?;
    let mut reg = Registry::default();
    let uptime = Gauge::<i64>::default();
    uptime.set(s.started.elapsed().as_secs() as i64);
    reg.register(
        "vigil_uptime_seconds",
        "Seconds since the server started",
        uptime,
    );
    register_streams(&mut reg, &statuses);
    register_recorders(&mut reg, &rec, s.recorders.disk_full());
    register_tier(&mut reg, s.recorders.shared().tier.as_deref());
    let mut out = String::with_capacity(256 + statuses.len() * 512);
    encode(&mut out, &reg).map_err(ApiError::internal)?;
    let mime = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, mime)], out))
}

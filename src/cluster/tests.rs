//! Leases and fencing on a real SQLite file (the same statements run on PostgreSQL in tests/cluster.rs).

use super::store;
use crate::db::{now_ms, DbError, Pool};
use crate::record::index::{self, Fence, SegmentRow};
use crate::record::segment::SegmentStats;

async fn one_camera() -> (tempfile::TempDir, Pool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let pool = crate::db::connect(&url).await.expect("db");
    for sql in [
        "INSERT INTO regions (code, name, level, created_at) VALUES ('360000', 'JX', 'province', 0)",
        "INSERT INTO sites (id, name, kind, region_code, created_at) VALUES (1, 'Hall', 'service_hall', '360000', 0)",
        "INSERT INTO cameras (id, site_id, name, main_url, created_at, updated_at)
         VALUES (1, 1, 'Cam', 'rtsp://127.0.0.1/cam1', 0, 0)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    (dir, pool)
}

fn row(node: &str, start_us: i64, n: u32) -> SegmentRow {
    SegmentRow {
        id: 0,
        camera_id: 1,
        stream: "main".into(),
        run: 1,
        site_kind: "service_hall".into(),
        start_us,
        end_us: start_us + 1_000_000,
        duration_90k: 90_000,
        frames: 25,
        bytes: 1000,
        codec: "avc1.640029".into(),
        width: 640,
        height: 360,
        keyframes: Vec::new(),
        path: format!("recordings/1/{node}-{n}.mp4"),
        state: "open".into(),
        stored: "local".into(),
        node: Some(node.into()),
        backfill_id: None,
    }
}

fn fence(node: &str, epoch: i64) -> Fence {
    Fence {
        node: node.into(),
        epoch,
        since_us: 0,
    }
}

#[tokio::test]
async fn a_write_under_a_lease_that_moved_on_is_refused() {
    let (_dir, pool) = one_camera().await;
    let now = now_ms();
    assert_eq!(
        store::take(&pool, 1, "a", now, now + 3000)
            .await
            .expect("take"),
        Some(1)
    );
    assert_eq!(
        store::take(&pool, 1, "b", now, now + 3000)
            .await
            .expect("take"),
        None,
        "a live lease is not taken"
    );
    let id = index::insert(&pool, &row("a", 1_000_000, 1), Some(&fence("a", 1)))
        .await
        .expect("a writes under its lease");

    // a pauses; its lease expires; b takes the camera (epoch 2).
    let later = now + 4000;
    assert_eq!(
        store::take(&pool, 1, "b", later, later + 3000)
            .await
            .expect("take"),
        Some(2)
    );
    store::renew(&pool, "a", later + 3000).await.expect("renew");
    assert!(
        store::held(&pool, "a").await.expect("held").is_empty(),
        "a's renewal takes nothing back"
    );
    assert_eq!(store::held(&pool, "b").await.expect("held"), vec![(1, 2)]);

    // a wakes: neither its next fragment nor a new segment is indexed.
    let mut stats = SegmentStats::new(1000);
    stats.frames = 50;
    stats.end_us = 9_000_000;
    let grown =
        index::update_stats(&pool, id, 1_000_000, &stats, "open", Some(&fence("a", 1))).await;
    assert!(matches!(grown, Err(DbError::Stale(_))), "{grown:?}");
    let new = index::insert(&pool, &row("a", 8_000_000, 2), Some(&fence("a", 1))).await;
    assert!(matches!(new, Err(DbError::Stale(_))), "{new:?}");
    index::complete_as_is(&pool, id).await.expect("close as is");
    let closed = index::get(&pool, id).await.expect("row");
    assert_eq!(
        (closed.state.as_str(), closed.end_us, closed.frames),
        ("complete", 2_000_000, 25)
    );
    index::insert(&pool, &row("b", 5_000_000, 3), Some(&fence("b", 2)))
        .await
        .expect("b writes under its lease");

    // A lease given back keeps its epoch: the next holder's is higher.
    store::release(&pool, 1, "b").await.expect("release");
    assert_eq!(
        store::take(&pool, 1, "a", later, later + 3000)
            .await
            .expect("take"),
        Some(3)
    );
    let rows = index::all(&pool).await.expect("rows");
    let nodes: Vec<_> = rows.iter().map(|r| r.node.as_deref()).collect();
    assert_eq!(nodes, vec![Some("a"), Some("b")]);
}

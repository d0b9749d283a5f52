//! `vigil serve`: opens the database, loads the secrets key (and seals camera passwords still stored in
//! plaintext), seeds it, starts a session for every camera, and serves the API (plain HTTP, or HTTPS with
//! rustls when `[tls]` is set) until Ctrl-C or SIGTERM.

use crate::api::{self, AppState};
use crate::auth::secrets::Secrets;
use crate::auth::throttle::AddressThrottle;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::hub::Hub;
use crate::ingest::Supervisor;
use crate::live::Live;
use crate::record::{self, Recorders};
use crate::{db, seed};
use anyhow::Context;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A server bound to its address, ready to run.
pub struct Server {
    pub state: AppState,
    listener: TcpListener,
    /// Stops the background work that is not a camera's (edge retrieval).
    background: tokio_util::sync::CancellationToken,
}

impl Server {
    pub async fn bind(cfg: Config) -> anyhow::Result<Server> {
        crate::private::prepare_data_dir(&cfg.data_dir)
            .with_context(|| format!("preparing data directory {}", cfg.data_dir.display()))?;
        let pool = db::connect(&cfg.database_url())
            .await
            .context("opening the database")?;
        let secrets = load_secrets(&cfg, &pool).await?;
        let audit = crate::audit::Log::open(pool.clone(), &cfg.data_dir)
            .await
            .context("loading the audit key")?;
        seed::apply(&pool, &cfg.seed)
            .await
            .context("seeding from the configuration")?;
        // Recovery first: the open segments of the last run are closed before anything records again.
        let node = cfg.cluster.node_name.clone();
        record::recovery::recover(&pool, &cfg.data_dir, node.as_deref())
            .await
            .context("recovering recordings")?;
        let hub = Arc::new(Hub::new(cfg.ingest.broadcast_capacity));
        let recorders = Recorders::new(
            hub.clone(),
            pool.clone(),
            cfg.record.clone(),
            cfg.data_dir.clone(),
            object_tier(&cfg)?,
            node,
        );
        let live = Live::new(hub.clone(), cfg.live.clone());
        let ingest = Arc::new(Supervisor::new(hub, cfg.ingest.clone()));
        let secrets = Arc::new(secrets);
        let runner = Arc::new(api::CameraRunner {
            recorders: recorders.clone(),
            ingest: ingest.clone(),
            secrets: secrets.clone(),
        });
        // Before the cameras start: gb28181:// cameras need their runner registered with ingest.
        let footage = recorders.shared().footage.clone();
        let gb = start_gb28181(&cfg, &pool, &ingest, &audit, footage).await?;
        let cluster = start_cameras(&cfg, &pool, runner).await?;
        let background = start_backfill(&cfg, &pool, &recorders, gb.clone(), &audit, &secrets);
        let login_throttle = Arc::new(AddressThrottle::new(
            cfg.auth.login_address_max_failures,
            cfg.auth.login_address_window_seconds,
        ));
        let cases = start_cases(&cfg, &pool, &recorders, &ingest).await?;
        // Listen last: a server that answers on its port has passed every start-up step.
        let listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.listen))?;
        let ptz =
            crate::edge::ptz::Controller::new(gb.clone(), pool.clone(), live_source(&secrets));
        let federation = start_federation(&cfg, &pool, &secrets, &ingest, &background);
        let recheck_seconds = cfg.auth.recheck_seconds;
        let state = AppState {
            audit,
            login_throttle,
            pool,
            cfg: Arc::new(cfg),
            ingest,
            recorders,
            live,
            cases,
            started: std::time::Instant::now(),
            audit_repeats: Default::default(),
            secrets,
            cluster,
            ptz,
            gb,
            federation,
            rechecks: Arc::new(crate::api::Rechecks::new(recheck_seconds)),
        };
        Ok(Server {
            state,
            listener,
            background,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops every camera session.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let ingest = self.state.ingest.clone();
        let recorders = self.state.recorders.clone();
        let cluster = self.state.cluster.clone();
        let tls = self.state.cfg.tls.clone();
        let app = api::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                // One crypto provider for the process; a second install (tests) is harmless.
                let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!("loading TLS {} and {}", cert.display(), key.display())
                    })?;
                let handle = axum_server::Handle::new();
                let h = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                });
                axum_server::from_tcp_rustls(self.listener.into_std()?, config)
                    .handle(handle)
                    .serve(app)
                    .await?;
            }
            _ => {
                // Live viewers' sockets are tuned as they are accepted (docs/live.md).
                let listener = self.listener.tap_io(crate::live::socket::tune_socket);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await?
            }
        }
        self.background.cancel();
        if let Some(cluster) = cluster {
            cluster.leave().await;
        }
        ingest.shutdown();
        recorders.shutdown().await;
        Ok(())
    }
}

/// Loads the key of camera passwords and seals those still stored in plaintext.
async fn load_secrets(cfg: &Config, pool: &db::Pool) -> anyhow::Result<Secrets> {
    let secrets = Secrets::load(&cfg.data_dir, cfg.auth.secrets_key.as_deref())
        .context("loading the secrets key")?;
    let sealed = secrets
        .seal_plaintext_rows(pool)
        .await
        .context("encrypting stored camera passwords")?;
    if sealed > 0 {
        tracing::info!(cameras = sealed, "camera passwords encrypted at rest");
    }
    Ok(secrets)
}

/// Starts the cameras: a single server runs them all; a node of a cluster joins it and runs those it
/// holds leases on.
async fn start_cameras(
    cfg: &Config,
    pool: &db::Pool,
    runner: Arc<api::CameraRunner>,
) -> anyhow::Result<Option<Arc<Cluster>>> {
    let hub = runner.ingest.hub().clone();
    let cluster =
        Cluster::start(&cfg.cluster, cfg.listen, pool.clone(), runner.clone(), hub).await?;
    if let Some(c) = &cluster {
        // Footage on the other nodes' disks is read through them.
        runner.recorders.shared().footage.set_peers(c.peers());
    }
    if cluster.is_none() {
        for cam in db::cameras::list(pool).await? {
            runner.run(&cam, None);
        }
    }
    Ok(cluster)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

/// The object storage tier of `[storage.object]`, if configured.
fn object_tier(cfg: &Config) -> anyhow::Result<Option<record::tier::Tier>> {
    let Some(o) = &cfg.storage.object else {
        return Ok(None);
    };
    let bucket = crate::storage::Bucket::connect(o).context("[storage.object]")?;
    Ok(Some(record::tier::Tier::new(Arc::new(bucket), o.clone())))
}

/// The GB/T 28181 platform when `[gb28181] sip_listen` is set, its runner registered with ingest for
/// `gb28181://` cameras.
async fn start_gb28181(
    cfg: &Config,
    pool: &crate::db::Pool,
    ingest: &Arc<Supervisor>,
    audit: &crate::audit::Log,
    footage: crate::record::footage::Footage,
) -> anyhow::Result<Option<Arc<crate::gb28181::Platform>>> {
    if cfg.gb28181.sip_listen.is_none() {
        return Ok(None);
    }
    let statuses = ingest.clone();
    let online = move |camera_id| {
        let key = crate::hub::StreamKey {
            camera_id,
            kind: crate::hub::StreamKind::Main,
        };
        let state = statuses.status(key).map(|s| s.state);
        state == Some(crate::ingest::StreamState::Online)
    };
    let shared = crate::gb28181::Shared {
        hub: ingest.hub().clone(),
        audit: Some(audit.clone()),
        online: Arc::new(online),
        footage,
    };
    let platform = crate::gb28181::Platform::start(
        &cfg.gb28181,
        &cfg.ingest,
        pool.clone(),
        shared,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .context("starting the GB/T 28181 platform")?;
    let handle = crate::gb28181::stream::Handle(platform.runner.clone());
    ingest.register_scheme("gb28181", Arc::new(handle));
    Ok(Some(Arc::new(platform)))
}

/// Edge retrieval of lost footage, until the returned token is cancelled.
fn start_backfill(
    cfg: &Config,
    pool: &db::Pool,
    recorders: &Arc<Recorders>,
    gb: Option<Arc<crate::gb28181::Platform>>,
    audit: &crate::audit::Log,
    secrets: &Arc<Secrets>,
) -> tokio_util::sync::CancellationToken {
    let background = tokio_util::sync::CancellationToken::new();
    crate::edge::Backfiller::new(
        pool.clone(),
        cfg.edge.clone(),
        recorders.clone(),
        gb,
        audit.clone(),
        (cfg.ingest.clone(), live_source(secrets)),
    )
    .start(background.clone());
    background
}

/// The links to city servers, their trees kept current until the server stops (docs/federation.md).
fn start_federation(
    cfg: &Config,
    pool: &db::Pool,
    secrets: &Arc<Secrets>,
    ingest: &Supervisor,
    background: &tokio_util::sync::CancellationToken,
) -> Arc<crate::federation::Federation> {
    let federation = Arc::new(crate::federation::Federation::new(
        pool.clone(),
        secrets.clone(),
        ingest.hub().clone(),
        std::time::Duration::from_secs(cfg.federation.poll_interval_s.max(1)),
        std::time::Duration::from_secs(cfg.federation.timeout_s.max(1)),
        std::time::Duration::from_secs(
            cfg.federation
                .feed_wait_s
                .min(crate::federation::MAX_FEED_WAIT_S),
        ),
    ));
    tokio::spawn(federation.clone().run(background.clone()));
    federation
}

/// An RTSP camera's main stream with its password opened, for the edge retrieval's NVR playback.
fn live_source(secrets: &Arc<Secrets>) -> crate::edge::source::LiveSource {
    let secrets = secrets.clone();
    Arc::new(move |cam| api::camera_spec(cam, &secrets).map(|s| s.main))
}

/// The case service and its background work (sweeper, camera alarms, uptime samples).
async fn start_cases(
    cfg: &Config,
    pool: &db::Pool,
    recorders: &Arc<Recorders>,
    ingest: &Arc<Supervisor>,
) -> anyhow::Result<Arc<crate::cases::CaseService>> {
    crate::cases::export::fail_interrupted(pool, &cfg.data_dir).await?;
    let cases = crate::cases::CaseService::new(
        pool.clone(),
        cfg.cases.clone(),
        cfg.data_dir.clone(),
        recorders.shared().footage.clone(),
    )
    .context("loading the evidence signing key")?;
    cases.start_sweeper();
    crate::cases::camera_alarms::start(cases.clone(), ingest.clone());
    crate::cases::uptime::start(
        pool.clone(),
        ingest.clone(),
        std::time::Duration::from_secs(cfg.cases.uptime_sample_seconds),
    );
    Ok(cases)
}

//! GB/T 28181: Vigil as the platform that NVRs and cameras register to (downward) and as a device of
//! superior platforms (upward), over SIP with MANSCDP bodies and PS over RTP for media.
//!
//! Parts: `sip` (the rsipstack endpoint and client transactions), `xml` (MANSCDP), `rtp` (RTP and
//! RFC 4571 framing), `registry` (devices, their registrations, keepalives, catalogs and query answers),
//! `media` (receiving PS over RTP into a hub stream), `stream` (the ingest runner of
//! `gb28181://DEVICE/CHANNEL` cameras: INVITE on demand, BYE when unneeded), `playback` and `mansrtsp` (a
//! device's own footage: RecordInfo, playback sessions and their steering), `send` and `pace` (sending PS
//! to a receiver, at a playback's pace), `upstream` and `archive` (the cascade to superior platforms, live
//! and from Vigil's recordings).
//! See docs/gb28181.md.

pub mod archive;
pub mod mansrtsp;
pub mod media;
pub mod pace;
pub mod playback;
pub mod ptz;
pub mod registry;
pub mod rtp;
pub mod send;
pub mod sip;
pub mod stream;
pub mod upstream;
pub mod xml;

use crate::config::{Gb28181Config, IngestConfig};
use crate::db::Pool;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the upward cascade needs of the server: the hub (cameras' live streams), the audit log, and
/// whether a camera is online (for the catalog's status).
pub struct Shared {
    pub hub: Arc<crate::hub::Hub>,
    pub audit: Option<crate::audit::Log>,
    pub online: Arc<dyn Fn(i64) -> bool + Send + Sync>,
    /// The recordings, for superiors that play them back.
    pub footage: crate::record::footage::Footage,
}

/// The running platform: its registry (for the API) and the runner ingest uses.
pub struct Platform {
    pub registry: Arc<registry::Registry>,
    pub runner: Arc<stream::Runner>,
    pub sip_addr: std::net::SocketAddr,
}

impl Platform {
    /// Starts SIP on `cfg.sip_listen`, the keepalive watch, and the request loop.
    pub async fn start(
        cfg: &Gb28181Config,
        ingest: &IngestConfig,
        pool: Pool,
        shared: Shared,
        cancel: CancellationToken,
    ) -> anyhow::Result<Platform> {
        let listen = cfg
            .sip_listen
            .ok_or_else(|| anyhow::anyhow!("gb28181.sip_listen is not set"))?;
        let (first, last) = cfg.ports().map_err(anyhow::Error::msg)?;
        let media_ip: IpAddr = match (cfg.media_address, listen.ip()) {
            (Some(ip), _) => ip,
            (None, ip) if !ip.is_unspecified() => ip,
            _ => anyhow::bail!(
                "gb28181.media_address must be set when sip_listen is a wildcard address"
            ),
        };
        let advertised = std::net::SocketAddr::new(media_ip, 0);
        let (stack, mut incoming) = sip::Stack::start(listen, None, true, cancel.clone()).await?;
        let sip_addr = std::net::SocketAddr::new(advertised.ip(), stack.contact_addr.port());
        let mut stack = stack;
        stack.contact_addr = sip_addr;
        let stack = Arc::new(stack);
        let registry = Arc::new(registry::Registry::new(
            cfg.clone(),
            pool.clone(),
            stack.clone(),
        ));
        if !cfg.upstream.is_empty() {
            let up = upstream::Upstreams::new(
                &cfg.upstream,
                stack,
                pool,
                shared,
                cfg.utc_offset_minutes,
            );
            let up = Arc::new(up);
            up.start();
            let _ = registry.upstream.set(up);
        }
        tokio::spawn(registry.clone().watch_keepalives());
        let handler = registry.clone();
        tokio::spawn(async move {
            while let Some(tx) = incoming.recv().await {
                let r = handler.clone();
                tokio::spawn(async move { r.handle(tx).await });
            }
        });
        let stall = Duration::from_millis(ingest.stall_timeout_ms);
        let runner = Arc::new(stream::Runner::new(
            registry.clone(),
            media::Ports::new(first, last),
            media_ip,
            stall,
        ));
        tracing::info!(%listen, %media_ip, "GB/T 28181 platform listening (SIP over UDP and TCP)");
        Ok(Platform {
            registry,
            runner,
            sip_addr,
        })
    }
}

#[cfg(test)]
mod tests;

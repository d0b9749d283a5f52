//! Reading another node's disk: the segments whose local file it holds, for playback, thumbnails and case
//! packages on this node (`record::footage::Peers`). Plain HTTP to the node's advertised address, on the
//! API port, with the cluster key; the other side serves only rows of its own disk (`api::internal`).

use super::relay::KEY_HEADER;
use crate::db::{DbError, Pool};
use crate::record::footage::Peers;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::time::Duration;

/// The largest byte range asked in one call.
pub const MAX_READ: u64 = 8 << 20;

#[derive(Debug)]
pub struct HttpPeers {
    pool: Pool,
    key: String,
    client: reqwest::Client,
}

impl HttpPeers {
    pub fn new(pool: Pool, key: String) -> HttpPeers {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        HttpPeers { pool, key, client }
    }

    async fn address(&self, node: &str) -> Result<String, DbError> {
        sqlx::query_scalar("SELECT address FROM nodes WHERE name = $1")
            .bind(node)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DbError::NotFound)
    }

    async fn get(&self, node: &str, path: String, expect: Option<u64>) -> std::io::Result<Bytes> {
        let io = |e: String| std::io::Error::other(format!("node {node}: {e}"));
        let base = self.address(node).await.map_err(|e| io(e.to_string()))?;
        let resp = self
            .client
            .get(format!("{base}{path}"))
            .header(KEY_HEADER, &self.key)
            .send()
            .await
            .map_err(|e| io(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(io(format!("{path}: {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| io(e.to_string()))?;
        match expect {
            Some(n) if body.len() as u64 != n => {
                Err(io(format!("{path}: {} bytes instead of {n}", body.len())))
            }
            _ => Ok(body),
        }
    }
}

impl Peers for HttpPeers {
    fn skeleton(&self, node: &str, id: i64) -> BoxFuture<'_, std::io::Result<Bytes>> {
        let (node, path) = (
            node.to_owned(),
            format!("/api/v1/internal/segments/{id}/skeleton"),
        );
        Box::pin(async move { self.get(&node, path, None).await })
    }

    fn read(
        &self,
        node: &str,
        id: i64,
        offset: u64,
        len: u64,
    ) -> BoxFuture<'_, std::io::Result<Bytes>> {
        let node = node.to_owned();
        Box::pin(async move {
            if len > MAX_READ {
                return Err(std::io::Error::other("read of more than 8 MiB from a node"));
            }
            let path = format!("/api/v1/internal/segments/{id}/bytes?offset={offset}&len={len}");
            self.get(&node, path, Some(len)).await
        })
    }
}

//! Federation: a province server over independent city servers (docs/federation.md).
//!
//! A city issues a credential scoped to the regions it shares ([`store::Grant`]); the province stores it
//! ([`store::Link`]) and from then on signs every call ([`sign`]). The province keeps each city's shared
//! tree (regions, sites, cameras and their state) from the city's answers ([`Federation::poll`]), mirrors
//! the shared regions into its own tree (so its users' region scopes reach them), and lists the cameras
//! among its own under negative ids ([`remote::remote_id`]). Video stays at the city.
//!
//! Invariants:
//! - The city decides what is shared, at the time of each call: it answers from the grant's regions as
//!   they are then; a paused or revoked grant answers nothing.
//! - Nothing at the province waits on a city for longer than the link timeout; a city that does not
//!   answer is `down` with the time of its last contact, and its cameras show as unreachable, while the
//!   rest of the province works on.
//! - Every answer must carry the city's proof of the secret: a server that does not hold the grant cannot
//!   pose as the city.

mod feed;
pub mod remote;
pub mod sign;
pub mod store;

use crate::auth::secrets::Secrets;
use crate::cluster::relay::{Relays, Source, StreamRequest};
use crate::db::{DbError, Pool};
use crate::hub::{Hub, StreamKey};
use remote::{SharedCamera, SharedTree};
use sign::{Credential, Signed};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use store::Link;

/// The path a city answers its shared tree on.
pub const TREE_PATH: &str = "/api/v1/link/tree";
/// The longest a city holds a feed's call (`wait_s`), in seconds.
pub const MAX_FEED_WAIT_S: u64 = 60;
/// The header of the tree's version (the change feed's `since`).
pub const TREE_VERSION_HEADER: &str = "vigil-tree-version";

/// The path (and query) of a shared camera's live stream at the city.
pub fn stream_target(camera: i64, kind: crate::hub::StreamKind) -> String {
    format!(
        "/api/v1/link/cameras/{camera}/stream?kind={}",
        kind.as_str()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the city did not answer: {0}")]
    Unreachable(String),
    #[error("the city refused: {0}")]
    Refused(String),
    #[error("the answer does not prove the city holds the credential")]
    NoProof,
    #[error("the city's answer is not understood: {0}")]
    BadAnswer(String),
    #[error("{0}")]
    Credential(#[from] sign::SignError),
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("stored secret: {0}")]
    Secret(String),
}

/// The state of a link as `GET /links` reports it: `up` when the city answered last and within
/// `stale_after` ([`Federation::stale_after`]).
pub fn state_of(link: &Link, now_ms: i64, stale_after: Duration) -> &'static str {
    let fresh = link
        .last_contact
        .is_some_and(|t| now_ms - t <= stale_after.as_millis() as i64);
    if link.paused {
        "paused"
    } else if link.last_error.is_none() && fresh {
        "up"
    } else {
        "down"
    }
}

/// A city's tree as last received, with the link it came over.
#[derive(Debug, Clone)]
pub struct Remote {
    pub link: String,
    pub tree: SharedTree,
    /// The link answered the last call.
    pub up: bool,
    /// The tree's version as the city gave it (the feed's `since`).
    pub version: String,
}

/// The province side: the links' trees and the signed client.
pub struct Federation {
    pool: Pool,
    secrets: Arc<Secrets>,
    http: reqwest::Client,
    pub interval: Duration,
    /// How long a call's answer (a short one: a tree, a search) may take; a long body (a video, a
    /// package) may take longer as long as its bytes keep coming (each read waits at most this long).
    timeout: Duration,
    /// How long a city may hold the feed's call when nothing changed, in seconds.
    feed_wait: u64,
    /// The client of the feed's calls (which wait that long without a byte).
    feed_http: reqwest::Client,
    /// The links whose feed runs.
    feeds: std::sync::Mutex<std::collections::HashSet<i64>>,
    trees: RwLock<HashMap<i64, Remote>>,
    /// Live streams of remote cameras, relayed into `hub` under their province ids.
    relays: Relays,
    hub: Arc<Hub>,
}

impl Federation {
    pub fn new(
        pool: Pool,
        secrets: Arc<Secrets>,
        hub: Arc<Hub>,
        interval: Duration,
        timeout: Duration,
        feed_wait: Duration,
    ) -> Federation {
        let connect = timeout.min(Duration::from_secs(3));
        let http = reqwest::Client::builder()
            .read_timeout(timeout)
            .connect_timeout(connect)
            .build()
            .unwrap_or_default();
        let feed_http = reqwest::Client::builder()
            .connect_timeout(connect)
            .build()
            .unwrap_or_default();
        Federation {
            pool,
            secrets,
            http,
            interval,
            timeout,
            feed_wait: feed_wait.as_secs(),
            feed_http,
            feeds: Default::default(),
            trees: RwLock::new(HashMap::new()),
            relays: Relays::default(),
            hub,
        }
    }

    /// How long after the city's last answer a link still counts as up: a feed's call may wait
    /// `feed_wait_s` for a change, plus the link's timeout, plus a retry.
    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.feed_wait)
            + self.timeout
            + 2 * self.interval
            + Duration::from_secs(2)
    }

    /// The remote camera with this province id, when its link is up and shares it now: (link name, camera).
    pub fn camera(&self, id: i64) -> Option<(String, SharedCamera)> {
        let (link, camera) = remote::split_remote_id(id)?;
        let trees = self.trees.read().unwrap_or_else(|e| e.into_inner());
        let r = trees.get(&link).filter(|r| r.up)?;
        let c = r.tree.cameras.iter().find(|c| c.id == camera)?;
        Some((r.link.clone(), c.clone()))
    }

    /// Tells the city that `actor` began (`start`) or ended (`stop`) a view of remote camera `id`, so that
    /// its audit names every viewer at the province, not only the one whose view opened the shared upstream.
    /// In the background; a notice the city does not take is logged.
    pub fn view_notice(self: &Arc<Self>, id: i64, actor: &str, event: &'static str) {
        let Some((link, camera)) = remote::split_remote_id(id) else {
            return;
        };
        let (me, actor) = (self.clone(), actor.to_owned());
        tokio::spawn(async move {
            let target = format!("/api/v1/link/cameras/{camera}/views?event={event}");
            if let Err(e) = me
                .send_over(link, reqwest::Method::GET, &target, &actor, &[])
                .await
            {
                tracing::info!(camera = id, event, error = %e, "federation: view notice not taken");
            }
        });
    }

    /// Relays the remote camera's stream into this server's hub (one upstream per camera and kind,
    /// however many viewers here); `actor` is who opens it, named to the city.
    pub fn relay(self: &Arc<Self>, key: StreamKey, actor: &str) {
        let source: Arc<dyn Source> = Arc::new(LinkStream {
            federation: self.clone(),
            actor: actor.to_owned(),
        });
        self.relays.ensure(key, self.hub.clone(), source);
    }

    /// The signed WebSocket request of a remote camera's stream.
    async fn stream_request(
        &self,
        key: StreamKey,
        actor: &str,
    ) -> Result<StreamRequest, LinkError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderValue;
        let (link_id, camera) = remote::split_remote_id(key.camera_id)
            .ok_or_else(|| LinkError::BadAnswer("not a remote camera".into()))?;
        let link = store::link(&self.pool, link_id).await?;
        if link.paused {
            return Err(LinkError::Refused("the link is paused".into()));
        }
        let credential = self.credential(&link)?;
        let target = stream_target(camera, key.kind);
        let time = chrono::Utc::now().timestamp();
        let signature = Signed {
            method: "GET",
            target: &target,
            time,
            actor,
            body: b"",
        }
        .sign(&credential.secret);
        let url = format!("{}{target}", link.url.replacen("http", "ws", 1));
        let mut req = url
            .into_client_request()
            .map_err(|e| LinkError::BadAnswer(e.to_string()))?;
        let header =
            |v: String| HeaderValue::from_str(&v).map_err(|e| LinkError::BadAnswer(e.to_string()));
        let h = req.headers_mut();
        h.insert(sign::GRANT_HEADER, header(credential.grant_id.to_string())?);
        h.insert(sign::TIME_HEADER, header(time.to_string())?);
        h.insert(sign::ACTOR_HEADER, header(sign::encode_actor(actor))?);
        h.insert(sign::SIGNATURE_HEADER, header(signature)?);
        Ok(req)
    }

    /// A signed request (`method`, no body) of `target` on the city at `url`, as `actor`, with `forward`
    /// headers (a video's `Range`); the answer once its proof checks (its body not read yet). A refusal
    /// is an error.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        credential: &Credential,
        target: &str,
        actor: &str,
        forward: &[(reqwest::header::HeaderName, reqwest::header::HeaderValue)],
    ) -> Result<reqwest::Response, LinkError> {
        let (mut req, signature) = Self::signed(&self.http, method, url, credential, target, actor);
        for (k, v) in forward {
            req = req.header(k, v);
        }
        Self::proved(req, credential, &signature).await
    }

    /// A request of `target` signed for the city at `url`, on `client`; and its signature.
    fn signed(
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
        credential: &Credential,
        target: &str,
        actor: &str,
    ) -> (reqwest::RequestBuilder, String) {
        let time = chrono::Utc::now().timestamp();
        let signature = Signed {
            method: method.as_str(),
            target,
            time,
            actor,
            body: b"",
        }
        .sign(&credential.secret);
        let req = client
            .request(method, format!("{}{target}", url.trim_end_matches('/')))
            .header(sign::GRANT_HEADER, credential.grant_id.to_string())
            .header(sign::TIME_HEADER, time.to_string())
            .header(sign::ACTOR_HEADER, sign::encode_actor(actor))
            .header(sign::SIGNATURE_HEADER, &signature);
        (req, signature)
    }

    /// Sends `req`; its answer (success or `304`) once the city's proof of `signature` checks.
    async fn proved(
        req: reqwest::RequestBuilder,
        credential: &Credential,
        signature: &str,
    ) -> Result<reqwest::Response, LinkError> {
        let resp = req
            .send()
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() && status != reqwest::StatusCode::NOT_MODIFIED {
            let body = resp.bytes().await.unwrap_or_default();
            let why = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(LinkError::Refused(format!("{status}: {why}")));
        }
        let proof = resp
            .headers()
            .get(sign::PROOF_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(LinkError::NoProof)?;
        sign::verify_proof(&credential.secret, signature, proof).map_err(|_| LinkError::NoProof)?;
        Ok(resp)
    }

    /// The (short) JSON answer of a signed `method` request over link `link_id`, within the link's timeout.
    pub async fn json_over(
        &self,
        link_id: i64,
        method: reqwest::Method,
        target: &str,
        actor: &str,
    ) -> Result<serde_json::Value, LinkError> {
        let call = async {
            self.send_over(link_id, method, target, actor, &[])
                .await?
                .json()
                .await
                .map_err(|e| LinkError::BadAnswer(e.to_string()))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| LinkError::Unreachable("no answer within the link's timeout".into()))?
    }

    /// A signed `method` request over link `link_id` (the link's URL and credential).
    pub async fn send_over(
        &self,
        link_id: i64,
        method: reqwest::Method,
        target: &str,
        actor: &str,
        forward: &[(reqwest::header::HeaderName, reqwest::header::HeaderValue)],
    ) -> Result<reqwest::Response, LinkError> {
        let link = store::link(&self.pool, link_id).await?;
        if link.paused {
            return Err(LinkError::Refused("the link is paused".into()));
        }
        let credential = self.credential(&link)?;
        self.send(method, &link.url, &credential, target, actor, forward)
            .await
    }

    fn credential(&self, link: &Link) -> Result<Credential, LinkError> {
        let secret = self
            .secrets
            .open(&link.secret)
            .map_err(|e| LinkError::Secret(e.to_string()))?;
        Ok(Credential {
            grant_id: link.grant_id,
            secret,
        })
    }

    /// Forgets a link's tree (the link was deleted).
    pub fn forget(&self, link: i64) {
        self.trees
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&link);
    }

    /// The region codes link `link` shares, as last received (none when its tree is not known).
    pub fn regions(&self, link: i64) -> Vec<String> {
        let trees = self.trees.read().unwrap_or_else(|e| e.into_inner());
        trees
            .get(&link)
            .map(|r| r.tree.regions.iter().map(|g| g.code.clone()).collect())
            .unwrap_or_default()
    }

    /// Every remote site known, as this server names it: (link name, site with its province id).
    pub fn sites(&self) -> Vec<(String, remote::SharedSite)> {
        let trees = self.trees.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (id, r) in trees.iter() {
            for site in &r.tree.sites {
                if let Some(local) = remote::remote_id(*id, site.id) {
                    let mut site = site.clone();
                    site.id = local;
                    out.push((r.link.clone(), site));
                }
            }
        }
        out.sort_by_key(|(_, s)| std::cmp::Reverse(s.id));
        out
    }

    /// Every remote camera known: (link id, link name, link up, camera).
    pub fn cameras(&self) -> Vec<(i64, String, bool, SharedCamera)> {
        let trees = self.trees.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (id, r) in trees.iter() {
            for c in &r.tree.cameras {
                out.push((*id, r.link.clone(), r.up, c.clone()));
            }
        }
        out.sort_by_key(|(l, _, _, c)| (*l, c.id));
        out
    }
}

/// A remote camera's stream as a relay reads it: signed anew at every connection.
struct LinkStream {
    federation: Arc<Federation>,
    actor: String,
}

impl Source for LinkStream {
    fn request(&self, key: StreamKey) -> futures::future::BoxFuture<'_, Option<StreamRequest>> {
        Box::pin(async move {
            self.federation
                .stream_request(key, &self.actor)
                .await
                .map_err(
                    |e| tracing::info!(camera = key.camera_id, error = %e, "federation: no stream"),
                )
                .ok()
        })
    }

    /// The city's proof of the credential on the upgrade's answer.
    fn accept<'a>(
        &'a self,
        request: &'a StreamRequest,
        answer: &'a tokio_tungstenite::tungstenite::http::HeaderMap,
    ) -> futures::future::BoxFuture<'a, bool> {
        Box::pin(async move {
            let header = |h: &'a tokio_tungstenite::tungstenite::http::HeaderMap, n: &str| {
                h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned)
            };
            let (Some(sig), Some(proof)) = (
                header(request.headers(), sign::SIGNATURE_HEADER),
                header(answer, sign::PROOF_HEADER),
            ) else {
                return false;
            };
            let grant: Option<i64> =
                header(request.headers(), sign::GRANT_HEADER).and_then(|g| g.parse().ok());
            let links = store::links(&self.federation.pool)
                .await
                .unwrap_or_default();
            let Some(link) = links.iter().find(|l| {
                Some(l.grant_id) == grant
                    && request
                        .uri()
                        .to_string()
                        .starts_with(&l.url.replacen("http", "ws", 1))
            }) else {
                return false;
            };
            match self.federation.credential(link) {
                Ok(c) => sign::verify_proof(&c.secret, &sig, &proof).is_ok(),
                Err(_) => false,
            }
        })
    }
}

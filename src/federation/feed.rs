//! Keeping each linked city's tree at the province (docs/federation.md): one change feed per link.
//!
//! Each link not paused has one task ([`Federation::run`] starts them) that asks the city's tree with the
//! version it holds and `wait_s` = `[federation] feed_wait_s`: the city answers when its tree changed
//! (a camera's state, a site added) or the wait passed (`304`). So a change reaches the province within
//! about a second, and a quiet city costs one request per `feed_wait_s`, never one per camera. A call that
//! fails marks the link down with the error, and the feed tries again every `poll_interval_s`.
//!
//! Invariants: a tree is kept only when the city proved the credential and the tree is consistent (sites
//! and cameras within the regions it shares); a link deleted while its call waited keeps nothing.

use super::remote::{self, SharedTree};
use super::store::{self, Link};
use super::{sign::Credential, Federation, LinkError, Remote, TREE_PATH, TREE_VERSION_HEADER};
use crate::db::{regions, Pool};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A version as a city may send it: hex, at most 64 characters.
fn version_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Federation {
    /// One round over every link at once (a link made or changed): each tree fetched without waiting,
    /// the contact or the error recorded, the regions mirrored.
    pub async fn poll(&self) {
        let Some(links) = self.links_now().await else {
            return;
        };
        let rounds = links
            .iter()
            .filter(|l| !l.paused)
            .map(|l| self.refresh(l, None));
        futures::future::join_all(rounds).await;
    }

    /// The links, with the trees of deleted links forgotten and paused links marked down.
    async fn links_now(&self) -> Option<Vec<Link>> {
        let links = match store::links(&self.pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "federation: links not read");
                return None;
            }
        };
        let ids: Vec<i64> = links.iter().map(|l| l.id).collect();
        self.trees
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| ids.contains(id));
        for l in links.iter().filter(|l| l.paused) {
            self.mark(l.id, false);
        }
        Some(links)
    }

    /// Keeps a feed running for every link not paused until `cancel` fires; looks at the links every
    /// `poll_interval_s` (a link made, resumed or deleted).
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            for link in self.links_now().await.unwrap_or_default() {
                let start = !link.paused
                    && self
                        .feeds
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(link.id);
                if start {
                    tokio::spawn(self.clone().follow(link.id, cancel.clone()));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// Link `id`'s feed, until the link is paused or deleted or `cancel` fires.
    async fn follow(self: Arc<Self>, id: i64, cancel: CancellationToken) {
        // After a failed call (and at first) the tree is asked at once, so that a city back with an
        // unchanged tree shows up again without waiting out a feed's call.
        let mut answered = false;
        loop {
            let link = match store::link(&self.pool, id).await {
                Ok(l) if !l.paused => l,
                _ => break,
            };
            let since = if answered { self.version(id) } else { None };
            answered = tokio::select! {
                ok = self.refresh(&link, since) => ok,
                _ = cancel.cancelled() => break,
            };
            if !answered {
                tokio::select! {
                    _ = tokio::time::sleep(self.interval) => {}
                    _ = cancel.cancelled() => break,
                }
            }
        }
        self.feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// The version of link `id`'s tree held here.
    fn version(&self, id: i64) -> Option<String> {
        let trees = self.trees.read().unwrap_or_else(|e| e.into_inner());
        trees.get(&id).map(|r| r.version.clone())
    }

    /// Asks `link`'s tree (waiting for a change from `since`, when given) and keeps the answer; whether
    /// the city answered.
    async fn refresh(&self, link: &Link, since: Option<String>) -> bool {
        let wait = if since.is_some() { self.feed_wait } else { 0 };
        let result = match self.credential(link) {
            Ok(c) => self.fetch(&link.url, &c, since.as_deref(), wait).await,
            Err(e) => Err(e),
        };
        let answer = match result {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(link = %link.name, error = %e, "federation: city not reached");
                let _ = store::contact(&self.pool, link.id, Some(&e.to_string())).await;
                self.mark(link.id, false);
                return false;
            }
        };
        // The link may have been deleted while the call waited: nothing of it is kept then.
        if store::link(&self.pool, link.id).await.is_err() {
            return true;
        }
        let _ = store::contact(&self.pool, link.id, None).await;
        let Some((tree, version)) = answer else {
            self.mark(link.id, true);
            return true;
        };
        mirror_regions(&self.pool, &tree).await;
        let remote = Remote {
            link: link.name.clone(),
            tree,
            up: true,
            version,
        };
        self.trees
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(link.id, remote);
        true
    }

    /// The city's tree and its version when it differs from `since` (the city waits up to `wait_s` for
    /// a change); `None` when it did not change.
    pub async fn fetch(
        &self,
        url: &str,
        credential: &Credential,
        since: Option<&str>,
        wait_s: u64,
    ) -> Result<Option<(SharedTree, String)>, LinkError> {
        let target = match since.filter(|v| version_ok(v)) {
            Some(v) => format!("{TREE_PATH}?since={v}&wait_s={wait_s}"),
            None => TREE_PATH.to_owned(),
        };
        let client = if wait_s > 0 {
            &self.feed_http
        } else {
            &self.http
        };
        let (req, signature) =
            Self::signed(client, reqwest::Method::GET, url, credential, &target, "");
        let call = async {
            let resp = Self::proved(req, credential, &signature).await?;
            if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(None);
            }
            let version = resp
                .headers()
                .get(TREE_VERSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|v| version_ok(v))
                .map(str::to_owned)
                .ok_or_else(|| LinkError::BadAnswer("the tree has no version".into()))?;
            let body = resp
                .bytes()
                .await
                .map_err(|e| LinkError::Unreachable(e.to_string()))?;
            let tree: SharedTree =
                serde_json::from_slice(&body).map_err(|e| LinkError::BadAnswer(e.to_string()))?;
            if !tree.consistent() {
                return Err(LinkError::BadAnswer(
                    "sites or cameras outside the shared regions".into(),
                ));
            }
            Ok(Some((tree, version)))
        };
        tokio::time::timeout(self.timeout + Duration::from_secs(wait_s), call)
            .await
            .map_err(|_| LinkError::Unreachable("no answer within the link's timeout".into()))?
    }

    /// The city's whole shared tree over a credential, at once (a link being made).
    pub async fn fetch_tree(
        &self,
        url: &str,
        credential: &Credential,
    ) -> Result<SharedTree, LinkError> {
        let answer = self.fetch(url, credential, None, 0).await?;
        answer
            .map(|(tree, _)| tree)
            .ok_or_else(|| LinkError::BadAnswer("no tree".into()))
    }

    fn mark(&self, link: i64, up: bool) {
        if let Some(r) = self
            .trees
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&link)
        {
            r.up = up;
        }
    }
}

/// Puts the shared regions into this server's tree where they are missing, under their parent when this
/// server has it (else at the top), so that its users' region scopes reach the remote cameras. Existing
/// regions are left as they are (the province's own tree wins).
async fn mirror_regions(pool: &Pool, tree: &SharedTree) {
    let Ok(known) = regions::list(pool).await else {
        return;
    };
    let mut have: std::collections::HashSet<String> = known.into_iter().map(|r| r.code).collect();
    // Parents first: a region whose parent is shared too waits for it.
    let mut pending: Vec<&remote::SharedRegion> = tree.regions.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut later = Vec::new();
        for r in pending {
            if have.contains(&r.code) {
                continue;
            }
            let parent_shared = r
                .parent_code
                .as_ref()
                .is_some_and(|p| tree.regions.iter().any(|x| &x.code == p));
            if parent_shared && !r.parent_code.as_ref().is_some_and(|p| have.contains(p)) {
                later.push(r);
                continue;
            }
            let parent = r.parent_code.clone().filter(|p| have.contains(p));
            let row = regions::Region {
                code: r.code.clone(),
                name: r.name.clone(),
                level: r.level.clone(),
                parent_code: parent,
            };
            match regions::create_or_revive(pool, &row).await {
                Ok(()) => {
                    have.insert(r.code.clone());
                }
                Err(e) => {
                    tracing::warn!(region = %r.code, error = %e, "federation: region not mirrored")
                }
            }
        }
        if later.len() == before {
            break;
        }
        pending = later;
    }
}

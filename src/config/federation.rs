//! `[federation]`: this server's links to city servers (docs/federation.md).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// How often the province looks for links made, resumed or deleted, and how long it waits before
    /// asking a city that did not answer again, in seconds.
    pub poll_interval_s: u64,
    /// The change feed of each city's shared tree (regions, sites, cameras and their state): how long the
    /// city may hold the province's call when nothing changed, in seconds. A change reaches the province
    /// at once; a quiet city costs one call per this many seconds.
    pub feed_wait_s: u64,
    /// The longest a call to a city may take, in seconds: nothing at the province waits longer on it.
    pub timeout_s: u64,
    /// A case search at the province returns what the cities answered within this many milliseconds,
    /// and names the others.
    pub search_deadline_ms: u64,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            poll_interval_s: 5,
            feed_wait_s: 20,
            timeout_s: 5,
            search_deadline_ms: 2_000,
        }
    }
}

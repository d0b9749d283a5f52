//! `[federation]`: this server's links to city servers (docs/federation.md).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// How often each linked city is asked for its shared tree (regions, sites, cameras and their state),
    /// in seconds. A city is `down` after three rounds without an answer.
    pub poll_interval_s: u64,
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
            timeout_s: 5,
            search_deadline_ms: 2_000,
        }
    }
}

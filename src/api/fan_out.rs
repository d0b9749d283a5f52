//! Asking every linked city at once (docs/federation.md): the province's case search, alarms and health
//! merge what the cities answer within `[federation] search_deadline_ms`, and name those that did not.
//!
//! Invariant: never a hang. Each city's call is cut at the deadline; a paused link, a refusal, an error
//! or a late answer puts the city in `unreachable`, and the caller gets what the others sent.

use super::AppState;
use crate::federation::{store, LinkError};
use serde_json::Value;
use std::time::Duration;

/// What the cities answered.
#[derive(Default)]
pub struct Answers {
    /// Each answering city's link and JSON answer.
    pub answers: Vec<(store::Link, Value)>,
    /// The names of the cities that gave none in time.
    pub unreachable: Vec<String>,
}

/// A signed GET of `target` to every linked city at once, as `actor`.
pub async fn ask_cities(s: &AppState, actor: &str, target: &str) -> Answers {
    let links = match store::links(&s.pool).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "federation: links not read");
            return Answers::default();
        }
    };
    let deadline = Duration::from_millis(s.cfg.federation.search_deadline_ms.max(100));
    let calls = links.iter().filter(|l| !l.paused).map(|l| async move {
        let call = s
            .federation
            .json_over(l.id, reqwest::Method::GET, target, actor);
        let result = tokio::time::timeout(deadline, call)
            .await
            .unwrap_or_else(|_| Err(LinkError::Unreachable("past the deadline".into())));
        (l, result)
    });
    let mut out = Answers {
        unreachable: links
            .iter()
            .filter(|l| l.paused)
            .map(|l| l.name.clone())
            .collect(),
        ..Answers::default()
    };
    for (link, result) in futures::future::join_all(calls).await {
        match result {
            Ok(body) => out.answers.push((link.clone(), body)),
            Err(e) => {
                tracing::info!(link = %link.name, target, error = %e, "federation: a city gave no answer");
                out.unreachable.push(link.name.clone());
            }
        }
    }
    out
}

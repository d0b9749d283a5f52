//! `vigil check [--repair]`: consistency checks (audit chain, recordings against index) of the stored data, each in its own function, reported on
//! standard output; the command exits non-zero when one fails.
//!
//! Invariant: checks only read, except under `--repair`, and the audit log is never "repaired" (a broken
//! chain is evidence, reported as it is).

use crate::audit;
use crate::db::Pool;
use std::path::Path;

/// What the command was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub repair: bool,
    /// This node's name in a cluster: its disk's rows are checked (`[cluster] node_name`).
    pub node: Option<String>,
}

/// Runs every check; `true` when all passed.
pub async fn run(pool: &Pool, data_dir: &Path, opts: Options) -> anyhow::Result<bool> {
    let mut ok = true;
    ok &= audit_chain(&audit::Log::open_to_verify(pool.clone(), data_dir).await?).await?;
    ok &= recordings(pool, data_dir, opts.node.as_deref(), opts.repair).await?;
    Ok(ok)
}

/// Checks the segment files against the index (and with `repair`, makes them agree).
pub async fn recordings(
    pool: &Pool,
    data_dir: &Path,
    node: Option<&str>,
    repair: bool,
) -> anyhow::Result<bool> {
    let rep = crate::record::check::check(pool, data_dir, node, repair).await?;
    for p in &rep.problems {
        println!("recordings: problem: {p}");
    }
    for r in &rep.repaired {
        println!("recordings: repaired: {r}");
    }
    println!(
        "recordings: {} segments, {} files, {} problems{}",
        rep.segments,
        rep.files,
        rep.problems.len(),
        if repair {
            format!(", {} repaired", rep.repaired.len())
        } else {
            String::new()
        }
    );
    Ok(rep.problems.is_empty() || rep.repaired.len() >= rep.problems.len())
}

/// Verifies the audit log's keyed hash chain; names the first broken row.
pub async fn audit_chain(log: &audit::Log) -> anyhow::Result<bool> {
    let report = log.verify().await?;
    if let Some((id, hash)) = &report.head {
        println!("audit: head is row {id}, hash {hash}");
    }
    if report.intact() {
        println!("audit: {} rows, hash chain intact", report.rows);
        return Ok(true);
    }
    if let Some((id, what)) = report.problems.first() {
        println!("audit: first broken row: {id}: {what}");
    }
    println!(
        "audit: {} rows, hash chain BROKEN at {} place(s):",
        report.rows,
        report.problems.len()
    );
    for (id, what) in &report.problems {
        println!("  row {id}: {what}");
    }
    Ok(false)
}

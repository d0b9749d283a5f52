//! `vigil check [--repair]`: consistency checks of the stored data, each in its own function, reported on
//! standard output; the command exits non-zero when one fails.
//!
//! Invariant: checks only read, except under `--repair`, and the audit log is never "repaired" (a broken
//! chain is evidence, reported as it is).

use crate::audit;
use crate::db::Pool;

/// What the command was asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub repair: bool,
}

/// Runs every check; `true` when all passed.
pub async fn run(pool: &Pool, _opts: Options) -> anyhow::Result<bool> {
    let mut ok = true;
    ok &= audit_chain(pool).await?;
    Ok(ok)
}

/// Verifies the audit log's hash chain.
pub async fn audit_chain(pool: &Pool) -> anyhow::Result<bool> {
    let report = audit::verify_chain(pool).await?;
    if let Some((id, hash)) = &report.head {
        println!("audit: head is row {id}, hash {hash}");
    }
    if report.intact() {
        println!("audit: {} rows, hash chain intact", report.rows);
        return Ok(true);
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

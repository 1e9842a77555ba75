//! Judging a kvsim MVCC history with every checker `kvsim run` uses (or those `--only` names),
//! with the liveness bound and the Raft invariants the recording run left behind.

use std::path::Path;

use anyhow::{bail, Context, Result};
use kvsim_checker::durability::DurabilityOptions;
use kvsim_checker::history::History;
use kvsim_checker::{Budget, CheckResult};
use kvsim_model::mvcc::{Op as MvccOp, Ret as MvccRet};

use super::report::{FileReport, PropertyVerdict};
use crate::verdict::{judge_with, Checker, JudgeOptions};

/// Every checker (or those `only` names) over one kvsim MVCC history, as `kvsim run` judges.
pub(super) fn judge_mvcc(
    file: &Path,
    meta: &serde_json::Value,
    history: &History<MvccOp, MvccRet>,
    only: &[Checker],
    budget: &Budget,
    report: &mut FileReport,
) -> Result<()> {
    let invariants = recorded_invariants(file, meta, history)?;
    let options = JudgeOptions {
        budget: *budget,
        durability: durability_options(meta),
        only: only.to_vec(),
    };
    let verdict = judge_with(history, invariants.as_deref().unwrap_or(&[]), &options);
    report.ops = history.ops.len();
    report.pinned_puts = Some(verdict.pinned_puts);
    report.status = verdict.status.as_str();
    let runs_linearizability = verdict.checkers.contains(&Checker::Linearizability);
    report.verdict = if !runs_linearizability {
        "skipped"
    } else {
        match &verdict.linearizability {
            CheckResult::Linearizable => "linearizable",
            CheckResult::NotLinearizable(_) => "not-linearizable",
            CheckResult::Unknown(_) => "unknown",
        }
    };
    if runs_linearizability {
        let searched = crate::verdict::with_lease_expiries(history);
        match &verdict.linearizability {
            CheckResult::Linearizable => {}
            CheckResult::NotLinearizable(violation) => {
                let mut detail = serde_json::to_value(violation).expect("violation serializes");
                detail["text"] = serde_json::Value::String(violation.render(&searched));
                report.detail = Some(detail);
            }
            CheckResult::Unknown(why) => {
                report.detail = Some(serde_json::json!({ "text": why, "reason": why }));
            }
        }
    }
    for checker in &verdict.checkers {
        let violated: Vec<String> = verdict
            .findings
            .iter()
            .filter(|finding| Checker::of_property(finding.property) == *checker)
            .map(|finding| finding.property.to_string())
            .fold(Vec::new(), |mut names, name| {
                if !names.contains(&name) {
                    names.push(name);
                }
                names
            });
        let (state, notes) = if !violated.is_empty() {
            ("violated", violated)
        } else {
            match checker {
                Checker::Linearizability => match &verdict.linearizability {
                    CheckResult::Unknown(why) => ("unknown", vec![why.clone()]),
                    _ if verdict.pinned_puts > 0 => (
                        "ok",
                        vec![format!("{} unknown puts pinned", verdict.pinned_puts)],
                    ),
                    _ => ("ok", Vec::new()),
                },
                Checker::Raft if invariants.is_none() && is_live(meta) => (
                    "not-recorded",
                    vec!["a live etcd history: real etcd reports no Raft invariants".into()],
                ),
                Checker::Raft if invariants.is_none() => (
                    "not-recorded",
                    vec!["no raft_invariant records and no summary.json beside the file (or a live etcd history)".into()],
                ),
                _ => ("ok", Vec::new()),
            }
        };
        report.properties.push(PropertyVerdict {
            checker: checker.name(),
            verdict: state,
            notes,
        });
    }
    report.findings = verdict
        .findings
        .into_iter()
        .filter(|finding| finding.property != "linearizability")
        .collect();
    Ok(())
}

/// The liveness bound `kvsim run` uses for this scenario (five election timeouts), from the
/// scenario the simulator wrote into the header's `meta`; etcd-like defaults otherwise.
pub fn durability_options(meta: &serde_json::Value) -> DurabilityOptions {
    if is_live(meta) {
        return DurabilityOptions {
            liveness_bound_ns: crate::live::LIVENESS_BOUND_NS,
        };
    }
    let cluster = &meta["scenario"]["cluster"];
    match (
        cluster["election_tick"].as_u64(),
        cluster["tick_ms"].as_u64(),
    ) {
        (Some(election_tick), Some(tick_ms)) => DurabilityOptions {
            liveness_bound_ns: 5u64
                .saturating_mul(election_tick)
                .saturating_mul(tick_ms)
                .saturating_mul(1_000_000),
        },
        _ => DurabilityOptions::default(),
    }
}

/// A history `kvsim live` recorded against a real etcd.
pub fn is_live(meta: &serde_json::Value) -> bool {
    meta["target"] == "etcd"
}

/// The Raft invariant violations the run recorded: `{"type":"raft_invariant","message":...}`
/// records in the history, or else `invariant_violations` of the `summary.json` that
/// `kvsim run` / `fuzz` write beside `history.jsonl` (when its seed is the header's).
/// `None` when neither is there: the property was not recorded.
pub fn recorded_invariants(
    file: &Path,
    meta: &serde_json::Value,
    history: &History<MvccOp, MvccRet>,
) -> Result<Option<Vec<String>>> {
    let records: Vec<&serde_json::Value> = history
        .other
        .iter()
        .filter(|record| record["type"] == "raft_invariant")
        .collect();
    if !records.is_empty() {
        let mut messages = Vec::new();
        for record in records {
            let Some(message) = record["message"].as_str() else {
                bail!(
                    "{}: expected a \"message\" string in the raft_invariant record {record}",
                    file.display()
                );
            };
            messages.push(message.to_string());
        }
        return Ok(Some(messages));
    }
    // kvsim cannot see a real etcd's Raft internals: nothing was recorded.
    if is_live(meta) {
        return Ok(None);
    }
    let summary_path = file.with_file_name("summary.json");
    let Ok(text) = std::fs::read_to_string(&summary_path) else {
        return Ok(None);
    };
    let summary: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON summary", summary_path.display()))?;
    if summary.get("seed").is_none() || summary.get("seed") != meta.get("seed") {
        return Ok(None);
    }
    let Some(list) = summary["invariant_violations"].as_array() else {
        bail!(
            "{}: expected an \"invariant_violations\" list",
            summary_path.display()
        );
    };
    list.iter()
        .map(|message| {
            message.as_str().map(str::to_string).with_context(|| {
                format!(
                    "{}: expected strings in \"invariant_violations\", found {message}",
                    summary_path.display()
                )
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

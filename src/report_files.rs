//! Writes `report.html` for a judged run (the renderer is in `report/`).

use std::path::Path;

use anyhow::{Context, Result};
use kvsim_sim::runner::RunOutput;

use crate::report::{render_html, ReportInput};
use crate::verdict::{with_lease_expiries, Verdict};

/// Renders `output` with its `verdict` into `dir/report.html`.
pub fn write_report(
    dir: &Path,
    output: &RunOutput,
    verdict: &Verdict,
    reproduce: &str,
) -> Result<()> {
    // The verdict's operation ids refer to the history the checker saw, with the synthetic
    // lease expiries; rebuild it the same (deterministic) way.
    let history = with_lease_expiries(&output.history);
    let properties: Vec<serde_json::Value> = verdict
        .findings
        .iter()
        .filter(|finding| finding.property != "linearizability")
        .map(|finding| serde_json::to_value(finding).expect("finding serializes"))
        .collect();
    let mut input = ReportInput::new(
        &format!("kvsim seed {}", output.seed),
        &history,
        &verdict.linearizability,
    );
    input.seed = output.seed.to_string();
    input.scenario = output.scenario.description.clone();
    input.reproduce = reproduce.to_string();
    input.properties = &properties;
    input.nodes = (1..=output.scenario.cluster.nodes)
        .map(|id| format!("n{id}"))
        .collect();
    let path = dir.join("report.html");
    std::fs::write(&path, render_html(&input))
        .with_context(|| format!("{}: cannot write", path.display()))
}

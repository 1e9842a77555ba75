//! Writes `report.html` for a judged run (the renderer is in `report/`).

use std::path::Path;

use anyhow::{Context, Result};
use kvsim_checker::history::History;
use kvsim_model::mvcc::{Op, Ret};
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
    let about = ReportAbout {
        title: format!("kvsim seed {}", output.seed),
        seed: output.seed.to_string(),
        scenario: output.scenario.description.clone(),
        nodes: output.scenario.cluster.nodes,
    };
    write_report_of(dir, &about, &output.history, verdict, reproduce)
}

/// What a report says about the run besides its history: for simulated and live runs alike.
pub struct ReportAbout {
    pub title: String,
    pub seed: String,
    /// The scenario's description.
    pub scenario: String,
    /// Node rows `n1..=nodes`.
    pub nodes: usize,
}

/// Renders `history` with its `verdict` into `dir/report.html`.
pub fn write_report_of(
    dir: &Path,
    about: &ReportAbout,
    history: &History<Op, Ret>,
    verdict: &Verdict,
    reproduce: &str,
) -> Result<()> {
    // The verdict's operation ids refer to the history the checker saw, with the synthetic
    // lease expiries; rebuild it the same (deterministic) way.
    let history = with_lease_expiries(history);
    let properties: Vec<serde_json::Value> = verdict
        .findings
        .iter()
        .filter(|finding| finding.property != "linearizability")
        .map(|finding| serde_json::to_value(finding).expect("finding serializes"))
        .collect();
    let mut input = ReportInput::new(&about.title, &history, &verdict.linearizability);
    input.seed = about.seed.clone();
    input.scenario = about.scenario.clone();
    input.reproduce = reproduce.to_string();
    input.properties = &properties;
    input.nodes = (1..=about.nodes).map(|id| format!("n{id}")).collect();
    let path = dir.join("report.html");
    std::fs::write(&path, render_html(&input))
        .with_context(|| format!("{}: cannot write", path.display()))
}

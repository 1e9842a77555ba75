//! `kvsim live`: a scenario's workload, faults and checkers against a real etcd cluster, either
//! spawned here (`--spawn N`, members as child processes, removed afterwards, also on Ctrl-C) or
//! an existing one (`--endpoints`, no faults: it is not ours to kill). The run itself is
//! [`kvsim::live::session`]; this file parses the flags and prints.
//!
//! Live mode lives in the `kvsim` binary: a real tokio runtime runs beside the `--cfg madsim`
//! build, whose overrides pass through outside a simulation (ARCHITECTURE.md, "Live mode").

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use kvsim_sim::runner::stats_of;
use serde_json::json;

use kvsim::cli::{parse_duration, CheckBudgetArgs, JsonArgs};
use kvsim::exit::Exit;
use kvsim::live::run::LiveOutput;
use kvsim::live::session::{run_session, LiveRequest};
use kvsim::outln;
use kvsim::verdict::{Status, Verdict};

#[derive(Args)]
pub struct LiveArgs {
    /// Start N etcd members (1 to 7) on this machine for the run; they are removed afterwards.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "endpoints",
        required_unless_present_any = ["endpoints", "cleanup"]
    )]
    pub spawn: Option<usize>,
    /// Run against an existing cluster at these client URLs (no faults are injected).
    #[arg(long, value_delimiter = ',', value_name = "URL,...")]
    pub endpoints: Vec<String>,
    /// The etcd server binary for --spawn.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/etcd")]
    pub etcd_bin: PathBuf,
    /// The scenario: its workload and faults are used; [cluster] knobs are the simulator's.
    #[arg(long, value_name = "FILE", required_unless_present = "cleanup")]
    pub scenario: Option<PathBuf>,
    /// How long clients run (e.g. 20s, 2m); default: the scenario's workload.duration_ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Seeds what clients ask and which faults the nemesis draws (not etcd's own scheduling).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Output directory; default `reports/live-<scenario>-<seed>`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub budget: CheckBudgetArgs,
    /// Run the members on loopback even as root: no network namespaces, so no partitions.
    #[arg(long)]
    pub no_isolation: bool,
    /// Every key of the run lives under this prefix; it must be empty (else exit 2). Default: a
    /// fresh `/kvsim/<run-id>/` per run.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Remove what killed live runs left (etcd members, namespaces, bridges, iptables rules, data
    /// directories), found by kvsim's own markers, and exit.
    #[arg(long, conflicts_with_all = ["spawn", "endpoints"])]
    pub cleanup: bool,
    #[command(flatten)]
    pub output: JsonArgs,
}

impl LiveArgs {
    fn request(&self) -> LiveRequest {
        LiveRequest {
            spawn: self.spawn,
            endpoints: self.endpoints.clone(),
            etcd_bin: self.etcd_bin.clone(),
            scenario_path: self
                .scenario
                .clone()
                .expect("clap requires --scenario unless --cleanup"),
            duration: self.duration,
            seed: self.seed,
            out: self.out.clone(),
            budget: self.budget.budget(1),
            no_isolation: self.no_isolation,
            prefix: self.prefix.clone(),
        }
    }
}

pub fn main(args: LiveArgs) -> Result<Exit> {
    args.output.apply();
    if args.cleanup {
        let removed = kvsim::live::cleanup::clean_up();
        for line in &removed {
            outln!("removed {line}");
        }
        outln!(
            "kvsim live --cleanup: {} leftover(s) removed",
            removed.len()
        );
        if args.output.json {
            kvsim::stdout::write_json(&json!({
                "command": "live",
                "cleanup": true,
                "exit": Exit::Ok.code(),
                "removed": removed,
            }));
        }
        return Ok(Exit::Ok);
    }
    let request = args.request();
    let session = run_session(&request)?;
    let (out, verdict) = (&session.out, &session.verdict);
    print_result(&request, &session.output, verdict);
    outln!("history: {}", out.join("history.jsonl").display());
    outln!("report: {}", out.join("report.html").display());
    if args.output.json {
        kvsim::stdout::write_json(&json!({
            "command": "live",
            "seed": args.seed,
            "status": verdict.status,
            "exit": verdict.exit().code(),
            "properties": verdict.properties(),
            "out": out,
            "history": out.join("history.jsonl"),
            "report": out.join("report.html"),
            "verdict": verdict,
        }));
    }
    Ok(verdict.exit())
}

fn print_result(request: &LiveRequest, output: &LiveOutput, verdict: &Verdict) {
    let stats = stats_of(&output.history, 0);
    let elapsed_s = output.elapsed_ms as f64 / 1000.0;
    let faults: Vec<String> = stats
        .faults_by_kind
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    outln!(
        "live seed {}: {} ops ({} ok, {} fail, {} unknown) in {:.1} s, {:.0} ops/s; {} watch responses ({} events)",
        request.seed,
        stats.ops,
        stats.ok,
        stats.fail,
        stats.unknown,
        elapsed_s,
        stats.ops as f64 / elapsed_s.max(0.001),
        stats.watch_responses,
        stats.watch_events
    );
    outln!(
        "faults: {}",
        if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join(", ")
        }
    );
    for skipped in &output.skipped_faults {
        outln!("  not injected: {skipped}");
    }
    match output.final_state.converged_after_ms {
        Some(ms) => outln!("final state: members agree ({} ms after the settle)", ms),
        None => outln!("final state: members did not agree on one revision within the wait"),
    }
    for coverage in &verdict.coverage {
        outln!("  {coverage}");
    }
    match verdict.status {
        Status::Ok => outln!("verdict: ok (linearizable; all checked properties hold)"),
        Status::Inconclusive => {
            outln!("verdict: inconclusive");
            for reason in &verdict.inconclusive {
                outln!("  {reason}");
            }
        }
        Status::Violation => {
            outln!("verdict: VIOLATION of {}", verdict.properties().join(", "));
            for finding in verdict.findings.iter().take(10) {
                outln!(
                    "  [{}] {}",
                    finding.property,
                    finding.message.lines().next().unwrap_or("")
                );
            }
        }
    }
    outln!("again: {}", request.reproduce_line());
}

//! `kvsim run`: one seed of one scenario, judged, with the line that reproduces it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use kvsim_sim::runner::{self, RunError, RunOutput};

use kvsim::cli::{scenario_name, CheckBudgetArgs, JsonArgs, SeedArgs};
use kvsim::exit::{internal, Exit};
use kvsim::memory::judge_run_within;
use kvsim::outln;
use kvsim::run_dir::{
    replay_line, run_out_dir, write_panic, write_run, write_verdict, SIMULATION_PANIC,
};
use kvsim::verdict::{Status, Verdict};
use serde_json::json;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub origin: SeedArgs,
    /// Output directory, which must be new or empty (a run never overwrites one); default
    /// `reports/<scenario>-<seed>`, or `...-run-2`, `-run-3` if that holds an earlier run.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub budget: CheckBudgetArgs,
    #[command(flatten)]
    pub output: JsonArgs,
}

pub fn main(args: RunArgs) -> Result<Exit> {
    args.output.apply();
    args.origin.invariants.apply();
    let scenario = args.origin.load()?;
    let default_out = PathBuf::from("reports").join(format!(
        "{}-{}",
        scenario_name(&args.origin.scenario),
        args.origin.seed
    ));
    kvsim::memory::check_scenario_fits(&scenario, args.budget.memory_max(1))?;
    let out = run_out_dir(args.out.as_deref(), &default_out)?;
    let started = Instant::now();
    let output = match runner::run(&scenario, args.origin.seed) {
        Ok(output) => output,
        Err(RunError::Panicked { message, .. }) => {
            // A finding, as in fuzz: reported, with the directory `kvsim replay` reproduces.
            internal(write_panic(&out, &scenario, args.origin.seed, &message))?;
            outln!(
                "seed {}: the simulation panicked after {:.2} s: {}",
                args.origin.seed,
                started.elapsed().as_secs_f64(),
                message.lines().next().unwrap_or("")
            );
            outln!("verdict: VIOLATION of {SIMULATION_PANIC}");
            outln!("report: {}", out.display());
            outln!("replay: {}", replay_line(&out));
            outln!("reproduce: {}", args.origin.reproduce_command());
            if args.output.json {
                kvsim::stdout::write_json(&json!({
                    "command": "run",
                    "seed": args.origin.seed,
                    "status": "violation",
                    "exit": Exit::Violation.code(),
                    "properties": [SIMULATION_PANIC],
                    "panic": message,
                    "out": out,
                    "replay": replay_line(&out),
                    "reproduce": args.origin.reproduce_command(),
                }));
            }
            return Ok(Exit::Violation);
        }
        Err(error) => return Err(anyhow::anyhow!("{error}")),
    };
    let run_s = started.elapsed().as_secs_f64();
    internal(write_run(&out, &output))?;
    let verdict = judge_run_within(&output, args.budget.budget(1));
    internal(write_verdict(&out, &verdict))?;
    // As fuzz does for its failing seeds: a failing (or undecided) run gets its HTML report.
    let report = verdict.status != Status::Ok;
    if report {
        internal(kvsim::report_files::write_report(
            &out,
            &output,
            &verdict,
            &args.origin.reproduce_command(),
        ))?;
    }
    print_result(&output, &verdict, run_s);
    outln!("history: {}", out.join("history.jsonl").display());
    if report {
        outln!("report: {}", out.join("report.html").display());
    }
    outln!("reproduce: {}", args.origin.reproduce_command());
    if args.output.json {
        kvsim::stdout::write_json(&json!({
            "command": "run",
            "seed": args.origin.seed,
            "status": verdict.status,
            "exit": verdict.exit().code(),
            "properties": verdict.properties(),
            "out": out,
            "history": out.join("history.jsonl"),
            "report": report.then(|| out.join("report.html")),
            "reproduce": args.origin.reproduce_command(),
            "verdict": verdict,
        }));
    }
    Ok(verdict.exit())
}

/// Findings printed per property; the rest are counted.
const FINDINGS_SHOWN_PER_PROPERTY_MAX: usize = 5;

fn print_result(output: &RunOutput, verdict: &Verdict, run_s: f64) {
    let stats = &output.stats;
    outln!(
        "seed {}: {} ops ({} ok, {} fail, {} unknown), {} faults, {:.1} s simulated in {:.2} s; check {} ms",
        output.seed,
        stats.ops,
        stats.ok,
        stats.fail,
        stats.unknown,
        stats.faults_by_kind.values().sum::<u64>(),
        output.simulated_ms as f64 / 1000.0,
        run_s,
        verdict.check_ms
    );
    match verdict.status {
        Status::Ok => outln!("verdict: ok (linearizable; all checked properties hold)"),
        Status::Inconclusive => outln!("verdict: inconclusive ({})", verdict.inconclusive_line()),
        Status::Violation => {
            outln!("verdict: VIOLATION of {}", verdict.properties().join(", "));
            // A broken invariant repeats at every later index and on every node: the first few
            // findings per property tell the story; verdict.json keeps them all.
            let mut shown_per_property: BTreeMap<&str, usize> = BTreeMap::new();
            for finding in &verdict.findings {
                let shown = shown_per_property
                    .entry(finding.property.as_str())
                    .or_default();
                *shown += 1;
                if *shown <= FINDINGS_SHOWN_PER_PROPERTY_MAX {
                    outln!(
                        "  [{}] {}",
                        finding.property,
                        finding.message.lines().next().unwrap_or("")
                    );
                }
            }
            for (property, count) in shown_per_property {
                if count > FINDINGS_SHOWN_PER_PROPERTY_MAX {
                    outln!(
                        "  [{property}] ... and {} more (all in verdict.json)",
                        count - FINDINGS_SHOWN_PER_PROPERTY_MAX
                    );
                }
            }
        }
    }
}

//! `kvsim run`: one seed of one scenario, judged, with the line that reproduces it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use kvsim_sim::runner::{self, RunOutput};

use kvsim::cli::{scenario_name, SeedArgs};
use kvsim::exit::Exit;
use kvsim::run_dir::write_outputs;
use kvsim::verdict::{judge_run, Status, Verdict};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub origin: SeedArgs,
    /// Output directory; default `reports/<scenario>-<seed>`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Time budget of the linearizability check, in seconds (then the verdict is `unknown`).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub check_timeout: f64,
}

pub fn main(args: RunArgs) -> Result<Exit> {
    let scenario = args.origin.load()?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "{}-{}",
            scenario_name(&args.origin.scenario),
            args.origin.seed
        ))
    });
    let started = Instant::now();
    let output =
        runner::run(&scenario, args.origin.seed).map_err(|error| anyhow::anyhow!("{error}"))?;
    let run_s = started.elapsed().as_secs_f64();
    let timeout = Duration::from_secs_f64(args.check_timeout.max(0.001));
    let verdict = judge_run(&output, timeout);
    write_outputs(&out, &output, &verdict)?;
    // As fuzz does for its failing seeds: a failing (or undecided) run gets its HTML report.
    let report = verdict.status != Status::Ok;
    if report {
        kvsim::report_files::write_report(
            &out,
            &output,
            &verdict,
            &args.origin.reproduce_command(),
        )?;
    }
    print_result(&output, &verdict, run_s);
    println!("history: {}", out.join("history.jsonl").display());
    if report {
        println!("report: {}", out.join("report.html").display());
    }
    println!("reproduce: {}", args.origin.reproduce_command());
    Ok(verdict.exit())
}

/// Findings printed per property; the rest are counted.
const FINDINGS_SHOWN_PER_PROPERTY_MAX: usize = 5;

fn print_result(output: &RunOutput, verdict: &Verdict, run_s: f64) {
    let stats = &output.stats;
    println!(
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
        Status::Ok => println!("verdict: ok (linearizable; all checked properties hold)"),
        Status::Inconclusive => println!("verdict: inconclusive ({})", verdict.inconclusive_line()),
        Status::Violation => {
            println!("verdict: VIOLATION of {}", verdict.properties().join(", "));
            // A broken invariant repeats at every later index and on every node: the first few
            // findings per property tell the story; verdict.json keeps them all.
            let mut shown_per_property: BTreeMap<&str, usize> = BTreeMap::new();
            for finding in &verdict.findings {
                let shown = shown_per_property
                    .entry(finding.property.as_str())
                    .or_default();
                *shown += 1;
                if *shown <= FINDINGS_SHOWN_PER_PROPERTY_MAX {
                    println!(
                        "  [{}] {}",
                        finding.property,
                        finding.message.lines().next().unwrap_or("")
                    );
                }
            }
            for (property, count) in shown_per_property {
                if count > FINDINGS_SHOWN_PER_PROPERTY_MAX {
                    println!(
                        "  [{property}] ... and {} more (all in verdict.json)",
                        count - FINDINGS_SHOWN_PER_PROPERTY_MAX
                    );
                }
            }
        }
    }
}

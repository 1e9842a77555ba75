//! `kvsim fuzz`: many seeds in parallel workers, a report for every failing seed, and one line
//! that replays it.
//!
//! Every seed runs on a fresh OS thread with a fresh madsim runtime (inside `runner::run`), so no
//! state leaks between seeds; workers only decide which seed runs next.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kvsim_checker::Budget;
use kvsim_sim::runner;
use kvsim_sim::scenario::Scenario;
use serde::Serialize;

use kvsim::cli::{
    campaign_seed_count, campaign_seeds, load_scenario, parse_bytes, parse_duration,
    parse_seed_range, scenario_name, with_flags, SeedRange, Shard,
};
use kvsim::exit::{internal, Exit};
use kvsim::outln;
use kvsim::run_dir::{replay_line, write_outputs, write_panic, SIMULATION_PANIC};
use kvsim::verdict::Status;
use kvsim::work_queue::{self, Flow};
use kvsim::{report_files, swarm};

#[derive(Args)]
pub struct FuzzArgs {
    /// The scenario every seed runs (unless --swarm).
    #[arg(long, value_name = "FILE", required_unless_present = "swarm")]
    pub scenario: Option<PathBuf>,
    /// Draw each seed's knobs (cluster size, workload mix, fault kinds and rates) from the seed
    /// itself, starting from --scenario if given, else from the defaults.
    #[arg(long)]
    pub swarm: bool,
    /// Seed range `A..B` (B excluded, up to 18446744073709551615) or a single seed `A`; seeds
    /// are taken one at a time, never listed up front.
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range)]
    pub seeds: SeedRange,
    /// Parallel workers (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Run only the I-th (1-based) of N disjoint slices of the seed range (seed ≡ I-1 mod N), so a
    /// CI matrix can spread one campaign over machines.
    #[arg(long, value_name = "I/N", value_parser = kvsim::cli::parse_shard)]
    pub shard: Option<Shard>,
    /// Stop starting new seeds after this much wall time (250ms, 90s, 40m, 1h30m; a bare
    /// number is seconds); default: no limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub time_budget: Option<Duration>,
    /// Switch on a planted bug in the simulated server (repeatable).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// The store under test (`raft-rs`, `openraft`); overrides the scenario's `target`.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Stop at the first violation.
    #[arg(long)]
    pub stop_on_first: bool,
    /// Where the campaign's directory goes.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Time budget of each seed's linearizability check (250ms, 90s, 5m; a bare number is
    /// seconds); a check not decided by then is `unknown`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub check_timeout: Duration,
    /// Memory budget of the linearizability search's memo (sizes like 512M, 2G); a search that
    /// would outgrow it ends `unknown` with the reason. Default: half the machine's memory divided by --jobs,
    /// at most 3G.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory_max: Option<u64>,
    /// Print the campaign's summary (summary.json's content, plus the directory and exit code)
    /// as one JSON object on stdout when done; the human lines go to stderr.
    #[arg(long)]
    pub json: bool,
}

/// One seed's line in the campaign summary.
#[derive(Clone, Debug, Serialize)]
struct SeedResult {
    seed: u64,
    status: String,
    properties: Vec<String>,
    ops: u64,
    simulated_ms: u64,
    wall_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn main(args: FuzzArgs) -> Result<Exit> {
    if args.json {
        kvsim::stdout::json_mode();
    }
    kvsim::panic_hook::install_one_line();
    let base = match &args.scenario {
        Some(path) => load_scenario(path, &args.bugs, args.target.as_deref())?,
        None => with_flags(Scenario::default(), &args.bugs, args.target.as_deref())?,
    };
    let seeds_planned = campaign_seed_count(args.seeds, args.shard);
    if seeds_planned == 0 {
        bail!(
            "the shard selects no seed of {}..{}",
            args.seeds.start,
            args.seeds.end
        );
    }
    let name = match (&args.scenario, args.swarm) {
        (_, true) => "swarm".to_string(),
        (Some(path), false) => scenario_name(path),
        (None, false) => unreachable!("clap requires --scenario without --swarm"),
    };
    let mut id = format!("fuzz-{name}-{}-{}", args.seeds.start, args.seeds.end);
    if let Some(shard) = args.shard {
        id.push_str(&format!("-shard-{}-of-{}", shard.index, shard.count));
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let memory_max = args
        .memory_max
        .unwrap_or_else(|| kvsim::memory::default_memory_max(jobs));
    kvsim::memory::check_scenario_fits(&base, memory_max)?;
    let dir = fresh_dir(&args.out, &id)?;
    let check_budget = kvsim::memory::budget(args.check_timeout, memory_max);
    eprintln!(
        "campaign {} — {} seeds, {jobs} workers, search memo at most {} MiB each, output {}",
        id,
        seeds_planned,
        memory_max >> 20,
        dir.display()
    );
    kvsim::interrupt::install();

    let progress = ProgressBar::new(seeds_planned);
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  [{elapsed_precise}]",
        )
        .expect("valid template"),
    );
    let violations = AtomicUsize::new(0);
    let results: Mutex<Vec<SeedResult>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let stop_before_next = || {
        kvsim::interrupt::requested().is_some()
            || args
                .time_budget
                .is_some_and(|budget| started.elapsed() >= budget)
    };
    let mut not_run = work_queue::run(
        campaign_seeds(args.seeds, args.shard),
        jobs,
        stop_before_next,
        |seed| {
            let scenario = if args.swarm {
                swarm::draw(&base, seed)
            } else {
                base.clone()
            };
            let result = run_seed(&scenario, seed, &dir, check_budget);
            let mut flow = Flow::Continue;
            if result.status == "violation" || result.status == "error" {
                let found = violations.fetch_add(1, Ordering::Relaxed) + 1;
                progress.set_message(format!("{found} violations"));
                progress.suspend(|| {
                    eprintln!(
                        "seed {seed}: {} {}",
                        result.status,
                        result.properties.join(", ")
                    );
                    if let Some(replay) = &result.replay {
                        eprintln!("  replay: {replay}");
                    }
                });
                if args.stop_on_first {
                    flow = Flow::Stop;
                }
            }
            results
                .lock()
                .expect("no worker panics holding the lock")
                .push(result);
            progress.inc(1);
            flow
        },
    );
    progress.finish_and_clear();
    let mut results = results.into_inner().expect("workers done");
    results.sort_by_key(|result| result.seed);
    let wall = started.elapsed();
    let interrupted = kvsim::interrupt::requested();
    let resume = not_run.next().map(|first| Resume {
        seeds: format!("{first}..{}", args.seeds.end),
        shard: args.shard.map(|shard| format!("1/{}", shard.count)),
        seeds_not_run: campaign_seed_count(
            SeedRange {
                start: first,
                end: args.seeds.end,
            },
            args.shard.map(|shard| Shard {
                index: 1,
                count: shard.count,
            }),
        ),
        why: match interrupted {
            Some(signal) => signal.name().to_string(),
            None if results.iter().any(|r| r.status == "violation") && args.stop_on_first => {
                "--stop-on-first".to_string()
            }
            None => "--time-budget".to_string(),
        },
    });
    let mut summary = summarize(&id, &results, wall, seeds_planned);
    summary.resume = resume;
    print_summary(&summary, &results);
    // Written whatever stopped the campaign: a signal or a budget loses nothing that ran.
    internal(write_json(&dir.join("summary.json"), &summary))?;
    internal(
        std::fs::write(dir.join("junit.xml"), junit_xml(&id, &results, wall))
            .with_context(|| format!("{}: cannot write junit.xml", dir.display())),
    )?;
    outln!("reports: {}", dir.display());
    if let Some(resume) = &summary.resume {
        outln!(
            "not run: {} seeds ({}); resume with: {}",
            resume.seeds_not_run,
            resume.why,
            resume.command_line(&args)
        );
    }
    if let Some(signal) = interrupted {
        if args.json {
            print_json(&summary, &dir, Exit::from(signal));
        }
        return Ok(Exit::from(signal));
    }
    let exit = if results.iter().any(|r| r.status == "error") {
        Exit::Internal
    } else if results.iter().any(|r| r.status == "violation") {
        Exit::Violation
    } else if results
        .iter()
        .any(|r| r.status == Status::Inconclusive.as_str())
    {
        Exit::Inconclusive
    } else {
        Exit::Ok
    };
    if args.json {
        print_json(&summary, &dir, exit);
    }
    Ok(exit)
}

fn run_seed(scenario: &Scenario, seed: u64, dir: &Path, check_budget: Budget) -> SeedResult {
    let started = Instant::now();
    let mut result = SeedResult {
        seed,
        status: "ok".into(),
        properties: Vec::new(),
        ops: 0,
        simulated_ms: 0,
        wall_ms: 0,
        report_dir: None,
        replay: None,
        error: None,
    };
    match runner::run(scenario, seed) {
        Err(error) => {
            // A panic inside the simulation is an assertion of the simulated server or node firing,
            // or a hang caught by the time limit: a finding, reported like a violation.
            result.status = "violation".into();
            result.properties = vec![SIMULATION_PANIC.into()];
            result.error = Some(error.to_string());
            let seed_dir = dir.join(format!("seed-{seed}"));
            let message = match &error {
                runner::RunError::Panicked { message, .. } => message.clone(),
                runner::RunError::Scenario(message) => message.clone(),
            };
            let written = write_panic(&seed_dir, scenario, seed, &message);
            if let Err(error) = written {
                result.error = Some(format!("{error:#}"));
            }
            result.replay = Some(replay_line(&seed_dir));
            result.report_dir = Some(seed_dir.display().to_string());
        }
        Ok(output) => {
            let verdict = kvsim::memory::judge_run_within(&output, check_budget);
            result.ops = output.stats.ops;
            result.simulated_ms = output.simulated_ms;
            result.status = verdict.status.to_string();
            result.properties = verdict.properties();
            if verdict.status != Status::Ok {
                let seed_dir = dir.join(format!("seed-{seed}"));
                let written = write_outputs(&seed_dir, &output, &verdict).and_then(|()| {
                    report_files::write_report(
                        &seed_dir,
                        &output,
                        &verdict,
                        &replay_line(&seed_dir),
                    )
                });
                if let Err(error) = written {
                    result.status = "error".into();
                    result.error = Some(format!("{error:#}"));
                }
                result.replay = Some(replay_line(&seed_dir));
                result.report_dir = Some(seed_dir.display().to_string());
            }
        }
    }
    result.wall_ms = started.elapsed().as_millis();
    result
}

/// `out/id`, or `out/id-2`, `out/id-3`, ... if taken: a campaign never overwrites an earlier one.
fn fresh_dir(out: &Path, id: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    for attempt in 1u32.. {
        let name = if attempt == 1 {
            id.to_string()
        } else {
            format!("{id}-{attempt}")
        };
        let dir = out.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("{}: cannot create", dir.display()))
            }
        }
    }
    unreachable!("u32 attempts exhausted")
}

/// The seeds a stopped campaign did not run, and the flags that run exactly those.
#[derive(Serialize)]
struct Resume {
    /// `--seeds` of the remainder: every seed below its start ran.
    seeds: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    seeds_not_run: u64,
    /// What stopped the campaign: `SIGINT`, `SIGTERM`, `--time-budget`, `--stop-on-first`.
    why: String,
}

impl Resume {
    fn command_line(&self, args: &FuzzArgs) -> String {
        let mut line = String::from("kvsim fuzz");
        if let Some(scenario) = &args.scenario {
            line.push_str(&format!(" --scenario {}", scenario.display()));
        }
        if args.swarm {
            line.push_str(" --swarm");
        }
        line.push_str(&format!(" --seeds {}", self.seeds));
        if let Some(shard) = &self.shard {
            line.push_str(&format!(" --shard {shard}"));
        }
        for bug in &args.bugs {
            line.push_str(&format!(" --bug {bug}"));
        }
        line
    }
}

/// `--json`: summary.json's content, with the command, the campaign directory and the exit code.
fn print_json(summary: &CampaignSummary, dir: &Path, exit: Exit) {
    let mut value = serde_json::to_value(summary).expect("a summary serializes");
    value["command"] = "fuzz".into();
    value["dir"] = dir.display().to_string().into();
    value["exit"] = exit.code().into();
    kvsim::stdout::write_json(&value);
}

#[derive(Serialize)]
struct CampaignSummary {
    id: String,
    seeds_planned: u64,
    seeds_run: usize,
    ok: usize,
    violations: usize,
    unknown: usize,
    errors: usize,
    violations_by_property: std::collections::BTreeMap<String, usize>,
    wall_s: f64,
    simulated_s: f64,
    failing: Vec<SeedResult>,
    /// Present when the campaign stopped before its last seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<Resume>,
}

fn summarize(id: &str, results: &[SeedResult], wall: Duration, planned: u64) -> CampaignSummary {
    let count = |status: &str| results.iter().filter(|r| r.status == status).count();
    let mut by_property = std::collections::BTreeMap::new();
    for result in results {
        for property in &result.properties {
            *by_property.entry(property.clone()).or_insert(0) += 1;
        }
    }
    CampaignSummary {
        id: id.to_string(),
        seeds_planned: planned,
        seeds_run: results.len(),
        ok: count("ok"),
        violations: count("violation"),
        unknown: count(Status::Inconclusive.as_str()),
        errors: count("error"),
        violations_by_property: by_property,
        wall_s: wall.as_secs_f64(),
        simulated_s: results.iter().map(|r| r.simulated_ms).sum::<u64>() as f64 / 1000.0,
        failing: results
            .iter()
            .filter(|r| r.status != "ok")
            .cloned()
            .collect(),
        resume: None,
    }
}

fn print_summary(summary: &CampaignSummary, results: &[SeedResult]) {
    outln!(
        "seeds run       {:>8} of {}",
        summary.seeds_run,
        summary.seeds_planned
    );
    outln!("ok              {:>8}", summary.ok);
    outln!("violations      {:>8}", summary.violations);
    for (property, count) in &summary.violations_by_property {
        outln!("  {property:<28} {count:>5}");
    }
    outln!("unknown         {:>8}", summary.unknown);
    outln!("errors          {:>8}", summary.errors);
    outln!("wall time       {:>8.1} s", summary.wall_s);
    outln!(
        "simulated time  {:>8.1} s ({:.0}× real time)",
        summary.simulated_s,
        summary.simulated_s / summary.wall_s.max(1e-9)
    );
    for result in results.iter().filter(|r| r.status != "ok") {
        let what = if result.properties.is_empty() {
            result.status.clone()
        } else {
            result.properties.join(", ")
        };
        outln!("seed {}: {what}", result.seed);
        if let Some(replay) = &result.replay {
            outln!("  replay: {replay}");
        }
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serializes");
    std::fs::write(path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

/// JUnit XML: one test case per seed, a failure per violation, for CI dashboards.
fn junit_xml(id: &str, results: &[SeedResult], wall: Duration) -> String {
    let failures = results
        .iter()
        .filter(|r| r.status == "violation" || r.status == "error")
        .count();
    let skipped = results
        .iter()
        .filter(|r| r.status == Status::Inconclusive.as_str())
        .count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        escape_xml(id),
        results.len(),
        wall.as_secs_f64()
    );
    for result in results {
        let _ = write!(
            xml,
            "  <testcase classname=\"{}\" name=\"seed-{}\" time=\"{:.3}\"",
            escape_xml(id),
            result.seed,
            result.wall_ms as f64 / 1000.0
        );
        match result.status.as_str() {
            "ok" => xml.push_str("/>\n"),
            "inconclusive" => {
                xml.push_str("><skipped message=\"checker budget exhausted\"/></testcase>\n")
            }
            _ => {
                let message = format!("{} {}", result.status, result.properties.join(", "));
                let body = [
                    result.replay.as_deref().unwrap_or(""),
                    result.error.as_deref().unwrap_or(""),
                ]
                .join("\n");
                let _ = writeln!(
                    xml,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    escape_xml(&message),
                    escape_xml(body.trim())
                );
            }
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts() {
        let result = SeedResult {
            seed: 4,
            status: "violation".into(),
            properties: vec!["linearizability".into()],
            ops: 1,
            simulated_ms: 1,
            wall_ms: 1,
            report_dir: None,
            replay: Some("kvsim replay <dir>".into()),
            error: None,
        };
        let xml = junit_xml("c&d", &[result], Duration::from_secs(1));
        assert!(
            xml.contains("failures=\"1\"")
                && xml.contains("c&amp;d")
                && xml.contains("&lt;dir&gt;"),
            "{xml}"
        );
    }
}

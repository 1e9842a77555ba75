//! `kvsim live`: a scenario's workload, faults and checkers against a real etcd cluster, either
//! spawned here (`--spawn N`, members as child processes, removed afterwards, also on Ctrl-C) or
//! an existing one (`--endpoints`, no faults: it is not ours to kill).
//!
//! Live mode lives in the `kvsim` binary: a real tokio runtime runs beside the `--cfg madsim`
//! build, whose overrides pass through outside a simulation (ARCHITECTURE.md, "Live mode").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use kvsim_checker::durability::DurabilityOptions;
use kvsim_sim::client::Recorder;
use kvsim_sim::runner::stats_of;
use kvsim_sim::scenario::Scenario;
use serde_json::json;

use kvsim::cli::parse_duration;
use kvsim::cli::{load_scenario, scenario_name};
use kvsim::exit::Exit;
use kvsim::live::claim::{self, InitialState};
use kvsim::live::etcd_process::EtcdCluster;
use kvsim::live::journal::Journal;
use kvsim::live::run::{run, LiveOutput};
use kvsim::live::trust::{reasons_inconclusive, RunFacts};
use kvsim::outln;
use kvsim::report_files::{write_report_of, ReportAbout};
use kvsim::run_dir::write_scenario;
use kvsim::verdict::{judge, Status, Verdict};

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
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory; default `reports/live-<scenario>-<seed>`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Time budget of the linearizability check (250ms, 90s, 5m; a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub check_timeout: Duration,
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
    /// Print one JSON object on stdout when done (status, exit code, the verdict as verdict.json
    /// holds it, the files written); the human lines go to stderr.
    #[arg(long)]
    pub json: bool,
}

impl LiveArgs {
    fn scenario_path(&self) -> &Path {
        self.scenario
            .as_deref()
            .expect("clap requires --scenario unless --cleanup")
    }
}

pub fn main(args: LiveArgs) -> Result<Exit> {
    if args.json {
        kvsim::stdout::json_mode();
    }
    if args.cleanup {
        let removed = kvsim::live::cleanup::clean_up();
        for line in &removed {
            outln!("removed {line}");
        }
        outln!(
            "kvsim live --cleanup: {} leftover(s) removed",
            removed.len()
        );
        return Ok(Exit::Ok);
    }
    let mut scenario = load_scenario(args.scenario_path(), &[], None)?;
    if scenario.bugs.values().any(|on| *on) {
        bail!(
            "{}: [bugs] plants bugs in the simulated server only; remove them for kvsim live",
            args.scenario_path().display()
        );
    }
    if let Some(duration) = args.duration {
        scenario.workload.duration_ms = duration.as_millis() as u64;
    }
    if let Some(members) = args.spawn {
        refuse_nodes_beyond(&scenario, members, args.scenario_path())?;
    }
    let run_id = claim::run_id(args.seed);
    let out = output_dir(&args, &run_id)?;
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    // The history goes to disk while it is recorded (journal.rs): an interrupted run keeps it.
    let journal = Journal::new(
        &out,
        Recorder::new_wall_clock(),
        json!({ "seed": args.seed, "target": "etcd", "live": true, "run_id": run_id,
                "scenario": scenario }),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let (output, target) = runtime.block_on(run_against_target(
        &args, &scenario, &run_id, &journal, &out,
    ))?;
    let timeout = args.check_timeout;
    let durability = DurabilityOptions {
        liveness_bound_ns: kvsim::live::LIVENESS_BOUND_NS,
    };
    let mut verdict = judge(&output.history, &[], timeout, &durability);
    verdict.mark_not_checked("raft", "real etcd reports no Raft invariants to kvsim");
    let facts = RunFacts {
        members_agreed: output.final_state.converged_after_ms.is_some(),
        foreign_writes: output.foreign_writes,
    };
    for reason in reasons_inconclusive(&output.history, &facts) {
        verdict.add_inconclusive(reason);
    }
    write_outputs(&out, &args, &scenario, &target, &output, &verdict, &journal)?;
    print_result(&args, &output, &verdict);
    outln!("history: {}", out.join("history.jsonl").display());
    outln!("report: {}", out.join("report.html").display());
    if !output.task_panics.is_empty() {
        bail!(
            "{} live task(s) panicked (a kvsim bug; the history is incomplete): {}",
            output.task_panics.len(),
            output.task_panics.join("; ")
        );
    }
    if args.json {
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

/// A timeline fault naming a node the spawned cluster does not have would be dropped quietly
/// (issue 13: a 5-node scenario with `--spawn 3` lost its faults on n4 and n5): refused.
fn refuse_nodes_beyond(scenario: &Scenario, members: usize, path: &Path) -> Result<()> {
    let beyond: BTreeSet<u64> = scenario
        .faults
        .timeline
        .iter()
        .flat_map(|fault| fault.nodes.iter().copied())
        .filter(|node| *node == 0 || *node > members as u64)
        .collect();
    if !beyond.is_empty() {
        let names: Vec<String> = beyond.iter().map(|node| format!("n{node}")).collect();
        bail!(
            "{}: [[faults.timeline]] names {} but --spawn {members} starts n1..n{members}; spawn \
             more members or edit the timeline",
            path.display(),
            names.join(", ")
        );
    }
    Ok(())
}

/// The report directory: `--out` if it does not exist yet (never overwritten: a live run cannot
/// be run again to get it back), else `reports/live-<scenario>-<seed>`, or with the run id
/// appended when that exists.
fn output_dir(args: &LiveArgs, run_id: &str) -> Result<PathBuf> {
    if let Some(out) = &args.out {
        if out.exists() {
            bail!(
                "--out {}: already exists; kvsim live never overwrites a report (choose another \
                 directory or remove it)",
                out.display()
            );
        }
        return Ok(out.clone());
    }
    let base = PathBuf::from("reports").join(format!(
        "live-{}-{}",
        scenario_name(args.scenario_path()),
        args.seed
    ));
    if !base.exists() {
        return Ok(base);
    }
    let fresh = PathBuf::from(format!("{}-{run_id}", base.display()));
    assert!(!fresh.exists(), "run ids are unique per process and ms");
    Ok(fresh)
}

/// Where the run went: printed and written into the history's header.
struct Target {
    endpoints: Vec<String>,
    spawned: bool,
    partitions_unavailable: Option<String>,
    initial: InitialState,
}

/// How long setup requests (the claim, the final checks) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The run's prefix: `--prefix` or a fresh one.
fn prefix_of(args: &LiveArgs, run_id: &str) -> String {
    args.prefix
        .clone()
        .unwrap_or_else(|| claim::default_prefix(run_id))
}

async fn run_against_target(
    args: &LiveArgs,
    scenario: &Scenario,
    run_id: &str,
    journal: &Journal,
    out: &Path,
) -> Result<(LiveOutput, Target)> {
    let prefix = prefix_of(args, run_id);
    let lease_offset = claim::lease_offset(run_id);
    let Some(members) = args.spawn else {
        if args.endpoints.is_empty() {
            bail!("--endpoints: expected at least one URL");
        }
        let reason = "the cluster was not spawned by kvsim (--endpoints)".to_string();
        outln!("etcd: existing cluster at {}", args.endpoints.join(","));
        stop_on_signals(None, journal.clone());
        let (keyspace, initial) =
            claim::claim(&args.endpoints, &prefix, lease_offset, SETUP_TIMEOUT).await?;
        eprintln!(
            "kvsim live: warning: writing to a cluster kvsim did not spawn ({}): keys under {}, \
             the marker key {}, lease grants and revokes, and compactions (etcd compacts every \
             key's history, not only the run's)",
            args.endpoints.join(","),
            initial.prefix,
            initial.marker_key
        );
        outln!(
            "prefix: {} (empty; the run starts at cluster revision {})",
            initial.prefix,
            initial.revision
        );
        outln!("faults: none ({reason})");
        let mut output = run(
            scenario,
            args.seed,
            args.endpoints.clone(),
            keyspace.clone(),
            None,
            Some(reason.clone()),
            journal.clone(),
        )
        .await;
        output.foreign_writes = claim::foreign_writes(&args.endpoints, &keyspace, SETUP_TIMEOUT)
            .await
            .unwrap_or(0);
        let target = Target {
            endpoints: args.endpoints.clone(),
            spawned: false,
            partitions_unavailable: Some(reason),
            initial,
        };
        return Ok((output, target));
    };
    let (cluster, partitions_unavailable) =
        spawn(members, &args.etcd_bin, args.no_isolation).await?;
    let endpoints = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.endpoint(id))
        .collect::<Result<Vec<_>>>()?;
    outln!(
        "etcd: spawned {members} member(s) at {}",
        endpoints.join(",")
    );
    if let Some(reason) = &partitions_unavailable {
        outln!("partitions skipped: {reason}");
    }
    let cluster = Arc::new(Mutex::new(cluster));
    stop_on_signals(Some(cluster.clone()), journal.clone());
    let stop = StopOnDrop(cluster.clone());
    let (keyspace, initial) =
        claim::claim(&endpoints, &prefix, lease_offset, SETUP_TIMEOUT).await?;
    outln!(
        "prefix: {}; faults for {:.0} s, then a {:.0} s quiet window (liveness)",
        initial.prefix,
        scenario.workload.duration_ms as f64 / 1000.0,
        kvsim::live::QUIET_WINDOW_MS as f64 / 1000.0
    );
    let mut output = run(
        scenario,
        args.seed,
        endpoints.clone(),
        keyspace.clone(),
        Some(cluster),
        partitions_unavailable.clone(),
        journal.clone(),
    )
    .await;
    output.foreign_writes = claim::foreign_writes(&endpoints, &keyspace, SETUP_TIMEOUT)
        .await
        .unwrap_or(0);
    // Stops the members and removes their data (and namespaces) now, before the check; their
    // logs stay in the report directory.
    let logs_dir = out.join("members");
    let kept = stop
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .shutdown_keeping_logs(&logs_dir);
    drop(stop);
    match kept {
        Ok(logs) => outln!("member logs: {} ({} files)", logs_dir.display(), logs.len()),
        Err(error) => eprintln!("kvsim live: member logs not kept: {error:#}"),
    }
    Ok((
        output,
        Target {
            endpoints,
            spawned: true,
            partitions_unavailable,
            initial,
        },
    ))
}

/// Stops the spawned members when dropped, also when the run unwinds: the Ctrl-C handler keeps
/// a reference to the cluster for the whole process, so dropping the `Arc` alone would not.
struct StopOnDrop(Arc<Mutex<EtcdCluster>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .shutdown();
    }
}

/// Spawns members in network namespaces when possible (partitions need them), else on loopback;
/// returns why partitions are unavailable, if they are.
async fn spawn(
    members: usize,
    etcd_bin: &Path,
    no_isolation: bool,
) -> Result<(EtcdCluster, Option<String>)> {
    if no_isolation {
        let cluster = EtcdCluster::spawn(members, etcd_bin, None).await?;
        return Ok((cluster, Some("--no-isolation".to_string())));
    }
    match EtcdCluster::spawn_isolated(members, etcd_bin).await {
        Ok(cluster) => Ok((cluster, None)),
        Err(why) => {
            let cluster = EtcdCluster::spawn(members, etcd_bin, None).await?;
            Ok((
                cluster,
                Some(format!("members run on loopback, not isolated: {why:#}")),
            ))
        }
    }
}

/// SIGINT (Ctrl-C), SIGTERM (what `timeout` and CI runners send) and SIGHUP (a closed
/// terminal) stop and remove the spawned members, their namespaces, bridge, rules and data
/// before the process exits (exit code 130, the shell's convention for SIGINT; ctrlc's
/// `termination` feature routes all three to one handler).
/// The history recorded so far is written first (`kvsim check` can judge it).
fn stop_on_signals(cluster: Option<Arc<Mutex<EtcdCluster>>>, journal: Journal) {
    let installed = ctrlc::set_handler(move || {
        match journal.save() {
            Ok(()) => eprintln!(
                "kvsim live: interrupted; the history so far is in {} (kvsim check reads it)",
                journal.path().display()
            ),
            Err(error) => eprintln!("kvsim live: interrupted; {error:#}"),
        }
        if let Some(cluster) = &cluster {
            eprintln!("kvsim live: stopping the etcd members");
            cluster
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .shutdown();
        }
        std::process::exit(130);
    });
    if let Err(error) = installed {
        eprintln!("kvsim live: cannot catch SIGINT/SIGTERM/SIGHUP ({error}); an interrupted run leaves its members running (kvsim live --cleanup removes them)");
    }
}

fn write_outputs(
    dir: &Path,
    args: &LiveArgs,
    scenario: &Scenario,
    target: &Target,
    output: &LiveOutput,
    verdict: &Verdict,
    journal: &Journal,
) -> Result<()> {
    let meta = json!({
        "seed": args.seed,
        "target": "etcd",
        "endpoints": target.endpoints,
        "spawned": target.spawned,
        "partitions_unavailable": target.partitions_unavailable,
        "initial": target.initial,
        "live": true,
        "scenario": scenario,
    });
    for (field, value) in meta.as_object().expect("an object") {
        journal.set_meta(field, value.clone());
    }
    journal.save()?;
    let stats = stats_of(&output.history, 0);
    let summary = json!({
        "live": true,
        "status": verdict.status,
        "seed": args.seed,
        "target": meta,
        "elapsed_ms": output.elapsed_ms,
        "ops_per_s": stats.ops as f64 * 1000.0 / output.elapsed_ms.max(1) as f64,
        "stats": stats,
        "skipped_faults": output.skipped_faults,
        "converged_after_ms": output.final_state.converged_after_ms,
        "final_state": output.final_state.members.iter().map(|member| json!({
            "node": member.node, "up": member.up, "role": member.role,
            "revision": member.revision, "compact_revision": member.compact_revision,
            "hash_kv": member.hash_kv, "keys": member.kvs.len(),
        })).collect::<Vec<_>>(),
    });
    write_json(&dir.join("summary.json"), &summary)?;
    write_json(
        &dir.join("verdict.json"),
        &serde_json::to_value(verdict).expect("verdict serializes"),
    )?;
    write_scenario(dir, scenario)?;
    let about = ReportAbout {
        title: format!("kvsim live, seed {}", args.seed),
        seed: args.seed.to_string(),
        scenario: format!(
            "{} — against etcd at {}",
            scenario.description,
            target.endpoints.join(",")
        ),
        nodes: target.endpoints.len(),
    };
    write_report_of(dir, &about, &output.history, verdict, &reproduce_line(args))
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

/// The command line that runs the same workload and fault draws again (etcd's own scheduling
/// differs from run to run, so the history will not be identical).
fn reproduce_line(args: &LiveArgs) -> String {
    let target = match args.spawn {
        Some(members) => format!("--spawn {members}"),
        None => format!("--endpoints {}", args.endpoints.join(",")),
    };
    let mut line = format!(
        "kvsim live {target} --scenario {} --seed {}",
        args.scenario_path().display(),
        args.seed
    );
    if let Some(duration) = args.duration {
        line.push_str(&format!(" --duration {}s", duration.as_secs()));
    }
    line
}

fn print_result(args: &LiveArgs, output: &LiveOutput, verdict: &Verdict) {
    let stats = stats_of(&output.history, 0);
    let elapsed_s = output.elapsed_ms as f64 / 1000.0;
    let faults: Vec<String> = stats
        .faults_by_kind
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    outln!(
        "live seed {}: {} ops ({} ok, {} fail, {} unknown) in {:.1} s, {:.0} ops/s; {} watch responses ({} events)",
        args.seed,
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
    outln!("again: {}", reproduce_line(args));
}

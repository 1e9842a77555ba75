//! One `kvsim live` run as a library call, from a scenario file to a judged report directory:
//! spawn (or claim) the cluster, run the workload and the nemesis ([`super::run`]), stop the
//! members keeping their logs, judge the history, decide what is inconclusive
//! ([`super::trust`]), write the report, and keep the members' data directories when the verdict
//! is a violation. `src/cmd_live.rs` only parses flags into a [`LiveRequest`] and prints.
//!
//! Caller's contract: [`run_session`] installs the process's SIGINT / SIGTERM / SIGHUP handler
//! (ctrlc allows one per process), so it is called at most once per process.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kvsim_checker::durability::DurabilityOptions;
use kvsim_checker::Budget;
use kvsim_sim::client::Recorder;
use kvsim_sim::runner::stats_of;
use kvsim_sim::scenario::Scenario;
use serde_json::json;

use super::claim::{self, InitialState};
use super::etcd_process::EtcdCluster;
use super::journal::Journal;
use super::run::{run, LiveOutput};
use super::trust::{reasons_inconclusive, RunFacts};
use crate::cli::{load_scenario, scenario_name};
use crate::outln;
use crate::report_files::{write_report_of, ReportAbout};
use crate::run_dir::write_scenario;
use crate::verdict::{judge_with, JudgeOptions, Status, Verdict};

/// What a live run is asked to do (the flags of `kvsim live`).
pub struct LiveRequest {
    /// Start this many members here; `None`: run against `endpoints`.
    pub spawn: Option<usize>,
    /// An existing cluster's client URLs (no faults are injected into it).
    pub endpoints: Vec<String>,
    pub etcd_bin: PathBuf,
    pub scenario_path: PathBuf,
    /// Overrides the scenario's `workload.duration_ms`.
    pub duration: Option<Duration>,
    pub seed: u64,
    /// The report directory; `None`: `reports/live-<scenario>-<seed>` (or a fresh variant).
    pub out: Option<PathBuf>,
    pub budget: Budget,
    /// Members on loopback even as root: no namespaces, so no partitions.
    pub no_isolation: bool,
    /// The run's key prefix; `None`: a fresh `/kvsim/<run-id>/`.
    pub prefix: Option<String>,
}

/// What a live run made.
pub struct LiveSession {
    /// The report directory (history.jsonl, summary.json, verdict.json, report.html, members/).
    pub out: PathBuf,
    pub output: LiveOutput,
    pub verdict: Verdict,
}

impl LiveRequest {
    /// The command line that runs the same workload and fault draws again (etcd's own
    /// scheduling differs from run to run, so the history will not be identical).
    pub fn reproduce_line(&self) -> String {
        let target = match self.spawn {
            Some(members) => format!("--spawn {members}"),
            None => format!("--endpoints {}", self.endpoints.join(",")),
        };
        let mut line = format!(
            "kvsim live {target} --scenario {} --seed {}",
            self.scenario_path.display(),
            self.seed
        );
        if let Some(duration) = self.duration {
            line.push_str(&format!(" --duration {}", crate::cli::humanize(duration)));
        }
        line
    }

    /// The scenario file with `--duration` applied, refused (exit 2) where live mode cannot run
    /// it as written.
    pub fn scenario(&self) -> Result<Scenario> {
        let mut scenario = load_scenario(&self.scenario_path, &[], None)?;
        if scenario.bugs.values().any(|on| *on) {
            bail!(
                "{}: [bugs] plants bugs in the simulated server only; remove them for kvsim live",
                self.scenario_path.display()
            );
        }
        if let Some(duration) = self.duration {
            scenario.workload.duration_ms = duration.as_millis() as u64;
        }
        if let Some(members) = self.spawn {
            refuse_nodes_beyond(&scenario, members, &self.scenario_path)?;
        }
        Ok(scenario)
    }
}

/// Runs `request` start to finish (see the module doc). Errors are bad input (a scenario live
/// mode cannot run, a non-empty prefix, an existing `--out`) or a cluster that could not be
/// started or reached; a run that ran returns its verdict, whatever it is.
pub fn run_session(request: &LiveRequest) -> Result<LiveSession> {
    let scenario = request.scenario()?;
    let run_id = claim::run_id(request.seed);
    let out = output_dir(request, &run_id)?;
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    // The history goes to disk while it is recorded (journal.rs): an interrupted run keeps it.
    let journal = Journal::new(
        &out,
        Recorder::new_wall_clock(),
        json!({ "seed": request.seed, "target": "etcd", "live": true, "run_id": run_id,
                "scenario": scenario }),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let (output, cluster_used, spawned) = runtime.block_on(run_against_cluster(
        request, &scenario, &run_id, &journal, &out,
    ))?;
    let options = JudgeOptions {
        budget: request.budget,
        durability: DurabilityOptions {
            liveness_bound_ns: super::LIVENESS_BOUND_NS,
        },
        only: Vec::new(),
    };
    let mut verdict = judge_with(&output.history, &[], &options);
    verdict.mark_not_checked("raft", "real etcd reports no Raft invariants to kvsim");
    let facts = RunFacts {
        members_agreed: output.final_state.converged_after_ms.is_some(),
        foreign_writes: output.foreign_writes,
    };
    for reason in reasons_inconclusive(&output.history, &facts) {
        verdict.add_inconclusive(reason);
    }
    if let Some(stopped) = spawned {
        finish_members(&stopped, &out, verdict.status);
    }
    write_outputs(
        &out,
        request,
        &scenario,
        &cluster_used,
        &output,
        &verdict,
        &journal,
    )?;
    if !output.task_panics.is_empty() {
        bail!(
            "{} live task(s) panicked (a kvsim bug; the history is incomplete): {}",
            output.task_panics.len(),
            output.task_panics.join("; ")
        );
    }
    Ok(LiveSession {
        out,
        output,
        verdict,
    })
}

/// On a violation the stopped members' data directories (WAL, snapshots) go to
/// `<out>/members/n<id>.etcd` beside their logs, for whoever investigates; otherwise they are
/// removed. Either way the members are gone afterwards.
fn finish_members(stopped: &StopOnDrop, out: &Path, status: Status) {
    let mut cluster = stopped
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if status != Status::Violation {
        cluster.shutdown();
        return;
    }
    let dir = out.join("members");
    match cluster.keep_data(&dir) {
        Ok(kept) => outln!(
            "member data: {} ({} data directories kept: a violation)",
            dir.display(),
            kept.len()
        ),
        Err(error) => eprintln!("kvsim live: member data not kept: {error:#}"),
    }
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
fn output_dir(request: &LiveRequest, run_id: &str) -> Result<PathBuf> {
    if let Some(out) = &request.out {
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
        scenario_name(&request.scenario_path),
        request.seed
    ));
    if !base.exists() {
        return Ok(base);
    }
    let fresh = PathBuf::from(format!("{}-{run_id}", base.display()));
    assert!(!fresh.exists(), "run ids are unique per process and ms");
    Ok(fresh)
}

/// Where the run went: printed and written into the history's header.
struct ClusterUsed {
    endpoints: Vec<String>,
    spawned: bool,
    partitions_unavailable: Option<String>,
    initial: InitialState,
}

/// How long setup requests (the claim, the final checks) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the workload against the cluster; a spawned cluster comes back stopped (logs kept, data
/// not yet removed) for [`finish_members`].
async fn run_against_cluster(
    request: &LiveRequest,
    scenario: &Scenario,
    run_id: &str,
    journal: &Journal,
    out: &Path,
) -> Result<(LiveOutput, ClusterUsed, Option<StopOnDrop>)> {
    let prefix = request
        .prefix
        .clone()
        .unwrap_or_else(|| claim::default_prefix(run_id));
    let lease_offset = claim::lease_offset(run_id);
    let Some(members) = request.spawn else {
        let endpoints = &request.endpoints;
        if endpoints.is_empty() {
            bail!("--endpoints: expected at least one URL");
        }
        let reason = "the cluster was not spawned by kvsim (--endpoints)".to_string();
        outln!("etcd: existing cluster at {}", endpoints.join(","));
        stop_on_signals(None, journal.clone());
        let (keyspace, initial) =
            claim::claim(endpoints, &prefix, lease_offset, SETUP_TIMEOUT).await?;
        eprintln!(
            "kvsim live: warning: writing to a cluster kvsim did not spawn ({}): keys under {}, \
             the marker key {}, lease grants and revokes, and compactions (etcd compacts every \
             key's history, not only the run's)",
            endpoints.join(","),
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
            request.seed,
            endpoints.clone(),
            keyspace.clone(),
            None,
            Some(reason.clone()),
            journal.clone(),
        )
        .await;
        output.foreign_writes = claim::foreign_writes(endpoints, &keyspace, SETUP_TIMEOUT)
            .await
            .unwrap_or(0);
        let used = ClusterUsed {
            endpoints: endpoints.clone(),
            spawned: false,
            partitions_unavailable: Some(reason),
            initial,
        };
        return Ok((output, used, None));
    };
    let (cluster, partitions_unavailable) =
        spawn(members, &request.etcd_bin, request.no_isolation).await?;
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
        super::QUIET_WINDOW_MS as f64 / 1000.0
    );
    let mut output = run(
        scenario,
        request.seed,
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
    // Stops the members and removes their network now, before the check; their logs go to the
    // report directory, their data waits for the verdict (finish_members).
    let logs_dir = out.join("members");
    let kept = stop
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .stop_keeping_logs(&logs_dir);
    match kept {
        Ok(logs) => outln!("member logs: {} ({} files)", logs_dir.display(), logs.len()),
        Err(error) => eprintln!("kvsim live: member logs not kept: {error:#}"),
    }
    let used = ClusterUsed {
        endpoints,
        spawned: true,
        partitions_unavailable,
        initial,
    };
    Ok((output, used, Some(stop)))
}

/// Stops the spawned members and removes their data when dropped, also when the run unwinds:
/// the signal handler keeps a reference to the cluster for the whole process, so dropping the
/// `Arc` alone would not.
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
    request: &LiveRequest,
    scenario: &Scenario,
    used: &ClusterUsed,
    output: &LiveOutput,
    verdict: &Verdict,
    journal: &Journal,
) -> Result<()> {
    let meta = json!({
        "seed": request.seed,
        "target": "etcd",
        "endpoints": used.endpoints,
        "spawned": used.spawned,
        "partitions_unavailable": used.partitions_unavailable,
        "initial": used.initial,
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
        "seed": request.seed,
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
        title: format!("kvsim live, seed {}", request.seed),
        seed: request.seed.to_string(),
        scenario: format!(
            "{} — against etcd at {}",
            scenario.description,
            used.endpoints.join(",")
        ),
        nodes: used.endpoints.len(),
    };
    write_report_of(
        dir,
        &about,
        &output.history,
        verdict,
        &request.reproduce_line(),
    )
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

//! `kvsim check`: judges recorded histories, one verdict per file.
//!
//! Jepsen register and porcupine kv logs (and JSONL histories of those models) have one
//! property, linearizability. A kvsim MVCC history gets every checker `kvsim run` uses, through
//! the same `verdict::judge_with`: linearizability (with lease expiries), watch, durability /
//! quorum / convergence / liveness (the liveness bound from the scenario in the header's
//! `meta`), the lock and election recipes, and the Raft invariants the run recorded. `--only`
//! restricts the checkers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use kvsim_checker::durability::DurabilityOptions;
use kvsim_checker::format::{self, jepsen, jsonl, porcupine_kv, Format, Strictness};
use kvsim_checker::history::History;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::kv::KvStore;
use kvsim_model::mvcc::{Op as MvccOp, Ret as MvccRet};
use kvsim_model::register::CasRegister;
use kvsim_model::Spec;
use serde::Serialize;
use std::fmt::Debug;

use kvsim::cli::{parse_bytes, parse_duration};
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim::verdict::{judge_with, Checker, JudgeOptions, Status};

#[derive(Args)]
pub struct CheckArgs {
    /// The sequential model; inferred from the format (and a JSONL header) when omitted.
    #[arg(long, value_enum)]
    model: Option<ModelName>,
    /// The history format; inferred from each file's content when omitted.
    #[arg(long, value_enum)]
    format: Option<FormatName>,
    /// Time budget per file, reading and every checker included (250ms, 90s, 5m; a bare number
    /// is seconds); a file not decided by then is `unknown` (exit 3).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    timeout: Duration,
    /// Largest history file read, in bytes (suffixes K, M, G for KiB, MiB, GiB); a larger file
    /// is an error, so `check /dev/zero` or a runaway log cannot exhaust memory.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1G")]
    file_size_max: u64,
    /// Memory budget of the linearizability search's memo (sizes like 512M, 2G); a search that
    /// would outgrow it ends `unknown` with the reason. Default: half the machine's memory,
    /// at most 3G.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    memory_max: Option<u64>,
    /// Check the whole history as one object, even where the model splits it by key.
    #[arg(long)]
    no_partition: bool,
    /// Accept what strict reading refuses (unknown JSONL record types and fields, a Jepsen
    /// completion whose value differs from its invoke, duplicate EDN keys): dropped, and counted
    /// in the output. By default they are errors with file and line, since a misspelt record can
    /// hide a violation.
    #[arg(long)]
    lenient: bool,
    /// One JSON object per file per line instead of the human table.
    #[arg(long)]
    json: bool,
    /// Run only these checkers (comma-separated); all by default. Register and kv histories
    /// have only `linearizability`.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CHECKER")]
    only: Vec<Checker>,
    /// History files, or directories (every history file in them, recursively, sorted by path).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelName {
    Mvcc,
    CasRegister,
    Kv,
}

impl ModelName {
    fn as_str(self) -> &'static str {
        match self {
            ModelName::Mvcc => "mvcc",
            ModelName::CasRegister => "cas-register",
            ModelName::Kv => "kv",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatName {
    Jsonl,
    Jepsen,
    PorcupineKv,
}

impl From<FormatName> for Format {
    fn from(name: FormatName) -> Format {
        match name {
            FormatName::Jsonl => Format::Jsonl,
            FormatName::Jepsen => Format::Jepsen,
            FormatName::PorcupineKv => Format::PorcupineKv,
        }
    }
}

/// One file's outcome, as printed with `--json`.
#[derive(Serialize)]
struct FileReport {
    file: String,
    model: String,
    /// The linearizability verdict: `linearizable` | `not-linearizable` | `unknown` | `error`
    /// (`skipped` when `--only` left it out).
    verdict: &'static str,
    /// Every checker together: `ok` | `violation` | `inconclusive` (a [`Status`]) | `error`.
    status: &'static str,
    ops: usize,
    elapsed_ms: u128,
    /// Each checker that applies, in order: `ok` | `violated` | `unknown` | `not-recorded`.
    properties: Vec<PropertyVerdict>,
    /// Violated properties of the checkers other than linearizability.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    findings: Vec<kvsim::verdict::Finding>,
    /// Unknown-outcome puts a later response proved happened, pinned before the search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_puts: Option<usize>,
    /// What `--lenient` dropped: one line per kind, with a count and its first line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct PropertyVerdict {
    checker: &'static str,
    verdict: &'static str,
    /// The violated property names (`watch.reliable`, ...), or why it is unknown / absent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

impl FileReport {
    fn exit(&self) -> Exit {
        match self.status {
            "ok" => Exit::Ok,
            "violation" => Exit::Violation,
            "inconclusive" => Exit::Inconclusive,
            _ => Exit::BadInput,
        }
    }
}

pub fn main(args: CheckArgs) -> Result<Exit> {
    let files = kvsim::history_files::collect(&args.paths)?;
    if files.is_empty() {
        bail!(
            "no history files found under {}",
            display_paths(&args.paths)
        );
    }
    let memory_max = args
        .memory_max
        .unwrap_or_else(|| kvsim::memory::default_memory_max(1));
    let budget = kvsim::memory::budget(args.timeout, memory_max);
    let opts = CheckOptions {
        partition: !args.no_partition,
    };
    let mut exit = Exit::Ok;
    let mut totals = Totals::default();
    let started = Instant::now();
    // Ctrl-C / SIGTERM between files: the files checked so far are reported, the rest named.
    kvsim::interrupt::install();
    let mut checked = 0;
    for file in &files {
        if let Some(signal) = kvsim::interrupt::requested() {
            eprintln!(
                "kvsim: stopped by {} after {checked} of {} files; not checked: {}",
                signal.name(),
                files.len(),
                files[checked..]
                    .iter()
                    .map(|file| file.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            exit = exit.worst(Exit::from(signal));
            break;
        }
        checked += 1;
        let report = check_file(file, &args, &budget, &opts);
        exit = exit.worst(report.exit());
        totals.add(&report);
        if args.json {
            outln!(
                "{}",
                serde_json::to_string(&report).expect("report serializes")
            );
        } else {
            print_human(&report);
        }
    }
    if !args.json {
        outln!(
            "total: {} files, {} ops: {} linearizable, {} not linearizable, {} unknown, {} errors, \
             {} with other properties violated in {:.3} s",
            checked,
            totals.ops,
            totals.linearizable,
            totals.violations,
            totals.unknown,
            totals.errors,
            totals.property_violations,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(exit)
}

#[derive(Default)]
struct Totals {
    ops: usize,
    linearizable: usize,
    violations: usize,
    unknown: usize,
    errors: usize,
    property_violations: usize,
}

impl Totals {
    fn add(&mut self, report: &FileReport) {
        self.ops += report.ops;
        self.property_violations += usize::from(!report.findings.is_empty());
        match report.verdict {
            "linearizable" => self.linearizable += 1,
            "not-linearizable" => self.violations += 1,
            "unknown" => self.unknown += 1,
            "skipped" => {}
            _ => self.errors += 1,
        }
    }
}

fn print_human(report: &FileReport) {
    outln!(
        "{:<16} {:>8} ops {:>9.3} s  {}  [{}]",
        report.verdict,
        report.ops,
        report.elapsed_ms as f64 / 1000.0,
        report.file,
        report.model
    );
    if let Some(error) = &report.error {
        outln!("    {error}");
    }
    for dropped in &report.dropped {
        outln!("    dropped (--lenient): {dropped}");
    }
    // One line per checker when more than linearizability applies.
    if report.properties.len() > 1 || report.verdict == "skipped" {
        for property in &report.properties {
            let notes = if property.notes.is_empty() {
                String::new()
            } else {
                format!(": {}", property.notes.join(", "))
            };
            outln!("    {:<16} {}{notes}", property.checker, property.verdict);
        }
        // Each message starts with its property's name.
        for finding in &report.findings {
            outln!("    {}", finding.message.lines().next().unwrap_or(""));
        }
    }
    if report.verdict == "not-linearizable" || report.verdict == "unknown" {
        if let Some(text) = report
            .detail
            .as_ref()
            .and_then(|d| d.get("text"))
            .and_then(|t| t.as_str())
        {
            for line in text.lines() {
                outln!("    {line}");
            }
        }
    }
}

fn check_file(file: &Path, args: &CheckArgs, budget: &Budget, opts: &CheckOptions) -> FileReport {
    let started = Instant::now();
    let mut report = FileReport {
        file: file.display().to_string(),
        model: String::new(),
        verdict: "error",
        status: "error",
        ops: 0,
        elapsed_ms: 0,
        properties: Vec::new(),
        findings: Vec::new(),
        pinned_puts: None,
        dropped: Vec::new(),
        detail: None,
        error: None,
    };
    match load_and_check(file, args, budget, opts, &mut report) {
        Ok(()) => {}
        Err(error) => report.error = Some(format!("{error:#}")),
    }
    report.elapsed_ms = started.elapsed().as_millis();
    report
}

fn load_and_check(
    file: &Path,
    args: &CheckArgs,
    budget: &Budget,
    opts: &CheckOptions,
    report: &mut FileReport,
) -> Result<()> {
    let name = file.display().to_string();
    let started = Instant::now();
    let bytes = kvsim::history_files::read_limited(file, args.file_size_max)?;
    let format = match args.format {
        Some(format) => Format::from(format),
        None => format::detect_format(&name, &bytes)?,
    };
    let text = format::text_of(&name, &bytes)?;
    let model = match (args.model, format) {
        (Some(model), _) => model,
        (None, Format::Jepsen) => ModelName::CasRegister,
        (None, Format::PorcupineKv) => ModelName::Kv,
        (None, Format::Jsonl) => match jsonl::read_jsonl_header(&name, text)?.model.as_str() {
            "mvcc" => ModelName::Mvcc,
            "cas-register" => ModelName::CasRegister,
            _ => ModelName::Kv,
        },
    };
    report.model = model.as_str().to_string();
    if model != ModelName::Mvcc && args.only.iter().any(|c| *c != Checker::Linearizability) {
        bail!(
            "{name}: a {} history has only the linearizability checker (--only {})",
            model.as_str(),
            args.only
                .iter()
                .map(|checker| checker.name())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let strictness = if args.lenient {
        Strictness::Lenient
    } else {
        Strictness::Strict
    };
    let (result, ops) = match (model, format) {
        (ModelName::Mvcc, Format::Jsonl) => {
            let (header, recorded, dropped) =
                jsonl::read_jsonl_with::<MvccOp, MvccRet>(&name, text, "mvcc", strictness)?;
            report.dropped = dropped.summary();
            judge_mvcc(file, &header.meta, &recorded, args, &budget_left(budget, started), report)?;
            return Ok(());
        }
        (ModelName::CasRegister, Format::Jsonl) => {
            let (_, history, dropped) =
                jsonl::read_jsonl_with(&name, text, "cas-register", strictness)?;
            report.dropped = dropped.summary();
            (judge_linearizability(&history, CasRegister::default(), &budget_left(budget, started), opts), history.ops.len())
        }
        (ModelName::CasRegister, Format::Jepsen) => {
            let (history, dropped) = jepsen::read_jepsen_with(&name, text, strictness)?;
            report.dropped = dropped.summary();
            (judge_linearizability(&history, CasRegister::default(), &budget_left(budget, started), opts), history.ops.len())
        }
        (ModelName::Kv, Format::Jsonl) => {
            let (_, history, dropped) = jsonl::read_jsonl_with(&name, text, "kv", strictness)?;
            report.dropped = dropped.summary();
            (judge_linearizability(&history, KvStore::default(), &budget_left(budget, started), opts), history.ops.len())
        }
        (ModelName::Kv, Format::PorcupineKv) => {
            let (history, dropped) =
                porcupine_kv::read_porcupine_kv_with(&name, text, strictness)?;
            report.dropped = dropped.summary();
            (judge_linearizability(&history, KvStore::default(), &budget_left(budget, started), opts), history.ops.len())
        }
        (model, format) => bail!(
            "{name}: the {} format holds no {} history (jepsen: cas-register; porcupine-kv: kv; jsonl: any)",
            format.name(),
            model.as_str()
        ),
    };
    report.ops = ops;
    let (verdict, status) = match result {
        Judged::Linearizable => ("linearizable", "ok"),
        Judged::NotLinearizable { detail } => {
            report.detail = Some(detail);
            ("not-linearizable", "violation")
        }
        Judged::Unknown(why) => {
            report.detail = Some(serde_json::json!({ "text": why, "reason": why }));
            ("unknown", Status::Inconclusive.as_str())
        }
    };
    report.verdict = verdict;
    report.status = status;
    report.properties = vec![PropertyVerdict {
        checker: Checker::Linearizability.name(),
        verdict: match status.parse::<Status>() {
            Ok(Status::Ok) => "ok",
            Ok(Status::Violation) => "violated",
            _ => "unknown",
        },
        notes: Vec::new(),
    }];
    Ok(())
}

/// Every checker (or those `--only` names) over one kvsim MVCC history, as `kvsim run` judges.
fn judge_mvcc(
    file: &Path,
    meta: &serde_json::Value,
    history: &History<MvccOp, MvccRet>,
    args: &CheckArgs,
    budget: &Budget,
    report: &mut FileReport,
) -> Result<()> {
    let invariants = recorded_invariants(file, meta, history)?;
    let options = JudgeOptions {
        budget: *budget,
        durability: durability_options(meta),
        only: args.only.clone(),
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
        let searched = kvsim::verdict::with_lease_expiries(history);
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
            .filter(|finding| Checker::of_property(&finding.property) == *checker)
            .map(|finding| finding.property.clone())
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
fn durability_options(meta: &serde_json::Value) -> DurabilityOptions {
    if is_live(meta) {
        return DurabilityOptions {
            liveness_bound_ns: kvsim::live::LIVENESS_BOUND_NS,
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
fn is_live(meta: &serde_json::Value) -> bool {
    meta["target"] == "etcd"
}

/// The Raft invariant violations the run recorded: `{"type":"raft_invariant","message":...}`
/// records in the history, or else `invariant_violations` of the `summary.json` that
/// `kvsim run` / `fuzz` write beside `history.jsonl` (when its seed is the header's).
/// `None` when neither is there: the property was not recorded.
fn recorded_invariants(
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

/// What is left of the per-file `--timeout` after reading and parsing took their share, so the
/// budget bounds the whole check of a file and not only its search.
fn budget_left(budget: &Budget, started: Instant) -> Budget {
    Budget {
        timeout: budget
            .timeout
            .map(|timeout| timeout.saturating_sub(started.elapsed())),
        ..*budget
    }
}

enum Judged {
    Linearizable,
    NotLinearizable { detail: serde_json::Value },
    Unknown(String),
}

fn judge_linearizability<S>(
    history: &History<S::Op, S::Ret>,
    init: S,
    budget: &Budget,
    opts: &CheckOptions,
) -> Judged
where
    S: Spec,
    S::Op: Clone + Debug,
    S::Ret: Clone + Debug,
{
    match check_with_stats(history, init, budget, opts).0 {
        CheckResult::Linearizable => Judged::Linearizable,
        CheckResult::NotLinearizable(violation) => {
            let mut detail = serde_json::to_value(&violation).expect("violation serializes");
            detail["text"] = serde_json::Value::String(violation.render(history));
            Judged::NotLinearizable { detail }
        }
        CheckResult::Unknown(why) => Judged::Unknown(why),
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

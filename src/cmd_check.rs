//! `kvsim check`: linearizability of recorded histories, one verdict per file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use kvsim_checker::format::{self, jepsen, jsonl, porcupine_kv, Format};
use kvsim_checker::history::History;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::kv::KvStore;
use kvsim_model::mvcc::{MvccModel, Op as MvccOp, Ret as MvccRet};
use kvsim_model::register::CasRegister;
use kvsim_model::Spec;
use serde::Serialize;
use std::fmt::Debug;

use crate::exit::Exit;

#[derive(Args)]
pub struct CheckArgs {
    /// The sequential model; inferred from the format (and a JSONL header) when omitted.
    #[arg(long, value_enum)]
    model: Option<ModelName>,
    /// The history format; inferred from each file's content when omitted.
    #[arg(long, value_enum)]
    format: Option<FormatName>,
    /// Time budget per file, in seconds; a file not decided by then is `unknown` (exit 3).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    timeout: f64,
    /// Memory budget per file, as memoized search nodes (~64 bytes each).
    #[arg(long, value_name = "N", default_value_t = 50_000_000)]
    memo_entries_max: usize,
    /// Check the whole history as one object, even where the model splits it by key.
    #[arg(long)]
    no_partition: bool,
    /// One JSON object per file per line instead of the human table.
    #[arg(long)]
    json: bool,
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
    /// `linearizable` | `not-linearizable` | `unknown` | `error`.
    verdict: &'static str,
    ops: usize,
    elapsed_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn main(args: CheckArgs) -> Result<Exit> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!(
            "--timeout must be a positive number of seconds, got {}",
            args.timeout
        );
    }
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!(
            "no history files found under {}",
            display_paths(&args.paths)
        );
    }
    let budget = Budget {
        timeout: Some(Duration::from_secs_f64(args.timeout)),
        memo_entries_max: Some(args.memo_entries_max),
    };
    let opts = CheckOptions {
        partition: !args.no_partition,
    };
    let mut exit = Exit::Ok;
    let mut totals = Totals::default();
    let started = Instant::now();
    for file in &files {
        let report = check_file(file, &args, &budget, &opts);
        exit = exit.worst(match report.verdict {
            "linearizable" => Exit::Ok,
            "not-linearizable" => Exit::Violation,
            "unknown" => Exit::Inconclusive,
            _ => Exit::BadInput,
        });
        totals.add(&report);
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&report).expect("report serializes")
            );
        } else {
            print_human(&report);
        }
    }
    if !args.json {
        println!(
            "total: {} files, {} ops: {} linearizable, {} not linearizable, {} unknown, {} errors in {:.3} s",
            files.len(),
            totals.ops,
            totals.linearizable,
            totals.violations,
            totals.unknown,
            totals.errors,
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
}

impl Totals {
    fn add(&mut self, report: &FileReport) {
        self.ops += report.ops;
        match report.verdict {
            "linearizable" => self.linearizable += 1,
            "not-linearizable" => self.violations += 1,
            "unknown" => self.unknown += 1,
            _ => self.errors += 1,
        }
    }
}

fn print_human(report: &FileReport) {
    println!(
        "{:<16} {:>8} ops {:>9.3} s  {}  [{}]",
        report.verdict,
        report.ops,
        report.elapsed_ms as f64 / 1000.0,
        report.file,
        report.model
    );
    if let Some(error) = &report.error {
        println!("    {error}");
    }
    if report.verdict == "not-linearizable" || report.verdict == "unknown" {
        if let Some(text) = report
            .detail
            .as_ref()
            .and_then(|d| d.get("text"))
            .and_then(|t| t.as_str())
        {
            for line in text.lines() {
                println!("    {line}");
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
        ops: 0,
        elapsed_ms: 0,
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
    let bytes = std::fs::read(file).with_context(|| format!("{name}: cannot read"))?;
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
    let (result, ops) = match (model, format) {
        (ModelName::Mvcc, Format::Jsonl) => {
            let (_, recorded) = jsonl::read_jsonl::<MvccOp, MvccRet>(&name, text, "mvcc")?;
            let ops = recorded.ops.len();
            let history = crate::verdict::with_lease_expiries(&recorded);
            (judge_linearizability(&history, MvccModel::default(), budget, opts), ops)
        }
        (ModelName::CasRegister, Format::Jsonl) => {
            let (_, history) = jsonl::read_jsonl(&name, text, "cas-register")?;
            (judge_linearizability(&history, CasRegister::default(), budget, opts), history.ops.len())
        }
        (ModelName::CasRegister, Format::Jepsen) => {
            let history = jepsen::read_jepsen(&name, text)?;
            (judge_linearizability(&history, CasRegister::default(), budget, opts), history.ops.len())
        }
        (ModelName::Kv, Format::Jsonl) => {
            let (_, history) = jsonl::read_jsonl(&name, text, "kv")?;
            (judge_linearizability(&history, KvStore::default(), budget, opts), history.ops.len())
        }
        (ModelName::Kv, Format::PorcupineKv) => {
            let history = porcupine_kv::read_porcupine_kv(&name, text)?;
            (judge_linearizability(&history, KvStore::default(), budget, opts), history.ops.len())
        }
        (model, format) => bail!(
            "{name}: the {} format holds no {} history (jepsen: cas-register; porcupine-kv: kv; jsonl: any)",
            format.name(),
            model.as_str()
        ),
    };
    report.ops = ops;
    match result {
        Judged::Linearizable => report.verdict = "linearizable",
        Judged::NotLinearizable { detail } => {
            report.verdict = "not-linearizable";
            report.detail = Some(detail);
        }
        Judged::Unknown(why) => {
            report.verdict = "unknown";
            report.detail = Some(serde_json::json!({ "text": why, "reason": why }));
        }
    }
    Ok(())
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

/// Files named on the command line, plus every regular file below named directories (sorted, so
/// output order is stable). Hidden files and known non-history files (EXPECTED.tsv, README, LICENSE)
/// are skipped inside directories; a file named explicitly is always checked.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: no such file or directory", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list directory", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("{}: cannot list directory", dir.display()))?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_history_name(name) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_history_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jsonl", ".log", ".txt", ".edn"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        && !lower.starts_with("readme")
        && !lower.starts_with("license")
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

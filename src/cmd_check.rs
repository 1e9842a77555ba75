//! `kvsim check`: judges recorded histories, one verdict per file.
//!
//! Jepsen register and porcupine kv logs (and JSONL histories of those models) have one
//! property, linearizability. A kvsim MVCC history gets every checker `kvsim run` uses, through
//! the same `verdict::judge_with`: linearizability (with lease expiries), watch, durability /
//! quorum / convergence / liveness (the liveness bound from the scenario in the header's
//! `meta`), the lock and election recipes, and the Raft invariants the run recorded. `--only`
//! restricts the checkers. The judging of one file is [`kvsim::check_file`]; this file reads the
//! flags, walks the files and prints.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use kvsim_checker::format::Format;
use kvsim_checker::CheckOptions;

use kvsim::check_file::{check_file, CheckFileOptions, FileReport, ModelName, Totals};
use kvsim::cli::{parse_bytes, parse_duration};
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim::verdict::Checker;

#[derive(Args)]
pub struct CheckArgs {
    /// The sequential model; inferred from the format (and a JSONL header) when omitted.
    #[arg(long, value_enum, value_name = "MODEL")]
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
    let options = CheckFileOptions {
        model: args.model,
        format: args.format.map(Format::from),
        file_size_max: args.file_size_max,
        lenient: args.lenient,
        only: args.only.clone(),
        budget: kvsim::memory::budget(args.timeout, memory_max),
        search: CheckOptions {
            partition: !args.no_partition,
        },
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
        let report = check_file(file, &options);
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

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

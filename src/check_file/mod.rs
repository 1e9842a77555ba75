//! Judging one recorded history file: what `kvsim check` does per file, as a library.
//!
//! Jepsen register and porcupine kv logs (and JSONL histories of those models) have one
//! property, linearizability. A kvsim MVCC history gets every checker `kvsim run` uses, through
//! the same [`crate::verdict::judge_with`] (see [`mvcc`]). [`check_file`] never fails: an
//! unreadable or malformed file is a [`FileReport`] with status `error`.

pub mod mvcc;
pub mod report;

use std::fmt::Debug;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::ValueEnum;
use kvsim_checker::format::{self, jepsen, jsonl, porcupine_kv, Format, Strictness};
use kvsim_checker::history::History;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::kv::KvStore;
use kvsim_model::mvcc::{Op as MvccOp, Ret as MvccRet};
use kvsim_model::register::CasRegister;
use kvsim_model::Spec;

use crate::verdict::{Checker, Status};
pub use report::{FileReport, PropertyVerdict, Totals};

/// The sequential models a history can be checked against (`--model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelName {
    Mvcc,
    CasRegister,
    Kv,
}

impl ModelName {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::Mvcc => "mvcc",
            ModelName::CasRegister => "cas-register",
            ModelName::Kv => "kv",
        }
    }
}

/// How every file is read and judged.
#[derive(Clone, Debug)]
pub struct CheckFileOptions {
    /// The model; inferred from the format (and a JSONL header) when `None`.
    pub model: Option<ModelName>,
    /// The format; inferred from each file's content when `None`.
    pub format: Option<Format>,
    /// Largest file read, in bytes.
    pub file_size_max: u64,
    /// Drop (and count) what strict reading refuses.
    pub lenient: bool,
    /// The checkers to run; all of them when empty.
    pub only: Vec<Checker>,
    /// The whole check of one file, reading included.
    pub budget: Budget,
    pub search: CheckOptions,
}

/// Reads and judges `file`; never fails (an error is reported in the [`FileReport`]).
pub fn check_file(file: &Path, options: &CheckFileOptions) -> FileReport {
    let started = Instant::now();
    let mut report = FileReport::new(file.display().to_string());
    match load_and_check(file, options, &mut report) {
        Ok(()) => {}
        Err(error) => report.error = Some(format!("{error:#}")),
    }
    report.elapsed_ms = started.elapsed().as_millis();
    report
}

fn load_and_check(file: &Path, options: &CheckFileOptions, report: &mut FileReport) -> Result<()> {
    let name = file.display().to_string();
    let started = Instant::now();
    let budget = &options.budget;
    let opts = &options.search;
    let bytes = crate::history_files::read_limited(file, options.file_size_max)?;
    let format = match options.format {
        Some(format) => format,
        None => format::detect_format(&name, &bytes)?,
    };
    let text = format::text_of(&name, &bytes)?;
    let model = match (options.model, format) {
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
    if model != ModelName::Mvcc && options.only.iter().any(|c| *c != Checker::Linearizability) {
        bail!(
            "{name}: a {} history has only the linearizability checker (--only {})",
            model.as_str(),
            options
                .only
                .iter()
                .map(|checker| checker.name())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let strictness = if options.lenient {
        Strictness::Lenient
    } else {
        Strictness::Strict
    };
    let (result, ops) = match (model, format) {
        (ModelName::Mvcc, Format::Jsonl) => {
            let (header, recorded, dropped) =
                jsonl::read_jsonl_with::<MvccOp, MvccRet>(&name, text, "mvcc", strictness)?;
            report.dropped = dropped.summary();
            let left = budget_left(budget, started);
            return mvcc::judge_mvcc(file, &header.meta, &recorded, &options.only, &left, report);
        }
        (ModelName::CasRegister, Format::Jsonl) => {
            let (_, history, dropped) =
                jsonl::read_jsonl_with(&name, text, "cas-register", strictness)?;
            report.dropped = dropped.summary();
            let left = budget_left(budget, started);
            let judged = judge_linearizability(&history, CasRegister::default(), &left, opts);
            (judged, history.ops.len())
        }
        (ModelName::CasRegister, Format::Jepsen) => {
            let (history, dropped) = jepsen::read_jepsen_with(&name, text, strictness)?;
            report.dropped = dropped.summary();
            let left = budget_left(budget, started);
            let judged = judge_linearizability(&history, CasRegister::default(), &left, opts);
            (judged, history.ops.len())
        }
        (ModelName::Kv, Format::Jsonl) => {
            let (_, history, dropped) = jsonl::read_jsonl_with(&name, text, "kv", strictness)?;
            report.dropped = dropped.summary();
            let left = budget_left(budget, started);
            let judged = judge_linearizability(&history, KvStore::default(), &left, opts);
            (judged, history.ops.len())
        }
        (ModelName::Kv, Format::PorcupineKv) => {
            let (history, dropped) = porcupine_kv::read_porcupine_kv_with(&name, text, strictness)?;
            report.dropped = dropped.summary();
            let left = budget_left(budget, started);
            let judged = judge_linearizability(&history, KvStore::default(), &left, opts);
            (judged, history.ops.len())
        }
        (model, format) => bail!(
            "{name}: the {} format holds no {} history (jepsen: cas-register; porcupine-kv: kv; \
             jsonl: any)",
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

/// What is left of the per-file `--timeout` after reading and parsing took their share, so the
/// budget bounds the whole check of a file and not only its search.
pub fn budget_left(budget: &Budget, started: Instant) -> Budget {
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

/// Linearizability alone, for register and kv histories.
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

//! The checker benchmark behind `kvsim bench check`: porcupine's own test data (to compare with
//! porcupine's measured times, see `docs/facts.md`), generated MVCC histories, and generated
//! hard cas-register families (`register.rs`), optionally beside porcupine (`porcupine.rs`).
//!
//! Time it in a release build; debug numbers mean little.

pub mod porcupine;
pub mod register;

use std::fmt;
use std::path::Path;
use std::time::Instant;

use kvsim_model::kv::KvStore;
use kvsim_model::mvcc::MvccModel;
use kvsim_model::register::CasRegister;
use serde::Serialize;

use crate::format::{jepsen, porcupine_kv, text_of};
use crate::generate::generate_mvcc_history;
use crate::search::{check_with_stats, Budget, CheckOptions, CheckResult};

/// One measured line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchLine {
    pub name: String,
    pub ops: usize,
    /// `linearizable`, `not linearizable`, `unknown: <why>`, or for a group `103/103 as expected`.
    pub verdict: String,
    pub seconds: f64,
    pub steps: u64,
}

impl fmt::Display for BenchLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<34} {:>7} ops {:>9.3} s {:>11} steps  {}",
            self.name, self.ops, self.seconds, self.steps, self.verdict
        )
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Budget of each single check (the unsplit c50 kv logs need it: porcupine times out at 60 s).
    pub budget: Budget,
    /// Sizes of the generated MVCC histories (32 clients, 1% unknown outcomes).
    pub mvcc_ops: Vec<usize>,
    pub mvcc_clients: usize,
    pub mvcc_unknown_rate: f64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            budget: Budget {
                timeout: Some(std::time::Duration::from_secs(60)),
                memo_entries_max: Some(50_000_000),
            },
            mvcc_ops: vec![10_000, 100_000],
            mvcc_clients: 32,
            mvcc_unknown_rate: 0.01,
        }
    }
}

fn verdict_text(result: &CheckResult) -> String {
    match result {
        CheckResult::Linearizable => "linearizable".into(),
        CheckResult::NotLinearizable(_) => "not linearizable".into(),
        CheckResult::Unknown(why) => format!("unknown: {why}"),
    }
}

/// Runs the benchmark. `anchors` is porcupine's test data directory (with `EXPECTED.tsv`,
/// `jepsen/`, `kv/`), `None` to skip it; `on_line` sees each line as soon as it is measured.
pub fn bench_check(
    anchors: Option<&Path>,
    config: &BenchConfig,
    mut on_line: impl FnMut(&BenchLine),
) -> Result<Vec<BenchLine>, String> {
    let mut lines = Vec::new();
    let mut emit = |line: BenchLine, lines: &mut Vec<BenchLine>| {
        on_line(&line);
        lines.push(line);
    };
    if let Some(anchors) = anchors {
        bench_anchors(anchors, config, &mut |line| emit(line, &mut lines))?;
    }
    for &size in &config.mvcc_ops {
        let history = generate_mvcc_history(
            size as u64,
            size,
            config.mvcc_clients,
            config.mvcc_unknown_rate,
        );
        let started = Instant::now();
        let (result, stats) = check_with_stats(
            &history,
            MvccModel::default(),
            &config.budget,
            &CheckOptions::default(),
        );
        let line = BenchLine {
            name: format!(
                "mvcc generated, {} clients, {}% unknown",
                config.mvcc_clients,
                config.mvcc_unknown_rate * 100.0
            ),
            ops: size,
            verdict: verdict_text(&result),
            seconds: started.elapsed().as_secs_f64(),
            steps: stats.steps,
        };
        emit(line, &mut lines);
    }
    Ok(lines)
}

/// porcupine's Jepsen logs (as one line) and kv logs (split and unsplit), against porcupine's
/// expected verdicts.
fn bench_anchors(
    anchors: &Path,
    config: &BenchConfig,
    emit: &mut dyn FnMut(BenchLine),
) -> Result<(), String> {
    let expected_path = anchors.join("EXPECTED.tsv");
    let expected = std::fs::read_to_string(&expected_path)
        .map_err(|e| format!("{}: {e}", expected_path.display()))?;
    let mut jepsen_files = Vec::new();
    let mut kv_files = Vec::new();
    for (number, line) in expected.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, _, verdict] = fields[..] else {
            return Err(format!(
                "{}:{}: expected file<TAB>model<TAB>verdict",
                expected_path.display(),
                number + 1
            ));
        };
        let linearizable = verdict != "not linearizable";
        if file.starts_with("jepsen/") {
            jepsen_files.push((file.to_string(), linearizable));
        } else if file.starts_with("kv/") {
            kv_files.push((file.to_string(), linearizable));
        }
    }
    let read = |file: &str| -> Result<String, String> {
        let bytes = std::fs::read(anchors.join(file)).map_err(|e| format!("{file}: {e}"))?;
        text_of(file, &bytes)
            .map(str::to_string)
            .map_err(|e| e.to_string())
    };

    // All Jepsen logs, parsed first, then checked back to back (porcupine's figure is the same).
    let mut histories = Vec::new();
    for (file, linearizable) in &jepsen_files {
        histories.push((
            jepsen::read_jepsen(file, &read(file)?).map_err(|e| e.to_string())?,
            *linearizable,
        ));
    }
    let started = Instant::now();
    let (mut agree, mut ops, mut steps) = (0, 0, 0);
    for (history, linearizable) in &histories {
        let (result, stats) = check_with_stats(
            history,
            CasRegister::default(),
            &config.budget,
            &CheckOptions::default(),
        );
        agree += usize::from(matches!(
            (&result, linearizable),
            (CheckResult::Linearizable, true) | (CheckResult::NotLinearizable(_), false)
        ));
        ops += history.ops.len();
        steps += stats.steps;
    }
    let line = BenchLine {
        name: format!("jepsen etcd register, {} logs", histories.len()),
        ops,
        verdict: format!("{agree}/{} as porcupine", histories.len()),
        seconds: started.elapsed().as_secs_f64(),
        steps,
    };
    emit(line);

    for (file, linearizable) in &kv_files {
        let history =
            porcupine_kv::read_porcupine_kv(file, &read(file)?).map_err(|e| e.to_string())?;
        for partition in [true, false] {
            let started = Instant::now();
            let (result, stats) = check_with_stats(
                &history,
                KvStore::default(),
                &config.budget,
                &CheckOptions { partition },
            );
            let as_expected = matches!(
                (&result, linearizable),
                (CheckResult::Linearizable, true) | (CheckResult::NotLinearizable(_), false)
            );
            let line = BenchLine {
                name: format!("{file} {}", if partition { "split" } else { "unsplit" }),
                ops: history.ops.len(),
                verdict: format!(
                    "{}{}",
                    verdict_text(&result),
                    if as_expected {
                        ""
                    } else {
                        " (porcupine disagrees)"
                    }
                ),
                seconds: started.elapsed().as_secs_f64(),
                steps: stats.steps,
            };
            emit(line);
        }
    }

    Ok(())
}

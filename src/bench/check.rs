//! `kvsim bench check`: the linearizability checker on porcupine's test data, on generated MVCC
//! histories and on generated hard cas-register families (beside porcupine when given), with the
//! verdicts compared to the expected ones.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use kvsim_checker::bench::porcupine::Porcupine;
use kvsim_checker::bench::register::{bench_registers, Decided, RegisterFamilyLine, RegisterFile};
use kvsim_checker::bench::{bench_check, BenchConfig, BenchLine};
use kvsim_checker::generate::register::register_families;
use serde_json::json;

use crate::exit::Exit;

/// What `bench check` is asked to do.
pub struct CheckBench {
    /// porcupine's test data (`EXPECTED.tsv`, `jepsen/`, `kv/`); `None` skips it.
    pub anchors: Option<PathBuf>,
    /// Sizes of the generated MVCC histories; `None` skips them.
    pub mvcc_ops: Option<Vec<usize>>,
    /// The cas-register families; `None` skips them.
    pub registers: Option<RegisterBench>,
    /// Time budget of each single check.
    pub timeout: Duration,
}

/// The cas-register part of `bench check`.
pub struct RegisterBench {
    /// Files per family (seeds `0..files`; odd seeds carry a planted stale read).
    pub files: usize,
    /// Where the generated logs are written.
    pub out: PathBuf,
    /// A checkout of porcupine's Go module, to run porcupine beside kvsim.
    pub porcupine: Option<PathBuf>,
}

/// What `bench check` shows as it goes, in order.
pub enum CheckEvent<'a> {
    /// The anchors / MVCC part starts.
    HistoriesStart,
    /// One measured history (or group).
    Line(&'a BenchLine),
    /// This many anchor verdicts differ from porcupine's.
    Disagreements(usize),
    /// porcupine will not run beside kvsim, and why.
    PorcupineSkipped(&'a str),
    /// The register part starts.
    RegistersStart(&'a RegisterBench),
    /// One register file measured.
    RegisterFile(&'a RegisterFile),
    /// One register family's totals.
    Family(&'a RegisterFamilyLine),
}

/// Everything `bench check` measured.
#[derive(Default)]
pub struct CheckBenchReport {
    pub lines: Vec<BenchLine>,
    /// Anchor verdicts that differ from porcupine's.
    pub disagreements: usize,
    /// Why porcupine did not run, when the register part ran without it.
    pub porcupine_skipped: Option<String>,
    pub families: Vec<RegisterFamilyLine>,
}

impl CheckBench {
    /// Runs every selected part, telling `on_event` as it goes.
    pub fn run(&self, mut on_event: impl FnMut(CheckEvent<'_>)) -> Result<CheckBenchReport> {
        let mut config = BenchConfig {
            mvcc_ops: self.mvcc_ops.clone().unwrap_or_default(),
            ..BenchConfig::default()
        };
        config.budget.timeout = Some(self.timeout);
        let mut report = CheckBenchReport::default();
        if self.anchors.is_some() || self.mvcc_ops.is_some() {
            on_event(CheckEvent::HistoriesStart);
            report.lines = bench_check(self.anchors.as_deref(), &config, |line| {
                on_event(CheckEvent::Line(line))
            })
            .map_err(|error| anyhow::anyhow!(error))?;
            report.disagreements = report
                .lines
                .iter()
                .filter(|line| line.verdict.contains("disagree"))
                .count();
            if report.disagreements > 0 {
                on_event(CheckEvent::Disagreements(report.disagreements));
            }
        }
        if let Some(registers) = &self.registers {
            let mut porcupine = match start_porcupine(registers.porcupine.as_ref()) {
                Ok(porcupine) => Some(porcupine),
                Err(why) => {
                    on_event(CheckEvent::PorcupineSkipped(&why));
                    report.porcupine_skipped = Some(why);
                    None
                }
            };
            on_event(CheckEvent::RegistersStart(registers));
            report.families = bench_registers(
                &register_families(),
                registers.files,
                &registers.out,
                &config.budget,
                porcupine.as_mut(),
                |file| on_event(CheckEvent::RegisterFile(file)),
            )
            .map_err(|error| anyhow::anyhow!(error))?;
            for family in &report.families {
                on_event(CheckEvent::Family(family));
            }
        }
        Ok(report)
    }
}

/// porcupine's harness built against the checkout `dir`, or why it cannot run.
fn start_porcupine(dir: Option<&PathBuf>) -> Result<Porcupine, String> {
    let Some(dir) = dir else {
        return Err("no --porcupine DIR (a checkout of its Go module)".into());
    };
    let harness = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/porcupine-bench"
    ));
    Porcupine::start(&harness, dir)
}

impl CheckBenchReport {
    /// Verdicts that differ from the expected ones: anchors against porcupine's, register files
    /// against the constructed ones.
    pub fn wrong(&self) -> usize {
        self.disagreements
            + self
                .families
                .iter()
                .map(RegisterFamilyLine::kvsim_wrong)
                .sum::<usize>()
    }

    /// 0 when every verdict is the expected one, else 1.
    pub fn exit(&self) -> Exit {
        if self.wrong() > 0 {
            Exit::Violation
        } else {
            Exit::Ok
        }
    }

    /// The report as `bench check --json` prints it (without `command` and `exit`).
    pub fn to_json(&self) -> serde_json::Value {
        let families: Vec<serde_json::Value> = self
            .families
            .iter()
            .filter_map(|family| {
                let first = family.files.first()?;
                let porcupine_s: Option<f64> = family
                    .files
                    .iter()
                    .map(|file| file.porcupine.map(|(_, seconds)| seconds))
                    .sum();
                Some(json!({
                    "family": first.family,
                    "files": family.files.len(),
                    "ops_each": first.ops,
                    "kvsim_s": family.files.iter().map(|file| file.kvsim_s).sum::<f64>(),
                    "kvsim_wrong": family.kvsim_wrong(),
                    "kvsim_unknown": family
                        .files
                        .iter()
                        .filter(|file| file.kvsim == Decided::Unknown)
                        .count(),
                    "porcupine_s": porcupine_s,
                    "porcupine_wrong": porcupine_s.map(|_| family.porcupine_wrong()),
                }))
            })
            .collect();
        json!({
            "bench": "check",
            "debug_build": super::DEBUG_BUILD,
            "histories": self.lines,
            "disagreements": self.disagreements,
            "porcupine_skipped": self.porcupine_skipped,
            "register_families": families,
            "wrong": self.wrong(),
        })
    }
}

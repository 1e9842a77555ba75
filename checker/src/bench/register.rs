//! The generated cas-register families (`generate::register`) in the benchmark: each file is
//! written as a Jepsen log, read back through the importer, checked by kvsim and, when a
//! [`Porcupine`] harness is given, by porcupine — alternating which goes first, file by file —
//! and compared with the verdict the file has by construction.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kvsim_model::register::CasRegister;

use super::porcupine::{Porcupine, PorcupineVerdict};
use crate::format::jepsen::read_jepsen;
use crate::generate::register::{register_file, RegisterShape};
use crate::search::{check_with_stats, Budget, CheckOptions, CheckResult};

/// A verdict of either tool, for comparing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    Linearizable,
    NotLinearizable,
    Unknown,
}

impl From<PorcupineVerdict> for Decided {
    fn from(verdict: PorcupineVerdict) -> Self {
        match verdict {
            PorcupineVerdict::Linearizable => Decided::Linearizable,
            PorcupineVerdict::NotLinearizable => Decided::NotLinearizable,
            PorcupineVerdict::Unknown => Decided::Unknown,
        }
    }
}

impl From<&CheckResult> for Decided {
    fn from(result: &CheckResult) -> Self {
        match result {
            CheckResult::Linearizable => Decided::Linearizable,
            CheckResult::NotLinearizable(_) => Decided::NotLinearizable,
            CheckResult::Unknown(_) => Decided::Unknown,
        }
    }
}

/// One generated file, both tools' results on it.
#[derive(Clone, Debug)]
pub struct RegisterFile {
    pub family: &'static str,
    pub path: PathBuf,
    pub ops: usize,
    /// By construction.
    pub linearizable: bool,
    pub kvsim: Decided,
    pub kvsim_s: f64,
    pub steps: u64,
    pub porcupine: Option<(Decided, f64)>,
}

impl RegisterFile {
    fn expected(&self) -> Decided {
        if self.linearizable {
            Decided::Linearizable
        } else {
            Decided::NotLinearizable
        }
    }
}

impl fmt::Display for RegisterFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  {:<52} {:>5} ops  kvsim {:>8.3} s {:<16}",
            self.path.display(),
            self.ops,
            self.kvsim_s,
            format!("{:?}", self.kvsim)
        )?;
        if let Some((verdict, seconds)) = self.porcupine {
            write!(f, "  porcupine {seconds:>8.3} s {verdict:?}")?;
        }
        if self.kvsim != self.expected() {
            write!(f, "  (constructed {:?})", self.expected())?;
        }
        Ok(())
    }
}

/// One family's totals.
#[derive(Clone, Debug)]
pub struct RegisterFamilyLine {
    pub files: Vec<RegisterFile>,
}

impl RegisterFamilyLine {
    /// Files where kvsim's verdict is not the constructed one (an `unknown` counts too).
    pub fn kvsim_wrong(&self) -> usize {
        self.files
            .iter()
            .filter(|file| file.kvsim != Decided::Unknown && file.kvsim != file.expected())
            .count()
    }

    /// Files where porcupine's definite verdict is not the constructed one.
    pub fn porcupine_wrong(&self) -> usize {
        self.files
            .iter()
            .filter(|file| {
                file.porcupine
                    .is_some_and(|(v, _)| v != Decided::Unknown && v != file.expected())
            })
            .count()
    }
}

/// (total seconds, worst seconds, worst file, unknown count) of one tool over `files`.
fn totals(
    files: &[RegisterFile],
    time: impl Fn(&RegisterFile) -> Option<(Decided, f64)>,
) -> Option<(f64, f64, String, usize)> {
    let mut result: Option<(f64, f64, String, usize)> = None;
    for file in files {
        let (verdict, seconds) = time(file)?;
        let entry = result.get_or_insert((0.0, -1.0, String::new(), 0));
        entry.0 += seconds;
        if seconds > entry.1 {
            entry.1 = seconds;
            entry.2 = file
                .path
                .file_name()
                .map_or(String::new(), |name| name.to_string_lossy().into_owned());
        }
        entry.3 += usize::from(verdict == Decided::Unknown);
    }
    result
}

impl fmt::Display for RegisterFamilyLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.files.first() else {
            return Ok(());
        };
        let n = self.files.len();
        let kvsim = totals(&self.files, |file| Some((file.kvsim, file.kvsim_s)));
        let porcupine = totals(&self.files, |file| file.porcupine);
        let as_constructed = n - self.kvsim_wrong() - kvsim.as_ref().map_or(0, |k| k.3);
        writeln!(f, "{} ({n} files, {} ops each)", first.family, first.ops)?;
        if let Some((total, worst, worst_file, unknown)) = &kvsim {
            writeln!(
                f,
                "  kvsim      total {total:>8.3} s  worst {worst:>8.3} s ({worst_file})  unknown {unknown}  {as_constructed}/{n} as constructed"
            )?;
        }
        match &porcupine {
            Some((total, worst, worst_file, unknown)) => {
                let both_decided = self
                    .files
                    .iter()
                    .filter(|file| {
                        file.kvsim != Decided::Unknown
                            && file.porcupine.is_some_and(|(v, _)| v != Decided::Unknown)
                    })
                    .count();
                let agree = self
                    .files
                    .iter()
                    .filter(|file| {
                        file.kvsim != Decided::Unknown
                            && file.porcupine.is_some_and(|(v, _)| v == file.kvsim)
                    })
                    .count();
                let slower = self
                    .files
                    .iter()
                    .filter(|file| file.porcupine.is_some_and(|(_, p)| file.kvsim_s > p))
                    .count();
                let as_constructed = n - self.porcupine_wrong() - unknown;
                writeln!(
                    f,
                    "  porcupine  total {total:>8.3} s  worst {worst:>8.3} s ({worst_file})  unknown {unknown}  {as_constructed}/{n} as constructed"
                )?;
                let kvsim_total = kvsim.as_ref().map_or(0.0, |k| k.0);
                write!(
                    f,
                    "  agreement {agree}/{both_decided} decided by both; porcupine/kvsim total {:.1}x; kvsim slower on {slower} file(s)",
                    total / kvsim_total.max(1e-9)
                )
            }
            None => write!(f, "  porcupine  not run"),
        }
    }
}

/// Generates `files` files of each family into `out_dir` (seeds `0..files`; odd seeds carry a
/// planted stale read), checks each with kvsim and porcupine (if given), and reports each file
/// to `on_file` as it is measured.
pub fn bench_registers(
    families: &[RegisterShape],
    files: usize,
    out_dir: &Path,
    budget: &Budget,
    mut porcupine: Option<&mut Porcupine>,
    mut on_file: impl FnMut(&RegisterFile),
) -> Result<Vec<RegisterFamilyLine>, String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let porcupine_timeout = budget.timeout.unwrap_or(Duration::from_secs(3600));
    let mut lines = Vec::new();
    for shape in families {
        let mut measured = Vec::new();
        for seed in 0..files as u64 {
            let (text, linearizable) = register_file(shape, seed);
            let name = format!("{}-{seed}.log", shape.name.replace([' ', '%'], "-"));
            let path = out_dir.join(&name);
            std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
            let history = read_jepsen(&name, &text).map_err(|e| e.to_string())?;
            let kvsim_run = || {
                let started = Instant::now();
                let (result, stats) = check_with_stats(
                    &history,
                    CasRegister::default(),
                    budget,
                    &CheckOptions::default(),
                );
                (
                    Decided::from(&result),
                    started.elapsed().as_secs_f64(),
                    stats.steps,
                )
            };
            // Alternate which tool goes first, so neither always runs on a warm cache.
            let (kvsim, porcupine_result) = match porcupine.as_deref_mut() {
                None => (kvsim_run(), None),
                Some(harness) if seed % 2 == 0 => {
                    let kvsim = kvsim_run();
                    (kvsim, Some(harness.check(&path, porcupine_timeout)?))
                }
                Some(harness) => {
                    let porcupine = harness.check(&path, porcupine_timeout)?;
                    (kvsim_run(), Some(porcupine))
                }
            };
            let file = RegisterFile {
                family: shape.name,
                path,
                ops: history.ops.len(),
                linearizable,
                kvsim: kvsim.0,
                kvsim_s: kvsim.1,
                steps: kvsim.2,
                porcupine: porcupine_result.map(|(v, s)| (Decided::from(v), s)),
            };
            on_file(&file);
            measured.push(file);
        }
        lines.push(RegisterFamilyLine { files: measured });
    }
    Ok(lines)
}

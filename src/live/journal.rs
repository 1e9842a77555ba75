//! A live run's history on disk while it is recorded: an interrupted, killed or crashed run keeps
//! what it recorded, and `kvsim check` reads it later.
//!
//! Every [`SNAPSHOT_EVERY_MS`] the whole history so far is written to a temporary file and renamed
//! over `history.jsonl` (a rename is atomic, so a reader never sees half a file; a SIGKILL loses
//! at most the last interval). A run records a few thousand operations, so rewriting is cheaper
//! than it looks and needs no second writer beside the recorder. The signal handler writes one
//! last snapshot before it stops the members.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kvsim_sim::client::Recorder;

/// How often the history is written while the run goes on (and a progress line printed).
pub const SNAPSHOT_EVERY_MS: u64 = 2_000;

#[derive(Clone)]
pub struct Journal {
    path: PathBuf,
    recorder: Recorder,
    /// The history header's metadata, completed once the cluster is known.
    meta: Arc<Mutex<serde_json::Value>>,
}

impl Journal {
    pub fn new(dir: &Path, recorder: Recorder, meta: serde_json::Value) -> Journal {
        Journal {
            path: dir.join("history.jsonl"),
            recorder,
            meta: Arc::new(Mutex::new(meta)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Sets one field of the header's metadata.
    pub fn set_meta(&self, field: &str, value: serde_json::Value) {
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        meta[field] = value;
    }

    /// Writes the history recorded so far (see the module doc).
    pub fn save(&self) -> Result<()> {
        let history = self.recorder.history();
        let meta = self.meta.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let partial = self.path.with_extension("jsonl.partial");
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&partial)
                .with_context(|| format!("{}: cannot create", partial.display()))?,
        );
        kvsim_checker::format::jsonl::write_jsonl(&mut file, "mvcc", &meta, &history)
            .and_then(|()| std::io::Write::flush(&mut file))
            .with_context(|| format!("{}: cannot write", partial.display()))?;
        drop(file);
        std::fs::rename(&partial, &self.path)
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }

    /// Saves every [`SNAPSHOT_EVERY_MS`] and shows the run's progress until `deadline` (the
    /// workload's end, `started` its start): a bar with operations recorded, failures, faults
    /// and ETA where stderr is a terminal, else the same as one line each time (a CI log).
    /// Returns at the deadline; the caller saves the final history.
    pub async fn keep_saving(self, started: Instant, deadline: Instant) {
        let total_s = deadline.saturating_duration_since(started).as_secs().max(1);
        let bar = crate::progress::seconds_bar(total_s);
        loop {
            tokio::time::sleep(Duration::from_millis(SNAPSHOT_EVERY_MS)).await;
            if let Err(error) = self.save() {
                bar.suspend(|| eprintln!("kvsim live: {error:#}"));
            }
            let counts = Counts::of(&self.recorder.history());
            let elapsed_s = started.elapsed().as_secs().min(total_s);
            let left_s = deadline.saturating_duration_since(Instant::now()).as_secs();
            if bar.is_hidden() {
                eprintln!("live: {elapsed_s}/{total_s} s, {counts}, ETA {left_s} s (then the settle and the check)");
            } else {
                bar.set_position(elapsed_s);
                bar.set_message(counts.to_string());
            }
            if left_s == 0 {
                bar.finish_and_clear();
                return;
            }
        }
    }
}

/// What the progress shows of the history so far.
struct Counts {
    ops: usize,
    ok: usize,
    fail: usize,
    unknown: usize,
    faults: usize,
}

impl Counts {
    fn of(
        history: &kvsim_checker::history::History<kvsim_model::mvcc::Op, kvsim_model::mvcc::Ret>,
    ) -> Counts {
        use kvsim_checker::history::Outcome;
        let count = |wanted: fn(&Outcome<kvsim_model::mvcc::Ret>) -> bool| {
            history.ops.iter().filter(|op| wanted(&op.outcome)).count()
        };
        Counts {
            ops: history.ops.len(),
            ok: count(|outcome| matches!(outcome, Outcome::Ok { .. })),
            fail: count(|outcome| matches!(outcome, Outcome::Fail { .. })),
            unknown: count(|outcome| matches!(outcome, Outcome::Unknown { .. })),
            // Injections only: heals, restarts, resumes and skipped faults are not faults.
            faults: history
                .faults
                .iter()
                .filter(|fault| {
                    !matches!(
                        fault.kind.as_str(),
                        "heal" | "heal_all" | "restart" | "resume" | "skipped"
                    )
                })
                .count(),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ops recorded ({} ok, {} fail, {} unknown), {} faults",
            self.ops, self.ok, self.fail, self.unknown, self.faults
        )
    }
}

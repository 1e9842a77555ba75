//! Hard cas-register histories in Jepsen's etcd log format (`format::jepsen`), seeded: the
//! shape on which issue 11 measured the search far slower than porcupine.
//!
//! A small discrete-event simulation: `processes` clients each run one operation at a time
//! (reads 45%, writes 30%, cas 25%) against one register. An operation takes effect at a point
//! strictly inside its interval, in global time order, so the history is linearizable by
//! construction. 10% of operations last 3x longer than the rest. A cas compares with the
//! register's value at its call 60% of the time, else with an older written value. A fraction
//! `info_rate` of writes and cas time out (`:info`): half of those take effect (at any moment
//! after the call, possibly after the timeout), half never do, and the process is replaced by
//! a new id, as Jepsen does.
//!
//! [`plant_stale_read`] then changes one read's answer to a value that no linearization allows,
//! so that half of a family's files must be reported not linearizable (argued at the function).

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The shape of a family of generated register histories.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterShape {
    /// Name in benchmark output.
    pub name: &'static str,
    /// Operations invoked, in all.
    pub ops: usize,
    /// Concurrent processes, drawn per file from this inclusive range.
    pub processes_min: usize,
    pub processes_max: usize,
    /// Every written value unique (a counter); else drawn from `0..SHARED_VALUES` (Jepsen's
    /// etcd test writes 0–4).
    pub unique_values: bool,
    /// Fraction of writes and cas that end `:info`.
    pub info_rate: f64,
}

/// Values a shape without unique values draws from.
const SHARED_VALUES: i64 = 5;
/// Fraction of operations that last `LONG_FACTOR` times longer than the rest.
const LONG_RATE: f64 = 0.10;
const LONG_FACTOR: u64 = 3;
/// How often a cas compares with the register's current value (else with an older one).
const CAS_CURRENT_RATE: f64 = 0.6;

/// The benchmark's families: issue 11's hard shape, its three variants, and the milder one.
pub fn register_families() -> Vec<RegisterShape> {
    let hard = RegisterShape {
        name: "register hard",
        ops: 2_000,
        processes_min: 10,
        processes_max: 10,
        unique_values: true,
        info_rate: 0.06,
    };
    vec![
        hard.clone(),
        RegisterShape {
            name: "register hard 20 procs",
            processes_min: 20,
            processes_max: 20,
            ..hard.clone()
        },
        RegisterShape {
            name: "register hard 5000 ops",
            ops: 5_000,
            ..hard.clone()
        },
        RegisterShape {
            name: "register hard 10% info",
            info_rate: 0.10,
            ..hard.clone()
        },
        RegisterShape {
            name: "register mild",
            processes_min: 5,
            processes_max: 10,
            unique_values: false,
            ..hard
        },
    ]
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Read,
    Write(i64),
    Cas(i64, i64),
}

/// How an operation ended, as the log says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Read(Option<i64>),
    Written,
    Swapped,
    CasFailed,
    /// `:info`: timed out; `applied` says whether it took effect.
    Info {
        applied: bool,
    },
}

#[derive(Clone, Debug)]
struct GeneratedOp {
    process: u64,
    call: Call,
    end: End,
    /// Index of the op's invoke and completion lines.
    call_line: usize,
    end_line: usize,
}

impl GeneratedOp {
    /// The value this op may write, if it may write one (a failed cas never does).
    fn may_write(&self) -> Option<i64> {
        match (self.call, self.end) {
            (_, End::CasFailed) | (Call::Read, _) => None,
            (Call::Write(value), _) | (Call::Cas(_, value), _) => Some(value),
        }
    }

    /// The value this op definitely wrote, if it is a definite successful write or cas.
    fn wrote(&self) -> Option<i64> {
        match self.end {
            End::Written | End::Swapped => self.may_write(),
            _ => None,
        }
    }
}

/// A generated history: its operations and the log lines' order.
#[derive(Clone, Debug)]
pub struct RegisterHistory {
    ops: Vec<GeneratedOp>,
    /// (op index, is the completion) in log order.
    lines: Vec<(usize, bool)>,
    /// Register values in the order they were taken, from nil on.
    values_taken: Vec<Option<i64>>,
    /// The read whose answer [`plant_stale_read`] changed, if any.
    pub planted_read: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The process in this slot calls its next operation.
    Call(usize),
    /// This op takes effect.
    Apply(usize),
    /// This op's completion line (its process continues).
    Complete(usize),
}

/// A linearizable history of `shape`, deterministic in `seed`.
pub fn generate_register_history(shape: &RegisterShape, seed: u64) -> RegisterHistory {
    let mut rng = SmallRng::seed_from_u64(seed);
    let processes = rng.gen_range(shape.processes_min.max(1)..=shape.processes_max.max(1));
    let mut slot_process: Vec<u64> = (0..processes as u64).collect();
    let mut next_process = processes as u64;
    let mut value: Option<i64> = None;
    let mut values_taken = vec![None];
    let mut written: Vec<i64> = Vec::new();
    let mut next_value = 1i64;
    let mut ops: Vec<GeneratedOp> = Vec::with_capacity(shape.ops);
    let mut lines = Vec::with_capacity(shape.ops * 2);
    // (time, sequence: ties in push order, event)
    let mut queue: BinaryHeap<Reverse<(u64, u64, Event)>> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut push = |queue: &mut BinaryHeap<_>, time: u64, event: Event| {
        sequence += 1;
        queue.push(Reverse((time, sequence, event)));
    };
    for slot in 0..processes {
        let start = rng.gen_range(0..50);
        push(&mut queue, start, Event::Call(slot));
    }
    let mut slot_of_op: Vec<usize> = Vec::with_capacity(shape.ops);
    while let Some(Reverse((now, _, event))) = queue.pop() {
        match event {
            Event::Call(slot) => {
                if ops.len() >= shape.ops {
                    continue;
                }
                let mut fresh = |rng: &mut SmallRng| {
                    if shape.unique_values {
                        next_value += 1;
                        next_value - 1
                    } else {
                        rng.gen_range(0..SHARED_VALUES)
                    }
                };
                let draw: f64 = rng.gen();
                let call = if draw < 0.45 {
                    Call::Read
                } else if draw < 0.75 || written.is_empty() {
                    Call::Write(fresh(&mut rng))
                } else {
                    let to = fresh(&mut rng);
                    let from = match value {
                        Some(current) if rng.gen_bool(CAS_CURRENT_RATE) => current,
                        _ => written[rng.gen_range(0..written.len())],
                    };
                    Call::Cas(from, to)
                };
                if let Some(v) = match call {
                    Call::Write(v) | Call::Cas(_, v) => Some(v),
                    Call::Read => None,
                } {
                    written.push(v);
                }
                let mut duration = rng.gen_range(10..100u64);
                if rng.gen_bool(LONG_RATE) {
                    duration *= LONG_FACTOR;
                }
                let times_out = call != Call::Read && rng.gen_bool(shape.info_rate);
                let index = ops.len();
                ops.push(GeneratedOp {
                    process: slot_process[slot],
                    call,
                    // A definite op's end is set when it takes effect (before it completes).
                    end: if times_out {
                        End::Info { applied: false }
                    } else {
                        End::Written
                    },
                    call_line: lines.len(),
                    end_line: usize::MAX,
                });
                slot_of_op.push(slot);
                lines.push((index, false));
                if times_out {
                    if rng.gen_bool(0.5) {
                        ops[index].end = End::Info { applied: true };
                        let late = now + rng.gen_range(1..LONG_FACTOR * duration);
                        push(&mut queue, late, Event::Apply(index));
                    }
                } else {
                    push(
                        &mut queue,
                        now + rng.gen_range(1..duration),
                        Event::Apply(index),
                    );
                }
                push(&mut queue, now + duration, Event::Complete(index));
            }
            Event::Apply(index) => {
                let op = &mut ops[index];
                let end = match op.call {
                    Call::Read => End::Read(value),
                    Call::Write(v) => {
                        value = Some(v);
                        End::Written
                    }
                    Call::Cas(from, to) if value == Some(from) => {
                        value = Some(to);
                        End::Swapped
                    }
                    Call::Cas(..) => End::CasFailed,
                };
                if values_taken.last() != Some(&value) {
                    values_taken.push(value);
                }
                if !matches!(op.end, End::Info { .. }) {
                    op.end = end;
                }
            }
            Event::Complete(index) => {
                let slot = slot_of_op[index];
                ops[index].end_line = lines.len();
                lines.push((index, true));
                if matches!(ops[index].end, End::Info { .. }) {
                    slot_process[slot] = next_process;
                    next_process += 1;
                }
                let think = rng.gen_range(0..20);
                push(&mut queue, now + think, Event::Call(slot));
            }
        }
    }
    assert!(
        ops.iter().all(|op| op.end_line != usize::MAX),
        "register generator: every op returned"
    );
    RegisterHistory {
        ops,
        lines,
        values_taken,
        planted_read: None,
    }
}

/// Changes one read's answer so that no linearization exists; `false` if the history has no
/// read where that is possible (then it is left unchanged).
///
/// The rule: take a read R and a definite write (or successful cas) W that completed before R
/// was called, writing v2. R is changed to answer v1 ≠ v2 such that no operation that may write
/// v1 (a write of v1, a cas to v1 not known to have failed) was called before R returned and
/// did not complete before W was called. Then the history is not linearizable: R must come
/// after W, and the value R sees was written by the last write ordered before it, which is W
/// or an op ordered after W; such an op did not complete before W's call and was called before
/// R returned, so it does not write v1 (and nil is never written).
pub fn plant_stale_read(history: &mut RegisterHistory, seed: u64) -> bool {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5354_414c_4521);
    let mut reads: Vec<usize> = (0..history.ops.len())
        .filter(|&i| matches!(history.ops[i].end, End::Read(_)))
        .collect();
    reads.shuffle(&mut rng);
    for read in reads {
        let (read_call, read_end) = (history.ops[read].call_line, history.ops[read].end_line);
        let End::Read(answered) = history.ops[read].end else {
            continue;
        };
        // The last definite write completed before R's call.
        let Some(write) = (0..history.ops.len())
            .filter(|&i| history.ops[i].wrote().is_some() && history.ops[i].end_line < read_call)
            .max_by_key(|&i| history.ops[i].end_line)
        else {
            continue;
        };
        let written = history.ops[write].wrote();
        let write_call = history.ops[write].call_line;
        let possible = |v1: Option<i64>| {
            v1 != answered
                && v1 != written
                && history.ops.iter().all(|op| {
                    v1.is_none()
                        || op.may_write() != v1
                        || op.call_line > read_end
                        || (op.end_line < write_call && !matches!(op.end, End::Info { .. }))
                })
        };
        // The most recent value that qualifies: the stalest read is the least obvious.
        let stale = history
            .values_taken
            .iter()
            .rev()
            .copied()
            .find(|&v1| possible(v1));
        if let Some(v1) = stale {
            history.ops[read].end = End::Read(v1);
            history.planted_read = Some(read);
            return true;
        }
    }
    false
}

impl RegisterHistory {
    /// The history as a Jepsen etcd log (`INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]`).
    pub fn to_jepsen_log(&self) -> String {
        let mut text = String::with_capacity(self.lines.len() * 40);
        for &(index, is_end) in &self.lines {
            let op = &self.ops[index];
            let (kind, f, value) = if !is_end {
                let (f, value) = describe_call(op.call);
                (":invoke", f, value)
            } else {
                let (f, call_value) = describe_call(op.call);
                match op.end {
                    End::Read(value) => (":ok", f, value.map_or("nil".into(), |v| v.to_string())),
                    End::Written | End::Swapped => (":ok", f, call_value),
                    End::CasFailed => (":fail", f, call_value),
                    End::Info { .. } => (":info", f, ":timed-out".into()),
                }
            };
            text.push_str(&format!(
                "INFO  jepsen.util - {}\t{kind}\t{f}\t{value}\n",
                op.process
            ));
        }
        text
    }

    /// Operations invoked.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

fn describe_call(call: Call) -> (&'static str, String) {
    match call {
        Call::Read => (":read", "nil".into()),
        Call::Write(value) => (":write", value.to_string()),
        Call::Cas(from, to) => (":cas", format!("[{from} {to}]")),
    }
}

/// One file of a family: seed `seed`, with a planted stale read iff `seed` is odd (so half the
/// files of seeds `0..n` are linearizable). Returns the log and whether it is linearizable.
pub fn register_file(shape: &RegisterShape, seed: u64) -> (String, bool) {
    let mut history = generate_register_history(shape, seed);
    let planted = seed % 2 == 1 && plant_stale_read(&mut history, seed);
    (history.to_jepsen_log(), !planted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(unique_values: bool) -> RegisterShape {
        RegisterShape {
            name: "small",
            ops: 300,
            processes_min: 5,
            processes_max: 10,
            unique_values,
            info_rate: 0.06,
        }
    }

    #[test]
    fn shape_is_as_asked() {
        let shape = register_families()[0].clone();
        let history = generate_register_history(&shape, 3);
        assert_eq!(history.len(), 2_000);
        let count =
            |pred: fn(&GeneratedOp) -> bool| history.ops.iter().filter(|op| pred(op)).count();
        let reads = count(|op| op.call == Call::Read);
        let writes = count(|op| matches!(op.call, Call::Write(_)));
        let infos = count(|op| matches!(op.end, End::Info { .. }));
        assert!((800..1000).contains(&reads), "{reads} reads");
        assert!((500..700).contains(&writes), "{writes} writes");
        assert!((40..110).contains(&infos), "{infos} :info");
        let mut values: Vec<i64> = history
            .ops
            .iter()
            .filter_map(GeneratedOp::may_write)
            .collect();
        let all = values.len();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), all, "unique written values");
        let processes: std::collections::BTreeSet<u64> =
            history.ops.iter().map(|op| op.process).collect();
        assert_eq!(
            processes.len(),
            10 + infos,
            "a new process after each :info"
        );
        assert_eq!(
            generate_register_history(&shape, 3).to_jepsen_log(),
            history.to_jepsen_log(),
            "deterministic in the seed"
        );
    }

    #[test]
    fn planting_changes_exactly_one_read() {
        for unique_values in [true, false] {
            let shape = small(unique_values);
            let clean = generate_register_history(&shape, 11);
            let mut planted = clean.clone();
            assert!(plant_stale_read(&mut planted, 11));
            let changed: Vec<usize> = (0..clean.ops.len())
                .filter(|&i| clean.ops[i].end != planted.ops[i].end)
                .collect();
            assert_eq!(changed, vec![planted.planted_read.unwrap()]);
        }
    }
}

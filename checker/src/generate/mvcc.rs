//! Linearizable MVCC histories of any size, for benchmarks: a small discrete-event simulation of
//! clients against the sequential [`MvccModel`].
//!
//! Each client runs operations one after another. An operation is called at some time, takes
//! effect at a linearization point later in its interval (the model answers then, in global
//! time order), and returns later still; intervals of different clients overlap at random. With
//! probability `unknown_rate` the client times out instead: the operation's outcome is unknown,
//! it takes effect (at a point that may lie after the timeout) or it is lost, half and half, and
//! the client continues under a fresh client id (Jepsen's process rule). The result is
//! linearizable by construction, so the checker must say so.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use kvsim_model::mvcc::gen::{DrawKnobs, OpDrawer};
use kvsim_model::mvcc::{MvccModel, Op, Ret};
use kvsim_model::SequentialSpec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::history::{History, Operation, Outcome};

/// Keys the generated workload touches.
const KEYS: [&str; 16] = [
    "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12",
    "k13", "k14", "k15",
];
/// Client-side timeout after which an operation's outcome is unknown.
const TIMEOUT_NS: u64 = 50_000_000;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The client calls its next operation.
    Call,
    /// The in-flight operation of this client takes effect.
    Apply,
    /// The client receives the answer (or gives up).
    Return,
    /// A timed-out operation takes effect late (or is lost), independently of its client.
    LateApply(usize),
}

/// A linearizable history of `ops` MVCC operations by `clients` concurrent clients, a fraction
/// `unknown_rate` of them with unknown outcome. Deterministic in `seed`.
pub fn generate_mvcc_history(
    seed: u64,
    ops: usize,
    clients: usize,
    unknown_rate: f64,
) -> History<Op, Ret> {
    let clients = clients.max(1);
    let unknown_rate = unknown_rate.clamp(0.0, 1.0);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut model = MvccModel::default();
    let knobs = DrawKnobs::over(&KEYS);
    let mut gens: Vec<OpDrawer> = (0..clients)
        .map(|client| OpDrawer::new(client, knobs.clone()))
        .collect();
    let mut history: History<Op, Ret> = History::default();
    // Per client: its current id, and its in-flight op (index into history.ops, timed out?).
    let mut client_ids: Vec<u64> = (0..clients as u64).collect();
    let mut next_client_id = clients as u64;
    let mut in_flight: Vec<Option<(usize, bool)>> = vec![None; clients];
    let mut answers: Vec<Option<Ret>> = vec![None; clients];
    // (time, sequence for determinism, client, event)
    let mut queue: BinaryHeap<Reverse<(u64, u64, usize, Event)>> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut push = |queue: &mut BinaryHeap<_>, time: u64, client: usize, event: Event| {
        sequence += 1;
        queue.push(Reverse((time, sequence, client, event)));
    };
    for client in 0..clients {
        let start = rng.gen_range(0..1_000_000);
        push(&mut queue, start, client, Event::Call);
    }
    while let Some(Reverse((now, _, client, event))) = queue.pop() {
        match event {
            Event::Call => {
                if history.ops.len() >= ops {
                    continue;
                }
                let input = gens[client].next(&mut rng, 0);
                let timed_out = rng.gen_bool(unknown_rate);
                in_flight[client] = Some((history.ops.len(), timed_out));
                history.ops.push(Operation {
                    id: history.ops.len() as u64,
                    client: client_ids[client],
                    call_ns: now,
                    return_ns: None,
                    input,
                    outcome: Outcome::Unknown {
                        error: "timeout".into(),
                    },
                });
                let index = history.ops.len() - 1;
                if timed_out {
                    let late = now + rng.gen_range(0..2 * TIMEOUT_NS);
                    push(&mut queue, late, client, Event::LateApply(index));
                    push(&mut queue, now + TIMEOUT_NS, client, Event::Return);
                } else {
                    push(
                        &mut queue,
                        now + rng.gen_range(100_000..3_000_000),
                        client,
                        Event::Apply,
                    );
                }
            }
            Event::Apply => {
                let Some((index, _)) = in_flight[client] else {
                    continue;
                };
                answers[client] = Some(model.invoke(&history.ops[index].input));
                push(
                    &mut queue,
                    now + rng.gen_range(100_000..3_000_000),
                    client,
                    Event::Return,
                );
            }
            Event::LateApply(index) => {
                if rng.gen_bool(0.5) {
                    model.invoke(&history.ops[index].input);
                }
            }
            Event::Return => {
                let Some((index, timed_out)) = in_flight[client].take() else {
                    continue;
                };
                if timed_out {
                    history.ops[index].return_ns = Some(now);
                    client_ids[client] = next_client_id;
                    next_client_id += 1;
                } else if let Some(ret) = answers[client].take() {
                    gens[client].observe(&history.ops[index].input, &ret);
                    history.ops[index].return_ns = Some(now);
                    history.ops[index].outcome = Outcome::Ok { output: ret };
                }
                push(
                    &mut queue,
                    now + rng.gen_range(0..500_000),
                    client,
                    Event::Call,
                );
            }
        }
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{check, Budget, CheckOptions, CheckResult};

    #[test]
    fn generated_histories_are_deterministic_and_linearizable() {
        let history = generate_mvcc_history(7, 600, 8, 0.05);
        assert_eq!(history.ops.len(), 600);
        assert_eq!(history, generate_mvcc_history(7, 600, 8, 0.05));
        assert!(history
            .ops
            .windows(2)
            .all(|pair| pair[0].call_ns <= pair[1].call_ns));
        let unknown = history
            .ops
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Unknown { .. }))
            .count();
        assert!((5..=80).contains(&unknown), "{unknown} unknown outcomes");
        let result = check(
            &history,
            MvccModel::default(),
            &Budget::default(),
            &CheckOptions::default(),
        );
        assert_eq!(result, CheckResult::Linearizable);
    }

    #[test]
    fn a_changed_answer_is_caught() {
        let mut history = generate_mvcc_history(8, 300, 6, 0.0);
        // Make one successful put claim a revision from the future.
        let put = history
            .ops
            .iter_mut()
            .find(|op| {
                matches!(
                    op.outcome,
                    Outcome::Ok {
                        output: Ret::Ok(kvsim_model::mvcc::Response::Put(_))
                    }
                )
            })
            .expect("the mix has puts");
        if let Outcome::Ok {
            output: Ret::Ok(kvsim_model::mvcc::Response::Put(response)),
        } = &mut put.outcome
        {
            response.header.revision += 1000;
        }
        let result = check(
            &history,
            MvccModel::default(),
            &Budget::default(),
            &CheckOptions::default(),
        );
        assert!(
            matches!(result, CheckResult::NotLinearizable(_)),
            "{result:?}"
        );
    }
}

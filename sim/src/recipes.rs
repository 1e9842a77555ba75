//! Client-side recipes on top of the KV API: a lease-based lock (the create-if-absent txn lock)
//! and leader election (etcd's `concurrency.Election`: create the election key if absent, with a
//! lease; lead while it exists; resign by deleting it).
//!
//! Every step is an ordinary operation executed (and recorded) by [`Client`]; the recipes add
//! `recipe` records saying what the client believes (`acquire`, `fenced_write`, `lost`,
//! `release`, `elected`, `resign`, ...). Each names the recipe, its key and (locks) the protected
//! key, which is how `kvsim_checker::recipes::check_recipes` learns which keys to judge — the
//! judgement itself uses the operations only.
//!
//! A correct holder fences every protected write with `create_revision(lock) == R` (R = the
//! revision it acquired with; Kleppmann's fencing token) and gives up as soon as a keep-alive or
//! a fenced write fails. With the `lock_unfenced` bug it writes with a plain put and ignores
//! keep-alive failures, so after a client stall longer than the lease TTL its write can land while
//! another holder has the lock.
//!
//! Client stalls (`workload.recipe_stall_probability`) model a paused client process (GC pause,
//! SIGSTOP): no request and no keep-alive for a while, then it carries on where it was.
//!
//! The recipes run in the simulator and, through [`RecipeEnv`], against a real etcd (`kvsim
//! live`): the environment executes and records operations, sleeps, tells the time and the
//! deadline, and draws the random numbers.

use crate::client::{Client, Recorder};
use crate::scenario::WorkloadKnobs;
use crate::workload::Shared;
use kvsim_checker::history::Outcome;
use kvsim_checker::recipes::HOLDER_SEPARATOR;
use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, Op, PutRequest, RangeRequest,
    RequestOp, Response, Ret, TxnRequest,
};
use madsim::rand::{thread_rng, Rng};
use madsim::time::{sleep, Instant};
use serde_json::json;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// The lock every locker competes for, and the key only its holder may write.
pub const LOCK_KEY: &str = "lock/0";
pub const PROTECTED_KEY: &str = "locked/0";
/// The key campaigners compete for.
pub const ELECTION_KEY: &str = "election/0";

/// Lease ids: `(base + index + 1) · 10⁹ + counter`, above every workload client's
/// `(client + 1) · 10⁹ + counter` (at most 256 clients), so ids stay unique in the run.
const LOCKER_LEASE_BASE: i64 = 1_000;
const CAMPAIGNER_LEASE_BASE: i64 = 2_000;

/// Pause between two create-if-absent attempts while someone else holds the key.
const POLL_MS: u64 = 200;

fn lease_id(base: i64, index: usize, counter: u64) -> i64 {
    (base + index as i64 + 1) * 1_000_000_000 + counter as i64
}

fn create_revision_is(key: &str, revision: i64) -> Compare {
    Compare {
        key: key.to_string(),
        result: CompareResult::Equal,
        target: CompareTarget::CreateRevision(revision),
    }
}

/// `create_revision(key) == 0 → put(key, holder, lease)`, else read the key.
fn create_if_absent(key: &str, holder: &str, lease: i64) -> Op {
    Op::Txn(TxnRequest {
        compare: vec![create_revision_is(key, 0)],
        success: vec![RequestOp::Put(PutRequest {
            key: key.to_string(),
            value: holder.to_string(),
            lease,
            ..Default::default()
        })],
        failure: vec![RequestOp::Range(RangeRequest {
            key: key.to_string(),
            ..Default::default()
        })],
    })
}

/// `create_revision(key) == created → delete(key)`: never deletes another holder's instance.
fn delete_own(key: &str, created: i64) -> Op {
    Op::Txn(TxnRequest {
        compare: vec![create_revision_is(key, created)],
        success: vec![RequestOp::DeleteRange(DeleteRangeRequest {
            key: key.to_string(),
            ..Default::default()
        })],
        failure: vec![],
    })
}

/// `Some((succeeded, header revision))` when a txn returned a response.
fn txn_result(outcome: &Outcome<Ret>) -> Option<(bool, i64)> {
    match outcome {
        Outcome::Ok {
            output: Ret::Ok(Response::Txn(txn)),
        } => Some((txn.succeeded, txn.header.revision)),
        _ => None,
    }
}

fn is_ok(outcome: &Outcome<Ret>) -> bool {
    matches!(outcome, Outcome::Ok { output: Ret::Ok(_) })
}

/// What a recipe task needs from the world it runs in.
pub trait RecipeEnv {
    /// Executes `op` once (never retried) and records it in the history.
    fn execute(&mut self, op: Op) -> impl Future<Output = Outcome<Ret>> + Send;
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
    /// Whether the workload's deadline is still ahead.
    fn before_deadline(&self) -> bool;
    fn knobs(&self) -> &WorkloadKnobs;
    fn recorder(&self) -> &Recorder;
    fn gen_bool(&mut self, probability: f64) -> bool;
    fn gen_range(&mut self, range: RangeInclusive<u64>) -> u64;
}

/// The simulator's environment: the simulated client, madsim's clock, sleep and RNG.
struct Simulated {
    client: Client,
    shared: Arc<Shared>,
}

impl RecipeEnv for Simulated {
    fn execute(&mut self, op: Op) -> impl Future<Output = Outcome<Ret>> + Send {
        self.client.execute(op)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        sleep(duration)
    }

    fn before_deadline(&self) -> bool {
        Instant::now() < self.shared.deadline
    }

    fn knobs(&self) -> &WorkloadKnobs {
        &self.shared.knobs
    }

    fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    fn gen_bool(&mut self, probability: f64) -> bool {
        thread_rng().gen_bool(probability)
    }

    fn gen_range(&mut self, range: RangeInclusive<u64>) -> u64 {
        thread_rng().gen_range(range)
    }
}

/// Which recipe a task runs, with its keys and names.
#[derive(Clone, Copy)]
enum Kind {
    Lock,
    Election,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Lock => LOCK_KEY,
            Kind::Election => ELECTION_KEY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Lock => "lock",
            Kind::Election => "election",
        }
    }
}

/// One recipe task's environment, identity and bookkeeping.
struct Participant<E: RecipeEnv> {
    kind: Kind,
    env: E,
    index: usize,
    counter: u64,
}

impl<E: RecipeEnv> Participant<E> {
    fn record(&self, action: &str, holder: &str, fields: serde_json::Value) {
        let mut record = json!({
            "recipe": self.kind.name(),
            "action": action,
            "participant": self.index,
            "holder": holder,
            "key": self.kind.key(),
        });
        if let Kind::Lock = self.kind {
            record["protected_key"] = PROTECTED_KEY.into();
        }
        if let (Some(record), serde_json::Value::Object(extra)) = (record.as_object_mut(), fields) {
            record.extend(extra);
        }
        self.env.recorder().other("recipe", record);
    }

    fn before_deadline(&self) -> bool {
        self.env.before_deadline()
    }

    /// Nanoseconds since the run's start, on the recorder's clock (simulated or wall).
    fn now_ns(&self) -> u64 {
        self.env.recorder().now_ns()
    }

    async fn sleep_ms(&self, duration_ms: u64) {
        self.env.sleep(Duration::from_millis(duration_ms)).await;
    }

    /// Sometimes the client process stalls: no request, no keep-alive.
    async fn maybe_stall(&mut self, holder: &str) {
        let (stall_ms_max, probability) = (
            self.env.knobs().recipe_stall_ms_max,
            self.env.knobs().recipe_stall_probability,
        );
        if stall_ms_max == 0 || !self.env.gen_bool(probability) {
            return;
        }
        let stall_ms = self.env.gen_range(1..=stall_ms_max);
        self.record("stall", holder, json!({ "stall_ms": stall_ms }));
        self.sleep_ms(stall_ms).await;
    }

    async fn keep_alive(&mut self, lease: i64) -> bool {
        is_ok(&self.env.execute(Op::LeaseKeepAlive { id: lease }).await)
    }

    /// Grants a fresh lease and creates the key with it, polling while someone else holds it.
    /// Returns `(holder, lease, create revision)`, or `None` at the deadline.
    async fn acquire(&mut self) -> Option<(String, i64, i64)> {
        let prefix = match self.kind {
            Kind::Lock => 'L',
            Kind::Election => 'E',
        };
        let base = match self.kind {
            Kind::Lock => LOCKER_LEASE_BASE,
            Kind::Election => CAMPAIGNER_LEASE_BASE,
        };
        while self.before_deadline() {
            self.counter += 1;
            let holder = format!("{prefix}{}-{}", self.index, self.counter);
            let lease = lease_id(base, self.index, self.counter);
            let grant = Op::LeaseGrant {
                id: lease,
                ttl_s: self.env.knobs().lease_ttl_s,
            };
            if !is_ok(&self.env.execute(grant).await) {
                self.sleep_ms(POLL_MS).await;
                continue;
            }
            while self.before_deadline() {
                let outcome = self
                    .env
                    .execute(create_if_absent(self.kind.key(), &holder, lease))
                    .await;
                match txn_result(&outcome) {
                    Some((true, revision)) => return Some((holder, lease, revision)),
                    Some((false, _)) => {
                        self.sleep_ms(POLL_MS).await;
                        // Keep the lease alive while waiting, as etcd's session does.
                        if !self.keep_alive(lease).await {
                            break;
                        }
                    }
                    // Unknown: the key may be ours without our knowing its revision. Revoking
                    // the lease deletes it if so; start over with a new lease either way.
                    None => {
                        self.env.execute(Op::LeaseRevoke { id: lease }).await;
                        break;
                    }
                }
            }
        }
        None
    }

    /// Deletes our own instance of the key (if it is still ours) and revokes the lease.
    async fn release(&mut self, holder: &str, lease: i64, created: i64) {
        let outcome = self.env.execute(delete_own(self.kind.key(), created)).await;
        let action = match self.kind {
            Kind::Lock => "release",
            Kind::Election => "resign",
        };
        match txn_result(&outcome) {
            Some((succeeded, revision)) => self.record(
                action,
                holder,
                json!({ "created": created, "deleted": succeeded, "revision": revision }),
            ),
            None => self.record(
                action,
                holder,
                json!({ "created": created, "unknown": true }),
            ),
        }
        self.env.execute(Op::LeaseRevoke { id: lease }).await;
    }

    fn think_ms(&mut self) -> u64 {
        let think_ms_max = self.env.knobs().think_ms_max;
        self.env.gen_range(0..=think_ms_max)
    }

    /// Step of the critical section / leadership: a third of the TTL, so that keep-alives between
    /// steps keep the lease alive unless the client stalls or the cluster does not answer.
    fn step_ms(&self) -> u64 {
        let knobs = self.env.knobs();
        let length_ms = match self.kind {
            Kind::Lock => knobs.lock_hold_ms,
            Kind::Election => knobs.leader_term_ms,
        };
        (knobs.lease_ttl_s as u64 * 1_000 / 3).min(length_ms)
    }
}

/// One locker task in the simulator (see [`run_locker_in`]).
pub async fn run_locker(index: usize, client: Client, shared: Arc<Shared>, unfenced: bool) {
    run_locker_in(index, Simulated { client, shared }, unfenced).await;
}

/// One campaigner task in the simulator (see [`run_campaigner_in`]).
pub async fn run_campaigner(index: usize, client: Client, shared: Arc<Shared>) {
    run_campaigner_in(index, Simulated { client, shared }).await;
}

/// One locker task: acquire, write the protected key a few times while holding, release; repeat
/// until the deadline. `unfenced` is the `lock_unfenced` bug.
pub async fn run_locker_in<E: RecipeEnv>(index: usize, env: E, unfenced: bool) {
    let mut me = Participant {
        kind: Kind::Lock,
        env,
        index,
        counter: 0,
    };
    me.record("start", "", json!({ "unfenced": unfenced }));
    while let Some((holder, lease, created)) = me.acquire().await {
        me.record(
            "acquire",
            &holder,
            json!({ "revision": created, "lease": lease }),
        );
        let hold_until_ns = me.now_ns() + me.env.knobs().lock_hold_ms * 1_000_000;
        let mut writes = 0u64;
        while me.now_ns() < hold_until_ns && me.before_deadline() {
            me.maybe_stall(&holder).await;
            if !me.keep_alive(lease).await && !unfenced {
                me.record("lost", &holder, json!({ "reason": "keep-alive failed" }));
                break;
            }
            writes += 1;
            let value = format!("{holder}{HOLDER_SEPARATOR}{writes}");
            if unfenced {
                let put = PutRequest {
                    key: PROTECTED_KEY.to_string(),
                    value: value.clone(),
                    ..Default::default()
                };
                let outcome = me.env.execute(Op::Put(put)).await;
                if let Outcome::Ok {
                    output: Ret::Ok(Response::Put(reply)),
                } = &outcome
                {
                    me.record(
                        "unfenced_write",
                        &holder,
                        json!({ "value": value, "revision": reply.header.revision }),
                    );
                }
            } else {
                let fenced = Op::Txn(TxnRequest {
                    compare: vec![create_revision_is(LOCK_KEY, created)],
                    success: vec![RequestOp::Put(PutRequest {
                        key: PROTECTED_KEY.to_string(),
                        value: value.clone(),
                        ..Default::default()
                    })],
                    failure: vec![],
                });
                match txn_result(&me.env.execute(fenced).await) {
                    Some((true, revision)) => me.record(
                        "fenced_write",
                        &holder,
                        json!({ "value": value, "revision": revision }),
                    ),
                    Some((false, revision)) => {
                        me.record(
                            "lost",
                            &holder,
                            json!({ "reason": "fence failed", "revision": revision }),
                        );
                        break;
                    }
                    // Unknown: the write may have landed, fenced; carry on.
                    None => {}
                }
            }
            me.sleep_ms(me.step_ms()).await;
        }
        me.release(&holder, lease, created).await;
        let think_ms = me.think_ms();
        me.sleep_ms(think_ms).await;
    }
}

/// One campaigner task: campaign, lead for `workload.leader_term_ms` (keeping the lease alive and
/// checking with a read that the key is still ours), resign; repeat until the deadline.
pub async fn run_campaigner_in<E: RecipeEnv>(index: usize, env: E) {
    let mut me = Participant {
        kind: Kind::Election,
        env,
        index,
        counter: 0,
    };
    me.record("start", "", json!({}));
    while let Some((holder, lease, created)) = me.acquire().await {
        me.record(
            "elected",
            &holder,
            json!({ "revision": created, "lease": lease }),
        );
        let term_until_ns = me.now_ns() + me.env.knobs().leader_term_ms * 1_000_000;
        while me.now_ns() < term_until_ns && me.before_deadline() {
            me.maybe_stall(&holder).await;
            if !me.keep_alive(lease).await {
                me.record("lost", &holder, json!({ "reason": "keep-alive failed" }));
                break;
            }
            let read = Op::Range(RangeRequest {
                key: ELECTION_KEY.to_string(),
                ..Default::default()
            });
            if let Outcome::Ok {
                output: Ret::Ok(Response::Range(range)),
            } = me.env.execute(read).await
            {
                let ours = range.kvs.iter().any(|kv| kv.create_revision == created);
                if !ours {
                    me.record(
                        "lost",
                        &holder,
                        json!({ "reason": "key gone", "revision": range.header.revision }),
                    );
                    break;
                }
            }
            me.sleep_ms(me.step_ms()).await;
        }
        me.release(&holder, lease, created).await;
        let think_ms = me.think_ms();
        me.sleep_ms(think_ms).await;
    }
}

#[cfg(test)]
mod tests {
    use crate::runner;
    use crate::scenario::Scenario;
    use kvsim_checker::recipes::{check_recipes, holders};

    fn scenario() -> Scenario {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/recipes.toml");
        Scenario::load(std::path::Path::new(path)).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn correct_recipes_are_never_reported() {
        let scenario = scenario();
        let mut lost = 0;
        for seed in 1..=5 {
            let output = runner::run(&scenario, seed).unwrap_or_else(|error| panic!("{error}"));
            let violations = check_recipes(&output.history);
            assert!(violations.is_empty(), "seed {seed}: {violations:?}");
            // Not vacuous: the lock and the election changed hands.
            assert!(
                holders(&output.history, super::LOCK_KEY).len() >= 2,
                "seed {seed}"
            );
            assert!(
                holders(&output.history, super::ELECTION_KEY).len() >= 2,
                "seed {seed}"
            );
            lost += output
                .history
                .other
                .iter()
                .filter(|record| record["type"] == "recipe" && record["action"] == "lost")
                .count();
        }
        // Not vacuous either: stalls made holders lose their lock, and fencing stopped them.
        assert!(lost > 0, "no holder ever lost its lock");
    }

    #[test]
    fn unfenced_lock_is_caught_within_50_seeds() {
        let mut scenario = scenario();
        scenario.bugs.insert("lock_unfenced".to_string(), true);
        let caught = (0..50).find(|seed| {
            let output = runner::run(&scenario, *seed).unwrap_or_else(|error| panic!("{error}"));
            check_recipes(&output.history).iter().any(|violation| {
                matches!(
                    violation.property,
                    kvsim_checker::property::Property::LockUnfencedWrite
                        | kvsim_checker::property::Property::LockMutualExclusion
                )
            })
        });
        assert!(caught.is_some(), "lock_unfenced not caught in seeds 0..50");
    }

    #[test]
    fn recipe_runs_are_deterministic() {
        let scenario = scenario();
        let first = runner::run(&scenario, 7).unwrap_or_else(|error| panic!("{error}"));
        let second = runner::run(&scenario, 7).unwrap_or_else(|error| panic!("{error}"));
        assert!(first.history.other.iter().any(|r| r["type"] == "recipe"));
        assert_eq!(first.history, second.history);
    }
}

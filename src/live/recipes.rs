//! The lock and election recipes (sim/src/recipes.rs) against a real etcd: the same recipe code,
//! run through a [`RecipeEnv`] made of a recorded live connection, tokio's sleep, the wall clock
//! and a seeded RNG.

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use kvsim_checker::history::Outcome;
use kvsim_model::mvcc::{Op, Ret};
use kvsim_sim::client::Recorder;
use kvsim_sim::recipes::{run_campaigner_in, run_locker_in, RecipeEnv};
use kvsim_sim::scenario::WorkloadKnobs;
use rand::rngs::StdRng;
use rand::Rng;

use super::client::LiveConnection;
use super::run::LiveShared;

struct Live {
    connection: LiveConnection,
    rng: StdRng,
}

impl RecipeEnv for Live {
    fn execute(&mut self, op: Op) -> impl Future<Output = Outcome<Ret>> + Send {
        self.connection.execute(op)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }

    fn before_deadline(&self) -> bool {
        !self.connection.shared().past_deadline()
    }

    fn knobs(&self) -> &WorkloadKnobs {
        &self.connection.shared().knobs
    }

    fn recorder(&self) -> &Recorder {
        &self.connection.shared().recorder
    }

    fn gen_bool(&mut self, probability: f64) -> bool {
        self.rng.gen_bool(probability)
    }

    fn gen_range(&mut self, range: RangeInclusive<u64>) -> u64 {
        self.rng.gen_range(range)
    }
}

/// Locker `index` (always fenced: planted bugs are the simulator's), starting on member `first`.
pub async fn run_locker(index: usize, first: usize, shared: Arc<LiveShared>, rng: StdRng) {
    let connection = LiveConnection::new(shared, first);
    run_locker_in(index, Live { connection, rng }, false).await;
}

/// Campaigner `index`, starting on member `first`.
pub async fn run_campaigner(index: usize, first: usize, shared: Arc<LiveShared>, rng: StdRng) {
    let connection = LiveConnection::new(shared, first);
    run_campaigner_in(index, Live { connection, rng }).await;
}

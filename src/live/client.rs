//! Live workload clients: the model's operation drawer (`OpDrawer`, set up as the simulator's clients do) driving real etcd
//! members through `etcd-client`, every operation recorded like the simulated client's.
//!
//! Client contract (the same as sim/src/client.rs, so the checkers read both alike):
//! - an operation is recorded at its call and at its answer; a definite answer is `ok`, a refusal
//!   before anything reached a server is `fail`, anything else is `unknown`;
//! - never retried: a retried write could apply twice;
//! - after an `unknown` outcome the client continues under a fresh client id (Jepsen's process
//!   rule, checker/src/history.rs), and, like after a refusal, on the next member: the one it used
//!   may be down, paused or cut off.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;
use kvsim_checker::history::{ClientId, Outcome};
use kvsim_model::mvcc::{Op, Ret};
use kvsim_sim::workload::{client_drawer, draw_op, draw_think_ms, observe, retry_of};
use rand::rngs::StdRng;

use super::ops;
use super::run::LiveShared;

/// One recorded client of the cluster: a connection to one member at a time, under one client
/// id at a time (see the module doc for when each changes).
pub struct LiveConnection {
    shared: Arc<LiveShared>,
    member: usize,
    client_id: ClientId,
    connection: Option<Client>,
}

impl LiveConnection {
    /// A client that starts on member `first` (an index into `shared.endpoints`).
    pub fn new(shared: Arc<LiveShared>, first: usize) -> LiveConnection {
        assert!(
            !shared.endpoints.is_empty(),
            "live mode has at least one endpoint"
        );
        let member = first % shared.endpoints.len();
        let client_id = shared.recorder.client_id_new();
        LiveConnection {
            shared,
            member,
            client_id,
            connection: None,
        }
    }

    pub fn shared(&self) -> &Arc<LiveShared> {
        &self.shared
    }

    /// Executes `op` once and records it (call, answer, outcome).
    pub async fn execute(&mut self, op: Op) -> Outcome<Ret> {
        let timeout = Duration::from_millis(self.shared.knobs.request_timeout_ms);
        let id = self.shared.recorder.invoke(self.client_id, op.clone());
        let endpoint = &self.shared.endpoints[self.member];
        // Sent under the run's prefix and revisions, recorded as a fresh cluster's (keyspace.rs).
        let keyspace = &self.shared.keyspace;
        let sent = keyspace.op_in(&op);
        let answer = match self.connection.as_mut() {
            Some(client) => ops::execute(client, &sent, timeout).await,
            None => match ops::connect(endpoint, timeout).await {
                Ok(client) => ops::execute(self.connection.insert(client), &sent, timeout).await,
                // Nothing was sent: the operation did not happen.
                Err(error) => ops::Answer {
                    outcome: Outcome::Fail {
                        error: format!("connect to {endpoint}: {error}"),
                    },
                    raft_term: None,
                },
            },
        };
        if let Some(raft_term) = answer.raft_term {
            let node = self.shared.node_name(self.member);
            self.shared.recorder.answered_by(id, node, raft_term, None);
        }
        let outcome = answer.outcome;
        let outcome = match outcome {
            Outcome::Ok { output } => Outcome::Ok {
                output: keyspace.ret_out(output),
            },
            other => other,
        };
        if matches!(outcome, Outcome::Unknown { .. }) {
            self.client_id = self.shared.recorder.client_id_new();
        }
        if !matches!(outcome, Outcome::Ok { .. }) {
            self.member = (self.member + 1) % self.shared.endpoints.len();
            self.connection = None;
        }
        self.shared.recorder.complete(id, outcome.clone());
        outcome
    }
}

/// Runs workload client `index` until the deadline, starting on member `first`.
pub async fn run_client(index: usize, first: usize, shared: Arc<LiveShared>, mut rng: StdRng) {
    let mut drawer = client_drawer(index, &*shared);
    let mut connection = LiveConnection::new(shared.clone(), first);
    let mut retry = None;
    while !shared.past_deadline() {
        let op = retry
            .take()
            .unwrap_or_else(|| draw_op(&mut drawer, &*shared, &mut rng));
        let outcome = connection.execute(op.clone()).await;
        observe(&mut drawer, &op, &outcome, &*shared);
        retry = retry_of(&op, &outcome, &*shared, &mut rng);
        let think_ms = draw_think_ms(&*shared, &mut rng);
        tokio::time::sleep(Duration::from_millis(think_ms)).await;
    }
}

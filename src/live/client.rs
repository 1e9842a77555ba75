//! One live workload client: the simulator's operation generator ([`OpDrawer`]) driving a real
//! etcd member through `etcd-client`, every operation recorded like the simulated client's.
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
use kvsim_checker::history::Outcome;
use kvsim_sim::workload::{draw_think_ms, OpDrawer};
use rand::rngs::StdRng;

use super::ops;
use super::run::LiveShared;

/// Runs workload client `index` until the deadline, starting on member `first` (an index into
/// `shared.endpoints`) and moving to the next member after each refusal or unknown outcome.
pub async fn run_client(index: usize, first: usize, shared: Arc<LiveShared>, mut rng: StdRng) {
    let members = shared.endpoints.len();
    assert!(members > 0, "live mode has at least one endpoint");
    let timeout = Duration::from_millis(shared.knobs.request_timeout_ms);
    let mut drawer = OpDrawer::new(index);
    let mut member = first % members;
    let mut client_id = shared.recorder.client_id_new();
    let mut connection: Option<Client> = None;
    while !shared.past_deadline() {
        let op = drawer.next(&*shared, &mut rng);
        let id = shared.recorder.invoke(client_id, op.clone());
        let outcome = match connection.as_mut() {
            Some(client) => ops::execute(client, &op, timeout).await,
            None => match ops::connect(&shared.endpoints[member], timeout).await {
                Ok(client) => ops::execute(connection.insert(client), &op, timeout).await,
                // Nothing was sent: the operation did not happen.
                Err(error) => Outcome::Fail {
                    error: format!("connect to {}: {error}", shared.endpoints[member]),
                },
            },
        };
        let moves_on = !matches!(outcome, Outcome::Ok { .. });
        if matches!(outcome, Outcome::Unknown { .. }) {
            client_id = shared.recorder.client_id_new();
        }
        drawer.observe(&op, &outcome, &*shared);
        shared.recorder.complete(id, outcome);
        if moves_on {
            member = (member + 1) % members;
            connection = None;
        }
        let think_ms = draw_think_ms(&*shared, &mut rng);
        tokio::time::sleep(Duration::from_millis(think_ms)).await;
    }
}

//! A sequential workload on a fresh, fault-free simulated cluster: one client executes a list of
//! operations one after the other, then a few watches from past revisions are read back. The
//! differential test (`kvsim conformance`) runs the same list against real etcd and compares the
//! answers field by field: any difference is a simulator (or model) bug.

use crate::client::{watch_event_of, Balancer, Client, ClientConfig, Recorder, WatchEvent};
use crate::cluster::{Cluster, ClusterConfig};
use crate::rpc::{WatchCreate, WatchResponse};
use crate::target::Target;
use kvsim_checker::history::Outcome;
use kvsim_model::mvcc::{Op, Ret};
use madsim::runtime::{Handle, Runtime};
use madsim::time::{sleep, timeout, Instant};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The simulated machine the client runs on (members are 10.0.0.x).
const CLIENT_HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const LEADER_WAIT_MS: u64 = 30_000;
/// A serializable read is answered by whichever member the client picks, from its own applied
/// state. Real etcd with one member is never behind; a simulated follower can be one heartbeat
/// behind the leader's acknowledgement. Waiting this long (several heartbeats, simulated time:
/// free) before each serializable read makes every member current, so both answer alike.
const SERIALIZABLE_SETTLE_MS: u64 = 1_000;
const CLIENT_CONFIG: ClientConfig = ClientConfig {
    request_timeout_ms: 5_000,
    attempts_max: 50,
    retry_backoff_ms: 100,
    balancer: Balancer::Leader,
};

/// A watch from `start_revision` on `[key, range_end)` read until an event at `until_revision`
/// or later arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchProbe {
    pub key: String,
    pub range_end: String,
    pub start_revision: i64,
    pub until_revision: i64,
    pub prev_kv: bool,
}

/// What a [`WatchProbe`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchSeen {
    Events(Vec<WatchEvent>),
    /// The start revision was compacted; etcd names the compacted revision.
    Compacted(i64),
    /// The simulated cluster could not answer (a bug in a fault-free run).
    Error(String),
}

/// The answers of one sequential run.
#[derive(Clone, Debug)]
pub struct SequentialRun {
    /// One per operation, in order.
    pub outcomes: Vec<Outcome<Ret>>,
    /// One per probe, in order.
    pub watches: Vec<WatchSeen>,
}

/// Runs `ops` one by one on a fresh fault-free 3-member simulated cluster of `target` (seeded with
/// `seed`; default cluster knobs), then the `probes`. Runs on its own thread and madsim runtime. `Err`
/// carries the panic message if the simulation panicked.
pub fn run_sequential(
    ops: &[Op],
    probes: &[WatchProbe],
    seed: u64,
    target: &'static dyn Target,
) -> Result<SequentialRun, String> {
    if let Some(synthetic) = ops.iter().find(|op| matches!(op, Op::LeaseExpire { .. })) {
        return Err(format!("{synthetic:?} is synthetic and cannot be executed"));
    }
    let (ops, probes) = (ops.to_vec(), probes.to_vec());
    let thread = std::thread::Builder::new()
        .name(format!("kvsim-sequential-{seed}"))
        .spawn(move || {
            let mut runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
            // Bounded so that a hang becomes an error: each op may retry for a while.
            let op_ms_max = u64::from(CLIENT_CONFIG.attempts_max)
                * (CLIENT_CONFIG.request_timeout_ms + CLIENT_CONFIG.retry_backoff_ms);
            runtime.set_time_limit(Duration::from_millis(
                LEADER_WAIT_MS + op_ms_max + 10 * 60_000 + (ops.len() as u64) * 2_000,
            ));
            runtime.block_on(simulate(ops, probes, target))
        })
        .map_err(|error| format!("cannot spawn the simulation thread: {error}"))?;
    thread.join().map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_else(|| "(non-string panic payload)".to_string())
    })
}

async fn simulate(ops: Vec<Op>, probes: Vec<WatchProbe>, target: &dyn Target) -> SequentialRun {
    let cluster = Cluster::start(ClusterConfig::default(), target).await;
    let _ = cluster.wait_for_leader(LEADER_WAIT_MS).await;
    let servers: Vec<_> = cluster
        .node_ids()
        .into_iter()
        .map(|id| (id, cluster.client_addr(id)))
        .collect();
    let host = Handle::current()
        .create_node()
        .name("sequential-client")
        .ip(IpAddr::V4(CLIENT_HOST_IP))
        .build();
    let task = host.spawn(async move {
        let mut client = match Client::connect(servers, Recorder::new(), CLIENT_CONFIG).await {
            Ok(client) => client,
            Err(error) => panic!("the client cannot bind an endpoint: {error}"),
        };
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            if matches!(&op, Op::Range(range) if range.serializable) {
                sleep(Duration::from_millis(SERIALIZABLE_SETTLE_MS)).await;
            }
            outcomes.push(client.execute(op).await);
        }
        let mut watches = Vec::with_capacity(probes.len());
        for probe in &probes {
            watches.push(watch(&client, probe).await);
        }
        SequentialRun { outcomes, watches }
    });
    match task.await {
        Ok(run) => run,
        Err(error) => panic!("the sequential client task failed: {error}"),
    }
}

/// How long the sequential watcher waits for the event at `until_revision` before it reports
/// the watch as failed (the cluster is fault-free: every event is there at once).
const WATCH_TIMEOUT_MS: u64 = 10_000;

/// Opens a watch stream (on the first member; on the next one while a member knows no leader)
/// and reads it until an event at or past `until_revision` arrived.
async fn watch(client: &Client, probe: &WatchProbe) -> WatchSeen {
    let servers = client.servers();
    let mut next_revision = probe.start_revision;
    let mut events = Vec::new();
    let mut target = 0;
    let mut refusals = 0;
    let deadline = Instant::now() + Duration::from_millis(WATCH_TIMEOUT_MS);
    while next_revision <= probe.until_revision {
        if refusals > 100 {
            return WatchSeen::Error("no member serves the watch".to_string());
        }
        let create = WatchCreate {
            key: probe.key.as_bytes().to_vec(),
            range_end: probe.range_end.as_bytes().to_vec(),
            start_revision: next_revision,
            prev_kv: probe.prev_kv,
            progress_notify_ms: 0,
        };
        let mut stream = match client.watch_open(servers[target], create).await {
            Ok(stream) => stream,
            Err(error) => return WatchSeen::Error(error.to_string()),
        };
        while next_revision <= probe.until_revision {
            let response = match timeout(
                deadline.saturating_duration_since(Instant::now()),
                stream.recv(),
            )
            .await
            {
                Err(_) => {
                    return WatchSeen::Error(format!(
                        "no event at revision {} within {WATCH_TIMEOUT_MS} ms",
                        probe.until_revision
                    ))
                }
                Ok(Err(error)) => return WatchSeen::Error(error.to_string()),
                Ok(Ok(response)) => response,
            };
            match response {
                WatchResponse::Created { .. } | WatchResponse::Progress { .. } => {}
                WatchResponse::Events {
                    events: delivered, ..
                } => {
                    if let Some(last) = delivered.last() {
                        next_revision = last.kv.mod_revision + 1;
                    }
                    events.extend(delivered.iter().map(watch_event_of));
                }
                WatchResponse::Compacted { compact_revision } => {
                    return WatchSeen::Compacted(compact_revision)
                }
                WatchResponse::NoLeader => {
                    target = (target + 1) % servers.len();
                    refusals += 1;
                    sleep(Duration::from_millis(100)).await;
                    break;
                }
            }
        }
    }
    WatchSeen::Events(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvsim_model::mvcc::{PutRequest, RangeRequest, Response};

    #[test]
    fn a_put_then_a_serializable_read_then_a_watch_from_the_start() {
        let ops = vec![
            Op::Put(PutRequest {
                key: "a".into(),
                value: "1".into(),
                ..Default::default()
            }),
            Op::Range(RangeRequest {
                key: "a".into(),
                serializable: true,
                ..Default::default()
            }),
        ];
        let probes = [WatchProbe {
            key: "a".into(),
            range_end: String::new(),
            start_revision: 1,
            until_revision: 2,
            prev_kv: false,
        }];
        let run = run_sequential(&ops, &probes, 7, &crate::targets::raft_rs::RaftRs)
            .expect("the simulation runs");
        let Outcome::Ok {
            output: Ret::Ok(Response::Range(range)),
        } = &run.outcomes[1]
        else {
            panic!("a range answer expected: {:?}", run.outcomes[1])
        };
        assert_eq!(range.kvs.len(), 1, "the follower caught up: {range:?}");
        assert_eq!(range.kvs[0].mod_revision, 2);
        let WatchSeen::Events(events) = &run.watches[0] else {
            panic!("events expected: {:?}", run.watches[0])
        };
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].kind, events[0].kv.mod_revision), ("put", 2));
    }
}

//! Every member's state at the end of a live run, in the simulator's `final_state` record shape
//! (sim/src/runner.rs), so the durability checker judges lost writes and convergence alike.
//!
//! A real cluster keeps changing after the workload stops: leases nobody keeps alive any more
//! expire and delete their keys. Reading members one after the other while that happens would
//! show different revisions and report a convergence failure that is not one, so the read waits
//! until every member answers with the same revision twice in a row, `STABLE_POLL_MS` apart.

use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use kvsim_model::mvcc::KeyValue;
use kvsim_sim::scenario::WorkloadKnobs;
use serde::Serialize;
use serde_json::json;

use super::keyspace::Keyspace;
use super::ops;

/// How long the read waits for the members to agree on a revision before reading anyway (then
/// the convergence check judges what it finds).
const CONVERGE_WAIT_MS: u64 = 30_000;
const STABLE_POLL_MS: u64 = 500;

#[derive(Clone, Debug, Serialize)]
pub struct MemberState {
    pub node: String,
    pub up: bool,
    pub role: &'static str,
    pub term: u64,
    pub applied_index: u64,
    pub revision: i64,
    pub compact_revision: i64,
    pub hash_kv: u64,
    pub kvs: Vec<KeyValue>,
}

#[derive(Clone, Debug)]
pub struct FinalState {
    pub members: Vec<MemberState>,
    /// How long the members took to agree on one revision; `None` if they never did.
    pub converged_after_ms: Option<u64>,
}

impl FinalState {
    /// The `final_state` record (docs/history-format.md).
    pub fn record(&self) -> serde_json::Value {
        json!({ "nodes": self.members, "converged_after_ms": self.converged_after_ms })
    }
}

/// Waits for the members to agree on a revision (see the module doc), then reads each one.
pub async fn read_final_state(
    endpoints: &[String],
    knobs: &WorkloadKnobs,
    keyspace: &Keyspace,
) -> FinalState {
    let timeout = Duration::from_millis(knobs.request_timeout_ms.max(2_000));
    let started = Instant::now();
    let mut previous: Option<Vec<Option<i64>>> = None;
    let mut converged_after_ms = None;
    while started.elapsed() < Duration::from_millis(CONVERGE_WAIT_MS) {
        let mut revisions = Vec::new();
        for endpoint in endpoints {
            revisions.push(revision_of(endpoint, timeout).await);
        }
        let up: Vec<i64> = revisions.iter().flatten().copied().collect();
        let agree = !up.is_empty() && up.iter().all(|revision| *revision == up[0]);
        if agree && previous.as_ref() == Some(&revisions) {
            converged_after_ms = Some(started.elapsed().as_millis() as u64);
            break;
        }
        previous = Some(revisions);
        tokio::time::sleep(Duration::from_millis(STABLE_POLL_MS)).await;
    }
    let mut members = Vec::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let node = format!("n{}", index + 1);
        let state = match tokio::time::timeout(
            timeout * 3,
            member_state(endpoint, keyspace, timeout),
        )
        .await
        {
            Ok(Ok(state)) => state,
            Ok(Err(_)) | Err(_) => MemberState {
                up: false,
                role: "unreachable",
                term: 0,
                applied_index: 0,
                revision: 0,
                compact_revision: 0,
                hash_kv: 0,
                kvs: Vec::new(),
                node: String::new(),
            },
        };
        members.push(MemberState { node, ..state });
    }
    FinalState {
        members,
        converged_after_ms,
    }
}

/// The member's own revision (a serializable read answers from its local state).
async fn revision_of(endpoint: &str, timeout: Duration) -> Option<i64> {
    let probe = async {
        let mut client = ops::connect(endpoint, timeout).await.ok()?;
        let response = client
            .get("kvsim-final", Some(GetOptions::new().with_serializable()))
            .await
            .ok()?;
        Some(response.header()?.revision())
    };
    tokio::time::timeout(timeout, probe).await.ok().flatten()
}

/// One member's role and store, as the history sees it: the run's prefix only, at the history's
/// revisions (keyspace.rs); HashKV covers the member's whole store, which is what members must
/// agree on.
async fn member_state(
    endpoint: &str,
    keyspace: &Keyspace,
    timeout: Duration,
) -> Result<MemberState, etcd_client::Error> {
    let mut client: Client = ops::connect(endpoint, timeout).await?;
    let status = client.status().await?;
    let member_id = status.header().map_or(0, |header| header.member_id());
    let role = if status.leader() == member_id && member_id != 0 {
        "leader"
    } else {
        "follower"
    };
    let options = if keyspace.prefix.is_empty() {
        GetOptions::new().with_all_keys()
    } else {
        GetOptions::new().with_prefix()
    };
    let all = client
        .get(keyspace.prefix.as_str(), Some(options.with_serializable()))
        .await?;
    let wire_revision = all.header().map_or(0, |header| header.revision());
    let hash = client.hash_kv(wire_revision).await?;
    Ok(MemberState {
        node: String::new(),
        up: true,
        role,
        term: status.raft_term(),
        applied_index: status.raft_applied_index(),
        revision: keyspace.revision_out(wire_revision),
        compact_revision: keyspace.revision_out(hash.compact_version()),
        hash_kv: u64::from(hash.hash()),
        kvs: all
            .kvs()
            .iter()
            .map(|kv| keyspace.kv_out(&ops::key_value_of(kv)))
            .collect(),
    })
}

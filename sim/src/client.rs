//! The simulated etcd client: finds the leader, sends `KvCall`s, classifies what came back, and
//! records every operation (call time, return time, outcome) in the run's [`Recorder`].
//!
//! Outcome rules (sim/src/rpc.rs is the contract with the node):
//! - `KvReply::Ok` is a definite response, etcd errors included (`Ret::Err`).
//! - Each operation's first attempt goes to the member its [`Balancer`] picks: the next one in
//!   turn (etcd clientv3's round-robin), or the member that answered last.
//! - `NotLeader` and `Unavailable` mean "not proposed": the client retries, following the leader
//!   hint or trying the next node, up to `attempts_max` attempts; then the operation `fail`s.
//! - A transport error or timeout means the request may or may not have been applied: the
//!   operation is `unknown` and is NOT retried (a retried write could apply twice). Reads are
//!   treated the same way, for simplicity. The client then continues under a fresh client id
//!   (Jepsen's process rule, see checker/src/history.rs).
//! - A definite reply to a timed-out attempt that arrives before the run ends completes the
//!   operation late, with the arrival as its return time (`LateReply`).

use crate::node_status::Role;
use crate::proto::{self, Bytes};
use crate::rpc::{ClientWatchStream, KvAnswer, KvCall, KvReply, Served, WatchCreate};
use kvsim_checker::history::{
    ClientId, FaultEvent, History, LeaderElected, MemberRole, OpId, Operation, Outcome, ServedBy,
    LEADER_RECORD, SERVED_BY_RECORD,
};
use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, EtcdError,
    KeyValue, Op, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, Response,
    ResponseHeader, ResponseOp, Ret, TxnRequest, TxnResponse,
};
use madsim::net::Endpoint;
use madsim::rand::Rng;
use madsim::time::{sleep, Instant};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything a run observed, in the order it happened, with simulated times (or, in live mode,
/// wall-clock times).
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<RecorderInner>>,
    start: Clock,
}

/// Where a recorder's times come from. Only live mode (`kvsim live`, outside any simulation) uses
/// the wall clock; inside a simulation it would break determinism.
#[derive(Clone, Copy)]
enum Clock {
    Simulated(Instant),
    Wall(std::time::Instant),
}

struct RecorderInner {
    ops: Vec<Operation<Op, Ret>>,
    faults: Vec<FaultEvent>,
    other: Vec<serde_json::Value>,
    clients_next: ClientId,
    /// Clients with an operation in flight: at most one each (checker/src/history.rs).
    in_flight: BTreeSet<ClientId>,
    malformed_responses: u64,
}

impl Recorder {
    /// Starts the run's clock: every time recorded is nanoseconds since now (simulated).
    pub fn new() -> Recorder {
        Recorder::starting(Clock::Simulated(Instant::now()))
    }

    /// A recorder on the wall clock, for live mode: a real etcd cluster outside any simulation.
    pub fn new_wall_clock() -> Recorder {
        Recorder::starting(Clock::Wall(std::time::Instant::now()))
    }

    fn starting(start: Clock) -> Recorder {
        Recorder {
            inner: Arc::new(Mutex::new(RecorderInner {
                ops: Vec::new(),
                faults: Vec::new(),
                other: Vec::new(),
                clients_next: 0,
                in_flight: BTreeSet::new(),
                malformed_responses: 0,
            })),
            start,
        }
    }

    pub fn now_ns(&self) -> u64 {
        let elapsed = match self.start {
            Clock::Simulated(start) => start.elapsed(),
            Clock::Wall(start) => start.elapsed(),
        };
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Simulated instant `at` as nanoseconds since the run's start (0 for an instant before it).
    pub fn ns_at(&self, at: Instant) -> u64 {
        let Clock::Simulated(start) = self.start else {
            panic!("ns_at: simulated instants on a wall-clock recorder");
        };
        u64::try_from(at.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecorderInner> {
        // A poisoned lock means a task panicked mid-record; the simulation is already failing.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A client id never used before in this run.
    pub fn client_id_new(&self) -> ClientId {
        let mut inner = self.lock();
        let id = inner.clients_next;
        inner.clients_next += 1;
        id
    }

    /// Records the call of `op` by `client` now; returns the operation's id.
    pub fn invoke(&self, client: ClientId, op: Op) -> OpId {
        let call_ns = self.now_ns();
        let mut inner = self.lock();
        let id = inner.ops.len() as OpId;
        // Ids are the ops' indices, so unique; calls are appended in time order (in a simulation:
        // one thread; live clients race to the lock with their wall-clock call times).
        assert!(
            matches!(self.start, Clock::Wall(_))
                || inner.ops.last().is_none_or(|last| last.call_ns <= call_ns),
            "history: calls are recorded in time order"
        );
        assert!(
            inner.in_flight.insert(client),
            "client {client} has two operations in flight"
        );
        inner.ops.push(Operation {
            id,
            client,
            call_ns,
            return_ns: None,
            input: op,
            outcome: Outcome::Unknown {
                error: "no response recorded".to_string(),
            },
        });
        id
    }

    /// Records the end of operation `id` now. Unknown outcomes keep no return time: the operation
    /// may take effect arbitrarily late.
    pub fn complete(&self, id: OpId, outcome: Outcome<Ret>) {
        let return_ns = self.now_ns();
        let mut inner = self.lock();
        let client = inner.ops[id as usize].client;
        assert!(
            inner.in_flight.remove(&client),
            "operation {id} completed twice"
        );
        let op = &mut inner.ops[id as usize];
        assert!(
            op.call_ns <= return_ns,
            "history: operation {id} returns after its call"
        );
        op.return_ns = match outcome {
            Outcome::Unknown { .. } => None,
            Outcome::Ok { .. } | Outcome::Fail { .. } => Some(return_ns),
        };
        op.outcome = outcome;
    }

    /// Records the definite outcome of operation `id`, recorded `unknown` at its client's
    /// timeout, from a reply that arrived since (see `LateReply`): it returns now. The client
    /// id the operation was recorded under is retired, so no operation of that client follows
    /// it.
    pub fn complete_late(&self, id: OpId, outcome: Outcome<Ret>) {
        assert!(
            !matches!(outcome, Outcome::Unknown { .. }),
            "a late reply is definite"
        );
        let return_ns = self.now_ns();
        let mut inner = self.lock();
        let client = inner.ops[id as usize].client;
        assert!(
            !inner.in_flight.contains(&client),
            "operation {id}: its client was retired at the timeout"
        );
        let op = &mut inner.ops[id as usize];
        assert!(
            matches!(op.outcome, Outcome::Unknown { .. }) && op.return_ns.is_none(),
            "operation {id}: only an unknown outcome is completed late"
        );
        assert!(
            op.call_ns <= return_ns,
            "history: operation {id} returns after its call"
        );
        op.return_ns = Some(return_ns);
        op.outcome = outcome;
    }

    /// Records a fault (or heal) injected now.
    pub fn fault(&self, kind: &str, nodes: &[u64], detail: serde_json::Value) {
        let t_ns = self.now_ns();
        let nodes = nodes.iter().map(|id| format!("n{id}")).collect();
        self.lock().faults.push(FaultEvent {
            t_ns,
            kind: kind.to_string(),
            nodes,
            detail,
        });
    }

    /// Records any other observation (`watch`, `final_state`, ...): `record` must be a JSON object;
    /// `type` and `t_ns` are added in front.
    pub fn other(&self, record_type: &str, record: serde_json::Value) {
        let t_ns = self.now_ns();
        self.push_record(record_type, Some(t_ns), record);
    }

    /// Records who answered `op_id` (a `served_by` record), if it was a member in a Raft role.
    pub fn served_by(&self, op_id: OpId, served: Served) {
        let role = match served.role {
            Role::Leader => MemberRole::Leader,
            Role::Follower => MemberRole::Follower,
            Role::Candidate => MemberRole::Candidate,
            Role::PreCandidate => MemberRole::PreCandidate,
            // A member that answered was running; a status still saying otherwise is stale.
            Role::Down | Role::Paused => return,
        };
        self.answered_by(
            op_id,
            format!("n{}", served.member),
            served.raft_term,
            Some(role),
        );
    }

    /// Records that member `node`, at Raft term `raft_term` (and in `role`, if it said), answered
    /// `op_id` (a `served_by` record).
    pub fn answered_by(&self, op_id: OpId, node: String, raft_term: u64, role: Option<MemberRole>) {
        let record = ServedBy {
            id: op_id,
            t_ns: self.now_ns(),
            node,
            raft_term,
            role,
        };
        self.push_typed(SERVED_BY_RECORD, &record);
    }

    /// Records that `leader` became leader of `term` at `t_ns` (a `leader` record).
    pub fn leader_elected(&self, t_ns: u64, leader: u64, term: u64) {
        let record = LeaderElected {
            t_ns,
            node: format!("n{leader}"),
            term,
        };
        self.push_typed(LEADER_RECORD, &record);
    }

    /// A typed record (it carries its own `t_ns`).
    fn push_typed<T: Serialize>(&self, record_type: &str, record: &T) {
        match serde_json::to_value(record) {
            Ok(value) => self.push_record(record_type, None, value),
            Err(error) => panic!("history: {record_type} record does not serialize: {error}"),
        }
    }

    /// Appends `record` (a JSON object) to the other records with `type` (and `t_ns`, if
    /// given) in front.
    fn push_record(&self, record_type: &str, t_ns: Option<u64>, record: serde_json::Value) {
        let mut object = serde_json::Map::new();
        object.insert("type".to_string(), record_type.into());
        if let Some(t_ns) = t_ns {
            object.insert("t_ns".to_string(), t_ns.into());
        }
        if let serde_json::Value::Object(fields) = record {
            object.extend(fields);
        } else {
            panic!("history: {record_type} records are JSON objects, got {record}");
        }
        self.lock().other.push(serde_json::Value::Object(object));
    }

    fn malformed(&self) {
        self.lock().malformed_responses += 1;
    }

    /// Responses the client could not convert into the model's types (a server bug if ever > 0).
    pub fn malformed_responses(&self) -> u64 {
        self.lock().malformed_responses
    }

    /// Moves the whole history out, leaving the recorder empty: the end of a run, where a
    /// clone of tens of thousands of operations would cost a few percent of the seed.
    pub fn take_history(&self) -> History<Op, Ret> {
        let mut inner = self.lock();
        assert!(
            inner.in_flight.is_empty(),
            "the run is over: nothing in flight"
        );
        History {
            ops: std::mem::take(&mut inner.ops),
            faults: std::mem::take(&mut inner.faults),
            other: std::mem::take(&mut inner.other),
        }
    }

    /// The history so far (operations in call order, faults and other records in time order).
    pub fn history(&self) -> History<Op, Ret> {
        let inner = self.lock();
        History {
            ops: inner.ops.clone(),
            faults: inner.faults.clone(),
            other: inner.other.clone(),
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// Timeouts, retry limits and endpoint choice of one client.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    pub request_timeout_ms: u64,
    pub attempts_max: u32,
    pub retry_backoff_ms: u64,
    pub balancer: Balancer,
}

/// How a client picks the member that gets an operation's first attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancer {
    /// etcd clientv3 since 3.4: every request goes to the next endpoint in turn, whoever leads.
    /// A member that is not the leader forwards the request there in etcd; here it refuses with
    /// a leader hint, which the client follows within the same operation. So a deposed leader
    /// that still believes it leads keeps getting its share of the requests, as it does in a
    /// real cluster: the case that shows a read served without confirming leadership.
    RoundRobin,
    /// Stay with the member that answered last; move to another only after a refusal or a
    /// timeout (a leader-aware client). A deposed leader loses its clients as soon as one of
    /// their requests times out.
    Leader,
}

/// How the attempts of one operation ended.
enum Attempted {
    /// With who answered, when a member did.
    Done(Outcome<Ret>, Option<Served>),
    /// The last attempt timed out: the outcome is unknown, and its reply still awaited.
    TimedOut {
        outcome: Outcome<Ret>,
        late: LateReply,
    },
}

/// The reply to an attempt that timed out, still awaited after the client gave up on it.
///
/// The client records the operation `unknown` at its timeout and moves on under a fresh
/// client id (no retry: a retried write could apply twice). But the node may still answer: a
/// paused node when it resumes, a leader whose disk stalled once it is released, a deposed
/// leader once it learns the new term and drops the entry. A definite reply that arrives
/// before the run ends makes the outcome definite, with the arrival as the return time
/// ([`Recorder::complete_late`]): the operation took effect (or not) between its call and the
/// moment the client saw the answer, the same fact a timely reply records, only later. Jepsen
/// cannot learn this (its client abandons the request); the search gains from it the exact
/// revision of every late write, where an unknown one may fall anywhere after its call. A
/// reply lost with its link, or a node that crashed, leaves the outcome unknown.
struct LateReply {
    reply: madsim::task::JoinHandle<io::Result<KvAnswer>>,
    target: u64,
}

impl LateReply {
    /// Waits for the reply; records a definite one as the outcome of `op_id`.
    async fn record(self, recorder: Recorder, op_id: OpId) {
        let target = self.target;
        let Ok(Ok(KvAnswer { reply, served })) = self.reply.await else {
            return;
        };
        let outcome = match reply {
            KvReply::Ok(response) => match ret_of(response) {
                Ok(ret) => Outcome::Ok { output: ret },
                Err(_) => return,
            },
            // `NotLeader` / `Unavailable`: this attempt was not proposed, and the attempts
            // before it were refused the same way.
            KvReply::NotLeader { .. } => Outcome::Fail {
                error: format!("n{target}: not leader (after the client's timeout)"),
            },
            KvReply::Unavailable { reason } => Outcome::Fail {
                error: format!("n{target}: unavailable: {reason} (after the client's timeout)"),
            },
        };
        let answered = matches!(outcome, Outcome::Ok { .. });
        recorder.complete_late(op_id, outcome);
        if answered {
            recorder.served_by(op_id, served);
        }
    }
}

/// One etcd client (one operation in flight), bound to its own endpoint.
pub struct Client {
    endpoint: Endpoint,
    /// `(node id, client address)`, in node-id order.
    servers: Vec<(u64, SocketAddr)>,
    leader_hint: Option<u64>,
    next_server: usize,
    id: ClientId,
    recorder: Recorder,
    config: ClientConfig,
}

impl Client {
    /// Binds an endpoint on the current simulated node.
    pub async fn connect(
        servers: Vec<(u64, SocketAddr)>,
        recorder: Recorder,
        config: ClientConfig,
    ) -> io::Result<Client> {
        assert!(!servers.is_empty(), "a client needs at least one server");
        let endpoint = Endpoint::bind("0.0.0.0:0").await?;
        let next_server = madsim::rand::thread_rng().gen_range(0..servers.len());
        let id = recorder.client_id_new();
        Ok(Client {
            endpoint,
            servers,
            leader_hint: None,
            next_server,
            id,
            recorder,
            config,
        })
    }

    /// The id this client records its operations under (changes after an unknown outcome).
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Executes and records `op`. Never retries after a transport error or timeout.
    pub async fn execute(&mut self, op: Op) -> Outcome<Ret> {
        let request = match request_of(&op) {
            Some(request) => request,
            None => panic!("{op:?} is synthetic and cannot be sent"),
        };
        let serializable = matches!(&op, Op::Range(range) if range.serializable);
        let op_id = self.recorder.invoke(self.id, op);
        let (outcome, served, late) = self.send(request, serializable).await;
        self.recorder.complete(op_id, outcome.clone());
        if let (Outcome::Ok { .. }, Some(served)) = (&outcome, served) {
            self.recorder.served_by(op_id, served);
        }
        if matches!(outcome, Outcome::Unknown { .. }) {
            if let Some(late) = late {
                madsim::task::spawn(late.record(self.recorder.clone(), op_id));
            }
            self.id = self.recorder.client_id_new();
        }
        outcome
    }

    /// Sends `request` until a definite answer, the attempts run out, or the transport fails.
    /// An attempt that timed out comes back with the outcome `unknown` and its reply, still
    /// awaited (`LateReply`).
    async fn send(
        &mut self,
        request: proto::Request,
        serializable: bool,
    ) -> (Outcome<Ret>, Option<Served>, Option<LateReply>) {
        let outcome = self.send_attempts(request, serializable).await;
        match outcome {
            Attempted::Done(outcome, served) => (outcome, served, None),
            Attempted::TimedOut { outcome, late } => (outcome, None, Some(late)),
        }
    }

    async fn send_attempts(&mut self, request: proto::Request, serializable: bool) -> Attempted {
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let mut last_refusal = String::new();
        if self.config.balancer == Balancer::RoundRobin {
            // A new request starts at the next endpoint; hints are followed only within it.
            self.leader_hint = None;
        }
        for _ in 0..self.config.attempts_max {
            // Serializable reads are served by any member: spread them, as a load balancer would.
            let target = if serializable {
                self.servers[madsim::rand::thread_rng().gen_range(0..self.servers.len())].0
            } else {
                self.target()
            };
            let address = self.address(target);
            let call = KvCall {
                request: request.clone(),
            };
            let endpoint = self.endpoint.clone();
            let mut reply = madsim::task::spawn(async move { endpoint.call(address, call).await });
            let reply = match madsim::time::timeout(timeout, &mut reply).await {
                Ok(Ok(reply)) => reply,
                // The call's task was cancelled: the simulation is ending.
                Ok(Err(join)) => Err(io::Error::other(join.to_string())),
                Err(_elapsed) => {
                    self.forget_leader();
                    return Attempted::TimedOut {
                        outcome: Outcome::Unknown {
                            error: format!("n{target}: RPC timeout"),
                        },
                        late: LateReply { reply, target },
                    };
                }
            };
            let (reply, served) = match reply {
                Ok(KvAnswer { reply, served }) => (Ok(reply), Some(served)),
                Err(error) => (Err(error), None),
            };
            match reply {
                Ok(KvReply::Ok(response)) => {
                    self.leader_hint = Some(target);
                    let outcome = match ret_of(response) {
                        Ok(ret) => Outcome::Ok { output: ret },
                        Err(malformed) => {
                            self.recorder.malformed();
                            Outcome::Unknown {
                                error: format!("n{target}: malformed response: {malformed}"),
                            }
                        }
                    };
                    return Attempted::Done(outcome, served);
                }
                Ok(KvReply::NotLeader { leader }) => {
                    last_refusal = format!("n{target}: not leader");
                    match leader.filter(|hint| *hint != target && self.knows(*hint)) {
                        Some(hint) => self.leader_hint = Some(hint),
                        None => {
                            self.forget_leader();
                            sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
                        }
                    }
                }
                Ok(KvReply::Unavailable { reason }) => {
                    last_refusal = format!("n{target}: unavailable: {reason}");
                    self.forget_leader();
                    sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
                }
                Err(error) => {
                    // Whatever reached the node may still be applied: the outcome is unknown.
                    self.forget_leader();
                    return Attempted::Done(
                        Outcome::Unknown {
                            error: format!("n{target}: {error}"),
                        },
                        None,
                    );
                }
            }
        }
        Attempted::Done(
            Outcome::Fail {
                error: format!(
                    "gave up after {} attempts; last: {last_refusal}",
                    self.config.attempts_max
                ),
            },
            None,
        )
    }

    /// Opens a watch stream on node `target`. Watches never change state, so any error is just
    /// returned for the watcher to record and resume from.
    pub async fn watch_open(
        &self,
        target: u64,
        create: WatchCreate,
    ) -> io::Result<ClientWatchStream> {
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let open = ClientWatchStream::open(&self.endpoint, self.address(target), create);
        match madsim::time::timeout(timeout, open).await {
            Ok(opened) => opened,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "watch stream not opened in time",
            )),
        }
    }

    /// Node ids this client can talk to.
    pub fn servers(&self) -> Vec<u64> {
        self.servers.iter().map(|(id, _)| *id).collect()
    }

    fn target(&mut self) -> u64 {
        if let Some(leader) = self.leader_hint {
            return leader;
        }
        let id = self.servers[self.next_server % self.servers.len()].0;
        self.next_server = (self.next_server + 1) % self.servers.len();
        id
    }

    fn forget_leader(&mut self) {
        if let Some(leader) = self.leader_hint.take() {
            // Start the round-robin after the node that just refused.
            if let Some(position) = self.servers.iter().position(|(id, _)| *id == leader) {
                self.next_server = (position + 1) % self.servers.len();
            }
        }
    }

    fn knows(&self, id: u64) -> bool {
        self.servers.iter().any(|(known, _)| *known == id)
    }

    fn address(&self, id: u64) -> SocketAddr {
        match self.servers.iter().find(|(known, _)| *known == id) {
            Some((_, address)) => *address,
            None => panic!("n{id} is not a server of this client"),
        }
    }
}

/// A watch event as the history records it (model types: printable keys and values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WatchEvent {
    /// `put` or `delete`.
    pub kind: &'static str,
    /// For a delete only `key` and `mod_revision` are set, as in etcd.
    pub kv: KeyValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

pub fn watch_event_of(event: &proto::Event) -> WatchEvent {
    WatchEvent {
        kind: match event.kind {
            proto::EventKind::Put => "put",
            proto::EventKind::Delete => "delete",
        },
        kv: key_value_of(&event.kv),
        prev_kv: event.prev_kv.as_ref().map(key_value_of),
    }
}

// ---- model Op → wire request -------------------------------------------------------------

/// The wire request for `op`; `None` for the synthetic `LeaseExpire`, which no client sends.
pub fn request_of(op: &Op) -> Option<proto::Request> {
    Some(match op {
        Op::Put(put) => proto::Request::Put(put_req(put)),
        Op::Range(range) => proto::Request::Range(range_req(range)),
        Op::DeleteRange(delete) => proto::Request::DeleteRange(delete_req(delete)),
        Op::Txn(txn) => proto::Request::Txn(txn_req(txn)),
        Op::LeaseGrant { id, ttl_s } => proto::Request::LeaseGrant {
            id: *id,
            ttl_s: *ttl_s,
        },
        Op::LeaseRevoke { id } => proto::Request::LeaseRevoke { id: *id },
        Op::LeaseKeepAlive { id } => proto::Request::LeaseKeepAlive { id: *id },
        Op::LeaseTimeToLive { id, keys } => proto::Request::LeaseTimeToLive {
            id: *id,
            keys: *keys,
        },
        Op::Compact { revision, physical } => proto::Request::Compact {
            revision: *revision,
            physical: *physical,
        },
        Op::LeaseExpire { .. } => return None,
    })
}

fn bytes(text: &str) -> Bytes {
    text.as_bytes().to_vec()
}

fn put_req(put: &PutRequest) -> proto::PutReq {
    proto::PutReq {
        key: bytes(&put.key),
        value: bytes(&put.value),
        lease: put.lease,
        prev_kv: put.prev_kv,
        ignore_value: put.ignore_value,
        ignore_lease: put.ignore_lease,
    }
}

fn range_req(range: &RangeRequest) -> proto::RangeReq {
    proto::RangeReq {
        key: bytes(&range.key),
        range_end: bytes(&range.range_end),
        revision: range.revision,
        limit: range.limit,
        count_only: range.count_only,
        keys_only: range.keys_only,
        serializable: range.serializable,
    }
}

fn delete_req(delete: &DeleteRangeRequest) -> proto::DeleteRangeReq {
    proto::DeleteRangeReq {
        key: bytes(&delete.key),
        range_end: bytes(&delete.range_end),
        prev_kv: delete.prev_kv,
    }
}

fn txn_req(txn: &TxnRequest) -> proto::TxnReq {
    proto::TxnReq {
        compare: txn.compare.iter().map(cmp).collect(),
        success: txn.success.iter().map(txn_op).collect(),
        failure: txn.failure.iter().map(txn_op).collect(),
    }
}

fn cmp(compare: &Compare) -> proto::Cmp {
    proto::Cmp {
        key: bytes(&compare.key),
        result: match compare.result {
            CompareResult::Equal => proto::CmpResult::Equal,
            CompareResult::NotEqual => proto::CmpResult::NotEqual,
            CompareResult::Less => proto::CmpResult::Less,
            CompareResult::Greater => proto::CmpResult::Greater,
        },
        target: match &compare.target {
            CompareTarget::Value(value) => proto::CmpTarget::Value(bytes(value)),
            CompareTarget::Version(version) => proto::CmpTarget::Version(*version),
            CompareTarget::CreateRevision(revision) => proto::CmpTarget::CreateRevision(*revision),
            CompareTarget::ModRevision(revision) => proto::CmpTarget::ModRevision(*revision),
            CompareTarget::Lease(lease) => proto::CmpTarget::Lease(*lease),
        },
    }
}

fn txn_op(op: &RequestOp) -> proto::TxnOp {
    match op {
        RequestOp::Put(put) => proto::TxnOp::Put(put_req(put)),
        RequestOp::Range(range) => proto::TxnOp::Range(range_req(range)),
        RequestOp::DeleteRange(delete) => proto::TxnOp::DeleteRange(delete_req(delete)),
        RequestOp::Txn(txn) => proto::TxnOp::Txn(txn_req(txn)),
    }
}

// ---- wire response → model Ret ------------------------------------------------------------

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn key_value_of(kv: &proto::Kv) -> KeyValue {
    KeyValue {
        key: text(&kv.key),
        value: text(&kv.value),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader { revision }
}

/// The model's view of a server response. `Err` names a response that cannot come from etcd
/// (e.g. a lease response inside a transaction).
pub fn ret_of(response: proto::Response) -> Result<Ret, String> {
    Ok(match response {
        proto::Response::Error(error) => Ret::Err(etcd_error_of(error)),
        proto::Response::LeaseGrant {
            revision,
            id,
            ttl_s,
        } => Ret::Ok(Response::LeaseGrant {
            header: header(revision),
            id,
            ttl_s,
        }),
        proto::Response::LeaseRevoke { revision } => Ret::Ok(Response::LeaseRevoke {
            header: header(revision),
        }),
        proto::Response::LeaseKeepAlive {
            revision,
            id,
            ttl_s,
        } => Ret::Ok(Response::LeaseKeepAlive {
            header: header(revision),
            id,
            ttl_s,
        }),
        proto::Response::LeaseTimeToLive {
            revision,
            id,
            ttl_s,
            granted_ttl_s,
            keys,
        } => Ret::Ok(Response::LeaseTimeToLive {
            header: header(revision),
            id,
            ttl_s,
            granted_ttl_s,
            keys: keys.iter().map(|key| text(key)).collect(),
        }),
        proto::Response::Compact { revision } => Ret::Ok(Response::Compact {
            header: header(revision),
        }),
        other => Ret::Ok(match response_op_of(other)? {
            ResponseOp::Put(put) => Response::Put(put),
            ResponseOp::Range(range) => Response::Range(range),
            ResponseOp::DeleteRange(delete) => Response::DeleteRange(delete),
            ResponseOp::Txn(txn) => Response::Txn(txn),
        }),
    })
}

fn response_op_of(response: proto::Response) -> Result<ResponseOp, String> {
    Ok(match response {
        proto::Response::Put { revision, prev_kv } => ResponseOp::Put(PutResponse {
            header: header(revision),
            prev_kv: prev_kv.as_ref().map(key_value_of),
        }),
        proto::Response::Range {
            revision,
            kvs,
            more,
            count,
        } => ResponseOp::Range(RangeResponse {
            header: header(revision),
            kvs: kvs.iter().map(key_value_of).collect(),
            more,
            count,
        }),
        proto::Response::DeleteRange {
            revision,
            deleted,
            prev_kvs,
        } => ResponseOp::DeleteRange(DeleteRangeResponse {
            header: header(revision),
            deleted,
            prev_kvs: prev_kvs.iter().map(key_value_of).collect(),
        }),
        proto::Response::Txn {
            revision,
            succeeded,
            responses,
        } => ResponseOp::Txn(TxnResponse {
            header: header(revision),
            succeeded,
            responses: responses
                .into_iter()
                .map(response_op_of)
                .collect::<Result<_, _>>()?,
        }),
        other => return Err(format!("{other:?} inside a transaction")),
    })
}

fn etcd_error_of(error: proto::StoreError) -> EtcdError {
    match error {
        proto::StoreError::Compacted => EtcdError::Compacted,
        proto::StoreError::FutureRevision => EtcdError::FutureRevision,
        proto::StoreError::LeaseNotFound => EtcdError::LeaseNotFound,
        proto::StoreError::LeaseExists => EtcdError::LeaseExists,
        proto::StoreError::DuplicateKey => EtcdError::DuplicateKey,
        proto::StoreError::KeyNotFound => EtcdError::KeyNotFound,
        proto::StoreError::EmptyKey => EtcdError::EmptyKey,
        proto::StoreError::TooManyOps => EtcdError::TooManyOps,
        proto::StoreError::ValueProvided => EtcdError::ValueProvided,
        proto::StoreError::LeaseProvided => EtcdError::LeaseProvided,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_request_round_trips_through_the_wire_types() {
        let op = Op::Txn(TxnRequest {
            compare: vec![Compare {
                key: "k001".into(),
                result: CompareResult::Equal,
                target: CompareTarget::ModRevision(7),
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: "k001".into(),
                value: "c1-3".into(),
                lease: 5,
                ..Default::default()
            })],
            failure: vec![RequestOp::Range(RangeRequest {
                key: "k001".into(),
                ..Default::default()
            })],
        });
        let Some(proto::Request::Txn(txn)) = request_of(&op) else {
            panic!("txn expected")
        };
        assert_eq!(txn.compare[0].target, proto::CmpTarget::ModRevision(7));
        assert_eq!(
            txn.success[0],
            proto::TxnOp::Put(proto::PutReq {
                key: b"k001".to_vec(),
                value: b"c1-3".to_vec(),
                lease: 5,
                ..Default::default()
            })
        );
        assert!(request_of(&Op::LeaseExpire { id: 1 }).is_none());
    }

    #[test]
    fn responses_convert_and_impossible_ones_are_rejected() {
        let kv = proto::Kv {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            lease: 0,
        };
        let ret = ret_of(proto::Response::Txn {
            revision: 3,
            succeeded: true,
            responses: vec![proto::Response::Put {
                revision: 3,
                prev_kv: Some(kv),
            }],
        })
        .unwrap();
        let Ret::Ok(Response::Txn(txn)) = ret else {
            panic!("txn expected: {ret:?}")
        };
        assert_eq!(txn.responses.len(), 1);
        let ResponseOp::Put(put) = &txn.responses[0] else {
            panic!("put expected")
        };
        assert_eq!(put.prev_kv.as_ref().map(|kv| kv.mod_revision), Some(3));
        assert_eq!(
            ret_of(proto::Response::Error(proto::StoreError::Compacted)),
            Ok(Ret::Err(EtcdError::Compacted))
        );
        let bad = proto::Response::Txn {
            revision: 3,
            succeeded: true,
            responses: vec![proto::Response::Compact { revision: 3 }],
        };
        assert!(ret_of(bad).is_err());
    }
}

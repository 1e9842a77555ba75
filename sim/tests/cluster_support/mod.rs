//! Shared helpers for the cluster tests: a seeded simulation on a fresh thread, a client on its own node.
#![allow(dead_code)]

use kvsim_sim::cluster::Cluster;
use kvsim_sim::proto::{PutReq, RangeReq, Request, Response};
use kvsim_sim::rpc::{
    ClientWatchStream, KvCall, KvReply, WatchCreate, WatchRequest, WatchResponse,
};
use kvsim_sim::target::Role;
use madsim::net::Endpoint;
use madsim::runtime::{Handle, Runtime};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

pub const RPC_TIMEOUT: Duration = Duration::from_secs(2);

pub fn simulate<F, Fut, T>(seed: u64, body: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        let mut rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
        rt.set_time_limit(Duration::from_secs(3_600));
        rt.block_on(body())
    })
    .join()
    .expect("simulation panicked")
}

/// The first member (in id order) other than `id`.
pub fn other_than(cluster: &Cluster, id: u64) -> u64 {
    cluster
        .node_ids()
        .into_iter()
        .find(|&other| other != id)
        .expect("a cluster of more than one member")
}

/// Cuts member `id` off from every other member.
pub fn isolate(cluster: &Cluster, id: u64) {
    let others: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|&other| other != id)
        .collect();
    cluster.partition(&[vec![id], others]);
}

/// A client on its own node (10.0.1.x), so partitions between members never cut it off.
pub struct Client {
    pub node: madsim::runtime::NodeHandle,
    pub addr: SocketAddr,
}

impl Client {
    pub fn new(n: u8) -> Client {
        let addr: SocketAddr = format!("10.0.1.{n}:7000").parse().unwrap();
        let node = Handle::current()
            .create_node()
            .name(format!("client{n}"))
            .ip(addr.ip())
            .build();
        Client { node, addr }
    }

    pub async fn call(&self, to: SocketAddr, request: Request) -> Option<KvReply> {
        let addr = self.addr;
        self.node
            .spawn(async move {
                let ep = Endpoint::bind(SocketAddr::new(addr.ip(), 0)).await.unwrap();
                ep.call_timeout(to, KvCall { request }, RPC_TIMEOUT)
                    .await
                    .ok()
                    .map(|answer| answer.reply)
            })
            .await
            .unwrap()
    }

    /// Opens a watch stream and returns the first response after `Created` (a refusal counts),
    /// if one arrives within `wait`.
    pub async fn watch(
        &self,
        to: SocketAddr,
        create: WatchCreate,
        wait: Duration,
    ) -> Option<WatchResponse> {
        self.watch_stream(to, create, Vec::new(), wait, 1)
            .await
            .into_iter()
            .next()
    }

    /// Opens a watch stream, sends `requests` after the create, and returns every response
    /// after `Created` that arrives within `wait`, at most `responses_max` of them.
    pub async fn watch_stream(
        &self,
        to: SocketAddr,
        create: WatchCreate,
        requests: Vec<WatchRequest>,
        wait: Duration,
        responses_max: usize,
    ) -> Vec<WatchResponse> {
        let addr = self.addr;
        self.node
            .spawn(async move {
                let ep = Endpoint::bind(SocketAddr::new(addr.ip(), 0)).await.unwrap();
                let mut responses = Vec::new();
                let Ok(mut stream) = ClientWatchStream::open(&ep, to, create).await else {
                    return responses;
                };
                for request in requests {
                    if stream.send(request).await.is_err() {
                        return responses;
                    }
                }
                let deadline = madsim::time::Instant::now() + wait;
                while responses.len() < responses_max {
                    let left = deadline.saturating_duration_since(madsim::time::Instant::now());
                    match madsim::time::timeout(left, stream.recv()).await {
                        Ok(Ok(WatchResponse::Created { .. })) => {}
                        Ok(Ok(response)) => responses.push(response),
                        Ok(Err(_)) | Err(_) => break,
                    }
                }
                responses
            })
            .await
            .unwrap()
    }

    /// Puts through whichever member leads now, following NotLeader hints; returns the write's revision.
    pub async fn put(&self, cluster: &Cluster, key: &str, value: &str) -> i64 {
        for _ in 0..50 {
            let Some(leader) = cluster.wait_for_leader(20_000).await else {
                continue;
            };
            match self
                .call(cluster.client_addr(leader), put(key, value))
                .await
            {
                Some(KvReply::Ok(Response::Put { revision, .. })) => return revision,
                _ => madsim::time::sleep(Duration::from_millis(200)).await,
            }
        }
        panic!("put {key}={value} never succeeded");
    }
}

pub fn put(key: &str, value: &str) -> Request {
    Request::Put(PutReq {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..PutReq::default()
    })
}

pub fn get(key: &str, serializable: bool) -> Request {
    Request::Range(RangeReq {
        key: key.as_bytes().to_vec(),
        serializable,
        ..RangeReq::default()
    })
}

pub fn value_of(reply: Option<KvReply>) -> Option<Vec<u8>> {
    match reply {
        Some(KvReply::Ok(Response::Range { kvs, .. })) => kvs.first().map(|kv| kv.value.clone()),
        other => panic!("expected a range response, got {other:?}"),
    }
}

pub async fn wait_all_applied(cluster: &Cluster, timeout_ms: u64) {
    let deadline = madsim::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let statuses = cluster.status();
        let live: Vec<_> = statuses.iter().filter(|s| s.role != Role::Down).collect();
        let commit = live.iter().map(|s| s.commit_index).max().unwrap_or(0);
        if cluster.leader().is_some() && live.iter().all(|s| s.applied_index == commit) {
            return;
        }
        assert!(
            madsim::time::Instant::now() < deadline,
            "members did not converge: {statuses:?}"
        );
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn key(i: usize) -> String {
    format!("key{i:04}")
}

pub async fn assert_converged_with_equal_hashes(cluster: &Cluster) {
    let finals = cluster.final_state().await;
    let first = &finals[0];
    for f in &finals {
        assert!(f.up, "n{} is not up", f.id);
        assert_eq!(
            (f.revision, f.hash_kv, &f.kvs),
            (first.revision, first.hash_kv, &first.kvs),
            "n{} and n{} differ; status {:?}; violations {:?}",
            f.id,
            first.id,
            cluster.status(),
            cluster.violations()
        );
    }
    cluster.check_invariants().unwrap();
}

//! One model [`Op`] executed against a real etcd through the `etcd-client` crate, its answer
//! converted into the model's [`Ret`] and classified as an [`Outcome`].
//!
//! Outcome classes (`docs/facts.md`, "etcd"; the same rule as sim/src/client.rs so the checkers
//! read live and simulated histories alike):
//! - a response, or one of etcd's definite request errors (compacted, future revision, lease not
//!   found, duplicate key in txn, ...) → `Ok`; the model must predict the error too;
//! - refused before anything reached a server (connection refused, `no leader` from the
//!   require-leader interceptor, `not leader`, `too many requests`) → `Fail`: it did not happen;
//! - anything after the request may have been sent (timeout, reset, `request timed out, possibly
//!   due to previous leader failure`, `leader changed`, unavailable) → `Unknown`, reads included:
//!   the sim client does not special-case reads either.
//!
//! The caller owns the recording (call and return times, fresh client id after an unknown
//! outcome); this module only talks to etcd.

use etcd_client::{
    Client, CompactionOptions, Compare as EtcdCompare, CompareOp, ConnectOptions, DeleteOptions,
    DeleteResponse as EtcdDeleteResponse, GetOptions, GetResponse, LeaseGrantOptions,
    LeaseTimeToLiveOptions, PutOptions, PutResponse as EtcdPutResponse, Txn, TxnOp, TxnOpResponse,
    TxnResponse as EtcdTxnResponse,
};
use kvsim_checker::history::Outcome;
use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, EtcdError,
    KeyValue, Op, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, Response,
    ResponseHeader, ResponseOp, Ret, TxnRequest, TxnResponse,
};
use std::time::Duration;

/// Connects one client to one member (`docs/facts.md`: a multi-endpoint client round-robins without
/// ejecting dead members, so live mode uses one client per member). Every request carries etcd's
/// require-leader metadata: a member without a leader refuses at once (`Fail`) instead of
/// queueing the request until it times out (`Unknown`).
pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Client, etcd_client::Error> {
    let options = ConnectOptions::new()
        .with_require_leader(true)
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    Client::connect([endpoint], Some(options)).await
}

/// Executes `op` once (never retried: a retried write could apply twice) within `timeout`.
/// `Op::LeaseExpire` is synthetic (the checker adds it) and is refused as `Fail`.
pub async fn execute(client: &mut Client, op: &Op, timeout: Duration) -> Answer {
    match tokio::time::timeout(timeout, send(client, op)).await {
        Ok(Ok((ret, raft_term))) => Answer {
            outcome: Outcome::Ok { output: ret },
            raft_term,
        },
        Ok(Err(error)) => Answer {
            outcome: classify(&error),
            raft_term: None,
        },
        Err(_elapsed) => Answer {
            outcome: Outcome::Unknown {
                error: format!("timeout after {} ms", timeout.as_millis()),
            },
            raft_term: None,
        },
    }
}

/// What one request gave: its outcome, and the Raft term the answering member put in the
/// response header (etcd's `raft_term`; the member is the one the connection goes to, since etcd
/// answers a client's request on the member it reached). An error names no term.
#[derive(Clone, Debug)]
pub struct Answer {
    pub outcome: Outcome<Ret>,
    pub raft_term: Option<u64>,
}

/// Why an answer could not be obtained or converted.
#[derive(Debug)]
pub enum SendError {
    Etcd(etcd_client::Error),
    /// Not sent at all (e.g. a synthetic operation).
    NotSent(String),
}

impl From<etcd_client::Error> for SendError {
    fn from(error: etcd_client::Error) -> Self {
        SendError::Etcd(error)
    }
}

async fn send(client: &mut Client, op: &Op) -> Result<(Ret, Option<u64>), SendError> {
    Ok(match op {
        Op::Put(put) => {
            let (key, value, options) = put_parts(put);
            let response = client.put(key, value, Some(options)).await?;
            let term = term_of(response.header());
            (Ret::Ok(Response::Put(put_response(&response))), term)
        }
        Op::Range(range) => {
            let (key, options) = range_parts(range);
            let response = client.get(key, Some(options)).await?;
            let term = term_of(response.header());
            (Ret::Ok(Response::Range(range_response(&response))), term)
        }
        Op::DeleteRange(delete) => {
            let (key, options) = delete_parts(delete);
            let response = client.delete(key, Some(options)).await?;
            let term = term_of(response.header());
            (
                Ret::Ok(Response::DeleteRange(delete_response(&response))),
                term,
            )
        }
        Op::Txn(txn) => {
            let response = client.txn(txn_of(txn)).await?;
            let term = term_of(response.header());
            (Ret::Ok(Response::Txn(txn_response(&response))), term)
        }
        Op::LeaseGrant { id, ttl_s } => {
            let response = client
                .lease_grant(*ttl_s, Some(LeaseGrantOptions::new().with_id(*id)))
                .await?;
            let term = term_of(response.header());
            let ret = Ret::Ok(Response::LeaseGrant {
                header: header_of(response.header()),
                id: response.id(),
                ttl_s: response.ttl(),
            });
            (ret, term)
        }
        Op::LeaseRevoke { id } => {
            let response = client.lease_revoke(*id).await?;
            let term = term_of(response.header());
            let ret = Ret::Ok(Response::LeaseRevoke {
                header: header_of(response.header()),
            });
            (ret, term)
        }
        Op::LeaseKeepAlive { id } => keep_alive(client, *id).await?,
        Op::LeaseTimeToLive { id, keys } => {
            let options = if *keys {
                LeaseTimeToLiveOptions::new().with_keys()
            } else {
                LeaseTimeToLiveOptions::new()
            };
            let response = client.lease_time_to_live(*id, Some(options)).await?;
            let mut keys: Vec<String> = response.keys().iter().map(|key| text(key)).collect();
            keys.sort();
            let term = term_of(response.header());
            let ret = Ret::Ok(Response::LeaseTimeToLive {
                header: header_of(response.header()),
                id: response.id(),
                ttl_s: response.ttl(),
                granted_ttl_s: response.granted_ttl(),
                keys,
            });
            (ret, term)
        }
        Op::Compact { revision, physical } => {
            let options = if *physical {
                CompactionOptions::new().with_physical()
            } else {
                CompactionOptions::new()
            };
            let response = client.compact(*revision, Some(options)).await?;
            let term = term_of(response.header());
            let ret = Ret::Ok(Response::Compact {
                header: header_of(response.header()),
            });
            (ret, term)
        }
        Op::LeaseExpire { .. } => {
            return Err(SendError::NotSent(
                "lease_expire is synthetic: no client sends it".to_string(),
            ))
        }
    })
}

/// One keep-alive round trip. etcd-client's `keep_alive` opens the stream and consumes the first
/// answer without exposing its header or TTL; a second request on the same stream gives both.
/// Renewing twice is what one renewal does (etcd's `lessor.Renew` just resets the deadline).
async fn keep_alive(client: &mut Client, id: i64) -> Result<(Ret, Option<u64>), SendError> {
    let (mut keeper, mut stream) = match client.lease_keep_alive(id).await {
        Ok(pair) => pair,
        // clientv3 maps the stream's TTL 0 to "lease not found"; so does etcd-client.
        Err(etcd_client::Error::LeaseKeepAliveError(message)) if message == "lease not found" => {
            return Ok((Ret::Err(EtcdError::LeaseNotFound), None))
        }
        Err(error) => return Err(error.into()),
    };
    keeper.keep_alive().await?;
    match stream.message().await? {
        Some(response) if response.ttl() <= 0 => Ok((
            Ret::Err(EtcdError::LeaseNotFound),
            term_of(response.header()),
        )),
        Some(response) => Ok((
            Ret::Ok(Response::LeaseKeepAlive {
                header: header_of(response.header()),
                id: response.id(),
                ttl_s: response.ttl(),
            }),
            term_of(response.header()),
        )),
        None => Err(SendError::Etcd(etcd_client::Error::LeaseKeepAliveError(
            "keep-alive stream closed before answering".to_string(),
        ))),
    }
}

// ---- classification ------------------------------------------------------------------------

/// etcd's definite request errors (etcd 3.4 `api/v3rpc/rpctypes/error.go`), by message.
const DEFINITE_ERRORS: [(&str, EtcdError); 10] = [
    (
        "etcdserver: mvcc: required revision has been compacted",
        EtcdError::Compacted,
    ),
    (
        "etcdserver: mvcc: required revision is a future revision",
        EtcdError::FutureRevision,
    ),
    (
        "etcdserver: requested lease not found",
        EtcdError::LeaseNotFound,
    ),
    ("etcdserver: lease already exists", EtcdError::LeaseExists),
    (
        "etcdserver: duplicate key given in txn request",
        EtcdError::DuplicateKey,
    ),
    ("etcdserver: key not found", EtcdError::KeyNotFound),
    ("etcdserver: key is not provided", EtcdError::EmptyKey),
    (
        "etcdserver: too many operations in txn request",
        EtcdError::TooManyOps,
    ),
    ("etcdserver: value is provided", EtcdError::ValueProvided),
    ("etcdserver: lease is provided", EtcdError::LeaseProvided),
];

/// Refusals etcd gives before proposing anything: the request did not happen.
const REFUSALS: [&str; 3] = [
    // The require-leader interceptor (v3rpc `newUnaryInterceptor`) answers before the handler.
    "etcdserver: no leader",
    "etcdserver: not leader",
    // The proposal gate (`applied index + 5000 < committed index`) answers before proposing.
    "etcdserver: too many requests",
];

/// Maps an etcd-client error to an outcome (see the module comment).
pub fn classify(error: &SendError) -> Outcome<Ret> {
    match error {
        SendError::NotSent(reason) => Outcome::Fail {
            error: reason.clone(),
        },
        SendError::Etcd(error) => {
            let status_message = match error {
                etcd_client::Error::GRpcStatus(status) => Some(status.message()),
                _ => None,
            };
            let never_sent = matches!(error, etcd_client::Error::InvalidArgs(_));
            classify_parts(status_message, &error_chain(error), never_sent)
        }
    }
}

/// [`classify`] on the error's parts: the gRPC status message if any, the whole source chain as
/// text, and whether the client refused the request itself.
fn classify_parts(status_message: Option<&str>, chain: &str, never_sent: bool) -> Outcome<Ret> {
    if let Some(message) = status_message {
        if let Some((_, etcd_error)) = DEFINITE_ERRORS.iter().find(|(text, _)| *text == message) {
            return Outcome::Ok {
                output: Ret::Err(etcd_error.clone()),
            };
        }
        if REFUSALS.contains(&message) {
            return Outcome::Fail {
                error: chain.to_string(),
            };
        }
    }
    if never_sent || is_connection_refused(chain) {
        return Outcome::Fail {
            error: chain.to_string(),
        };
    }
    Outcome::Unknown {
        error: chain.to_string(),
    }
}

/// "connection refused" anywhere in the error's source chain: nothing was sent.
fn is_connection_refused(chain: &str) -> bool {
    chain.to_ascii_lowercase().contains("connection refused")
}

/// The error and all its sources, joined: tonic hides the OS error ("Connection refused",
/// "Connection reset by peer") a few sources down.
fn error_chain(error: &etcd_client::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

// ---- model Op → etcd-client request ------------------------------------------------------------

fn put_parts(put: &PutRequest) -> (Vec<u8>, Vec<u8>, PutOptions) {
    let mut options = PutOptions::new();
    if put.lease != 0 {
        options = options.with_lease(put.lease);
    }
    if put.prev_kv {
        options = options.with_prev_key();
    }
    if put.ignore_value {
        options = options.with_ignore_value();
    }
    if put.ignore_lease {
        options = options.with_ignore_lease();
    }
    (put.key.clone().into(), put.value.clone().into(), options)
}

fn range_parts(range: &RangeRequest) -> (Vec<u8>, GetOptions) {
    let mut options = GetOptions::new();
    if !range.range_end.is_empty() {
        options = options.with_range(range.range_end.clone());
    }
    if range.revision != 0 {
        options = options.with_revision(range.revision);
    }
    if range.limit != 0 {
        options = options.with_limit(range.limit);
    }
    if range.count_only {
        options = options.with_count_only();
    }
    if range.keys_only {
        options = options.with_keys_only();
    }
    if range.serializable {
        options = options.with_serializable();
    }
    (range.key.clone().into(), options)
}

fn delete_parts(delete: &DeleteRangeRequest) -> (Vec<u8>, DeleteOptions) {
    let mut options = DeleteOptions::new();
    if !delete.range_end.is_empty() {
        options = options.with_range(delete.range_end.clone());
    }
    if delete.prev_kv {
        options = options.with_prev_key();
    }
    (delete.key.clone().into(), options)
}

fn compare_of(compare: &Compare) -> EtcdCompare {
    let result = match compare.result {
        CompareResult::Equal => CompareOp::Equal,
        CompareResult::NotEqual => CompareOp::NotEqual,
        CompareResult::Less => CompareOp::Less,
        CompareResult::Greater => CompareOp::Greater,
    };
    let key = compare.key.clone();
    match &compare.target {
        CompareTarget::Value(value) => EtcdCompare::value(key, result, value.clone()),
        CompareTarget::Version(version) => EtcdCompare::version(key, result, *version),
        CompareTarget::CreateRevision(revision) => {
            EtcdCompare::create_revision(key, result, *revision)
        }
        CompareTarget::ModRevision(revision) => EtcdCompare::mod_revision(key, result, *revision),
        CompareTarget::Lease(lease) => EtcdCompare::lease(key, result, *lease),
    }
}

fn txn_op_of(op: &RequestOp) -> TxnOp {
    match op {
        RequestOp::Put(put) => {
            let (key, value, options) = put_parts(put);
            TxnOp::put(key, value, Some(options))
        }
        RequestOp::Range(range) => {
            let (key, options) = range_parts(range);
            TxnOp::get(key, Some(options))
        }
        RequestOp::DeleteRange(delete) => {
            let (key, options) = delete_parts(delete);
            TxnOp::delete(key, Some(options))
        }
        RequestOp::Txn(txn) => TxnOp::txn(txn_of(txn)),
    }
}

fn txn_of(txn: &TxnRequest) -> Txn {
    Txn::new()
        .when(txn.compare.iter().map(compare_of).collect::<Vec<_>>())
        .and_then(txn.success.iter().map(txn_op_of).collect::<Vec<_>>())
        .or_else(txn.failure.iter().map(txn_op_of).collect::<Vec<_>>())
}

// ---- etcd-client response → model Ret ----------------------------------------------------------

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Raft term in a response header (etcd sets it on every top-level answer).
fn term_of(header: Option<&etcd_client::ResponseHeader>) -> Option<u64> {
    header
        .map(|header| header.raft_term())
        .filter(|term| *term > 0)
}

/// A missing header reads as revision 0: etcd leaves a nested txn's header empty (types.rs).
fn header_of(header: Option<&etcd_client::ResponseHeader>) -> ResponseHeader {
    ResponseHeader {
        revision: header.map_or(0, |header| header.revision()),
    }
}

pub fn key_value_of(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: text(kv.key()),
        value: text(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}

fn put_response(response: &EtcdPutResponse) -> PutResponse {
    PutResponse {
        header: header_of(response.header()),
        prev_kv: response.prev_key().map(key_value_of),
    }
}

fn range_response(response: &GetResponse) -> RangeResponse {
    RangeResponse {
        header: header_of(response.header()),
        kvs: response.kvs().iter().map(key_value_of).collect(),
        more: response.more(),
        count: response.count(),
    }
}

fn delete_response(response: &EtcdDeleteResponse) -> DeleteRangeResponse {
    DeleteRangeResponse {
        header: header_of(response.header()),
        deleted: response.deleted(),
        prev_kvs: response.prev_kvs().iter().map(key_value_of).collect(),
    }
}

fn txn_response(response: &EtcdTxnResponse) -> TxnResponse {
    TxnResponse {
        header: header_of(response.header()),
        succeeded: response.succeeded(),
        responses: response
            .op_responses()
            .iter()
            .map(|op| match op {
                TxnOpResponse::Put(put) => ResponseOp::Put(put_response(put)),
                TxnOpResponse::Get(range) => ResponseOp::Range(range_response(range)),
                TxnOpResponse::Delete(delete) => ResponseOp::DeleteRange(delete_response(delete)),
                TxnOpResponse::Txn(txn) => ResponseOp::Txn(txn_response(txn)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(message: &str) -> Outcome<Ret> {
        classify_parts(
            Some(message),
            &format!("grpc request error: {message}"),
            false,
        )
    }

    #[test]
    fn etcd_errors_are_definite_refusals_fail_and_the_rest_is_unknown() {
        assert_eq!(
            status("etcdserver: mvcc: required revision has been compacted"),
            Outcome::Ok {
                output: Ret::Err(EtcdError::Compacted)
            }
        );
        assert_eq!(
            status("etcdserver: duplicate key given in txn request"),
            Outcome::Ok {
                output: Ret::Err(EtcdError::DuplicateKey)
            }
        );
        assert!(matches!(
            status("etcdserver: no leader"),
            Outcome::Fail { .. }
        ));
        assert!(matches!(
            status("etcdserver: request timed out, possibly due to previous leader failure"),
            Outcome::Unknown { .. }
        ));
        assert!(matches!(
            classify_parts(
                None,
                "transport error: tcp connect error: Connection refused (os error 111)",
                false
            ),
            Outcome::Fail { .. }
        ));
        assert!(matches!(
            classify_parts(None, "h2 protocol error: connection reset by peer", false),
            Outcome::Unknown { .. }
        ));
        assert!(matches!(
            classify(&SendError::NotSent("synthetic".into())),
            Outcome::Fail { .. }
        ));
    }
}

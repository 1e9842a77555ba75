//! MVCC operations, answers and histories as the checker tests write them: one client per
//! op, so only real time orders them, and each answer 1 ms after its call.
#![allow(dead_code)] // each test crate uses its own part

use kvsim_checker::history::{History, Operation, Outcome};
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult, Stats};
use kvsim_model::mvcc::{
    KeyValue, LeaseId, MvccModel, Op, PutRequest, PutResponse, RangeRequest, RangeResponse,
    Response, ResponseHeader, Ret,
};

pub const MS: u64 = 1_000_000;

#[derive(Default)]
pub struct Builder {
    pub history: History<Op, Ret>,
}

impl Builder {
    pub fn push(&mut self, call_ns: u64, input: Op, outcome: Option<Response>) -> &mut Self {
        let id = self.history.ops.len() as u64;
        let (return_ns, outcome) = match outcome {
            Some(response) => (
                Some(call_ns + MS),
                Outcome::Ok {
                    output: Ret::Ok(response),
                },
            ),
            None => (
                None,
                Outcome::Unknown {
                    error: "timeout".into(),
                },
            ),
        };
        self.history.ops.push(Operation {
            id,
            client: id,
            call_ns,
            return_ns,
            input,
            outcome,
        });
        self
    }

    /// An op with an unknown outcome: it may take effect at any point after its call, or never.
    pub fn unknown(&mut self, call_ns: u64, input: Op) -> &mut Self {
        self.push(call_ns, input, None)
    }

    /// An op answered `response` 1 ms after its call.
    pub fn ok(&mut self, call_ns: u64, input: Op, response: Response) -> &mut Self {
        self.push(call_ns, input, Some(response))
    }

    /// The whole-history search's verdict with no budget, and its work.
    pub fn verdict(&self) -> (CheckResult, Stats) {
        check_with_stats(
            &self.history,
            MvccModel::new(),
            &Budget::default(),
            &CheckOptions::default(),
        )
    }
}

pub fn put(key: &str, value: &str) -> Op {
    put_under(key, value, 0)
}

pub fn put_under(key: &str, value: &str, lease: LeaseId) -> Op {
    Op::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        ..Default::default()
    })
}

pub fn put_ok(revision: i64) -> Response {
    Response::Put(PutResponse {
        header: ResponseHeader { revision },
        prev_kv: None,
    })
}

pub fn get(key: &str) -> Op {
    range(key, 0, false, false)
}

pub fn range(key: &str, revision: i64, serializable: bool, keys_only: bool) -> Op {
    Op::Range(RangeRequest {
        key: key.into(),
        revision,
        serializable,
        keys_only,
        ..Default::default()
    })
}

/// `key` holding `value`, created at revision 2, at `version` with `mod_revision` = the
/// header's revision.
pub fn got(key: &str, value: &str, version: i64, revision: i64) -> Response {
    shows(revision, vec![kv(key, value, 2, revision, version)])
}

pub fn kv(
    key: &str,
    value: &str,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        create_revision,
        mod_revision,
        version,
        lease: 0,
    }
}

/// A linearizable range's answer at `revision`.
pub fn shows(revision: i64, kvs: Vec<KeyValue>) -> Response {
    Response::Range(RangeResponse {
        header: ResponseHeader { revision },
        count: kvs.len() as i64,
        kvs,
        more: false,
    })
}

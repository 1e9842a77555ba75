//! Lease expiry through the whole search: synthetic expiries from `add_lease_expiries` let keys
//! vanish after their lease's TTL, never before.

use kvsim_checker::history::FaultEvent;
use kvsim_checker::history::{History, Operation, Outcome};
use kvsim_checker::lease_expiry::{add_lease_expiries, add_lease_expiries_under_faults};
use kvsim_checker::{check, Budget, CheckOptions, CheckResult};
use kvsim_model::mvcc::{
    KeyValue, MvccModel, Op, PutRequest, PutResponse, RangeRequest, RangeResponse, Response,
    ResponseHeader, Ret,
};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

struct Builder {
    history: History<Op, Ret>,
}

impl Builder {
    fn new() -> Self {
        Self {
            history: History::default(),
        }
    }

    fn push(
        &mut self,
        client: u64,
        call_ns: u64,
        return_ns: Option<u64>,
        input: Op,
        outcome: Outcome<Ret>,
    ) -> &mut Self {
        let id = self.history.ops.len() as u64;
        self.history.ops.push(Operation {
            id,
            client,
            call_ns,
            return_ns,
            input,
            outcome,
        });
        self
    }

    fn ok(&mut self, client: u64, call_ns: u64, input: Op, response: Response) -> &mut Self {
        self.push(
            client,
            call_ns,
            Some(call_ns + MS),
            input,
            Outcome::Ok {
                output: Ret::Ok(response),
            },
        )
    }

    fn verdict(&mut self) -> CheckResult {
        let mut history = self.history.clone();
        add_lease_expiries(&mut history);
        check(
            &history,
            MvccModel::new(),
            &Budget::default(),
            &CheckOptions::default(),
        )
    }
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader { revision }
}
fn grant(id: i64, ttl_s: i64) -> Op {
    Op::LeaseGrant { id, ttl_s }
}
fn granted(id: i64, ttl_s: i64) -> Response {
    Response::LeaseGrant {
        header: header(1),
        id,
        ttl_s,
    }
}
fn put_with_lease(lease: i64) -> Op {
    Op::Put(PutRequest {
        key: "k".into(),
        value: "v".into(),
        lease,
        ..Default::default()
    })
}
fn put_ok(revision: i64) -> Response {
    Response::Put(PutResponse {
        header: header(revision),
        prev_kv: None,
    })
}
fn get_k() -> Op {
    Op::Range(RangeRequest {
        key: "k".into(),
        ..Default::default()
    })
}
/// `k` gone at revision 3: the expiry's delete is the only write after the put at 2.
fn k_gone() -> Response {
    Response::Range(RangeResponse {
        header: header(3),
        kvs: vec![],
        more: false,
        count: 0,
    })
}
fn k_present(lease: i64) -> Response {
    let kv = KeyValue {
        key: "k".into(),
        value: "v".into(),
        create_revision: 2,
        mod_revision: 2,
        version: 1,
        lease,
    };
    Response::Range(RangeResponse {
        header: header(2),
        kvs: vec![kv],
        more: false,
        count: 1,
    })
}

/// Grant lease 1 (TTL 2 s) at t=0, put `k` with it, then read `k` at `read_ns`.
fn granted_then_read(read_ns: u64, read: Response) -> Builder {
    let mut b = Builder::new();
    b.ok(0, 0, grant(1, 2), granted(1, 2))
        .ok(0, 2 * MS, put_with_lease(1), put_ok(2))
        .ok(1, read_ns, get_k(), read);
    b
}

#[test]
fn keys_may_vanish_after_the_ttl() {
    assert_eq!(
        granted_then_read(2 * S + 500 * MS, k_gone()).verdict(),
        CheckResult::Linearizable
    );
}

#[test]
fn keys_may_also_outlive_the_ttl() {
    // Expiry is open-ended: a lessor may be late (leader change, slow revoke proposal).
    assert_eq!(
        granted_then_read(10 * S, k_present(1)).verdict(),
        CheckResult::Linearizable
    );
}

#[test]
fn keys_must_not_vanish_before_the_ttl() {
    let verdict = granted_then_read(S, k_gone()).verdict();
    assert!(
        matches!(verdict, CheckResult::NotLinearizable(_)),
        "{verdict:?}"
    );
}

#[test]
fn without_synthetic_expiries_no_vanishing_is_allowed() {
    // The model alone never expires leases: the same legal history fails without the helper.
    let b = granted_then_read(2 * S + 500 * MS, k_gone());
    let verdict = check(
        &b.history,
        MvccModel::new(),
        &Budget::default(),
        &CheckOptions::default(),
    );
    assert!(
        matches!(verdict, CheckResult::NotLinearizable(_)),
        "{verdict:?}"
    );
}

#[test]
fn a_keep_alive_pushes_the_earliest_expiry() {
    let keep_alive = |read_ns: u64| {
        let mut b = Builder::new();
        b.ok(0, 0, grant(1, 2), granted(1, 2))
            .ok(0, 2 * MS, put_with_lease(1), put_ok(2))
            .ok(
                0,
                1500 * MS,
                Op::LeaseKeepAlive { id: 1 },
                Response::LeaseKeepAlive {
                    header: header(2),
                    id: 1,
                    ttl_s: 2,
                },
            )
            .ok(1, read_ns, get_k(), k_gone());
        b.verdict()
    };
    assert!(
        matches!(keep_alive(3 * S), CheckResult::NotLinearizable(_)),
        "renewed at 1.5 s: alive until 3.5 s"
    );
    assert_eq!(keep_alive(4 * S), CheckResult::Linearizable);
}

#[test]
fn an_unknown_grant_may_still_expire_from_its_call() {
    let unknown_grant = |read_ns: u64| {
        let mut b = Builder::new();
        b.push(
            0,
            0,
            None,
            grant(1, 2),
            Outcome::Unknown {
                error: "timeout".into(),
            },
        )
        // The put with lease 1 succeeded, so the grant did take effect.
        .ok(1, 10 * MS, put_with_lease(1), put_ok(2))
        .ok(2, read_ns, get_k(), k_gone());
        b.verdict()
    };
    assert_eq!(unknown_grant(2 * S + MS), CheckResult::Linearizable);
    assert!(matches!(unknown_grant(S), CheckResult::NotLinearizable(_)));
}

#[test]
fn the_granted_ttl_of_the_answer_is_used() {
    // Asked 1 s, etcd granted 2 s (its minimum): gone at 1.5 s is too early.
    let mut b = Builder::new();
    b.ok(0, 0, grant(1, 1), granted(1, 2))
        .ok(0, 2 * MS, put_with_lease(1), put_ok(2))
        .ok(1, 1500 * MS, get_k(), k_gone());
    assert!(matches!(b.verdict(), CheckResult::NotLinearizable(_)));
}

fn clock_skew(t_ns: u64, node: &str, skew_ms: i64) -> FaultEvent {
    FaultEvent {
        t_ns,
        kind: "clock_skew".into(),
        nodes: vec![node.into()],
        detail: serde_json::json!({ "skew_ms": skew_ms }),
    }
}

/// The verdict with expiries bounded by the clock jumps of each lease's own life.
fn verdict_under(mut history: History<Op, Ret>, faults: Vec<FaultEvent>) -> CheckResult {
    history.faults = faults;
    add_lease_expiries_under_faults(&mut history);
    check(
        &history,
        MvccModel::new(),
        &Budget::default(),
        &CheckOptions::default(),
    )
}

#[test]
fn a_clock_jump_during_the_lease_allows_an_early_expiry_by_its_size() {
    // n2's lessor clock jumps 800 ms forward at 1 s, inside the lease's life (granted at 0, TTL
    // 2 s): its leader may expire the lease at 1.2 s real time, etcd working as designed.
    let early = granted_then_read(1300 * MS, k_gone()).history;
    assert_eq!(
        verdict_under(early.clone(), vec![clock_skew(S, "n2", 800)]),
        CheckResult::Linearizable
    );
    // Earlier than the jump allows is still early.
    let too_early = granted_then_read(1100 * MS, k_gone()).history;
    let verdict = verdict_under(too_early, vec![clock_skew(S, "n2", 800)]);
    assert!(
        matches!(verdict, CheckResult::NotLinearizable(_)),
        "{verdict:?}"
    );
}

#[test]
fn clock_jumps_outside_the_lease_life_allow_nothing() {
    // n2 jumped by 800 ms and back (1.6 s in all) before the lease was granted at 5 s, and
    // again at 20 s, long after it: a steady offset measures the TTL exactly, so gone at 6.3 s
    // (1.3 s after the grant, TTL 2 s) is early. A bound moved by every jump of the run would
    // have accepted it.
    let mut b = Builder::new();
    b.ok(0, 5 * S, grant(1, 2), granted(1, 2))
        .ok(0, 5 * S + 2 * MS, put_with_lease(1), put_ok(2))
        .ok(1, 6300 * MS, get_k(), k_gone());
    let faults = vec![
        clock_skew(S, "n2", 800),
        clock_skew(3 * S, "n2", 0),
        clock_skew(20 * S, "n2", -900),
    ];
    let verdict = verdict_under(b.history.clone(), faults.clone());
    assert!(
        matches!(verdict, CheckResult::NotLinearizable(_)),
        "{verdict:?}"
    );
    let mut global = b.history.clone();
    global.faults = faults;
    let whole_run_error_ns = kvsim_checker::lease_expiry::clock_error_ns(&global.faults);
    kvsim_checker::lease_expiry::add_lease_expiries_with_clock_error(
        &mut global,
        whole_run_error_ns,
    );
    assert_eq!(
        check(
            &global,
            MvccModel::new(),
            &Budget::default(),
            &CheckOptions::default()
        ),
        CheckResult::Linearizable,
        "the whole run's error (2.5 s) would hide it"
    );
}

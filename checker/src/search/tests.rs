//! Small hand-made histories with known verdicts.

use kvsim_model::kv::{KvOp, KvRet, KvStore};
use kvsim_model::register::{CasRegister, RegisterOp, RegisterRet};

use super::*;
use crate::history::Outcome;

fn op<I, O>(
    id: u64,
    client: u64,
    call_ns: u64,
    return_ns: Option<u64>,
    input: I,
    outcome: Outcome<O>,
) -> Operation<I, O> {
    Operation {
        id,
        client,
        call_ns,
        return_ns,
        input,
        outcome,
    }
}

fn ok<I, O>(id: u64, call_ns: u64, return_ns: u64, input: I, output: O) -> Operation<I, O> {
    op(
        id,
        id,
        call_ns,
        Some(return_ns),
        input,
        Outcome::Ok { output },
    )
}

fn unknown<I, O>(id: u64, call_ns: u64, input: I) -> Operation<I, O> {
    op(
        id,
        id,
        call_ns,
        None,
        input,
        Outcome::Unknown {
            error: "timeout".into(),
        },
    )
}

fn register(ops: Vec<Operation<RegisterOp, RegisterRet>>) -> CheckResult {
    let history = History {
        ops,
        ..History::default()
    };
    check(
        &history,
        CasRegister::default(),
        &Budget::default(),
        &CheckOptions::default(),
    )
}

fn write(value: i64) -> RegisterOp {
    RegisterOp::Write { value }
}
fn read(value: Option<i64>) -> RegisterRet {
    RegisterRet::Read { value }
}

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(register(vec![]), CheckResult::Linearizable);
}

#[test]
fn concurrent_reads_may_see_either_side_of_a_write() {
    // Both reads overlap the write and each other: r -> 100 then r -> nil is wrong, but
    // r -> nil, w(100), r -> 100 is a valid order.
    let ops = vec![
        ok(0, 0, 100, write(100), RegisterRet::Write),
        ok(1, 25, 75, RegisterOp::Read, read(Some(100))),
        ok(2, 30, 60, RegisterOp::Read, read(None)),
    ];
    assert_eq!(register(ops), CheckResult::Linearizable);
}

#[test]
fn stale_read_after_a_newer_read_is_a_violation() {
    let ops = vec![
        ok(0, 0, 100, write(200), RegisterRet::Write),
        ok(1, 10, 30, RegisterOp::Read, read(Some(200))),
        ok(2, 40, 90, RegisterOp::Read, read(None)),
    ];
    let CheckResult::NotLinearizable(violation) = register(ops) else {
        panic!("expected a violation")
    };
    assert_eq!(violation.longest_prefix, vec![0, 1]);
    assert_eq!(violation.stuck, vec![2]);
    assert!(
        violation.state_debug.contains("200"),
        "{}",
        violation.state_debug
    );
}

#[test]
fn equal_timestamps_count_as_concurrent() {
    // Read returns at 10, write is called at 10: concurrent, so the read may follow the write.
    let ops = vec![
        ok(0, 10, 20, write(1), RegisterRet::Write),
        ok(1, 0, 10, RegisterOp::Read, read(Some(1))),
    ];
    assert_eq!(register(ops), CheckResult::Linearizable);
    let ops = vec![
        ok(0, 11, 20, write(1), RegisterRet::Write),
        ok(1, 0, 10, RegisterOp::Read, read(Some(1))),
    ];
    assert!(matches!(register(ops), CheckResult::NotLinearizable(_)));
}

#[test]
fn unknown_write_may_take_effect_late_or_never() {
    let late = vec![
        unknown(0, 0, write(1)),
        ok(1, 10, 20, RegisterOp::Read, read(None)),
        ok(2, 30, 40, RegisterOp::Read, read(Some(1))),
    ];
    assert_eq!(register(late), CheckResult::Linearizable);
    let never = vec![
        unknown(0, 0, write(1)),
        ok(1, 10, 20, RegisterOp::Read, read(None)),
    ];
    assert_eq!(register(never), CheckResult::Linearizable);
    // ... but not before it was called.
    let early = vec![
        ok(1, 0, 5, RegisterOp::Read, read(Some(1))),
        unknown(0, 10, write(1)),
    ];
    assert!(matches!(register(early), CheckResult::NotLinearizable(_)));
    // ... and at most once.
    let twice = vec![
        unknown(0, 0, write(1)),
        ok(1, 10, 20, write(2), RegisterRet::Write),
        ok(2, 30, 40, RegisterOp::Read, read(Some(1))),
        ok(3, 50, 60, write(2), RegisterRet::Write),
        ok(4, 70, 80, RegisterOp::Read, read(Some(1))),
    ];
    assert!(matches!(register(twice), CheckResult::NotLinearizable(_)));
}

#[test]
fn failed_ops_are_ignored() {
    let ops = vec![
        op(
            0,
            0,
            0,
            Some(5),
            write(1),
            Outcome::Fail {
                error: "refused".into(),
            },
        ),
        ok(1, 10, 20, RegisterOp::Read, read(None)),
    ];
    assert_eq!(register(ops), CheckResult::Linearizable);
}

#[test]
fn cas_chain_needs_the_right_order() {
    // Three concurrent cas ops that only work as 0->1, 1->2, 2->3, listed in another order.
    let cas = |from, to| RegisterOp::Cas { from, to };
    let swapped = RegisterRet::Cas { swapped: true };
    let ops = vec![
        ok(0, 0, 5, write(0), RegisterRet::Write),
        ok(3, 10, 100, cas(2, 3), swapped.clone()),
        ok(2, 10, 100, cas(1, 2), swapped.clone()),
        ok(1, 10, 100, cas(0, 1), swapped.clone()),
        ok(4, 110, 120, RegisterOp::Read, read(Some(3))),
    ];
    assert_eq!(register(ops.clone()), CheckResult::Linearizable);
    let mut bad = ops;
    bad[4] = ok(4, 110, 120, RegisterOp::Read, read(Some(2)));
    assert!(matches!(register(bad), CheckResult::NotLinearizable(_)));
}

#[test]
fn budget_exhaustion_is_unknown_not_a_verdict() {
    let ops: Vec<_> = (0..50)
        .map(|i| ok(i, 0, 1000, write(i as i64), RegisterRet::Write))
        .collect();
    let history = History {
        ops,
        ..History::default()
    };
    let tiny_memo = Budget {
        memo_entries_max: Some(3),
        timeout: None,
    };
    let result = check(
        &history,
        CasRegister::default(),
        &tiny_memo,
        &CheckOptions::default(),
    );
    let CheckResult::Unknown(why) = &result else {
        panic!("expected unknown, got {result:?}")
    };
    assert!(
        why.starts_with("memo reached") && why.contains("raise it with `--memory-max`"),
        "{why}"
    );
    let placed: usize = why
        .split("prefix found holds ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no prefix length in {why:?}"));
    assert!(placed >= 1, "the search placed some writes first: {why}");
    assert!(
        why.ends_with(&format!("of 50 answered operations, {} left", 50 - placed)),
        "{why}"
    );
    let no_time = Budget {
        memo_entries_max: None,
        timeout: Some(Duration::ZERO),
    };
    let result = check(
        &history,
        CasRegister::default(),
        &no_time,
        &CheckOptions::default(),
    );
    let CheckResult::Unknown(why) = &result else {
        panic!("expected unknown, got {result:?}")
    };
    assert!(
        why.starts_with("timed out") && why.contains("`--timeout`"),
        "{why}"
    );
    assert!(
        why.ends_with("holds 0 of 50 answered operations, 50 left"),
        "{why}"
    );
}

#[test]
fn a_partition_out_of_budget_is_named_after_the_budget() {
    let put = |key: &str| KvOp::Put {
        key: key.into(),
        value: "v".into(),
    };
    let history = kv_history(vec![
        ok(0, 0, 10, put("a"), KvRet::Put),
        ok(1, 0, 10, put("b"), KvRet::Put),
    ]);
    let no_time = Budget {
        memo_entries_max: None,
        timeout: Some(Duration::ZERO),
    };
    let result = check(
        &history,
        KvStore::default(),
        &no_time,
        &CheckOptions { partition: true },
    );
    let CheckResult::Unknown(why) = &result else {
        panic!("expected unknown, got {result:?}")
    };
    // `kvsim` tells the budgets apart by the first words.
    assert!(why.starts_with("timed out"), "{why}");
    assert!(why.ends_with("1 left (partition \"a\")"), "{why}");
}

fn kv_history(ops: Vec<Operation<KvOp, KvRet>>) -> History<KvOp, KvRet> {
    History {
        ops,
        ..History::default()
    }
}

#[test]
fn partitioned_and_whole_checks_agree_and_name_the_key() {
    let append = |key: &str, value: &str| KvOp::Append {
        key: key.into(),
        value: value.into(),
    };
    let get = |key: &str| KvOp::Get { key: key.into() };
    let got = |value: &str| KvRet::Get {
        value: value.into(),
    };
    let good = kv_history(vec![
        ok(0, 0, 10, append("a", "x"), KvRet::Append),
        ok(1, 5, 15, append("b", "y"), KvRet::Append),
        ok(2, 20, 30, get("a"), got("x")),
        ok(3, 20, 30, get("b"), got("y")),
    ]);
    let bad = kv_history(vec![
        ok(0, 0, 10, append("a", "x"), KvRet::Append),
        ok(1, 5, 15, append("b", "y"), KvRet::Append),
        ok(2, 20, 30, get("a"), got("x")),
        ok(3, 20, 30, get("b"), got("")),
    ]);
    for partition in [false, true] {
        let opts = CheckOptions { partition };
        let (result, stats) =
            check_with_stats(&good, KvStore::default(), &Budget::default(), &opts);
        assert_eq!(result, CheckResult::Linearizable);
        assert_eq!(stats.partitions, if partition { 2 } else { 1 });
        let CheckResult::NotLinearizable(violation) =
            check(&bad, KvStore::default(), &Budget::default(), &opts)
        else {
            panic!("expected a violation");
        };
        assert_eq!(violation.stuck, vec![3]);
        // The whole-history search exploits the independence of keys too, and names the key.
        assert_eq!(violation.partition.as_deref(), Some("b"));
        let text = violation.render(&bad);
        assert!(text.contains("cannot follow: op 3"), "{text}");
    }
}

#[test]
fn long_sequential_history_is_fast_and_deep() {
    // 20k sequential ops: exercises the O(1) memo key and the incremental best prefix.
    let ops: Vec<_> = (0..20_000u64)
        .map(|i| {
            let t = i * 10;
            if i % 2 == 0 {
                ok(i, t, t + 5, write(i as i64), RegisterRet::Write)
            } else {
                ok(i, t, t + 5, RegisterOp::Read, read(Some(i as i64 - 1)))
            }
        })
        .collect();
    let history = History {
        ops,
        ..History::default()
    };
    let (result, stats) = check_with_stats(
        &history,
        CasRegister::default(),
        &Budget::default(),
        &CheckOptions::default(),
    );
    assert_eq!(result, CheckResult::Linearizable);
    assert_eq!(stats.steps, 20_000);
}

/// Twelve keys with three concurrent appends each (6^12 valid interleavings of orders) and one
/// key whose last read is impossible: the whole-history search must blame that key at once,
/// backjumping over every choice made on the others, instead of retrying all their orders.
#[test]
fn whole_history_search_backjumps_over_independent_keys() {
    let append = |key: &str, value: &str| KvOp::Append {
        key: key.into(),
        value: value.into(),
    };
    let history_with_last_read = |seen: &str| {
        let mut ops = vec![ok(0, 0, 10, append("a", "x"), KvRet::Append)];
        for key in 0..12u64 {
            for value in 0..3u64 {
                let t = 20 + key * 20;
                let id = ops.len() as u64;
                let op = append(&format!("k{key}"), &value.to_string());
                ops.push(ok(id, t, t + 10, op, KvRet::Append));
            }
        }
        let id = ops.len() as u64;
        let read = KvOp::Get { key: "a".into() };
        let seen = KvRet::Get { value: seen.into() };
        ops.push(ok(id, 1_000, 1_010, read, seen));
        kv_history(ops)
    };
    let whole = CheckOptions { partition: false };
    // Without backjumping the search would run out of this long before refuting.
    let budget = Budget {
        timeout: None,
        memo_entries_max: Some(100_000),
    };
    let (result, stats) = check_with_stats(
        &history_with_last_read("x"),
        KvStore::default(),
        &budget,
        &whole,
    );
    assert_eq!(result, CheckResult::Linearizable);
    assert!(stats.steps < 200, "{stats:?}");
    let (result, stats) = check_with_stats(
        &history_with_last_read("y"),
        KvStore::default(),
        &budget,
        &whole,
    );
    let CheckResult::NotLinearizable(violation) = result else {
        panic!("expected a violation, got {result:?}");
    };
    assert_eq!(violation.partition.as_deref(), Some("a"));
    assert_eq!(violation.stuck, vec![37]);
    // Refuting the key alone, plus one pass over the others, plus the report's re-check of "a".
    assert!(stats.steps < 500, "{stats:?}");
}

/// One key, seven concurrent appends, an unknown-outcome append, and a read that fixes an
/// order of them (or cannot be explained at all): enough steps to pause in many places.
fn appends_then_read(seen: &str) -> History<KvOp, KvRet> {
    let append = |value: &str| KvOp::Append {
        key: "k".into(),
        value: value.into(),
    };
    let mut ops: Vec<_> = (0..7u64)
        .map(|i| ok(i, 0, 10, append(&i.to_string()), KvRet::Append))
        .collect();
    ops.push(unknown(7, 0, append("u")));
    let read = KvOp::Get { key: "k".into() };
    ops.push(ok(8, 20, 30, read, KvRet::Get { value: seen.into() }));
    kv_history(ops)
}

#[test]
fn a_search_run_in_slices_does_the_work_of_one_run() {
    for seen in ["6u035142", "60351428"] {
        let history = appends_then_read(seen);
        let ops: Vec<_> = history.ops.iter().collect();
        let limits = Limits::start(&Budget::default());
        let mut whole_stats = Stats::default();
        let whole = wgl::PartCheck::new(ops.clone(), KvStore::default()).advance(
            &limits,
            None,
            &mut whole_stats,
        );
        assert!(whole_stats.steps > 100, "{seen}: {whole_stats:?}");
        // Paused before every step.
        let mut sliced_stats = Stats::default();
        let mut sliced = wgl::PartCheck::new(ops.clone(), KvStore::default());
        let mut cap = 0;
        let sliced_result = loop {
            cap += 1;
            if let Some(result) = sliced.advance(&limits, Some(cap), &mut sliced_stats) {
                break result;
            }
            assert!(sliced.memo_len() > 0, "a paused search keeps its memo");
        };
        assert_eq!(Some(&sliced_result), whole.as_ref(), "{seen}");
        assert_eq!(sliced_stats.steps, whole_stats.steps, "{seen}");
        // Dropping a paused search costs steps, never the verdict.
        let mut restarted_stats = Stats::default();
        let mut restarted = wgl::PartCheck::new(ops, KvStore::default());
        assert_eq!(
            restarted.advance(&limits, Some(1), &mut restarted_stats),
            None
        );
        restarted.discard_progress();
        assert_eq!(restarted.memo_len(), 0);
        let restarted_result = restarted.advance(&limits, None, &mut restarted_stats);
        assert_eq!(restarted_result, whole, "{seen}");
        // The first round starts over: its one step before the pause is done twice.
        assert_eq!(restarted_stats.steps, whole_stats.steps + 1, "{seen}");
    }
    assert!(matches!(
        check(
            &appends_then_read("6u035142"),
            KvStore::default(),
            &Budget::default(),
            &CheckOptions::default()
        ),
        CheckResult::Linearizable
    ));
}

/// A get waits while eight concurrent appends are placed; once the value is no longer a prefix
/// of what it returned, only appends can come before it, so no order of the rest is tried.
/// A put that may come first keeps the search going: it could empty the value again.
#[test]
fn a_get_no_append_can_answer_ends_the_search_early() {
    let appends = |ops: &mut Vec<Operation<KvOp, KvRet>>| {
        for i in 0..8u64 {
            let input = KvOp::Append {
                key: "k".into(),
                value: i.to_string(),
            };
            ops.push(ok(i, 0, 100, input, KvRet::Append));
        }
    };
    let read = |id| {
        let input = KvOp::Get { key: "k".into() };
        let output = KvRet::Get { value: "9".into() };
        ok(id, 0, 100, input, output)
    };
    let run = |ops| {
        let history = History {
            ops,
            ..History::default()
        };
        let split = CheckOptions { partition: true };
        check_with_stats(&history, KvStore::default(), &Budget::default(), &split)
    };

    let mut ops = Vec::new();
    appends(&mut ops);
    ops.push(read(8));
    let (result, stats) = run(ops);
    assert!(
        matches!(result, CheckResult::NotLinearizable(_)),
        "{result:?}"
    );
    // Without the prune: every order of the appends, 8! = 40,320 nodes.
    assert!(stats.steps < 100, "{stats:?}");

    let mut ops = Vec::new();
    appends(&mut ops);
    ops.push(read(8));
    let put = KvOp::Put {
        key: "k".into(),
        value: "9".into(),
    };
    ops.push(ok(9, 0, 100, put, KvRet::Put));
    let (result, _) = run(ops);
    assert_eq!(result, CheckResult::Linearizable);
}

fn cas(from: i64, to: i64) -> RegisterOp {
    RegisterOp::Cas { from, to }
}
fn swapped(swapped: bool) -> RegisterRet {
    RegisterRet::Cas { swapped }
}

#[test]
fn a_stale_read_is_refuted_before_the_search_and_blamed_with_its_overwriter() {
    // w(1), then w(2) completes before a read of 1 is called: no write of 1 can follow w(2).
    // Forty concurrent unknown writes of unique values make an exhaustive search costly.
    let mut ops = vec![
        ok(0, 0, 10, write(1), RegisterRet::Write),
        ok(1, 20, 30, write(2), RegisterRet::Write),
        ok(2, 40, 50, RegisterOp::Read, read(Some(1))),
    ];
    ops.extend((0..40).map(|i| unknown(3 + i, 35, write(100 + i as i64))));
    let history = History {
        ops,
        ..History::default()
    };
    let (result, stats) = check_with_stats(
        &history,
        CasRegister::default(),
        &Budget::default(),
        &CheckOptions::default(),
    );
    let CheckResult::NotLinearizable(violation) = result else {
        panic!("expected a violation, got {result:?}")
    };
    assert_eq!(
        violation.stuck[..2],
        [2, 1],
        "the read, then its overwriter"
    );
    assert!(
        violation.longest_prefix.starts_with(&[0, 1]),
        "{:?}",
        violation.longest_prefix
    );
    assert!(stats.steps <= super::wgl::REPORT_PREFIX_STEPS, "{stats:?}");
}

#[test]
fn an_observed_unknown_cas_is_pinned_before_its_observer() {
    // The unknown cas 1 -> 2 is the only writer of 2; the read of 2 proves it swapped, while
    // the register held 1 (before w(3)).
    let ops = vec![
        ok(0, 0, 10, write(1), RegisterRet::Write),
        unknown(1, 15, cas(1, 2)),
        ok(2, 20, 30, write(3), RegisterRet::Write),
        ok(3, 25, 40, RegisterOp::Read, read(Some(2))),
    ];
    assert_eq!(register(ops.clone()), CheckResult::Linearizable);
    // Called only after w(3) returned, the cas can no longer see 1: no order shows 2.
    let mut late = ops;
    late[1] = unknown(1, 31, cas(1, 2));
    late[3] = ok(3, 32, 40, RegisterOp::Read, read(Some(2)));
    assert!(matches!(register(late), CheckResult::NotLinearizable(_)));
}

#[test]
fn a_shadow_write_is_still_tried_where_a_failed_cas_needs_it() {
    // Nothing reads 5, but the cas 1 -> 9 that failed in [30, 40], while only w(1) had taken
    // effect among the answered ops, needs some other value then: the unknown w(5).
    let ops = vec![
        ok(0, 0, 10, write(1), RegisterRet::Write),
        unknown(1, 20, write(5)),
        ok(2, 30, 40, cas(1, 9), swapped(false)),
        ok(3, 50, 60, write(7), RegisterRet::Write),
        ok(4, 70, 80, RegisterOp::Read, read(Some(7))),
    ];
    assert_eq!(register(ops.clone()), CheckResult::Linearizable);
    let without: Vec<_> = ops.into_iter().filter(|op| op.id != 1).collect();
    assert!(matches!(register(without), CheckResult::NotLinearizable(_)));
}

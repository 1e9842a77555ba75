//! What a scenario asks of a target (sim/src/fit.rs): kinds the target lacks are skipped and
//! listed, a scenario that needs a missing feature or bug is refused naming the field.

use kvsim_sim::fit::{fit, SkippedOpKind};
use kvsim_sim::scenario::{OpKind, Scenario};
use kvsim_sim::target::{Capabilities, ClusterEnv, Feature, Member, Target};
use std::sync::Arc;

/// A store with no leases and no compaction (never simulated: only its declarations matter).
struct Partial;

impl Target for Partial {
    fn name(&self) -> &'static str {
        "partial"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            leases: false,
            compaction: false,
            ..Capabilities::ETCD
        }
    }
    fn planted_bugs(&self) -> Vec<kvsim_sim::bugs::Bug> {
        vec![kvsim_sim::bugs::Bug::StaleRead]
    }
    fn members(&self, _: &ClusterEnv) -> Vec<Arc<dyn Member>> {
        unreachable!("fit never builds a cluster")
    }
}

#[test]
fn kinds_the_target_lacks_are_skipped_and_listed() {
    let scenario = Scenario::default();
    let (fitted, skipped) = fit(&scenario, &Partial).unwrap();
    let kinds: Vec<&str> = skipped.iter().map(|s| s.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "lease_grant",
            "lease_put",
            "lease_keepalive",
            "lease_revoke",
            "lease_ttl",
            "compact"
        ]
    );
    assert_eq!(
        skipped[0],
        SkippedOpKind {
            kind: OpKind::LeaseGrant,
            missing: "leases"
        }
    );
    let m = &fitted.workload.mix;
    assert_eq!((m.lease_grant, m.lease_put, m.compact), (0, 0, 0));
    assert_eq!(
        m.put, scenario.workload.mix.put,
        "what the target has is kept"
    );
    assert_eq!(
        Partial.capabilities().missing(),
        vec![Feature::Leases, Feature::Compaction]
    );
}

#[test]
fn a_scenario_that_needs_a_missing_feature_or_bug_is_refused_naming_the_field() {
    let mut recipes = Scenario::default();
    recipes.workload.lockers = 2;
    let refused = fit(&recipes, &Partial).unwrap_err();
    assert_eq!(refused.field, "workload.lockers");
    assert!(
        refused.expected.contains("partial has no leases"),
        "{}",
        refused.expected
    );

    let mut bug = Scenario::default();
    bug.bugs.insert("lost_fsync".into(), true);
    let refused = fit(&bug, &Partial).unwrap_err();
    assert_eq!(refused.field, "bugs.lost_fsync");
    assert!(
        refused.expected.contains("stale_read"),
        "{}",
        refused.expected
    );

    let mut only_leases = Scenario::default();
    let m = &mut only_leases.workload.mix;
    *m = kvsim_sim::scenario::OpMix {
        put: 0,
        get: 0,
        get_prefix: 0,
        get_historic: 0,
        get_serializable: 0,
        delete: 0,
        txn_create: 0,
        txn_cas: 0,
        txn_multi: 0,
        compact: 0,
        ..m.clone()
    };
    assert_eq!(
        fit(&only_leases, &Partial).unwrap_err().field,
        "workload.mix"
    );
}

#[test]
fn an_unknown_target_in_a_scenario_file_is_an_error_with_its_line() {
    let error = Scenario::parse("s.toml", "description = \"x\"\ntarget = \"tikv\"\n").unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("s.toml:2: target = \"tikv\""), "{text}");
    assert!(text.contains("raft-rs"), "{text}");
}

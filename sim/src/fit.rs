//! What a scenario asks of a target, and what the run does when the target lacks it.
//!
//! Two rules, so no run tests less than it says without saying so:
//! - an operation kind whose feature the target lacks is **skipped**: its weight in the mix becomes 0
//!   and the run's summary lists it (`skipped_op_kinds`) with the missing feature;
//! - a scenario that cannot mean anything without a missing feature is **refused** (exit 2, naming
//!   the field): watchers without watch, lock or election recipes without leases, a planted bug the
//!   target does not have, or a mix left with no operation kind at all.

use crate::scenario::{Invalid, OpKind, Scenario};
use crate::target::{Feature, Target};

/// The feature an operation kind of [`crate::scenario::OpMix`] needs, if any beyond put / range / delete.
pub fn feature_of_op_kind(kind: OpKind) -> Option<Feature> {
    match kind {
        OpKind::LeaseGrant
        | OpKind::LeasePut
        | OpKind::LeaseKeepalive
        | OpKind::LeaseRevoke
        | OpKind::LeaseTtl => Some(Feature::Leases),
        OpKind::TxnCreate | OpKind::TxnCas | OpKind::TxnMulti => Some(Feature::Txn),
        OpKind::GetSerializable => Some(Feature::SerializableReads),
        OpKind::Compact => Some(Feature::Compaction),
        OpKind::Put | OpKind::Get | OpKind::GetPrefix | OpKind::GetHistoric | OpKind::Delete => {
            None
        }
    }
}

/// An operation kind the run will not draw, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SkippedOpKind {
    pub kind: OpKind,
    pub missing: &'static str,
}

/// `scenario` as it runs on `target`: the mix without the kinds the target lacks.
pub fn fit(
    scenario: &Scenario,
    target: &dyn Target,
) -> Result<(Scenario, Vec<SkippedOpKind>), Invalid> {
    let capabilities = target.capabilities();
    let lacks = |feature: Feature| !feature.present_in(&capabilities);
    let refuse = |field: &str, value: String, feature: Feature| Invalid {
        field: field.to_string(),
        value,
        expected: format!(
            "expected 0, because target {} has no {feature} (it lacks: {})",
            target.name(),
            names(&capabilities.missing())
        ),
    };
    let w = &scenario.workload;
    if lacks(Feature::Watch) && w.watchers > 0 {
        return Err(refuse(
            "workload.watchers",
            w.watchers.to_string(),
            Feature::Watch,
        ));
    }
    if lacks(Feature::Leases) && w.lockers > 0 {
        return Err(refuse(
            "workload.lockers",
            w.lockers.to_string(),
            Feature::Leases,
        ));
    }
    if lacks(Feature::Leases) && w.campaigners > 0 {
        return Err(refuse(
            "workload.campaigners",
            w.campaigners.to_string(),
            Feature::Leases,
        ));
    }
    let planted = target.planted_bugs();
    for (name, on) in &scenario.bugs {
        // An unknown name is validate's error, not this one.
        let known = crate::bugs::Bug::parse(name).ok();
        if *on && known.is_some_and(|bug| !planted.contains(&bug)) {
            let planted: Vec<&str> = planted.iter().map(|bug| bug.as_str()).collect();
            return Err(Invalid {
                field: format!("bugs.{name}"),
                value: "true".into(),
                expected: format!(
                    "expected a bug target {} has planted: {}",
                    target.name(),
                    planted.join(", ")
                ),
            });
        }
    }
    let mut fitted = scenario.clone();
    let mut skipped = Vec::new();
    for (kind, weight) in scenario.workload.mix.weights() {
        let Some(feature) = feature_of_op_kind(kind) else {
            continue;
        };
        if weight > 0 && lacks(feature) {
            *fitted.workload.mix.weight_mut(kind) = 0;
            skipped.push(SkippedOpKind {
                kind,
                missing: feature.name(),
            });
        }
    }
    if fitted.workload.mix.weights().iter().all(|(_, w)| *w == 0) {
        return Err(Invalid {
            field: "workload.mix".into(),
            value: format!("{:?}", scenario.workload.mix),
            expected: format!(
                "expected at least one operation kind target {} can serve (it lacks: {})",
                target.name(),
                names(&capabilities.missing())
            ),
        });
    }
    Ok((fitted, skipped))
}

fn names(features: &[Feature]) -> String {
    if features.is_empty() {
        return "nothing".into();
    }
    features
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

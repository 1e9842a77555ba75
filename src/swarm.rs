//! Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): each seed draws its own scenario,
//! switching whole operation and fault kinds off at random, so that rare interleavings that a
//! uniform mix drowns out get a chance. The draw happens outside the simulation from a seeded
//! RNG, and the drawn scenario is written beside every failing seed, so a replay needs nothing else.

use kvsim_sim::client::Balancer;
use kvsim_sim::scenario::Scenario;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Salt so the swarm draw is not correlated with the simulation's own use of the same seed.
const SWARM_SALT: u64 = 0x5377_6172_6d21_0001;

/// The scenario seed `seed` runs under `--swarm`: `base` with its knobs redrawn.
pub fn draw(base: &Scenario, seed: u64) -> Scenario {
    let mut rng = StdRng::seed_from_u64(seed ^ SWARM_SALT);
    let mut scenario = base.clone();
    scenario.description = format!("swarm draw for seed {seed}");

    let cluster = &mut scenario.cluster;
    cluster.nodes = [1, 3, 3, 3, 5, 5, 7][rng.gen_range(0..7)];
    cluster.snapshot_entries = [20, 100, 500][rng.gen_range(0..3)];
    cluster.fsync_latency_ms = rng.gen_range(0..=5);
    cluster.net_latency_min_ms = rng.gen_range(1..=3);
    cluster.net_latency_max_ms = cluster.net_latency_min_ms + rng.gen_range(0..=20);

    let workload = &mut scenario.workload;
    workload.clients = rng.gen_range(2..=16);
    workload.keys = [2, 4, 8, 16, 64][rng.gen_range(0..5)];
    workload.duration_ms = rng.gen_range(5_000..=30_000);
    workload.watchers = rng.gen_range(0..=4);
    // etcd grants at least 2 s (its minimum TTL); asking for less would test that clamp, not expiry.
    workload.lease_ttl_s = rng.gen_range(2..=5);
    workload.watch_reconnect_probability = rng.gen_range(0.0..0.3);
    // Each operation kind is on with probability 3/4 (swarm), with a fresh weight; at least puts
    // and gets stay on so every run writes and reads.
    let mix = &mut workload.mix;
    for weight in [
        &mut mix.get_prefix,
        &mut mix.get_historic,
        &mut mix.get_serializable,
        &mut mix.delete,
        &mut mix.txn_create,
        &mut mix.txn_cas,
        &mut mix.txn_multi,
        &mut mix.lease_grant,
        &mut mix.lease_put,
        &mut mix.lease_keepalive,
        &mut mix.lease_revoke,
        &mut mix.lease_ttl,
        &mut mix.compact,
    ] {
        *weight = if rng.gen_bool(0.75) {
            rng.gen_range(1..=10)
        } else {
            0
        };
    }
    mix.put = rng.gen_range(5..=30);
    mix.get = rng.gen_range(5..=30);

    let faults = &mut scenario.faults;
    faults.interval_ms = [0, 1_000, 2_000, 4_000, 8_000][rng.gen_range(0..5)];
    faults.torn_probability = rng.gen_range(0.0..=1.0);
    faults.packet_loss_rate = rng.gen_range(0.0..0.5);
    let weights = &mut faults.weights;
    for weight in [
        &mut weights.partition_random,
        &mut weights.isolate_leader,
        &mut weights.isolate_one,
        &mut weights.bridge,
        &mut weights.one_way,
        &mut weights.crash_one,
        &mut weights.crash_leader,
        &mut weights.crash_majority,
        &mut weights.pause,
        &mut weights.packet_loss,
        &mut weights.latency,
        &mut weights.clock_skew,
        // The aimed kinds (a leader paused or with a stalled disk, a follower paused).
        &mut weights.pause_leader,
        &mut weights.pause_follower,
        &mut weights.disk_stall_leader,
        &mut weights.crash_all,
    ] {
        *weight = if rng.gen_bool(0.6) {
            rng.gen_range(1..=5)
        } else {
            0
        };
    }
    if weights.weights().iter().all(|(_, weight)| *weight == 0) {
        weights.isolate_leader = 1;
    }
    // Drawn last, so the draws above stay what they were before it existed.
    scenario.workload.balancer = if rng.gen_bool(0.5) {
        Balancer::RoundRobin
    } else {
        Balancer::Leader
    };
    // Progress requests (etcd's RequestProgress) from none to often; after the balancer, for the
    // same reason.
    scenario.workload.watch_progress_request_probability = rng.gen_range(0.0..0.5);
    // Application retries of writes whose outcome is unknown: off in half the seeds.
    scenario.workload.retry_unknown_probability = if rng.gen_bool(0.5) {
        rng.gen_range(0.0..1.0)
    } else {
        0.0
    };
    scenario
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_valid_deterministic_and_varied() {
        let base = Scenario::default();
        let mut sizes = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let drawn = draw(&base, seed);
            drawn
                .validate()
                .unwrap_or_else(|invalid| panic!("seed {seed}: {invalid:?}"));
            assert_eq!(
                drawn,
                draw(&base, seed),
                "seed {seed} draws differently twice"
            );
            sizes.insert(drawn.cluster.nodes);
        }
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![1, 3, 5, 7]);
    }
}

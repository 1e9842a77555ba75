//! A node's revision only grows while it runs, so the header revisions it puts on watch responses
//! never go backwards in real time — across all watchers — unless it crashed or restarted in
//! between (etcd #15271 class: "watch going back in time").
//!
//! A response's header was computed between the poll's send (no earlier than the watcher's
//! previous record) and its receipt (the response record). Response A certainly precedes response
//! B on the node when A was received no later than B's poll was sent: a watcher sends its next poll
//! at the instant it records the previous answer, and a message takes at least 1 ms in madsim.
//! A response pushed on a stream (`"stream": true`, every watcher kvsim records now) was computed at any time after the
//! stream opened, so its "send" is the watcher's last start / resume record: responses of
//! different streams interleave freely in transit, and only a stream opened after A's receipt is
//! certainly served after A.

use std::collections::BTreeMap;

use kvsim_model::mvcc::Revision;

use super::records::{Action, WatchRecord};
use crate::history::FaultEvent;
use crate::property::{Property, PropertyViolation};

/// Fault kinds after which a node may legitimately serve from an older state.
const RESTART_KINDS: &[&str] = &["crash", "restart", "heal_all"];

#[derive(Clone, Copy, Debug)]
struct Observation {
    send_ns: u64,
    receive_ns: u64,
    header: Revision,
    watcher: u64,
}

pub fn check_header_regress(
    records: &[WatchRecord],
    faults: &[FaultEvent],
    out: &mut Vec<PropertyViolation>,
) {
    let mut previous_ns: BTreeMap<u64, u64> = BTreeMap::new();
    let mut opened_ns: BTreeMap<u64, u64> = BTreeMap::new();
    let mut by_node: BTreeMap<&str, Vec<Observation>> = BTreeMap::new();
    for record in records {
        let previous = previous_ns
            .insert(record.watcher, record.t_ns)
            .unwrap_or(record.t_ns);
        if let Action::Open { .. } = record.action {
            opened_ns.insert(record.watcher, record.t_ns);
        }
        if let Action::Response {
            node,
            header_revision,
            streamed,
            ..
        } = &record.action
        {
            let send_ns = if *streamed {
                opened_ns.get(&record.watcher).copied().unwrap_or(0)
            } else {
                previous
            };
            by_node.entry(node.as_str()).or_default().push(Observation {
                send_ns: send_ns.min(record.t_ns),
                receive_ns: record.t_ns,
                header: *header_revision,
                watcher: record.watcher,
            });
        }
    }
    for (node, observations) in by_node {
        let mut restarts: Vec<u64> = faults
            .iter()
            .filter(|fault| {
                RESTART_KINDS.contains(&fault.kind.as_str())
                    && fault.nodes.iter().any(|n| n == node)
            })
            .map(|fault| fault.t_ns)
            .collect();
        restarts.sort_unstable();
        // Epoch = restarts strictly before the send; an observation spanning a restart is dropped.
        let mut epochs: BTreeMap<usize, Vec<Observation>> = BTreeMap::new();
        for observation in observations {
            let before_send = restarts.partition_point(|&t| t < observation.send_ns);
            let up_to_receive = restarts.partition_point(|&t| t <= observation.receive_ns);
            if before_send == up_to_receive {
                epochs.entry(before_send).or_default().push(observation);
            }
        }
        for observations in epochs.values() {
            check_epoch(node, observations, out);
        }
    }
}

fn check_epoch(node: &str, observations: &[Observation], out: &mut Vec<PropertyViolation>) {
    let mut by_send: Vec<&Observation> = observations.iter().collect();
    by_send.sort_by_key(|o| (o.send_ns, o.receive_ns));
    let mut by_receive: Vec<&Observation> = observations.iter().collect();
    by_receive.sort_by_key(|o| (o.receive_ns, o.send_ns));
    let mut earlier = by_receive.iter().peekable();
    let mut highest: Option<&Observation> = None;
    for later in by_send {
        while let Some(candidate) = earlier.next_if(|o| o.receive_ns <= later.send_ns) {
            if highest.is_none_or(|h| candidate.header > h.header) {
                highest = Some(candidate);
            }
        }
        if let Some(high) = highest {
            if later.header < high.header {
                let message = format!(
                    "{node} answered with header revision {} after it had answered watcher {} with header revision {} (received at t_ns {}), with no crash or restart in between",
                    later.header, high.watcher, high.header, high.receive_ns
                );
                out.push(
                    PropertyViolation::new(Property::WatchHeaderRegress, message)
                        .with_watcher(later.watcher)
                        .with_time(later.receive_ns),
                );
            }
        }
    }
}

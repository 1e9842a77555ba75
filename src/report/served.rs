//! Who answered an operation, as the report says it: "n2 · leader · term 1", and, for a leader
//! that had been replaced, "deposed: n1 leads term 2 since 2727.281 ms". A record without a role
//! (live mode: etcd's response header has `member_id` and `raft_term`, no role) reads
//! "n2 · term 1", and "behind: ..." when a higher term's leader was elected before the answer.
//!
//! From the history's `served_by` and `leader` records (`kvsim_checker::history::ServedBy`,
//! `LeaderElected`). A leader is *deposed* at the moment it answers when some member was elected
//! leader of a higher term before then: the answer came from a member that no longer led the
//! cluster, the situation in which a read served without confirming leadership is stale
//! (Raft paper §8: a leader must check it has not been deposed before answering a read-only
//! request).

use std::collections::BTreeMap;

use kvsim_checker::history::{LeaderElected, MemberRole, OpId, ServedBy};

/// One text per answered operation the history names a server for.
pub fn served_texts(
    served: &BTreeMap<OpId, ServedBy>,
    leaders: &[LeaderElected],
) -> BTreeMap<OpId, String> {
    served
        .iter()
        .map(|(id, served)| (*id, served_text(served, leaders)))
        .collect()
}

/// `leaders` in time order.
pub fn served_text(served: &ServedBy, leaders: &[LeaderElected]) -> String {
    let mut text = match served.role {
        Some(role) => format!(
            "{} · {} · term {}",
            served.node,
            role.name(),
            served.raft_term
        ),
        None => format!("{} · term {}", served.node, served.raft_term),
    };
    // A member that says it leads is deposed; one that names no role (etcd's header) is only
    // known to be behind.
    let word = match served.role {
        Some(MemberRole::Leader) => "deposed",
        None => "behind",
        Some(_) => return text,
    };
    if let Some(successor) = latest_leader_by(leaders, served.t_ns) {
        if successor.term > served.raft_term {
            text.push_str(&format!(
                " · {word}: {} leads term {} since {:.3} ms",
                successor.node,
                successor.term,
                successor.t_ns as f64 / 1e6
            ));
        }
    }
    text
}

/// The leader of the highest term elected at or before `t_ns`.
fn latest_leader_by(leaders: &[LeaderElected], t_ns: u64) -> Option<&LeaderElected> {
    leaders
        .iter()
        .filter(|leader| leader.t_ns <= t_ns)
        .max_by_key(|leader| leader.term)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(t_ns: u64, node: &str, term: u64) -> LeaderElected {
        LeaderElected {
            t_ns,
            node: node.to_string(),
            term,
        }
    }

    fn served(t_ns: u64, node: &str, raft_term: u64, role: Option<MemberRole>) -> ServedBy {
        ServedBy {
            id: 7,
            t_ns,
            node: node.to_string(),
            raft_term,
            role,
        }
    }

    #[test]
    fn a_leader_answering_after_a_successor_was_elected_is_called_deposed_and_a_roleless_member_behind(
    ) {
        let leaders = [leader(0, "n2", 1), leader(2_500_000_000, "n1", 2)];
        // (answered at, member, term, role, text): the old leader before and after its
        // successor's election; the successor itself and a follower's serializable read are not
        // deposed.
        let cases = [
            (
                1_000_000_000,
                "n2",
                1,
                Some(MemberRole::Leader),
                "n2 · leader · term 1",
            ),
            (
                2_600_000_000,
                "n2",
                1,
                Some(MemberRole::Leader),
                "n2 · leader · term 1 · deposed: n1 leads term 2 since 2500.000 ms",
            ),
            (
                2_600_000_000,
                "n1",
                2,
                Some(MemberRole::Leader),
                "n1 · leader · term 2",
            ),
            (
                2_600_000_000,
                "n3",
                2,
                Some(MemberRole::Follower),
                "n3 · follower · term 2",
            ),
            // Live mode: etcd names no role; a member still at the old term is behind.
            (
                2_600_000_000,
                "n2",
                1,
                None,
                "n2 · term 1 · behind: n1 leads term 2 since 2500.000 ms",
            ),
            (2_600_000_000, "n1", 2, None, "n1 · term 2"),
        ];
        for (t_ns, node, term, role, text) in cases {
            assert_eq!(served_text(&served(t_ns, node, term, role), &leaders), text);
        }
    }
}

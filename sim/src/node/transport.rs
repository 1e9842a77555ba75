//! The members' Raft network: datagrams between members, which may be lost, delayed or reordered (Raft
//! tolerates all three), cut by partitions.
//!
//! Why not madsim's `Endpoint`: a datagram there costs a fixed ~8k instructions (two random "syscall"
//! sleeps, formatting the address into a `String` for the IPVS lookup, hash-map lookups, a sender and a
//! receiver task hop), and Raft traffic is most of a run's datagrams, so it dominated simulation speed.
//! This network keeps madsim's model of a datagram — the link is checked at send time (a cut link or a
//! loss draw drops it), then it arrives after a latency drawn uniformly from the configured range, all
//! from madsim's seeded RNG — and delivers straight into the destination's Raft loop input after a
//! madsim timer. Client traffic still uses madsim's network.
//!
//! One datagram carries every message a Raft loop round produced for one peer (usually one), like the
//! writes etcd's rafthttp stream accumulates; a batch is lost or delayed as a whole.
//!
//! Incarnations: a node registers its input queue at every boot. A datagram is bound to the incarnation
//! registered when it was sent, so one in flight to a node that crashed (or restarted since) is lost, as
//! madsim's socket delivery is. Delivery runs on a node of its own that is never killed or paused, so a
//! datagram already sent still arrives if its sender crashes; a paused destination queues it.
//!
//! Each datagram is a small task on the courier node that sleeps for the latency. (One courier task
//! with a queue ordered by arrival time would cost about as much, and madsim's sleeps last at least
//! 1 ms, which would delay datagrams due less than 1 ms after the one before; a latency is at least
//! 1 ms here for the same reason — madsim's default range starts there.)

use super::lock;
use super::raft_loop::Input;
use madsim::rand::Rng;
use madsim::runtime::NodeHandle;
use raft::eraftpb::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// madsim's default one-way latency (`madsim::net::Config::default`), so the two networks agree until a
/// scenario sets its own.
const DEFAULT_LATENCY: Range<Duration> = Duration::from_millis(1)..Duration::from_millis(10);

/// Counters for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerNetStats {
    pub datagrams_sent: u64,
    /// Dropped at send time by a cut link or a loss draw.
    pub datagrams_dropped: u64,
    pub messages_sent: u64,
}

struct Inner {
    /// Each member's current incarnation's Raft loop input.
    inboxes: BTreeMap<u64, UnboundedSender<Input>>,
    /// Directed links currently cut (from, to).
    cut: BTreeSet<(u64, u64)>,
    loss_rate: f64,
    latency: Range<Duration>,
    stats: PeerNetStats,
}

/// A handle to the cluster's peer network; clones share it. It outlives node incarnations.
#[derive(Clone)]
pub struct PeerNet {
    inner: Arc<Mutex<Inner>>,
    /// The madsim node that runs deliveries.
    courier: NodeHandle,
}

impl PeerNet {
    /// A network with no cut links, no loss and madsim's default latency. Deliveries run on
    /// `courier`, which must never be killed or paused.
    pub fn new(courier: &NodeHandle) -> PeerNet {
        PeerNet {
            inner: Arc::new(Mutex::new(Inner {
                inboxes: BTreeMap::new(),
                cut: BTreeSet::new(),
                loss_rate: 0.0,
                latency: DEFAULT_LATENCY,
                stats: PeerNetStats::default(),
            })),
            courier: courier.clone(),
        }
    }

    /// A booting incarnation of member `id` receives from now on through `inbox`.
    pub(crate) fn register(&self, id: u64, inbox: UnboundedSender<Input>) {
        lock(&self.inner).inboxes.insert(id, inbox);
    }

    /// Drops every datagram from `from` to `to` until `heal`. Returns false if the link was already cut.
    pub fn cut(&self, from: u64, to: u64) -> bool {
        from != to && lock(&self.inner).cut.insert((from, to))
    }

    /// Restores every link.
    pub fn heal(&self) {
        lock(&self.inner).cut.clear();
    }

    pub fn cut_links(&self) -> BTreeSet<(u64, u64)> {
        lock(&self.inner).cut.clone()
    }

    /// Loss rate per datagram; the caller clamps it to [0, 1].
    pub fn set_loss_rate(&self, rate: f64) {
        assert!(
            (0.0..=1.0).contains(&rate),
            "loss rate {rate} outside [0, 1]"
        );
        lock(&self.inner).loss_rate = rate;
    }

    /// One-way latency drawn from `latency` for every datagram.
    pub fn set_latency(&self, latency: Range<Duration>) {
        assert!(
            latency.start < latency.end,
            "empty latency range {latency:?}"
        );
        lock(&self.inner).latency = latency;
    }

    pub fn stats(&self) -> PeerNetStats {
        lock(&self.inner).stats
    }

    /// Sends `messages` (all from `from` to `to`, in order) as one datagram.
    pub(crate) fn send(&self, from: u64, to: u64, messages: Vec<Message>) {
        assert!(!messages.is_empty());
        assert!(messages.iter().all(|m| m.from == from && m.to == to));
        let (inbox, latency) = {
            let mut inner = lock(&self.inner);
            inner.stats.datagrams_sent += 1;
            inner.stats.messages_sent += messages.len() as u64;
            // The same draws, in the same order, as madsim's `Network::test_link`.
            let dropped = inner.cut.contains(&(from, to))
                || madsim::rand::thread_rng().gen_bool(inner.loss_rate);
            if dropped {
                inner.stats.datagrams_dropped += 1;
                return;
            }
            let latency = madsim::rand::thread_rng().gen_range(inner.latency.clone());
            let Some(inbox) = inner.inboxes.get(&to).cloned() else {
                // The destination never booted: nobody listens on the port.
                return;
            };
            (inbox, latency)
        };
        self.courier.spawn(async move {
            madsim::time::sleep(latency).await;
            // A closed inbox is a crashed incarnation: the datagram is lost, as on a real network.
            let _ = inbox.send(Input::Peer(messages));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use madsim::runtime::{Handle, Runtime};
    use madsim::time::Instant;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    fn message(index: u64) -> Message {
        Message {
            from: 1,
            to: 2,
            index,
            ..Message::default()
        }
    }

    fn indexes(inbox: &mut UnboundedReceiver<Input>) -> Vec<u64> {
        let mut indexes = Vec::new();
        while let Ok(input) = inbox.try_recv() {
            let Input::Peer(batch) = input else {
                panic!("only peer datagrams go through the network");
            };
            indexes.extend(batch.iter().map(|m| m.index));
        }
        indexes
    }

    #[test]
    fn datagrams_arrive_within_the_latency_unless_cut_lost_or_their_incarnation_is_gone() {
        let runtime = Runtime::with_seed_and_config(7, madsim::Config::default());
        runtime.block_on(async {
            let net = PeerNet::new(&Handle::current().create_node().build());
            let (min, max) = (Duration::from_millis(5), Duration::from_millis(20));
            net.set_latency(min..max);
            let (inbox, mut received) = unbounded_channel();
            net.register(2, inbox);

            let start = Instant::now();
            for index in 0..50 {
                net.send(1, 2, vec![message(index)]);
            }
            madsim::time::sleep(min - Duration::from_micros(1)).await;
            assert!(indexes(&mut received).is_empty(), "nothing arrives early");
            madsim::time::sleep_until(start + max).await;
            let arrived = indexes(&mut received);
            // Independent latencies reorder datagrams, as on a real network; none is lost or duplicated.
            let mut sorted = arrived.clone();
            sorted.sort_unstable();
            assert_ne!(arrived, sorted);
            assert_eq!(sorted, (0..50).collect::<Vec<_>>());

            // A batch travels as one datagram, in order.
            net.send(1, 2, vec![message(60), message(61), message(62)]);
            madsim::time::sleep(max).await;
            assert_eq!(indexes(&mut received), vec![60, 61, 62]);

            // A cut link drops at send time; healing restores it.
            assert!(net.cut(1, 2));
            assert!(!net.cut(1, 2), "already cut");
            assert!(!net.cut(2, 2), "a node never cuts itself off");
            net.send(1, 2, vec![message(70)]);
            net.heal();
            madsim::time::sleep(max).await;
            assert!(indexes(&mut received).is_empty());

            net.set_loss_rate(1.0);
            net.send(1, 2, vec![message(80)]);
            net.set_loss_rate(0.0);
            madsim::time::sleep(max).await;
            assert!(indexes(&mut received).is_empty());

            // A datagram is bound to the incarnation it was sent to: a crash loses it, and the next
            // incarnation only gets what is sent after it registered.
            net.send(1, 2, vec![message(90)]);
            drop(received);
            let (inbox, mut received) = unbounded_channel();
            net.register(2, inbox);
            net.send(1, 2, vec![message(91)]);
            madsim::time::sleep(max).await;
            assert_eq!(indexes(&mut received), vec![91]);

            let stats = net.stats();
            assert_eq!(
                (
                    stats.datagrams_sent,
                    stats.datagrams_dropped,
                    stats.messages_sent
                ),
                (55, 2, 57)
            );
        });
    }
}

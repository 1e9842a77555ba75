//! The members' peer network: datagrams between members, which may be lost, delayed or reordered (Raft
//! tolerates all three), cut by partitions.
//!
//! Why not madsim's `Endpoint`: a datagram there costs a fixed ~8k instructions (two random "syscall"
//! sleeps, formatting the address into a `String` for the IPVS lookup, hash-map lookups, a sender and a
//! receiver task hop), and Raft traffic is most of a run's datagrams, so it dominated simulation speed.
//! This network keeps madsim's model of a datagram — the link is checked at send time (a cut link or a
//! loss draw drops it), then it arrives after a latency drawn uniformly from the configured range, all
//! from madsim's seeded RNG — and delivers straight into the destination's inbox (a target's Raft loop input) after a
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

//! Generic over the datagram type `M`: each target sends its own messages. The link state ([`Links`]:
//! cuts, loss, latency, counters) is the harness's, shared by the target's [`PeerNet`]; the nemesis
//! acts on it without knowing the target's message type.

use crate::target::lock;
use madsim::rand::Rng;
use madsim::runtime::NodeHandle;
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

struct LinkState {
    /// Directed links currently cut (from, to).
    cut: BTreeSet<(u64, u64)>,
    loss_rate: f64,
    latency: Range<Duration>,
    stats: PeerNetStats,
}

/// The peer network's links, as the nemesis sees them; clones share them. It outlives node
/// incarnations.
#[derive(Clone)]
pub struct Links {
    state: Arc<Mutex<LinkState>>,
    /// The madsim node that runs deliveries.
    courier: NodeHandle,
}

impl Links {
    /// Links with no cut, no loss and madsim's default latency. Deliveries run on `courier`, which
    /// must never be killed or paused.
    pub fn new(courier: &NodeHandle) -> Links {
        Links {
            state: Arc::new(Mutex::new(LinkState {
                cut: BTreeSet::new(),
                loss_rate: 0.0,
                latency: DEFAULT_LATENCY,
                stats: PeerNetStats::default(),
            })),
            courier: courier.clone(),
        }
    }

    /// Drops every datagram from `from` to `to` until `heal`. Returns false if the link was already cut.
    pub fn cut(&self, from: u64, to: u64) -> bool {
        from != to && lock(&self.state).cut.insert((from, to))
    }

    /// Restores every link.
    pub fn heal(&self) {
        lock(&self.state).cut.clear();
    }

    pub fn cut_links(&self) -> BTreeSet<(u64, u64)> {
        lock(&self.state).cut.clone()
    }

    /// Loss rate per datagram; the caller clamps it to [0, 1].
    pub fn set_loss_rate(&self, rate: f64) {
        assert!(
            (0.0..=1.0).contains(&rate),
            "loss rate {rate} outside [0, 1]"
        );
        lock(&self.state).loss_rate = rate;
    }

    /// One-way latency drawn from `latency` for every datagram.
    pub fn set_latency(&self, latency: Range<Duration>) {
        assert!(
            latency.start < latency.end,
            "empty latency range {latency:?}"
        );
        lock(&self.state).latency = latency;
    }

    pub fn stats(&self) -> PeerNetStats {
        lock(&self.state).stats
    }

    /// Counts a datagram of `messages` messages from `from` to `to` and decides its fate: `None` if
    /// it is dropped, else its latency.
    fn admit(&self, from: u64, to: u64, messages: usize) -> Option<Duration> {
        let mut state = lock(&self.state);
        state.stats.datagrams_sent += 1;
        state.stats.messages_sent += messages as u64;
        // The same draws, in the same order, as madsim's `Network::test_link`.
        let dropped =
            state.cut.contains(&(from, to)) || madsim::rand::thread_rng().gen_bool(state.loss_rate);
        if dropped {
            state.stats.datagrams_dropped += 1;
            return None;
        }
        Some(madsim::rand::thread_rng().gen_range(state.latency.clone()))
    }
}

/// A target's peer network, carrying datagrams of type `M`; clones share it.
pub struct PeerNet<M> {
    links: Links,
    /// Each member's current incarnation's inbox.
    inboxes: Arc<Mutex<BTreeMap<u64, UnboundedSender<M>>>>,
}

impl<M> Clone for PeerNet<M> {
    fn clone(&self) -> Self {
        PeerNet {
            links: self.links.clone(),
            inboxes: self.inboxes.clone(),
        }
    }
}

impl<M: Send + 'static> PeerNet<M> {
    /// The one network of a cluster over `links` (build it once, share clones with the members).
    pub fn new(links: &Links) -> PeerNet<M> {
        PeerNet {
            links: links.clone(),
            inboxes: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// A booting incarnation of member `id` receives from now on through `inbox`.
    pub fn register(&self, id: u64, inbox: UnboundedSender<M>) {
        lock(&self.inboxes).insert(id, inbox);
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Sends `datagram` (carrying `messages` messages, for the counters) from `from` to `to`.
    pub fn send(&self, from: u64, to: u64, datagram: M, messages: usize) {
        let Some(latency) = self.links.admit(from, to, messages) else {
            return;
        };
        let Some(inbox) = lock(&self.inboxes).get(&to).cloned() else {
            // The destination never booted: nobody listens on the port.
            return;
        };
        self.links.courier.spawn(async move {
            madsim::time::sleep(latency).await;
            // A closed inbox is a crashed incarnation: the datagram is lost, as on a real network.
            let _ = inbox.send(datagram);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use madsim::runtime::{Handle, Runtime};
    use madsim::time::Instant;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    fn message(index: u64) -> u64 {
        index
    }

    fn indexes(inbox: &mut UnboundedReceiver<Vec<u64>>) -> Vec<u64> {
        let mut indexes = Vec::new();
        while let Ok(batch) = inbox.try_recv() {
            indexes.extend(batch);
        }
        indexes
    }

    fn send(net: &PeerNet<Vec<u64>>, batch: Vec<u64>) {
        let n = batch.len();
        net.send(1, 2, batch, n);
    }

    #[test]
    fn datagrams_arrive_within_the_latency_unless_cut_lost_or_their_incarnation_is_gone() {
        let runtime = Runtime::with_seed_and_config(7, madsim::Config::default());
        runtime.block_on(async {
            let links = Links::new(&Handle::current().create_node().build());
            let net = PeerNet::new(&links);
            let (min, max) = (Duration::from_millis(5), Duration::from_millis(20));
            links.set_latency(min..max);
            let (inbox, mut received) = unbounded_channel();
            net.register(2, inbox);

            let start = Instant::now();
            for index in 0..50 {
                send(&net, vec![message(index)]);
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
            send(&net, vec![message(60), message(61), message(62)]);
            madsim::time::sleep(max).await;
            assert_eq!(indexes(&mut received), vec![60, 61, 62]);

            // A cut link drops at send time; healing restores it.
            assert!(links.cut(1, 2));
            assert!(!links.cut(1, 2), "already cut");
            assert!(!links.cut(2, 2), "a node never cuts itself off");
            send(&net, vec![message(70)]);
            links.heal();
            madsim::time::sleep(max).await;
            assert!(indexes(&mut received).is_empty());

            links.set_loss_rate(1.0);
            send(&net, vec![message(80)]);
            links.set_loss_rate(0.0);
            madsim::time::sleep(max).await;
            assert!(indexes(&mut received).is_empty());

            // A datagram is bound to the incarnation it was sent to: a crash loses it, and the next
            // incarnation only gets what is sent after it registered.
            send(&net, vec![message(90)]);
            drop(received);
            let (inbox, mut received) = unbounded_channel();
            net.register(2, inbox);
            send(&net, vec![message(91)]);
            madsim::time::sleep(max).await;
            assert_eq!(indexes(&mut received), vec![91]);

            let stats = links.stats();
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

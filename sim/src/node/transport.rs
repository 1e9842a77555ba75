//! Raft peer links over madsim `Endpoint` (datagram-like: messages may be lost, delayed or reordered, which
//! Raft tolerates). One sender and one receiver task per peer, so one slow peer never serializes the
//! others. Messages travel unserialized (`send_to_raw`); the tag is the sender's id, so each receiver
//! task only takes its own peer's messages.

use super::raft_loop::Input;
use madsim::net::Endpoint;
use raft::eraftpb::Message;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// Spawns the links to every other member; returns the outgoing queue per peer.
pub(crate) fn spawn_links(
    id: u64,
    members: &[u64],
    endpoint: Arc<Endpoint>,
    input: UnboundedSender<Input>,
) -> BTreeMap<u64, UnboundedSender<Message>> {
    let mut outgoing = BTreeMap::new();
    for &peer in members.iter().filter(|&&p| p != id) {
        let (tx, mut rx) = unbounded_channel::<Message>();
        outgoing.insert(peer, tx);

        let ep = endpoint.clone();
        madsim::task::spawn(async move {
            let addr = super::peer_addr(peer);
            while let Some(msg) = rx.recv().await {
                // A send error means the network refused it: the message is lost, as on a real network.
                let _ = ep.send_to_raw(addr, id, Box::new(msg)).await;
            }
        });

        let ep = endpoint.clone();
        let input = input.clone();
        madsim::task::spawn(async move {
            while let Ok((payload, _from)) = ep.recv_from_raw(peer).await {
                let Ok(msg) = payload.downcast::<Message>() else {
                    continue;
                };
                if input.send(Input::Peer(msg)).is_err() {
                    return;
                }
            }
        });
    }
    outgoing
}

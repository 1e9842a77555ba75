//! The data of a normal Raft entry: a client (or lessor) request tagged with who proposed it, so the
//! proposer can recognise its own entry when it applies it (etcd tags entries with a request id likewise).

use crate::proto::Request;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub proposer: ProposalId,
    pub request: Request,
}

/// Unique across the whole run: `nonce` is drawn from the seeded RNG at every boot, so a restarted node never
/// mistakes an entry proposed by its previous incarnation for one of its own pending proposals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProposalId {
    pub node: u64,
    pub nonce: u64,
    pub seq: u64,
}

/// bincode, not JSON: every member decodes every committed entry, and JSON (keys and values as arrays of
/// numbers) made decoding the largest single cost of a simulated run. The bytes never leave the simulation.
pub fn encode(payload: &Payload) -> Vec<u8> {
    bincode::serialize(payload).expect("proto requests always serialize")
}

pub fn decode(data: &[u8]) -> Result<Payload, String> {
    bincode::deserialize(data).map_err(|e| format!("undecodable raft entry: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::PutReq;

    #[test]
    fn round_trip() {
        let p = Payload {
            proposer: ProposalId {
                node: 2,
                nonce: 9,
                seq: 4,
            },
            request: Request::Put(PutReq {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..PutReq::default()
            }),
        };
        assert_eq!(decode(&encode(&p)).unwrap(), p);
        assert!(decode(b"not a payload").is_err());
        // A truncated entry (a torn write would be caught by the WAL's checksum in etcd) is refused too.
        let bytes = encode(&p);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }
}

//! The etcd v3 MVCC sequential model: [`MvccModel`].
//!
//! Semantics are etcd 3.4's, module by module: `store` (key versions, historic reads,
//! compaction), `kv` (put / range / delete), `txn` (transactions), `compare`, `validate` (the
//! gRPC layer's request checks), `lease` (the lessor's table), `model` (state, lease and compact
//! operations), `spec` (judging observed answers; the search's `Spec`), `gen` (random
//! operations for workloads, oracles and benchmarks).
//!
//! # Facts verified against a real etcd
//!
//! Each was run on etcd 3.4.23 (Debian `etcd-server`, single member, JSON gateway `/v3/...`);
//! tests cite them. Revision 1 on an empty store, +1 per write that changed something.
//! - Put: `prev_kv`; errors in order EmptyKey, ValueProvided (`ignore_value` with a value),
//!   LeaseProvided (`ignore_lease` with a lease), LeaseNotFound, then KeyNotFound (`ignore_*` on a
//!   missing key). Inside a txn KeyNotFound is checked before LeaseNotFound.
//! - Range: header = current revision even for historic reads; revision <= 0 reads the current
//!   one; > current → FutureRevision; < compacted → Compacted (at the compacted revision works);
//!   `count` counts the whole range; `more` only when `limit` cut entries, never with
//!   `count_only`; `keys_only` empties values; range_end `"\0"` = from key; an inverted range is
//!   empty; empty key → EmptyKey.
//! - DeleteRange: deleting nothing leaves the revision (header = current).
//! - Txn: see `txn.rs` (compares, nested compares on the pre-state, checks, inner headers),
//!   `validate.rs` (DuplicateKey as `checkIntervals`, TooManyOps per list with the nested budget,
//!   from-key delete + put accepted) and `compare.rs` (missing keys).
//! - Leases: grant TTL 1 → granted 2 (minimum TTL); existing id → LeaseExists; grant header =
//!   current revision; revoke deletes the attached keys at one revision, or bumps nothing if
//!   there are none; revoke/keep-alive of a missing lease → LeaseNotFound (keep-alive: the
//!   stream's TTL 0, mapped by clientv3); time-to-live of a missing lease → TTL -1, granted 0.
//! - Compact: `compact 0` on a fresh store succeeds (compacted starts at -1); at or below the
//!   compacted revision → Compacted; above current → FutureRevision; header = the revision when
//!   etcd answers (read after the physical compaction), so current or any later one.
//!
//! # Serializable ranges
//!
//! Not linearizable in etcd: a member answers from its own applied state. The model treats such
//! a range as a consistent snapshot at its header revision `h`: valid iff `h` is at most the
//! current revision and the answer equals the state at `h` (accepted unchecked if `h` is below the
//! compacted revision). It is read-only. See `spec.rs`.

mod compare;
pub mod gen;
mod kv;
mod lease;
mod model;
mod spec;
mod store;
mod txn;
pub mod types;
mod validate;

pub use model::{MvccModel, ETCD_MIN_LEASE_TTL_S};
pub use types::*;
pub use validate::MAX_TXN_OPS;

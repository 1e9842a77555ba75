//! Claiming a run's share of a real cluster before the workload starts, and checking afterwards
//! that nobody else wrote during the run (see `keyspace.rs` for why both matter).

use std::time::Duration;

use anyhow::{bail, Result};
use etcd_client::{Client, GetOptions};
use serde::Serialize;

use super::keyspace::Keyspace;
use super::ops;

/// What the cluster held when the run began, recorded in the history's header and the summary.
#[derive(Clone, Debug, Serialize)]
pub struct InitialState {
    pub prefix: String,
    /// Keys under the prefix before the run: always 0 (a non-empty prefix is refused).
    pub keys_under_prefix: i64,
    /// The cluster's revision after the start marker: the history's revision 1.
    pub revision: i64,
    /// Written just outside the prefix; its revision is the run's base.
    pub marker_key: String,
    pub lease_offset: i64,
}

/// The default prefix of a run: fresh every time.
pub fn default_prefix(run_id: &str) -> String {
    format!("/kvsim/{run_id}/")
}

/// A run id unlikely to repeat: the seed, the wall clock in ms and the process id.
pub fn run_id(seed: u64) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("s{seed}-{now_ms:x}-{}", std::process::id())
}

/// The key marking the run's start: the prefix without its last `/`, plus `.kvsim-start`, so it
/// lies outside the prefix (`/kvsim/r1/` → `/kvsim/r1.kvsim-start`).
fn marker_key(prefix: &str) -> String {
    format!("{}.kvsim-start", prefix.trim_end_matches('/'))
}

/// Connects to the first member that answers.
async fn any_member(endpoints: &[String], timeout: Duration) -> Result<Client> {
    let mut errors = Vec::new();
    for endpoint in endpoints {
        match ops::connect(endpoint, timeout).await {
            Ok(mut client) => match client.status().await {
                Ok(_) => return Ok(client),
                Err(error) => errors.push(format!("{endpoint}: {error}")),
            },
            Err(error) => errors.push(format!("{endpoint}: {error}")),
        }
    }
    bail!(
        "no etcd member answered, so nothing can be tested ({}); is the cluster up?",
        errors.join("; ")
    )
}

/// Reads the keys under `prefix` (refusing a non-empty one: the model starts from an empty
/// store), writes the start marker, and returns the translation for the run.
pub async fn claim(
    endpoints: &[String],
    prefix: &str,
    lease_offset: i64,
    timeout: Duration,
) -> Result<(Keyspace, InitialState)> {
    if prefix.is_empty() {
        bail!("--prefix: expected a non-empty key prefix, e.g. /kvsim/mine/");
    }
    let mut client = any_member(endpoints, timeout).await?;
    let existing = client
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await?
        .count();
    if existing > 0 {
        bail!(
            "--prefix {prefix}: {existing} key(s) already exist under it; kvsim judges a run from an \
             empty prefix (the model starts empty), so it refuses rather than give a false verdict. \
             Choose another --prefix, or leave it out for a fresh one per run"
        );
    }
    let marker = marker_key(prefix);
    let put = client.put(marker.as_str(), "kvsim live run", None).await?;
    let revision = put.header().map_or(0, |header| header.revision());
    assert!(revision >= 2, "a put creates a revision above 1");
    let keyspace = Keyspace {
        prefix: prefix.to_string(),
        revision_offset: revision - 1,
        lease_offset,
    };
    let initial = InitialState {
        prefix: prefix.to_string(),
        keys_under_prefix: existing,
        revision,
        marker_key: marker,
        lease_offset,
    };
    Ok((keyspace, initial))
}

/// How many keys outside the run's prefix were written after the run began (somebody else's
/// writes; the run writes only under its prefix). `None` if no member answered.
pub async fn foreign_writes(
    endpoints: &[String],
    keyspace: &Keyspace,
    timeout: Duration,
) -> Option<usize> {
    let mut client = any_member(endpoints, timeout).await.ok()?;
    let base = keyspace.revision_offset + 1;
    let written = client
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_keys_only()
                    .with_min_mod_revision(base + 1),
            ),
        )
        .await
        .ok()?;
    Some(
        written
            .kvs()
            .iter()
            .filter(|kv| !kv.key().starts_with(keyspace.prefix.as_bytes()))
            .count(),
    )
}

/// A lease-id offset for the run: high bits drawn from the run id, so two runs' lease ids never
/// meet (workload ids stay below 2^40).
pub fn lease_offset(run_id: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in run_id.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (((hash % ((1 << 20) - 1)) + 1) << 40) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_lies_outside_the_prefix_and_offsets_keep_ids_positive() {
        let prefix = default_prefix("s1-abc-7");
        assert_eq!(prefix, "/kvsim/s1-abc-7/");
        let marker = marker_key(&prefix);
        assert!(!marker.starts_with(&prefix), "{marker}");
        let offset = lease_offset("s1-abc-7");
        assert!((1 << 40..1 << 60).contains(&offset), "{offset}");
        assert_ne!(offset, lease_offset("s1-abc-8"));
    }
}

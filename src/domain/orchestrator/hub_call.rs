//! How the orchestrator hub is spread over Durable Objects, and the one typed call every hub
//! object takes ([`HubCall`]).
//!
//! One object cannot hold every connection of a large deployment, so the hub is sharded:
//! - connections land on one of `ORCH_HUB_SHARDS` **shard** objects ([`shard_name`]): by the hash
//!   of the project named in the upgrade URL's optional `?projectId=` placement hint (so the
//!   watchers of one board share a shard, and an event usually travels to one shard), else at
//!   random; a shard holds its sockets with the hibernation API;
//! - each project has a **directory** object ([`directory_name`]) listing the shards with a
//!   subscriber of the project ([`super::hub::Directory`]); a shard registers there before it
//!   confirms a subscription and leaves when its last subscriber goes;
//! - publishing an event is one call to the project's directory, which forwards it to those
//!   shards in parallel ([`HubCall::Deliver`]); each sends it to its sockets subscribed to the
//!   project. A shard that answers "no subscriber here" is dropped from the directory (an entry
//!   left by a shard whose sockets were lost without their close events).
//!
//! Invariants: shard and directory objects are instances of one class (`OrchestratorWebSocket`,
//! binding [`BINDING`]), told apart by their names and calls; the directory names shards by
//! number, so changing `ORCH_HUB_SHARDS` strands nothing (connections on a shard beyond the new
//! count stay reachable until they close).

use super::hub::Who;
use crate::domain::ids::ProjectId;
use serde::{Deserialize, Serialize};

/// The Durable Object binding of the hub's shards and directories.
pub const BINDING: &str = "ORCH_HUB";

/// The request header that carries a bodyless call (a WebSocket upgrade).
pub const CALL_HEADER: &str = "X-Byte-Hub-Call";

/// The largest `ORCH_HUB_SHARDS`.
pub const MAX_SHARDS: u32 = 1024;

/// The object holding shard `k`'s connections.
pub fn shard_name(k: u32) -> String {
    format!("shard:{k}")
}

/// The object holding `project`'s directory.
pub fn directory_name(project: &ProjectId) -> String {
    format!("project:{project}")
}

/// FNV-1a: a stable hash (the same in every isolate and release).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The shard a new connection lands on: the hint's project hash, else `random`, modulo
/// `shards`.
pub fn shard_for(hint: Option<&ProjectId>, random: u32, shards: u32) -> u32 {
    let n = shards.max(1);
    match hint {
        Some(p) => (fnv1a(p.as_str()) % n as u64) as u32,
        None => random % n,
    }
}

/// Everything asked of a hub object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "call",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum HubCall {
    /// To a shard: the client's WebSocket upgrade (the request is the upgrade). `cookie`: the
    /// session the upgrade's cookie carried, confirmed by the Worker.
    Open { shard: u32, cookie: Option<Who> },
    /// To a project's directory: a shard's presence changed.
    Presence {
        project: ProjectId,
        shard: u32,
        present: bool,
        version: u64,
    },
    /// To a project's directory: an event of the project (its JSON), for every subscriber.
    Publish { project: ProjectId, message: String },
    /// To a shard: an event for its sockets subscribed to `project`.
    Deliver { project: ProjectId, message: String },
}

impl HubCall {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a hub call serializes")
    }

    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(raw).map_err(|e| format!("malformed hub call: {e}"))
    }
}

/// A shard's answer to [`HubCall::Deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// Sockets the event was sent to.
    pub sockets: u32,
    /// Whether the shard still has a subscriber (or one subscribing) of the project...
    pub present: bool,
    /// ... as of this version (see [`super::hub::Directory::absent_as_of`]).
    pub version: u64,
}

/// A directory's answer to [`HubCall::Publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Sockets the event was sent to, over all shards.
    pub sockets: u32,
    /// Shards it went to.
    pub shards: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable_by_hint_and_spread_without() {
        let p = ProjectId::from("prj_0123456789abcdef0123456789abcdef");
        let k = shard_for(Some(&p), 0, 8);
        assert!(k < 8);
        for r in 0..50 {
            assert_eq!(shard_for(Some(&p), r, 8), k, "the hint decides");
        }
        let seen: std::collections::BTreeSet<u32> =
            (0..64).map(|r| shard_for(None, r, 8)).collect();
        assert_eq!(seen.len(), 8);
        assert_eq!(shard_for(None, 7, 0), 0, "a zero count is one shard");
        // Different projects spread too.
        let spread: std::collections::BTreeSet<u32> = (0..64)
            .map(|i| shard_for(Some(&ProjectId::from(format!("prj_{i:032x}"))), 0, 8))
            .collect();
        assert!(spread.len() >= 6, "{spread:?}");
    }

    #[test]
    fn calls_round_trip_and_name_their_objects() {
        let p = ProjectId::from("prj_1");
        let c = HubCall::Presence {
            project: p.clone(),
            shard: 3,
            present: true,
            version: 1_733_140_000_000_000,
        };
        assert_eq!(HubCall::parse(c.to_json().as_bytes()).unwrap(), c);
        assert!(c.to_json().contains("\"call\":\"presence\""));
        assert!(HubCall::parse(b"{\"call\":\"nope\"}").is_err());
        assert_eq!(shard_name(3), "shard:3");
        assert_eq!(directory_name(&p), "project:prj_1");
    }
}

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
//! - publishing a change's events is one call to the project's directory (all the events of
//!   one change together, in order), which forwards them to those shards in parallel
//!   ([`HubCall::Deliver`]); each sends them, in order, to its sockets subscribed to the project. A shard that answers "no subscriber here" is dropped from the directory (an entry
//!   left by a shard whose sockets were lost without their close events).
//!
//! Invariants: shard and directory objects are instances of one class (`OrchestratorWebSocket`,
//! binding [`BINDING`]), told apart by their names and calls; the directory names shards by
//! number, so changing `ORCH_HUB_SHARDS` strands nothing (connections on a shard beyond the new
//! count stay reachable until they close).

use super::hub::Who;
use super::protocol::HubMessage;
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
    /// To a project's directory: events of the project (their JSON, in order), for every
    /// subscriber.
    Publish {
        project: ProjectId,
        messages: Vec<String>,
    },
    /// To a shard: events for its sockets subscribed to `project`, to be sent in order.
    Deliver {
        project: ProjectId,
        messages: Vec<String>,
    },
}

impl HubCall {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a hub call serializes")
    }

    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(raw).map_err(|e| format!("malformed hub call: {e}"))
    }
}

/// A change's events grouped into one publication per project they name (their JSON), the
/// projects in the order they first appear and each project's events in their own order;
/// events naming no project are dropped.
pub fn batches(messages: &[HubMessage]) -> Vec<(ProjectId, Vec<String>)> {
    let mut out: Vec<(ProjectId, Vec<String>)> = Vec::new();
    for m in messages {
        let Some(project) = m.project_id() else {
            continue;
        };
        let json = serde_json::to_string(m).expect("hub messages serialize");
        match out.iter_mut().find(|(p, _)| p == project) {
            Some((_, list)) => list.push(json),
            None => out.push((project.clone(), vec![json])),
        }
    }
    out
}

/// A shard's answer to [`HubCall::Deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// Sockets the events were sent to.
    pub sockets: u32,
    /// Whether the shard still has a subscriber (or one subscribing) of the project...
    pub present: bool,
    /// ... as of this version (see [`super::hub::Directory::absent_as_of`]).
    pub version: u64,
}

/// A directory's answer to [`HubCall::Publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Sockets the events were sent to, over all shards.
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

    #[test]
    fn a_changes_events_go_out_once_per_project_in_order() {
        let a = ProjectId::from("prj_0123456789abcdef0123456789abcdef");
        let b = ProjectId::from("prj_fedcba9876543210fedcba9876543210");
        let failed = |p: &ProjectId, n: &str| HubMessage::GenerationFailed {
            project_id: p.clone(),
            code: "E005".into(),
            message: n.into(),
        };
        let heartbeat = HubMessage::Heartbeat {
            timestamp: "2026-12-02T00:00:00Z".into(),
        };
        let got = batches(&[
            failed(&b, "b1"),
            failed(&a, "a1"),
            heartbeat,
            failed(&b, "b2"),
            failed(&a, "a2"),
        ]);
        let order: Vec<(&ProjectId, Vec<String>)> = got
            .iter()
            .map(|(p, list)| {
                let names = list
                    .iter()
                    .map(|j| {
                        serde_json::from_str::<serde_json::Value>(j).unwrap()["message"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    })
                    .collect();
                (p, names)
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (&b, vec!["b1".to_string(), "b2".into()]),
                (&a, vec!["a1".to_string(), "a2".into()])
            ]
        );
        assert!(batches(&[]).is_empty());
    }
}

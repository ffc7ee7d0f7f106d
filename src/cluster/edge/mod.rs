//! Remote edges: the two processes that carry one edge between runtimes over core NATS.
//!
//! The sender (`remote/Send`) takes IPs from its inport and publishes them in frames of many
//! IPs on the edge's data subject; the receiver (`remote/Receive`) sends them on from its
//! outport. The receiver grants credit: the sender may have at most the edge's capacity of
//! IPs sent and not yet passed on downstream, and waits when it has none left, so a slow
//! consumer slows the producer on the other runtime as it would on one, and neither end
//! holds more than the capacity. Frames carry sequence numbers: a frame lost on the way
//! (core NATS drops messages for a consumer that falls behind) ends the receiver with an
//! error that says how many IPs were lost, never silently.
//!
//! An edge whose metadata says `"durable": true` carries its frames through a JetStream
//! stream instead ([`durable`]), where they survive a crash of the receiving runtime.
//!
//! The end of the stream crosses too: when the sender's inport ends, it tells the receiver
//! how many IPs it sent, and the receiver, once it has passed on that many, ends its outport
//! and answers. When the receiver's downstream closes, its credit says so and the sender
//! ends, closing its inport upstream.

use std::time::Duration;

use crate::component::NodeInfo;

mod durable;
mod receive;
mod send;

pub use receive::RemoteReceive;
pub use send::RemoteSend;
pub(crate) use send::connection_lost;

/// The component name of the sending end.
pub const SEND: &str = "remote/Send";

/// The component name of the receiving end.
pub const RECEIVE: &str = "remote/Receive";

/// A remote edge's capacity when its metadata sets none: more than a local edge's, as the
/// credit must cover the round trip through the NATS server to keep the edge busy.
pub const DEFAULT_CAPACITY: u64 = 16_384;

/// How often a sender without credit asks for it again, and repeats the end of its stream.
const ASK_EVERY: Duration = Duration::from_millis(250);

/// Frames are cut at this size; NATS servers take 1 MiB messages by default.
const FRAME_BYTES: usize = 256 * 1024;

/// What identifies a remote edge: its subjects, capacity, and the runtime at the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLink {
    /// The subject the sender publishes frames on.
    pub data: String,
    /// The subject the receiver publishes credit on.
    pub credit: String,
    /// The most IPs sent and not yet passed on downstream.
    pub capacity: u64,
    /// The runtime at the other end, for messages (may be empty).
    pub peer: String,
    /// The edge's key, for messages.
    pub key: String,
    /// Whether the frames go through a JetStream stream and survive a crash of the
    /// receiving runtime (see [`durable`]).
    pub durable: bool,
}

impl EdgeLink {
    /// The link of a remote process, from its graph's name (the namespace) and its metadata:
    /// `edge` (the key both ends share; required), `capacity` and `peer`.
    ///
    /// # Errors
    ///
    /// When the process has no graph name or no `edge` key, or the capacity is not a
    /// positive integer.
    pub fn of(node: &NodeInfo<'_>) -> Result<EdgeLink, String> {
        let graph = node
            .graph
            .ok_or_else(|| "a remote edge runs only in a named graph".to_string())?;
        let metadata = node.metadata;
        let field = |name: &str| metadata.and_then(|m| m.get(name));
        let key = field("edge")
            .and_then(|v| v.as_str())
            .filter(|k| !k.is_empty())
            .ok_or("a remote edge needs the key of its edge in metadata 'edge'")?;
        let capacity = match field("capacity") {
            None => DEFAULT_CAPACITY,
            Some(value) => value.as_u64().filter(|&c| c > 0).ok_or_else(|| {
                format!("metadata 'capacity' must be a positive integer, not {value}")
            })?,
        };
        let durable = field("durable") == Some(&serde_json::Value::Bool(true));
        let peer = field("peer")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let base = format!(
            "{}.{}.edge.{}",
            super::SUBJECT_ROOT,
            super::subject_token(graph),
            super::subject_token(key)
        );
        Ok(EdgeLink {
            data: format!("{base}.data"),
            credit: format!("{base}.credit"),
            capacity,
            peer,
            key: key.to_string(),
            durable,
        })
    }

    /// How messages name this edge: its key and the runtime at the other end.
    pub(crate) fn describe(&self) -> String {
        if self.peer.is_empty() {
            format!("remote edge '{}'", self.key)
        } else {
            format!("remote edge '{}' (runtime '{}')", self.key, self.peer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(graph: Option<&str>, metadata: serde_json::Value) -> Result<EdgeLink, String> {
        let metadata = metadata.as_object().cloned();
        EdgeLink::of(&NodeInfo {
            id: "p",
            graph,
            metadata: metadata.as_ref(),
        })
    }

    #[test]
    fn the_namespace_comes_from_the_graph_not_the_metadata() {
        let found = link(
            Some("main"),
            serde_json::json!({"edge": "a.b>*", "capacity": 8, "peer": "west"}),
        );
        let Ok(found) = found else {
            panic!("{found:?}");
        };
        assert_eq!(found.data, "flowd.main.edge.a%2Eb%3E%2A.data");
        assert_eq!(found.credit, "flowd.main.edge.a%2Eb%3E%2A.credit");
        assert_eq!(found.capacity, 8);
        assert!(found.describe().contains("west"));
    }

    #[test]
    fn a_link_needs_a_graph_a_key_and_a_sane_capacity() {
        assert!(link(None, serde_json::json!({"edge": "k"})).is_err());
        assert!(link(Some("g"), serde_json::json!({})).is_err());
        assert!(link(Some("g"), serde_json::json!({"edge": "k", "capacity": 0})).is_err());
        assert!(link(Some("g"), serde_json::json!({"edge": "k", "capacity": "x"})).is_err());
        assert_eq!(
            link(Some("g"), serde_json::json!({"edge": "k"})).map(|l| l.capacity),
            Ok(DEFAULT_CAPACITY)
        );
    }
}

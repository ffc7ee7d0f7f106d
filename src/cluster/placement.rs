//! Placing a graph's processes on runtimes, and splitting it into one share per runtime.
//!
//! A process runs on the runtime its metadata names (`"runtime": "NAME"`), or the one a
//! placement given by the operator names, or else on the graph's home runtime. Each share is
//! a graph of its own: the processes placed there, the edges and IIPs among them, the
//! exported ports of its processes, and for every edge that crosses to another runtime a
//! `remote/Send` process at the source end and a `remote/Receive` process at the target end,
//! which share the edge's key. Every share carries the same name (the graph's name and the
//! run), which namespaces the subjects of its remote edges.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::edge::{DEFAULT_CAPACITY, RECEIVE, SEND};
use super::is_name_char;
use crate::graph::{Connection, Edge, Graph, Object, PortRef};

/// The node metadata key that names a process's runtime.
pub const RUNTIME_KEY: &str = "runtime";

/// How the `remote/Send` process of a remote edge is named: this, then the edge's key.
pub(crate) const SEND_PREFIX: &str = "remote-send:";

/// How the `remote/Receive` process of a remote edge is named: this, then the edge's key.
pub(crate) const RECEIVE_PREFIX: &str = "remote-receive:";

/// The name of the `remote/Send` process of the crossing edge `edge`.
pub(crate) fn sender_of(edge: &Edge) -> String {
    format!("{SEND_PREFIX}{}", edge_key(edge))
}

/// Whether `node` is one end of a remote edge (placed by flowd) rather than a process of the
/// graph.
pub(crate) fn is_edge_end(node: &crate::graph::Node) -> bool {
    node.component == SEND || node.component == RECEIVE
}

/// Whether packets on `edge` (named as a share names it) come out of a `remote/Receive`: the
/// receiving half of an edge between runtimes, whose packets its sending half reports.
pub(crate) fn is_receiving_half(edge: &crate::engine::EdgeId) -> bool {
    edge.src.process.starts_with(RECEIVE_PREFIX)
}

/// Why a graph cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A runtime name that is not one.
    #[error("process '{process}': '{runtime}' is not a runtime name (letters, digits, '-', '_')")]
    BadRuntime {
        /// The process.
        process: String,
        /// The name it was given.
        runtime: String,
    },
    /// The placement, an edge, an IIP or an exported port names a process the graph does
    /// not have.
    #[error("process '{0}' is named, but the graph does not have it")]
    UnknownProcess(String),
}

/// A graph split over runtimes: the share of each runtime, by runtime name.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Each runtime's share; the home runtime's is always there, even if empty.
    pub shares: BTreeMap<String, Graph>,
}

impl Placement {
    /// Splits `graph` for the run `run`, with `home` as the runtime of unplaced processes and
    /// `placed` (process id to runtime) taking precedence over node metadata.
    ///
    /// # Errors
    ///
    /// [`PlacementError`] for runtime names that are not names, and for a placement, an edge, an
    /// IIP or an exported port naming processes the graph does not have.
    pub fn split(
        graph: &Graph,
        home: &str,
        run: &str,
        placed: &BTreeMap<String, String>,
    ) -> Result<Placement, PlacementError> {
        if let Some(unknown) = placed.keys().find(|id| graph.node(id).is_none()) {
            return Err(PlacementError::UnknownProcess(unknown.clone()));
        }
        let mut runtime_of = HashMap::new();
        for node in &graph.nodes {
            let runtime = placed
                .get(&node.id)
                .map(String::as_str)
                .or_else(|| node.metadata.as_ref()?.get(RUNTIME_KEY)?.as_str())
                .unwrap_or(home);
            if runtime.is_empty() || !runtime.chars().all(is_name_char) {
                return Err(PlacementError::BadRuntime {
                    process: node.id.clone(),
                    runtime: runtime.to_string(),
                });
            }
            runtime_of.insert(node.id.as_str(), runtime.to_string());
        }
        let runtime_for = |process: &str| -> Result<&str, PlacementError> {
            runtime_of
                .get(process)
                .map(String::as_str)
                .ok_or_else(|| PlacementError::UnknownProcess(process.to_string()))
        };
        let name = format!("{}~{run}", graph.name().unwrap_or("graph"));
        let mut shares = Shares {
            graph,
            name: &name,
            shares: BTreeMap::new(),
        };
        shares.of(home);
        for node in &graph.nodes {
            shares
                .of(&runtime_of[node.id.as_str()].clone())
                .nodes
                .push(node.clone());
        }
        for connection in &graph.connections {
            match connection {
                Connection::Iip(iip) => {
                    let runtime = runtime_for(&iip.tgt.process)?;
                    shares.of(runtime).connections.push(connection.clone());
                }
                Connection::Edge(edge) => {
                    let from = runtime_for(&edge.src.process)?;
                    let to = runtime_for(&edge.tgt.process)?;
                    if from == to {
                        shares.of(from).connections.push(connection.clone());
                    } else {
                        shares.cross(edge, from, to);
                    }
                }
            }
        }
        for port in &graph.inports {
            shares
                .of(runtime_for(&port.process)?)
                .inports
                .push(port.clone());
        }
        for port in &graph.outports {
            shares
                .of(runtime_for(&port.process)?)
                .outports
                .push(port.clone());
        }
        for group in &graph.groups {
            for (runtime, share) in &mut shares.shares {
                let nodes: Vec<String> = group
                    .nodes
                    .iter()
                    .filter(|id| runtime_of.get(id.as_str()) == Some(runtime))
                    .cloned()
                    .collect();
                if !nodes.is_empty() {
                    let mut group = group.clone();
                    group.nodes = nodes;
                    share.groups.push(group);
                }
            }
        }
        Ok(Placement {
            shares: shares.shares,
        })
    }

    /// The runtimes the graph runs on, besides `home`.
    pub fn others<'a>(&'a self, home: &'a str) -> impl Iterator<Item = &'a str> {
        self.shares
            .keys()
            .map(String::as_str)
            .filter(move |r| *r != home)
    }
}

/// The shares being built.
struct Shares<'a> {
    graph: &'a Graph,
    name: &'a str,
    shares: BTreeMap<String, Graph>,
}

impl Shares<'_> {
    fn of(&mut self, runtime: &str) -> &mut Graph {
        let (graph, name) = (self.graph, self.name);
        self.shares
            .entry(runtime.to_string())
            .or_insert_with(|| empty_share(graph, name))
    }

    /// Splits `edge` into a sending end on `from` and a receiving end on `to`.
    fn cross(&mut self, edge: &Edge, from: &str, to: &str) {
        let durable =
            edge.metadata.as_ref().and_then(|m| m.get("durable")) == Some(&Value::Bool(true));
        let key = edge_key(edge);
        let capacity = edge.capacity().map_or(DEFAULT_CAPACITY, |c| c as u64);
        let link = |peer: &str| -> Option<Object> {
            let mut link = json!({"edge": key, "capacity": capacity, "peer": peer});
            if durable {
                link["durable"] = Value::Bool(true);
            }
            link.as_object().cloned()
        };
        let sender = sender_of(edge);
        let receiver = format!("{RECEIVE_PREFIX}{key}");
        let source = self.of(from);
        source.add_node(&sender, SEND).metadata = link(to);
        // Both local halves keep the edge's metadata, its capacity among it.
        let mut outer = edge.clone();
        outer.tgt = PortRef::new(&sender, "in");
        source.connections.push(Connection::Edge(outer));
        let target = self.of(to);
        target.add_node(&receiver, RECEIVE).metadata = link(from);
        let mut inner = edge.clone();
        inner.src = PortRef::new(&receiver, "out");
        target.connections.push(Connection::Edge(inner));
    }
}

/// A share with the graph's properties under the shared name, and nothing in it yet.
fn empty_share(graph: &Graph, name: &str) -> Graph {
    let mut share = Graph::new(name);
    for (key, value) in &graph.properties {
        if key != "name" {
            share.properties.insert(key.clone(), value.clone());
        }
    }
    share.case_sensitive = graph.case_sensitive;
    share
}

/// The key both ends of a remote edge share: its two ends, which no other edge has.
pub(crate) fn edge_key(edge: &Edge) -> String {
    edge.to_string().replace(" -> ", ">")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        let mut graph = Graph::from_fbp(
            "'x' -> IN a(core/Repeat) OUT -> IN b(core/Repeat) OUT -> IN c(core/Output)",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        graph.properties.insert("name".into(), json!("main"));
        graph
            .properties
            .insert("environment".into(), json!({"type": "flowd"}));
        graph
    }

    fn place(graph: &Graph, placed: &[(&str, &str)]) -> Result<Placement, PlacementError> {
        let placed = placed
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect();
        Placement::split(graph, "home", "r1", &placed)
    }

    #[test]
    fn an_unplaced_graph_stays_home_whole() {
        let graph = graph();
        let placement = place(&graph, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(placement.shares.len(), 1);
        let home = &placement.shares["home"];
        assert_eq!(home.nodes, graph.nodes);
        assert_eq!(home.connections, graph.connections);
        assert_eq!(home.name(), Some("main~r1"));
        assert_eq!(
            home.properties.get("environment"),
            graph.properties.get("environment")
        );
    }

    #[test]
    fn a_crossing_edge_becomes_a_sending_and_a_receiving_end() {
        let mut graph = graph();
        graph.nodes[1].metadata = json!({"runtime": "west"}).as_object().cloned();
        let placement = place(&graph, &[]).unwrap_or_else(|e| panic!("{e}"));
        let (home, west) = (&placement.shares["home"], &placement.shares["west"]);
        let ids = |g: &Graph| g.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(home),
            [
                "a",
                "c",
                "remote-send:a.out>b.in",
                "remote-receive:b.out>c.in"
            ]
        );
        assert_eq!(
            ids(west),
            ["b", "remote-receive:a.out>b.in", "remote-send:b.out>c.in"]
        );
        let sender = home
            .node("remote-send:a.out>b.in")
            .map(|n| n.metadata.clone());
        assert_eq!(
            sender,
            Some(
                json!({"edge": "a.out>b.in", "capacity": DEFAULT_CAPACITY, "peer": "west"})
                    .as_object()
                    .cloned()
            )
        );
        // The IIP stays with its process; every share has the one name.
        assert_eq!(home.iips().count(), 1);
        assert_eq!(west.iips().count(), 0);
        assert_eq!(west.name(), home.name());
    }

    #[test]
    fn the_operators_placement_wins_and_must_name_real_processes() {
        let mut graph = graph();
        graph.nodes[1].metadata = json!({"runtime": "west"}).as_object().cloned();
        let placement = place(&graph, &[("b", "east")]).unwrap_or_else(|e| panic!("{e}"));
        assert!(placement.shares.contains_key("east"));
        assert!(!placement.shares.contains_key("west"));
        assert_eq!(
            place(&graph, &[("nobody", "east")]),
            Err(PlacementError::UnknownProcess("nobody".into()))
        );
        assert!(matches!(
            place(&graph, &[("b", "a.b")]),
            Err(PlacementError::BadRuntime { .. })
        ));
    }

    #[test]
    fn a_durable_crossing_edge_makes_durable_ends() {
        let mut graph = graph();
        graph.nodes[1].metadata = json!({"runtime": "west"}).as_object().cloned();
        if let Some(Connection::Edge(edge)) = graph.connections.get_mut(1) {
            edge.metadata = json!({"durable": true}).as_object().cloned();
        }
        let placement = place(&graph, &[]).unwrap_or_else(|e| panic!("{e}"));
        let durable = |runtime: &str, id: &str| {
            placement.shares[runtime]
                .node(id)
                .and_then(|n| n.metadata.as_ref()?.get("durable").cloned())
        };
        assert_eq!(durable("home", "remote-send:a.out>b.in"), Some(json!(true)));
        assert_eq!(
            durable("west", "remote-receive:a.out>b.in"),
            Some(json!(true))
        );
        assert_eq!(durable("west", "remote-send:b.out>c.in"), None);
    }
}

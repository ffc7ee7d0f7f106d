//! Subgraphs: a graph used as a component, expanded into its parent before it runs.
//!
//! A process whose component is a graph is replaced by that graph's processes, with ids
//! prefixed by the process id (`Sub/inner`), and the edges to and from the process are joined
//! to the ports the subgraph exports. Nested subgraphs expand the same way; a graph that
//! contains itself is refused.

use std::sync::Arc;

use super::error::{Error, ValidationError};
use super::model::{Connection, ExportedPort, Graph, PortRef};

/// How deep subgraphs may nest; deeper means a graph (indirectly) contains itself.
const MAX_DEPTH: usize = 32;

/// The most processes an expanded graph may have: a subgraph used twice per level doubles the
/// count with each level, so a few levels of a client's graphs could otherwise exhaust memory.
const MAX_PROCESSES: usize = 1 << 20;

impl Graph {
    /// Whether any process's component is a graph, as `subgraph` tells.
    pub fn has_subgraphs(&self, subgraph: &dyn Fn(&str) -> Option<Arc<Graph>>) -> bool {
        self.nodes.iter().any(|n| subgraph(&n.component).is_some())
    }

    /// This graph with every subgraph process expanded (see the module documentation).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with [`ValidationError::Subgraph`] when an edge names a port the
    /// subgraph does not export, subgraphs nest more than 32 deep (a cycle), or the expanded
    /// graph would have over 2^20 processes.
    pub fn flatten(&self, subgraph: &dyn Fn(&str) -> Option<Arc<Graph>>) -> Result<Graph, Error> {
        expand(self, subgraph, 0).map_err(|problem| Error::Invalid(vec![*problem]))
    }
}

fn expand(
    graph: &Graph,
    lookup: &dyn Fn(&str) -> Option<Arc<Graph>>,
    depth: usize,
) -> Result<Graph, Box<ValidationError>> {
    let mut flat = Graph {
        nodes: Vec::with_capacity(graph.nodes.len()),
        connections: Vec::with_capacity(graph.connections.len()),
        inports: Vec::new(),
        outports: Vec::new(),
        ..graph.clone()
    };
    // The expanded subgraphs, by the id of the process they replace.
    let mut expanded: Vec<(String, String, Graph)> = Vec::new();
    for node in &graph.nodes {
        let Some(sub) = lookup(&node.component) else {
            flat.nodes.push(node.clone());
            continue;
        };
        let problem = |problem: String| {
            Box::new(ValidationError::Subgraph {
                node: node.id.clone(),
                component: node.component.clone(),
                problem,
            })
        };
        if depth >= MAX_DEPTH {
            return Err(problem(format!(
                "subgraphs nest more than {MAX_DEPTH} deep; does the graph contain itself?"
            )));
        }
        let inner = expand(&sub, lookup, depth + 1)?;
        if flat.nodes.len() + inner.nodes.len() > MAX_PROCESSES {
            return Err(problem(format!(
                "expanded, the graph would have over {MAX_PROCESSES} processes"
            )));
        }
        let prefix = |id: &str| format!("{}/{id}", node.id);
        for n in &inner.nodes {
            let mut n = n.clone();
            n.id = prefix(&n.id);
            flat.nodes.push(n);
        }
        for c in &inner.connections {
            let mut c = c.clone();
            match &mut c {
                Connection::Edge(e) => {
                    e.src.process = prefix(&e.src.process);
                    e.tgt.process = prefix(&e.tgt.process);
                }
                Connection::Iip(i) => i.tgt.process = prefix(&i.tgt.process),
            }
            flat.connections.push(c);
        }
        expanded.push((node.id.clone(), node.component.clone(), inner));
    }
    let resolve = |port: &PortRef, inbound: bool| -> Result<PortRef, Box<ValidationError>> {
        let Some((id, component, inner)) = expanded.iter().find(|(id, ..)| *id == port.process)
        else {
            return Ok(port.clone());
        };
        let exports = if inbound {
            &inner.inports
        } else {
            &inner.outports
        };
        let export: &ExportedPort = exports
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(&port.port))
            .ok_or_else(|| {
                Box::new(ValidationError::Subgraph {
                    node: id.clone(),
                    component: component.clone(),
                    problem: format!(
                        "the graph exports no {} '{}'",
                        if inbound { "inport" } else { "outport" },
                        port.port
                    ),
                })
            })?;
        Ok(PortRef {
            process: format!("{id}/{}", export.process),
            port: export.port.clone(),
            index: export.index.or(port.index),
        })
    };
    for c in &graph.connections {
        let mut c = c.clone();
        match &mut c {
            Connection::Edge(e) => {
                e.src = resolve(&e.src, false)?;
                e.tgt = resolve(&e.tgt, true)?;
            }
            Connection::Iip(i) => i.tgt = resolve(&i.tgt, true)?,
        }
        flat.connections.push(c);
    }
    for (exports, target, inbound) in [
        (&graph.inports, &mut flat.inports, true),
        (&graph.outports, &mut flat.outports, false),
    ] {
        for export in exports {
            let inner = resolve(&export.target(), inbound)?;
            let mut export = export.clone();
            export.process = inner.process;
            export.port = inner.port;
            export.index = inner.index;
            target.push(export);
        }
    }
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double() -> Arc<Graph> {
        let mut g = Graph::new("Double");
        g.add_node("a", "core/Repeat");
        g.add_node("b", "core/Repeat");
        g.add_edge(PortRef::new("a", "out"), PortRef::new("b", "in"));
        g.add_inport("in", "a", "in");
        g.add_outport("out", "b", "out");
        Arc::new(g)
    }

    #[test]
    fn a_subgraph_process_becomes_its_processes() {
        let mut g = Graph::new("main");
        g.add_node("S", "lib/Double");
        g.add_node("show", "core/Output");
        g.add_iip("x".into(), PortRef::new("S", "in"));
        g.add_edge(PortRef::new("S", "out"), PortRef::new("show", "in"));
        let lookup = |name: &str| (name == "lib/Double").then(double);
        let flat = g.flatten(&lookup).unwrap();
        let ids: Vec<&str> = flat.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["S/a", "S/b", "show"]);
        let edges: Vec<String> = flat.edges().map(|e| e.to_string()).collect();
        assert!(
            edges.contains(&"S/b.out -> show.in".to_string()),
            "{edges:?}"
        );
        assert_eq!(flat.iips().next().unwrap().tgt, PortRef::new("S/a", "in"));
    }

    #[test]
    fn a_graph_that_contains_itself_is_refused() {
        let mut g = Graph::new("Loop");
        g.add_node("again", "lib/Loop");
        let looped = Arc::new(g.clone());
        let lookup = move |name: &str| (name == "lib/Loop").then(|| looped.clone());
        let error = g.flatten(&lookup).unwrap_err().to_string();
        assert!(error.contains("contain itself"), "{error}");
    }

    #[test]
    fn an_unexported_port_is_named() {
        let mut g = Graph::new("main");
        g.add_node("S", "lib/Double");
        g.add_iip("x".into(), PortRef::new("S", "nope"));
        let lookup = |name: &str| (name == "lib/Double").then(double);
        let error = g.flatten(&lookup).unwrap_err().to_string();
        assert!(error.contains("exports no inport 'nope'"), "{error}");
    }
}

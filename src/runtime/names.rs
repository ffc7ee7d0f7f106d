//! The names of a running network's processes: the graph's, which clients see and edit, and
//! the engine's, which a process keeps for as long as it runs.
//!
//! `graph:renamenode` renames a node in the graph at once, but a running process cannot change
//! the name its edges and events carry. So the runtime translates: edits that name the new id
//! reach the process under its old one, and its packets and errors are reported under the new
//! one. A node added later under a name that a renamed process still holds in the engine gets
//! a fresh engine name. A subgraph node runs as processes named `<node>/<inner>`; they are
//! reported under the subgraph node's new name (edits cannot reach them, so only reports need
//! it). Names nobody renamed are the same on both sides; until a rename, translating costs one
//! look at an empty map.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::graph::PortRef;

/// Translates between graph and engine names of one running network.
#[derive(Debug, Default)]
pub(crate) struct ProcessNames {
    /// Graph name to engine name, for the processes whose names differ (or would be
    /// translated otherwise; see [`ProcessNames::graph`]).
    to_engine: HashMap<String, String>,
    /// Engine name to graph name, the reverse of `to_engine`.
    to_graph: HashMap<String, String>,
    /// The engine names of the subgraph nodes, which run as `<node>/<inner>` processes.
    subgraphs: HashSet<String>,
}

impl ProcessNames {
    /// Names for a network whose subgraph nodes are `subgraphs` (graph and engine names are
    /// the same at start).
    pub(crate) fn new(subgraphs: impl IntoIterator<Item = String>) -> ProcessNames {
        ProcessNames {
            subgraphs: subgraphs.into_iter().collect(),
            ..ProcessNames::default()
        }
    }

    /// The engine's name for the node the graph calls `name`.
    pub(crate) fn engine<'a>(&self, name: &'a str) -> Cow<'a, str> {
        match self.to_engine.get(name) {
            Some(engine) => Cow::Owned(engine.clone()),
            None => Cow::Borrowed(name),
        }
    }

    /// The graph's name for the process the engine calls `name`: the processes of a renamed
    /// subgraph node (`<node>/<inner>`, by the longest such prefix) follow it.
    pub(crate) fn graph<'a>(&self, name: &'a str) -> Cow<'a, str> {
        if self.to_graph.is_empty() {
            return Cow::Borrowed(name);
        }
        if let Some(graph) = self.to_graph.get(name) {
            return Cow::Owned(graph.clone());
        }
        for (slash, _) in name.rmatch_indices('/') {
            let (head, inner) = name.split_at(slash);
            if self.subgraphs.contains(head)
                && let Some(graph) = self.to_graph.get(head)
            {
                return Cow::Owned(format!("{graph}{inner}"));
            }
        }
        Cow::Borrowed(name)
    }

    /// The node `from` is now called `to` in the graph.
    pub(crate) fn rename(&mut self, from: &str, to: &str) {
        let engine = self.engine(from).into_owned();
        self.to_engine.remove(from);
        self.link(to, engine);
    }

    /// A node called `name` joins the network under `engine` (`name` itself unless that is
    /// held; see [`ProcessNames::fresh`]).
    pub(crate) fn add(&mut self, name: &str, engine: String) {
        self.link(name, engine);
    }

    /// The node called `name` leaves the network.
    pub(crate) fn remove(&mut self, name: &str) {
        if let Some(engine) = self.to_engine.remove(name) {
            self.to_graph.remove(&engine);
        }
    }

    /// An engine name for a new node called `name`: `name` unless a process holds it (a
    /// renamed one), else the first of `name#2`, `name#3`, ... that none holds.
    pub(crate) fn fresh(&self, name: &str, taken: impl Fn(&str) -> bool) -> String {
        let free = |candidate: &str| !self.to_graph.contains_key(candidate) && !taken(candidate);
        if free(name) {
            return name.to_string();
        }
        (2..)
            .map(|n| format!("{name}#{n}"))
            .find(|candidate| free(candidate))
            .unwrap_or_else(|| name.to_string())
    }

    /// `port` with its process named as the engine names it.
    pub(crate) fn engine_port(&self, port: &PortRef) -> PortRef {
        PortRef {
            process: self.engine(&port.process).into_owned(),
            ..port.clone()
        }
    }

    /// `port` with its process named as the graph names it (borrowed when that is the same).
    pub(crate) fn graph_port<'a>(&self, port: &'a PortRef) -> Cow<'a, PortRef> {
        match self.graph(&port.process) {
            Cow::Borrowed(_) => Cow::Borrowed(port),
            Cow::Owned(process) => Cow::Owned(PortRef {
                process,
                ..port.clone()
            }),
        }
    }

    /// Makes `graph` and `engine` name each other, ending what either named before.
    fn link(&mut self, graph: &str, engine: String) {
        if let Some(old) = self.to_graph.remove(&engine) {
            self.to_engine.remove(&old);
        }
        if let Some(previous) = self.to_engine.remove(graph) {
            self.to_graph.remove(&previous);
        }
        // Equal names need an entry too when a renamed subgraph's prefix would claim them.
        if graph != engine || self.graph(&engine) != graph {
            self.to_graph.insert(engine.clone(), graph.to_string());
            self.to_engine.insert(graph.to_string(), engine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_nobody_renamed_are_the_same_on_both_sides() {
        let names = ProcessNames::default();
        assert_eq!(names.engine("a"), "a");
        assert_eq!(names.graph("a"), "a");
        assert_eq!(names.fresh("a", |_| false), "a");
    }

    #[test]
    fn a_renamed_process_keeps_its_engine_name_through_every_rename() {
        let mut names = ProcessNames::default();
        names.rename("a", "b");
        names.rename("b", "c");
        assert_eq!(names.engine("c"), "a");
        assert_eq!(names.graph("a"), "c");
        assert_eq!(names.engine("b"), "b", "b is no longer anybody's name");
        names.rename("c", "a");
        assert_eq!(names.engine("a"), "a");
        assert_eq!(names.graph("a"), "a");
        assert!(names.to_engine.is_empty() && names.to_graph.is_empty());
    }

    #[test]
    fn a_node_added_under_a_name_a_renamed_process_holds_gets_a_fresh_one() {
        let mut names = ProcessNames::default();
        names.rename("a", "b");
        let engine = names.fresh("a", |n| n == "a");
        assert_eq!(engine, "a#2");
        names.add("a", engine);
        assert_eq!(names.engine("a"), "a#2");
        assert_eq!(names.engine("b"), "a");
        assert_eq!(names.graph("a#2"), "a");
        assert_eq!(names.graph("a"), "b");
        names.remove("b");
        assert_eq!(names.engine("a"), "a#2");
        assert_eq!(names.graph("a"), "a", "the engine name is free again");
    }

    #[test]
    fn the_processes_of_a_renamed_subgraph_node_follow_it() {
        let mut names = ProcessNames::new(["sub".to_string(), "sub/nested".to_string()]);
        names.rename("sub", "flowd/Sub_k2x9a");
        assert_eq!(names.graph("sub/inner"), "flowd/Sub_k2x9a/inner");
        assert_eq!(names.graph("sub/nested/x"), "flowd/Sub_k2x9a/nested/x");
        names.rename("flowd/Sub_k2x9a", "again");
        assert_eq!(names.graph("sub/inner"), "again/inner");
    }

    #[test]
    fn ids_with_slashes_are_not_taken_for_subgraph_processes() {
        // noflo-ui names nodes after their component: `core/Repeat_ab12`.
        let mut names = ProcessNames::new(["S".to_string()]);
        names.rename("core/Repeat_ab12", "core");
        assert_eq!(names.graph("core/Repeat_ab12"), "core");
        assert_eq!(
            names.graph("core/Repeat_cd34"),
            "core/Repeat_cd34",
            "core is no subgraph"
        );
        assert_eq!(names.engine("core/Repeat_cd34"), "core/Repeat_cd34");

        // A plain node added under the old subgraph's prefix is reported as itself.
        names.rename("S", "T");
        let engine = names.fresh("S/x", |_| false);
        assert_eq!(engine, "S/x");
        names.add("S/x", engine);
        assert_eq!(names.graph("S/x"), "S/x");
        assert_eq!(names.graph("S/inner"), "T/inner");
        assert_eq!(names.engine("S/x"), "S/x");
    }

    #[test]
    fn ports_are_translated_by_process() {
        let mut names = ProcessNames::default();
        names.rename("a", "b");
        let port = PortRef {
            process: "b".into(),
            port: "out".into(),
            index: Some(2),
        };
        let engine = names.engine_port(&port);
        assert_eq!((engine.process.as_str(), engine.index), ("a", Some(2)));
        assert_eq!(*names.graph_port(&engine), port);
    }
}

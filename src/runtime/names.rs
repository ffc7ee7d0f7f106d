//! The names of a running network's processes: the graph's, which clients see and edit, and
//! the engine's, which a process keeps for as long as it runs.
//!
//! `graph:renamenode` renames a node in the graph at once, but a running process cannot change
//! the name its edges and events carry. So the runtime translates: edits that name the new id
//! reach the process under its old one, and its packets and errors are reported under the new
//! one. A node added later under a name that a renamed process still holds in the engine gets
//! a fresh engine name. Names nobody renamed are the same on both sides; until a rename,
//! translating costs one look at an empty map.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::graph::PortRef;

/// Translates between graph and engine names of one running network.
#[derive(Debug, Default)]
pub(crate) struct ProcessNames {
    /// Graph name to engine name, for the processes whose names differ.
    to_engine: HashMap<String, String>,
    /// Engine name to graph name, the reverse of `to_engine`.
    to_graph: HashMap<String, String>,
}

impl ProcessNames {
    /// The engine's name for the node the graph calls `name`. The processes of a subgraph
    /// (`Sub/inner`) follow a rename of their subgraph node.
    pub(crate) fn engine<'a>(&self, name: &'a str) -> Cow<'a, str> {
        translate(&self.to_engine, name)
    }

    /// The graph's name for the process the engine calls `name`.
    pub(crate) fn graph<'a>(&self, name: &'a str) -> Cow<'a, str> {
        translate(&self.to_graph, name)
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

    /// `port` with its process named as the graph names it.
    pub(crate) fn graph_port(&self, port: &PortRef) -> PortRef {
        PortRef {
            process: self.graph(&port.process).into_owned(),
            ..port.clone()
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
        if graph != engine {
            self.to_graph.insert(engine.clone(), graph.to_string());
            self.to_engine.insert(graph.to_string(), engine);
        }
    }
}

/// `name` through `map`, whole or by its part before the first `/` (a subgraph's processes).
fn translate<'a>(map: &HashMap<String, String>, name: &'a str) -> Cow<'a, str> {
    if map.is_empty() {
        return Cow::Borrowed(name);
    }
    if let Some(renamed) = map.get(name) {
        return Cow::Owned(renamed.clone());
    }
    if let Some((head, rest)) = name.split_once('/')
        && let Some(renamed) = map.get(head)
    {
        return Cow::Owned(format!("{renamed}/{rest}"));
    }
    Cow::Borrowed(name)
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
        assert_eq!(
            names.graph("a/inner"),
            "c/inner",
            "a subgraph's processes follow"
        );
        assert_eq!(names.engine("c/inner"), "a/inner");
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
        assert_eq!(names.graph_port(&engine), port);
    }
}

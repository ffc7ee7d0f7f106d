//! Editing a graph in place, with the semantics live editors (noflo-ui, the FBP protocol)
//! expect: renames reach every reference, removals take what depends on them along, and
//! metadata changes are patches.

use serde_json::Value;

use super::model::{Connection, Edge, ExportedPort, Graph, Group, Iip, Node, Object, PortRef};

/// Why an edit was refused; the graph is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// No process has this id.
    #[error("no node '{0}'")]
    NoNode(String),
    /// A process already has this id.
    #[error("a node '{0}' already exists")]
    NodeExists(String),
    /// No edge joins these ports.
    #[error("no edge {0}")]
    NoEdge(String),
    /// No IIP goes to this port.
    #[error("no initial IP to {0}")]
    NoIip(String),
    /// No exported port has this name.
    #[error("no exported {direction} '{name}'")]
    NoExport {
        /// `inport` or `outport`.
        direction: &'static str,
        /// The name.
        name: String,
    },
    /// An exported port already has this name.
    #[error("an exported {direction} '{name}' already exists")]
    ExportExists {
        /// `inport` or `outport`.
        direction: &'static str,
        /// The name.
        name: String,
    },
    /// No group has this name.
    #[error("no group '{0}'")]
    NoGroup(String),
    /// A group already has this name.
    #[error("a group '{0}' already exists")]
    GroupExists(String),
}

/// What [`Graph::remove_node`] removed, each part in graph order.
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedNode {
    /// The process.
    pub node: Node,
    /// Its edges, in and out.
    pub edges: Vec<Edge>,
    /// The IIPs to its ports.
    pub iips: Vec<Iip>,
    /// The exported inports that pointed at it.
    pub inports: Vec<ExportedPort>,
    /// The exported outports that pointed at it.
    pub outports: Vec<ExportedPort>,
}

/// Which exported ports an edit is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The graph's inports.
    In,
    /// The graph's outports.
    Out,
}

impl Direction {
    /// `inport` or `outport`, for messages.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Direction::In => "inport",
            Direction::Out => "outport",
        }
    }
}

/// Applies a metadata patch: keys merge, a `null` value deletes its key.
pub fn patch_metadata(metadata: &mut Object, patch: &Object) {
    for (key, value) in patch {
        if value.is_null() {
            metadata.remove(key);
        } else {
            metadata.insert(key.clone(), value.clone());
        }
    }
}

impl Graph {
    /// Adds a process, refusing a duplicate id.
    ///
    /// # Errors
    ///
    /// [`EditError::NodeExists`].
    pub fn try_add_node(
        &mut self,
        id: &str,
        component: &str,
        metadata: Option<Object>,
    ) -> Result<&Node, EditError> {
        if self.node(id).is_some() {
            return Err(EditError::NodeExists(id.into()));
        }
        let node = self.add_node(id, component);
        node.metadata = metadata;
        Ok(node)
    }

    /// Removes a process and everything attached to it: its edges, its IIPs, exports of its
    /// ports and its group memberships. Returns what was removed, so an editor can announce
    /// each part before the process itself.
    ///
    /// # Errors
    ///
    /// [`EditError::NoNode`].
    pub fn remove_node(&mut self, id: &str) -> Result<RemovedNode, EditError> {
        let at = self
            .nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| EditError::NoNode(id.into()))?;
        let node = self.nodes.remove(at);
        let mut edges = Vec::new();
        let mut iips = Vec::new();
        self.connections.retain(|c| match c {
            Connection::Edge(e) if e.src.process == id || e.tgt.process == id => {
                edges.push(e.clone());
                false
            }
            Connection::Iip(i) if i.tgt.process == id => {
                iips.push(i.clone());
                false
            }
            _ => true,
        });
        let (inports, kept) = std::mem::take(&mut self.inports)
            .into_iter()
            .partition(|p| p.process == id);
        self.inports = kept;
        let (outports, kept) = std::mem::take(&mut self.outports)
            .into_iter()
            .partition(|p| p.process == id);
        self.outports = kept;
        for group in &mut self.groups {
            group.nodes.retain(|n| n != id);
        }
        Ok(RemovedNode {
            node,
            edges,
            iips,
            inports,
            outports,
        })
    }

    /// Renames a process everywhere it is referenced.
    ///
    /// # Errors
    ///
    /// [`EditError::NoNode`] or [`EditError::NodeExists`].
    pub fn rename_node(&mut self, from: &str, to: &str) -> Result<(), EditError> {
        if self.node(from).is_none() {
            return Err(EditError::NoNode(from.into()));
        }
        if from == to {
            return Ok(());
        }
        if self.node(to).is_some() {
            return Err(EditError::NodeExists(to.into()));
        }
        let rename = |name: &mut String| {
            if name == from {
                *name = to.to_string();
            }
        };
        for node in &mut self.nodes {
            rename(&mut node.id);
        }
        for connection in &mut self.connections {
            match connection {
                Connection::Edge(e) => {
                    rename(&mut e.src.process);
                    rename(&mut e.tgt.process);
                }
                Connection::Iip(i) => rename(&mut i.tgt.process),
            }
        }
        for port in self.inports.iter_mut().chain(self.outports.iter_mut()) {
            rename(&mut port.process);
        }
        for group in &mut self.groups {
            group.nodes.iter_mut().for_each(rename);
        }
        Ok(())
    }

    /// Patches a process's metadata; returns the metadata as it now is.
    ///
    /// # Errors
    ///
    /// [`EditError::NoNode`].
    pub fn change_node(&mut self, id: &str, patch: &Object) -> Result<&Object, EditError> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| EditError::NoNode(id.into()))?;
        let metadata = node.metadata.get_or_insert_with(Object::new);
        patch_metadata(metadata, patch);
        Ok(metadata)
    }

    fn edge_position(&self, src: &PortRef, tgt: &PortRef) -> Result<usize, EditError> {
        self.connections
            .iter()
            .position(|c| matches!(c, Connection::Edge(e) if same_port(&e.src, src) && same_port(&e.tgt, tgt)))
            .ok_or_else(|| EditError::NoEdge(format!("{src} -> {tgt}")))
    }

    /// The edge from `src` to `tgt` (ports compared as edits compare them).
    ///
    /// # Errors
    ///
    /// [`EditError::NoEdge`].
    pub fn edge(&self, src: &PortRef, tgt: &PortRef) -> Result<&Edge, EditError> {
        match &self.connections[self.edge_position(src, tgt)?] {
            Connection::Edge(edge) => Ok(edge),
            Connection::Iip(_) => unreachable!("edge_position only finds edges"),
        }
    }

    /// Removes the edge from `src` to `tgt`.
    ///
    /// # Errors
    ///
    /// [`EditError::NoEdge`].
    pub fn remove_edge(&mut self, src: &PortRef, tgt: &PortRef) -> Result<Edge, EditError> {
        let at = self.edge_position(src, tgt)?;
        match self.connections.remove(at) {
            Connection::Edge(edge) => Ok(edge),
            Connection::Iip(_) => unreachable!("edge_position only finds edges"),
        }
    }

    /// Patches an edge's metadata; returns the metadata as it now is.
    ///
    /// # Errors
    ///
    /// [`EditError::NoEdge`].
    pub fn change_edge(
        &mut self,
        src: &PortRef,
        tgt: &PortRef,
        patch: &Object,
    ) -> Result<&Object, EditError> {
        let at = self.edge_position(src, tgt)?;
        match &mut self.connections[at] {
            Connection::Edge(edge) => {
                let metadata = edge.metadata.get_or_insert_with(Object::new);
                patch_metadata(metadata, patch);
                Ok(metadata)
            }
            Connection::Iip(_) => unreachable!("edge_position only finds edges"),
        }
    }

    /// Removes the IIP to `tgt` (the one with `data`, if given; otherwise the first).
    ///
    /// # Errors
    ///
    /// [`EditError::NoIip`].
    pub fn remove_iip(&mut self, tgt: &PortRef, data: Option<&Value>) -> Result<Iip, EditError> {
        let at = self
            .connections
            .iter()
            .position(|c| {
                matches!(c, Connection::Iip(i)
                    if same_port(&i.tgt, tgt) && data.is_none_or(|d| *d == i.data))
            })
            .ok_or_else(|| EditError::NoIip(tgt.to_string()))?;
        match self.connections.remove(at) {
            Connection::Iip(iip) => Ok(iip),
            Connection::Edge(_) => unreachable!("only IIPs match"),
        }
    }

    fn exports_mut(&mut self, direction: Direction) -> &mut Vec<ExportedPort> {
        match direction {
            Direction::In => &mut self.inports,
            Direction::Out => &mut self.outports,
        }
    }

    /// Exports `port`, refusing a name already used in that direction.
    ///
    /// # Errors
    ///
    /// [`EditError::ExportExists`].
    pub fn add_export(
        &mut self,
        direction: Direction,
        port: ExportedPort,
    ) -> Result<(), EditError> {
        let exports = self.exports_mut(direction);
        if exports.iter().any(|p| p.name == port.name) {
            return Err(EditError::ExportExists {
                direction: direction.label(),
                name: port.name,
            });
        }
        exports.push(port);
        Ok(())
    }

    /// Removes the exported port `name`.
    ///
    /// # Errors
    ///
    /// [`EditError::NoExport`].
    pub fn remove_export(
        &mut self,
        direction: Direction,
        name: &str,
    ) -> Result<ExportedPort, EditError> {
        let exports = self.exports_mut(direction);
        let at =
            exports
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| EditError::NoExport {
                    direction: direction.label(),
                    name: name.into(),
                })?;
        Ok(exports.remove(at))
    }

    /// Renames the exported port `from`.
    ///
    /// # Errors
    ///
    /// [`EditError::NoExport`] or [`EditError::ExportExists`].
    pub fn rename_export(
        &mut self,
        direction: Direction,
        from: &str,
        to: &str,
    ) -> Result<(), EditError> {
        let exports = self.exports_mut(direction);
        if from != to && exports.iter().any(|p| p.name == to) {
            return Err(EditError::ExportExists {
                direction: direction.label(),
                name: to.into(),
            });
        }
        let port =
            exports
                .iter_mut()
                .find(|p| p.name == from)
                .ok_or_else(|| EditError::NoExport {
                    direction: direction.label(),
                    name: from.into(),
                })?;
        port.name = to.into();
        Ok(())
    }

    /// Adds a group, refusing a name already used.
    ///
    /// # Errors
    ///
    /// [`EditError::GroupExists`].
    pub fn add_group(&mut self, group: Group) -> Result<(), EditError> {
        if self.groups.iter().any(|g| g.name == group.name) {
            return Err(EditError::GroupExists(group.name));
        }
        self.groups.push(group);
        Ok(())
    }

    fn group_mut(&mut self, name: &str) -> Result<&mut Group, EditError> {
        self.groups
            .iter_mut()
            .find(|g| g.name == name)
            .ok_or_else(|| EditError::NoGroup(name.into()))
    }

    /// Removes the group `name`.
    ///
    /// # Errors
    ///
    /// [`EditError::NoGroup`].
    pub fn remove_group(&mut self, name: &str) -> Result<Group, EditError> {
        let at = self
            .groups
            .iter()
            .position(|g| g.name == name)
            .ok_or_else(|| EditError::NoGroup(name.into()))?;
        Ok(self.groups.remove(at))
    }

    /// Renames the group `from`.
    ///
    /// # Errors
    ///
    /// [`EditError::NoGroup`] or [`EditError::GroupExists`].
    pub fn rename_group(&mut self, from: &str, to: &str) -> Result<(), EditError> {
        if from != to && self.groups.iter().any(|g| g.name == to) {
            return Err(EditError::GroupExists(to.into()));
        }
        self.group_mut(from)?.name = to.into();
        Ok(())
    }

    /// Patches a group's metadata; returns the metadata as it now is.
    ///
    /// # Errors
    ///
    /// [`EditError::NoGroup`].
    pub fn change_group(&mut self, name: &str, patch: &Object) -> Result<&Object, EditError> {
        let group = self.group_mut(name)?;
        let metadata = group.metadata.get_or_insert_with(Object::new);
        patch_metadata(metadata, patch);
        Ok(metadata)
    }
}

/// Ports match by process, by name ignoring case (as noflo does), and by index.
fn same_port(a: &PortRef, b: &PortRef) -> bool {
    a.process == b.process && a.port.eq_ignore_ascii_case(&b.port) && a.index == b.index
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Graph {
        let mut graph = Graph::new("edit");
        graph.add_node("a", "core/Repeat");
        graph.add_node("b", "core/Drop");
        graph.add_edge(PortRef::new("a", "out"), PortRef::new("b", "in"));
        graph.add_iip(json!("x"), PortRef::new("a", "in"));
        graph.add_inport("IN", "a", "in");
        graph.groups.push(Group {
            name: "g".into(),
            nodes: vec!["a".into(), "b".into()],
            metadata: None,
            extra: Object::new(),
        });
        graph
    }

    fn object(value: Value) -> Object {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn removing_a_node_takes_its_edges_iips_exports_and_memberships() {
        let mut graph = sample();
        let removed = graph.remove_node("a").unwrap();
        assert_eq!(removed.node.id, "a");
        assert_eq!(removed.edges.len(), 1);
        assert_eq!(removed.inports.len(), 1);
        assert!(graph.connections.is_empty());
        assert!(graph.inports.is_empty());
        assert_eq!(graph.groups[0].nodes, vec!["b"]);
        assert_eq!(graph.remove_node("a"), Err(EditError::NoNode("a".into())));
    }

    #[test]
    fn renaming_a_node_reaches_every_reference() {
        let mut graph = sample();
        graph.rename_node("a", "z").unwrap();
        assert!(graph.node("z").is_some());
        assert_eq!(graph.edges().next().unwrap().src.process, "z");
        assert_eq!(graph.iips().next().unwrap().tgt.process, "z");
        assert_eq!(graph.inports[0].process, "z");
        assert_eq!(graph.groups[0].nodes, vec!["z", "b"]);
        assert_eq!(
            graph.rename_node("z", "b"),
            Err(EditError::NodeExists("b".into()))
        );
    }

    #[test]
    fn metadata_changes_are_patches_where_null_deletes() {
        let mut graph = sample();
        graph
            .change_node("a", &object(json!({"x": 1, "label": "A"})))
            .unwrap();
        let now = graph
            .change_node("a", &object(json!({"x": null, "y": 2})))
            .unwrap();
        assert_eq!(Value::Object(now.clone()), json!({"label": "A", "y": 2}));
        let unchanged = graph.change_node("a", &Object::new()).unwrap().clone();
        assert_eq!(Value::Object(unchanged), json!({"label": "A", "y": 2}));
        let edge = graph
            .change_edge(
                &PortRef::new("a", "OUT"),
                &PortRef::new("b", "in"),
                &object(json!({"route": 3})),
            )
            .unwrap();
        assert_eq!(Value::Object(edge.clone()), json!({"route": 3}));
    }

    #[test]
    fn iips_exports_and_groups_are_removed_and_renamed_by_name() {
        let mut graph = sample();
        assert_eq!(
            graph
                .remove_iip(&PortRef::new("a", "in"), None)
                .unwrap()
                .data,
            json!("x")
        );
        assert!(graph.remove_iip(&PortRef::new("a", "in"), None).is_err());
        graph.rename_export(Direction::In, "IN", "INPUT").unwrap();
        assert!(
            graph
                .add_export(Direction::In, ExportedPort::new("INPUT", "b", "in"))
                .is_err()
        );
        assert_eq!(
            graph.remove_export(Direction::In, "INPUT").unwrap().process,
            "a"
        );
        graph.rename_group("g", "h").unwrap();
        graph
            .change_group("h", &object(json!({"description": "d"})))
            .unwrap();
        assert_eq!(graph.remove_group("h").unwrap().nodes.len(), 2);
        assert_eq!(graph.remove_group("h"), Err(EditError::NoGroup("h".into())));
    }

    #[test]
    fn a_duplicate_node_id_is_refused() {
        let mut graph = sample();
        assert_eq!(
            graph.try_add_node("a", "core/Repeat", None).err(),
            Some(EditError::NodeExists("a".into()))
        );
        assert!(graph.try_add_node("c", "core/Repeat", None).is_ok());
    }
}

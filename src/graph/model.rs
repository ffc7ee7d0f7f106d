//! The graph data model.

use serde_json::{Map, Value};

/// A JSON object: metadata, properties and unknown keys kept as they were read.
pub type Object = Map<String, Value>;

/// A graph: processes, the connections between their ports, exported ports, groups and metadata.
///
/// Fields the model does not know are kept in `extra` maps at every level, so a graph read from
/// a file is written back with nothing lost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// Whether port names are case sensitive (`caseSensitive` in FBP JSON); absent if unset.
    pub case_sensitive: Option<bool>,
    /// Graph properties: `name`, `description`, `environment`, ... as read.
    pub properties: Object,
    /// The processes, in the order they were declared.
    pub nodes: Vec<Node>,
    /// Edges and IIPs, in the order they were declared.
    pub connections: Vec<Connection>,
    /// Exported inports: outside data enters the graph here.
    pub inports: Vec<ExportedPort>,
    /// Exported outports: data leaves the graph here.
    pub outports: Vec<ExportedPort>,
    /// Groups of processes (an editor's notion; they do not affect running).
    pub groups: Vec<Group>,
    /// Top-level keys the model does not know.
    pub extra: Object,
}

/// A process: one instance of a component in a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The process id, unique in its graph.
    pub id: String,
    /// The component's name, e.g. `core/Repeat`.
    pub component: String,
    /// Metadata (position, label, ...), if any.
    pub metadata: Option<Object>,
    /// Keys the model does not know.
    pub extra: Object,
}

/// One end of a connection: a port of a process, with an index for array ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortRef {
    /// The process id.
    pub process: String,
    /// The port name.
    pub port: String,
    /// The index on an array port, if given.
    pub index: Option<usize>,
}

/// An edge: IPs flow from an outport to an inport.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// The sending end (an outport).
    pub src: PortRef,
    /// The receiving end (an inport).
    pub tgt: PortRef,
    /// Metadata (route, `capacity`, ...), if any.
    pub metadata: Option<Object>,
    /// Keys the model does not know.
    pub extra: Object,
}

/// An initial IP: data delivered to an inport before anything else, usually configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Iip {
    /// The value, as JSON (see [`crate::Payload::from_json`] for how it becomes bytes).
    pub data: Value,
    /// The receiving inport.
    pub tgt: PortRef,
    /// Metadata, if any.
    pub metadata: Option<Object>,
    /// Keys the model does not know.
    pub extra: Object,
}

/// An entry of a graph's `connections`: an edge or an IIP.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// An edge between two processes.
    Edge(Edge),
    /// An initial IP.
    Iip(Iip),
}

/// A port of a process exported under a name of the graph's own.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedPort {
    /// The name outside the graph.
    pub name: String,
    /// The process inside.
    pub process: String,
    /// Its port.
    pub port: String,
    /// The index on an array port, if given.
    pub index: Option<usize>,
    /// Metadata, if any.
    pub metadata: Option<Object>,
    /// Keys the model does not know.
    pub extra: Object,
}

/// A named group of processes.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// The ids of its processes.
    pub nodes: Vec<String>,
    /// Metadata, if any.
    pub metadata: Option<Object>,
    /// Keys the model does not know.
    pub extra: Object,
}

impl PortRef {
    /// A reference to `port` of `process`, without an index.
    pub fn new(process: impl Into<String>, port: impl Into<String>) -> PortRef {
        PortRef {
            process: process.into(),
            port: port.into(),
            index: None,
        }
    }

    /// The same reference with an array index.
    pub fn with_index(mut self, index: usize) -> PortRef {
        self.index = Some(index);
        self
    }
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}.{}[{}]", self.process, self.port, i),
            None => write!(f, "{}.{}", self.process, self.port),
        }
    }
}

impl Edge {
    /// An edge from `src` to `tgt` without metadata.
    pub fn new(src: PortRef, tgt: PortRef) -> Edge {
        Edge {
            src,
            tgt,
            metadata: None,
            extra: Object::new(),
        }
    }

    /// The largest capacity an edge may have, in IPs: queues are allocated up front.
    pub const MAX_CAPACITY: usize = 1 << 20;

    /// The capacity set in the edge's metadata (`capacity`), if any and valid (a positive
    /// integer up to [`Edge::MAX_CAPACITY`]; see [`Edge::capacity_problem`]).
    pub fn capacity(&self) -> Option<usize> {
        self.requested_capacity()
            .filter(|c| (1..=Edge::MAX_CAPACITY).contains(c))
    }

    /// What is wrong with the `capacity` in the edge's metadata, if anything.
    pub fn capacity_problem(&self) -> Option<String> {
        let value = self.metadata.as_ref()?.get("capacity")?;
        match self.requested_capacity() {
            Some(c) if (1..=Edge::MAX_CAPACITY).contains(&c) => None,
            _ => Some(format!(
                "capacity {value} is not an integer from 1 to {}",
                Edge::MAX_CAPACITY
            )),
        }
    }

    fn requested_capacity(&self) -> Option<usize> {
        let value = self.metadata.as_ref()?.get("capacity")?;
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .and_then(|c| usize::try_from(c).ok())
    }
}

impl std::fmt::Display for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.src, self.tgt)
    }
}

impl Iip {
    /// An IIP of `data` into `tgt`, without metadata.
    pub fn new(data: Value, tgt: PortRef) -> Iip {
        Iip {
            data,
            tgt,
            metadata: None,
            extra: Object::new(),
        }
    }
}

impl Graph {
    /// An empty graph with the given name (the `name` property).
    pub fn new(name: &str) -> Graph {
        let mut graph = Graph::default();
        graph
            .properties
            .insert("name".into(), Value::String(name.into()));
        graph
    }

    /// The graph's name, from its `name` property.
    pub fn name(&self) -> Option<&str> {
        self.properties.get("name").and_then(Value::as_str)
    }

    /// The process with the given id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Adds a process (does not check that the id is free; see [`Graph::validate`]).
    pub fn add_node(&mut self, id: impl Into<String>, component: impl Into<String>) -> &mut Node {
        self.nodes.push(Node {
            id: id.into(),
            component: component.into(),
            metadata: None,
            extra: Object::new(),
        });
        let last = self.nodes.len() - 1;
        &mut self.nodes[last]
    }

    /// Adds an edge.
    pub fn add_edge(&mut self, src: PortRef, tgt: PortRef) -> &mut Self {
        self.connections.push(Connection::Edge(Edge::new(src, tgt)));
        self
    }

    /// Adds an IIP.
    pub fn add_iip(&mut self, data: Value, tgt: PortRef) -> &mut Self {
        self.connections.push(Connection::Iip(Iip::new(data, tgt)));
        self
    }

    /// Exports `port` of `process` as the graph inport `name`.
    pub fn add_inport(&mut self, name: &str, process: &str, port: &str) -> &mut Self {
        self.inports.push(ExportedPort::new(name, process, port));
        self
    }

    /// Exports `port` of `process` as the graph outport `name`.
    pub fn add_outport(&mut self, name: &str, process: &str, port: &str) -> &mut Self {
        self.outports.push(ExportedPort::new(name, process, port));
        self
    }

    /// The edges, in order.
    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.connections.iter().filter_map(|c| match c {
            Connection::Edge(e) => Some(e),
            Connection::Iip(_) => None,
        })
    }

    /// The IIPs, in order.
    pub fn iips(&self) -> impl Iterator<Item = &Iip> {
        self.connections.iter().filter_map(|c| match c {
            Connection::Iip(i) => Some(i),
            Connection::Edge(_) => None,
        })
    }
}

impl ExportedPort {
    /// Exports `port` of `process` under `name`.
    pub fn new(name: &str, process: &str, port: &str) -> ExportedPort {
        ExportedPort {
            name: name.into(),
            process: process.into(),
            port: port.into(),
            index: None,
            metadata: None,
            extra: Object::new(),
        }
    }

    /// The inner port this export stands for.
    pub fn target(&self) -> PortRef {
        PortRef {
            process: self.process.clone(),
            port: self.port.clone(),
            index: self.index,
        }
    }
}

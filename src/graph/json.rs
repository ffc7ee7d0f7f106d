//! The FBP JSON graph format, as noflo, fbp-graph and noflo-ui read and write it.
//!
//! ```json
//! { "caseSensitive": false, "properties": {"name": "hello"},
//!   "inports": {}, "outports": {}, "groups": [],
//!   "processes": {"say": {"component": "core/Repeat", "metadata": {}}},
//!   "connections": [{"data": "hi", "tgt": {"process": "say", "port": "in"}}] }
//! ```
//!
//! Reading keeps the order of processes and connections, duplicate process ids (so validation
//! can name them), and every key the model does not know; writing emits them back.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::error::Error;
use super::model::{Connection, Edge, ExportedPort, Graph, Group, Iip, Node, Object, PortRef};

impl Graph {
    /// Reads a graph from FBP JSON text.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] with the line and column of the first problem: malformed JSON, a field of
    /// the wrong type, a connection that is neither an edge nor an IIP.
    pub fn from_json(text: &str) -> Result<Graph, Error> {
        let raw: RawGraph = serde_json::from_str(text).map_err(|e| Error::Json {
            line: e.line().max(1),
            column: e.column().max(1),
            message: strip_position(&e.to_string()),
        })?;
        Ok(raw.into_graph())
    }

    /// The graph as an FBP JSON value, in the key order the noflo `fbp` package emits.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if let Some(case_sensitive) = self.case_sensitive {
            out.insert("caseSensitive".into(), Value::Bool(case_sensitive));
        }
        out.insert("properties".into(), Value::Object(self.properties.clone()));
        out.insert("inports".into(), exports_to_json(&self.inports));
        out.insert("outports".into(), exports_to_json(&self.outports));
        out.insert(
            "groups".into(),
            Value::Array(self.groups.iter().map(group_to_json).collect()),
        );
        let processes = self
            .nodes
            .iter()
            .map(|n| (n.id.clone(), node_to_json(n)))
            .collect();
        out.insert("processes".into(), Value::Object(processes));
        out.insert(
            "connections".into(),
            Value::Array(self.connections.iter().map(connection_to_json).collect()),
        );
        for (key, value) in &self.extra {
            out.insert(key.clone(), value.clone());
        }
        Value::Object(out)
    }

    /// The graph as pretty-printed FBP JSON text, ending in a newline.
    pub fn to_json_string(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_json())
            .unwrap_or_else(|_| unreachable!("a serde_json::Value always serializes"));
        text.push('\n');
        text
    }
}

/// serde_json appends " at line L column C"; the position is reported in fields of its own.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

fn with_metadata(mut out: Object, metadata: &Option<Object>, extra: &Object) -> Value {
    if let Some(metadata) = metadata {
        out.insert("metadata".into(), Value::Object(metadata.clone()));
    }
    for (key, value) in extra {
        out.insert(key.clone(), value.clone());
    }
    Value::Object(out)
}

fn node_to_json(node: &Node) -> Value {
    let mut out = Object::new();
    out.insert("component".into(), Value::String(node.component.clone()));
    with_metadata(out, &node.metadata, &node.extra)
}

fn port_to_json(port: &PortRef) -> Value {
    let mut out = Object::new();
    out.insert("process".into(), Value::String(port.process.clone()));
    out.insert("port".into(), Value::String(port.port.clone()));
    if let Some(index) = port.index {
        out.insert("index".into(), Value::from(index));
    }
    Value::Object(out)
}

fn connection_to_json(connection: &Connection) -> Value {
    let mut out = Object::new();
    match connection {
        Connection::Edge(edge) => {
            out.insert("src".into(), port_to_json(&edge.src));
            out.insert("tgt".into(), port_to_json(&edge.tgt));
            with_metadata(out, &edge.metadata, &edge.extra)
        }
        Connection::Iip(iip) => {
            out.insert("data".into(), iip.data.clone());
            out.insert("tgt".into(), port_to_json(&iip.tgt));
            with_metadata(out, &iip.metadata, &iip.extra)
        }
    }
}

fn exports_to_json(ports: &[ExportedPort]) -> Value {
    let mut out = Object::new();
    for port in ports {
        let mut entry = Object::new();
        entry.insert("process".into(), Value::String(port.process.clone()));
        entry.insert("port".into(), Value::String(port.port.clone()));
        if let Some(index) = port.index {
            entry.insert("index".into(), Value::from(index));
        }
        out.insert(
            port.name.clone(),
            with_metadata(entry, &port.metadata, &port.extra),
        );
    }
    Value::Object(out)
}

fn group_to_json(group: &Group) -> Value {
    let mut out = Object::new();
    out.insert("name".into(), Value::String(group.name.clone()));
    out.insert(
        "nodes".into(),
        Value::Array(group.nodes.iter().cloned().map(Value::String).collect()),
    );
    with_metadata(out, &group.metadata, &group.extra)
}

#[derive(serde::Deserialize)]
#[serde(expecting = "an FBP JSON graph (an object with processes and connections)")]
struct RawGraph {
    #[serde(rename = "caseSensitive", default)]
    case_sensitive: Option<bool>,
    #[serde(default)]
    properties: Option<Object>,
    #[serde(default)]
    processes: Option<Entries<RawNode>>,
    #[serde(default)]
    connections: Option<Vec<Connection>>,
    #[serde(default)]
    inports: Option<Entries<RawExport>>,
    #[serde(default)]
    outports: Option<Entries<RawExport>>,
    #[serde(default)]
    groups: Option<Vec<RawGroup>>,
    #[serde(flatten)]
    extra: Object,
}

impl RawGraph {
    fn into_graph(self) -> Graph {
        let exports = |entries: Option<Entries<RawExport>>| -> Vec<ExportedPort> {
            entries
                .map(|e| e.0)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, raw)| ExportedPort {
                    name,
                    process: raw.process,
                    port: raw.port,
                    index: raw.index,
                    metadata: raw.metadata,
                    extra: raw.extra,
                })
                .collect()
        };
        Graph {
            case_sensitive: self.case_sensitive,
            properties: self.properties.unwrap_or_default(),
            nodes: self
                .processes
                .map(|e| e.0)
                .unwrap_or_default()
                .into_iter()
                .map(|(id, raw)| Node {
                    id,
                    component: raw.component,
                    metadata: raw.metadata,
                    extra: raw.extra,
                })
                .collect(),
            connections: self.connections.unwrap_or_default(),
            inports: exports(self.inports),
            outports: exports(self.outports),
            groups: self
                .groups
                .unwrap_or_default()
                .into_iter()
                .map(|g| Group {
                    name: g.name,
                    nodes: g.nodes,
                    metadata: g.metadata,
                    extra: g.extra,
                })
                .collect(),
            extra: self.extra,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(expecting = "a process (an object with a component)")]
struct RawNode {
    component: String,
    #[serde(default)]
    metadata: Option<Object>,
    #[serde(flatten)]
    extra: Object,
}

#[derive(serde::Deserialize)]
#[serde(expecting = "an exported port (an object with process and port)")]
struct RawExport {
    process: String,
    port: String,
    #[serde(default, deserialize_with = "index")]
    index: Option<usize>,
    #[serde(default)]
    metadata: Option<Object>,
    #[serde(flatten)]
    extra: Object,
}

#[derive(serde::Deserialize)]
#[serde(expecting = "a group (an object with name and nodes)")]
struct RawGroup {
    name: String,
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    metadata: Option<Object>,
    #[serde(flatten)]
    extra: Object,
}

#[derive(serde::Deserialize)]
#[serde(expecting = "a port reference (an object with process and port)")]
struct RawPortRef {
    process: String,
    port: String,
    #[serde(default, deserialize_with = "index")]
    index: Option<usize>,
}

/// An array index: a non-negative integer, a string holding one, or null.
fn index<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("invalid port index {n}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("invalid port index \"{s}\""))),
        Some(other) => Err(de::Error::custom(format!("invalid port index {other}"))),
    }
}

impl From<RawPortRef> for PortRef {
    fn from(raw: RawPortRef) -> PortRef {
        PortRef {
            process: raw.process,
            port: raw.port,
            index: raw.index,
        }
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut object = Object::deserialize(deserializer)?;
        let take_port = |object: &mut Object, key: &str| -> Result<PortRef, D::Error> {
            let value = object
                .remove(key)
                .ok_or_else(|| de::Error::custom(format!("connection without \"{key}\"")))?;
            RawPortRef::deserialize(value)
                .map(PortRef::from)
                .map_err(|e| de::Error::custom(format!("connection \"{key}\": {e}")))
        };
        let take_metadata = |object: &mut Object| -> Result<Option<Object>, D::Error> {
            match object.remove("metadata") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(m)) => Ok(Some(m)),
                Some(_) => Err(de::Error::custom(
                    "connection \"metadata\" must be an object",
                )),
            }
        };
        let tgt = take_port(&mut object, "tgt")?;
        if object.contains_key("src") {
            let src = take_port(&mut object, "src")?;
            let metadata = take_metadata(&mut object)?;
            Ok(Connection::Edge(Edge {
                src,
                tgt,
                metadata,
                extra: object,
            }))
        } else if let Some(data) = object.remove("data") {
            let metadata = take_metadata(&mut object)?;
            Ok(Connection::Iip(Iip {
                data,
                tgt,
                metadata,
                extra: object,
            }))
        } else {
            Err(de::Error::custom(format!(
                "connection to {tgt} has neither \"src\" (an edge) nor \"data\" (an IIP)"
            )))
        }
    }
}

/// A JSON object read as an ordered list of entries, duplicate keys kept.
struct Entries<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, T>()? {
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{
  "caseSensitive": false,
  "properties": {"name": "full", "environment": {"type": "noflo-nodejs"}, "x-custom": [1, 2]},
  "inports": {"in": {"process": "a", "port": "in", "metadata": {"x": 1}}},
  "outports": {"out": {"process": "b", "port": "out"}},
  "groups": [{"name": "g", "nodes": ["a", "b"], "metadata": {"description": "d"}}],
  "processes": {
    "a": {"component": "core/Repeat", "metadata": {"x": 10, "y": 20, "label": "A"}},
    "b": {"component": "core/Repeat", "unknownKey": true}
  },
  "connections": [
    {"src": {"process": "a", "port": "out", "index": 2}, "tgt": {"process": "b", "port": "in"},
     "metadata": {"route": 1, "capacity": 7}, "extraEdgeKey": "kept"},
    {"data": {"k": [1, 2]}, "tgt": {"process": "a", "port": "in"}}
  ],
  "topLevelUnknown": {"kept": true}
}"#;

    #[test]
    fn load_then_save_keeps_every_field() {
        let graph = Graph::from_json(FULL).unwrap();
        let original: Value = serde_json::from_str(FULL).unwrap();
        assert_eq!(graph.to_json(), original);
        assert_eq!(Graph::from_json(&graph.to_json_string()).unwrap(), graph);
    }

    #[test]
    fn edges_iips_and_capacity_are_read() {
        let graph = Graph::from_json(FULL).unwrap();
        let edge = graph.edges().next().unwrap();
        assert_eq!(edge.src.index, Some(2));
        assert_eq!(edge.capacity(), Some(7));
        assert_eq!(graph.iips().count(), 1);
        assert_eq!(
            graph.nodes[1].extra.get("unknownKey"),
            Some(&Value::Bool(true))
        );
    }

    #[test]
    fn numbers_read_and_written_back_keep_their_value() {
        // Found by fuzzing: without serde_json's float_roundtrip, this read back as
        // 5.2333333333333327e42.
        let text = r#"{"x": 5233333333333333333333333333333333333333330, "y": 0.1, "z": 1e-300}"#;
        let graph = Graph::from_json(text).unwrap();
        let again = Graph::from_json(&graph.to_json_string()).unwrap();
        assert_eq!(again, graph);
    }

    #[test]
    fn duplicate_process_ids_are_kept_for_validation() {
        let text = r#"{"processes": {"a": {"component": "x"}, "a": {"component": "y"}}}"#;
        assert_eq!(Graph::from_json(text).unwrap().nodes.len(), 2);
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err = Graph::from_json("{\n  \"processes\": {,}\n}").unwrap_err();
        assert!(matches!(err, Error::Json { line: 2, .. }), "{err}");
    }

    #[test]
    fn a_connection_without_src_or_data_is_an_error() {
        let text = r#"{"connections": [{"tgt": {"process": "a", "port": "in"}}]}"#;
        let err = Graph::from_json(text).unwrap_err().to_string();
        assert!(err.contains("neither \"src\""), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let err = Graph::from_json(r#"{"processes": {"a": {"component": 3}}}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}

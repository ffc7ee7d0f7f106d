//! The `runtime` subprotocol: what the runtime is, its main graph's ports, and packets in and
//! out of exported ports.

use serde_json::{Map, Value, json};

use super::fields;
use super::{Capability, Handled, Message, Payload, Reply, VERSION, unsupported};
use crate::component::PortSpec;
use crate::graph::{Direction, Graph};
use crate::ip::{Ip, Payload as IpPayload};
use crate::runtime::Runtime;

/// Handles `runtime:<command>`.
pub(crate) fn handle(runtime: &mut Runtime, reply: &Reply, command: &str, p: &Payload) -> Handled {
    match command {
        "getruntime" => {
            let capabilities = reply.capabilities(runtime);
            reply.send(runtime, runtime_message(runtime, capabilities));
            if capabilities.has(Capability::ProtocolRuntime)
                && let Some(ports) = ports_message(runtime)
            {
                reply.send(runtime, ports);
            }
            Ok(())
        }
        "packet" => packet(runtime, reply, p),
        other => unsupported("runtime", other),
    }
}

/// `runtime:runtime` for a client holding `capabilities`.
fn runtime_message(runtime: &Runtime, capabilities: super::Capabilities) -> Message {
    let config = runtime.config();
    let mut payload = Map::new();
    payload.insert("type".into(), Value::from("flowd"));
    payload.insert("version".into(), Value::from(VERSION));
    payload.insert("capabilities".into(), json!(capabilities.names()));
    payload.insert("allCapabilities".into(), json!(runtime.offered().names()));
    payload.insert("id".into(), Value::from(config.id.as_str()));
    payload.insert("label".into(), Value::from(config.label.as_str()));
    payload.insert("namespace".into(), Value::from(config.namespace.as_str()));
    payload.insert(
        "repositoryVersion".into(),
        Value::from(env!("CARGO_PKG_VERSION")),
    );
    if let Some(main) = runtime.main_graph() {
        payload.insert("graph".into(), Value::from(main));
    }
    Message::new("runtime", "runtime", Value::Object(payload))
}

/// `runtime:ports` for the main graph, if there is one.
fn ports_message(runtime: &Runtime) -> Option<Message> {
    let id = runtime.main_graph()?;
    let graph = runtime.graph(id)?;
    let ports = |direction: Direction| -> Vec<Value> {
        let exports = match direction {
            Direction::In => &graph.inports,
            Direction::Out => &graph.outports,
        };
        exports
            .iter()
            .map(|export| {
                let spec = inner_port(runtime, graph, &export.process, &export.port, direction);
                let mut port = Map::new();
                port.insert("id".into(), Value::from(export.name.as_str()));
                port.insert(
                    "type".into(),
                    Value::from(spec.as_ref().map_or("all", |s| s.datatype.as_str())),
                );
                if let Some(spec) = spec {
                    if !spec.description.is_empty() {
                        port.insert("description".into(), Value::from(spec.description));
                    }
                    port.insert("addressable".into(), Value::from(spec.array));
                    port.insert("required".into(), Value::from(spec.required));
                }
                Value::Object(port)
            })
            .collect()
    };
    Some(Message::new(
        "runtime",
        "ports",
        json!({ "graph": id, "inPorts": ports(Direction::In), "outPorts": ports(Direction::Out) }),
    ))
}

/// The spec of the port an export points at, if its node and component are known.
fn inner_port(
    runtime: &Runtime,
    graph: &Graph,
    node: &str,
    port: &str,
    direction: Direction,
) -> Option<PortSpec> {
    let spec = runtime.registry().spec(&graph.node(node)?.component)?;
    match direction {
        Direction::In => spec.find_inport(port).cloned(),
        Direction::Out => spec.find_outport(port).cloned(),
    }
}

/// Sends `runtime:ports` of the main graph to every client that may receive it.
pub(crate) fn broadcast_ports(runtime: &mut Runtime) {
    if let Some(message) = ports_message(runtime) {
        runtime.clients.broadcast(&message, None);
    }
}

/// `runtime:packet`: a packet into an exported inport of a running graph.
fn packet(runtime: &mut Runtime, reply: &Reply, p: &Payload) -> Handled {
    let name = "runtime:packet";
    let port = fields::string(p, "port", name)?;
    let event = fields::string(p, "event", name)?;
    let graph = fields::graph(p)?;
    let payload = p.get("payload").cloned().unwrap_or(Value::Null);
    let ip = match event {
        "data" => Some(Ip::Data(IpPayload::from_json(&payload))),
        "begingroup" => Some(Ip::Open(label(&payload))),
        "endgroup" => Some(Ip::Close(label(&payload))),
        "connect" | "disconnect" => None,
        other => {
            return Err(format!(
                "{name}: unknown event '{other}' (expected connect, begingroup, data, endgroup \
                 or disconnect)"
            ));
        }
    };
    let Some(entry) = runtime.graphs.get(graph) else {
        return Err("Requested graph not found".into());
    };
    if !entry.graph.inports.iter().any(|e| e.name == port) {
        return Err(format!(
            "{name}: graph '{graph}' has no exported inport '{port}'"
        ));
    }
    if let Some(ip) = ip {
        let crate::runtime::NetworkState::Running(live) = &entry.network else {
            return Err(format!(
                "{name}: the network of graph '{graph}' is not running; start it first"
            ));
        };
        live.send(port, ip).map_err(|e| format!("{name}: {e}"))?;
    }
    let echo = fields::echo(p, &["port", "event", "graph", "type", "schema", "payload"]);
    reply.send(
        runtime,
        Message::new("runtime", "packetsent", Value::Object(echo)),
    );
    Ok(())
}

/// A bracket's label: a string as its text, anything else as JSON text, nothing as empty.
fn label(value: &Value) -> IpPayload {
    match value {
        Value::Null => IpPayload::empty(),
        other => IpPayload::from_json(other),
    }
}

//! The `component` subprotocol: list components, read a graph's source, and create subgraph
//! components from graph source.

use serde_json::{Map, Value, json};

use super::fields;
use super::{Handled, Message, Payload, Reply, unsupported};
use crate::component::{ComponentSpec, Origin, PortSpec};
use crate::graph::Format;
use crate::runtime::Runtime;

/// Handles `component:<command>`.
pub(crate) fn handle(runtime: &mut Runtime, reply: &Reply, command: &str, p: &Payload) -> Handled {
    match command {
        "list" => {
            let specs = runtime.registry().specs();
            for spec in &specs {
                reply.send(runtime, component_message(spec));
            }
            reply.send(
                runtime,
                Message::new("component", "componentsready", Value::from(specs.len())),
            );
            Ok(())
        }
        "getsource" => {
            let name = fields::string(p, "name", "component:getsource")?;
            let source = source_of(runtime, name)?;
            reply.send(runtime, source);
            Ok(())
        }
        "source" => set_source(runtime, reply, p),
        other => unsupported("component", other),
    }
}

/// `component:component` for a spec.
pub(crate) fn component_message(spec: &ComponentSpec) -> Message {
    let ports = |ports: &[PortSpec]| -> Vec<Value> { ports.iter().map(port_definition).collect() };
    let mut payload = Map::new();
    payload.insert("name".into(), Value::from(spec.name.as_str()));
    if !spec.description.is_empty() {
        payload.insert("description".into(), Value::from(spec.description.as_str()));
    }
    if !spec.icon.is_empty() {
        payload.insert("icon".into(), Value::from(spec.icon.as_str()));
    }
    payload.insert("subgraph".into(), Value::from(spec.subgraph));
    payload.insert("inPorts".into(), Value::from(ports(&spec.inports)));
    payload.insert("outPorts".into(), Value::from(ports(&spec.outports)));
    Message::new("component", "component", Value::Object(payload))
}

fn port_definition(port: &PortSpec) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), Value::from(port.name.as_str()));
    map.insert("type".into(), Value::from(port.datatype.as_str()));
    if !port.description.is_empty() {
        map.insert("description".into(), Value::from(port.description.as_str()));
    }
    map.insert("addressable".into(), Value::from(port.array));
    map.insert("required".into(), Value::from(port.required));
    Value::Object(map)
}

/// `component:source` for a graph (by id, or as `<library>/<id>`, or a registered subgraph);
/// for any other component, its source for reading ([`readonly_source`]).
fn source_of(runtime: &Runtime, name: &str) -> Result<Message, String> {
    let namespace = runtime.config().namespace.as_str();
    let (library, bare) = match name.split_once('/') {
        Some((library, bare)) => (library, bare),
        None => (namespace, name),
    };
    let in_library = |graph: &&crate::graph::Graph| {
        library == namespace
            || graph.properties.get("library").and_then(Value::as_str) == Some(library)
    };
    let graph = runtime
        .graph(name)
        .or_else(|| runtime.graph(bare).filter(in_library))
        .cloned()
        .map(std::sync::Arc::new)
        .or_else(|| runtime.registry().graph(name));
    if let Some(graph) = graph {
        let library = graph
            .properties
            .get("library")
            .and_then(Value::as_str)
            .unwrap_or(library)
            .to_string();
        return Ok(Message::new(
            "component",
            "source",
            json!({
                "name": bare,
                "library": library,
                "language": "json",
                "code": graph.to_json_string(),
            }),
        ));
    }
    let registry = runtime.registry();
    let spec = registry
        .spec(name)
        .ok_or_else(|| format!("no component or graph named '{name}'"))?;
    let origin = registry.origin(name).unwrap_or(Origin::Builtin);
    Ok(readonly_source(&spec, &origin))
}

/// The source of a component that is not a graph, for reading only: a core component's Rust
/// source; for a WebAssembly component or a shared object, what it declares, its file, and the
/// interface it implements. noflo-ui shows any language it does not know as plain code.
fn readonly_source(spec: &ComponentSpec, origin: &Origin) -> Message {
    let (library, bare) = spec
        .name
        .split_once('/')
        .unwrap_or(("", spec.name.as_str()));
    let (language, code) = match (origin, crate::component::native::source(&spec.name)) {
        (Origin::Builtin, Some(source)) => ("rust", source.to_string()),
        (Origin::File(path), _) if path.extension().is_some_and(|e| e == "wasm") => (
            "wit",
            format!(
                "{}// Loaded from {}; it implements this world:\n\n{}",
                declaration(spec),
                path.display(),
                include_str!("../../wit/component.wit")
            ),
        ),
        (Origin::File(path), _) => (
            "c",
            format!(
                "{}// A native shared object loaded from {}; it implements this interface:\n\n{}",
                declaration(spec),
                path.display(),
                include_str!("../../guest-sdk/include/flowd.h")
            ),
        ),
        _ => ("text", declaration(spec)),
    };
    Message::new(
        "component",
        "source",
        json!({"name": bare, "library": library, "language": language, "code": code}),
    )
}

/// What a component declares, as comment lines: its name, description and ports.
fn declaration(spec: &ComponentSpec) -> String {
    let mut text = format!("// {}: {}\n", spec.name, spec.description);
    for (direction, ports) in [("inport", &spec.inports), ("outport", &spec.outports)] {
        for port in ports {
            let array = if port.array { "[]" } else { "" };
            let required = if port.required { ", required" } else { "" };
            text.push_str(&format!(
                "// {direction} {}{array} ({}{required}): {}\n",
                port.name, port.datatype, port.description
            ));
        }
    }
    text
}

/// `component:source`: a graph (FBP JSON or .fbp) becomes a subgraph component.
fn set_source(runtime: &mut Runtime, reply: &Reply, p: &Payload) -> Handled {
    let command = "component:source";
    let name = fields::string(p, "name", command)?;
    let language = fields::string(p, "language", command)?;
    let code = match p.get("code") {
        Some(Value::String(code)) => code,
        _ => return Err(format!("{command}: 'code' must be a string")),
    };
    let format = match language {
        "json" => Format::Json,
        "fbp" => Format::Fbp,
        other => {
            return Err(format!(
                "flowd cannot build a component from {other} source; it takes graphs (language \
                 json or fbp) as subgraphs. Compile other components to WebAssembly and put the \
                 .wasm file in a --components directory"
            ));
        }
    };
    let library = match p.get("library") {
        Some(Value::String(l)) if !l.is_empty() => l.clone(),
        _ => runtime.config().namespace.clone(),
    };
    let full_name = if name.contains('/') {
        name.to_string()
    } else {
        format!("{library}/{name}")
    };
    let mut graph = format
        .parse(code)
        .map_err(|e| format!("{command}: graph '{full_name}': {e}"))?;
    graph
        .properties
        .entry("library")
        .or_insert_with(|| Value::from(library.as_str()));
    let spec = runtime
        .registry()
        .register_graph(&full_name, graph)
        .map_err(|e| format!("{command}: graph '{full_name}': {e}"))?;
    reply.broadcast(runtime, component_message(&spec));
    Ok(())
}

/// Registers the graph `id` again under its component name, if it has one (a subgraph made
/// with `graph:clear`), and tells every client of the component when it is new or its spec
/// (ports, description, icon) changed. A graph that is not a valid component (it contains
/// itself, or leaves a required port unconnected) keeps its last registration; the log says
/// why.
pub(crate) fn publish_graph(runtime: &mut Runtime, reply: &Reply, id: &str) {
    let Some((name, graph)) = runtime
        .graphs
        .get(id)
        .and_then(|e| e.component.clone().zip(Some(e.graph.clone())))
    else {
        return;
    };
    let before = runtime.registry().spec(&name);
    match runtime.registry().register_graph(&name, graph) {
        Ok(spec) if before.as_ref() != Some(&spec) => {
            reply.broadcast(runtime, component_message(&spec));
        }
        Ok(_) => {}
        Err(error) => tracing::debug!("graph '{id}' is not usable as component {name}: {error}"),
    }
}

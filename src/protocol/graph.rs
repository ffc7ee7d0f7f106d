//! The `graph` subprotocol: the 20 edit commands.
//!
//! Each edit is checked against the graph and the registry first (unknown component or port,
//! duplicate id), then applied, then echoed to every client that follows graphs: the echo
//! carries the fields of the applied change, and the full resulting metadata for the
//! `change*` patches.

use serde_json::{Map, Value, json};

use super::capability::GRAPH_COMMANDS;
use super::fields::{self, port_json};
use super::{Handled, Message, Payload, Reply, unsupported};
use crate::graph::{Direction, ExportedPort, Graph, Group, Iip, Object, PortRef};
use crate::runtime::{LiveEdit, Runtime};

/// Handles `graph:<command>`.
pub(crate) fn handle(runtime: &mut Runtime, reply: &Reply, command: &str, p: &Payload) -> Handled {
    if command == "clear" {
        return clear(runtime, reply, p);
    }
    if !GRAPH_COMMANDS.contains(&command) {
        return unsupported("graph", command);
    }
    let id = fields::graph(p)?.to_string();
    if runtime.graph(&id).is_none() {
        return Err("Requested graph not found".into());
    }
    let name = format!("graph:{command}");
    runtime.report_pending(&id);
    let messages = {
        let registry = runtime.registry.clone();
        let Some(entry) = runtime.graphs.get_mut(&id) else {
            return Err("Requested graph not found".into());
        };
        let messages = edit(&mut entry.graph, &registry, command, &name, p)?;
        if command == "renamenode" {
            let (from, to) = (
                fields::string(p, "from", &name)?,
                fields::string(p, "to", &name)?,
            );
            entry.node_renamed(from, to);
        }
        messages
    };
    runtime.edited(&id);
    let edits = if runtime.is_running(&id) {
        live_edits(runtime, &id, command, p, &messages)
    } else {
        Vec::new()
    };
    // Also true when a removed node took exports along.
    let exports_changed = messages
        .iter()
        .any(|(c, _)| c.ends_with("inport") || c.ends_with("outport"));
    for (command, mut payload) in messages {
        payload.insert("graph".into(), Value::from(id.as_str()));
        reply.broadcast(
            runtime,
            Message::new("graph", command, Value::Object(payload)),
        );
    }
    if exports_changed && runtime.main_graph() == Some(id.as_str()) {
        super::runtime::broadcast_ports(runtime);
    }
    // After the echo, so that a client hears of the edit before of what it did to the network.
    for edit in edits {
        runtime.follow(&id, edit);
    }
    super::component::publish_graph(runtime, reply, &id);
    Ok(())
}

/// `graph:clear`: creates the graph, or empties it.
fn clear(runtime: &mut Runtime, reply: &Reply, p: &Payload) -> Handled {
    let id = match p.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err("No graph ID provided".into()),
    };
    let mut graph = Graph::new(&id);
    for key in ["name", "library", "icon", "description"] {
        match p.get(key) {
            Some(Value::String(v)) => {
                graph.properties.insert(key.into(), Value::from(v.as_str()));
            }
            None | Some(Value::Null) => {}
            Some(_) => return Err(format!("graph:clear: '{key}' must be a string")),
        }
    }
    let main = match p.get("main") {
        Some(Value::Bool(main)) => *main,
        None | Some(Value::Null) => false,
        Some(_) => return Err("graph:clear: 'main' must be a boolean".into()),
    };
    if runtime.is_running(&id) {
        super::network::stop(runtime, None, &id);
    }
    let previous = runtime.graphs.get(&id).and_then(|e| e.component.clone());
    runtime.add_graph(&id, graph, main);
    runtime.edited(&id);
    let echo = fields::echo(p, &["id", "name", "library", "main", "icon", "description"]);
    reply.broadcast(runtime, Message::new("graph", "clear", Value::Object(echo)));
    if runtime.main_graph() == Some(id.as_str()) {
        super::runtime::broadcast_ports(runtime);
    }
    // As the reference runtime does: a graph that is not the main graph is a component at
    // once, `<library>/<id>`, so that a node of it can be added before it has any content.
    let component = (!main).then(|| subgraph_name(runtime, p, &id));
    if let Some(old) = previous.filter(|old| Some(old) != component.as_ref()) {
        runtime
            .registry()
            .unregister_from(&old, &crate::component::Origin::Graph);
    }
    if let Some(entry) = runtime.graphs.get_mut(&id) {
        entry.component = component;
    }
    super::component::publish_graph(runtime, reply, &id);
    Ok(())
}

/// The component name of the graph `id` that `graph:clear` made (not the main graph).
fn subgraph_name(runtime: &Runtime, p: &Payload, id: &str) -> String {
    let library = match p.get("library") {
        Some(Value::String(library)) => Some(library.as_str()),
        _ => None,
    };
    crate::runtime::component_name(&runtime.config().namespace, library, id)
}

type Echoes = Vec<(&'static str, Map<String, Value>)>;

/// Applies one edit to `graph`; returns the messages announcing it (without `graph`).
fn edit(
    graph: &mut Graph,
    registry: &crate::component::Registry,
    command: &str,
    name: &str,
    p: &Payload,
) -> Result<Echoes, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{name}: {e}");
    let one = |command: &'static str, payload: Value| -> Result<Echoes, String> {
        match payload {
            Value::Object(map) => Ok(vec![(command, map)]),
            _ => Ok(vec![(command, Map::new())]),
        }
    };
    match command {
        "addnode" => {
            let id = fields::string(p, "id", name)?;
            let component = fields::string(p, "component", name)?;
            let metadata = fields::metadata(p, "metadata", name)?;
            Graph::check_component(id, component, registry).map_err(|e| fail(&e))?;
            graph
                .try_add_node(id, component, metadata.clone())
                .map_err(|e| fail(&e))?;
            let mut echo = fields::echo(p, &["id", "component"]);
            if let Some(metadata) = metadata {
                echo.insert("metadata".into(), Value::Object(metadata));
            }
            Ok(vec![("addnode", echo)])
        }
        "removenode" => {
            let id = fields::string(p, "id", name)?;
            let removed = graph.remove_node(id).map_err(|e| fail(&e))?;
            // Everything that went with the node is announced first, as noflo does.
            let mut echoes: Echoes = Vec::new();
            for e in &removed.edges {
                let mut m = Map::new();
                m.insert("src".into(), port_json(&e.src));
                m.insert("tgt".into(), port_json(&e.tgt));
                echoes.push(("removeedge", m));
            }
            for iip in &removed.iips {
                let mut m = Map::new();
                m.insert("src".into(), json!({ "data": iip.data }));
                m.insert("tgt".into(), port_json(&iip.tgt));
                echoes.push(("removeinitial", m));
            }
            for (command, exports) in [
                ("removeinport", &removed.inports),
                ("removeoutport", &removed.outports),
            ] {
                for export in exports {
                    let mut m = Map::new();
                    m.insert("public".into(), Value::from(export.name.as_str()));
                    echoes.push((command, m));
                }
            }
            echoes.push(("removenode", fields::echo(p, &["id"])));
            Ok(echoes)
        }
        "renamenode" => {
            let from = fields::string(p, "from", name)?;
            let to = fields::string(p, "to", name)?;
            graph.rename_node(from, to).map_err(|e| fail(&e))?;
            one("renamenode", json!({ "from": from, "to": to }))
        }
        "changenode" => {
            let id = fields::string(p, "id", name)?;
            let patch = fields::patch(p, name)?;
            let metadata = graph.change_node(id, patch).map_err(|e| fail(&e))?;
            one("changenode", json!({ "id": id, "metadata": metadata }))
        }
        "addedge" => {
            let src = fields::port(p, "src", name)?;
            let tgt = fields::port(p, "tgt", name)?;
            let metadata = fields::metadata(p, "metadata", name)?;
            let context = format!("edge {src} -> {tgt}");
            graph
                .check_port(&context, &src, Direction::Out, registry)
                .map_err(|e| fail(&e))?;
            graph
                .check_port(&context, &tgt, Direction::In, registry)
                .map_err(|e| fail(&e))?;
            if graph.edge(&src, &tgt).is_ok() {
                return Err(format!("{name}: the {context} already exists"));
            }
            let mut edge = crate::graph::Edge::new(src.clone(), tgt.clone());
            edge.metadata = metadata.clone();
            if let Some(problem) = edge.capacity_problem() {
                return Err(format!("{name}: {context}: {problem}"));
            }
            graph.connections.push(crate::graph::Connection::Edge(edge));
            let mut echo = Map::new();
            echo.insert("src".into(), port_json(&src));
            echo.insert("tgt".into(), port_json(&tgt));
            if let Some(metadata) = metadata {
                echo.insert("metadata".into(), Value::Object(metadata));
            }
            Ok(vec![("addedge", echo)])
        }
        "removeedge" => {
            let src = fields::port(p, "src", name)?;
            let tgt = fields::port(p, "tgt", name)?;
            graph.remove_edge(&src, &tgt).map_err(|e| fail(&e))?;
            one(
                "removeedge",
                json!({ "src": port_json(&src), "tgt": port_json(&tgt) }),
            )
        }
        "changeedge" => {
            let src = fields::port(p, "src", name)?;
            let tgt = fields::port(p, "tgt", name)?;
            let patch = fields::patch(p, name)?;
            let mut probe = graph.edge(&src, &tgt).map_err(|e| fail(&e))?.clone();
            crate::graph::patch_metadata(probe.metadata.get_or_insert_with(Object::new), patch);
            if let Some(problem) = probe.capacity_problem() {
                return Err(format!("{name}: edge {src} -> {tgt}: {problem}"));
            }
            let metadata = graph.change_edge(&src, &tgt, patch).map_err(|e| fail(&e))?;
            one(
                "changeedge",
                json!({ "src": port_json(&src), "tgt": port_json(&tgt), "metadata": metadata }),
            )
        }
        "addinitial" => {
            let data = match p.get("src") {
                Some(Value::Object(src)) if src.contains_key("data") => src["data"].clone(),
                _ => return Err(format!("{name}: 'src' must be an object {{\"data\"}}")),
            };
            let tgt = fields::port(p, "tgt", name)?;
            let metadata = fields::metadata(p, "metadata", name)?;
            graph
                .check_port(&format!("IIP -> {tgt}"), &tgt, Direction::In, registry)
                .map_err(|e| fail(&e))?;
            let mut iip = Iip::new(data.clone(), tgt.clone());
            iip.metadata = metadata.clone();
            graph.connections.push(crate::graph::Connection::Iip(iip));
            let mut echo = Map::new();
            echo.insert("src".into(), json!({ "data": data }));
            echo.insert("tgt".into(), port_json(&tgt));
            if let Some(metadata) = metadata {
                echo.insert("metadata".into(), Value::Object(metadata));
            }
            Ok(vec![("addinitial", echo)])
        }
        "removeinitial" => {
            let tgt = fields::port(p, "tgt", name)?;
            let data = match p.get("src") {
                Some(Value::Object(src)) => src.get("data"),
                _ => None,
            };
            let removed = graph.remove_iip(&tgt, data).map_err(|e| fail(&e))?;
            one(
                "removeinitial",
                json!({ "src": { "data": removed.data }, "tgt": port_json(&tgt) }),
            )
        }
        "addinport" | "addoutport" => {
            let direction = direction_of(command);
            let public = fields::string(p, "public", name)?;
            let node = fields::string(p, "node", name)?;
            let port = fields::string(p, "port", name)?;
            let metadata = fields::metadata(p, "metadata", name)?;
            let mut export = ExportedPort::new(public, node, port);
            export.metadata = metadata.clone();
            graph
                .check_port(
                    &format!("exported {} '{public}'", direction.label()),
                    &export.target(),
                    direction,
                    registry,
                )
                .map_err(|e| fail(&e))?;
            graph.add_export(direction, export).map_err(|e| fail(&e))?;
            let mut echo = fields::echo(p, &["public", "node", "port"]);
            if let Some(metadata) = metadata {
                echo.insert("metadata".into(), Value::Object(metadata));
            }
            Ok(vec![(static_command(command), echo)])
        }
        "removeinport" | "removeoutport" => {
            let public = fields::string(p, "public", name)?;
            graph
                .remove_export(direction_of(command), public)
                .map_err(|e| fail(&e))?;
            one(static_command(command), json!({ "public": public }))
        }
        "renameinport" | "renameoutport" => {
            let from = fields::string(p, "from", name)?;
            let to = fields::string(p, "to", name)?;
            graph
                .rename_export(direction_of(command), from, to)
                .map_err(|e| fail(&e))?;
            one(static_command(command), json!({ "from": from, "to": to }))
        }
        "addgroup" => {
            let group_name = fields::string(p, "name", name)?;
            let nodes = match p.get("nodes") {
                Some(Value::Array(nodes)) => nodes
                    .iter()
                    .map(|n| n.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| format!("{name}: 'nodes' must be an array of node ids"))?,
                _ => return Err(format!("{name}: 'nodes' must be an array of node ids")),
            };
            if let Some(missing) = nodes.iter().find(|n| graph.node(n).is_none()) {
                return Err(format!("{name}: no node '{missing}'"));
            }
            let metadata = fields::metadata(p, "metadata", name)?;
            let group = Group {
                name: group_name.into(),
                nodes: nodes.clone(),
                metadata: metadata.clone(),
                extra: Object::new(),
            };
            graph.add_group(group).map_err(|e| fail(&e))?;
            let mut echo = Map::new();
            echo.insert("name".into(), Value::from(group_name));
            echo.insert("nodes".into(), json!(nodes));
            if let Some(metadata) = metadata {
                echo.insert("metadata".into(), Value::Object(metadata));
            }
            Ok(vec![("addgroup", echo)])
        }
        "removegroup" => {
            let group = fields::string(p, "name", name)?;
            graph.remove_group(group).map_err(|e| fail(&e))?;
            one("removegroup", json!({ "name": group }))
        }
        "renamegroup" => {
            let from = fields::string(p, "from", name)?;
            let to = fields::string(p, "to", name)?;
            graph.rename_group(from, to).map_err(|e| fail(&e))?;
            one("renamegroup", json!({ "from": from, "to": to }))
        }
        "changegroup" => {
            let group = fields::string(p, "name", name)?;
            let patch = fields::patch(p, name)?;
            let metadata = graph.change_group(group, patch).map_err(|e| fail(&e))?;
            one(
                "changegroup",
                json!({ "name": group, "metadata": metadata }),
            )
        }
        other => unsupported("graph", other).map(|()| Vec::new()),
    }
}

/// The changes a running network must follow after `command` was applied to graph `id`,
/// announced as `messages`.
fn live_edits(
    runtime: &Runtime,
    id: &str,
    command: &str,
    p: &Payload,
    messages: &[(&'static str, Payload)],
) -> Vec<LiveEdit> {
    let mut edits = Vec::new();
    if command == "removenode" {
        // Exports the node took along; the engine removes its edges and IIPs itself.
        for (announced, payload) in messages {
            if matches!(*announced, "removeinport" | "removeoutport")
                && let Ok(public) = fields::string(payload, "public", command)
            {
                edits.push(LiveEdit::RemoveExport(
                    direction_of(announced),
                    public.to_string(),
                ));
            }
        }
    }
    edits.extend(live_edit(runtime, id, command, p));
    edits
}

/// The change to a running network that `command` itself makes.
fn live_edit(runtime: &Runtime, id: &str, command: &str, p: &Payload) -> Option<LiveEdit> {
    let name = format!("graph:{command}");
    match command {
        "addnode" => {
            let node = fields::string(p, "id", &name).ok()?;
            Some(LiveEdit::AddNode(runtime.graph(id)?.node(node)?.clone()))
        }
        "renamenode" => Some(LiveEdit::RenameNode {
            from: fields::string(p, "from", &name).ok()?.to_string(),
            to: fields::string(p, "to", &name).ok()?.to_string(),
        }),
        "removenode" => Some(LiveEdit::RemoveNode(
            fields::string(p, "id", &name).ok()?.to_string(),
        )),
        "changenode" => Some(LiveEdit::ChangeNode(
            fields::string(p, "id", &name).ok()?.to_string(),
        )),
        "addedge" => {
            let src = fields::port(p, "src", &name).ok()?;
            let tgt = fields::port(p, "tgt", &name).ok()?;
            Some(LiveEdit::AddEdge(
                runtime.graph(id)?.edge(&src, &tgt).ok()?.clone(),
            ))
        }
        "changeedge" => {
            let src = fields::port(p, "src", &name).ok()?;
            let tgt = fields::port(p, "tgt", &name).ok()?;
            // The network tells edges apart by ports, not indexes: all of those count.
            let same_ports = |port: &PortRef, other: &PortRef| {
                port.process == other.process && port.port.eq_ignore_ascii_case(&other.port)
            };
            let edges = runtime
                .graph(id)?
                .edges()
                .filter(|e| same_ports(&e.src, &src) && same_ports(&e.tgt, &tgt))
                .cloned()
                .collect();
            Some(LiveEdit::ChangeEdge(edges))
        }
        "removeedge" => Some(LiveEdit::RemoveEdge(
            fields::port(p, "src", &name).ok()?,
            fields::port(p, "tgt", &name).ok()?,
        )),
        "addinitial" => {
            let data = p.get("src")?.get("data")?.clone();
            Some(LiveEdit::AddInitial(
                fields::port(p, "tgt", &name).ok()?,
                data,
            ))
        }
        "addinport" | "addoutport" => Some(LiveEdit::AddExport(
            direction_of(command),
            fields::string(p, "public", &name).ok()?.to_string(),
        )),
        "removeinport" | "removeoutport" => Some(LiveEdit::RemoveExport(
            direction_of(command),
            fields::string(p, "public", &name).ok()?.to_string(),
        )),
        "renameinport" | "renameoutport" => Some(LiveEdit::RenameExport {
            direction: direction_of(command),
            from: fields::string(p, "from", &name).ok()?.to_string(),
            to: fields::string(p, "to", &name).ok()?.to_string(),
        }),
        _ => None,
    }
}

fn direction_of(command: &str) -> Direction {
    if command.contains("inport") {
        Direction::In
    } else {
        Direction::Out
    }
}

fn static_command(command: &str) -> &'static str {
    match command {
        "addinport" => "addinport",
        "addoutport" => "addoutport",
        "removeinport" => "removeinport",
        "removeoutport" => "removeoutport",
        "renameinport" => "renameinport",
        _ => "renameoutport",
    }
}

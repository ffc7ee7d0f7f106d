//! The `network` subprotocol: start, stop and watch a graph's network; persist the main graph.
//!
//! States follow the reference runtime: a network that finished by itself is still `started`
//! (but not `running`) until it is stopped; `stop` always answers `network:stopped`.

use serde_json::{Value, json};

use super::fields::{self, port_json};
use super::{Handled, Message, Payload, Reply, unsupported};
use crate::engine::EdgeId;
use crate::runtime::{Live, NetworkState, Runtime, now, stopped_message};

/// Handles `network:<command>`.
pub(crate) fn handle(runtime: &mut Runtime, reply: &Reply, command: &str, p: &Payload) -> Handled {
    if command == "persist" {
        let path = runtime.persist()?;
        tracing::debug!("persisted to {}", path.display());
        reply.send(runtime, Message::new("network", "persist", json!({})));
        return Ok(());
    }
    if !matches!(command, "start" | "stop" | "getstatus" | "debug" | "edges") {
        return unsupported("network", command);
    }
    let id = fields::graph(p)?.to_string();
    if runtime.graph(&id).is_none() {
        return Err("Requested graph not found".into());
    }
    match command {
        "start" => start(runtime, reply, &id),
        "stop" => {
            stop(runtime, Some(reply), &id);
            Ok(())
        }
        "getstatus" => {
            runtime.settle(&id);
            let (started, running) = flags(runtime, &id);
            reply.send(
                runtime,
                Message::new(
                    "network",
                    "status",
                    json!({ "graph": id, "running": running, "started": started }),
                ),
            );
            Ok(())
        }
        "debug" => {
            // Every edge reports its packets already; `debug` only needs to be well formed.
            // The protocol defines no answer to it (strict clients reject any).
            match p.get("enable") {
                Some(Value::Bool(_)) => Ok(()),
                _ => Err("network:debug: 'enable' must be a boolean".into()),
            }
        }
        _ => edges(runtime, reply, &id, p),
    }
}

fn flags(runtime: &Runtime, id: &str) -> (bool, bool) {
    runtime
        .graphs
        .get(id)
        .map_or((false, false), |e| e.network.flags())
}

/// `network:start`: starts the graph's network, unless it runs already.
fn start(runtime: &mut Runtime, reply: &Reply, id: &str) -> Handled {
    start_network(runtime, id)?;
    reply.report(runtime, id, started_message(id));
    Ok(())
}

/// Starts the network of graph `id`, unless it runs already; says nothing to clients.
pub(crate) fn start_network(runtime: &mut Runtime, id: &str) -> Result<(), String> {
    if runtime.is_running(id) {
        return Ok(());
    }
    let generation = runtime.next_generation();
    let Some(graph) = runtime.graph(id).cloned() else {
        return Err("Requested graph not found".into());
    };
    let selection = runtime.graphs.get(id).and_then(|e| e.watched.clone());
    let live = Live::start(runtime, id, &graph, generation, selection)
        .map_err(|e| format!("cannot start the network of graph '{id}': {e}"))?;
    if let Some(entry) = runtime.graphs.get_mut(id) {
        entry.network = NetworkState::Running(Box::new(live));
    }
    Ok(())
}

/// `network:started` for graph `id`, now.
pub(crate) fn started_message(id: &str) -> Message {
    Message::new(
        "network",
        "started",
        json!({ "graph": id, "time": now(), "started": true, "running": true }),
    )
}

/// Stops the network of graph `id` (if it runs) and tells every client it stopped (`reply`:
/// the request this answers, if any).
pub(crate) fn stop(runtime: &mut Runtime, reply: Option<&Reply>, id: &str) {
    runtime.report_hidden_output(id);
    let uptime = match runtime.graphs.get_mut(id) {
        Some(entry) => {
            let uptime = match &entry.network {
                NetworkState::Running(live) => {
                    live.stop();
                    live.uptime()
                }
                NetworkState::Finished { uptime } => *uptime,
                NetworkState::Idle | NetworkState::Stopped => Default::default(),
            };
            entry.network = NetworkState::Stopped;
            uptime
        }
        None => return,
    };
    let message = stopped_message(id, false, uptime);
    match reply {
        Some(reply) => reply.report(runtime, id, message),
        None => runtime.report(id, &message),
    }
}

/// `network:edges`: which edges report their packets. An entry without `src` selects the
/// IIPs into its `tgt`; the empty list ends the selection (every edge and IIP again).
fn edges(runtime: &mut Runtime, reply: &Reply, id: &str, p: &Payload) -> Handled {
    let name = "network:edges";
    let Some(Value::Array(list)) = p.get("edges") else {
        return Err(format!("{name}: 'edges' must be an array of {{src, tgt}}"));
    };
    let mut selection = Vec::with_capacity(list.len());
    for edge in list {
        let Value::Object(edge) = edge else {
            return Err(format!("{name}: each edge must be an object {{src, tgt}}"));
        };
        let tgt = fields::port(edge, "tgt", name)?;
        selection.push(match edge.get("src") {
            None | Some(Value::Null) => EdgeId::initial(tgt),
            Some(_) => EdgeId {
                src: fields::port(edge, "src", name)?,
                tgt,
            },
        });
    }
    let echo: Vec<Value> = selection
        .iter()
        .map(|e| {
            if e.is_initial() {
                json!({ "tgt": port_json(&e.tgt) })
            } else {
                json!({ "src": port_json(&e.src), "tgt": port_json(&e.tgt) })
            }
        })
        .collect();
    let selection = (!selection.is_empty()).then_some(selection);
    if let Some(entry) = runtime.graphs.get_mut(id) {
        if let NetworkState::Running(live) = &mut entry.network {
            live.watch_only(selection.as_deref());
        }
        entry.watched = selection;
    }
    reply.send(
        runtime,
        Message::new("network", "edges", json!({ "graph": id, "edges": echo })),
    );
    Ok(())
}

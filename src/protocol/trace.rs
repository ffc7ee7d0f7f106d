//! The `trace` subprotocol: record a graph's network events and dump them as a Flowtrace.

use serde_json::{Value, json};

use super::fields;
use super::{Handled, Message, Payload, Reply, unsupported};
use crate::runtime::{DEFAULT_BUFFER_BYTES, Runtime, Trace};

/// Handles `trace:<command>`.
pub(crate) fn handle(runtime: &mut Runtime, reply: &Reply, command: &str, p: &Payload) -> Handled {
    if !matches!(command, "start" | "stop" | "clear" | "dump") {
        return unsupported("trace", command);
    }
    let id = fields::graph(p)?.to_string();
    let runtime_id = runtime.config().id.clone();
    let Some(entry) = runtime.graphs.get_mut(&id) else {
        return Err("Requested graph not found".into());
    };
    let answer = match command {
        "start" => {
            let buffer = match p.get("buffersize") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(
                    n.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or("trace:start: 'buffersize' must be a positive integer (bytes)")?,
                ),
                Some(_) => return Err("trace:start: 'buffersize' must be a number".into()),
            };
            let trace = entry
                .trace
                .get_or_insert_with(|| Trace::new(buffer.unwrap_or(DEFAULT_BUFFER_BYTES)));
            if let Some(buffer) = buffer {
                trace.set_capacity(buffer);
            }
            trace.set_recording(true);
            Message::new(
                "trace",
                "start",
                Value::Object(fields::echo(p, &["graph", "buffersize"])),
            )
        }
        "stop" => {
            if let Some(trace) = &mut entry.trace {
                trace.set_recording(false);
            }
            Message::new("trace", "stop", json!({ "graph": id }))
        }
        "clear" => {
            if let Some(trace) = &mut entry.trace {
                trace.clear();
            }
            Message::new("trace", "clear", json!({ "graph": id }))
        }
        _ => {
            match p.get("type").and_then(Value::as_str) {
                Some("flowtrace.json") | None => {}
                Some(other) => {
                    return Err(format!(
                        "trace:dump: unknown type '{other}' (flowd writes flowtrace.json)"
                    ));
                }
            }
            let empty;
            let trace = match &entry.trace {
                Some(trace) => trace,
                None => {
                    empty = Trace::new(1);
                    &empty
                }
            };
            let flowtrace = trace.dump(&id, &entry.graph, &runtime_id);
            Message::new(
                "trace",
                "dump",
                json!({ "graph": id, "type": "flowtrace.json", "flowtrace": flowtrace }),
            )
        }
    };
    reply.send(runtime, answer);
    Ok(())
}

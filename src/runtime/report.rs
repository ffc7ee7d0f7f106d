//! Reporting a running network to clients: its events turned into protocol messages, in order.
//!
//! Each running network has a reporter thread that turns its [`Event`]s into protocol messages
//! and broadcasts them. Events are only ever taken from the channel under the runtime's lock, by
//! the reporter or by [`Runtime::settle`], so clients see them in order, and a status asked
//! right after the last packet already knows that the network finished. The reporter takes the
//! lock for a bounded batch of events at a time, so that requests are served while a busy
//! network reports.

use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Select};
use serde_json::{Map, Value, json};

use super::Runtime;
use super::network::{Live, NetworkState, edge_key};
use crate::engine::{EdgeId, Event};
use crate::graph::PortRef;
use crate::ip::{Ip, Payload};
use crate::protocol::Message;
use crate::protocol::port_json;

/// IP payloads longer than this are shortened in `network:data` (noflo-ui only shows them).
const MAX_DATA_BYTES: usize = crate::engine::SHOWN_BYTES;

/// Events the reporter turns into messages per hold of the runtime's lock: a busy network must
/// not keep requests waiting.
const REPORT_BATCH: usize = 256;

/// Lines a network prints that clients are shown at once, and then per second: a loop
/// printing without end must not fill every client's connection with lines nobody can read
/// (and the answers to their requests behind them).
const OUTPUT_LINES_PER_SECOND: u32 = 1_000;

/// How long a network is quiet before clients are told how many of its last lines were not
/// shown.
const QUIET_BEFORE_COUNTING_HIDDEN: Duration = Duration::from_secs(1);

/// How long a status request waits for a running network to finish.
const SETTLE_GRACE: Duration = Duration::from_millis(150);

/// Runs the thread that reports a network's events until it ends.
pub(super) fn spawn_reporter(
    runtime: Weak<Mutex<Runtime>>,
    graph: String,
    generation: u64,
    events: Receiver<Event>,
) -> std::io::Result<()> {
    crate::threads::spawn("flowd-reporter", move || {
        loop {
            // Wait without taking: the event is taken under the lock, in order.
            let mut select = Select::new();
            select.recv(&events);
            let quiet = select.ready_timeout(QUIET_BEFORE_COUNTING_HIDDEN).is_err();
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            let mut locked = runtime.lock().unwrap_or_else(|e| e.into_inner());
            if quiet {
                locked.report_hidden_output(&graph);
                continue;
            }
            // A bug turning one event into messages must not silence the network for good.
            let reported = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                locked.report_events(&graph, generation, REPORT_BATCH)
            }));
            match reported {
                Ok(true) => {}
                Ok(false) => return,
                Err(panic) => tracing::error!(
                    graph = %graph,
                    "reporting an event panicked: {}",
                    crate::engine::panic_message(&*panic)
                ),
            }
            drop(locked);
            // Let waiting requests have the lock before the next batch of a busy network.
            std::thread::yield_now();
        }
    })?;
    Ok(())
}

impl Runtime {
    /// Reports up to `max` events waiting for the network of `graph_id`; returns false once
    /// that network is gone or over (the reporter then ends).
    pub(crate) fn report_events(&mut self, graph_id: &str, generation: u64, max: usize) -> bool {
        for _ in 0..max {
            let Some(entry) = self.graphs.get_mut(graph_id) else {
                return false;
            };
            let NetworkState::Running(live) = &mut entry.network else {
                return false;
            };
            if live.generation != generation {
                return false;
            }
            let event = match live.events.try_recv() {
                Ok(event) => event,
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    // Every process is gone without a last event: only after a stop.
                    return false;
                }
            };
            match &event {
                Event::ProcessEnded { .. } => live.last_ended = Some(Instant::now()),
                Event::Deadlock { message, .. } => tracing::warn!(graph = graph_id, "{message}"),
                Event::RuntimeLost {
                    message, resumes, ..
                } => {
                    tracing::warn!(graph = graph_id, "{message}");
                    if !resumes {
                        live.stop();
                    }
                }
                _ => {}
            }
            let mut messages = Vec::new();
            if let Event::Output { .. } = event {
                match live.output.admit(Instant::now()) {
                    None => continue,
                    Some(0) => {}
                    Some(hidden) => messages.push(hidden_lines_message(hidden)),
                }
            }
            messages.extend(event_messages(graph_id, live, &event));
            // A network stops itself only on a deadlock (a client's stop ends this reporter
            // before): it is over as if finished.
            if let Event::Finished { uptime } | Event::Stopped { uptime } = event {
                self.report_hidden_output(graph_id);
                let Some(entry) = self.graphs.get_mut(graph_id) else {
                    return false;
                };
                entry.network = NetworkState::Finished { uptime };
                let message = stopped_message(graph_id, true, uptime);
                self.report(graph_id, &message);
                return false;
            }
            for message in messages {
                self.report(graph_id, &message);
            }
        }
        true
    }

    /// Says how many output lines of the running network of `graph_id` were not shown since
    /// the last line shown, if any: the end of a flood, once the network went quiet or is
    /// stopping (otherwise the count rides on the next line shown).
    pub(crate) fn report_hidden_output(&mut self, graph_id: &str) {
        let hidden = match self.graphs.get_mut(graph_id).map(|e| &mut e.network) {
            Some(NetworkState::Running(live)) => live.output.take_hidden(),
            _ => 0,
        };
        if hidden > 0 {
            self.report(graph_id, &hidden_lines_message(hidden));
        }
    }

    /// Reports what the running network of `graph_id` did until now: before an edit, so that
    /// the edit's echo follows it and it is reported under the names it happened under.
    pub(crate) fn report_pending(&mut self, graph_id: &str) {
        if let Some(NetworkState::Running(live)) = self.graphs.get(graph_id).map(|e| &e.network) {
            // What is waiting now; what comes meanwhile happened after the edit.
            let (generation, waiting) = (live.generation, live.events.len());
            self.report_events(graph_id, generation, waiting);
        }
    }

    /// Brings a running network's state up to date before answering about it: reports its
    /// waiting events, and if it is young or winding down (a process ended lately), waits
    /// briefly for it to finish: a network whose last packets were just reported is usually a
    /// few hundred microseconds from its end. A long-running network is answered at once.
    pub(crate) fn settle(&mut self, graph_id: &str) {
        let deadline = Instant::now() + SETTLE_GRACE;
        loop {
            let Some(entry) = self.graphs.get(graph_id) else {
                return;
            };
            let NetworkState::Running(live) = &entry.network else {
                return;
            };
            let generation = live.generation;
            let winding_down = live.started.elapsed() < SETTLE_GRACE * 4
                || live.last_ended.is_some_and(|t| t.elapsed() < SETTLE_GRACE);
            if Instant::now() >= deadline {
                // A busy network is answered as it is: it may report events for ever.
                return;
            }
            if !live.events.is_empty() {
                self.report_events(graph_id, generation, REPORT_BATCH);
            } else if !winding_down {
                return;
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Broadcasts a network message and records it in the graph's trace, if one is on.
    pub(crate) fn report(&mut self, graph_id: &str, message: &Message) {
        self.report_to(graph_id, message, None);
    }

    /// As [`Runtime::report`], with the requester's copy answering its request.
    pub(crate) fn report_to(
        &mut self,
        graph_id: &str,
        message: &Message,
        requester: Option<(super::ClientId, Option<&Value>)>,
    ) {
        if let Some(trace) = self.graphs.get_mut(graph_id).and_then(|e| e.trace.as_mut()) {
            trace.record(message);
        }
        self.clients.broadcast(message, requester);
    }
}

/// `network:stopped` for a network that ran `uptime`.
pub(crate) fn stopped_message(graph_id: &str, started: bool, uptime: Duration) -> Message {
    Message::new(
        "network",
        "stopped",
        json!({
            "graph": graph_id,
            "time": now(),
            "uptime": uptime.as_secs_f64(),
            "started": started,
            "running": false,
        }),
    )
}

/// The current time, ISO-8601 in UTC with milliseconds.
pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A network's output lines against a token bucket ([`crate::engine::Rate`]):
/// [`OUTPUT_LINES_PER_SECOND`] at once, then as many a second; the lines beyond are counted
/// and said with the next line shown, or when the network goes quiet, finishes or stops
/// ([`Runtime::report_hidden_output`]).
pub(crate) struct OutputLimit {
    rate: crate::engine::Rate,
    hidden: u64,
}

impl Default for OutputLimit {
    fn default() -> Self {
        OutputLimit {
            rate: crate::engine::Rate::new(OUTPUT_LINES_PER_SECOND),
            hidden: 0,
        }
    }
}

impl OutputLimit {
    /// Whether a line printed `now` is shown: `Some(lines hidden before it)`, or `None`.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.rate.take_at(1, now) == 0 {
            self.hidden += 1;
            return None;
        }
        Some(self.take_hidden())
    }

    /// The lines hidden since the last line shown, counting again from zero.
    fn take_hidden(&mut self) -> u64 {
        std::mem::take(&mut self.hidden)
    }
}

/// `network:output` saying that `hidden` lines were not shown.
fn hidden_lines_message(hidden: u64) -> Message {
    Message::new(
        "network",
        "output",
        json!({
            "message": format!(
                "({hidden} lines not shown: the network printed more than \
                 {OUTPUT_LINES_PER_SECOND} a second)"
            ),
            "type": "message",
        }),
    )
}

/// The protocol messages for one engine event (none for events clients do not see).
fn event_messages(graph_id: &str, live: &Live, event: &Event) -> Vec<Message> {
    match event {
        Event::Initial { tgt, value } => {
            let tgt = live.names.graph_port(tgt);
            if !live.shows_initial(&tgt) {
                return Vec::new();
            }
            let id = format!("DATA -> {} {}()", tgt.port.to_uppercase(), tgt.process);
            let ip = Ip::Data(Payload::from_json(value));
            let packet = Packet {
                ip: &ip,
                size: ip.payload().len(),
                secure: false,
            };
            let mut message = packet_message(graph_id, id, None, &tgt, packet);
            // The graph's own value: a JSON string stays a string, even if its text is a
            // number.
            if ip.payload().len() <= MAX_DATA_BYTES {
                message.payload["data"] = value.clone();
            }
            vec![message]
        }
        Event::Data { edge, ip } => data_message(graph_id, live, edge, ip, ip.payload().len())
            .into_iter()
            .collect(),
        Event::RemoteData { edge, ip, size } => {
            // The other runtime watches every edge: the selection applies here.
            if !live.shows(edge) {
                return Vec::new();
            }
            data_message(graph_id, live, edge, ip, *size)
                .into_iter()
                .collect()
        }
        Event::ProcessError { node, message } => vec![process_error_message(
            graph_id,
            &live.names.graph(node),
            message,
        )],
        Event::Output { message, .. } => vec![Message::new(
            "network",
            "output",
            json!({ "message": message, "type": "message" }),
        )],
        Event::Deadlock { processes, message } => {
            let on_nodes = processes
                .iter()
                .map(|(node, wait)| (node.as_str(), format!("deadlock: {wait}")));
            network_error(graph_id, live, on_nodes, message)
        }
        Event::RuntimeLost {
            processes, message, ..
        } => {
            let on_nodes = processes
                .iter()
                .map(|node| (node.as_str(), message.clone()));
            network_error(graph_id, live, on_nodes, message)
        }
        Event::RuntimeResumed { runtime } => vec![Message::new(
            "network",
            "output",
            json!({
                "message": format!("runtime '{runtime}' is back and runs its processes again"),
                "type": "message",
            }),
        )],
        Event::Started
        | Event::ProcessEnded { .. }
        | Event::Finished { .. }
        | Event::Stopped { .. } => Vec::new(),
    }
}

/// `network:error` saying `message`, after a `network:processerror` on each of `on_nodes`
/// (engine name, error): noflo-ui shows process errors on their nodes, and the network error
/// says it all.
fn network_error<'a>(
    graph_id: &str,
    live: &Live,
    on_nodes: impl Iterator<Item = (&'a str, String)>,
    message: &str,
) -> Vec<Message> {
    let mut messages: Vec<Message> = on_nodes
        .map(|(node, error)| process_error_message(graph_id, &live.names.graph(node), &error))
        .collect();
    messages.push(Message::new(
        "network",
        "error",
        json!({ "message": message, "graph": graph_id }),
    ));
    messages
}

/// `network:data` (or a bracket) for `ip` on `edge`, its whole payload `size` bytes; none for
/// edges to and from exported ports, which are reported as `runtime:packet`.
fn data_message(
    graph_id: &str,
    live: &Live,
    edge: &EdgeId,
    ip: &Ip,
    size: usize,
) -> Option<Message> {
    if edge.src.process.is_empty() || edge.tgt.process.is_empty() {
        return None;
    }
    // Per packet: no key is built, and no name copied, unless some edge needs it.
    let secure = !live.secure.is_empty() && live.secure.contains(&edge_key(&edge.src, &edge.tgt));
    let (src, tgt) = (
        live.names.graph_port(&edge.src),
        live.names.graph_port(&edge.tgt),
    );
    let packet = Packet { ip, size, secure };
    Some(packet_message(
        graph_id,
        edge_label(&src, &tgt),
        Some(&src),
        &tgt,
        packet,
    ))
}

/// A packet as a client is shown it.
struct Packet<'a> {
    ip: &'a Ip,
    /// The size of its whole payload (the IP may carry only its start).
    size: usize,
    /// Whether its edge hides its data.
    secure: bool,
}

/// noflo's name for an edge: `Hello() OUT -> IN World()`.
fn edge_label(src: &PortRef, tgt: &PortRef) -> String {
    format!(
        "{}() {} -> {} {}()",
        src.process,
        src.port.to_uppercase(),
        tgt.port.to_uppercase(),
        tgt.process
    )
}

fn packet_message(
    graph_id: &str,
    id: String,
    src: Option<&PortRef>,
    tgt: &PortRef,
    packet: Packet<'_>,
) -> Message {
    let Packet { ip, size, secure } = packet;
    let mut payload = Map::new();
    payload.insert("id".into(), Value::from(id));
    if let Some(src) = src {
        payload.insert("src".into(), port_json(src));
    }
    payload.insert("tgt".into(), port_json(tgt));
    payload.insert("graph".into(), Value::from(graph_id));
    let command = match ip {
        Ip::Data(p) => {
            let data = if secure {
                Value::from("DATA")
            } else {
                shown(p, size)
            };
            payload.insert("data".into(), data);
            "data"
        }
        Ip::Open(p) => {
            payload.insert("group".into(), Value::from(p.to_string_lossy().as_ref()));
            "begingroup"
        }
        Ip::Close(p) => {
            payload.insert("group".into(), Value::from(p.to_string_lossy().as_ref()));
            "endgroup"
        }
    };
    Message::new("network", command, Value::Object(payload))
}

/// A payload of `size` bytes (of which `payload` may be only the start) as clients see it: its
/// JSON value, or a shortened text for long payloads.
fn shown(payload: &Payload, size: usize) -> Value {
    if size <= MAX_DATA_BYTES {
        return payload.to_json();
    }
    let mut end = MAX_DATA_BYTES;
    let text = payload.to_string_lossy();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::from(format!(
        "{}… ({} bytes)",
        &text[..end.min(text.len())],
        size
    ))
}

/// `network:processerror`: `error` on node `node` (as the graph names it) of `graph_id`,
/// which noflo-ui shows on the node.
pub(crate) fn process_error_message(graph_id: &str, node: &str, error: &str) -> Message {
    Message::new(
        "network",
        "processerror",
        json!({ "id": node, "error": error, "graph": graph_id }),
    )
}

#[cfg(test)]
mod output_limit_tests {
    use std::time::{Duration, Instant};

    use super::{OUTPUT_LINES_PER_SECOND, OutputLimit};

    #[test]
    fn a_burst_is_shown_then_lines_are_counted_and_said_when_shown_again() {
        let mut limit = OutputLimit::default();
        let start = Instant::now();
        for _ in 0..OUTPUT_LINES_PER_SECOND {
            assert_eq!(limit.admit(start), Some(0));
        }
        assert_eq!(limit.admit(start), None);
        assert_eq!(limit.admit(start), None);
        // A millisecond later, one more line may go, saying the two before it were not shown.
        let later = start + Duration::from_millis(1);
        assert_eq!(limit.admit(later), Some(2));
        assert_eq!(limit.admit(later), None);
    }
}

//! A graph's network as the runtime runs it: started, reported to clients, stopped.
//!
//! Each running network has a reporter thread that turns its [`Event`]s into protocol messages
//! and broadcasts them. Events are only ever taken from the channel under the runtime's lock, by
//! the reporter or by [`Runtime::settle`], so clients see them in order, and a status asked
//! right after the last packet already knows that the network finished.

use std::collections::HashSet;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Select};
use serde_json::{Map, Value, json};

use super::Runtime;
use super::exports::Exports;
use super::names::ProcessNames;
use crate::engine::{EdgeId, Event, Network};
use crate::graph::{Direction, Graph, PortRef};
use crate::ip::{Ip, Payload};
use crate::protocol::Message;
use crate::protocol::port_json;

/// IP payloads longer than this are shortened in `network:data` (noflo-ui only shows them).
const MAX_DATA_BYTES: usize = 1024;

/// Events the reporter turns into messages per hold of the runtime's lock: a busy network must
/// not keep requests waiting.
const REPORT_BATCH: usize = 256;

/// How long a status request waits for a running network to finish.
const SETTLE_GRACE: Duration = Duration::from_millis(150);

/// Where a graph's network is.
pub(crate) enum NetworkState {
    /// Never started.
    Idle,
    /// Processes are running.
    Running(Box<Live>),
    /// Every process ended by itself.
    Finished {
        /// Start to finish.
        uptime: Duration,
    },
    /// Stopped by a client.
    Stopped,
}

impl NetworkState {
    /// `(started, running)` as `network:status` reports them.
    pub(crate) fn flags(&self) -> (bool, bool) {
        match self {
            NetworkState::Idle | NetworkState::Stopped => (false, false),
            NetworkState::Running(_) => (true, true),
            NetworkState::Finished { .. } => (true, false),
        }
    }
}

/// A running network and what the runtime keeps beside it.
pub(crate) struct Live {
    network: Network,
    events: Receiver<Event>,
    generation: u64,
    started: Instant,
    /// The exported ports, as clients reach them.
    exports: Exports,
    /// Edges whose metadata says `secure`, by engine names: their data is not shown.
    secure: HashSet<(String, String, String, String)>,
    /// The processes' names in the graph and in the engine, which differ after a rename.
    names: ProcessNames,
    /// The edges selected with `network:edges`, by graph names (`None`: all edges).
    selection: Option<Vec<EdgeId>>,
    /// When a process last ended: a network that is winding down.
    last_ended: Option<Instant>,
}

impl Live {
    /// Starts `graph`'s network; its events are reported by a thread of its own.
    pub(crate) fn start(
        runtime: &Runtime,
        graph_id: &str,
        graph: &Graph,
        generation: u64,
        watch_only: Option<Vec<EdgeId>>,
    ) -> Result<Live, String> {
        let config = crate::engine::NetworkConfig {
            watch_only: watch_only.clone(),
            ..runtime.network_config()
        };
        let mut network =
            Network::start(graph, &runtime.registry, config).map_err(|e| e.to_string())?;
        let events = network.events().clone();
        // Dropping the network on an error stops it.
        let exports = Exports::start(&runtime.this, graph_id, graph, &mut network)?;
        // A node that is not a process of the network was expanded: it is a subgraph.
        let names = ProcessNames::new(
            graph
                .nodes
                .iter()
                .filter(|n| !network.has_process(&n.id))
                .map(|n| n.id.clone()),
        );
        let secure = graph
            .edges()
            .filter(|e| is_secure(e))
            .map(|e| edge_key(&e.src, &e.tgt))
            .collect();
        spawn_reporter(
            runtime.this.clone(),
            graph_id.to_string(),
            generation,
            events.clone(),
        )
        .map_err(|e| format!("cannot report the network's events: {e}"))?;
        Ok(Live {
            network,
            events,
            generation,
            started: Instant::now(),
            exports,
            secure,
            names,
            selection: watch_only,
            last_ended: None,
        })
    }

    /// How long the network has run.
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the network (its processes wind down on their own threads).
    pub(crate) fn stop(&self) {
        self.network.stop();
    }

    /// Queues `ip` for the exported inport `port`.
    pub(crate) fn send(&self, port: &str, ip: Ip) -> Result<(), String> {
        self.exports.send(port, ip)
    }
}

/// Runs the thread that reports a network's events until it ends.
fn spawn_reporter(
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
            let _ = select.ready();
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            let mut locked = runtime.lock().unwrap_or_else(|e| e.into_inner());
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
            if let Event::ProcessEnded { .. } = event {
                live.last_ended = Some(Instant::now());
            }
            let messages = event_messages(graph_id, live, &event);
            if let Event::Finished { uptime } = event {
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

/// Whether an edge's metadata says `secure: true`: its data is not shown to clients.
fn is_secure(edge: &crate::graph::Edge) -> bool {
    edge.metadata
        .as_ref()
        .and_then(|m| m.get("secure"))
        .is_some_and(|s| s == &Value::Bool(true))
}

fn edge_key(src: &PortRef, tgt: &PortRef) -> (String, String, String, String) {
    (
        src.process.clone(),
        src.port.to_lowercase(),
        tgt.process.clone(),
        tgt.port.to_lowercase(),
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
            let mut message = packet_message(graph_id, id, None, &tgt, &ip, false);
            // The graph's own value: a JSON string stays a string, even if its text is a
            // number.
            if ip.payload().len() <= MAX_DATA_BYTES {
                message.payload["data"] = value.clone();
            }
            vec![message]
        }
        Event::Data { edge, ip } => {
            // Edges to and from exported ports are reported as `runtime:packet`.
            if edge.src.process.is_empty() || edge.tgt.process.is_empty() {
                return Vec::new();
            }
            // Per packet: no key is built, and no name copied, unless some edge needs it.
            let secure =
                !live.secure.is_empty() && live.secure.contains(&edge_key(&edge.src, &edge.tgt));
            let (src, tgt) = (
                live.names.graph_port(&edge.src),
                live.names.graph_port(&edge.tgt),
            );
            vec![packet_message(
                graph_id,
                edge_label(&src, &tgt),
                Some(&src),
                &tgt,
                ip,
                secure,
            )]
        }
        Event::ProcessError { node, message } => vec![Message::new(
            "network",
            "processerror",
            json!({ "id": live.names.graph(node), "error": message, "graph": graph_id }),
        )],
        Event::Output { message, .. } => vec![Message::new(
            "network",
            "output",
            json!({ "message": message, "type": "message" }),
        )],
        Event::Started
        | Event::ProcessEnded { .. }
        | Event::Finished { .. }
        | Event::Stopped { .. } => Vec::new(),
    }
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
    ip: &Ip,
    secure: bool,
) -> Message {
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
                shown(p)
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

/// A payload as clients see it: its JSON value, or a shortened text for long payloads.
fn shown(payload: &Payload) -> Value {
    if payload.len() <= MAX_DATA_BYTES {
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
        payload.len()
    ))
}

impl Drop for Live {
    fn drop(&mut self) {
        let unreported = self.network.unreported();
        if unreported > 0 {
            tracing::info!(
                "{unreported} packets on watched edges were not shown to clients (at most {} \
                 per edge per second are)",
                self.network_rate()
            );
        }
    }
}

impl Live {
    fn network_rate(&self) -> String {
        self.network
            .config()
            .watch_rate
            .map_or_else(|| "all".into(), |rate| rate.to_string())
    }

    /// Reports packets only on the edges `selection` covers ([`EdgeId::covers`]; `None`:
    /// every edge and IIP).
    pub(crate) fn watch_only(&mut self, selection: Option<&[EdgeId]>) {
        self.selection = selection.map(<[EdgeId]>::to_vec);
        self.apply_selection();
    }

    /// Whether the IIPs into `tgt` (named as in the graph) are shown: without a selection,
    /// or when the selection names their edge ([`EdgeId::initial`]).
    fn shows_initial(&self, tgt: &PortRef) -> bool {
        let Some(selection) = &self.selection else {
            return true;
        };
        let edge = EdgeId::initial(tgt.clone());
        selection.iter().any(|s| s.is_initial() && s.covers(&edge))
    }

    /// Turns reporting on and off for every edge by the latest selection.
    fn apply_selection(&self) {
        let Some(selection) = &self.selection else {
            self.network.watch_all(true);
            return;
        };
        let selection: Vec<EdgeId> = selection
            .iter()
            .map(|e| EdgeId {
                src: self.names.engine_port(&e.src),
                tgt: self.names.engine_port(&e.tgt),
            })
            .collect();
        for edge in self.network.edges() {
            let on = selection.iter().any(|s| s.covers(&edge));
            self.network.watch(&edge, on);
        }
    }
}

/// A graph edit that a running network follows.
pub(crate) enum LiveEdit {
    /// A process was added.
    AddNode(crate::graph::Node),
    /// A process was removed.
    RemoveNode(String),
    /// An edge was added.
    AddEdge(crate::graph::Edge),
    /// An edge's metadata changed: whether it is `secure` applies at once. These are the
    /// graph's edges between the same ports (whatever their indexes), the changed one among
    /// them: the data between those ports is hidden if any of them is secure.
    ChangeEdge(Vec<crate::graph::Edge>),
    /// An edge was removed.
    RemoveEdge(PortRef, PortRef),
    /// An IIP was added: it is delivered now.
    AddInitial(PortRef, Value),
    /// An exported port was added: it is wired at the next start.
    AddExport(Direction, String),
    /// An exported port was renamed.
    RenameExport {
        /// Inport or outport.
        direction: Direction,
        /// The old public name.
        from: String,
        /// The new public name.
        to: String,
    },
    /// An exported port was removed (alone, or along with its node).
    RemoveExport(Direction, String),
    /// A process was renamed: it runs on under its engine name, reported under the new one.
    RenameNode {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

impl Live {
    /// Applies `edit` to the running network.
    pub(crate) fn apply(
        &mut self,
        edit: LiveEdit,
        registry: &crate::component::Registry,
    ) -> Result<(), String> {
        self.apply_edit(edit, registry).map_err(|error| {
            use crate::engine::LiveEditError as E;
            // The engine names processes as they were called at start; clients know them now.
            let graph = |name: String| self.names.graph(&name).into_owned();
            match error {
                E::NoProcess(name) => E::NoProcess(graph(name)),
                E::ProcessExists(name) => E::ProcessExists(graph(name)),
                E::Ended(name) => E::Ended(graph(name)),
                E::Instantiate { node, message } => E::Instantiate {
                    node: graph(node),
                    message,
                },
                other => other,
            }
            .to_string()
        })
    }

    fn apply_edit(
        &mut self,
        edit: LiveEdit,
        registry: &crate::component::Registry,
    ) -> Result<(), crate::engine::LiveEditError> {
        let names = &mut self.names;
        match edit {
            LiveEdit::AddNode(mut node) => {
                let name = std::mem::take(&mut node.id);
                node.id = names.fresh(&name, |id| self.network.has_process(id));
                let added = self.network.add_process(&node, registry);
                // Even when it failed: the name must not lead to a process renamed away from it.
                names.add(&name, node.id);
                added
            }
            LiveEdit::RemoveNode(id) => {
                // On failure the name stays, to name the process in the error.
                self.network.remove_process(&names.engine(&id))?;
                names.remove(&id);
                Ok(())
            }
            LiveEdit::AddEdge(edge) => {
                let (src, tgt) = (names.engine_port(&edge.src), names.engine_port(&edge.tgt));
                self.network.connect(&src, &tgt, edge.capacity())?;
                if is_secure(&edge) {
                    self.secure.insert(edge_key(&src, &tgt));
                }
                // The network watches a new edge by the selection it started with.
                self.apply_selection();
                Ok(())
            }
            LiveEdit::ChangeEdge(edges) => {
                let Some(edge) = edges.first() else {
                    return Ok(());
                };
                let key = edge_key(&names.engine_port(&edge.src), &names.engine_port(&edge.tgt));
                if edges.iter().any(is_secure) {
                    self.secure.insert(key);
                } else {
                    self.secure.remove(&key);
                }
                Ok(())
            }
            LiveEdit::RemoveEdge(src, tgt) => self
                .network
                .disconnect(&names.engine_port(&src), &names.engine_port(&tgt)),
            LiveEdit::AddInitial(tgt, data) => {
                self.network.send_initial(&names.engine_port(&tgt), &data)
            }
            LiveEdit::AddExport(direction, name) => {
                Err(crate::engine::LiveEditError::Port(format!(
                    "the exported {} '{name}' is wired at the next start",
                    direction.label()
                )))
            }
            LiveEdit::RenameExport {
                direction,
                from,
                to,
            } => {
                self.exports.rename(direction, &from, &to);
                Ok(())
            }
            LiveEdit::RemoveExport(direction, name) => {
                self.exports.remove(direction, &name);
                Ok(())
            }
            LiveEdit::RenameNode { from, to } => {
                names.rename(&from, &to);
                Ok(())
            }
        }
    }
}

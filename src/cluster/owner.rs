//! Running a placed graph from the runtime that owns it: deploying each share to its
//! runtime, running the local share, turning every share's events into the events of one
//! network, watching that the other runtimes stay alive, and stopping them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, Sender};
use futures_util::StreamExt;

use super::Cluster;
use super::control::{
    PING_WITHIN, ShareEvent, deploy, events_subject, packet_ip, request, stop_remote,
};
use super::placement::{
    Placement, RECEIVE_PREFIX, RUNTIME_KEY, SEND_PREFIX, is_edge_end, is_receiving_half, sender_of,
};
use crate::component::Registry;
use crate::component::connect::io_runtime;
use crate::engine::{EdgeId, Event, Network, NetworkConfig};
use crate::graph::{Graph, PortRef};

/// Events of the whole graph waiting for its reader.
const EVENTS: usize = 4096;

/// How often the thread forwarding the other shares' events looks whether the run is over.
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Packets per edge per second a share on another runtime reports when the local share
/// reports every packet: each crosses the NATS server.
const MOST_REMOTE_PACKETS: u32 = 1000;

/// A graph running over several runtimes, placed from this one. Its events are those of one
/// network ([`PlacedRun::events`]), as if the whole graph ran here; dropping it stops every
/// share.
pub struct PlacedRun {
    cluster: Arc<Cluster>,
    share: String,
    local: Network,
    events: Receiver<Event>,
    /// Where each process of the graph runs.
    runtime_of: BTreeMap<String, String>,
    /// See [`remote_ends`].
    ends: HashMap<String, PortRef>,
    /// The runtimes whose share has not ended yet.
    running: Arc<Mutex<BTreeSet<String>>>,
    stopped: AtomicBool,
    /// The thread sending the stop requests, once there is one.
    stopping: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Declared last: dropped after `drop` has stopped the shares.
    _over: Over,
}

impl std::fmt::Debug for PlacedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlacedRun")
            .field("share", &self.share)
            .field("runtime_of", &self.runtime_of)
            .finish_non_exhaustive()
    }
}

impl PlacedRun {
    /// Splits `graph` with this runtime as its home (`placed` overriding node metadata),
    /// deploys each other share to its runtime and starts the local one with `config`.
    ///
    /// # Errors
    ///
    /// When the graph cannot be placed, exports a port of a process placed elsewhere while
    /// `config` wires exported ports, a runtime does not answer, or a share does not start
    /// (any share already started is stopped again).
    pub fn start(
        cluster: &Arc<Cluster>,
        registry: &Registry,
        graph: &Graph,
        config: NetworkConfig,
        placed: &BTreeMap<String, String>,
    ) -> Result<PlacedRun, String> {
        let home = cluster.name();
        let placement =
            Placement::split(graph, home, &run_id(home), placed).map_err(|e| e.to_string())?;
        let runtime_of = runtimes_of(&placement);
        if config.external_ports {
            check_exports(graph, home, &runtime_of)?;
        }
        let config = NetworkConfig {
            watch_only: config
                .watch_only
                .map(|selection| local_selection(selection, graph, home, &runtime_of)),
            ..config
        };
        let share = placement.shares[home]
            .name()
            .unwrap_or_default()
            .to_string();
        let running = Arc::new(Mutex::new(
            placement.shares.keys().cloned().collect::<BTreeSet<_>>(),
        ));
        // Until the run is over: the threads that serve it end once it is (or start fails).
        let over = Over(running.clone());
        let (shares_in, shares_out) = crossbeam_channel::bounded(EVENTS);
        forward_remote_events(cluster, &share, shares_in.clone(), running.clone())?;
        let watch_rate = config
            .watch_edges
            .then(|| config.watch_rate.unwrap_or(MOST_REMOTE_PACKETS));
        let mut deployed = Vec::new();
        let mut incarnations = BTreeMap::new();
        for runtime in placement.others(home) {
            let started = request(cluster, runtime, "ping", Vec::new(), PING_WITHIN)
            .map_err(|e| {
                format!(
                    "runtime '{runtime}' does not answer on {} ({e}): is `flowd serve --nats {} \
                     --name {runtime}` running?",
                    cluster.url(),
                    cluster.url()
                )
            })
            .and_then(|_| {
                deploy(cluster, runtime, &placement.shares[runtime], home, watch_rate)
                    .map_err(|e| format!("runtime '{runtime}' cannot run its share: {e}"))
            });
            match started {
                Ok(incarnation) => {
                    incarnations.insert(runtime.to_string(), incarnation);
                    deployed.push(runtime.to_string());
                }
                Err(error) => {
                    stop_remote(cluster, &share, &deployed);
                    return Err(error);
                }
            }
        }
        // The remote edges' components exist for the shares alone.
        let registry = registry.snapshot();
        super::register(&registry, cluster);
        let local = match Network::start(&placement.shares[home], &registry, config) {
            Ok(local) => local,
            Err(error) => {
                stop_remote(cluster, &share, &deployed);
                return Err(format!("cannot start the local share: {error}"));
            }
        };
        let (events_in, events) = crossbeam_channel::bounded(EVENTS);
        let ends = remote_ends(graph);
        let merge = Merge {
            home: home.to_string(),
            local: Some(local.events().clone()),
            shares: shares_out,
            out: events_in,
            running: running.clone(),
            ends: ends.clone(),
            started: Instant::now(),
            stopped: false,
            _over: Over(running.clone()),
        };
        let spawned = crate::threads::spawn("flowd-placed-events", move || merge.run());
        if let Err(error) = spawned {
            local.stop();
            stop_remote(cluster, &share, &deployed);
            return Err(format!("cannot start a thread: {error}"));
        }
        super::watch::watch_runtimes(
            cluster,
            &placement,
            (home, incarnations, watch_rate),
            running.clone(),
            shares_in,
        );
        Ok(PlacedRun {
            cluster: cluster.clone(),
            share,
            local,
            events,
            runtime_of,
            ends,
            running,
            stopped: AtomicBool::new(false),
            stopping: Mutex::new(None),
            _over: over,
        })
    }

    /// The events of the whole graph. A process's events come under its name in the graph
    /// from whichever runtime runs it; a packet crossing runtimes is shown on its edge by the
    /// runtime that placed the graph, whichever end runs here. The last event is
    /// [`Event::Finished`] once every share has ended by itself, or [`Event::Stopped`]. After
    /// an [`Event::RuntimeLost`] that does not resume, the reader stops the run
    /// ([`PlacedRun::stop`]).
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// The share that runs on this runtime: live edits of its processes apply to it.
    pub fn local(&self) -> &Network {
        &self.local
    }

    /// As [`PlacedRun::local`], to edit.
    pub fn local_mut(&mut self) -> &mut Network {
        &mut self.local
    }

    /// The runtime that runs `process`, if the graph had it at the start.
    pub fn runtime_of(&self, process: &str) -> Option<&str> {
        self.runtime_of.get(process).map(String::as_str)
    }

    /// `edge` of the local share as the graph names it: an edge into a `remote/Send` is the
    /// edge it sends on.
    pub fn graph_edge(&self, edge: &EdgeId) -> EdgeId {
        match self.ends.get(&edge.tgt.process) {
            Some(tgt) => EdgeId {
                src: edge.src.clone(),
                tgt: tgt.clone(),
            },
            None => edge.clone(),
        }
    }

    /// This runtime's name: the one that placed the graph.
    pub fn home(&self) -> &str {
        self.cluster.name()
    }

    /// Stops every share. Idempotent.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.local.stop();
        let others: Vec<String> = self
            .running
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|n| *n != self.cluster.name())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if others.is_empty() {
            return;
        }
        // Each may take a while to answer (or not): the caller, which may hold the runtime's
        // lock, does not wait for them.
        let (cluster, share) = (self.cluster.clone(), self.share.clone());
        let spawned = crate::threads::spawn("flowd-placed-stop", move || {
            stop_remote(&cluster, &share, &others);
        });
        match spawned {
            Ok(stopping) => {
                *self.stopping.lock().unwrap_or_else(|e| e.into_inner()) = Some(stopping)
            }
            Err(error) => tracing::warn!("cannot stop the other runtimes' shares: {error}"),
        }
    }

    /// Waits until the other runtimes have answered the stop requests sent (if any): for a
    /// process about to exit, which would otherwise leave their shares running.
    pub fn finish(self) {
        let stopping = self
            .stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(stopping) = stopping {
            let _ = stopping.join();
        }
    }
}

/// Ends a placed run for the threads that serve it (the watch of the other runtimes, the
/// forwarding of their events): it empties the set of running shares when dropped.
struct Over(Arc<Mutex<BTreeSet<String>>>);

impl Drop for Over {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for PlacedRun {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a graph's node is placed by its metadata: `home` unless it names another runtime.
pub fn placed_on<'a>(node: &'a crate::graph::Node, home: &'a str) -> &'a str {
    node.metadata
        .as_ref()
        .and_then(|m| m.get(RUNTIME_KEY)?.as_str())
        .unwrap_or(home)
}

/// A run id unique enough that two runs never share subjects.
fn run_id(home: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{home}-{}-{nanos:x}", std::process::id())
}

/// Each process of the graph, by the runtime its share runs on.
fn runtimes_of(placement: &Placement) -> BTreeMap<String, String> {
    placement
        .shares
        .iter()
        .flat_map(|(runtime, share)| {
            share
                .nodes
                .iter()
                .filter(|n| !is_edge_end(n))
                .map(move |n| (n.id.clone(), runtime.clone()))
        })
        .collect()
}

/// Exported ports are wired by the runtime that owns the graph: their processes must run
/// there.
fn check_exports(
    graph: &Graph,
    home: &str,
    runtime_of: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (direction, ports) in [("inport", &graph.inports), ("outport", &graph.outports)] {
        for port in ports {
            if let Some(runtime) = runtime_of.get(&port.process).filter(|r| *r != home) {
                return Err(format!(
                    "the exported {direction} '{}' belongs to process '{}', placed on runtime \
                     '{runtime}': a placed graph's exported ports must be on the runtime that \
                     owns it ('{home}')",
                    port.name, port.process
                ));
            }
        }
    }
    Ok(())
}

/// `selection` (edges named as in `graph`) with, for each edge it covers that leaves `home`
/// for another runtime, the edge into its `remote/Send`: the local share watches that one.
fn local_selection(
    mut selection: Vec<EdgeId>,
    graph: &Graph,
    home: &str,
    runtime_of: &BTreeMap<String, String>,
) -> Vec<EdgeId> {
    let runs_on = |process: &str| runtime_of.get(process).map_or(home, String::as_str);
    let crossing: Vec<EdgeId> = graph
        .edges()
        .filter(|edge| runs_on(&edge.src.process) == home && runs_on(&edge.tgt.process) != home)
        .filter(|edge| {
            let named = EdgeId {
                src: edge.src.clone(),
                tgt: edge.tgt.clone(),
            };
            selection.iter().any(|s| s.covers(&named))
        })
        .map(|edge| EdgeId {
            src: edge.src.clone(),
            tgt: PortRef::new(sender_of(edge), "in"),
        })
        .collect();
    selection.extend(crossing);
    selection
}

/// For each `remote/Send` a crossing edge of `graph` may have, the target of that edge.
fn remote_ends(graph: &Graph) -> HashMap<String, PortRef> {
    graph
        .edges()
        .map(|edge| (sender_of(edge), edge.tgt.clone()))
        .collect()
}

/// Passes the events the other runtimes publish for `share` to `sender`.
fn forward_remote_events(
    cluster: &Cluster,
    share: &str,
    sender: Sender<ShareEvent>,
    running: Arc<Mutex<BTreeSet<String>>>,
) -> Result<(), String> {
    let runtime = io_runtime().map_err(|e| e.to_string())?;
    let client = cluster.client().clone();
    let subject = events_subject(share);
    let mut subscriber = super::wait(super::subscribe(&client, subject, "the shares' events"))??;
    let is_over = move || running.lock().map_or(true, |r| r.is_empty());
    crate::threads::spawn("flowd-share-events", move || {
        while !is_over() {
            // Made within the runtime: a timer needs its context.
            let next = runtime
                .block_on(async { tokio::time::timeout(LOOK_EVERY, subscriber.next()).await });
            let message = match next {
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(message)) => message,
            };
            match serde_json::from_slice::<ShareEvent>(&message.payload) {
                Ok(event) => {
                    if sender.send(event).is_err() {
                        break;
                    }
                }
                Err(error) => tracing::warn!("ignoring a malformed share event: {error}"),
            }
        }
    })
    .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok(())
}

/// Turns the local share's events and the other shares' into the events of one network.
struct Merge {
    home: String,
    /// The local share's events, until it ends.
    local: Option<Receiver<Event>>,
    /// The other shares' events, and what the watch finds.
    shares: Receiver<ShareEvent>,
    out: Sender<Event>,
    running: Arc<Mutex<BTreeSet<String>>>,
    /// See [`remote_ends`].
    ends: HashMap<String, PortRef>,
    started: Instant,
    /// Whether any share was stopped rather than ending by itself.
    stopped: bool,
    /// The run is over once this ends, however it ends.
    _over: Over,
}

impl Merge {
    fn run(mut self) {
        loop {
            let mut select = Select::new();
            let local = self.local.as_ref().map(|local| select.recv(local));
            let shares = select.recv(&self.shares);
            let ready = select.select();
            let event = if Some(ready.index()) == local {
                match self.local.as_ref().map(|l| ready.recv(l)) {
                    Some(Ok(event)) => self.local_event(event),
                    _ => {
                        self.local = None;
                        self.ended(&self.home.clone(), true)
                    }
                }
            } else if ready.index() == shares {
                match ready.recv(&self.shares) {
                    Ok(event) => self.share_event(event),
                    Err(_) => {
                        // Nothing more can come from the other runtimes: the run is over.
                        let uptime = self.started.elapsed();
                        let _ = self.out.send(Event::Stopped { uptime });
                        return;
                    }
                }
            } else {
                None
            };
            if let Some(event) = event {
                let last = matches!(event, Event::Finished { .. } | Event::Stopped { .. });
                if self.out.send(event).is_err() || last {
                    return;
                }
            }
        }
    }

    fn local_event(&mut self, event: Event) -> Option<Event> {
        match event {
            // A packet crossing runtimes is reported by the sending end alone.
            Event::Data { edge, .. } if is_receiving_half(&edge) => None,
            Event::Data { edge, ip } => Some(Event::Data {
                edge: self.graph_edge(edge),
                ip,
            }),
            Event::Finished { .. } | Event::Stopped { .. } => {
                self.local = None;
                let stopped = matches!(event, Event::Stopped { .. });
                self.ended(&self.home.clone(), stopped)
            }
            Event::ProcessEnded { node }
                if node.starts_with(SEND_PREFIX) || node.starts_with(RECEIVE_PREFIX) =>
            {
                None
            }
            other => Some(other),
        }
    }

    /// `edge` as the graph names it: an edge into a `remote/Send` is the edge it sends on.
    fn graph_edge(&self, mut edge: EdgeId) -> EdgeId {
        if let Some(tgt) = self.ends.get(&edge.tgt.process) {
            edge.tgt = tgt.clone();
        }
        edge
    }

    fn share_event(&mut self, event: ShareEvent) -> Option<Event> {
        Some(match event {
            ShareEvent::Packet {
                src,
                tgt,
                kind,
                payload,
                size,
            } => {
                let Some(ip) = packet_ip(&kind, &payload) else {
                    tracing::warn!("ignoring a malformed packet report");
                    return None;
                };
                let edge = EdgeId {
                    src: src.port_ref(),
                    tgt: tgt.port_ref(),
                };
                Event::RemoteData {
                    edge: self.graph_edge(edge),
                    ip,
                    size,
                }
            }
            ShareEvent::Output { node, message, .. } => Event::Output { node, message },
            ShareEvent::Error { node, message, .. } => Event::ProcessError { node, message },
            ShareEvent::Deadlock { message, .. } => Event::Deadlock {
                processes: Vec::new(),
                message,
            },
            ShareEvent::Lost {
                runtime,
                processes,
                message,
                resumes,
            } => Event::RuntimeLost {
                runtime,
                processes,
                message,
                resumes,
            },
            ShareEvent::Resumed { runtime } => Event::RuntimeResumed { runtime },
            ShareEvent::Ended { runtime, stopped } => return self.ended(&runtime, stopped),
        })
    }

    /// Notes that the share on `runtime` ended; the network's last event once all have.
    fn ended(&mut self, runtime: &str, stopped: bool) -> Option<Event> {
        self.stopped |= stopped;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(runtime);
        if !running.is_empty() {
            return None;
        }
        let uptime = self.started.elapsed();
        Some(if self.stopped {
            Event::Stopped { uptime }
        } else {
            Event::Finished { uptime }
        })
    }
}

//! A graph's network as the runtime runs it: started with its exported ports and reporter
//! ([`super::report`]), edited live, watched by selection, stopped.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::Value;

use super::Runtime;
use super::exports::Exports;
use super::names::ProcessNames;
use crate::cluster::{PlacedRun, placed_on};
use crate::engine::{EdgeId, Event, Network};
use crate::graph::{Direction, Graph, PortRef};
use crate::ip::Ip;
use crate::protocol::Message;

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

/// How a running network runs: all here, or placed over the runtimes of a cluster.
enum Run {
    /// Every process runs here.
    Local(Network),
    /// The processes run where the graph places them; the local share's are here.
    Placed(PlacedRun),
}

/// A running network and what the runtime keeps beside it.
pub(crate) struct Live {
    run: Run,
    pub(super) events: Receiver<Event>,
    pub(super) generation: u64,
    pub(super) started: Instant,
    /// The exported ports, as clients reach them.
    exports: Exports,
    /// Edges whose metadata says `secure`, by engine names: their data is not shown.
    pub(super) secure: HashSet<(String, String, String, String)>,
    /// The processes' names in the graph and in the engine, which differ after a rename.
    pub(super) names: ProcessNames,
    /// The edges selected with `network:edges`, by graph names (`None`: all edges).
    selection: Option<Vec<EdgeId>>,
    /// When a process last ended: a network that is winding down.
    pub(super) last_ended: Option<Instant>,
    /// How many of the lines it prints clients are shown.
    pub(super) output: super::report::OutputLimit,
}

impl Live {
    /// Starts `graph`'s network; its events are reported by a thread of its own. In a
    /// cluster, a graph with processes placed on other runtimes runs over them
    /// ([`PlacedRun`]).
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
        let placed_cluster = runtime.config.cluster.as_ref().filter(|cluster| {
            graph
                .nodes
                .iter()
                .any(|n| placed_on(n, cluster.name()) != cluster.name())
        });
        let mut run = match placed_cluster {
            Some(cluster) => Run::Placed(PlacedRun::start(
                cluster,
                &runtime.registry,
                graph,
                config,
                &BTreeMap::new(),
            )?),
            None => Run::Local(
                Network::start(graph, &runtime.registry, config).map_err(|e| e.to_string())?,
            ),
        };
        let events = match &run {
            Run::Local(network) => network.events().clone(),
            Run::Placed(placed) => placed.events().clone(),
        };
        // Dropping the network on an error stops it.
        let exports = Exports::start(&runtime.this, graph_id, graph, run.network_mut())?;
        // A node that is not a process of the network (nor placed elsewhere) was expanded:
        // it is a subgraph.
        let names = ProcessNames::new(
            graph
                .nodes
                .iter()
                .filter(|n| !run.has_process(&n.id))
                .map(|n| n.id.clone()),
        );
        let secure = graph
            .edges()
            .filter(|e| is_secure(e))
            .map(|e| edge_key(&e.src, &e.tgt))
            .collect();
        super::report::spawn_reporter(
            runtime.this.clone(),
            graph_id.to_string(),
            generation,
            events.clone(),
        )
        .map_err(|e| format!("cannot report the network's events: {e}"))?;
        Ok(Live {
            run,
            events,
            generation,
            started: Instant::now(),
            exports,
            secure,
            names,
            selection: watch_only,
            last_ended: None,
            output: super::report::OutputLimit::default(),
        })
    }

    /// How long the network has run.
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the network (its processes wind down on their own threads), on every runtime
    /// it runs on.
    pub(crate) fn stop(&self) {
        match &self.run {
            Run::Local(network) => network.stop(),
            Run::Placed(placed) => placed.stop(),
        }
    }

    /// The processes that run here.
    fn network(&self) -> &Network {
        match &self.run {
            Run::Local(network) => network,
            Run::Placed(placed) => placed.local(),
        }
    }

    /// Whether `edit`, made to `graph` (which has it already), changes what runs on another
    /// runtime of the cluster, when this runtime is `home` in one: a process placed elsewhere
    /// before or after it, or one whose placement it changes. The network must then be
    /// placed anew; other edits apply here.
    pub(crate) fn needs_placing(&self, edit: &LiveEdit, graph: &Graph, home: &str) -> bool {
        let ran_on = |process: &str| match &self.run {
            Run::Local(_) => home,
            Run::Placed(placed) => placed.runtime_of(process).unwrap_or(home),
        };
        let placed = |process: &str| graph.node(process).map_or(home, |n| placed_on(n, home));
        let elsewhere = |process: &str| ran_on(process) != home || placed(process) != home;
        match edit {
            // noflo-ui changes a node's metadata each time it is moved on the canvas.
            LiveEdit::ChangeNode(id) => ran_on(id) != placed(id),
            LiveEdit::RenameNode { from, to } => elsewhere(from) || elsewhere(to),
            other => other.nodes().iter().any(|process| elsewhere(process)),
        }
    }

    /// What the processes running here and their edges have done.
    pub(crate) fn metrics(&self) -> crate::engine::NetworkMetrics {
        self.network().metrics()
    }

    /// Packets on watched edges that were not shown to clients.
    pub(crate) fn unreported(&self) -> u64 {
        self.network().unreported()
    }

    /// Ends the stream into every exported inport.
    pub(crate) fn close_inports(&mut self) {
        self.exports.close_inports();
    }

    /// Queues `ip` for the exported inport `port`.
    pub(crate) fn send(&self, port: &str, ip: Ip) -> Result<(), String> {
        self.exports.send(port, ip)
    }
}

/// Whether an edge's metadata says `secure: true`: its data is not shown to clients.
pub(super) fn is_secure(edge: &crate::graph::Edge) -> bool {
    edge.metadata
        .as_ref()
        .and_then(|m| m.get("secure"))
        .is_some_and(|s| s == &Value::Bool(true))
}

pub(super) fn edge_key(src: &PortRef, tgt: &PortRef) -> (String, String, String, String) {
    (
        src.process.clone(),
        src.port.to_lowercase(),
        tgt.process.clone(),
        tgt.port.to_lowercase(),
    )
}

impl Runtime {
    /// Ends the streams into the exported inports of every running network, so that those
    /// fed only from outside wind down by themselves.
    pub fn close_inports(&mut self) {
        for entry in self.graphs.values_mut() {
            if let NetworkState::Running(live) = &mut entry.network {
                live.close_inports();
            }
        }
    }

    /// How many networks are running (not finished, not stopped).
    pub fn running_networks(&self) -> usize {
        self.graphs
            .values()
            .filter(|e| matches!(e.network, NetworkState::Running(_)))
            .count()
    }

    /// Stops the network of graph `id` and starts it again, placed over the cluster as the
    /// graph now says: clients see it stop and start.
    pub(super) fn place_anew(&mut self, id: &str) {
        tracing::info!(
            graph = id,
            "a live edit changed where processes run: placing anew"
        );
        crate::protocol::network::stop(self, None, id);
        match crate::protocol::network::start_network(self, id) {
            Ok(()) => {
                let message = crate::protocol::network::started_message(id);
                self.report(id, &message);
            }
            Err(error) => {
                let message = Message::new(
                    "network",
                    "error",
                    serde_json::json!({ "message": error, "graph": id }),
                );
                self.report(id, &message);
            }
        }
    }
}

impl Run {
    fn network_mut(&mut self) -> &mut Network {
        match self {
            Run::Local(network) => network,
            Run::Placed(placed) => placed.local_mut(),
        }
    }

    /// Whether `process` is a process of the network, here or on another runtime.
    fn has_process(&self, process: &str) -> bool {
        match self {
            Run::Local(network) => network.has_process(process),
            Run::Placed(placed) => {
                placed.local().has_process(process)
                    || placed
                        .runtime_of(process)
                        .is_some_and(|r| r != placed.home())
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let unreported = self.network().unreported();
        if unreported > 0 {
            let rate = self.network().config().watch_rate.unwrap_or_default();
            tracing::info!(
                "{unreported} packets on watched edges were not shown to clients (at most \
                 {rate} per edge per second are, or the events came faster than reported)"
            );
        }
    }
}

impl Live {
    /// Reports packets only on the edges `selection` covers ([`EdgeId::covers`]; `None`:
    /// every edge and IIP).
    pub(crate) fn watch_only(&mut self, selection: Option<&[EdgeId]>) {
        self.selection = selection.map(<[EdgeId]>::to_vec);
        self.apply_selection();
    }

    /// Whether the IIPs into `tgt` (named as in the graph) are shown: without a selection,
    /// or when the selection names their edge ([`EdgeId::initial`]).
    pub(super) fn shows_initial(&self, tgt: &PortRef) -> bool {
        let Some(selection) = &self.selection else {
            return true;
        };
        let edge = EdgeId::initial(tgt.clone());
        selection.iter().any(|s| s.is_initial() && s.covers(&edge))
    }

    /// Whether packets on `edge` (named as in the graph) are shown: without a selection, or
    /// when the selection covers it.
    pub(super) fn shows(&self, edge: &EdgeId) -> bool {
        self.selection
            .as_ref()
            .is_none_or(|selection| selection.iter().any(|s| s.covers(edge)))
    }

    /// Turns reporting on and off for every edge by the latest selection.
    fn apply_selection(&self) {
        let Some(selection) = &self.selection else {
            self.network().watch_all(true);
            return;
        };
        let selection: Vec<EdgeId> = selection
            .iter()
            .map(|e| EdgeId {
                src: self.names.engine_port(&e.src),
                tgt: self.names.engine_port(&e.tgt),
            })
            .collect();
        for edge in self.network().edges() {
            // A placed network's edge to another runtime is selected by the graph's edge.
            let named = match &self.run {
                Run::Placed(placed) => placed.graph_edge(&edge),
                Run::Local(_) => edge.clone(),
            };
            let on = selection.iter().any(|s| s.covers(&named));
            self.network().watch(&edge, on);
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
    /// A node's metadata changed: in a cluster, it may place the process on another runtime.
    ChangeNode(String),
    /// A process was renamed: it runs on under its engine name, reported under the new one.
    RenameNode {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

impl LiveEdit {
    /// The processes the edit touches, by their names in the graph (an exported port's
    /// process is found in the graph by the caller).
    pub(crate) fn nodes(&self) -> Vec<String> {
        match self {
            LiveEdit::AddNode(node) => vec![node.id.clone()],
            LiveEdit::RemoveNode(id) | LiveEdit::ChangeNode(id) => vec![id.clone()],
            LiveEdit::AddEdge(edge) => vec![edge.src.process.clone(), edge.tgt.process.clone()],
            LiveEdit::ChangeEdge(edges) => edges
                .iter()
                .flat_map(|e| [e.src.process.clone(), e.tgt.process.clone()])
                .collect(),
            LiveEdit::RemoveEdge(src, tgt) => vec![src.process.clone(), tgt.process.clone()],
            LiveEdit::AddInitial(tgt, _) => vec![tgt.process.clone()],
            LiveEdit::RenameNode { to, .. } => vec![to.clone()],
            LiveEdit::AddExport(..)
            | LiveEdit::RenameExport { .. }
            | LiveEdit::RemoveExport(..) => Vec::new(),
        }
    }
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
                node.id = names.fresh(&name, |id| self.run.has_process(id));
                let added = self.run.network_mut().add_process(&node, registry);
                // Even when it failed: the name must not lead to a process renamed away from it.
                names.add(&name, node.id);
                added
            }
            LiveEdit::RemoveNode(id) => {
                // On failure the name stays, to name the process in the error.
                self.run.network_mut().remove_process(&names.engine(&id))?;
                names.remove(&id);
                Ok(())
            }
            LiveEdit::AddEdge(edge) => {
                let (src, tgt) = (names.engine_port(&edge.src), names.engine_port(&edge.tgt));
                self.run
                    .network_mut()
                    .connect(&src, &tgt, edge.capacity())?;
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
                .run
                .network_mut()
                .disconnect(&names.engine_port(&src), &names.engine_port(&tgt)),
            LiveEdit::AddInitial(tgt, data) => self
                .run
                .network_mut()
                .send_initial(&names.engine_port(&tgt), &data),
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
            LiveEdit::ChangeNode(_) => Ok(()),
        }
    }
}

//! The runtime: the graphs a protocol server manages, their networks, and the clients watching.
//!
//! [`Runtime`] is the one place that changes graphs and starts or stops their networks; it
//! lives behind a mutex ([`SharedRuntime`]) that the connection tasks, the network reporters and
//! the autosave thread share. Everything that reaches clients is sent while that lock is held,
//! so every client sees changes in the order they were made.

mod clients;
mod exports;
mod metrics;
mod names;
mod network;
mod report;
mod subgraphs;
mod trace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

pub use clients::{
    ClientId, Clients, Connection, DEFAULT_MAX_QUEUED_BYTES, MAX_QUEUED_PACKET_BYTES,
    MAX_QUEUED_PACKETS, Outbound, QueueLimits, QueueTicket,
};
pub(crate) use network::{Live, LiveEdit, NetworkState};
pub(crate) use report::{now, process_error_message, stopped_message};
pub(crate) use subgraphs::component_name;
pub(crate) use trace::{DEFAULT_BUFFER_BYTES, Trace};

use crate::component::Registry;
use crate::engine::NetworkConfig;
use crate::graph::{self, Direction, Graph};
use crate::protocol::{Capabilities, Capability, Message};

/// How often unsaved edits are written back when autosave is on.
const AUTOSAVE_INTERVAL: Duration = Duration::from_millis(500);

/// What a runtime is and whom it lets in.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The runtime's id (a UUID), stable across restarts so a noflo-ui URL keeps working.
    pub id: String,
    /// A human-readable label, shown by noflo-ui.
    pub label: String,
    /// The component library of graphs made through the protocol.
    pub namespace: String,
    /// Secrets and the capabilities each grants. Empty: every client may do everything (for
    /// local development; the server then only listens on loopback).
    pub secrets: BTreeMap<String, Capabilities>,
    /// The file the main graph is loaded from and saved to (`network:persist`, autosave).
    pub main_file: Option<PathBuf>,
    /// Whether edits of the main graph are written to `main_file` as they happen.
    pub autosave: bool,
    /// The largest main graph file read, in bytes.
    pub max_graph_bytes: u64,
    /// Whether `component:setsource` is offered: graphs sent as component source (`json` or
    /// `fbp`) become subgraph components. Off by default, because no other language can be
    /// built and noflo-ui offers "New component" in nine of them whenever it is listed.
    pub graph_sources: bool,
    /// How networks are built. Packets on edges are shown to clients at most
    /// [`DEFAULT_DATA_RATE`] a second per edge unless `network.watch_rate` says otherwise.
    pub network: NetworkConfig,
    /// The cluster this runtime is a member of (`--nats`): a graph whose processes are placed
    /// on other runtimes of it runs over them.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Packets shown to clients per edge per second (`network:data`), after a burst of as many.
/// A person watching an edge in noflo-ui reads far fewer; a network moving millions of packets
/// a second would otherwise send all of them to every client.
pub const DEFAULT_DATA_RATE: u32 = 100;

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            id: uuid::Uuid::new_v4().to_string(),
            label: "flowd".into(),
            namespace: "flowd".into(),
            secrets: BTreeMap::new(),
            main_file: None,
            autosave: false,
            max_graph_bytes: graph::DEFAULT_MAX_FILE_BYTES,
            graph_sources: false,
            network: NetworkConfig {
                watch_rate: Some(DEFAULT_DATA_RATE),
                ..NetworkConfig::default()
            },
            cluster: None,
        }
    }
}

/// A graph the runtime manages, with its network.
pub(crate) struct GraphEntry {
    pub(crate) graph: Graph,
    pub(crate) network: NetworkState,
    pub(crate) trace: Option<Trace>,
    /// Edges selected with `network:edges` (all edges when `None`).
    pub(crate) watched: Option<Vec<crate::engine::EdgeId>>,
    /// The component name the graph is registered under (a graph made by a client that is
    /// not the main graph: a subgraph other graphs can use), kept up to date as it is edited.
    pub(crate) component: Option<String>,
    dirty: bool,
}

impl GraphEntry {
    fn new(graph: Graph) -> GraphEntry {
        GraphEntry {
            graph,
            network: NetworkState::Idle,
            trace: None,
            watched: None,
            component: None,
            dirty: false,
        }
    }

    /// Keeps the `network:edges` selection on a node renamed from `from` to `to`.
    pub(crate) fn node_renamed(&mut self, from: &str, to: &str) {
        for edge in self.watched.iter_mut().flatten() {
            for port in [&mut edge.src, &mut edge.tgt] {
                if port.process == from {
                    port.process = to.to_string();
                }
            }
        }
    }
}

/// The runtime, shared between the server's tasks.
pub type SharedRuntime = Arc<Mutex<Runtime>>;

/// Graphs by id, their networks, and the connected clients.
pub struct Runtime {
    pub(crate) config: RuntimeConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) graphs: BTreeMap<String, GraphEntry>,
    pub(crate) main: Option<String>,
    pub(crate) clients: Clients,
    pub(crate) this: Weak<Mutex<Runtime>>,
    generation: u64,
}

impl Runtime {
    /// A runtime with no graphs yet. With autosave on, a thread writes the main graph back
    /// shortly after each edit.
    pub fn new(config: RuntimeConfig, registry: Arc<Registry>) -> SharedRuntime {
        let autosave = config.autosave && config.main_file.is_some();
        let shared = Arc::new_cyclic(|this| {
            Mutex::new(Runtime {
                config,
                registry,
                graphs: BTreeMap::new(),
                main: None,
                clients: Clients::default(),
                this: this.clone(),
                generation: 0,
            })
        });
        if autosave {
            spawn_autosave(Arc::downgrade(&shared));
        }
        spawn_component_news(Arc::downgrade(&shared));
        shared
    }

    /// Locks a shared runtime; a panic while it was held does not make it unusable.
    pub fn lock(shared: &SharedRuntime) -> MutexGuard<'_, Runtime> {
        shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The component registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The id of the main graph, if there is one.
    pub fn main_graph(&self) -> Option<&str> {
        self.main.as_deref()
    }

    /// The graph `id`, if the runtime has it.
    pub fn graph(&self, id: &str) -> Option<&Graph> {
        self.graphs.get(id).map(|e| &e.graph)
    }

    /// The ids of every graph.
    pub fn graph_ids(&self) -> Vec<String> {
        self.graphs.keys().cloned().collect()
    }

    /// Whether the network of graph `id` is running.
    pub fn is_running(&self, id: &str) -> bool {
        self.graphs
            .get(id)
            .is_some_and(|e| matches!(e.network, NetworkState::Running(_)))
    }

    /// Adds (or replaces) graph `id`; `main` makes it the main graph. A running network of a
    /// replaced graph is stopped; its trace is kept. A graph without `properties.environment`
    /// gets `{"type": "flowd"}`.
    pub fn add_graph(&mut self, id: &str, graph: Graph, main: bool) {
        let mut graph = graph;
        // noflo-ui reads the runtime type of a graph from here, and its dialogs fail without
        // it; a graph that names its own environment keeps it.
        graph
            .properties
            .entry("environment")
            .or_insert_with(|| serde_json::json!({ "type": "flowd" }));
        let mut entry = GraphEntry::new(graph);
        if let Some(old) = self.graphs.remove(id) {
            if let NetworkState::Running(live) = &old.network {
                live.stop();
            }
            // A trace outlives a `graph:clear`: it records the graph id's history.
            entry.trace = old.trace;
        }
        self.graphs.insert(id.to_string(), entry);
        if main {
            self.main = Some(id.to_string());
        }
    }

    /// Loads the main graph from [`RuntimeConfig::main_file`]; its id is its `id` or `name`
    /// property, else the file's stem. Returns the id. A file that does not exist yet is
    /// created, holding an empty graph: the user means to start one there.
    ///
    /// # Errors
    ///
    /// The file cannot be read, created or is not a graph.
    pub fn load_main_file(&mut self) -> Result<Option<String>, graph::Error> {
        let Some(path) = self.config.main_file.clone() else {
            return Ok(None);
        };
        if !path.exists() {
            let name = path
                .file_stem()
                .map_or_else(|| "main".into(), |s| s.to_string_lossy().into_owned());
            graph::save(&Graph::new(&name), &path)?;
            tracing::info!("created {} with an empty graph", path.display());
        }
        // First, so that the main graph's nodes of them resolve.
        let subgraphs = self.load_subgraphs();
        if subgraphs > 0 {
            tracing::info!("loaded {subgraphs} subgraphs made by clients");
        }
        let graph = graph::load_limited(
            &path,
            graph::Format::from_path(&path),
            self.config.max_graph_bytes,
        )?;
        // Saves of this file that a kill interrupted are of no use to anyone.
        if let Err(error) = graph::remove_stale_temp_files(&path) {
            tracing::warn!(
                "cannot look for leftover temporary files of {}: {error}",
                path.display()
            );
        }
        let id = graph_id(&graph, &path);
        self.add_graph(&id, graph, true);
        Ok(Some(id))
    }

    /// Every capability this runtime offers: all of them, but `network:persist` only when
    /// the main graph has a file to persist to, and `component:setsource` only with
    /// [`RuntimeConfig::graph_sources`].
    pub fn offered(&self) -> Capabilities {
        let mut offered = Capabilities::all();
        for capability in Capability::ALL {
            if self.why_not_offered(capability).is_some() {
                offered = offered.without(capability);
            }
        }
        offered
    }

    /// Why this runtime does not offer `capability`, if it does not.
    pub fn why_not_offered(&self, capability: Capability) -> Option<&'static str> {
        match capability {
            Capability::NetworkPersist if self.config.main_file.is_none() => Some(
                "flowd was started without a graph file (--graph FILE), so there is nowhere \
                 to persist to",
            ),
            Capability::ComponentSetsource if !self.config.graph_sources => Some(
                "flowd builds no component from source; it accepts graphs (json or fbp) as \
                 component source when started with --graph-sources",
            ),
            _ => None,
        }
    }

    /// What a request with `secret` may do: what the secret grants that this runtime offers.
    pub fn capabilities_for(&self, secret: Option<&str>) -> Capabilities {
        self.granted_to(secret).intersect(self.offered())
    }

    /// What `secret` grants, offered by this runtime or not.
    pub fn granted_to(&self, secret: Option<&str>) -> Capabilities {
        if self.config.secrets.is_empty() {
            Capabilities::all()
        } else {
            secret
                .and_then(|s| self.config.secrets.get(s))
                .copied()
                .unwrap_or(Capabilities::NONE)
        }
    }

    /// Registers a client whose frames go to `tx`, with at most `limits` of them waiting.
    pub fn connect(
        &mut self,
        tx: tokio::sync::mpsc::Sender<Outbound>,
        limits: QueueLimits,
    ) -> Connection {
        let initial = self.capabilities_for(None);
        self.clients.add(initial, tx, limits)
    }

    /// How many clients are connected.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Forgets a client.
    pub fn disconnect(&mut self, client: ClientId) {
        self.clients.remove(client);
    }

    /// Handles one text frame from `client`.
    pub fn handle_frame(&mut self, client: ClientId, text: &str) {
        self.clients.received();
        crate::protocol::dispatch(self, client, text);
    }

    /// Sends `message` to one client (used for errors found before dispatch).
    pub fn send(&mut self, client: ClientId, message: &Message) {
        self.clients.send(client, message, None);
    }

    /// Sends `message` to one client as the answer to its request `request_id` (copied into
    /// `responseTo`).
    pub fn answer(
        &mut self,
        client: ClientId,
        message: &Message,
        request_id: Option<&serde_json::Value>,
    ) {
        self.clients.send(client, message, request_id);
    }

    /// The network configuration for networks started through the protocol: every edge
    /// watched from the start, exported ports wired to clients, unconnected bang ports kept
    /// open for noflo-ui's button.
    pub(crate) fn network_config(&self) -> NetworkConfig {
        NetworkConfig {
            watch_edges: true,
            external_ports: true,
            open_bang_ports: true,
            ..self.config.network.clone()
        }
    }

    /// A fresh number for a network about to start, so reporters of older ones stand down.
    pub(crate) fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Makes the running network of graph `id`, if any, follow `edit`. When it cannot, the
    /// graph keeps the edit (it applies at the next start) and clients are told why.
    pub(crate) fn follow(&mut self, id: &str, edit: LiveEdit) {
        let registry = self.registry.clone();
        let mut nodes = edit.nodes();
        if let LiveEdit::AddExport(direction, name) = &edit {
            nodes.extend(self.exported_process(id, *direction, name));
        }
        let home = self.config.cluster.as_ref().map(|c| c.name().to_string());
        let Some(entry) = self.graphs.get_mut(id) else {
            return;
        };
        let NetworkState::Running(live) = &mut entry.network else {
            return;
        };
        if home.is_some_and(|home| live.needs_placing(&edit, &entry.graph, &home)) {
            self.place_anew(id);
            return;
        }
        if let Err(error) = live.apply(edit, &registry) {
            // noflo-ui shows no network:error, but shows a process error on its node: the user
            // sees there that the new connection waits for the next start.
            nodes.sort();
            nodes.dedup();
            for node in nodes {
                let message = process_error_message(
                    id,
                    &node,
                    &format!(
                        "the running network cannot follow this change: {error}; it applies \
                         at the next start"
                    ),
                );
                self.report(id, &message);
            }
            let message = Message::new(
                "network",
                "error",
                serde_json::json!({
                    "message": format!(
                        "graph '{id}' changed, but its running network cannot follow: {error}; \
                         the change applies at the next start"
                    ),
                    "graph": id,
                }),
            );
            self.report(id, &message);
        }
    }

    /// The process behind the exported port `name` of graph `id`, if there is one.
    fn exported_process(&self, id: &str, direction: Direction, name: &str) -> Option<String> {
        let graph = &self.graphs.get(id)?.graph;
        let exports = match direction {
            Direction::In => &graph.inports,
            Direction::Out => &graph.outports,
        };
        exports
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.process.clone())
    }

    /// Notes that graph `id` changed (for autosave).
    pub(crate) fn edited(&mut self, id: &str) {
        if let Some(entry) = self.graphs.get_mut(id) {
            entry.dirty = true;
        }
    }

    /// Writes the main graph to its file (atomically, keeping a `.bak`), and the subgraphs
    /// clients made beside it; returns the main graph's file.
    ///
    /// # Errors
    ///
    /// There is no main graph or no file for it, or writing failed.
    pub fn persist(&mut self) -> Result<PathBuf, String> {
        let Some(path) = self.config.main_file.clone() else {
            return Err(
                "flowd was started without a graph file (--graph FILE), so there is nowhere \
                 to persist to"
                    .into(),
            );
        };
        let Some(id) = self.main.clone() else {
            return Err("there is no main graph to persist".into());
        };
        let Some(entry) = self.graphs.get_mut(&id) else {
            return Err(format!("the main graph '{id}' is gone"));
        };
        let mut graph = entry.graph.clone();
        graph.properties.insert("id".into(), id.clone().into());
        graph::save(&graph, &path).map_err(|e| format!("cannot persist graph '{id}': {e}"))?;
        entry.dirty = false;
        tracing::info!("saved graph '{id}' to {}", path.display());
        self.persist_subgraphs()?;
        Ok(path)
    }

    /// Writes the main graph and the subgraphs clients made back if any has unsaved edits.
    fn autosave(&mut self) {
        let dirty = self
            .main
            .as_ref()
            .and_then(|id| self.graphs.get(id))
            .is_some_and(|e| e.dirty);
        let saved = if dirty {
            self.persist().map(drop)
        } else if self.subgraphs_dirty() {
            self.persist_subgraphs()
        } else {
            Ok(())
        };
        if let Err(error) = saved {
            tracing::warn!("autosave: {error}");
        }
    }

    /// Stops every network and, with autosave, writes unsaved edits.
    pub fn shutdown(&mut self) {
        for entry in self.graphs.values() {
            if let NetworkState::Running(live) = &entry.network {
                live.stop();
            }
        }
        if self.config.autosave {
            self.autosave();
        }
    }
}

/// The id a graph loaded from `path` goes by.
fn graph_id(graph: &Graph, path: &Path) -> String {
    ["id", "name"]
        .iter()
        .find_map(|key| graph.properties.get(*key).and_then(|v| v.as_str()))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "main".into())
}

/// Tells clients of components that files bring, change or take away while flowd runs
/// (`--components`): a new or changed one as `component:component` to every client that may
/// hear it. The protocol has no message for a removed component: running networks keep their
/// processes, new networks and `component:list` no longer have it, and the log says so.
/// (Graphs made components through the protocol announce themselves.)
fn spawn_component_news(runtime: Weak<Mutex<Runtime>>) {
    let Some(changes) = runtime
        .upgrade()
        .map(|r| Runtime::lock(&r).registry.follow())
    else {
        return;
    };
    let spawned = crate::threads::spawn("flowd-component-news", move || {
        loop {
            let change = match changes.recv_timeout(Duration::from_secs(1)) {
                Ok(change) => Some(change),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            };
            // The runtime gone, so is this thread.
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            let Some(change) = change else {
                continue;
            };
            let mut runtime = Runtime::lock(&runtime);
            match change {
                crate::component::Change::Registered(name) => {
                    let from_file = matches!(
                        runtime.registry.origin(&name),
                        Some(crate::component::Origin::File(_))
                    );
                    if let (true, Some(spec)) = (from_file, runtime.registry.spec(&name)) {
                        let message = crate::protocol::component_message(&spec);
                        runtime.clients.broadcast(&message, None);
                    }
                }
                crate::component::Change::Unregistered(name) => tracing::info!(
                    "component {name} was removed: running networks keep its processes; new \
                     networks and component:list no longer have it"
                ),
            }
        }
    });
    if let Err(error) = spawned {
        tracing::error!("clients will not hear of component files that change: {error}");
    }
}

fn spawn_autosave(runtime: Weak<Mutex<Runtime>>) {
    let spawned = crate::threads::spawn("flowd-autosave", move || {
        loop {
            std::thread::sleep(AUTOSAVE_INTERVAL);
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            Runtime::lock(&runtime).autosave();
        }
    });
    if let Err(error) = spawned {
        tracing::error!("autosave is off: {error}");
    }
}

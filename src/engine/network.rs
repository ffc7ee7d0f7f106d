//! A running network: its processes (tasks on the shared workers, or threads of their own),
//! joined by bounded batched edges.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::build::{Resolver, key, out_slot_for, plan_node, queue_for, watched};
use super::config::NetworkConfig;
use super::context::OutSlot;
use super::deadlock::NetworkActivity;
use super::edge::{Incoming, StopTrigger, Upstreams, stop_signal};
use super::error::Error;
use super::events::{EdgeId, Event, EventSender};
use super::external::{GraphInport, GraphOutport};
use super::live::{InputHandle, Mailbox, NewPorts, Wiring};
use super::metrics::NetworkMetrics;
use super::process::{InQueue, NodePlan, Process};
use super::watch::Watch;
use crate::component::Registry;
use crate::graph::{Graph, PortRef};
use crate::ip::{Ip, Payload};
use crate::threads::Permit;

/// The most batches one inport's queue holds, however many edges feed it: a queue's slots
/// are allocated when the network starts.
const MAX_QUEUE_BATCHES: usize = 1 << 16;

/// How a network ended, as collected by [`Network::wait`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Process errors, as (process id, message), in the order they happened.
    pub errors: Vec<(String, String)>,
    /// Output lines, in the order they were produced.
    pub output: Vec<String>,
    /// Whether the network was stopped rather than finishing by itself.
    pub stopped: bool,
    /// Why the network stopped itself, if it deadlocked ([`Event::Deadlock`]).
    pub deadlock: Option<String>,
    /// Time from start to end.
    pub uptime: Duration,
}

/// A running network.
///
/// Started from a validated graph with [`Network::start`]; each process runs on its own thread
/// until its component returns. [`Network::events`] reports what happens; [`Network::stop`]
/// ends it promptly; dropping the handle stops it too.
pub struct Network {
    /// The network's own stop: exported port handles wait on it, and whether it was pulled
    /// decides between [`Event::Stopped`] and [`Event::Finished`].
    stop: Arc<StopTrigger>,
    events: Receiver<Event>,
    pub(super) events_tx: EventSender,
    pub(super) running: Arc<AtomicUsize>,
    pub(super) watches: HashMap<EdgeId, Watch>,
    inports: HashMap<String, GraphInport>,
    outports: HashMap<String, GraphOutport>,
    started: Instant,
    pub(super) config: NetworkConfig,
    pub(super) wiring: Wiring,
    activity: Arc<NetworkActivity>,
    /// The graph's name, on every log line of its processes.
    name: Arc<str>,
    /// The worker its first tasks went to; processes added live join them there.
    pub(super) home_worker: usize,
}

impl Network {
    /// Validates `graph` against `registry`, instantiates every process and starts them.
    ///
    /// # Errors
    ///
    /// [`Error::Graph`] if the graph is invalid, [`Error::TooManyProcesses`] if the runtime
    /// has no room for its processes, [`Error::Instantiate`] if a component cannot be created
    /// for a process; nothing runs in any of these cases.
    pub fn start(
        graph: &Graph,
        registry: &Registry,
        config: NetworkConfig,
    ) -> Result<Network, Error> {
        let flat;
        let lookup = |name: &str| registry.graph(name);
        let graph = if graph.has_subgraphs(&lookup) {
            graph.validate(registry)?;
            flat = graph.flatten(&lookup)?;
            &flat
        } else {
            graph
        };
        graph.validate(registry)?;
        let config = NetworkConfig {
            default_capacity: config
                .default_capacity
                .clamp(1, crate::graph::Edge::MAX_CAPACITY),
            max_batch: config.max_batch.max(1),
            ..config
        };
        // Before any component is instantiated: a network too large for the runtime costs
        // nothing.
        let permits = crate::threads::admit(graph.nodes.len(), config.max_processes)?;
        let (trigger, signal) = stop_signal();
        let trigger = Arc::new(trigger);
        let (events, events_rx) =
            EventSender::pumped(config.event_capacity.max(16)).map_err(|cause| Error::Spawn {
                node: String::new(),
                cause,
            })?;
        let activity = NetworkActivity::watch(events.clone(), trigger.clone());
        let mut plans = Vec::with_capacity(graph.nodes.len());
        // Still before the network's components are instantiated: which processes need a
        // thread, from one instance of each component.
        let mut probes = HashMap::new();
        let mut on_thread = Vec::with_capacity(graph.nodes.len());
        for (index, node) in graph.nodes.iter().enumerate() {
            let known = probes.get(node.component.as_str()).copied();
            on_thread.push(match known {
                Some(needs) => needs,
                None => {
                    let plan = plan_node(node, graph.name(), registry)?;
                    let needs = config.on_thread(plan.component.as_ref());
                    probes.insert(node.component.as_str(), needs);
                    plans.push((index, plan));
                    needs
                }
            });
        }
        let mut threads =
            crate::threads::reserve_threads(on_thread.iter().filter(|&&t| t).count())?;
        let mut permits = permits;
        for (permit, _) in permits.iter_mut().zip(&on_thread).filter(|(_, t)| **t) {
            threads.assign(permit);
        }
        let mut probed = plans.into_iter().peekable();
        let mut plans = Vec::with_capacity(graph.nodes.len());
        for (index, node) in graph.nodes.iter().enumerate() {
            match probed.next_if(|(at, _)| *at == index) {
                Some((_, plan)) => plans.push(plan),
                None => plans.push(plan_node(node, graph.name(), registry)?),
            }
        }
        let index_of: HashMap<String, usize> = plans
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let mut resolver = Resolver::default();
        let mut watches = HashMap::new();
        let report_initial = config.watch_edges;

        // Size every queue first (fan-in queues hold the sum of their edges), then connect.
        let mut edges = Vec::new();
        for edge in graph.edges() {
            let src = resolver.resolve(&plans, &index_of, &edge.src, false);
            let tgt = resolver.resolve(&plans, &index_of, &edge.tgt, true);
            let capacity = edge
                .capacity()
                .unwrap_or(config.default_capacity)
                .clamp(1, crate::graph::Edge::MAX_CAPACITY);
            edges.push((src, tgt, capacity));
        }
        let mut slots: HashMap<(usize, String, Option<usize>), usize> = HashMap::new();
        for (_, tgt, capacity) in &edges {
            let batch = capacity.min(&config.max_batch).max(&1);
            let slot = slots.entry(key(&index_of, tgt)).or_default();
            *slot = slot.saturating_add(capacity.div_ceil(*batch));
        }
        let exported_in: Vec<(String, PortRef)> = graph
            .inports
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    resolver.resolve(&plans, &index_of, &p.target(), true),
                )
            })
            .collect();
        if config.external_ports {
            for (_, tgt) in &exported_in {
                let batch = config.default_capacity.min(config.max_batch).max(1);
                let slot = slots.entry(key(&index_of, tgt)).or_default();
                *slot = slot.saturating_add(config.default_capacity.div_ceil(batch));
            }
        }
        for ((node, name, index), count) in &slots {
            // A queue's slots are allocated up front: many large edges into one inport must
            // not ask for more memory than there is (and abort).
            let (tx, rx) = super::edge::packet_queue((*count).min(MAX_QUEUE_BATCHES));
            plans[*node].inputs.push(InQueue {
                name: name.clone(),
                index: *index,
                tx,
                rx,
                upstreams: Upstreams::new(0),
                initial: Vec::new(),
            });
        }
        for (src, tgt, capacity) in edges {
            let batch = capacity.min(config.max_batch).max(1);
            let queue = queue_for(&mut plans, &index_of, &tgt);
            queue.upstreams.add();
            let id = EdgeId {
                src: src.clone(),
                tgt: tgt.clone(),
            };
            let outgoing = watched(&mut watches, &events, id, queue.tx.clone(), batch, &config);
            out_slot_for(&mut plans, &index_of, &src).push(outgoing);
        }
        let mut initial = Vec::new();
        for iip in graph.iips() {
            let tgt = resolver.resolve(&plans, &index_of, &iip.tgt, true);
            let ip = Ip::Data(Payload::from_json(&iip.data));
            if report_initial {
                initial.push(Event::Initial {
                    tgt: tgt.clone(),
                    value: iip.data.clone(),
                });
            }
            queue_for(&mut plans, &index_of, &tgt).initial.push(ip);
        }

        let mut inports = HashMap::new();
        let mut outports = HashMap::new();
        if config.external_ports {
            let batch = config.default_capacity.min(config.max_batch).max(1);
            for (name, tgt) in exported_in {
                let queue = queue_for(&mut plans, &index_of, &tgt);
                queue.upstreams.add();
                let id = EdgeId {
                    src: PortRef::new("", name.clone()),
                    tgt,
                };
                let outgoing = watched(&mut watches, &events, id, queue.tx.clone(), batch, &config);
                inports.insert(
                    name,
                    GraphInport::new(outgoing, signal.clone(), activity.clone()),
                );
            }
            for export in &graph.outports {
                let src = resolver.resolve(&plans, &index_of, &export.target(), false);
                let (tx, rx) = super::edge::packet_queue(config.default_capacity.div_ceil(batch));
                let id = EdgeId {
                    src: src.clone(),
                    tgt: PortRef::new("", export.name.clone()),
                };
                let outgoing = watched(&mut watches, &events, id, tx, batch, &config);
                out_slot_for(&mut plans, &index_of, &src).push(outgoing);
                let incoming = Incoming::new(Some(rx), 1, Vec::new());
                outports.insert(
                    export.name.clone(),
                    GraphOutport::new(incoming, signal.clone()),
                );
            }
        }

        let mut network = Network {
            stop: trigger,
            events: events_rx,
            events_tx: events.clone(),
            running: Arc::new(AtomicUsize::new(0)),
            watches,
            inports,
            outports,
            started: Instant::now(),
            config,
            wiring: Wiring::default(),
            activity,
            name: Arc::from(graph.name().unwrap_or_default()),
            home_worker: crate::sched::least_loaded_worker(),
        };
        events.send(Event::Started, None);
        for event in initial {
            events.try_send(event);
        }
        if plans.is_empty() {
            events.send(
                Event::Finished {
                    uptime: Duration::ZERO,
                },
                None,
            );
        }
        let processes: Vec<Process> = plans
            .into_iter()
            .zip(permits)
            .map(|(plan, permit)| network.prepare(plan, permit))
            .collect();
        // Counted before any starts, so that an early finisher cannot end the network.
        network.running.store(processes.len(), Ordering::SeqCst);
        let tasks = processes.iter().filter(|p| p.is_task()).count();
        let mut task = 0;
        for process in processes {
            let node = process.node().to_string();
            let placement = crate::sched::Placement::Block {
                index: task,
                count: tasks,
                first: network.home_worker,
            };
            task += usize::from(process.is_task());
            process.start(placement).map_err(|cause| {
                network.stop();
                Error::Spawn { node, cause }
            })?;
        }
        Ok(network)
    }

    /// Creates the queues and mailboxes a process needs to be edited live (every declared
    /// port gets one), registers them, and makes the process, ready to run.
    pub(super) fn prepare(&mut self, mut plan: NodePlan, permit: Permit) -> Process {
        let batch = self
            .config
            .default_capacity
            .min(self.config.max_batch)
            .max(1);
        for decl in plan.spec.inports.iter().filter(|p| !p.array) {
            if !plan
                .inputs
                .iter()
                .any(|q| q.name == decl.name && q.index.is_none())
            {
                let (tx, rx) =
                    super::edge::packet_queue(self.config.default_capacity.div_ceil(batch));
                // The button's upstream: it never ends while the network runs.
                let button = self.config.open_bang_ports && decl.is_bang();
                if button {
                    self.activity.inport_opened();
                }
                plan.inputs.push(InQueue {
                    name: decl.name.clone(),
                    index: None,
                    tx,
                    rx,
                    upstreams: Upstreams::new(usize::from(button)),
                    initial: Vec::new(),
                });
            }
        }
        for queue in &plan.inputs {
            self.wiring.inputs.insert(
                (plan.id.clone(), queue.name.clone(), queue.index),
                InputHandle {
                    tx: queue.tx.clone(),
                    upstreams: queue.upstreams.clone(),
                    batch,
                },
            );
        }
        for decl in plan.spec.outports.iter().filter(|p| !p.array) {
            if !plan
                .outputs
                .iter()
                .any(|s| s.name == decl.name && s.index.is_none())
            {
                plan.outputs
                    .push(OutSlot::new(&decl.name, None, Vec::new()));
            }
        }
        for slot in &mut plan.outputs {
            let mailbox = Arc::new(Mailbox::default());
            slot.mailbox = Some(mailbox.clone());
            self.wiring
                .outputs
                .insert((plan.id.clone(), slot.name.clone(), slot.index), mailbox);
        }
        let has_array_ports =
            plan.spec.inports.iter().any(|p| p.array) || plan.spec.outports.iter().any(|p| p.array);
        if has_array_ports {
            let ports = Arc::new(NewPorts::default());
            self.wiring.new_ports.insert(plan.id.clone(), ports.clone());
            plan.new_ports = Some(ports);
        }
        let (trigger, signal) = stop_signal();
        let trigger = Arc::new(trigger);
        if self.stop.is_triggered() {
            trigger.trigger();
        }
        let activity = self
            .activity
            .process(&plan.id, &plan.spec.name, trigger.clone());
        let on_thread = self.config.on_thread(plan.component.as_ref());
        let signal = signal.with_activity(activity, on_thread);
        self.wiring.stops.insert(plan.id.clone(), trigger);
        self.wiring.specs.insert(plan.id.clone(), plan.spec.clone());
        // Every line a process logs names it (with `--log-format json`, as fields).
        let span = tracing::info_span!(
            "process",
            graph = %self.name,
            node = %plan.id,
            component = %plan.spec.name
        );
        Process::new(
            plan,
            permit,
            &signal,
            &self.events_tx,
            &self.running,
            &self.stop,
            self.started,
        )
        .in_span(span)
        .on_thread(on_thread)
    }

    /// How the network was built.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The network's events. Someone must drain them while the network runs (see
    /// [`super::events`]); [`Network::wait`] does.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Stops the network: every process waiting in a port operation or a sleep returns
    /// promptly, and the network ends with [`Event::Stopped`]. Idempotent.
    pub fn stop(&self) {
        self.stop.trigger();
        for stop in self.wiring.stops.values() {
            stop.trigger();
        }
    }

    /// Whether any process is still running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst) > 0
    }

    /// How long the network has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Every edge of the network (including those to and from exported ports).
    pub fn edges(&self) -> Vec<EdgeId> {
        self.watches.keys().cloned().collect()
    }

    /// Turns [`Event::Data`] reporting on or off for `edge`; returns whether the edge exists.
    pub fn watch(&self, edge: &EdgeId, on: bool) -> bool {
        match self.watches.get(edge) {
            Some(watch) => {
                watch.set(on);
                true
            }
            None => false,
        }
    }

    /// IPs that passed watched edges without being reported: over
    /// [`NetworkConfig::watch_rate`], or when the event channel was full.
    pub fn unreported(&self) -> u64 {
        self.watches.values().map(Watch::unreported).sum()
    }

    /// What the network has done so far: its processes' states and the time they spent
    /// blocked, its edges' IPs, bytes and fill.
    pub fn metrics(&self) -> NetworkMetrics {
        NetworkMetrics {
            processes: self.activity.metrics(),
            edges: self
                .watches
                .iter()
                .map(|(edge, watch)| watch.metrics(edge))
                .collect(),
        }
    }

    /// Turns [`Event::Data`] reporting on or off for every edge.
    pub fn watch_all(&self, on: bool) {
        for watch in self.watches.values() {
            watch.set(on);
        }
    }

    /// Takes the handle that feeds the exported inport `name` (once; `None` afterwards, or if
    /// there is no such port or exported ports are not wired). Dropping the handle ends the
    /// stream into that port.
    pub fn take_inport(&mut self, name: &str) -> Option<GraphInport> {
        self.inports.remove(name)
    }

    /// Takes the handle that reads the exported outport `name` (once, like
    /// [`Network::take_inport`]). Until taken, IPs on that port wait in its queue.
    pub fn take_outport(&mut self, name: &str) -> Option<GraphOutport> {
        self.outports.remove(name)
    }

    /// Ends the stream into every exported inport whose handle was not taken.
    pub fn close_inports(&mut self) {
        self.inports.clear();
    }

    /// Waits until the network finishes or is stopped, collecting errors and output.
    ///
    /// Every output line is kept in the [`Outcome`]: for networks that print without end,
    /// read [`Network::events`] instead.
    pub fn wait(mut self) -> Outcome {
        let mut outcome = Outcome::default();
        // Untaken outport handles would hold processes back: drain them.
        self.outports.clear();
        while let Ok(event) = self.events.recv() {
            match event {
                Event::ProcessError { node, message } => outcome.errors.push((node, message)),
                Event::Output { message, .. } => outcome.output.push(message),
                Event::Deadlock { message, .. } => outcome.deadlock = Some(message),
                Event::Finished { uptime } => {
                    outcome.uptime = uptime;
                    break;
                }
                Event::Stopped { uptime } => {
                    outcome.uptime = uptime;
                    outcome.stopped = true;
                    break;
                }
                _ => {}
            }
        }
        outcome
    }

    /// Stops the network and waits up to `timeout` for every process to end; returns whether
    /// they all did.
    pub fn stop_and_wait(&mut self, timeout: Duration) -> bool {
        self.stop();
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                return false;
            }
            // Drain events so that no process waits on a full event channel.
            let _ = self.events.recv_timeout(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.stop();
    }
}

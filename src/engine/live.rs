//! Live edits: processes, edges and IIPs added to or removed from a running network.
//!
//! The network keeps, for every inport of every process, a sender of its queue and its count
//! of upstreams, and for every outport a [`Mailbox`]. Adding an edge raises the receiver's
//! count, then posts the new sender to the sending process's mailbox; the process adopts it
//! when it takes in a batch, wakes from a wait or fills a batch, so the hot path pays one
//! relaxed load per batch, and whatever a process sends in answer to an IP that arrived after
//! the edit goes on the new edge too. Removing an edge
//! announces its end to the receiver at once and tells the sender to drop it; removing a
//! process does both for each of its edges. An IIP for a running process travels as a
//! one-packet upstream of its own.
//!
//! A new index of an array port gets its queue or mailbox made then and there, handed to its
//! process through [`NewPorts`], with a nudge that wakes the process if it waits on its other
//! ports; components that serve every index
//! ([`crate::engine::ProcessContext::recv_any_index`],
//! [`crate::engine::ProcessContext::port_generation`]) take it up from the next IP.
//!
//! A process added live starts when its first input arrives (an edge or an IIP), so that it
//! does not see end of stream on inports that are about to be connected; a process without
//! inports starts at once.
//!
//! What cannot change live is refused with [`LiveEditError`]; the graph edit still stands and
//! takes effect at the next start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::edge::{
    Outgoing, Packet, PacketReceiver, PacketSender, StopTrigger, Upstreams, packet_queue,
};
use super::events::{EdgeId, Event};
use super::network::Network;
use super::parker::Parker;
use super::process::Process;
use super::queue::TrySendError;
use super::watch::{Watch, Watcher};
use crate::component::{ComponentSpec, Registry};
use crate::graph::{Node, PortRef};
use crate::ip::{Ip, Payload};

/// Why a live edit could not be applied to the running network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveEditError {
    /// No process has this id in the running network.
    #[error("the running network has no process '{0}'")]
    NoProcess(String),
    /// A process with this id runs already.
    #[error("the running network already has a process '{0}'")]
    ProcessExists(String),
    /// The process has ended; it takes no new connections.
    #[error("process '{0}' has already ended")]
    Ended(String),
    /// The port cannot be (dis)connected while running.
    #[error("{0}")]
    Port(String),
    /// The process could not be created.
    #[error("cannot create process '{node}': {message}")]
    Instantiate {
        /// The process.
        node: String,
        /// Why.
        message: String,
    },
    /// The runtime has no room for another process.
    #[error(transparent)]
    TooManyProcesses(#[from] crate::threads::Refused),
}

/// Edits posted to an outport of a running process.
pub(crate) enum Mail {
    /// A new connection.
    Attach(Outgoing),
    /// The connection feeding this edge is removed (its end was announced already).
    Detach(EdgeId),
}

#[derive(Default)]
struct MailState {
    items: Vec<Mail>,
    closed: bool,
}

/// The live edits waiting for one outport.
#[derive(Default)]
pub(crate) struct Mailbox {
    pending: AtomicBool,
    state: Mutex<MailState>,
}

impl Mailbox {
    /// Whether edits are waiting (a relaxed load: cheap enough for every batch).
    pub(crate) fn has_mail(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes the waiting edits.
    pub(crate) fn take(&self) -> Vec<Mail> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut state.items)
    }

    /// Takes the waiting edits and refuses any later ones: the port's process is finishing.
    pub(crate) fn close(&self) -> Vec<Mail> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut state.items)
    }

    /// Posts `mail` after running `before` (both under the lock), unless the port's process
    /// has finished; returns whether it was posted.
    fn post(&self, mail: Mail, before: impl FnOnce()) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return false;
        }
        before();
        state.items.push(mail);
        self.pending.store(true, Ordering::Release);
        true
    }
}

/// A new index of an array port, made by a live edit, for its process to adopt.
pub(crate) enum NewSlot {
    /// An index of an array inport, with its queue and count of upstreams.
    In {
        name: String,
        index: usize,
        rx: PacketReceiver,
        upstreams: Upstreams,
    },
    /// An index of an array outport, with the mailbox its connections arrive by.
    Out {
        name: String,
        index: usize,
        mailbox: Arc<Mailbox>,
    },
}

/// The new array port indexes waiting for a process that has array ports, and the parker
/// that wakes it to adopt them when it waits on its other ports.
#[derive(Default)]
pub(crate) struct NewPorts {
    pending: AtomicBool,
    state: Mutex<(Vec<NewSlot>, bool)>,
    parker: std::sync::OnceLock<Arc<Parker>>,
}

impl NewPorts {
    /// Has `parker` (the process's) rung when slots are posted.
    pub(crate) fn ring(&self, parker: Arc<Parker>) {
        let _ = self.parker.set(parker);
    }

    /// Whether slots are waiting (a relaxed load: cheap enough for every batch).
    pub(crate) fn has_slots(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes the waiting slots; with `close`, refuses any later ones (the process ends).
    pub(crate) fn take(&self, close: bool) -> Vec<NewSlot> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 |= close;
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut state.0)
    }

    /// Posts `slot` and wakes the process, unless it has ended; returns whether it was posted.
    fn post(&self, slot: NewSlot) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.1 {
            return false;
        }
        state.0.push(slot);
        self.pending.store(true, Ordering::Release);
        drop(state);
        if let Some(parker) = self.parker.get() {
            parker.notify();
        }
        true
    }
}

/// A port of a process, by its declared name: `(process, port, index)`.
pub(crate) type PortKey = (String, String, Option<usize>);

/// The sending side of an inport's queue, kept by the network for live edits.
pub(crate) struct InputHandle {
    pub(crate) tx: PacketSender,
    pub(crate) upstreams: Upstreams,
    pub(crate) batch: usize,
}

/// What the network keeps to edit itself while it runs.
#[derive(Default)]
pub(crate) struct Wiring {
    pub(crate) inputs: HashMap<PortKey, InputHandle>,
    pub(crate) outputs: HashMap<PortKey, Arc<Mailbox>>,
    pub(crate) specs: HashMap<String, ComponentSpec>,
    /// Each process's own stop, so one can be removed.
    pub(crate) stops: HashMap<String, Arc<StopTrigger>>,
    /// Processes added live that wait for their first input to start.
    pub(crate) waiting: HashMap<String, Process>,
    /// Where new indexes of array ports go, for each process that has array ports.
    pub(crate) new_ports: HashMap<String, Arc<NewPorts>>,
}

impl Network {
    /// Whether the network has a process called `id` (running, waiting for its first input, or
    /// ended by itself).
    pub fn has_process(&self, id: &str) -> bool {
        self.wiring.specs.contains_key(id)
    }

    /// Adds a process for `node` to the running network. It starts with its first input, or
    /// at once if its component has no inports.
    ///
    /// # Errors
    ///
    /// [`LiveEditError::ProcessExists`], [`LiveEditError::Instantiate`], or
    /// [`LiveEditError::TooManyProcesses`] when the runtime has no room for another process.
    pub fn add_process(&mut self, node: &Node, registry: &Registry) -> Result<(), LiveEditError> {
        if self.wiring.specs.contains_key(&node.id) {
            return Err(LiveEditError::ProcessExists(node.id.clone()));
        }
        let mut permit = crate::threads::admit_one(self.config.max_processes)?;
        let plan = super::build::plan_node(node, None, registry).map_err(|e| {
            LiveEditError::Instantiate {
                node: node.id.clone(),
                message: e.to_string(),
            }
        })?;
        if self.config.on_thread(plan.component.as_ref()) {
            crate::threads::reserve_threads(1)?.assign(&mut permit);
        }
        let starts_now = plan.spec.inports.is_empty();
        let process = self.prepare(plan, permit);
        if starts_now {
            self.launch(process)
        } else {
            self.wiring.waiting.insert(node.id.clone(), process);
            Ok(())
        }
    }

    /// Stops and removes the process `id`; the processes it fed see its edges end.
    ///
    /// # Errors
    ///
    /// [`LiveEditError::NoProcess`].
    pub fn remove_process(&mut self, id: &str) -> Result<(), LiveEditError> {
        if self.wiring.specs.remove(id).is_none() {
            return Err(LiveEditError::NoProcess(id.into()));
        }
        self.wiring.waiting.remove(id);
        if let Some(stop) = self.wiring.stops.remove(id) {
            stop.trigger();
        }
        // A stopped process announces no ends: do it for it.
        let edges: Vec<EdgeId> = self
            .watches
            .keys()
            .filter(|e| e.src.process == id || e.tgt.process == id)
            .cloned()
            .collect();
        for edge in edges {
            if let Some(watch) = self.watches.remove(&edge) {
                watch.set(false);
            }
            if edge.src.process == id
                && let Some(input) = self.wiring.inputs.get(&key(&edge.tgt))
            {
                deliver(&input.tx, vec![Packet::End]);
            } else if edge.tgt.process == id
                && let Some(mailbox) = self.wiring.outputs.get(&key(&edge.src))
            {
                // The sender stops feeding the removed process at its next wait or batch.
                mailbox.post(Mail::Detach(edge), || {});
            }
        }
        self.wiring.inputs.retain(|k, _| k.0 != id);
        self.wiring.outputs.retain(|k, _| k.0 != id);
        self.wiring.new_ports.remove(id);
        Ok(())
    }

    /// Connects `src` (an outport) to `tgt` (an inport) while the network runs.
    ///
    /// # Errors
    ///
    /// [`LiveEditError`] when a process is missing or has ended, or a port cannot be
    /// connected live. A new index of an array port is handed to its process, which adopts
    /// it as it does new edges (and wakes to, if it waits on its other ports).
    pub fn connect(
        &mut self,
        src: &PortRef,
        tgt: &PortRef,
        capacity: Option<usize>,
    ) -> Result<(), LiveEditError> {
        let src = self.declared(src, false)?;
        let tgt = self.declared(tgt, true)?;
        let edge = EdgeId {
            src: src.clone(),
            tgt: tgt.clone(),
        };
        if self.watches.contains_key(&edge) {
            return Err(LiveEditError::Port(format!(
                "the edge {edge} exists already"
            )));
        }
        let new_input = self.new_array_input(&tgt)?;
        let mailbox = match self.mailbox(&src) {
            Ok(mailbox) => mailbox,
            Err(error) => self.new_array_output(&src).ok_or(error)?,
        };
        let input = match &new_input {
            Some((handle, _)) => handle,
            None => self.input(&tgt)?,
        };
        let batch = capacity.map_or(input.batch, |c| c.min(input.batch).max(1));
        let watch = Watch::new(&input.tx, batch);
        watch.set(self.config.watches(&edge));
        let watcher = Watcher::new(
            edge.clone(),
            watch.clone(),
            self.events_tx.clone(),
            self.config.watch_rate,
        );
        let outgoing = Outgoing::new(input.tx.clone(), batch).watched(watcher);
        let upstreams = input.upstreams.clone();
        if !mailbox.post(Mail::Attach(outgoing), || upstreams.add()) {
            return Err(LiveEditError::Ended(src.process.clone()));
        }
        // Handed over only now, counting its upstream: the receiver must not see it ended.
        if let Some((handle, slot)) = new_input {
            let posted = self
                .wiring
                .new_ports
                .get(&tgt.process)
                .is_some_and(|ports| ports.post(slot));
            if !posted {
                return Err(LiveEditError::Ended(tgt.process.clone()));
            }
            self.wiring.inputs.insert(key(&tgt), handle);
        }
        self.watches.insert(edge, watch);
        self.start_waiting(&tgt.process)
    }

    /// Removes the edge from `src` to `tgt` while the network runs: the receiver sees it end
    /// at once.
    ///
    /// # Errors
    ///
    /// [`LiveEditError::Port`] if there is no such edge.
    pub fn disconnect(&mut self, src: &PortRef, tgt: &PortRef) -> Result<(), LiveEditError> {
        let edge = EdgeId {
            src: self.declared(src, false)?,
            tgt: self.declared(tgt, true)?,
        };
        let Some(watch) = self.watches.remove(&edge) else {
            return Err(LiveEditError::Port(format!(
                "no edge {edge} in the running network"
            )));
        };
        // The sender may push a few more IPs before it adopts the removal: they are not shown.
        watch.set(false);
        let input = self.input(&edge.tgt)?;
        let tx = input.tx.clone();
        let mailbox = self.mailbox(&edge.src)?;
        // If the sender has finished, it announced the end itself.
        mailbox.post(Mail::Detach(edge.clone()), || {
            deliver(&tx, vec![Packet::End])
        });
        Ok(())
    }

    /// Delivers the IIP `value` to `tgt` while the network runs (starting a process added
    /// live), reported as [`Event::Initial`] before anything it causes.
    ///
    /// # Errors
    ///
    /// [`LiveEditError`] when the process or port is missing.
    pub fn send_initial(
        &mut self,
        tgt: &PortRef,
        value: &serde_json::Value,
    ) -> Result<(), LiveEditError> {
        let tgt = self.declared(tgt, true)?;
        let input = self.input(&tgt)?;
        let ip = Ip::Data(Payload::from_json(value));
        if self.config.watch_edges {
            self.events_tx.try_send(Event::Initial {
                tgt: tgt.clone(),
                value: value.clone(),
            });
        }
        input.upstreams.add();
        deliver(&input.tx, vec![Packet::Batch(vec![ip]), Packet::End]);
        self.start_waiting(&tgt.process)
    }

    /// `port` with the spelling its component declares, checked to exist.
    fn declared(&self, port: &PortRef, inport: bool) -> Result<PortRef, LiveEditError> {
        let spec = self
            .wiring
            .specs
            .get(&port.process)
            .ok_or_else(|| LiveEditError::NoProcess(port.process.clone()))?;
        let decl = if inport {
            spec.find_inport(&port.port)
        } else {
            spec.find_outport(&port.port)
        };
        let decl = decl.ok_or_else(|| {
            LiveEditError::Port(format!(
                "component '{}' of process '{}' has no {} '{}'",
                spec.name,
                port.process,
                if inport { "inport" } else { "outport" },
                port.port
            ))
        })?;
        Ok(PortRef {
            process: port.process.clone(),
            port: decl.name.clone(),
            index: if decl.array { port.index } else { None },
        })
    }

    /// For a new index of an array inport of a process that takes new indexes: its queue's
    /// handle and the slot its process adopts (`None` for any other port).
    fn new_array_input(
        &self,
        port: &PortRef,
    ) -> Result<Option<(InputHandle, NewSlot)>, LiveEditError> {
        let Some(index) = port.index else {
            return Ok(None);
        };
        if self.wiring.inputs.contains_key(&key(port))
            || !self.wiring.new_ports.contains_key(&port.process)
        {
            return Ok(None);
        }
        let batch = self
            .config
            .default_capacity
            .min(self.config.max_batch)
            .max(1);
        let (tx, rx) = packet_queue(self.config.default_capacity.div_ceil(batch));
        let upstreams = Upstreams::new(0);
        let slot = NewSlot::In {
            name: port.port.clone(),
            index,
            rx,
            upstreams: upstreams.clone(),
        };
        Ok(Some((
            InputHandle {
                tx,
                upstreams,
                batch,
            },
            slot,
        )))
    }

    /// For a new index of an array outport of a process that takes new indexes: its mailbox,
    /// handed to the process.
    fn new_array_output(&mut self, port: &PortRef) -> Option<Arc<Mailbox>> {
        let index = port.index?;
        let ports = self.wiring.new_ports.get(&port.process)?;
        let mailbox = Arc::new(Mailbox::default());
        let slot = NewSlot::Out {
            name: port.port.clone(),
            index,
            mailbox: mailbox.clone(),
        };
        if !ports.post(slot) {
            return None;
        }
        self.wiring.outputs.insert(key(port), mailbox.clone());
        Some(mailbox)
    }

    fn input(&self, port: &PortRef) -> Result<&InputHandle, LiveEditError> {
        self.wiring.inputs.get(&key(port)).ok_or_else(|| {
            LiveEditError::Port(format!(
                "inport {port} cannot be connected while the network runs"
            ))
        })
    }

    fn mailbox(&self, port: &PortRef) -> Result<Arc<Mailbox>, LiveEditError> {
        self.wiring.outputs.get(&key(port)).cloned().ok_or_else(|| {
            LiveEditError::Port(format!(
                "outport {port} cannot be connected while the network runs"
            ))
        })
    }

    /// Starts `id` if it was added live and waited for its first input.
    fn start_waiting(&mut self, id: &str) -> Result<(), LiveEditError> {
        match self.wiring.waiting.remove(id) {
            Some(process) => self.launch(process),
            None => Ok(()),
        }
    }

    fn launch(&mut self, process: Process) -> Result<(), LiveEditError> {
        let node = process.node().to_string();
        self.running.fetch_add(1, Ordering::SeqCst);
        process
            .start(crate::sched::Placement::On(self.home_worker))
            .map_err(|error| {
                self.running.fetch_sub(1, Ordering::SeqCst);
                LiveEditError::Instantiate {
                    node,
                    message: format!("cannot start its thread: {error}"),
                }
            })
    }
}

fn key(port: &PortRef) -> PortKey {
    (port.process.clone(), port.port.clone(), port.index)
}

/// Sends `packets` on `tx` without blocking the caller: what does not fit now is sent by a
/// short-lived thread as the receiver drains its queue (or dropped if it goes away).
pub(crate) fn deliver(tx: &PacketSender, packets: Vec<Packet>) {
    let mut packets = packets.into_iter();
    for packet in packets.by_ref() {
        match tx.try_send(packet) {
            Ok(()) => continue,
            Err(TrySendError::Disconnected(_)) => return,
            Err(TrySendError::Full(packet)) => {
                let tx = tx.clone();
                let rest: Vec<Packet> = std::iter::once(packet).chain(packets).collect();
                let spawned = crate::threads::spawn("flowd-deliver", move || {
                    for packet in rest {
                        if tx.send_blocking(packet).is_err() {
                            return;
                        }
                    }
                });
                if let Err(error) = spawned {
                    tracing::error!("a live edit's packets are lost: {error}");
                }
                return;
            }
        }
    }
}

//! The process side of the engine: what a running component sees.
//!
//! A component's `run` gets a [`ProcessContext`]. It looks its ports up once by name
//! ([`ProcessContext::inport`], [`ProcessContext::outport`], and the `_at` variants for array
//! ports), getting small copyable handles, then receives and sends through the context. Because
//! the context owns every port of the process, it can hand over the process's partly filled
//! output batches whenever the process is about to wait, so batching never delays an IP that
//! its receiver is waiting for.

mod receive;
mod send;

use std::sync::Arc;
use std::time::Duration;

use super::edge::{Incoming, Outgoing, StopSignal};
use super::error::ProcessError;
use super::events::{Event, EventSender};
use super::live::{NewPorts, NewSlot};
use crate::ip::Ip;

pub(crate) use receive::InSlot;
pub(crate) use send::OutSlot;

/// A handle to one inport (or one index of an array inport) of the running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InPort(usize);

/// A handle to one outport (or one index of an array outport) of the running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutPort(usize);

/// What [`ProcessContext::recv_any`] found.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// An IP arrived on this port.
    Ip(InPort, Ip),
    /// This port has just reached end of stream (reported once per port).
    Ended(InPort),
    /// Every port asked about has ended.
    AllEnded,
    /// The deadline passed first (only with a deadline).
    Timeout,
}

/// What [`ProcessContext::recv_any_or`] found.
#[derive(Debug, PartialEq)]
pub enum ReceivedOr<T> {
    /// From the ports: an IP or a port's end of stream.
    Port(Received),
    /// From the channel: a message, or `None` once every sender has gone.
    Channel(Option<T>),
}

/// A port as the component declared it.
#[derive(Debug, Clone)]
pub(crate) struct PortDecl {
    pub(crate) name: String,
    pub(crate) array: bool,
}

/// Everything a running process uses: its ports, its node id, output and stop.
pub struct ProcessContext {
    node: String,
    in_decls: Vec<PortDecl>,
    out_decls: Vec<PortDecl>,
    inports: Vec<InSlot>,
    outports: Vec<OutSlot>,
    stop: StopSignal,
    events: EventSender,
    /// Where `recv_any` starts looking, so that no port starves the others.
    next_any: usize,
    /// Where live edits hand over new indexes of array ports (processes with array ports
    /// only); they ring this process's parker to have them adopted.
    new_ports: Option<Arc<NewPorts>>,
    /// Counts the array port indexes adopted while running ([`ProcessContext::port_generation`]).
    port_generation: u64,
}

impl ProcessContext {
    pub(crate) fn new(
        node: String,
        in_decls: Vec<PortDecl>,
        out_decls: Vec<PortDecl>,
        inports: Vec<InSlot>,
        outports: Vec<OutSlot>,
        stop: StopSignal,
        events: EventSender,
    ) -> ProcessContext {
        ProcessContext {
            node,
            in_decls,
            out_decls,
            inports,
            outports,
            stop,
            events,
            next_any: 0,
            new_ports: None,
            port_generation: 0,
        }
    }

    /// Lets live edits add indexes to this process's array ports through `new_ports`.
    pub(crate) fn take_new_ports_from(&mut self, new_ports: Arc<NewPorts>) {
        new_ports.ring(self.stop.parker());
        self.new_ports = Some(new_ports);
    }

    /// Changes each time a live edit gives an array port of this process a new index. A
    /// component that serves every index of an array port reads [`Self::inport_indexes`] or
    /// [`Self::outport_indexes`] again when it changes ([`Self::recv_any_index`] does so
    /// itself).
    pub fn port_generation(&self) -> u64 {
        self.port_generation
    }

    /// Adopts the array port indexes that live edits added; with `closing`, refuses later
    /// ones (the process is ending).
    pub(super) fn adopt_new_ports(&mut self, closing: bool) {
        let Some(ports) = &self.new_ports else {
            return;
        };
        if !closing && !ports.has_slots() {
            return;
        }
        for slot in ports.take(closing) {
            match slot {
                NewSlot::In {
                    name,
                    index,
                    rx,
                    upstreams,
                } => {
                    let incoming = Incoming::shared(Some(rx), upstreams, Vec::new());
                    let slot = InSlot::new(&self.node, &name, Some(index), incoming);
                    // A slot asked for before it was connected holds no queue: replaced.
                    match self
                        .inports
                        .iter()
                        .position(|s| s.name == name && s.index == Some(index))
                    {
                        Some(i) => self.inports[i] = slot,
                        None => self.inports.push(slot),
                    }
                }
                NewSlot::Out {
                    name,
                    index,
                    mailbox,
                } => {
                    let i = self.out_slot(&name, Some(index));
                    self.outports[i].mailbox = Some(mailbox);
                }
            }
        }
        self.port_generation += 1;
    }

    /// The id of this process in its graph.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The inport called `name` (case-insensitive).
    ///
    /// # Errors
    ///
    /// Fails if the component declared no such plain (non-array) inport.
    pub fn inport(&mut self, name: &str) -> Result<InPort, ProcessError> {
        let decl = find_decl(&self.in_decls, name, "inport")?;
        if decl.array {
            return Err(ProcessError::failed(format!(
                "inport '{name}' is an array port: use inport_at"
            )));
        }
        let name = decl.name.clone();
        Ok(InPort(self.in_slot(&name, None)))
    }

    /// Index `index` of the array inport called `name`.
    ///
    /// # Errors
    ///
    /// Fails if the component declared no such array inport.
    pub fn inport_at(&mut self, name: &str, index: usize) -> Result<InPort, ProcessError> {
        let name = find_array_decl(&self.in_decls, name, "inport")?;
        Ok(InPort(self.in_slot(&name, Some(index))))
    }

    /// The connected indexes of the array inport `name`, in order.
    pub fn inport_indexes(&self, name: &str) -> Vec<usize> {
        let mut indexes: Vec<usize> = self
            .inports
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(name))
            .filter_map(|s| s.index)
            .collect();
        indexes.sort_unstable();
        indexes
    }

    /// The outport called `name` (case-insensitive).
    ///
    /// # Errors
    ///
    /// Fails if the component declared no such plain (non-array) outport.
    pub fn outport(&mut self, name: &str) -> Result<OutPort, ProcessError> {
        let decl = find_decl(&self.out_decls, name, "outport")?;
        if decl.array {
            return Err(ProcessError::failed(format!(
                "outport '{name}' is an array port: use outport_at"
            )));
        }
        let name = decl.name.clone();
        Ok(OutPort(self.out_slot(&name, None)))
    }

    /// Index `index` of the array outport called `name`.
    ///
    /// # Errors
    ///
    /// Fails if the component declared no such array outport.
    pub fn outport_at(&mut self, name: &str, index: usize) -> Result<OutPort, ProcessError> {
        let name = find_array_decl(&self.out_decls, name, "outport")?;
        Ok(OutPort(self.out_slot(&name, Some(index))))
    }

    /// The connected indexes of the array outport `name`, in order.
    pub fn outport_indexes(&self, name: &str) -> Vec<usize> {
        let mut indexes: Vec<usize> = self
            .outports
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(name) && !s.connections.is_empty())
            .filter_map(|s| s.index)
            .collect();
        indexes.sort_unstable();
        indexes
    }

    /// Sleeps for `duration` (after flushing), returning early if the network stops.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn sleep(&mut self, duration: Duration) -> Result<(), ProcessError> {
        self.flush()?;
        self.stop.sleep(duration)
    }

    /// Where the process reports the bytes of memory it has in use (a sandbox that knows, as
    /// the WebAssembly host does); operators read it as a metric. `None` outside a network.
    pub fn memory_gauge(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        self.stop.activity().map(|a| a.memory().clone())
    }

    /// Whether the network is stopping; long computations should check it now and then.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_stopped()
    }

    /// Reports a line of output for the user (shown by `flowd run`, sent to protocol clients as
    /// `network:output`).
    pub fn output(&mut self, message: impl Into<String>) {
        self.events.send(
            Event::Output {
                node: self.node.clone(),
                message: message.into(),
            },
            Some(&self.stop),
        );
    }

    /// A handle that reports output lines for this process from anywhere (e.g. a guest's
    /// captured standard output).
    pub(crate) fn output_sink(&self) -> OutputSink {
        OutputSink {
            node: self.node.clone(),
            events: self.events.clone(),
            stop: self.stop.clone(),
        }
    }

    /// A context with no ports, outside any network (events go nowhere, waits end at once):
    /// for calling a guest's `describe`.
    pub(crate) fn detached(node: &str) -> ProcessContext {
        let (_trigger, stop) = super::edge::stop_signal();
        let (events, _) = EventSender::new(1);
        ProcessContext::new(
            node.to_string(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            stop,
            events,
        )
    }

    /// Moves the context out, leaving an empty one (no ports) in its place; the WebAssembly
    /// host keeps the real one in its store while a guest runs.
    pub(crate) fn take(&mut self) -> ProcessContext {
        let empty = ProcessContext::new(
            self.node.clone(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            self.stop.clone(),
            self.events.clone(),
        );
        std::mem::replace(self, empty)
    }

    /// Flushes every output and announces end of stream on each connection.
    pub(crate) fn finish(&mut self) {
        self.close_outports(|connection, stop| {
            let _ = connection.finish(stop);
        });
    }

    /// Announces end of stream on every connection that has not announced it yet, dropping
    /// what was not flushed: the last resort for a process whose [`ProcessContext::finish`]
    /// panicked, so that no receiver waits for it forever.
    pub(crate) fn abandon(&mut self) {
        self.close_outports(|connection, stop| {
            let _ = connection.end(stop);
        });
    }

    fn close_outports(&mut self, close: impl Fn(&mut Outgoing, &StopSignal)) {
        // Indexes still on their way get their connections, so that those end too.
        self.adopt_new_ports(true);
        for slot in &mut self.outports {
            // Closing the mailbox first: no edge can be added to a finished port.
            if let Some(mailbox) = slot.mailbox.clone() {
                for mail in mailbox.close() {
                    slot.apply(mail);
                }
            }
            for connection in &mut slot.connections {
                close(connection, &self.stop);
            }
        }
    }

    fn in_slot(&mut self, name: &str, index: Option<usize>) -> usize {
        if let Some(i) = self
            .inports
            .iter()
            .position(|s| s.name == name && s.index == index)
        {
            return i;
        }
        self.inports.push(InSlot::new(
            &self.node,
            name,
            index,
            Incoming::new(None, 0, Vec::new()),
        ));
        self.inports.len() - 1
    }

    fn out_slot(&mut self, name: &str, index: Option<usize>) -> usize {
        if let Some(i) = self
            .outports
            .iter()
            .position(|s| s.name == name && s.index == index)
        {
            return i;
        }
        self.outports.push(OutSlot::new(name, index, Vec::new()));
        self.outports.len() - 1
    }
}

fn find_decl<'a>(
    decls: &'a [PortDecl],
    name: &str,
    direction: &str,
) -> Result<&'a PortDecl, ProcessError> {
    decls
        .iter()
        .find(|d| d.name == name)
        .or_else(|| decls.iter().find(|d| d.name.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            ProcessError::failed(format!("the component declares no {direction} '{name}'"))
        })
}

fn find_array_decl(
    decls: &[PortDecl],
    name: &str,
    direction: &str,
) -> Result<String, ProcessError> {
    let decl = find_decl(decls, name, direction)?;
    if !decl.array {
        return Err(ProcessError::failed(format!(
            "{direction} '{name}' is not an array port"
        )));
    }
    Ok(decl.name.clone())
}

/// Reports output lines for one process; see [`ProcessContext::output_sink`].
#[derive(Clone)]
pub(crate) struct OutputSink {
    node: String,
    events: EventSender,
    stop: StopSignal,
}

impl OutputSink {
    /// Reports one line of output.
    pub(crate) fn line(&self, message: String) {
        self.events.send(
            Event::Output {
                node: self.node.clone(),
                message,
            },
            Some(&self.stop),
        );
    }
}

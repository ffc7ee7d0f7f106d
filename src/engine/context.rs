//! The process side of the engine: what a running component sees.
//!
//! A component's `run` gets a [`ProcessContext`]. It looks its ports up once by name
//! ([`ProcessContext::inport`], [`ProcessContext::outport`], and the `_at` variants for array
//! ports), getting small copyable handles, then receives and sends through the context. Because
//! the context owns every port of the process, it can hand over the process's partly filled
//! output batches whenever the process is about to wait, so batching never delays an IP that
//! its receiver is waiting for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use super::edge::{Incoming, Outgoing, Packet, StopSignal, Woken, YIELDS_BEFORE_PARKING};
use super::error::ProcessError;
use super::events::{Event, EventSender};
use super::live::{Mail, Mailbox};
use crate::ip::{Ip, Payload};

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

pub(crate) struct InSlot {
    pub(crate) name: String,
    pub(crate) index: Option<usize>,
    pub(crate) incoming: Incoming,
    end_reported: bool,
}

pub(crate) struct OutSlot {
    pub(crate) name: String,
    pub(crate) index: Option<usize>,
    pub(crate) connections: Vec<Outgoing>,
    /// Connections added or removed while the network runs (live edits).
    pub(crate) mailbox: Option<Arc<Mailbox>>,
}

impl InSlot {
    pub(crate) fn new(name: &str, index: Option<usize>, incoming: Incoming) -> InSlot {
        InSlot {
            name: name.to_string(),
            index,
            incoming,
            end_reported: false,
        }
    }
}

impl OutSlot {
    pub(crate) fn new(name: &str, index: Option<usize>, connections: Vec<Outgoing>) -> OutSlot {
        OutSlot {
            name: name.to_string(),
            index,
            connections,
            mailbox: None,
        }
    }

    /// Applies the live edits posted to this port.
    fn read_mail(&mut self) {
        let Some(mailbox) = &self.mailbox else {
            return;
        };
        if !mailbox.has_mail() {
            return;
        }
        for mail in mailbox.take() {
            self.apply(mail);
        }
    }

    fn apply(&mut self, mail: Mail) {
        match mail {
            Mail::Attach(outgoing) => self.connections.push(outgoing),
            // The network announced the end to the receiver itself.
            Mail::Detach(edge) => self.connections.retain(|c| c.edge() != Some(&edge)),
        }
    }
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
        }
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

    /// Whether `port` has at least one connection that is still open downstream.
    pub fn is_outport_connected(&self, port: OutPort) -> bool {
        self.outports[port.0]
            .connections
            .iter()
            .any(|c| !c.is_closed())
    }

    /// Receives the next IP on `port`, waiting for one; `None` at end of stream.
    ///
    /// Before waiting, hands over this process's partly filled output batches.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    #[inline]
    pub fn recv(&mut self, port: InPort) -> Result<Option<Ip>, ProcessError> {
        if let Some(ip) = self.inports[port.0].incoming.next_buffered() {
            return Ok(Some(ip));
        }
        self.recv_slow(port)
    }

    /// [`ProcessContext::recv`] once the current batch is used up.
    #[cold]
    fn recv_slow(&mut self, port: InPort) -> Result<Option<Ip>, ProcessError> {
        loop {
            let slot = &mut self.inports[port.0];
            if let Some(ip) = slot.incoming.next_buffered() {
                return Ok(Some(ip));
            }
            if slot.incoming.is_ended() {
                slot.end_reported = true;
                return Ok(None);
            }
            if self.stop.is_stopped() {
                return Err(ProcessError::Stopped);
            }
            if slot.incoming.poll() {
                continue;
            }
            self.wait_for(&[port], None)?;
        }
    }

    /// Receives the next IP on `port` if one is there now, without waiting; `None` if there is
    /// none (see [`ProcessContext::is_ended`] to tell end of stream apart).
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn try_recv(&mut self, port: InPort) -> Result<Option<Ip>, ProcessError> {
        if self.stop.is_stopped() {
            return Err(ProcessError::Stopped);
        }
        let incoming = &mut self.inports[port.0].incoming;
        loop {
            if let Some(ip) = incoming.next_buffered() {
                return Ok(Some(ip));
            }
            if !incoming.poll() {
                return Ok(None);
            }
        }
    }

    /// Reads the setting on the inport `name`: its first data IP (brackets before it are
    /// skipped), or `None` if the port ends without one (for instance when nothing is
    /// connected). Settings usually come as IIPs.
    ///
    /// # Errors
    ///
    /// Fails if the component declared no such inport; [`ProcessError::Stopped`] when the
    /// network stops.
    pub fn read_config(&mut self, name: &str) -> Result<Option<Payload>, ProcessError> {
        let port = self.inport(name)?;
        while let Some(ip) = self.recv(port)? {
            if let Ip::Data(payload) = ip {
                return Ok(Some(payload));
            }
        }
        Ok(None)
    }

    /// Receives up to `max` IPs from `port` into `out`, waiting until there is at least one;
    /// returns how many were added, 0 at end of stream.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn recv_batch(
        &mut self,
        port: InPort,
        out: &mut Vec<Ip>,
        max: usize,
    ) -> Result<usize, ProcessError> {
        let max = max.max(1);
        let Some(first) = self.recv(port)? else {
            return Ok(0);
        };
        out.push(first);
        let mut count = 1;
        let incoming = &mut self.inports[port.0].incoming;
        while count < max {
            count += incoming.drain_buffered(out, max - count);
            if count >= max || !incoming.poll() {
                break;
            }
        }
        Ok(count)
    }

    /// Waits until any of `ports` has an IP or reaches end of stream.
    ///
    /// Ports are served in turn so that a busy one does not starve the others. Each port's end
    /// of stream is reported once, as [`Received::Ended`]; once every port has been reported
    /// ended, the answer is [`Received::AllEnded`].
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn recv_any(&mut self, ports: &[InPort]) -> Result<Received, ProcessError> {
        self.recv_any_until(ports, None)
    }

    /// Like [`ProcessContext::recv_any`], but gives up with [`Received::Timeout`] after
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn recv_any_timeout(
        &mut self,
        ports: &[InPort],
        timeout: Duration,
    ) -> Result<Received, ProcessError> {
        // A timeout too long for the clock means no deadline.
        self.recv_any_until(ports, Instant::now().checked_add(timeout))
    }

    fn recv_any_until(
        &mut self,
        ports: &[InPort],
        deadline: Option<Instant>,
    ) -> Result<Received, ProcessError> {
        if ports.is_empty() {
            return Ok(Received::AllEnded);
        }
        loop {
            if let Some(received) = self.take_ready(ports) {
                return Ok(received);
            }
            if ports.iter().all(|p| self.inports[p.0].end_reported) {
                return Ok(Received::AllEnded);
            }
            if self.stop.is_stopped() {
                return Err(ProcessError::Stopped);
            }
            if self.poll_all(ports) {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Received::Timeout);
            }
            if !self.wait_for(ports, deadline)? {
                return Ok(Received::Timeout);
            }
        }
    }

    /// Waits until any of `ports` has an IP or reaches end of stream, or `channel` has a
    /// message: for components that also wait on threads of their own (a child process's
    /// output, a timer, a socket) without polling.
    ///
    /// The channel is looked at first. Each port's end of stream is reported once, as
    /// [`Received::Ended`]; after that (or with no ports) only the channel is waited on, so
    /// [`Received::AllEnded`] and [`Received::Timeout`] never come. Before waiting, hands over
    /// this process's partly filled output batches.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn recv_any_or<T>(
        &mut self,
        ports: &[InPort],
        channel: &Receiver<T>,
    ) -> Result<ReceivedOr<T>, ProcessError> {
        loop {
            match channel.try_recv() {
                Ok(message) => return Ok(ReceivedOr::Channel(Some(message))),
                Err(TryRecvError::Disconnected) => return Ok(ReceivedOr::Channel(None)),
                Err(TryRecvError::Empty) => {}
            }
            if let Some(received) = self.take_ready(ports) {
                return Ok(ReceivedOr::Port(received));
            }
            if self.stop.is_stopped() {
                return Err(ProcessError::Stopped);
            }
            if self.poll_all(ports) {
                continue;
            }
            self.flush()?;
            let (owners, receivers) = self.receivers(ports);
            match self.stop.recv_any_or(&receivers, Some(channel), None)? {
                Some(Woken::Packet(position, packet)) => {
                    self.inports[owners[position]].incoming.accept(packet);
                }
                Some(Woken::Other(message)) => return Ok(ReceivedOr::Channel(message)),
                None => {}
            }
        }
    }

    /// The next IP or unreported end of stream among `ports`, taking turns, without waiting.
    fn take_ready(&mut self, ports: &[InPort]) -> Option<Received> {
        if ports.is_empty() {
            return None;
        }
        let start = self.next_any % ports.len();
        for k in 0..ports.len() {
            let port = ports[(start + k) % ports.len()];
            let slot = &mut self.inports[port.0];
            if let Some(ip) = slot.incoming.next_buffered() {
                self.next_any = start + k + 1;
                return Some(Received::Ip(port, ip));
            }
            if slot.incoming.is_ended() && !slot.end_reported {
                slot.end_reported = true;
                return Some(Received::Ended(port));
            }
        }
        None
    }

    /// Moves what has arrived on any of `ports` into its buffer; whether anything did.
    fn poll_all(&mut self, ports: &[InPort]) -> bool {
        let mut progressed = false;
        for port in ports {
            progressed |= self.inports[port.0].incoming.poll();
        }
        progressed
    }

    /// The channels of those of `ports` that may still receive, with the slot of each.
    fn receivers(&self, ports: &[InPort]) -> (Vec<usize>, Vec<&Receiver<Packet>>) {
        ports
            .iter()
            .filter_map(|port| Some((port.0, self.inports[port.0].incoming.receiver()?)))
            .unzip()
    }

    /// Flushes, then blocks until one of `ports` gets a packet; false on timeout.
    fn wait_for(
        &mut self,
        ports: &[InPort],
        deadline: Option<Instant>,
    ) -> Result<bool, ProcessError> {
        self.flush()?;
        let (owners, receivers) = self.receivers(ports);
        if receivers.is_empty() {
            return Ok(true);
        }
        for _ in 0..YIELDS_BEFORE_PARKING {
            std::thread::yield_now();
            for (position, rx) in receivers.iter().enumerate() {
                if let Ok(packet) = rx.try_recv() {
                    self.inports[owners[position]].incoming.accept(Some(packet));
                    return Ok(true);
                }
            }
        }
        match self.stop.recv_any(&receivers, deadline)? {
            Some((position, packet)) => {
                self.inports[owners[position]].incoming.accept(packet);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether `port` has reached end of stream (nothing more will arrive).
    pub fn is_ended(&self, port: InPort) -> bool {
        self.inports[port.0].incoming.is_ended()
    }

    /// Sends `ip` on `port`: to every connection of the port (fan-out copies share the
    /// payload). A port with no connection discards the IP.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops; [`ProcessError::Closed`] when every
    /// connection of the port has closed downstream.
    #[inline]
    pub fn send(&mut self, port: OutPort, ip: Ip) -> Result<(), ProcessError> {
        if let [only] = self.outports[port.0].connections.as_mut_slice() {
            if let Err(ip) = only.push_if_room(ip) {
                return self.send_slow(port, ip);
            }
            return Ok(());
        }
        self.send_slow(port, ip)
    }

    /// [`ProcessContext::send`] when a batch fills up, or for zero or several connections.
    #[cold]
    fn send_slow(&mut self, port: OutPort, ip: Ip) -> Result<(), ProcessError> {
        let slot = &mut self.outports[port.0];
        slot.read_mail();
        match slot.connections.as_mut_slice() {
            [] => Ok(()),
            [only] => {
                only.push(ip, &self.stop)?;
                if only.is_closed() {
                    return Err(ProcessError::Closed {
                        port: slot.name.clone(),
                    });
                }
                Ok(())
            }
            [first, rest @ ..] => {
                for connection in rest.iter_mut() {
                    connection.push(ip.clone(), &self.stop)?;
                }
                first.push(ip, &self.stop)?;
                if slot.connections.iter().all(Outgoing::is_closed) {
                    return Err(ProcessError::Closed {
                        port: slot.name.clone(),
                    });
                }
                Ok(())
            }
        }
    }

    /// Sends every IP of `ips` on `port`, in order; see [`ProcessContext::send`].
    ///
    /// # Errors
    ///
    /// As [`ProcessContext::send`].
    pub fn send_batch(
        &mut self,
        port: OutPort,
        ips: impl IntoIterator<Item = Ip>,
    ) -> Result<(), ProcessError> {
        for ip in ips {
            self.send(port, ip)?;
        }
        Ok(())
    }

    /// Hands every partly filled output batch over to its edge now.
    ///
    /// The context does this by itself before any wait; call it when a component is about to
    /// compute for a long time after sending.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn flush(&mut self) -> Result<(), ProcessError> {
        for slot in &mut self.outports {
            slot.read_mail();
            for connection in &mut slot.connections {
                connection.flush(&self.stop)?;
            }
        }
        Ok(())
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
        for slot in &mut self.outports {
            // Closing the mailbox first: no edge can be added to a finished port.
            if let Some(mailbox) = slot.mailbox.clone() {
                for mail in mailbox.close() {
                    slot.apply(mail);
                }
            }
            for connection in &mut slot.connections {
                let _ = connection.finish(&self.stop);
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
        self.inports
            .push(InSlot::new(name, index, Incoming::new(None, 0, Vec::new())));
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

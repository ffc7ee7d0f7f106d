//! The receiving side of a process: its inports, and waiting on several at once, or on a
//! channel of the component's own besides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use super::{InPort, ProcessContext, Received, ReceivedOr};
use crate::engine::edge::{Incoming, PacketReceiver, Woken, yields_before_parking};
use crate::engine::error::ProcessError;
use crate::ip::{Ip, Payload};

/// One inport (or index of an array inport) of a running process.
pub(crate) struct InSlot {
    pub(crate) name: String,
    pub(crate) index: Option<usize>,
    /// The port as edges name it (`node.in`, `node.in[2]`), made once for deadlock reports.
    label: Arc<str>,
    pub(crate) incoming: Incoming,
    end_reported: bool,
}

impl InSlot {
    pub(crate) fn new(node: &str, name: &str, index: Option<usize>, incoming: Incoming) -> InSlot {
        let label = match index {
            Some(index) => format!("{node}.{name}[{index}]"),
            None => format!("{node}.{name}"),
        };
        InSlot {
            name: name.to_string(),
            index,
            label: label.into(),
            incoming,
            end_reported: false,
        }
    }
}

impl ProcessContext {
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
            if self.poll(port) {
                continue;
            }
            self.wait_for(&[port], None)?;
        }
    }

    /// Takes every IP waiting on `port` now, without waiting, and returns the newest data IP
    /// among them: for a setting that changed while the network runs.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops.
    pub fn newest_data(&mut self, port: InPort) -> Result<Option<Payload>, ProcessError> {
        let mut newest = None;
        while let Some(ip) = self.try_recv(port)? {
            if let Ip::Data(payload) = ip {
                newest = Some(payload);
            }
        }
        Ok(newest)
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
        loop {
            if let Some(ip) = self.inports[port.0].incoming.next_buffered() {
                return Ok(Some(ip));
            }
            if !self.poll(port) {
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
        let Some(first) = self.recv(port)? else {
            return Ok(0);
        };
        out.push(first);
        Ok(1 + self.take_arrived(port, out, max.max(1) - 1))
    }

    /// Takes up to `max` IPs that have arrived on `port` already into `out`, without waiting;
    /// returns how many.
    pub(crate) fn take_arrived(&mut self, port: InPort, out: &mut Vec<Ip>, max: usize) -> usize {
        let mut count = 0;
        while count < max {
            count += self.inports[port.0]
                .incoming
                .drain_buffered(out, max - count);
            if count >= max || !self.poll(port) {
                break;
            }
        }
        count
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
        loop {
            if let Some(received) = self.recv_any_while(ports, deadline, None)? {
                return Ok(received);
            }
        }
    }

    /// Receives from any connected index of the array inport `name`, like
    /// [`ProcessContext::recv_any`] over them, including the indexes that live edits add
    /// while it waits. [`Received::AllEnded`] comes when every index connected so far has
    /// ended.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops; fails if the component declared no
    /// such array inport.
    pub fn recv_any_index(&mut self, name: &str) -> Result<Received, ProcessError> {
        loop {
            let generation = self.port_generation;
            let mut ports = Vec::new();
            for index in self.inport_indexes(name) {
                ports.push(self.inport_at(name, index)?);
            }
            if let Some(received) = self.recv_any_while(&ports, None, Some(generation))? {
                return Ok(received);
            }
        }
    }

    /// [`ProcessContext::recv_any`] until `deadline`; `None` as soon as the port generation
    /// is no longer `generation` (new indexes were adopted).
    fn recv_any_while(
        &mut self,
        ports: &[InPort],
        deadline: Option<Instant>,
        generation: Option<u64>,
    ) -> Result<Option<Received>, ProcessError> {
        if ports.is_empty() {
            return Ok(Some(Received::AllEnded));
        }
        loop {
            if generation.is_some_and(|g| g != self.port_generation) {
                return Ok(None);
            }
            if let Some(received) = self.take_ready(ports) {
                return Ok(Some(received));
            }
            if ports.iter().all(|p| self.inports[p.0].end_reported) {
                return Ok(Some(Received::AllEnded));
            }
            if self.stop.is_stopped() {
                return Err(ProcessError::Stopped);
            }
            if self.poll_all(ports) {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Some(Received::Timeout));
            }
            if !self.wait_for(ports, deadline)? {
                return Ok(Some(Received::Timeout));
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
            let woken = self.stop.recv_any_or(&receivers, Some(channel), None)?;
            self.read_all_mail();
            match woken {
                Some(Woken::Packet(position, packet)) => {
                    self.inports[owners[position]].incoming.accept(packet);
                }
                Some(Woken::Other(message)) => return Ok(ReceivedOr::Channel(message)),
                Some(Woken::Rung) | None => {}
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
            progressed |= self.poll(*port);
        }
        progressed
    }

    /// Moves the next batch waiting on `port` into its buffer, if there is one; whether there
    /// was. Live edits are adopted with each batch, so that an edge added before a packet
    /// arrived carries what the process sends in answer to it, even if it never had to wait.
    fn poll(&mut self, port: InPort) -> bool {
        let polled = self.inports[port.0].incoming.poll();
        if polled {
            self.read_all_mail();
        }
        polled
    }

    /// The channels of those of `ports` that may still receive, with the slot of each.
    fn receivers(&self, ports: &[InPort]) -> (Vec<usize>, Vec<&PacketReceiver>) {
        ports
            .iter()
            .filter_map(|port| Some((port.0, self.inports[port.0].incoming.receiver()?)))
            .unzip()
    }

    /// Flushes, then blocks until one of `ports` gets a packet; false on timeout. On waking,
    /// adopts the connections that live edits made meanwhile, so that an edge added while the
    /// process waited carries what it sends next.
    fn wait_for(
        &mut self,
        ports: &[InPort],
        deadline: Option<Instant>,
    ) -> Result<bool, ProcessError> {
        self.flush()?;
        let woken = self.block_for(ports, deadline);
        self.read_all_mail();
        woken
    }

    fn block_for(
        &mut self,
        ports: &[InPort],
        deadline: Option<Instant>,
    ) -> Result<bool, ProcessError> {
        let (owners, receivers) = self.receivers(ports);
        if receivers.is_empty() {
            return Ok(true);
        }
        for _ in 0..yields_before_parking() {
            crate::sched::yield_now();
            for (position, rx) in receivers.iter().enumerate() {
                if let Ok(packet) = rx.try_recv() {
                    self.inports[owners[position]].incoming.accept(Some(packet));
                    return Ok(true);
                }
            }
        }
        // Only a wait without a deadline can be part of a deadlock.
        let activity = self.stop.activity().filter(|_| deadline.is_none()).cloned();
        if let Some(activity) = &activity {
            let names = owners
                .iter()
                .map(|&slot| self.inports[slot].label.clone())
                .collect();
            activity.receiving(names, receivers.iter().map(|rx| rx.probe()).collect());
        }
        // A process with array ports is also rung to adopt new indexes (read by the caller).
        let woken = self.stop.recv_any_or::<()>(&receivers, None, deadline);
        if let Some(activity) = &activity {
            activity.woke();
        }
        match woken? {
            Some(Woken::Packet(position, packet)) => {
                self.inports[owners[position]].incoming.accept(packet);
                Ok(true)
            }
            Some(Woken::Other(_) | Woken::Rung) => Ok(true),
            None => Ok(false),
        }
    }

    /// Whether `port` has reached end of stream (nothing more will arrive).
    pub fn is_ended(&self, port: InPort) -> bool {
        self.inports[port.0].incoming.is_ended()
    }
}

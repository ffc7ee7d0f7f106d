//! The sending side of a process: its outports, their output batches, and the connections
//! that live edits add and remove.

use std::sync::Arc;

use super::{OutPort, ProcessContext};
use crate::engine::edge::Outgoing;
use crate::engine::error::ProcessError;
use crate::engine::live::{Mail, Mailbox};
use crate::ip::Ip;

/// One outport (or index of an array outport) of a running process.
pub(crate) struct OutSlot {
    pub(crate) name: String,
    pub(crate) index: Option<usize>,
    pub(crate) connections: Vec<Outgoing>,
    /// Connections added or removed while the network runs (live edits).
    pub(crate) mailbox: Option<Arc<Mailbox>>,
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

    pub(super) fn apply(&mut self, mail: Mail) {
        match mail {
            Mail::Attach(outgoing) => self.connections.push(outgoing),
            // The network announced the end to the receiver itself.
            Mail::Detach(edge) => self.connections.retain(|c| c.edge() != Some(&edge)),
        }
    }
}

impl ProcessContext {
    /// Whether `port` has at least one connection that is still open downstream.
    pub fn is_outport_connected(&self, port: OutPort) -> bool {
        self.outports[port.0]
            .connections
            .iter()
            .any(|c| !c.is_closed())
    }

    /// Whether every IP sent on `port` has been taken by the processes downstream: nothing
    /// waits in this process's output batch or on any of the port's edges. For a component
    /// that must not let go of what it sent (acknowledging it upstream) before that.
    pub fn is_outport_drained(&self, port: OutPort) -> bool {
        self.outports[port.0]
            .connections
            .iter()
            .all(Outgoing::is_drained)
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
        match self.try_send(port, ip) {
            Ok(()) => Ok(()),
            Err(ip) => self.send_slow(port, ip),
        }
    }

    /// Sends `ip` on `port` if that takes no wait and no hand-over (a port of one connection
    /// whose batch has room); otherwise gives it back, for [`ProcessContext::send`].
    #[inline]
    pub(crate) fn try_send(&mut self, port: OutPort, ip: Ip) -> Result<(), Ip> {
        match self.outports[port.0].connections.as_mut_slice() {
            [only] => only.push_if_room(ip),
            _ => Err(ip),
        }
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

    /// Adopts the connections that live edits added to or removed from every outport.
    pub(super) fn read_all_mail(&mut self) {
        self.adopt_new_ports(false);
        for slot in &mut self.outports {
            slot.read_mail();
        }
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
        self.adopt_new_ports(false);
        for slot in &mut self.outports {
            slot.read_mail();
            for connection in &mut slot.connections {
                connection.flush(&self.stop)?;
            }
        }
        Ok(())
    }
}

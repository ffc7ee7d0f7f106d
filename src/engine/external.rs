//! Exported graph ports, driven from Rust: push IPs into a running network and read IPs out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::deadlock::NetworkActivity;
use super::edge::{Incoming, Outgoing, StopSignal};
use super::error::ProcessError;
use crate::ip::Ip;

/// Feeds an exported inport of a running network. Dropping it (or [`GraphInport::close`]) ends
/// the stream into that port.
pub struct GraphInport {
    outgoing: Outgoing,
    stop: StopSignal,
    /// While the handle is open, the network can be fed from outside: it cannot deadlock.
    activity: Arc<NetworkActivity>,
}

impl GraphInport {
    pub(crate) fn new(
        outgoing: Outgoing,
        stop: StopSignal,
        activity: Arc<NetworkActivity>,
    ) -> GraphInport {
        activity.inport_opened();
        GraphInport {
            outgoing,
            stop,
            activity,
        }
    }

    /// Sends one IP now, waiting while the edge is full.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] if the network stops; [`ProcessError::Closed`] if the
    /// receiving process has ended.
    pub fn send(&mut self, ip: Ip) -> Result<(), ProcessError> {
        self.outgoing.push(ip, &self.stop)?;
        self.flush()
    }

    /// Sends many IPs, in batches, waiting while the edge is full.
    ///
    /// # Errors
    ///
    /// As [`GraphInport::send`].
    pub fn send_batch(&mut self, ips: impl IntoIterator<Item = Ip>) -> Result<(), ProcessError> {
        for ip in ips {
            self.outgoing.push(ip, &self.stop)?;
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<(), ProcessError> {
        self.outgoing.flush(&self.stop)?;
        if self.outgoing.is_closed() {
            return Err(ProcessError::Closed {
                port: "graph inport".into(),
            });
        }
        Ok(())
    }

    /// Ends the stream into the port.
    pub fn close(self) {}
}

impl Drop for GraphInport {
    fn drop(&mut self) {
        let _ = self.outgoing.finish(&self.stop);
        self.activity.inport_closed();
    }
}

/// Reads an exported outport of a running network.
pub struct GraphOutport {
    incoming: Incoming,
    stop: StopSignal,
}

impl GraphOutport {
    pub(crate) fn new(incoming: Incoming, stop: StopSignal) -> GraphOutport {
        GraphOutport { incoming, stop }
    }

    /// The next IP, waiting for it; `None` at end of stream or when the network stops.
    pub fn recv(&mut self) -> Option<Ip> {
        self.recv_until(None).ok().flatten()
    }

    /// The next IP, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeout::Timeout`] if nothing came in time, [`RecvTimeout::Ended`] at end of
    /// stream or when the network stops.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Ip, RecvTimeout> {
        match self.recv_until(Some(Instant::now() + timeout)) {
            Ok(Some(ip)) => Ok(ip),
            Ok(None) | Err(ProcessError::Stopped) => Err(RecvTimeout::Ended),
            Err(_) => Err(RecvTimeout::Timeout),
        }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Option<Ip>, ProcessError> {
        loop {
            if let Some(ip) = self.incoming.next_buffered() {
                return Ok(Some(ip));
            }
            if self.incoming.is_ended() {
                return Ok(None);
            }
            if self.incoming.poll() {
                continue;
            }
            // The reader is a thread outside the network, often waiting for the answer to
            // what it just sent: wait as a worker does, awake a moment before sleeping.
            if crate::sched::spin_before_sleeping(deadline, || self.incoming.poll()) {
                continue;
            }
            let Some(rx) = self.incoming.receiver() else {
                return Ok(None);
            };
            match self.stop.recv_any(&[rx], deadline)? {
                Some((_, packet)) => self.incoming.accept(packet),
                None => return Err(ProcessError::failed("timeout")),
            }
        }
    }
}

/// Why [`GraphOutport::recv_timeout`] returned no IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeout {
    /// Nothing arrived in time.
    #[error("no IP arrived in time")]
    Timeout,
    /// The port reached end of stream, or the network stopped.
    #[error("the port has ended")]
    Ended,
}

//! Events: what a running network reports, on one channel.
//!
//! Lifecycle events (started, process errors, output, finished or stopped) are never dropped: a
//! process that emits output waits while the channel is full, so whoever runs a network must
//! drain its events ([`super::Network::wait`] does). [`Event::Data`] is only produced for watched
//! edges, checked once per batch, so unwatched edges cost nothing; when the channel is full,
//! data events are dropped rather than slowing the network down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::edge::StopSignal;
use super::parker::Parker;
use super::queue::{QueueSender, TryRecvError, TrySendError};
use crate::graph::PortRef;
use crate::ip::Ip;

/// Identifies an edge by its two ends, as written in the graph.
///
/// A `src` process named `""` stands for the outside (a graph inport); a `tgt` process named
/// `""` likewise for a graph outport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EdgeId {
    /// The sending outport.
    pub src: PortRef,
    /// The receiving inport.
    pub tgt: PortRef,
}

impl EdgeId {
    /// The edge that brings IIPs to `tgt`: it has no source. A selection names it to select
    /// those IIPs.
    pub fn initial(tgt: PortRef) -> EdgeId {
        EdgeId {
            src: PortRef::new("", ""),
            tgt,
        }
    }

    /// Whether this is the edge of IIPs ([`EdgeId::initial`]).
    pub fn is_initial(&self) -> bool {
        self.src.process.is_empty() && self.src.port.is_empty()
    }

    /// Whether this edge, as a selection, covers `edge`: same processes, ports equal ignoring
    /// case, and the same index unless this one names none.
    pub fn covers(&self, edge: &EdgeId) -> bool {
        let covers = |wanted: &PortRef, actual: &PortRef| {
            wanted.process == actual.process
                && wanted.port.eq_ignore_ascii_case(&actual.port)
                && wanted.index.is_none_or(|i| Some(i) == actual.index)
        };
        covers(&self.src, &edge.src) && covers(&self.tgt, &edge.tgt)
    }
}

impl std::fmt::Display for EdgeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.src, self.tgt)
    }
}

/// How much of a packet's payload clients are shown; longer payloads are shortened.
pub const SHOWN_BYTES: usize = 1024;

/// Something that happened in a running network.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The network has started; every process is running.
    Started,
    /// An IP passed on a watched edge.
    Data {
        /// The edge.
        edge: EdgeId,
        /// The IP.
        ip: Ip,
    },
    /// An IP passed on a watched edge of a share of this network that runs on another
    /// runtime ([`crate::cluster`]): only the first [`SHOWN_BYTES`] of its payload came along.
    RemoteData {
        /// The edge, as the graph names it.
        edge: EdgeId,
        /// The IP, its payload cut to [`SHOWN_BYTES`].
        ip: Ip,
        /// The size of its whole payload.
        size: usize,
    },
    /// An IIP was delivered, at start or added live (reported when
    /// [`super::NetworkConfig::watch_edges`] is set), before anything it causes.
    Initial {
        /// The inport it went to.
        tgt: PortRef,
        /// The IIP as the graph holds it (a JSON string stays a string, although the IP
        /// carries only its text).
        value: serde_json::Value,
    },
    /// A process failed (returned an error or panicked); the rest of the network goes on.
    ProcessError {
        /// The process id.
        node: String,
        /// What went wrong.
        message: String,
    },
    /// A process produced output for the user (e.g. `core/Output`, a guest's stdout).
    Output {
        /// The process id.
        node: String,
        /// The text, without a trailing newline.
        message: String,
    },
    /// Every running process waited on an edge and nothing outside the network could feed
    /// it: the network is being stopped (it ends with [`Event::Stopped`]).
    Deadlock {
        /// Each blocked process and what it waits on, such as `waits to receive on r.in`.
        processes: Vec<(String, String)>,
        /// The whole story, naming every process and its component.
        message: String,
    },
    /// A runtime that runs part of a placed network ([`crate::cluster`]) stopped answering.
    RuntimeLost {
        /// The runtime.
        runtime: String,
        /// The processes that ran there.
        processes: Vec<String>,
        /// What was lost, and what happens next.
        message: String,
        /// Whether its processes run again when it comes back (every remote edge into them is
        /// durable); if not, the network is being stopped.
        resumes: bool,
    },
    /// A lost runtime answers again and runs its part of the network anew.
    RuntimeResumed {
        /// The runtime.
        runtime: String,
    },
    /// A process ended.
    ProcessEnded {
        /// The process id.
        node: String,
    },
    /// Every process ended by itself. The last event of a network.
    Finished {
        /// Time from start to finish.
        uptime: Duration,
    },
    /// The network was stopped. The last event of a network.
    Stopped {
        /// Time from start to stop.
        uptime: Duration,
    },
}

/// The sending side of a network's event channel.
#[derive(Clone)]
pub(crate) struct EventSender {
    tx: Sender<Event>,
    /// For a network's processes: the queue in front of the channel, moved into it by a
    /// thread of its own (see [`EventSender::pumped`]).
    queue: Option<QueueSender<Event>>,
}

impl EventSender {
    pub(crate) fn new(capacity: usize) -> (EventSender, Receiver<Event>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        (EventSender { tx, queue: None }, rx)
    }

    /// An event channel for a network's processes, which must never block a worker thread
    /// shared with other networks' tasks while nobody drains this network's events: they
    /// send into a queue they can wait on as tasks, and a thread moves its events into the
    /// channel, in order, waiting as long as it must.
    ///
    /// # Errors
    ///
    /// The system's error if it refuses the thread.
    pub(crate) fn pumped(capacity: usize) -> std::io::Result<(EventSender, Receiver<Event>)> {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let (queue, pending) = super::queue::queue::<Event>(capacity);
        let channel = tx.clone();
        crate::threads::spawn("flowd-events", move || {
            let parker = Arc::new(Parker::new());
            loop {
                match pending.try_recv() {
                    Ok(event) => {
                        if channel.send(event).is_err() {
                            return;
                        }
                    }
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => {
                        if pending.wait_for_message(&parker) {
                            parker.wait(None);
                        }
                    }
                }
            }
        })?;
        Ok((
            EventSender {
                tx,
                queue: Some(queue),
            },
            rx,
        ))
    }

    /// [`EventSender::send`] through the queue in front of the channel.
    fn send_queued(&self, queue: &QueueSender<Event>, event: Event, stop: Option<&StopSignal>) {
        let parker = match stop {
            Some(stop) => stop.parker(),
            None if crate::sched::in_task() => Arc::new(Parker::for_task()),
            None => Arc::new(Parker::new()),
        };
        let mut event = event;
        let mut patience = Duration::from_millis(100);
        loop {
            match queue.try_send(event) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(e)) => event = e,
            }
            if !queue.wait_for_room(&parker) {
                continue;
            }
            let step = Duration::from_millis(50);
            if stop.is_some_and(StopSignal::is_stopped) {
                if patience.is_zero() {
                    return;
                }
                patience = patience.saturating_sub(step);
            }
            parker.wait(Instant::now().checked_add(step));
        }
    }

    /// Sends a lifecycle event, waiting while the channel is full.
    ///
    /// With a stop signal, gives up shortly after the network stops; without one, waits until
    /// the event is taken or the receiver is gone.
    ///
    /// A process that runs as a task waits without holding its worker thread (see
    /// [`EventSender::pumped`]).
    pub(crate) fn send(&self, event: Event, stop: Option<&StopSignal>) {
        if let Some(queue) = &self.queue {
            // A process reports its end and its errors once each: those never wait, so that
            // 100,000 processes ending at once do not queue up as waiters.
            if matches!(event, Event::Output { .. }) {
                return self.send_queued(queue, event, stop);
            }
            let _ = queue.send_past_capacity(event);
            return;
        }
        match stop {
            Some(stop) if !stop.is_stopped() => {
                let mut event = event;
                // Poll with a timeout so that a stop is noticed even if nobody drains events.
                loop {
                    match self.tx.send_timeout(event, Duration::from_millis(50)) {
                        Ok(()) => return,
                        Err(crossbeam_channel::SendTimeoutError::Timeout(e)) => {
                            if stop.is_stopped() {
                                let _ = self.tx.try_send(e);
                                return;
                            }
                            event = e;
                        }
                        Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return,
                    }
                }
            }
            Some(_) => {
                let _ = self.tx.send_timeout(event, Duration::from_millis(100));
            }
            None => {
                let _ = self.tx.send(event);
            }
        }
    }

    /// Sends an event only if there is room; returns whether it did.
    pub(crate) fn try_send(&self, event: Event) -> bool {
        match &self.queue {
            Some(queue) => queue.try_send(event).is_ok(),
            None => self.tx.try_send(event).is_ok(),
        }
    }
}

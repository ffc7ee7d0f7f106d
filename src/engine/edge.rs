//! Edges: bounded, batched channels between an outport and an inport.
//!
//! # Bounded
//!
//! An edge of capacity `C` moves IPs in batches of at most `B = min(C, max_batch)` IPs and
//! queues at most `ceil(C / B)` batches. When the queue is full the sender blocks
//! (backpressure): a fast producer cannot outrun a slow consumer by more than the queue, plus the
//! one partly filled batch each side holds. Several edges into one inport (fan-in) share one
//! queue whose size is the sum of theirs, up to 65,536 batches (queues are allocated up
//! front).
//!
//! # Batched
//!
//! The sending side collects IPs in a local batch and hands the batch over when it is full, when
//! its process is about to block in a receive or a sleep, or when the process ends. The receiving
//! side takes a whole batch per channel operation and then serves IPs from it. When IPs arrive
//! faster than they are consumed, an IP costs a vector push and a pop, not a channel operation
//! and a thread wake-up.
//!
//! # End of stream
//!
//! Each sender announces its end with an [`Packet::End`] marker after its last batch. An inport
//! has ended once every upstream announced its end and everything they sent has been received.
//! An inport with no upstream edges ends right after its IIPs.
//!
//! # Closed downstream
//!
//! When the receiving process has ended, its queue is gone; sends to it are discarded and the
//! connection reports itself closed.
//!
//! # Stop
//!
//! Every blocking operation also waits on the network's [`StopSignal`] and returns
//! [`ProcessError::Stopped`] once the network is stopping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::deadlock::Activity;
use super::error::ProcessError;
use super::events::EdgeId;
use super::parker::{Parker, Waited};
use super::queue::{QueueReceiver, QueueSender, TryRecvError, TrySendError};
use super::watch::Watcher;
use crate::ip::Ip;

/// How often a process that would wait yields its CPU and looks again before it parks.
///
/// Parking and waking a thread costs two system calls and a trip through the scheduler; when
/// the other side of the edge is merely descheduled (more processes than cores), yielding lets
/// it run and usually makes the wait unnecessary. Measured on 2 cores with the 4-stage
/// pipeline bench: about 1.7x the throughput of parking at once, for at most a few
/// microseconds of CPU per wait when the network is idle.
pub(crate) const YIELDS_BEFORE_PARKING: usize = 16;

/// How often a process that runs as a task yields before it parks: once, so that every other
/// ready task of its worker (a producer on the same worker among them) runs first. A task's
/// yield is a trip through all of them and its park costs no system call, so more yields only
/// spin. Measured on 2 cores against 16 yields: the 4-stage pipeline 18.6 M against 15.0 M
/// IPs/s, idle latency 13.8 µs against 18.0 µs, a 10,000-process chain 6.7 s against 11.3 s.
pub(crate) const TASK_YIELDS_BEFORE_PARKING: usize = 1;

/// How often the caller yields before it parks: as a task or as a thread.
pub(crate) fn yields_before_parking() -> usize {
    if crate::sched::in_task() {
        TASK_YIELDS_BEFORE_PARKING
    } else {
        YIELDS_BEFORE_PARKING
    }
}

/// What travels on a queue: a batch of IPs, or an upstream's end-of-stream marker.
#[derive(Debug)]
pub(crate) enum Packet {
    /// A batch of IPs, in order.
    Batch(Vec<Ip>),
    /// The sender will send nothing more.
    End,
}

/// The sending end of an inport's queue.
pub(crate) type PacketSender = QueueSender<Packet>;

/// The receiving end of an inport's queue.
pub(crate) type PacketReceiver = QueueReceiver<Packet>;

/// A queue for an inport, holding at most `batches` packets.
pub(crate) fn packet_queue(batches: usize) -> (PacketSender, PacketReceiver) {
    super::queue::queue(batches)
}

/// Shared by every blocking operation of a network: set once, when the network stops.
#[derive(Clone)]
pub(crate) struct StopSignal {
    shared: Arc<StopShared>,
    /// What the process that waits with this signal does, for deadlock detection (`None`
    /// outside processes: exported port handles).
    activity: Option<Arc<Activity>>,
    /// The process's parker (`None` outside processes: each wait makes its own).
    parker: Option<Arc<Parker>>,
}

struct StopShared {
    flag: AtomicBool,
    /// Rung when the network stops: every process's parker, and those of threads outside
    /// the network while they wait.
    parkers: Mutex<Vec<Weak<Parker>>>,
}

/// The other half of [`StopSignal`], owned by the network.
pub(crate) struct StopTrigger {
    shared: Arc<StopShared>,
}

pub(crate) fn stop_signal() -> (StopTrigger, StopSignal) {
    let shared = Arc::new(StopShared {
        flag: AtomicBool::new(false),
        parkers: Mutex::new(Vec::new()),
    });
    (
        StopTrigger {
            shared: shared.clone(),
        },
        StopSignal {
            shared,
            activity: None,
            parker: None,
        },
    )
}

impl StopShared {
    fn parkers(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Parker>>> {
        self.parkers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has `parker` rung on stop.
    fn register(&self, parker: &Arc<Parker>) {
        let mut parkers = self.parkers();
        // Parkers of ended processes and finished waits are swept now and then, at a cost
        // that stays proportional to the registrations.
        if parkers.len() >= 64 && parkers.len().is_power_of_two() {
            parkers.retain(|p| p.strong_count() > 0);
        }
        parkers.push(Arc::downgrade(parker));
    }
}

impl StopTrigger {
    /// Signals stop; idempotent.
    pub(crate) fn trigger(&self) {
        self.shared.flag.store(true, Ordering::SeqCst);
        let parkers = std::mem::take(&mut *self.shared.parkers());
        for parker in parkers.iter().filter_map(Weak::upgrade) {
            parker.notify();
        }
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.shared.flag.load(Ordering::SeqCst)
    }
}

impl StopSignal {
    /// This signal, for the process whose activity is `activity`: with a parker of its own,
    /// for a thread if the process runs `on_thread`, else for a task.
    pub(crate) fn with_activity(self, activity: Arc<Activity>, on_thread: bool) -> StopSignal {
        let parker = Arc::new(if on_thread {
            Parker::new()
        } else {
            Parker::for_task()
        });
        self.shared.register(&parker);
        StopSignal {
            activity: Some(activity),
            parker: Some(parker),
            ..self
        }
    }

    /// What the process waiting with this signal does, if it is a process.
    pub(crate) fn activity(&self) -> Option<&Arc<Activity>> {
        self.activity.as_ref()
    }

    /// The parker to wait on: the process's own, or a new one rung on stop.
    pub(crate) fn parker(&self) -> Arc<Parker> {
        match &self.parker {
            Some(parker) => parker.clone(),
            None => {
                let parker = Arc::new(Parker::new());
                self.shared.register(&parker);
                parker
            }
        }
    }

    /// Whether the network is stopping.
    pub(crate) fn is_stopped(&self) -> bool {
        self.shared.flag.load(Ordering::Relaxed)
    }

    fn stopped(&self) -> Result<(), ProcessError> {
        if self.shared.flag.load(Ordering::SeqCst) {
            return Err(ProcessError::Stopped);
        }
        Ok(())
    }

    /// Sleeps for `duration`, or until stop.
    pub(crate) fn sleep(&self, duration: Duration) -> Result<(), ProcessError> {
        let parker = self.parker();
        let deadline = Instant::now().checked_add(duration);
        loop {
            self.stopped()?;
            if !parker.wait(deadline) {
                return self.stopped();
            }
        }
    }

    /// Sends `packet` on `tx` (the queue of `edge`), blocking while the queue is full, unless
    /// stop comes first.
    ///
    /// Returns `Ok(false)` if the receiver is gone.
    pub(crate) fn send(
        &self,
        tx: &PacketSender,
        packet: Packet,
        edge: Option<&EdgeId>,
    ) -> Result<bool, ProcessError> {
        // Checked once per batch, so that a producer that never has to wait still stops.
        if self.is_stopped() {
            return Err(ProcessError::Stopped);
        }
        let packet = match tx.try_send(packet) {
            Ok(()) => return Ok(true),
            Err(TrySendError::Disconnected(_)) => return Ok(false),
            Err(TrySendError::Full(packet)) => packet,
        };
        if self.is_stopped() {
            return Err(ProcessError::Stopped);
        }
        let mut packet = packet;
        for _ in 0..yields_before_parking() {
            crate::sched::yield_now();
            match tx.try_send(packet) {
                Ok(()) => return Ok(true),
                Err(TrySendError::Disconnected(_)) => return Ok(false),
                Err(TrySendError::Full(p)) => packet = p,
            }
        }
        // A full exported outport is drained from outside: that wait is not a deadlock.
        let activity = self
            .activity
            .as_ref()
            .filter(|_| edge.is_none_or(|e| !e.tgt.process.is_empty()));
        if let Some(activity) = activity {
            activity.sending(edge, tx.probe());
        }
        let sent = self.send_parked(tx, packet);
        if let Some(activity) = activity {
            activity.woke();
        }
        sent
    }

    fn send_parked(&self, tx: &PacketSender, packet: Packet) -> Result<bool, ProcessError> {
        let parker = self.parker();
        let mut packet = packet;
        loop {
            match tx.try_send(packet) {
                Ok(()) => return Ok(true),
                Err(TrySendError::Disconnected(_)) => return Ok(false),
                Err(TrySendError::Full(p)) => packet = p,
            }
            if !tx.wait_for_room(&parker) {
                continue;
            }
            self.stopped()?;
            parker.wait(None);
            self.stopped()?;
        }
    }

    /// Waits for a packet on any of `receivers`, unless stop comes first; returns the position
    /// of the receiver and what it gave (`None` if every sender of that queue is gone), or
    /// `None` at `deadline`.
    pub(crate) fn recv_any(
        &self,
        receivers: &[&PacketReceiver],
        deadline: Option<Instant>,
    ) -> Result<Option<(usize, Option<Packet>)>, ProcessError> {
        loop {
            match self.recv_any_or::<()>(receivers, None, deadline)? {
                Some(Woken::Packet(index, packet)) => return Ok(Some((index, packet))),
                Some(Woken::Other(_)) | None => return Ok(None),
                Some(Woken::Rung) => {}
            }
        }
    }

    /// Like [`StopSignal::recv_any`], also waking for a message on `other`, and when this
    /// signal's parker rings with nothing to take (someone wants the waiter to look around:
    /// [`Woken::Rung`]); `None` at `deadline`.
    pub(crate) fn recv_any_or<T>(
        &self,
        receivers: &[&PacketReceiver],
        other: Option<&Receiver<T>>,
        deadline: Option<Instant>,
    ) -> Result<Option<Woken<T>>, ProcessError> {
        let parker = self.parker();
        loop {
            self.stopped()?;
            for (index, rx) in receivers.iter().enumerate() {
                match rx.try_recv() {
                    Ok(packet) => return Ok(Some(Woken::Packet(index, Some(packet)))),
                    Err(TryRecvError::Disconnected) => return Ok(Some(Woken::Packet(index, None))),
                    Err(TryRecvError::Empty) => {}
                }
            }
            if let Some(other) = other {
                match other.try_recv() {
                    Ok(message) => return Ok(Some(Woken::Other(Some(message)))),
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        return Ok(Some(Woken::Other(None)));
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => {}
                }
            }
            if !receivers.iter().all(|rx| rx.wait_for_message(&parker)) {
                continue;
            }
            self.stopped()?;
            let waited = match other {
                Some(other) => parker.wait_or(other, deadline),
                None if parker.wait(deadline) => Waited::Rung,
                None => Waited::TimedOut,
            };
            match waited {
                Waited::Message(message) => return Ok(Some(Woken::Other(message))),
                Waited::Rung => {
                    self.stopped()?;
                    return Ok(Some(Woken::Rung));
                }
                Waited::TimedOut => return Ok(None),
            }
        }
    }
}

/// What woke [`StopSignal::recv_any_or`].
pub(crate) enum Woken<T> {
    /// The receiver at this position gave a packet (`None`: every sender of it is gone).
    Packet(usize, Option<Packet>),
    /// The other channel gave a message (`None`: every sender of it is gone).
    Other(Option<T>),
    /// The waiter's parker rang: a queue may have changed, or a live edit wants attention.
    Rung,
}

/// The sending end of one edge, owned by the upstream process.
pub(crate) struct Outgoing {
    tx: PacketSender,
    batch: Vec<Ip>,
    batch_size: usize,
    closed: bool,
    watcher: Option<Watcher>,
}

impl Outgoing {
    pub(crate) fn new(tx: PacketSender, batch_size: usize) -> Outgoing {
        Outgoing {
            tx,
            batch: Vec::with_capacity(batch_size.clamp(1, 16)),
            batch_size: batch_size.max(1),
            closed: false,
            watcher: None,
        }
    }

    /// Reports the IPs on this edge through `watcher`.
    pub(crate) fn watched(mut self, watcher: Watcher) -> Self {
        self.watcher = Some(watcher);
        self
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether everything sent here has been taken by the receiver: no partly filled batch
    /// on this side and none queued on the edge (or the edge has closed).
    pub(crate) fn is_drained(&self) -> bool {
        self.closed || (self.batch.is_empty() && self.tx.is_empty())
    }

    /// The edge this sender feeds, if the network named it.
    pub(crate) fn edge(&self) -> Option<&EdgeId> {
        self.watcher.as_ref().map(Watcher::edge)
    }

    /// Queues `ip` if that does not fill the batch; otherwise gives it back.
    #[inline]
    pub(crate) fn push_if_room(&mut self, ip: Ip) -> Result<(), Ip> {
        if self.closed || self.batch.len() + 1 >= self.batch_size {
            return Err(ip);
        }
        self.batch.push(ip);
        Ok(())
    }

    /// Queues `ip`, handing the batch over when full.
    pub(crate) fn push(&mut self, ip: Ip, stop: &StopSignal) -> Result<(), ProcessError> {
        if self.closed {
            return Ok(());
        }
        self.batch.push(ip);
        if self.batch.len() >= self.batch_size {
            self.flush(stop)?;
        }
        Ok(())
    }

    /// Hands over the partly filled batch, if any.
    pub(crate) fn flush(&mut self, stop: &StopSignal) -> Result<(), ProcessError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        if self.closed {
            self.batch.clear();
            return Ok(());
        }
        // Start small: a lone IP handed over at a wait must not cost a full-size allocation.
        let next = Vec::with_capacity(self.batch.len().max(16).min(self.batch_size));
        let batch = std::mem::replace(&mut self.batch, next);
        if let Some(watcher) = &mut self.watcher {
            watcher.report(&batch);
        }
        if !stop.send(&self.tx, Packet::Batch(batch), self.edge())? {
            self.closed = true;
        }
        crate::sched::tick();
        Ok(())
    }

    /// Flushes, then announces the end of this sender.
    pub(crate) fn finish(&mut self, stop: &StopSignal) -> Result<(), ProcessError> {
        self.flush(stop)?;
        self.end(stop)
    }

    /// Announces the end of this sender, discarding a partly filled batch: for a process that
    /// failed while closing, so that its receivers still see the end of its stream.
    pub(crate) fn end(&mut self, stop: &StopSignal) -> Result<(), ProcessError> {
        self.batch.clear();
        if !self.closed {
            self.closed = true;
            stop.send(&self.tx, Packet::End, self.edge())?;
        }
        Ok(())
    }
}

/// The receiving end of an inport: its queue, the batch being served, and end-of-stream
/// accounting.
pub(crate) struct Incoming {
    rx: Option<PacketReceiver>,
    current: std::vec::IntoIter<Ip>,
    upstreams: Upstreams,
    ended: usize,
}

/// How many senders feed an inport. Shared with the network, which adds senders to a running
/// network (live edits) before they send anything.
#[derive(Clone, Default)]
pub(crate) struct Upstreams(Arc<std::sync::atomic::AtomicUsize>);

impl Upstreams {
    pub(crate) fn new(count: usize) -> Upstreams {
        Upstreams(Arc::new(std::sync::atomic::AtomicUsize::new(count)))
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// Counts one more sender.
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl Incoming {
    /// An inport fed by `upstreams` senders on `rx`, with `initial` IPs (IIPs) served first.
    pub(crate) fn new(rx: Option<PacketReceiver>, upstreams: usize, initial: Vec<Ip>) -> Self {
        Incoming::shared(rx, Upstreams::new(upstreams), initial)
    }

    /// As [`Incoming::new`], with a sender count the network can raise while the port runs.
    pub(crate) fn shared(
        rx: Option<PacketReceiver>,
        upstreams: Upstreams,
        initial: Vec<Ip>,
    ) -> Self {
        Incoming {
            rx,
            current: initial.into_iter(),
            upstreams,
            ended: 0,
        }
    }

    /// Whether every upstream has ended and everything was received.
    pub(crate) fn is_ended(&self) -> bool {
        self.current.len() == 0 && self.ended >= self.upstreams.get()
    }

    /// The next buffered IP, without touching the channel.
    #[inline]
    pub(crate) fn next_buffered(&mut self) -> Option<Ip> {
        self.current.next()
    }

    /// Takes every buffered IP, up to `max`, into `out`.
    pub(crate) fn drain_buffered(&mut self, out: &mut Vec<Ip>, max: usize) -> usize {
        let before = out.len();
        out.extend(self.current.by_ref().take(max));
        out.len() - before
    }

    pub(crate) fn receiver(&self) -> Option<&PacketReceiver> {
        if self.ended >= self.upstreams.get() {
            None
        } else {
            self.rx.as_ref()
        }
    }

    /// Takes a packet from the channel without blocking; returns whether anything changed.
    pub(crate) fn poll(&mut self) -> bool {
        let Some(rx) = self.receiver() else {
            return false;
        };
        match rx.try_recv() {
            Ok(packet) => {
                self.accept(Some(packet));
                true
            }
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => {
                self.accept(None);
                true
            }
        }
    }

    /// Takes in a packet received from the channel (`None`: every sender is gone).
    pub(crate) fn accept(&mut self, packet: Option<Packet>) {
        match packet {
            Some(Packet::Batch(batch)) => {
                debug_assert_eq!(self.current.len(), 0);
                self.current = batch.into_iter();
                crate::sched::tick();
            }
            Some(Packet::End) => self.ended += 1,
            None => self.ended = self.upstreams.get(),
        }
    }
}

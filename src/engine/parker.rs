//! Parkers: how a waiting process (or a thread outside any process) is woken.
//!
//! A process registers its parker with every queue it waits on and with its network's stop
//! ([`super::edge::StopSignal`]), then waits on the parker alone. Whoever rings it first wakes
//! it; the process then looks at its queues again, so a ring that finds it awake already
//! costs one extra look and nothing else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};

use crate::sched::Waiter;

/// A doorbell for one waiter: rung any number of times from any thread, it wakes the waiter
/// once (or lets its next wait return at once).
pub(crate) enum Parker {
    /// For a thread: a channel of one slot.
    Thread {
        bell: Sender<()>,
        rung: Receiver<()>,
    },
    /// For a process that runs as a task: the task gives its worker back while it waits.
    Task(Arc<Waiter>),
}

impl Default for Parker {
    fn default() -> Self {
        Parker::new()
    }
}

impl Parker {
    /// A parker for a thread, nobody has rung.
    pub(crate) fn new() -> Parker {
        let (bell, rung) = crossbeam_channel::bounded(1);
        Parker::Thread { bell, rung }
    }

    /// A parker for a process that runs as a task.
    pub(crate) fn for_task() -> Parker {
        Parker::Task(Arc::default())
    }

    /// Wakes the waiter, now or at its next wait.
    pub(crate) fn notify(&self) {
        match self {
            // Full: a ring is pending already.
            Parker::Thread { bell, .. } => {
                let _ = bell.try_send(());
            }
            Parker::Task(waiter) => waiter.notify(),
        }
    }

    /// Waits until rung or until `deadline`; `false` on timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        match (self, deadline) {
            // The parker holds its own bell, so the channel never disconnects.
            (Parker::Thread { rung, .. }, None) => rung.recv().is_ok(),
            (Parker::Thread { rung, .. }, Some(deadline)) => rung.recv_deadline(deadline).is_ok(),
            (Parker::Task(waiter), _) => waiter.wait(deadline),
        }
    }

    /// Waits until rung, until `other` has a message, or until `deadline`.
    ///
    /// A task cannot wait on a channel of another kind: it looks at `other` every
    /// millisecond instead (components that wait on channels of their own run on threads).
    pub(crate) fn wait_or<T>(&self, other: &Receiver<T>, deadline: Option<Instant>) -> Waited<T> {
        let rung = match self {
            Parker::Thread { rung, .. } => rung,
            Parker::Task(waiter) => {
                let step = Instant::now() + Duration::from_millis(1);
                let until = deadline.map_or(step, |d| d.min(step));
                if waiter.wait(Some(until)) {
                    return Waited::Rung;
                }
                return match other.try_recv() {
                    Ok(message) => Waited::Message(Some(message)),
                    Err(crossbeam_channel::TryRecvError::Disconnected) => Waited::Message(None),
                    Err(crossbeam_channel::TryRecvError::Empty) if until == step => Waited::Rung,
                    Err(crossbeam_channel::TryRecvError::Empty) => Waited::TimedOut,
                };
            }
        };
        let mut select = Select::new();
        let rung_index = select.recv(rung);
        select.recv(other);
        let operation = match deadline {
            Some(deadline) => match select.select_deadline(deadline) {
                Ok(operation) => operation,
                Err(_) => return Waited::TimedOut,
            },
            None => select.select(),
        };
        if operation.index() == rung_index {
            let _ = operation.recv(rung);
            Waited::Rung
        } else {
            Waited::Message(operation.recv(other).ok())
        }
    }
}

/// How [`Parker::wait_or`] ended.
pub(crate) enum Waited<T> {
    /// The parker rang.
    Rung,
    /// The deadline passed.
    TimedOut,
    /// The other channel gave a message (`None`: its senders are gone).
    Message(Option<T>),
}

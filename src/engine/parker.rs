//! Parkers: how a waiting process (or a thread outside any process) is woken.
//!
//! A process registers its parker with every queue it waits on and with its network's stop
//! ([`super::edge::StopSignal`]), then waits on the parker alone. Whoever rings it first wakes
//! it; the process then looks at its queues again, so a ring that finds it awake already
//! costs one extra look and nothing else.

use std::time::Instant;

use crossbeam_channel::{Receiver, Select, Sender};

/// A doorbell for one waiter: rung any number of times from any thread, it wakes the waiter
/// once (or lets its next wait return at once).
pub(crate) struct Parker {
    bell: Sender<()>,
    rung: Receiver<()>,
}

impl Default for Parker {
    fn default() -> Self {
        Parker::new()
    }
}

impl Parker {
    /// A parker nobody has rung.
    pub(crate) fn new() -> Parker {
        let (bell, rung) = crossbeam_channel::bounded(1);
        Parker { bell, rung }
    }

    /// Wakes the waiter, now or at its next wait.
    pub(crate) fn notify(&self) {
        // Full: a ring is pending already.
        let _ = self.bell.try_send(());
    }

    /// Waits until rung or until `deadline`; `false` on timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        match deadline {
            // The parker holds its own bell, so the channel never disconnects.
            None => self.rung.recv().is_ok(),
            Some(deadline) => self.rung.recv_deadline(deadline).is_ok(),
        }
    }

    /// Waits until rung, until `other` has a message, or until `deadline`.
    pub(crate) fn wait_or<T>(&self, other: &Receiver<T>, deadline: Option<Instant>) -> Waited<T> {
        let mut select = Select::new();
        let rung = select.recv(&self.rung);
        select.recv(other);
        let operation = match deadline {
            Some(deadline) => match select.select_deadline(deadline) {
                Ok(operation) => operation,
                Err(_) => return Waited::TimedOut,
            },
            None => select.select(),
        };
        if operation.index() == rung {
            let _ = operation.recv(&self.rung);
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

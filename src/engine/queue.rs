//! The queue behind an inport: bounded, many senders, one receiver, and waits that any
//! [`Parker`] can take part in.
//!
//! A channel library's blocking operations park the calling OS thread. A process waits on
//! several queues and on its network's stop at once, and must be able to wait without
//! owning a thread (ADR 0010), so a queue instead remembers who waits on it: a receiver that
//! found it empty, senders that found it full. Whoever changes that (a send into an empty
//! queue, a receive from a full one, the last sender or the receiver going away) rings their
//! [`Parker`] after letting go of the lock. A waiter registers, looks once more, then waits
//! on its parker, so no wake-up falls between looking and waiting.
//!
//! One mutex guards each queue. It is taken once per batch of IPs, not per IP, so a plain
//! lock is as fast here as a lock-free ring and leaves room for the wait lists.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use crossbeam_channel::{TryRecvError, TrySendError};

use super::parker::Parker;

/// A queue of at most `capacity` messages, as its sending and receiving ends.
pub(crate) fn queue<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let shared = Arc::new(Shared {
        capacity: capacity.max(1),
        state: Mutex::new(State {
            messages: VecDeque::new(),
            senders: 1,
            receiver_alive: true,
            receiver_waiting: None,
            senders_waiting: Vec::new(),
        }),
    });
    (
        QueueSender {
            shared: shared.clone(),
        },
        QueueReceiver { shared },
    )
}

struct Shared<T> {
    capacity: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    messages: VecDeque<T>,
    /// Live [`QueueSender`]s; at zero the receiver sees the queue disconnected.
    senders: usize,
    receiver_alive: bool,
    /// The receiver's parker while it waits for a message.
    receiver_waiting: Option<Arc<Parker>>,
    /// The parkers of senders waiting for room.
    senders_waiting: Vec<Arc<Parker>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves the state consistent: every change is one
        // push, pop or assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending end; clones share the queue and count as one sender each.
pub(crate) struct QueueSender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end.
pub(crate) struct QueueReceiver<T> {
    shared: Arc<Shared<T>>,
}

/// A look at a queue that neither sends nor receives: how full it is, for deadlock detection
/// and metrics.
pub(crate) struct QueueProbe<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        QueueSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Clone for QueueProbe<T> {
    fn clone(&self) -> Self {
        QueueProbe {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let waiting = if state.senders == 0 {
            state.receiver_waiting.take()
        } else {
            None
        };
        drop(state);
        if let Some(parker) = waiting {
            parker.notify();
        }
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_alive = false;
        // Nothing will take them: senders learn the receiver is gone instead of waiting.
        state.messages.clear();
        let waiting = std::mem::take(&mut state.senders_waiting);
        drop(state);
        waiting.iter().for_each(|parker| parker.notify());
    }
}

impl<T> QueueSender<T> {
    /// Queues `message` if there is room.
    ///
    /// # Errors
    ///
    /// Gives the message back when the queue is full or its receiver is gone.
    pub(crate) fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.lock();
        if !state.receiver_alive {
            return Err(TrySendError::Disconnected(message));
        }
        if state.messages.len() >= self.shared.capacity {
            return Err(TrySendError::Full(message));
        }
        state.messages.push_back(message);
        let waiting = state.receiver_waiting.take();
        drop(state);
        if let Some(parker) = waiting {
            parker.notify();
        }
        Ok(())
    }

    /// Queues `message` even if the queue is full: for messages whose number is bounded
    /// otherwise (one per process).
    ///
    /// # Errors
    ///
    /// Gives the message back when the receiver is gone.
    pub(crate) fn send_past_capacity(&self, message: T) -> Result<(), T> {
        let mut state = self.shared.lock();
        if !state.receiver_alive {
            return Err(message);
        }
        state.messages.push_back(message);
        let waiting = state.receiver_waiting.take();
        drop(state);
        if let Some(parker) = waiting {
            parker.notify();
        }
        Ok(())
    }

    /// Has `parker` rung when the queue has room or its receiver goes; `false` (and nothing
    /// registered) if that is so already.
    pub(crate) fn wait_for_room(&self, parker: &Arc<Parker>) -> bool {
        let mut state = self.shared.lock();
        if !state.receiver_alive || state.messages.len() < self.shared.capacity {
            return false;
        }
        if !state.senders_waiting.iter().any(|p| Arc::ptr_eq(p, parker)) {
            state.senders_waiting.push(parker.clone());
        }
        true
    }

    /// Queues `message`, waiting on the calling thread while the queue is full: for threads
    /// outside any process.
    ///
    /// # Errors
    ///
    /// Gives the message back when the receiver is gone.
    pub(crate) fn send_blocking(&self, message: T) -> Result<(), T> {
        let mut message = message;
        let parker = Arc::new(Parker::new());
        loop {
            match self.try_send(message) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(m)) => return Err(m),
                Err(TrySendError::Full(m)) => message = m,
            }
            if self.wait_for_room(&parker) {
                parker.wait(None);
            }
        }
    }

    /// Whether no message is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.lock().messages.is_empty()
    }

    /// A look at this queue.
    pub(crate) fn probe(&self) -> QueueProbe<T> {
        QueueProbe {
            shared: self.shared.clone(),
        }
    }
}

impl<T> QueueReceiver<T> {
    /// Takes the oldest message if there is one.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] once the queue is empty and
    /// every sender is gone.
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        let was_full = state.messages.len() >= self.shared.capacity;
        let Some(message) = state.messages.pop_front() else {
            return Err(if state.senders == 0 {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            });
        };
        if was_full && !state.senders_waiting.is_empty() {
            let waiting = std::mem::take(&mut state.senders_waiting);
            drop(state);
            waiting.iter().for_each(|parker| parker.notify());
        }
        Ok(message)
    }

    /// Has `parker` rung when a message arrives or the last sender goes; `false` (and nothing
    /// registered) if there is a message or no sender already.
    pub(crate) fn wait_for_message(&self, parker: &Arc<Parker>) -> bool {
        let mut state = self.shared.lock();
        if !state.messages.is_empty() || state.senders == 0 {
            return false;
        }
        state.receiver_waiting = Some(parker.clone());
        true
    }

    /// A look at this queue.
    pub(crate) fn probe(&self) -> QueueProbe<T> {
        QueueProbe {
            shared: self.shared.clone(),
        }
    }
}

impl<T> QueueProbe<T> {
    /// Messages queued.
    pub(crate) fn len(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Messages the queue holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Whether no message is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a sender would have to wait.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.shared.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_waiting_receiver_is_rung_by_a_send_and_by_the_last_sender_going() {
        let (tx, rx) = queue::<u32>(2);
        let parker = Arc::new(Parker::new());
        assert!(rx.wait_for_message(&parker));
        tx.try_send(7).unwrap();
        assert!(parker.wait(Some(std::time::Instant::now() + Duration::from_secs(5))));
        assert_eq!(rx.try_recv(), Ok(7));
        assert!(rx.wait_for_message(&parker));
        drop(tx);
        assert!(parker.wait(Some(std::time::Instant::now() + Duration::from_secs(5))));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn a_full_queue_holds_its_sender_back_until_the_receiver_takes_one() {
        let (tx, rx) = queue::<u32>(1);
        tx.try_send(1).unwrap();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        let sender = std::thread::spawn(move || tx.send_blocking(2));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(rx.try_recv(), Ok(2));
    }

    #[test]
    fn senders_learn_that_the_receiver_is_gone() {
        let (tx, rx) = queue::<u32>(1);
        tx.try_send(1).unwrap();
        let probe = tx.probe();
        assert!(probe.is_full());
        let sender = std::thread::spawn(move || tx.send_blocking(2));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(2));
        assert!(probe.is_empty());
    }
}

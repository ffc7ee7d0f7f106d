//! A bounded channel from an async task to a process's thread.
//!
//! The process waits on a crossbeam receiver (with [`ProcessContext::recv_any_or`], so a stop
//! wakes it), while the task must wait without blocking its runtime when the channel is full.
//! Credits do both: the task takes one before each send and so never meets a full channel, and
//! the process gives one back for each message it takes.
//!
//! [`ProcessContext::recv_any_or`]: ProcessContext::recv_any_or

use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use tokio::sync::Semaphore;

use crate::engine::{InPort, OutPort, ProcessContext, ProcessError, ReceivedOr};
use crate::ip::Ip;

/// The task's end.
pub(crate) struct AsyncSender<T> {
    sender: Sender<T>,
    credits: Arc<Semaphore>,
}

/// The process's end.
pub(crate) struct ProcessReceiver<T> {
    receiver: Receiver<T>,
    credits: Arc<Semaphore>,
}

/// A channel holding at most `capacity` messages.
pub(crate) fn channel<T>(capacity: usize) -> (AsyncSender<T>, ProcessReceiver<T>) {
    let (sender, receiver) = crossbeam_channel::bounded(capacity);
    let credits = Arc::new(Semaphore::new(capacity));
    (
        AsyncSender {
            sender,
            credits: credits.clone(),
        },
        ProcessReceiver { receiver, credits },
    )
}

impl<T> AsyncSender<T> {
    /// Sends `message`, waiting (asynchronously) while the channel is full.
    ///
    /// # Errors
    ///
    /// Gives the message back when the process's end is gone.
    pub(crate) async fn send(&self, message: T) -> Result<(), T> {
        let Ok(credit) = self.credits.acquire().await else {
            return Err(message);
        };
        // The process gives the credit back when it takes the message.
        credit.forget();
        self.sender.try_send(message).map_err(|e| e.into_inner())
    }
}

impl<T> ProcessReceiver<T> {
    /// The receiver to wait on.
    pub(crate) fn receiver(&self) -> &Receiver<T> {
        &self.receiver
    }

    /// Gives back the credit of one message taken from [`ProcessReceiver::receiver`].
    pub(crate) fn taken(&self) {
        self.credits.add_permits(1);
    }
}

impl<T> Drop for ProcessReceiver<T> {
    fn drop(&mut self) {
        // Wakes a task waiting for a credit: its next send fails.
        self.credits.close();
    }
}

/// The process's end of a channel to an async task.
pub(crate) struct ProcessSender<T> {
    sender: tokio::sync::mpsc::Sender<T>,
    room: Receiver<()>,
}

/// The task's end of a channel from a process.
pub(crate) struct AsyncReceiver<T> {
    receiver: tokio::sync::mpsc::Receiver<T>,
    room: Sender<()>,
}

/// A channel from a process to a task holding at most `capacity` messages.
pub(crate) fn to_task<T>(capacity: usize) -> (ProcessSender<T>, AsyncReceiver<T>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(capacity);
    // One token says "there may be room now"; more would say nothing new.
    let (room_sender, room) = crossbeam_channel::bounded(1);
    (
        ProcessSender { sender, room },
        AsyncReceiver {
            receiver,
            room: room_sender,
        },
    )
}

impl<T> ProcessSender<T> {
    /// Sends `message`, waiting while the channel is full (a stop ends the wait).
    ///
    /// Returns `Ok(false)` when the task has ended and dropped its end.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Stopped`] when the network stops meanwhile.
    pub(crate) fn send(
        &self,
        ctx: &mut ProcessContext,
        mut message: T,
    ) -> Result<bool, ProcessError> {
        use tokio::sync::mpsc::error::TrySendError;
        loop {
            match self.sender.try_send(message) {
                Ok(()) => return Ok(true),
                Err(TrySendError::Closed(_)) => return Ok(false),
                Err(TrySendError::Full(back)) => {
                    message = back;
                    ctx.recv_any_or(&[], &self.room)?;
                }
            }
        }
    }
}

impl<T> AsyncReceiver<T> {
    /// Takes up to `limit` messages into `into`, waiting for at least one; 0 once the process's
    /// end is gone and everything was taken.
    pub(crate) async fn recv_many(&mut self, into: &mut Vec<T>, limit: usize) -> usize {
        let taken = self.receiver.recv_many(into, limit).await;
        let _ = self.room.try_send(());
        taken
    }
}

/// Sends the payload of each message from the task to `output`, until the task ends (its end
/// of the channel is gone) or the network stops: the body of every subscriber.
///
/// # Errors
///
/// [`ProcessError::Stopped`], or what sending says.
pub(crate) fn forward_to_port(
    ctx: &mut ProcessContext,
    from_task: &ProcessReceiver<Bytes>,
    output: OutPort,
) -> Result<(), ProcessError> {
    while let ReceivedOr::Channel(Some(payload)) = ctx.recv_any_or(&[], from_task.receiver())? {
        from_task.taken();
        ctx.send(output, Ip::data(payload))?;
    }
    Ok(())
}

/// Hands the payload of each data IP on `input` to the task, until `input` ends or the task
/// does (brackets are not sent on): the body of every publisher.
///
/// # Errors
///
/// [`ProcessError::Stopped`].
pub(crate) fn forward_from_port(
    ctx: &mut ProcessContext,
    input: InPort,
    to_task: &ProcessSender<Bytes>,
) -> Result<(), ProcessError> {
    while let Some(ip) = ctx.recv(input)? {
        if let Ip::Data(payload) = ip
            && !to_task.send(ctx, payload.to_bytes())?
        {
            break;
        }
    }
    Ok(())
}

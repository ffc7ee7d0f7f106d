//! `remote/Receive`: the receiving end of a remote edge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::send::connection_lost;
use super::{ASK_EVERY, EdgeLink};
use crate::cluster::Cluster;
use crate::cluster::frame::Message;
use crate::component::Component;
use crate::component::connect::bridge;
use crate::component::connect::{AbortOnDrop, io_runtime, wait_for};
use crate::engine::{OutPort, ProcessContext, ProcessError, ReceivedOr};

/// Messages on their way from the subscription to the process, at most. Credit bounds what
/// the sender has in flight; this only bounds how far the subscription runs ahead.
const MESSAGES_IN_FLIGHT: usize = 1024;

/// Sends on `out` the IPs the `remote/Send` process of the same edge sends from another
/// runtime.
pub struct RemoteReceive {
    cluster: Arc<Cluster>,
    link: EdgeLink,
}

impl RemoteReceive {
    /// The receiving end of `link`.
    pub fn new(cluster: Arc<Cluster>, link: EdgeLink) -> RemoteReceive {
        RemoteReceive { cluster, link }
    }
}

/// The credit this end grants, published by its own task whenever it changes.
struct Grant {
    until: AtomicU64,
    closed: AtomicBool,
    changed: Notify,
}

impl Grant {
    fn raise(&self, until: u64) {
        self.until.store(until, Ordering::Release);
        self.changed.notify_one();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.notify_one();
    }
}

/// Closes the grant when the process ends.
struct CloseOnDrop(Arc<Grant>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What the subscription hands to the process.
type Delivery = Result<async_nats::Message, String>;

impl Component for RemoteReceive {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let output = ctx.outport("out")?;
        let runtime = io_runtime()?;
        let client = self.cluster.client().clone();
        let capacity = self.link.capacity;
        let subscribing = client.clone();
        let subject = self.link.data.clone();
        let subscriber = wait_for(ctx, async move {
            let subscriber = subscribing.subscribe(subject).await?;
            subscribing.flush().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(subscriber)
        })?
        .map_err(|e| self.failure(format!("cannot subscribe to its data: {e}")))?;
        let (to_process, from_task) = bridge::channel::<Delivery>(MESSAGES_IN_FLIGHT);
        let watched = client.clone();
        let _forwarder = AbortOnDrop(runtime.spawn(async move {
            let mut subscriber = subscriber;
            let mut ticks = tokio::time::interval(ASK_EVERY);
            let mut down_since: Option<Instant> = None;
            loop {
                let delivery = tokio::select! {
                    message = subscriber.next() => match message {
                        Some(message) => Ok(message),
                        None => Err("its subscription ended".to_string()),
                    },
                    _ = ticks.tick() => match connection_lost(&watched, &mut down_since) {
                        Some(reason) => Err(reason),
                        None => continue,
                    },
                };
                let last = delivery.is_err();
                if to_process.send(delivery).await.is_err() || last {
                    break;
                }
            }
        }));
        let grant = Arc::new(Grant {
            until: AtomicU64::new(capacity),
            closed: AtomicBool::new(false),
            changed: Notify::new(),
        });
        // Not aborted: when this process ends, for whatever reason, the guard closes the
        // grant and the task tells the sender before it ends.
        runtime.spawn(publish_grants(
            client.clone(),
            self.link.credit.clone(),
            grant.clone(),
        ));
        let grant = CloseOnDrop(grant);
        let mut expected = 0u64;
        let mut granted = capacity;
        loop {
            let delivery = match ctx.recv_any_or(&[], from_task.receiver())? {
                ReceivedOr::Channel(Some(delivery)) => delivery,
                ReceivedOr::Channel(None) => Err("its subscription ended".to_string()),
                ReceivedOr::Port(_) => continue,
            };
            from_task.taken();
            let message = delivery.map_err(|reason| self.failure(reason))?;
            let decoded =
                Message::decode(&message.payload).map_err(|e| self.failure(e.to_string()))?;
            match decoded {
                Message::Frames { first, ips } => {
                    self.check_sequence(first, expected)?;
                    let count = ips.len() as u64;
                    if !pass_on(ctx, output, ips)? {
                        return Ok(());
                    }
                    expected += count;
                    // Credit in quarters of the capacity: fewer messages, and the sender
                    // never runs dry while a quarter is on its way.
                    if expected + capacity - granted >= (capacity / 4).max(1) {
                        granted = expected + capacity;
                        grant.0.raise(granted);
                    }
                }
                Message::End { total } => {
                    self.check_sequence(total, expected)?;
                    if let Some(reply) = message.reply {
                        let answering = client.clone();
                        wait_for(ctx, async move {
                            let _ = answering.publish(reply, bytes::Bytes::new()).await;
                            answering.flush().await
                        })?
                        .map_err(|e| self.failure(format!("cannot confirm the end: {e}")))?;
                    }
                    return Ok(());
                }
                Message::Abort { reason } => {
                    return Err(self.failure(format!("the sending end failed: {reason}")));
                }
                Message::Ask => grant.0.changed.notify_one(),
                Message::Credit { .. } => {}
            }
        }
    }
}

impl RemoteReceive {
    /// Fails loudly when IPs went missing (or came twice) between the two ends.
    fn check_sequence(&self, got: u64, expected: u64) -> Result<(), ProcessError> {
        if got == expected {
            return Ok(());
        }
        Err(self.failure(if got > expected {
            format!(
                "{} IPs were lost on the way (IPs {expected} to {} never arrived)",
                got - expected,
                got - 1
            )
        } else {
            format!("IPs from {got} arrived again after {expected}: the edge is out of order")
        }))
    }

    fn failure(&self, reason: String) -> ProcessError {
        ProcessError::failed(format!("{}: {reason}", self.link.describe()))
    }
}

/// Sends `ips` on; false when the outport has closed downstream.
fn pass_on(
    ctx: &mut ProcessContext,
    output: OutPort,
    ips: Vec<crate::ip::Ip>,
) -> Result<bool, ProcessError> {
    match ctx.send_batch(output, ips) {
        Ok(()) => Ok(true),
        Err(ProcessError::Closed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Publishes the grant at once and again whenever it changes or the sender asks, until it is
/// closed.
async fn publish_grants(client: async_nats::Client, subject: String, grant: Arc<Grant>) {
    loop {
        let closed = grant.closed.load(Ordering::Acquire);
        let message = Message::Credit {
            until: grant.until.load(Ordering::Acquire),
            closed,
        };
        // Bounded: a connection that is gone must not keep this task forever.
        let sent = async {
            let _ = client.publish(subject.clone(), message.encode()).await;
            if closed {
                let _ = client.flush().await;
            }
        };
        let _ = tokio::time::timeout(ASK_EVERY * 4, sent).await;
        if closed {
            return;
        }
        grant.changed.notified().await;
    }
}

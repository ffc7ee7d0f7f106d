//! `remote/Receive`: the receiving end of a remote edge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use async_nats::jetstream::message::Acker;
use futures_util::StreamExt;
use tokio::sync::Notify;

use super::send::connection_lost;
use super::{ASK_EVERY, EdgeLink, durable};
use crate::cluster::Cluster;
use crate::cluster::frame::Message;
use crate::component::Component;
use crate::component::connect::bridge::{self, AsyncSender};
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

/// A message of the edge, as the process takes it.
struct Incoming {
    payload: bytes::Bytes,
    /// Where to confirm the end of the stream (core edges).
    reply: Option<async_nats::Subject>,
    /// How to acknowledge it once passed on (durable edges).
    acker: Option<async_nats::jetstream::message::Acker>,
}

/// What the subscription hands to the process: a message, or (durable edges) a reminder to
/// see whether what was passed on has been taken, so its frames can be acknowledged.
type Delivery = Result<Option<Incoming>, String>;

/// How often a durable edge's receiver looks whether what it passed on has been taken.
const DRAIN_CHECK: std::time::Duration = std::time::Duration::from_millis(20);

impl Component for RemoteReceive {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let result = self.receive(ctx);
        // A durable edge's receiver that stops says nothing (its share may come back), but
        // one that fails will not take up the stream again: its sender must not wait for it.
        if self.link.durable && matches!(result, Err(ProcessError::Failed(_))) {
            let client = self.cluster.client().clone();
            let _ = self.announce_closed(ctx, &client);
        }
        result
    }
}

impl RemoteReceive {
    fn receive(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let output = ctx.outport("out")?;
        let runtime = io_runtime()?;
        let client = self.cluster.client().clone();
        let capacity = self.link.capacity;
        let (to_process, from_task) = bridge::channel::<Delivery>(MESSAGES_IN_FLIGHT);
        let (subscribing, link) = (client.clone(), self.link.clone());
        let source = wait_for(ctx, async move { Source::open(&subscribing, &link).await })?
            .map_err(|reason| self.failure(reason))?;
        let _forwarder = AbortOnDrop(runtime.spawn(source.forward(client.clone(), to_process)));
        let (to_acker, mut acks) = bridge::to_task::<Acker>(MESSAGES_IN_FLIGHT);
        let _acker = AbortOnDrop(runtime.spawn(async move {
            let mut batch = Vec::new();
            // In order, one task: a frame is acknowledged only after those before it.
            while acks.recv_many(&mut batch, 64).await > 0 {
                for acker in batch.drain(..) {
                    let _ = acker.ack().await;
                }
            }
        }));
        // A core edge's sender waits for credit; a durable edge's for room in its stream.
        // Not aborted: when this process ends, for whatever reason, the guard closes the
        // grant and the task tells the sender before it ends. A durable edge's receiver
        // says nothing when it stops: its share may come back and go on.
        let grant = (!self.link.durable).then(|| {
            let grant = Arc::new(Grant {
                until: AtomicU64::new(capacity),
                closed: AtomicBool::new(false),
                changed: Notify::new(),
            });
            runtime.spawn(publish_grants(
                client.clone(),
                self.link.credit.clone(),
                grant.clone(),
            ));
            CloseOnDrop(grant)
        });
        // A durable edge learns where it stands from the first frame it is given: after a
        // crash, the first one not acknowledged.
        let mut expected = (!self.link.durable).then_some(0u64);
        let mut sender_life = None;
        let mut granted = capacity;
        // Frames passed on whose IPs downstream has not taken yet: acknowledged once it has,
        // so that a crash before then has them delivered again.
        let mut unacked = Vec::new();
        loop {
            let delivery = match ctx.recv_any_or(&[], from_task.receiver())? {
                ReceivedOr::Channel(Some(delivery)) => delivery,
                ReceivedOr::Channel(None) => Err("its subscription ended".to_string()),
                ReceivedOr::Port(_) => continue,
            };
            from_task.taken();
            let Some(message) = delivery.map_err(|reason| self.failure(reason))? else {
                acknowledge_taken(ctx, output, &mut unacked, &to_acker)?;
                continue;
            };
            let decoded =
                Message::decode(&message.payload).map_err(|e| self.failure(e.to_string()))?;
            match decoded {
                Message::Frames {
                    life,
                    first,
                    mut ips,
                } => {
                    self.meet_life(life, &mut sender_life, &mut expected);
                    let at = *expected.get_or_insert(first);
                    if self.link.durable && first < at {
                        // Delivered again after an unacknowledged pass: skip what went on.
                        let seen = usize::try_from(at - first).unwrap_or(usize::MAX);
                        ips.drain(..seen.min(ips.len()));
                    } else {
                        self.check_sequence(first, at)?;
                    }
                    let next = first.max(at) + ips.len() as u64;
                    if !pass_on(ctx, output, ips)? {
                        if grant.is_none() {
                            self.announce_closed(ctx, &client)?;
                        }
                        return Ok(());
                    }
                    expected = Some(next);
                    if let Some(acker) = message.acker {
                        unacked.push(acker);
                        ctx.flush()?;
                        acknowledge_taken(ctx, output, &mut unacked, &to_acker)?;
                    }
                    // Credit in quarters of the capacity: fewer messages, and the sender
                    // never runs dry while a quarter is on its way.
                    if let Some(grant) = &grant
                        && next + capacity - granted >= (capacity / 4).max(1)
                    {
                        granted = next + capacity;
                        grant.0.raise(granted);
                    }
                }
                Message::End { life, total } => {
                    self.meet_life(life, &mut sender_life, &mut expected);
                    self.check_sequence(total, *expected.get_or_insert(total))?;
                    while !unacked.is_empty() {
                        ctx.flush()?;
                        acknowledge_taken(ctx, output, &mut unacked, &to_acker)?;
                        if !unacked.is_empty() {
                            ctx.sleep(DRAIN_CHECK)?;
                        }
                    }
                    self.confirm_end(ctx, &client, message)?;
                    return Ok(());
                }
                Message::Abort { reason } => {
                    return Err(self.failure(format!("the sending end failed: {reason}")));
                }
                Message::Ask => {
                    if let Some(grant) = &grant {
                        grant.0.changed.notify_one();
                    }
                }
                Message::Credit { .. } => {}
            }
        }
    }
}

/// Where a receiver's messages come from.
enum Source {
    /// A core NATS subscription to the data subject.
    Core(async_nats::Subscriber),
    /// A durable edge's JetStream consumer.
    Durable(Box<async_nats::jetstream::consumer::pull::Stream>),
}

impl Source {
    async fn open(client: &async_nats::Client, link: &EdgeLink) -> Result<Source, String> {
        if link.durable {
            return durable::consume(client, link)
                .await
                .map(|messages| Source::Durable(Box::new(messages)));
        }
        crate::cluster::subscribe(client, link.data.clone(), "its data")
            .await
            .map(Source::Core)
    }

    /// The next message, `None` when the source has ended.
    async fn next(&mut self) -> Option<Result<Incoming, String>> {
        match self {
            Source::Core(subscriber) => subscriber.next().await.map(|message| {
                Ok(Incoming {
                    payload: message.payload,
                    reply: message.reply,
                    acker: None,
                })
            }),
            Source::Durable(messages) => messages.next().await.map(|message| {
                let (message, acker) = message
                    .map_err(|e| format!("cannot take from its JetStream stream: {e}"))?
                    .split();
                Ok(Incoming {
                    payload: message.payload,
                    reply: None,
                    acker: Some(acker),
                })
            }),
        }
    }

    /// Hands each message to the process until the source ends or the connection to NATS
    /// stays lost.
    async fn forward(mut self, watched: async_nats::Client, to_process: AsyncSender<Delivery>) {
        let mut ticks = tokio::time::interval(ASK_EVERY);
        let mut checks = tokio::time::interval(DRAIN_CHECK);
        let durable = matches!(self, Source::Durable(_));
        let mut down_since: Option<Instant> = None;
        loop {
            let delivery = tokio::select! {
                message = self.next() => match message {
                    Some(message) => message.map(Some),
                    None => Err("its subscription ended".to_string()),
                },
                _ = ticks.tick() => match connection_lost(&watched, &mut down_since) {
                    Some(reason) => Err(reason),
                    None => continue,
                },
                _ = checks.tick(), if durable => Ok(None),
            };
            let last = delivery.is_err();
            if to_process.send(delivery).await.is_err() || last {
                break;
            }
        }
    }
}

impl RemoteReceive {
    /// Follows the sender into a new life: a sender that started again (its share deployed
    /// anew after a crash) numbers its IPs from 0, and they go on where the last life's
    /// stopped.
    fn meet_life(&self, life: u64, current: &mut Option<u64>, expected: &mut Option<u64>) {
        if *current == Some(life) {
            return;
        }
        if current.is_some() {
            tracing::info!("{}: the sending end started again", self.link.describe());
        }
        *current = Some(life);
        *expected = (!self.link.durable).then_some(0);
    }

    /// Tells the sender of a durable edge that downstream has closed.
    fn announce_closed(
        &self,
        ctx: &mut ProcessContext,
        client: &async_nats::Client,
    ) -> Result<(), ProcessError> {
        let (client, subject) = (client.clone(), self.link.credit.clone());
        let closed = Message::Credit {
            until: 0,
            closed: true,
        };
        wait_for(ctx, async move {
            client.publish(subject, closed.encode()).await?;
            client.flush().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })?
        .map_err(|e| self.failure(format!("cannot tell the sender it closed: {e}")))
    }

    /// Confirms the end of the stream: a core edge answers the sender; a durable edge
    /// acknowledges the end and removes its stream, which has done its work.
    fn confirm_end(
        &self,
        ctx: &mut ProcessContext,
        client: &async_nats::Client,
        message: Incoming,
    ) -> Result<(), ProcessError> {
        let (client, link) = (client.clone(), self.link.clone());
        wait_for(ctx, async move {
            if let Some(reply) = message.reply {
                client.publish(reply, bytes::Bytes::new()).await?;
                client.flush().await?;
            }
            if let Some(acker) = message.acker {
                acker.ack().await?;
                durable::remove(&client, &link).await;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })?
        .map_err(|e| self.failure(format!("cannot confirm the end: {e}")))
    }

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

/// Acknowledges the frames in `unacked` once everything passed on from `output` has been
/// taken downstream.
fn acknowledge_taken(
    ctx: &mut ProcessContext,
    output: OutPort,
    unacked: &mut Vec<Acker>,
    to_acker: &bridge::ProcessSender<Acker>,
) -> Result<(), ProcessError> {
    if unacked.is_empty() || !ctx.is_outport_drained(output) {
        return Ok(());
    }
    for acker in unacked.drain(..) {
        to_acker.send(ctx, acker)?;
    }
    Ok(())
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

//! `remote/Send`: the sending end of a remote edge.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use futures_util::StreamExt;

use super::{ASK_EVERY, EdgeLink, FRAME_BYTES, durable};
use crate::cluster::frame::{FrameWriter, Message};
use crate::cluster::{Cluster, subscribe};
use crate::component::Component;
use crate::component::connect::bridge::{self, AsyncReceiver};
use crate::component::connect::{AbortOnDrop, io_runtime, wait_for};
use crate::engine::{ProcessContext, ProcessError, ReceivedOr};

/// Frames on their way from the process to its publishing task, at most.
const FRAMES_IN_FLIGHT: usize = 8;

/// The most IPs taken from the inport at once (and so put in one frame).
const MAX_BATCH: u64 = 4096;

/// As [`MAX_BATCH`] for a durable edge: each frame waits for the server to store it, so
/// frames are as large as the server takes.
const MAX_DURABLE_BATCH: u64 = 65_536;

/// How long the connection to NATS may be down before the edge fails: reconnecting within it
/// loses nothing that sequence numbers would not catch.
pub(super) const RECONNECT_GRACE: Duration = Duration::from_secs(3);

/// Sends the IPs of `in` to the `remote/Receive` process of the same edge on another runtime.
pub struct RemoteSend {
    cluster: Arc<Cluster>,
    link: EdgeLink,
}

impl RemoteSend {
    /// The sending end of `link`.
    pub fn new(cluster: Arc<Cluster>, link: EdgeLink) -> RemoteSend {
        RemoteSend { cluster, link }
    }
}

/// What the process and its tasks share about credit.
#[derive(Default)]
struct Credit {
    /// IPs numbered below this may be sent.
    until: AtomicU64,
    /// The receiver takes nothing more.
    closed: AtomicBool,
    /// The process waits for credit: the listener asks the receiver again now and then.
    starved: AtomicBool,
    /// Why the edge cannot go on, if a task found out.
    failure: Mutex<Option<String>>,
}

impl Credit {
    fn fail(&self, reason: String) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(reason);
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}

impl Outgoing {
    /// The frame `writer` holds; the writer starts the next one.
    fn frame(writer: &mut FrameWriter) -> Outgoing {
        let (life, first) = (writer.life(), writer.first());
        Outgoing::Frame(life, first, writer.take())
    }
}

/// What the process hands to its publishing task.
enum Outgoing {
    /// A frame, the sender's life and the sequence number of its first IP.
    Frame(u64, u64, Bytes),
    /// The stream ended after `total` IPs: tell the receiver until it answers.
    End {
        /// The sender's life.
        life: u64,
        /// How many IPs it sent.
        total: u64,
    },
}

impl Component for RemoteSend {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let runtime = io_runtime()?;
        let client = self.cluster.client().clone();
        let link = self.link.clone();
        let credit = Arc::new(Credit::default());
        if link.durable {
            // The stream's limits hold the sender back, not credit (see `durable`).
            credit.until.store(u64::MAX, Ordering::Release);
            let (client, link) = (client.clone(), link.clone());
            wait_for(
                ctx,
                async move { durable::ensure_stream(&client, &link).await },
            )?
            .map_err(|reason| self.failure(reason))?;
        } else {
            credit.starved.store(true, Ordering::Release);
        }
        let (poke, poked) = crossbeam_channel::bounded::<()>(1);
        let (subscribing, subject) = (client.clone(), link.credit.clone());
        let subscriber = wait_for(ctx, async move {
            subscribe(&subscribing, subject, "its credit").await
        })?
        .map_err(|reason| self.failure(reason))?;
        let _listener = AbortOnDrop(runtime.spawn(listen(
            subscriber,
            client.clone(),
            link.clone(),
            credit.clone(),
            poke.clone(),
        )));
        let (to_task, from_process) = bridge::to_task::<Outgoing>(FRAMES_IN_FLIGHT);
        let (done, finished) = crossbeam_channel::bounded::<()>(1);
        let _publisher = AbortOnDrop(runtime.spawn(publish(
            from_process,
            client.clone(),
            link.clone(),
            credit.clone(),
            (poke, done),
        )));
        // Room for the frame's header and one IP's tag and length.
        let largest = client.server_info().max_payload.saturating_sub(32);
        // A durable frame carries a message id header too.
        let frame_bytes = if link.durable {
            largest.saturating_sub(1024).max(1)
        } else {
            FRAME_BYTES.min(largest)
        };
        // A larger IP goes in a frame of its own.
        let largest_ip = if link.durable { frame_bytes } else { largest };
        let life = new_life();
        let mut writer = FrameWriter::new(life, 0);
        let mut batch = Vec::new();
        let mut next = 0u64;
        loop {
            let Some(room) = self.wait_for_credit(ctx, &credit, &poked, next)? else {
                // The receiver's downstream closed: so does this inport.
                return Ok(());
            };
            batch.clear();
            let most = if link.durable {
                MAX_DURABLE_BATCH
            } else {
                MAX_BATCH
            };
            let taken = ctx.recv_batch(input, &mut batch, room.min(most) as usize)?;
            if taken == 0 {
                break;
            }
            for ip in batch.drain(..) {
                let size = ip.payload().len();
                if size > largest_ip {
                    return Err(self.failure(format!(
                        "an IP of {size} bytes is larger than the NATS server takes in one \
                         frame of this edge ({largest_ip})"
                    )));
                }
                if writer.count() > 0 && writer.len() + size + 16 > frame_bytes {
                    self.hand_over(ctx, &to_task, &credit, Outgoing::frame(&mut writer))?;
                }
                writer.push(&ip);
            }
            next += taken as u64;
            self.hand_over(ctx, &to_task, &credit, Outgoing::frame(&mut writer))?;
        }
        self.hand_over(ctx, &to_task, &credit, Outgoing::End { life, total: next })?;
        drop(to_task);
        loop {
            if let Some(reason) = credit.failure() {
                return Err(self.failure(reason));
            }
            match ctx.recv_any_or(&[], &finished)? {
                ReceivedOr::Channel(Some(())) => return Ok(()),
                ReceivedOr::Channel(None) => {
                    let reason = credit.failure().unwrap_or_else(|| "its task ended".into());
                    return Err(self.failure(reason));
                }
                ReceivedOr::Port(_) => {}
            }
        }
    }
}

impl RemoteSend {
    /// How many IPs may be sent now, waiting until at least one may; `None` once the
    /// receiver takes nothing more.
    fn wait_for_credit(
        &self,
        ctx: &mut ProcessContext,
        credit: &Credit,
        poked: &Receiver<()>,
        next: u64,
    ) -> Result<Option<u64>, ProcessError> {
        loop {
            if let Some(reason) = credit.failure() {
                return Err(self.failure(reason));
            }
            if credit.closed.load(Ordering::Acquire) {
                return Ok(None);
            }
            let until = credit.until.load(Ordering::Acquire);
            if until > next {
                credit.starved.store(false, Ordering::Release);
                return Ok(Some(until - next));
            }
            credit.starved.store(true, Ordering::Release);
            ctx.recv_any_or(&[], poked)?;
        }
    }

    fn hand_over(
        &self,
        ctx: &mut ProcessContext,
        to_task: &bridge::ProcessSender<Outgoing>,
        credit: &Credit,
        outgoing: Outgoing,
    ) -> Result<(), ProcessError> {
        if to_task.send(ctx, outgoing)? {
            return Ok(());
        }
        let reason = credit
            .failure()
            .unwrap_or_else(|| "its publishing task ended".into());
        Err(self.failure(reason))
    }

    fn failure(&self, reason: String) -> ProcessError {
        ProcessError::failed(format!("{}: {reason}", self.link.describe()))
    }
}

/// A number for this life of a sender, unlike any other's (time, process and a counter).
fn new_life() -> u64 {
    use std::sync::atomic::AtomicU64;
    static STARTED: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let count = STARTED.fetch_add(1, Ordering::Relaxed);
    nanos ^ (u64::from(std::process::id()) << 40) ^ count.rotate_left(20)
}

/// Takes the receiver's credit as it comes, asks for it while the process is starved, and
/// gives up when the connection to NATS stays down.
async fn listen(
    mut subscriber: async_nats::Subscriber,
    client: async_nats::Client,
    link: EdgeLink,
    credit: Arc<Credit>,
    poke: Sender<()>,
) {
    let mut ticks = tokio::time::interval(ASK_EVERY);
    let mut down_since: Option<Instant> = None;
    loop {
        tokio::select! {
            message = subscriber.next() => {
                let Some(message) = message else { break };
                if let Ok(Message::Credit { until, closed }) = Message::decode(&message.payload) {
                    credit.until.fetch_max(until, Ordering::AcqRel);
                    if closed {
                        credit.closed.store(true, Ordering::Release);
                    }
                    let _ = poke.try_send(());
                }
            }
            _ = ticks.tick() => {
                if let Some(reason) = connection_lost(&client, &mut down_since) {
                    credit.fail(reason);
                    let _ = poke.try_send(());
                    break;
                }
                if credit.starved.load(Ordering::Acquire) {
                    let _ = client.publish(link.data.clone(), Message::Ask.encode()).await;
                }
            }
        }
    }
}

/// Why the edge must fail, once the connection has been down for [`RECONNECT_GRACE`].
pub(crate) fn connection_lost(
    client: &async_nats::Client,
    down_since: &mut Option<Instant>,
) -> Option<String> {
    if client.connection_state() == async_nats::connection::State::Connected {
        *down_since = None;
        return None;
    }
    let since = *down_since.get_or_insert_with(Instant::now);
    (since.elapsed() >= RECONNECT_GRACE).then(|| {
        format!(
            "lost the connection to the NATS server for {} s; IPs on the way may be lost",
            RECONNECT_GRACE.as_secs()
        )
    })
}

/// Publishes the process's frames in order, then its end until the receiver answers.
async fn publish(
    mut from_process: AsyncReceiver<Outgoing>,
    client: async_nats::Client,
    link: EdgeLink,
    credit: Arc<Credit>,
    (poke, done): (Sender<()>, Sender<()>),
) {
    let mut batch = Vec::with_capacity(FRAMES_IN_FLIGHT);
    while from_process.recv_many(&mut batch, FRAMES_IN_FLIGHT).await > 0 {
        for outgoing in batch.drain(..) {
            let (result, ended) = match outgoing {
                Outgoing::Frame(life, first, frame) if link.durable => (
                    durable::publish(&client, &link, format!("{life:x}-{first}"), frame).await,
                    false,
                ),
                Outgoing::Frame(_, _, frame) => (
                    client
                        .publish(link.data.clone(), frame)
                        .await
                        .map_err(|e| format!("cannot publish: {e}")),
                    false,
                ),
                Outgoing::End { life, total } if link.durable => {
                    let end = Message::End { life, total }.encode();
                    (
                        durable::publish(&client, &link, format!("{life:x}-end"), end).await,
                        true,
                    )
                }
                Outgoing::End { life, total } => (end(&client, &link, life, total).await, true),
            };
            if let Err(reason) = result {
                credit.fail(reason);
                let _ = poke.try_send(());
                return;
            }
            if ended {
                let _ = done.try_send(());
                return;
            }
        }
    }
}

/// Tells the receiver the stream ended after `total` IPs, until it answers or is gone.
async fn end(
    client: &async_nats::Client,
    link: &EdgeLink,
    life: u64,
    total: u64,
) -> Result<(), String> {
    let message = Message::End { life, total }.encode();
    loop {
        let asked = client.request(link.data.clone(), message.clone());
        match tokio::time::timeout(ASK_EVERY * 4, asked).await {
            Ok(Ok(_)) => return Ok(()),
            // The receiver granted credit, so it was there: it has ended since.
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => return Ok(()),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => {}
            Ok(Err(e)) => return Err(format!("cannot send the end of the stream: {e}")),
            Err(_) => {}
        }
    }
}

//! The connected clients, as the runtime sees them: where to send their frames and what each
//! may receive.
//!
//! Every frame to a client goes through its own bounded queue, filled under the runtime's lock,
//! so direct answers and broadcasts reach each client in the order they happened. The queue is
//! bounded twice: by frames (the channel's capacity) and by bytes ([`QueueLimits`]), since one
//! frame may be a few bytes or megabytes.
//!
//! Two kinds of frame share that queue. What a network shows, packets seen on edges
//! (`network:data`, `begingroup`, `endgroup`, `connect`, `disconnect`) and the lines it prints
//! (`network:output`), is for people watching: a client has at most [`MAX_QUEUED_PACKETS`]
//! packet frames ([`MAX_QUEUED_PACKET_BYTES`]) waiting, and as many output lines, each kind
//! counted apart, and those beyond are dropped for that client alone and counted. So a busy
//! network (packets on every edge, a loop printing thousands of lines a second) never delays
//! the answers to a client's requests nor costs it its connection, and a flood of packets
//! never drops a line the network prints. Everything else (answers, echoes, errors, status,
//! start and stop) is never dropped or reordered; a client that lets the queue fill with those does not read at
//! all, and is hung up on ([`Connection::hangup`]): its connection gets a close frame saying
//! why, and is closed, rather than buffered without bound.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::protocol::{Capabilities, Message};

/// Identifies a connected client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// Packet frames (`network:data` and the like) that may wait for one client; more are dropped
/// for that client until it reads.
pub const MAX_QUEUED_PACKETS: usize = 1024;

/// Bytes of packet frames that may wait for one client; more are dropped as above.
pub const MAX_QUEUED_PACKET_BYTES: usize = 4 * 1024 * 1024;

/// Bytes of frames of every kind that may wait for one client by default (64 MiB).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// How much may wait for one client before it is hung up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Bytes of frames. A single frame larger than this is still sent to a client whose queue
    /// is empty.
    pub max_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

/// What the connection task of a client is told to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send this text frame (shared, not copied, between the clients of a broadcast); the
    /// ticket counts it as waiting until it is sent or dropped.
    Frame(Utf8Bytes, QueueTicket),
    /// Close the connection with this code and reason.
    Close(
        tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode,
        String,
    ),
}

/// What a frame is, for a client that reads slower than frames come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Never dropped.
    Control,
    /// A packet seen on an edge: dropped past its budget.
    Packet,
    /// A line the network printed: dropped past its own budget.
    Output,
}

impl Kind {
    fn of(message: &Message) -> Kind {
        if message.protocol != "network" {
            return Kind::Control;
        }
        match message.command.as_str() {
            "data" | "begingroup" | "endgroup" | "connect" | "disconnect" => Kind::Packet,
            "output" => Kind::Output,
            _ => Kind::Control,
        }
    }

    /// Which of a client's budgets the frame counts against; `None` for control frames.
    fn budget(self) -> Option<usize> {
        match self {
            Kind::Control => None,
            Kind::Packet => Some(0),
            Kind::Output => Some(1),
        }
    }
}

/// Frames of one droppable kind waiting for a client.
#[derive(Debug, Default)]
struct Budget {
    frames: AtomicUsize,
    bytes: AtomicUsize,
}

/// What waits in one client's queue.
#[derive(Debug, Default)]
struct Queued {
    bytes: AtomicUsize,
    /// Packets, output lines.
    shown: [Budget; 2],
}

impl Queued {
    /// Whether a frame of `size` bytes and `kind` would go past its budget.
    fn over_budget(&self, kind: Kind, size: usize) -> bool {
        kind.budget().is_some_and(|b| {
            let budget = &self.shown[b];
            budget.frames.load(Ordering::Relaxed) >= MAX_QUEUED_PACKETS
                || budget.bytes.load(Ordering::Relaxed) + size > MAX_QUEUED_PACKET_BYTES
        })
    }
}

/// Counts a frame as waiting for its client while it lives.
#[derive(Debug)]
pub struct QueueTicket {
    queued: Arc<Queued>,
    bytes: usize,
    kind: Kind,
}

impl QueueTicket {
    fn new(queued: &Arc<Queued>, bytes: usize, kind: Kind) -> QueueTicket {
        queued.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(b) = kind.budget() {
            queued.shown[b].frames.fetch_add(1, Ordering::Relaxed);
            queued.shown[b].bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        QueueTicket {
            queued: queued.clone(),
            bytes,
            kind,
        }
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.queued.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        if let Some(b) = self.kind.budget() {
            self.queued.shown[b].frames.fetch_sub(1, Ordering::Relaxed);
            self.queued.shown[b]
                .bytes
                .fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

/// A client as its connection sees it: its id, and word of a hang-up.
#[derive(Debug)]
pub struct Connection {
    /// The client's id.
    pub id: ClientId,
    /// Becomes `Some(reason)` when the runtime hangs up on the client (it did not read its
    /// frames); the connection should then send a close frame with the reason and close,
    /// without sending what is still queued.
    pub hangup: watch::Receiver<Option<String>>,
}

struct Client {
    capabilities: Capabilities,
    tx: mpsc::Sender<Outbound>,
    limits: QueueLimits,
    queued: Arc<Queued>,
    hangup: watch::Sender<Option<String>>,
    /// Packet and output frames dropped because too many were queued.
    dropped_packets: u64,
}

/// The clients, by id.
#[derive(Default)]
pub struct Clients {
    clients: BTreeMap<ClientId, Client>,
    next: u64,
    /// Counted over every client there was.
    totals: FrameTotals,
}

/// Frames the runtime exchanged with its clients, over all of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameTotals {
    /// Frames received.
    pub received: u64,
    /// Frames queued for sending.
    pub sent: u64,
    /// Frames showing packets (`network:data` and the like) or output lines
    /// (`network:output`) dropped for clients that read too slowly.
    pub dropped_packets: u64,
}

impl Clients {
    /// The frames exchanged so far.
    pub fn totals(&self) -> FrameTotals {
        self.totals
    }

    /// Counts a frame received from a client.
    pub(crate) fn received(&mut self) {
        self.totals.received += 1;
    }

    /// Registers a client whose frames go to `tx`, at most `limits` of them waiting; it starts
    /// with `capabilities`.
    pub fn add(
        &mut self,
        capabilities: Capabilities,
        tx: mpsc::Sender<Outbound>,
        limits: QueueLimits,
    ) -> Connection {
        self.next += 1;
        let id = ClientId(self.next);
        let (hangup, hangup_rx) = watch::channel(None);
        self.clients.insert(
            id,
            Client {
                capabilities,
                tx,
                limits,
                queued: Arc::default(),
                hangup,
                dropped_packets: 0,
            },
        );
        Connection {
            id,
            hangup: hangup_rx,
        }
    }

    /// Forgets a client.
    pub fn remove(&mut self, id: ClientId) {
        if let Some(client) = self.clients.remove(&id)
            && client.dropped_packets > 0
        {
            tracing::info!(
                client = id.0,
                "{} packet and output frames were not sent to this client: it read slower than \
                 they came",
                client.dropped_packets
            );
        }
    }

    /// Packet and output frames dropped for client `id`: it did not read them fast enough.
    pub fn dropped_packets(&self, id: ClientId) -> u64 {
        self.clients.get(&id).map_or(0, |c| c.dropped_packets)
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Sets what a client may do (from the secret of its latest request).
    pub fn set_capabilities(&mut self, id: ClientId, capabilities: Capabilities) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.capabilities = capabilities;
        }
    }

    /// What a client may do.
    pub fn capabilities(&self, id: ClientId) -> Capabilities {
        self.clients
            .get(&id)
            .map_or(Capabilities::NONE, |c| c.capabilities)
    }

    /// Sends `message` to one client, whatever its capabilities (answers and errors).
    pub fn send(&mut self, id: ClientId, message: &Message, response_to: Option<&Value>) {
        self.push(id, message.to_frame(response_to).into(), Kind::of(message));
    }

    /// Sends `message` to every client allowed to receive it. The requester, if given, gets
    /// it with its `responseTo` (and even without the capability, as the answer it asked for).
    pub fn broadcast(&mut self, message: &Message, requester: Option<(ClientId, Option<&Value>)>) {
        let kind = Kind::of(message);
        let mut shared = None;
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        for id in ids {
            match requester {
                Some((asking, response_to)) if asking == id => {
                    self.push(id, message.to_frame(response_to).into(), kind);
                }
                _ => {
                    let allowed = self.clients.get(&id).is_some_and(|c| {
                        c.capabilities
                            .may_receive(message.protocol, &message.command)
                    });
                    if allowed {
                        let frame =
                            shared.get_or_insert_with(|| Utf8Bytes::from(message.to_frame(None)));
                        self.push(id, frame.clone(), kind);
                    }
                }
            }
        }
    }

    fn push(&mut self, id: ClientId, frame: Utf8Bytes, kind: Kind) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let size = frame.len();
        let queued = &client.queued;
        let bytes_before = queued.bytes.load(Ordering::Relaxed);
        let droppable = kind != Kind::Control;
        if droppable {
            let full =
                queued.over_budget(kind, size) || bytes_before + size > client.limits.max_bytes;
            if full {
                client.dropped_packets += 1;
                self.totals.dropped_packets += 1;
                return;
            }
        } else if bytes_before > 0 && bytes_before + size > client.limits.max_bytes {
            let reason = format!(
                "client does not read its frames: {bytes_before} bytes waiting, limit {}",
                client.limits.max_bytes
            );
            self.hang_up(id, reason);
            return;
        }
        let ticket = QueueTicket::new(queued, size, kind);
        match client.tx.try_send(Outbound::Frame(frame, ticket)) {
            Ok(()) => self.totals.sent += 1,
            // A packet never costs a client its connection.
            Err(mpsc::error::TrySendError::Full(_)) if droppable => {
                client.dropped_packets += 1;
                self.totals.dropped_packets += 1;
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let reason = format!(
                    "client does not read its frames: {} frames waiting",
                    client.tx.max_capacity()
                );
                self.hang_up(id, reason);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.clients.remove(&id);
            }
        }
    }

    /// Forgets client `id` and tells its connection to close, saying why.
    fn hang_up(&mut self, id: ClientId, reason: String) {
        tracing::warn!(client = id.0, "{reason}; disconnecting it");
        if let Some(client) = self.clients.remove(&id) {
            client.hangup.send_replace(Some(reason));
        }
    }
}

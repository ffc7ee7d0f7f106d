//! The connected clients, as the runtime sees them: where to send their frames and what each
//! may receive.
//!
//! Every frame to a client goes through its own bounded queue, filled under the runtime's lock,
//! so direct answers and broadcasts reach each client in the order they happened.
//!
//! Two kinds of frame share that queue. Packets seen on edges (`network:data`, `begingroup`,
//! `endgroup`, `connect`, `disconnect`) are a sample for people watching: a client has at most
//! [`MAX_QUEUED_PACKETS`] of them waiting, and those beyond are dropped for that client alone
//! and counted, so a busy network never costs a slow client its connection. Everything else
//! (answers, echoes, errors, status, start and stop, output) is never dropped or reordered; a
//! client that lets [`ServerConfig::client_queue`](crate::server::ServerConfig) of those pile
//! up does not read at all, and is disconnected rather than buffered without bound.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::protocol::{Capabilities, Message};

/// Identifies a connected client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// Packet frames (`network:data` and the like) that may wait for one client; more are dropped
/// for that client until it reads.
pub const MAX_QUEUED_PACKETS: usize = 1024;

/// What the connection task of a client is told to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send this text frame (shared, not copied, between the clients of a broadcast).
    Frame(Utf8Bytes),
    /// Send this packet frame; the ticket counts it as waiting until it is sent or dropped.
    Packet(Utf8Bytes, PacketTicket),
    /// Close the connection with this code and reason.
    Close(
        tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode,
        String,
    ),
}

/// Counts a packet frame as waiting for its client while it lives.
#[derive(Debug)]
pub struct PacketTicket(Arc<AtomicUsize>);

impl Drop for PacketTicket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Client {
    capabilities: Capabilities,
    tx: mpsc::Sender<Outbound>,
    /// Packet frames in the queue.
    queued_packets: Arc<AtomicUsize>,
    /// Packet frames dropped because too many were queued.
    dropped_packets: u64,
}

/// The clients, by id.
#[derive(Default)]
pub struct Clients {
    clients: BTreeMap<ClientId, Client>,
    next: u64,
}

impl Clients {
    /// Registers a client whose frames go to `tx`; it starts with `capabilities`.
    pub fn add(&mut self, capabilities: Capabilities, tx: mpsc::Sender<Outbound>) -> ClientId {
        self.next += 1;
        let id = ClientId(self.next);
        self.clients.insert(
            id,
            Client {
                capabilities,
                tx,
                queued_packets: Arc::default(),
                dropped_packets: 0,
            },
        );
        id
    }

    /// Forgets a client.
    pub fn remove(&mut self, id: ClientId) {
        if let Some(client) = self.clients.remove(&id)
            && client.dropped_packets > 0
        {
            tracing::info!(
                client = id.0,
                "{} packet frames were not sent to this client: it read slower than they came",
                client.dropped_packets
            );
        }
    }

    /// Packet frames dropped for client `id` because it did not read them fast enough.
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
        self.push(id, message.to_frame(response_to).into(), is_packet(message));
    }

    /// Sends `message` to every client allowed to receive it. The requester, if given, gets
    /// it with its `responseTo` (and even without the capability, as the answer it asked for).
    pub fn broadcast(&mut self, message: &Message, requester: Option<(ClientId, Option<&Value>)>) {
        let packet = is_packet(message);
        let mut shared = None;
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        for id in ids {
            match requester {
                Some((asking, response_to)) if asking == id => {
                    self.push(id, message.to_frame(response_to).into(), packet);
                }
                _ => {
                    let allowed = self.clients.get(&id).is_some_and(|c| {
                        c.capabilities
                            .may_receive(message.protocol, &message.command)
                    });
                    if allowed {
                        let frame =
                            shared.get_or_insert_with(|| Utf8Bytes::from(message.to_frame(None)));
                        self.push(id, frame.clone(), packet);
                    }
                }
            }
        }
    }

    fn push(&mut self, id: ClientId, frame: Utf8Bytes, packet: bool) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let outbound = if packet {
            if client.queued_packets.load(Ordering::Relaxed) >= MAX_QUEUED_PACKETS {
                client.dropped_packets += 1;
                return;
            }
            client.queued_packets.fetch_add(1, Ordering::Relaxed);
            Outbound::Packet(frame, PacketTicket(client.queued_packets.clone()))
        } else {
            Outbound::Frame(frame)
        };
        match client.tx.try_send(outbound) {
            Ok(()) => {}
            // A packet never costs a client its connection.
            Err(mpsc::error::TrySendError::Full(Outbound::Packet(..))) => {
                client.dropped_packets += 1;
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    client = id.0,
                    "client does not read its frames fast enough; disconnecting it"
                );
                // Dropping the sender ends the client's writer, which closes the connection.
                self.clients.remove(&id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.clients.remove(&id);
            }
        }
    }
}

/// Whether `message` reports a packet seen on an edge: a sample, dropped for a client that
/// does not keep up.
fn is_packet(message: &Message) -> bool {
    message.protocol == "network"
        && matches!(
            message.command.as_str(),
            "data" | "begingroup" | "endgroup" | "connect" | "disconnect"
        )
}

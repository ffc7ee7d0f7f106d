//! The connected clients, as the runtime sees them: where to send their frames and what each
//! may receive.
//!
//! Every frame to a client goes through its own bounded queue, filled under the runtime's lock,
//! so direct answers and broadcasts reach each client in the order they happened. A client that
//! lets its queue fill up is disconnected rather than letting the runtime buffer without bound.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::protocol::{Capabilities, Message};

/// Identifies a connected client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// What the connection task of a client is told to do.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Send this text frame (shared, not copied, between the clients of a broadcast).
    Frame(Utf8Bytes),
    /// Close the connection with this code and reason.
    Close(
        tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode,
        String,
    ),
}

struct Client {
    capabilities: Capabilities,
    tx: mpsc::Sender<Outbound>,
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
        self.clients.insert(id, Client { capabilities, tx });
        id
    }

    /// Forgets a client.
    pub fn remove(&mut self, id: ClientId) {
        self.clients.remove(&id);
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
        self.push(id, message.to_frame(response_to).into());
    }

    /// Sends `message` to every client allowed to receive it. The requester, if given, gets
    /// it with its `responseTo` (and even without the capability, as the answer it asked for).
    pub fn broadcast(&mut self, message: &Message, requester: Option<(ClientId, Option<&Value>)>) {
        let mut shared = None;
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        for id in ids {
            match requester {
                Some((asking, response_to)) if asking == id => {
                    self.push(id, message.to_frame(response_to).into());
                }
                _ => {
                    let allowed = self.clients.get(&id).is_some_and(|c| {
                        c.capabilities
                            .may_receive(message.protocol, &message.command)
                    });
                    if allowed {
                        let frame =
                            shared.get_or_insert_with(|| Utf8Bytes::from(message.to_frame(None)));
                        self.push(id, frame.clone());
                    }
                }
            }
        }
    }

    fn push(&mut self, id: ClientId, frame: Utf8Bytes) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        match client.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => {}
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

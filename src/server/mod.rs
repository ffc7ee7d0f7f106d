//! The protocol server: WebSocket (optionally over TLS) on tokio, one task per client.
//!
//! A connection selects the `noflo` subprotocol when the client offers it. Each text frame is
//! handed to the [`Runtime`] under its lock; answers and broadcasts come back through the
//! client's own bounded queue and a writer task. Frames over the size limit close the
//! connection (code 1009); binary frames and requests beyond the rate limit get an error frame
//! and are otherwise ignored. Nothing a client sends can stop the server.

mod limit;
pub mod ops;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::{
    CloseFrame, WebSocketConfig, frame::coding::CloseCode,
};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use crate::protocol::{Message, Request as ProtocolRequest, known_protocol};
use crate::runtime::{Outbound, QueueLimits, Runtime, SharedRuntime};
use limit::RateLimit;

/// The subprotocol noflo-ui, fbp-protocol-client and the official test suite ask for.
pub const SUBPROTOCOL: &str = "noflo";

/// How the server listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on (default `127.0.0.1:3569`).
    pub listen: SocketAddr,
    /// Certificate and key (PEM files) for `wss://`; plain `ws://` without.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The largest frame a client may send, in bytes (default 8 MiB: graph sources are big).
    pub max_frame_bytes: usize,
    /// Requests a client may send per second, on average (default 2000).
    pub requests_per_second: u32,
    /// Requests a client may send at once before the rate applies (default 10,000).
    pub request_burst: u32,
    /// Frames that may wait for a slow client before it is disconnected (default 65,536).
    pub client_queue: usize,
    /// Bytes of frames that may wait for a slow client before it is disconnected (default
    /// 64 MiB); packet frames beyond their own share are dropped instead.
    pub client_queue_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3569)),
            tls: None,
            max_frame_bytes: 8 * 1024 * 1024,
            requests_per_second: 2000,
            request_burst: 10_000,
            client_queue: 65_536,
            client_queue_bytes: crate::runtime::DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Anyone on the network could take full control.
    #[error(
        "refusing to listen on {0} without a secret: anyone who can reach it could run \
         anything. Give --secret (or listen on 127.0.0.1 for local development)"
    )]
    OpenToNetwork(SocketAddr),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why (part of the message, so not also a `source`).
        cause: std::io::Error,
    },
    /// The TLS certificate or key is not usable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    runtime: SharedRuntime,
    config: Arc<ServerConfig>,
}

impl Server {
    /// Binds the listening socket.
    ///
    /// # Errors
    ///
    /// [`ServerError::OpenToNetwork`] for a non-loopback address while the runtime has no
    /// secret; [`ServerError::Bind`]; [`ServerError::Tls`].
    pub async fn bind(config: ServerConfig, runtime: SharedRuntime) -> Result<Server, ServerError> {
        let open = Runtime::lock(&runtime).config().secrets.is_empty();
        if open && !config.listen.ip().is_loopback() {
            return Err(ServerError::OpenToNetwork(config.listen));
        }
        let tls = match &config.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let bind_error = |cause| ServerError::Bind {
            addr: config.listen,
            cause,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(Server {
            listener,
            local_addr,
            tls,
            runtime,
            config: Arc::new(config),
        })
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket URL clients connect to.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Accepts clients until `shutdown` completes.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let runtime = self.runtime.clone();
            let config = self.config.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => serve(stream, peer, runtime, config).await,
                        Err(error) => tracing::info!(%peer, "TLS handshake failed: {error}"),
                    },
                    None => serve(stream, peer, runtime, config).await,
                }
            });
        }
        Runtime::lock(&self.runtime).shutdown();
    }
}

/// Serves one client until it leaves.
async fn serve<S>(stream: S, peer: SocketAddr, runtime: SharedRuntime, config: Arc<ServerConfig>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // tungstenite zero-fills its read buffer before each read: the default 128 KiB made that a
    // measurable part of every request (`cargo bench --bench protocol`).
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes));
    let ws = match tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        select_subprotocol,
        Some(ws_config),
    )
    .await
    {
        Ok(ws) => ws,
        Err(error) => {
            tracing::info!(%peer, "WebSocket handshake failed: {error}");
            return;
        }
    };
    tracing::info!(%peer, "client connected");
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Outbound>(config.client_queue.max(16));
    let limits = QueueLimits {
        max_bytes: config.client_queue_bytes,
    };
    let connection = Runtime::lock(&runtime).connect(tx.clone(), limits);
    let client = connection.id;
    let mut hangup = connection.hangup.clone();
    let writer = tokio::spawn(async move {
        let mut hangup = connection.hangup;
        let drain = async {
            while let Some(outbound) = rx.recv().await {
                match outbound {
                    Outbound::Frame(text, _ticket) => {
                        if sink.send(WsMessage::text(text)).await.is_err() {
                            return;
                        }
                    }
                    Outbound::Close(code, reason) => {
                        close(&mut sink, code, reason).await;
                        return;
                    }
                }
            }
        };
        // A hang-up cuts short whatever is being sent or waits to be: the client does not
        // read, so it would never get through.
        tokio::select! {
            () = drain => {}
            reason = hung_up(&mut hangup) => close(&mut sink, CloseCode::Again, reason).await,
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
    });
    let mut limit = RateLimit::new(config.requests_per_second, config.request_burst);
    loop {
        let received = tokio::select! {
            received = source.next() => received,
            _ = hung_up(&mut hangup) => break,
        };
        let Some(received) = received else {
            break;
        };
        match received {
            Ok(WsMessage::Text(text)) => {
                if !limit.allow() {
                    // Answered like any request, so that a client matching answers by
                    // `requestId` learns what became of it.
                    let (protocol, request_id) = match ProtocolRequest::parse(&text) {
                        Ok(request) => (
                            known_protocol(&request.protocol).to_string(),
                            request.request_id,
                        ),
                        Err(error) => (error.protocol, None),
                    };
                    let message = format!(
                        "too many requests: at most {} per second (bursts of {}); this one was \
                         dropped",
                        config.requests_per_second, config.request_burst
                    );
                    Runtime::lock(&runtime).answer(
                        client,
                        &Message::error(&protocol, message),
                        request_id.as_ref(),
                    );
                    continue;
                }
                Runtime::lock(&runtime).handle_frame(client, &text);
            }
            Ok(WsMessage::Binary(_)) if !limit.allow() => {}
            Ok(WsMessage::Binary(_)) => {
                let message = "binary frames are not part of the FBP protocol; send each \
                               message as a JSON text frame";
                Runtime::lock(&runtime).send(client, &Message::error("runtime", message));
            }
            Ok(WsMessage::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Capacity(error)) => {
                tracing::info!(%peer, "closing: {error}");
                let reason = format!("frame too large (limit {} bytes)", config.max_frame_bytes);
                let _ = tx.try_send(Outbound::Close(CloseCode::Size, reason));
                break;
            }
            Err(error) => {
                tracing::info!(%peer, "connection error: {error}");
                break;
            }
        }
    }
    Runtime::lock(&runtime).disconnect(client);
    drop(tx);
    let _ = writer.await;
    tracing::info!(%peer, "client disconnected");
}

/// How long a close frame may take to leave before the connection is dropped anyway. A client
/// hung up on for not reading has a full socket: the close frame leaves only once it reads
/// again, so this is generous; the connection holds no queued frames meanwhile.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until the runtime hangs up on the client; returns why. Never returns if the runtime
/// forgets the client without hanging up (it left by itself).
async fn hung_up(hangup: &mut tokio::sync::watch::Receiver<Option<String>>) -> String {
    loop {
        let seen = hangup.borrow_and_update().clone();
        if let Some(reason) = seen {
            return reason;
        }
        if hangup.changed().await.is_err() {
            // Closed: a hang-up sent just before is still to be seen.
            let last = hangup.borrow().clone();
            return match last {
                Some(reason) => reason,
                None => std::future::pending().await,
            };
        }
    }
}

/// Sends a close frame with `code` and `reason` (cut to what a close frame holds), giving up
/// after [`CLOSE_TIMEOUT`].
async fn close<S>(sink: &mut S, code: CloseCode, mut reason: String)
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    // A close frame's reason is at most 123 bytes.
    if reason.len() > 123 {
        let end = (0..=123).rev().find(|&i| reason.is_char_boundary(i));
        reason.truncate(end.unwrap_or(0));
    }
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(WsMessage::Close(Some(frame)))).await;
}

/// Selects `noflo` when the client offers it, and no subprotocol otherwise.
#[allow(clippy::result_large_err)] // the signature is tungstenite's callback type
fn select_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, tungstenite::handshake::server::ErrorResponse> {
    let offered = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if offered {
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(response)
}

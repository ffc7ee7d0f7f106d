//! A protocol server started in the test process on port 0, and a real WebSocket client for it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use flowd::Registry;
use flowd::runtime::{Runtime, RuntimeConfig, SharedRuntime};
use flowd::server::{Server, ServerConfig};

/// How long a test waits for an expected frame.
pub const WAIT: Duration = Duration::from_secs(5);

/// A server on a free loopback port, stopped when dropped.
pub struct TestServer {
    pub url: String,
    pub runtime: SharedRuntime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server with `config` and the core components.
    pub async fn start(config: RuntimeConfig) -> TestServer {
        TestServer::start_with(
            config,
            ServerConfig::default(),
            Arc::new(Registry::with_core()),
        )
        .await
    }

    /// Starts a server with every setting given.
    pub async fn start_with(
        config: RuntimeConfig,
        server: ServerConfig,
        registry: Arc<Registry>,
    ) -> TestServer {
        let runtime = Runtime::new(config, registry);
        let server = Server::bind(
            ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..server
            },
            runtime.clone(),
        )
        .await
        .expect("bind");
        let url = server.url();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            url,
            runtime,
            stop: Some(stop),
        }
    }

    /// Connects a client offering the `noflo` subprotocol.
    pub async fn client(&self) -> Client {
        Client::connect(&self.url, None).await
    }

    /// Connects a client that sends `secret` with every request.
    pub async fn client_with_secret(&self, secret: &str) -> Client {
        Client::connect(&self.url, Some(secret.to_string())).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A WebSocket client that speaks the protocol as noflo-ui does.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    secret: Option<String>,
    /// The subprotocol the server selected.
    pub subprotocol: Option<String>,
}

impl Client {
    /// Connects to `url`, offering `noflo`.
    pub async fn connect(url: &str, secret: Option<String>) -> Client {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "noflo".parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        let subprotocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Client {
            ws,
            secret,
            subprotocol,
        }
    }

    /// Wraps an established WebSocket (e.g. over TLS).
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        Client {
            ws,
            secret: None,
            subprotocol: None,
        }
    }

    /// Sends a request (with this client's secret in the payload).
    pub async fn send(&mut self, protocol: &str, command: &str, mut payload: Value) {
        if let (Some(secret), Some(map)) = (&self.secret, payload.as_object_mut()) {
            map.insert("secret".into(), Value::from(secret.as_str()));
        }
        let frame = json!({ "protocol": protocol, "command": command, "payload": payload });
        self.send_text(frame.to_string()).await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: String) {
        self.ws.send(WsMessage::text(text)).await.expect("send");
    }

    /// Sends a raw WebSocket message.
    pub async fn send_raw(&mut self, message: WsMessage) -> Result<(), String> {
        self.ws.send(message).await.map_err(|e| e.to_string())
    }

    /// The next frame as JSON; `None` if the connection closed or nothing came in `WAIT`.
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(WAIT).await
    }

    /// The next frame, waiting at most `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next()).await.ok()??;
            match message.ok()? {
                WsMessage::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next frame that is `protocol:command`, skipping others; panics after `WAIT`.
    pub async fn expect(&mut self, protocol: &str, command: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(frame) = self.next_within(left).await else {
                panic!("no {protocol}:{command} within {WAIT:?}; skipped {skipped:#?}");
            };
            if frame["protocol"] == protocol && frame["command"] == command {
                return frame["payload"].clone();
            }
            skipped.push(frame);
        }
    }

    /// Every frame up to and including the `network:stopped` of `graph`; panics if none comes
    /// within `WAIT` of the frame before.
    pub async fn until_stopped(&mut self, graph: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("no network:stopped; got {frames:#?}"));
            let done = frame["protocol"] == "network"
                && frame["command"] == "stopped"
                && frame["payload"]["graph"] == graph;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Sends a request and returns the payload of the first answer of `protocol:answer`.
    pub async fn request(
        &mut self,
        protocol: &str,
        command: &str,
        payload: Value,
        answer: &str,
    ) -> Value {
        self.send(protocol, command, payload).await;
        self.expect(protocol, answer).await
    }

    /// Sends `graph:<command>` with `payload` and returns the payload of its echo (a graph
    /// edit is answered with the command it was asked for).
    pub async fn edit(&mut self, command: &str, payload: Value) -> Value {
        self.request("graph", command, payload, command).await
    }

    /// `graph:clear` of graph `id`, made the main graph if `main`; returns the echo.
    pub async fn clear(&mut self, id: &str, main: bool) -> Value {
        let mut payload = json!({ "id": id });
        if main {
            payload["main"] = json!(true);
        }
        self.edit("clear", payload).await
    }

    /// `graph:addnode` of node `id` running `component` in `graph`; returns the echo.
    pub async fn add_node(&mut self, graph: &str, id: &str, component: &str) -> Value {
        self.edit(
            "addnode",
            json!({"id": id, "component": component, "graph": graph}),
        )
        .await
    }

    /// `graph:addedge` in `graph` from `src` to `tgt`, each `(node, port)`; returns the echo.
    pub async fn add_edge(&mut self, graph: &str, src: (&str, &str), tgt: (&str, &str)) -> Value {
        self.edit(
            "addedge",
            json!({"src": {"node": src.0, "port": src.1}, "tgt": {"node": tgt.0, "port": tgt.1}, "graph": graph}),
        )
        .await
    }

    /// `graph:addinitial` in `graph`: the IIP `data` into `tgt` (`(node, port)`); returns the
    /// echo.
    pub async fn add_iip(&mut self, graph: &str, data: Value, tgt: (&str, &str)) -> Value {
        self.edit(
            "addinitial",
            json!({"src": {"data": data}, "tgt": {"node": tgt.0, "port": tgt.1}, "graph": graph}),
        )
        .await
    }

    /// Exports `at` (`(node, port)`) of `graph` as `public`; `command` is `addinport` or
    /// `addoutport`. Returns the echo; a `runtime:ports` that may follow is left unread.
    pub async fn export(
        &mut self,
        graph: &str,
        command: &str,
        public: &str,
        at: (&str, &str),
    ) -> Value {
        self.edit(
            command,
            json!({"public": public, "node": at.0, "port": at.1, "graph": graph}),
        )
        .await
    }

    /// Sends a request and returns the very next frame, whatever it is, but for news of
    /// components (`component:component`), which follows each edit of a graph that is a
    /// component (one that is not the main graph) and may still be on its way.
    pub async fn ask(&mut self, protocol: &str, command: &str, payload: Value) -> Value {
        self.send(protocol, command, payload).await;
        loop {
            let frame = self.next().await.expect("an answer");
            if frame["protocol"] != "component" || frame["command"] != "component" {
                return frame;
            }
        }
    }

    /// Asserts that no frame arrives within `wait`.
    pub async fn assert_silent(&mut self, wait: Duration) {
        if let Some(frame) = self.next_within(wait).await {
            panic!("unexpected frame: {frame}");
        }
    }
}

/// The `protocol:command` of each frame (or flowtrace event), in order.
pub fn commands(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["protocol"].as_str().unwrap(),
                f["command"].as_str().unwrap()
            )
        })
        .collect()
}

/// A runtime configuration with a fixed id, for tests, accepting graphs as component source.
pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        id: "0f8d2a3c-5b6e-4c1d-9a7f-3e2b1c0d9e8f".into(),
        graph_sources: true,
        ..RuntimeConfig::default()
    }
}

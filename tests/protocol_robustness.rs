//! Bad input over the protocol: frames that are not requests, unknown protocols and commands,
//! mistyped fields, binary frames, frames over the size limit, floods beyond the rate limit.
//! After each, the connection (or, for an oversized frame, every other connection) still
//! answers, and a graph made before is unchanged.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::protocol::{Client, TestServer, WAIT, config};
use flowd::Registry;
use flowd::runtime::Runtime;
use flowd::server::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Builds graph `g`: a Repeat fed by an IIP, feeding a Drop, with an exported outport and a
/// group.
async fn build_graph(c: &mut Client) {
    c.clear("g", false).await;
    for (id, component) in [("r", "core/Repeat"), ("d", "core/Drop")] {
        c.edit(
            "addnode",
            json!({"id": id, "component": component, "graph": "g", "metadata": {"x": 1}}),
        )
        .await;
    }
    c.add_edge("g", ("r", "out"), ("d", "in")).await;
    c.add_iip("g", json!("hi"), ("r", "in")).await;
    c.export("g", "addoutport", "out", ("r", "out")).await;
    c.edit(
        "addgroup",
        json!({"name": "grp", "nodes": ["r"], "graph": "g"}),
    )
    .await;
}

fn snapshot(server: &TestServer) -> (Vec<String>, flowd::Graph, bool) {
    let runtime = Runtime::lock(&server.runtime);
    (
        runtime.graph_ids(),
        runtime.graph("g").cloned().expect("graph g"),
        runtime.is_running("g"),
    )
}

/// The connection still answers `getruntime` with `runtime:runtime` as the very next frame.
async fn still_answers(c: &mut Client, after: &str) {
    let answer = c.ask("runtime", "getruntime", json!({})).await;
    assert_eq!(answer["command"], "runtime", "after {after}: {answer}");
}

/// Sends a raw text frame; expects exactly one `<protocol>:error` whose message contains
/// `expected`, then checks the connection and the graph.
async fn refused(
    server: &TestServer,
    c: &mut Client,
    before: &(Vec<String>, flowd::Graph, bool),
    text: &str,
    protocol: &str,
    expected: &str,
) {
    c.send_text(text.to_string()).await;
    let answer = c
        .next()
        .await
        .unwrap_or_else(|| panic!("no answer to {text}"));
    assert_eq!(answer["protocol"], protocol, "{text}: {answer}");
    assert_eq!(answer["command"], "error", "{text}: {answer}");
    let message = answer["payload"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{text}: no message in {answer}"));
    assert!(
        message.contains(expected),
        "{text}: {message:?} should contain {expected:?}"
    );
    assert_eq!(
        answer.as_object().unwrap().len(),
        3,
        "only protocol, command, payload: {answer}"
    );
    still_answers(c, text).await;
    assert_eq!(&snapshot(server), before, "after {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_are_not_requests_are_answered_with_errors() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    build_graph(&mut c).await;
    let before = snapshot(&server);

    let cases: &[(&str, &str, &str)] = &[
        ("this is not json", "runtime", "not JSON"),
        ("{\"protocol\": \"graph\", ", "runtime", "not JSON"),
        ("", "runtime", "not JSON"),
        ("[1, 2, 3]", "runtime", "not a JSON object"),
        ("42", "runtime", "not a JSON object"),
        ("\"graph\"", "runtime", "not a JSON object"),
        ("null", "runtime", "not a JSON object"),
        (
            r#"{"command": "clear", "payload": {"id": "g"}}"#,
            "runtime",
            "no 'protocol'",
        ),
        (
            r#"{"protocol": 7, "command": "clear", "payload": {"id": "g"}}"#,
            "runtime",
            "no 'protocol'",
        ),
        (
            r#"{"protocol": "graph", "payload": {"id": "g"}}"#,
            "graph",
            "no 'command'",
        ),
        (
            r#"{"protocol": "graph", "command": ["clear"], "payload": {"id": "g"}}"#,
            "graph",
            "no 'command'",
        ),
        (
            r#"{"protocol": "graph", "command": "clear", "payload": "g"}"#,
            "graph",
            "'payload' must be an object",
        ),
        (
            r#"{"protocol": "network", "command": "start", "payload": ["g"]}"#,
            "network",
            "'payload' must be an object",
        ),
        (
            r#"{"protocol": "trace", "command": "start", "payload": 1}"#,
            "trace",
            "'payload' must be an object",
        ),
        (
            r#"{"protocol": "bogus", "command": "x", "payload": 1}"#,
            "runtime",
            "'payload' must be an object",
        ),
        (
            r#"{"protocol": "bogus", "command": "getruntime", "payload": {}}"#,
            "runtime",
            "unknown protocol 'bogus'",
        ),
        (
            r#"{"protocol": "Graph", "command": "clear", "payload": {"id": "g"}}"#,
            "runtime",
            "unknown protocol 'Graph'",
        ),
    ];
    for (text, protocol, expected) in cases {
        refused(&server, &mut c, &before, text, protocol, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_commands_are_not_supported_in_every_protocol() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    build_graph(&mut c).await;
    let before = snapshot(&server);
    for protocol in ["runtime", "graph", "network", "component", "trace"] {
        for command in ["frobnicate", "GETRUNTIME", "error", ""] {
            let text = json!({"protocol": protocol, "command": command, "payload": {"graph": "g"}})
                .to_string();
            let expected = format!("{protocol}:{command} not supported");
            refused(&server, &mut c, &before, &text, protocol, &expected).await;
        }
    }
    // Output-only commands sent by a client are not commands either.
    for (protocol, command) in [
        ("runtime", "runtime"),
        ("runtime", "ports"),
        ("runtime", "packetsent"),
        ("network", "started"),
        ("network", "data"),
        ("component", "component"),
        ("component", "componentsready"),
    ] {
        let text = json!({"protocol": protocol, "command": command, "payload": {"graph": "g"}})
            .to_string();
        let expected = format!("{protocol}:{command} not supported");
        refused(&server, &mut c, &before, &text, protocol, &expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_fields_are_refused_with_the_field_named() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    build_graph(&mut c).await;
    let before = snapshot(&server);

    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("graph", "clear", json!({"id": 5}), "No graph ID provided"),
        ("graph", "clear", json!({"id": ""}), "No graph ID provided"),
        (
            "graph",
            "clear",
            json!({"id": "g", "main": "yes"}),
            "'main' must be a boolean",
        ),
        (
            "graph",
            "clear",
            json!({"id": "g", "name": 3}),
            "'name' must be a string",
        ),
        (
            "graph",
            "addnode",
            json!({"id": "n", "component": "core/Repeat", "graph": 1}),
            "No graph specified",
        ),
        (
            "graph",
            "addnode",
            json!({"id": "n", "component": ["core/Repeat"], "graph": "g"}),
            "'component' must be a string",
        ),
        (
            "graph",
            "addnode",
            json!({"id": "n", "component": "core/Repeat", "graph": "g", "metadata": "big"}),
            "'metadata' must be an object",
        ),
        (
            "graph",
            "removenode",
            json!({"id": null, "graph": "g"}),
            "'id' must be a string",
        ),
        (
            "graph",
            "renamenode",
            json!({"from": "r", "graph": "g"}),
            "'to' is missing",
        ),
        (
            "graph",
            "addedge",
            json!({"src": "r.out", "tgt": {"node": "d", "port": "in"}, "graph": "g"}),
            "'src' must be an object",
        ),
        (
            "graph",
            "addedge",
            json!({"src": {"node": "r", "port": 1}, "tgt": {"node": "d", "port": "in"}, "graph": "g"}),
            "'src.port' must be a non-empty string",
        ),
        (
            "graph",
            "addedge",
            json!({"src": {"node": "r", "port": "out", "index": -1}, "tgt": {"node": "d", "port": "in"}, "graph": "g"}),
            "'src.index' must be a non-negative integer",
        ),
        (
            "graph",
            "addedge",
            json!({"src": {"node": "r", "port": "out", "index": "one"}, "tgt": {"node": "d", "port": "in"}, "graph": "g"}),
            "'src.index' must be a non-negative integer",
        ),
        (
            "graph",
            "addedge",
            json!({"src": {"node": "r", "port": "out", "index": true}, "tgt": {"node": "d", "port": "in"}, "graph": "g"}),
            "'src.index' must be a number",
        ),
        (
            "graph",
            "addinitial",
            json!({"src": "hi", "tgt": {"node": "r", "port": "in"}, "graph": "g"}),
            "'src' must be an object {\"data\"}",
        ),
        (
            "graph",
            "changenode",
            json!({"id": "r", "graph": "g"}),
            "'metadata' is missing",
        ),
        (
            "graph",
            "addgroup",
            json!({"name": "g2", "nodes": "r", "graph": "g"}),
            "nodes",
        ),
        (
            "network",
            "start",
            json!({"graph": ["g"]}),
            "No graph specified",
        ),
        (
            "network",
            "getstatus",
            json!({"graph": "nope"}),
            "Requested graph not found",
        ),
        (
            "network",
            "debug",
            json!({"graph": "g", "enable": "yes"}),
            "'enable' must be a boolean",
        ),
        (
            "network",
            "edges",
            json!({"graph": "g", "edges": {"src": {"node": "r", "port": "out"}}}),
            "'edges' must be an array",
        ),
        (
            "network",
            "edges",
            json!({"graph": "g", "edges": ["r.out"]}),
            "each edge must be an object",
        ),
        (
            "network",
            "edges",
            json!({"graph": "g", "edges": [{"src": {"node": "r", "port": "out"}}]}),
            "'tgt' must be an object",
        ),
        (
            "component",
            "getsource",
            json!({"name": 3}),
            "'name' must be a string",
        ),
        (
            "component",
            "getsource",
            json!({"name": "core/Nope"}),
            "no component or graph named 'core/Nope'",
        ),
        (
            "component",
            "source",
            json!({"name": "X", "language": "json", "code": {"processes": {}}}),
            "'code' must be a string",
        ),
        (
            "component",
            "source",
            json!({"name": "X", "language": "rust", "code": "fn main() {}"}),
            "cannot build a component from rust source",
        ),
        (
            "component",
            "source",
            json!({"name": "X", "language": "json", "code": "{not json"}),
            "graph 'flowd/X'",
        ),
        (
            "trace",
            "start",
            json!({"graph": "g", "buffersize": "big"}),
            "'buffersize' must be a number",
        ),
        (
            "trace",
            "start",
            json!({"graph": "g", "buffersize": -5}),
            "'buffersize' must be a positive integer",
        ),
        (
            "trace",
            "dump",
            json!({"graph": "g", "type": "flowtrace.xml"}),
            "unknown type 'flowtrace.xml'",
        ),
        ("trace", "stop", json!({}), "No graph specified"),
        (
            "runtime",
            "packet",
            json!({"graph": "g", "port": "out", "event": "explode"}),
            "unknown event 'explode'",
        ),
        (
            "runtime",
            "packet",
            json!({"graph": "g", "port": 1, "event": "data"}),
            "'port' must be a string",
        ),
        (
            "runtime",
            "packet",
            json!({"graph": "g", "port": "nope", "event": "data", "payload": 1}),
            "no exported inport 'nope'",
        ),
    ];
    for (protocol, command, payload, expected) in cases {
        let text =
            json!({"protocol": protocol, "command": command, "payload": payload}).to_string();
        refused(&server, &mut c, &before, &text, protocol, expected).await;
    }
    // No trace was started by the refused trace:start.
    let dump = c
        .request(
            "trace",
            "dump",
            json!({"graph": "g", "type": "flowtrace.json"}),
            "dump",
        )
        .await;
    let flowtrace: Value = serde_json::from_str(dump["flowtrace"].as_str().unwrap()).unwrap();
    assert_eq!(flowtrace["events"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_is_refused_and_the_connection_stays() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    build_graph(&mut c).await;
    let before = snapshot(&server);
    let request = json!({"protocol": "graph", "command": "clear", "payload": {"id": "g"}});
    c.send_raw(WsMessage::binary(request.to_string().into_bytes()))
        .await
        .unwrap();
    let answer = c.next().await.expect("an answer to a binary frame");
    assert_eq!(answer["protocol"], "runtime", "{answer}");
    assert_eq!(answer["command"], "error", "{answer}");
    assert!(
        answer["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("binary frames are not part of the FBP protocol"),
        "{answer}"
    );
    still_answers(&mut c, "a binary frame").await;
    assert_eq!(snapshot(&server), before);
    // Pings are answered by the WebSocket layer and are not requests.
    c.send_raw(WsMessage::Ping(vec![1, 2, 3].into()))
        .await
        .unwrap();
    still_answers(&mut c, "a ping").await;
    assert_eq!(snapshot(&server), before);
}

/// A raw WebSocket, to see the close frame.
async fn raw(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("connect")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_closes_only_that_connection_with_1009() {
    let server = TestServer::start_with(
        config(),
        ServerConfig {
            max_frame_bytes: 4096,
            ..ServerConfig::default()
        },
        Arc::new(Registry::with_core()),
    )
    .await;
    let mut other = server.client().await;
    build_graph(&mut other).await;
    let before = snapshot(&server);

    // Just under the limit passes.
    let mut c = server.client().await;
    let padding = "x".repeat(3900);
    let answer = c
        .ask("runtime", "getruntime", json!({"padding": padding}))
        .await;
    assert_eq!(answer["command"], "runtime");

    let mut big = raw(&server.url).await;
    let huge = json!({"protocol": "graph", "command": "clear",
        "payload": {"id": "g", "name": "y".repeat(20_000)}});
    // The send may already fail if the server closed first; what counts is what comes back.
    let _ = big.send(WsMessage::text(huge.to_string())).await;
    let mut close = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, big.next()).await {
            Err(_) => panic!("the connection was neither closed nor answered within {WAIT:?}"),
            Ok(None) => break,
            Ok(Some(Ok(WsMessage::Close(frame)))) => {
                close = frame;
                break;
            }
            Ok(Some(Ok(WsMessage::Text(text)))) => panic!("answered instead of closed: {text}"),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(error))) => panic!("no close frame, but {error}"),
        }
    }
    let close = close.expect("a close frame");
    assert_eq!(close.code, CloseCode::Size, "{close:?}");
    assert_eq!(u16::from(close.code), 1009);
    assert!(close.reason.contains("4096"), "{close:?}");

    // Nothing changed; the other clients and the server go on.
    assert_eq!(snapshot(&server), before);
    still_answers(&mut other, "another client's oversized frame").await;
    still_answers(&mut c, "another client's oversized frame").await;
    let mut fresh = server.client().await;
    still_answers(&mut fresh, "another client's oversized frame").await;
    other.add_node("g", "late", "core/Repeat").await;
    let seen = c.expect("graph", "addnode").await;
    assert_eq!(seen["id"], "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_rate_limit_is_refused_and_the_connection_stays() {
    let server = TestServer::start_with(
        config(),
        ServerConfig {
            requests_per_second: 20,
            request_burst: 5,
            ..ServerConfig::default()
        },
        Arc::new(Registry::with_core()),
    )
    .await;
    let mut other = server.client().await;
    other.clear("g", false).await;
    let before = snapshot(&server);

    let mut c = server.client().await;
    let flood = 60;
    for i in 0..flood {
        c.send(
            "graph",
            "addnode",
            json!({"id": format!("n{i}"), "component": "core/Repeat", "graph": "g"}),
        )
        .await;
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..flood {
        let frame = c.next().await.expect("one answer per request");
        match frame["command"].as_str() {
            Some("addnode") => accepted.push(frame["payload"]["id"].as_str().unwrap().to_string()),
            Some("error") => {
                assert_eq!(frame["protocol"], "graph", "{frame}");
                let message = frame["payload"]["message"].as_str().unwrap();
                assert!(message.contains("too many requests"), "{message}");
                refused += 1;
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(refused > 0, "nothing was refused");
    assert!(accepted.len() >= 5, "the burst passes: {accepted:?}");
    c.assert_silent(Duration::from_millis(50)).await;

    // Exactly the accepted requests changed the graph.
    let graph = Runtime::lock(&server.runtime).graph("g").cloned().unwrap();
    let ids: Vec<String> = graph.nodes.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids, accepted);
    assert_eq!(before.1.nodes.len(), 0);

    // Another client is not limited by this one's flood (it followed the accepted edits).
    for id in &accepted {
        assert_eq!(other.expect("graph", "addnode").await["id"], id.as_str());
    }
    still_answers(&mut other, "another client's flood").await;
    // The flooding connection answers again once the bucket refills.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = c.ask("runtime", "getruntime", json!({})).await;
        if answer["command"] == "runtime" {
            break;
        }
        assert!(
            answer["payload"]["message"]
                .as_str()
                .unwrap()
                .contains("too many requests"),
            "{answer}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_hung_up_on_with_a_reason_by_bytes_not_frames() {
    let limit = 256 * 1024;
    let server = TestServer::start_with(
        config(),
        ServerConfig {
            client_queue_bytes: limit,
            ..ServerConfig::default()
        },
        Arc::new(Registry::with_core()),
    )
    .await;
    let mut stalled = raw(&server.url).await;
    let mut c = server.client().await;
    c.clear("g", false).await;

    // Far more than the socket buffers hold, in few frames: the frame count never nears its
    // limit, the bytes do.
    let padding = "p".repeat(256 * 1024);
    for i in 0..160 {
        c.request(
            "graph",
            "addnode",
            json!({"id": format!("n{i}"), "component": "core/Repeat", "graph": "g",
                "metadata": {"padding": padding}}),
            "addnode",
        )
        .await;
    }

    // The stalled client reads at last: what reached its socket, then a close frame saying
    // why, then the end of the connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut texts = 0;
    let close = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stalled.next()).await {
            Err(_) => panic!("after {texts} frames, neither a close frame nor the end came"),
            Ok(Some(Ok(WsMessage::Close(frame)))) => break frame.expect("a close frame"),
            Ok(Some(Ok(WsMessage::Text(_)))) => texts += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => panic!("after {texts} frames, no close frame but {error}"),
            Ok(None) => panic!("after {texts} frames, the connection ended without a close frame"),
        }
    };
    assert!(
        texts < 160,
        "everything was sent: the client was not hung up on"
    );
    assert_eq!(close.code, CloseCode::Again, "{close:?}");
    assert!(close.reason.contains("does not read"), "{close:?}");
    assert!(close.reason.contains("bytes"), "{close:?}");
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    match tokio::time::timeout(left, stalled.next()).await {
        Ok(None | Some(Err(_))) => {}
        Ok(Some(Ok(frame))) => panic!("a frame after the close frame: {frame:?}"),
        Err(_) => panic!("the connection stayed open after the close frame"),
    }

    // The others go on.
    still_answers(&mut c, "hanging up on a client").await;
    assert_eq!(Runtime::lock(&server.runtime).client_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlocked_network_is_reported_to_clients_and_stopped_and_its_graph_kept() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("loop", false).await;
    c.add_node("loop", "r", "core/Repeat").await;
    c.add_edge("loop", ("r", "out"), ("r", "in")).await;
    for round in 0..2 {
        c.send("network", "start", json!({ "graph": "loop" })).await;
        let frames = c.until_stopped("loop").await;
        let error = |command: &str| {
            frames
                .iter()
                .find(|f| f["protocol"] == "network" && f["command"] == command)
                .map(|f| f["payload"].clone())
                .unwrap_or_else(|| panic!("round {round}: no network:{command} in {frames:#?}"))
        };
        let on_node = error("processerror");
        assert_eq!(on_node["id"], "r");
        assert_eq!(on_node["graph"], "loop");
        assert_eq!(on_node["error"], "deadlock: waits to receive on r.in");
        let whole = error("error");
        let message = whole["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("deadlock:"), "{message}");
        assert!(message.contains("'r' (core/Repeat)"), "{message}");
        let status = c
            .request("network", "getstatus", json!({ "graph": "loop" }), "status")
            .await;
        assert_eq!(status["running"], false, "{status}");
    }
    let graph = c
        .request(
            "component",
            "getsource",
            json!({ "name": "loop" }),
            "source",
        )
        .await;
    assert!(
        graph["code"]
            .as_str()
            .unwrap_or_default()
            .contains("core/Repeat"),
        "{graph}"
    );
}

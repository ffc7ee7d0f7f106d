//! Who may do what over the protocol: secrets and the capabilities they grant, anonymous and
//! unknown clients, a read-only observer next to a full-control editor, where the secret may
//! sit in a frame, `allCapabilities` without a main file, and `wss://` with a self-signed
//! certificate.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::protocol::{Client, TestServer, WAIT, commands, config};
use flowd::Registry;
use flowd::protocol::Capabilities;
use flowd::runtime::{Runtime, RuntimeConfig};
use flowd::server::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const FULL: &str = "full-s3cret-7d41";
const READ_ONLY: &str = "ro-s3cret-92ab";

/// Every capability flowd offers without a main file, in `runtime:runtime` order.
const OFFERED_WITHOUT_FILE: [&str; 11] = [
    "protocol:runtime",
    "protocol:graph",
    "graph:readonly",
    "protocol:component",
    "component:getsource",
    "component:setsource",
    "protocol:network",
    "network:control",
    "network:status",
    "network:data",
    "protocol:trace",
];

/// A runtime with one full-control secret and one read-only secret.
fn guarded() -> RuntimeConfig {
    let mut secrets = BTreeMap::new();
    secrets.insert(FULL.to_string(), Capabilities::all());
    secrets.insert(READ_ONLY.to_string(), Capabilities::read_only());
    RuntimeConfig {
        secrets,
        ..config()
    }
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The graph `g` (main) with a Repeat fed by an IIP and feeding a Drop.
async fn build_graph(full: &mut Client) {
    full.clear("g", true).await;
    full.add_node("g", "r", "core/Repeat").await;
    full.add_node("g", "d", "core/Drop").await;
    full.add_edge("g", ("r", "out"), ("d", "in")).await;
    full.add_iip("g", json!("hi"), ("r", "in")).await;
}

fn snapshot(server: &TestServer) -> (Vec<String>, Option<flowd::Graph>, bool, usize) {
    let runtime = Runtime::lock(&server.runtime);
    (
        runtime.graph_ids(),
        runtime.graph("g").cloned(),
        runtime.is_running("g"),
        runtime.registry().len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_and_unknown_clients_get_runtime_with_no_capabilities() {
    let server = TestServer::start(guarded()).await;
    let mut anonymous = server.client().await;
    let mut stranger = server.client_with_secret("not-a-secret").await;
    // noflo-ui sends an empty secret when none is configured: anonymous too.
    let mut empty = server.client_with_secret("").await;
    for client in [&mut anonymous, &mut stranger, &mut empty] {
        let answer = client.ask("runtime", "getruntime", json!({})).await;
        assert_eq!(answer["protocol"], "runtime", "{answer}");
        assert_eq!(
            answer["command"], "runtime",
            "never runtime:error: {answer}"
        );
        let payload = &answer["payload"];
        assert_eq!(payload["capabilities"], json!([]), "{payload}");
        assert_eq!(names(&payload["allCapabilities"]), OFFERED_WITHOUT_FILE);
        assert_eq!(payload["version"], "0.7");
        assert_eq!(payload["id"], config().id.as_str());
        // Nothing else comes: no runtime:ports, no error.
        client.assert_silent(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_capability_are_refused_and_nothing_changes() {
    let server = TestServer::start(guarded()).await;
    let mut full = server.client_with_secret(FULL).await;
    build_graph(&mut full).await;
    let before = snapshot(&server);

    let source = json!({"name": "Sub", "language": "json",
        "code": r#"{"processes": {"r": {"component": "core/Repeat"}}}"#});
    let attempts = [
        ("graph", "clear", json!({"id": "g"})),
        ("graph", "clear", json!({"id": "other"})),
        (
            "graph",
            "addnode",
            json!({"id": "x", "component": "core/Repeat", "graph": "g"}),
        ),
        ("graph", "removenode", json!({"id": "r", "graph": "g"})),
        (
            "graph",
            "changenode",
            json!({"id": "r", "metadata": {"x": 1}, "graph": "g"}),
        ),
        (
            "graph",
            "removeinitial",
            json!({"tgt": {"node": "r", "port": "in"}, "graph": "g"}),
        ),
        ("network", "start", json!({"graph": "g"})),
        ("network", "stop", json!({"graph": "g"})),
        ("network", "debug", json!({"graph": "g", "enable": true})),
        ("network", "edges", json!({"graph": "g", "edges": []})),
        ("network", "persist", json!({})),
        ("component", "source", source),
        (
            "runtime",
            "packet",
            json!({"graph": "g", "port": "in", "event": "data", "payload": 1}),
        ),
        ("trace", "start", json!({"graph": "g"})),
        (
            "trace",
            "dump",
            json!({"graph": "g", "type": "flowtrace.json"}),
        ),
    ];
    // What only the anonymous and unknown clients are refused (read-only may do these).
    let reading = [
        ("network", "getstatus", json!({"graph": "g"})),
        ("component", "list", json!({})),
        ("component", "getsource", json!({"name": "g"})),
    ];

    let mut anonymous = server.client().await;
    let mut stranger = server.client_with_secret("wrong").await;
    let mut read_only = server.client_with_secret(READ_ONLY).await;
    for (who, client, refused_reading) in [
        ("anonymous", &mut anonymous, true),
        ("stranger", &mut stranger, true),
        ("read-only", &mut read_only, false),
    ] {
        let mut cases: Vec<_> = attempts.iter().collect();
        if refused_reading {
            cases.extend(reading.iter());
        }
        for (protocol, command, payload) in cases {
            let answer = client.ask(protocol, command, payload.clone()).await;
            assert_eq!(
                answer,
                json!({"protocol": protocol, "command": "error",
                    "payload": {"message": format!("{protocol}:{command} is not permitted")}}),
                "{who}"
            );
        }
        // getruntime still works afterwards.
        let runtime = client.ask("runtime", "getruntime", json!({})).await;
        assert_eq!(runtime["command"], "runtime", "{who}: {runtime}");
    }
    // The editor heard of none of it, and nothing changed.
    full.assert_silent(Duration::from_millis(200)).await;
    assert_eq!(snapshot(&server), before);
    assert!(Runtime::lock(&server.runtime).graph("other").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_follows_edits_but_sees_no_packets_and_cannot_edit() {
    let server = TestServer::start(guarded()).await;
    let mut full = server.client_with_secret(FULL).await;
    let mut observer = server.client_with_secret(READ_ONLY).await;

    let runtime = full.ask("runtime", "getruntime", json!({})).await;
    assert_eq!(
        names(&runtime["payload"]["capabilities"]),
        OFFERED_WITHOUT_FILE
    );
    let runtime = observer.ask("runtime", "getruntime", json!({})).await;
    assert_eq!(
        names(&runtime["payload"]["capabilities"]),
        [
            "graph:readonly",
            "protocol:component",
            "component:getsource",
            "network:status"
        ]
    );

    build_graph(&mut full).await;
    // The observer receives every edit, in order, as the editor's echoes.
    for (command, expected) in [
        ("clear", json!({"id": "g", "main": true})),
        (
            "addnode",
            json!({"id": "r", "component": "core/Repeat", "graph": "g"}),
        ),
        (
            "addnode",
            json!({"id": "d", "component": "core/Drop", "graph": "g"}),
        ),
        (
            "addedge",
            json!({"src": {"node": "r", "port": "out"}, "tgt": {"node": "d", "port": "in"}, "graph": "g"}),
        ),
        (
            "addinitial",
            json!({"src": {"data": "hi"}, "tgt": {"node": "r", "port": "in"}, "graph": "g"}),
        ),
    ] {
        let frame = observer.next().await.expect("an edit broadcast");
        assert_eq!(
            frame,
            json!({"protocol": "graph", "command": command, "payload": expected})
        );
    }

    // An exported port changes the main graph's ports: runtime:ports goes to the editor only.
    full.export("g", "addinport", "in", ("r", "in")).await;
    full.expect("runtime", "ports").await;
    full.edit("removeinport", json!({"public": "in", "graph": "g"}))
        .await;
    full.expect("runtime", "ports").await;
    let frame = observer.next().await.unwrap();
    assert_eq!(frame["command"], "addinport", "{frame}");
    let frame = observer.next().await.unwrap();
    assert_eq!(frame["command"], "removeinport", "{frame}");

    // The network runs: the editor sees packets, the observer only the state.
    full.send("network", "start", json!({"graph": "g"})).await;
    let editor_saw = commands(&full.until_stopped("g").await);
    assert!(
        editor_saw.iter().filter(|c| *c == "network:data").count() == 2,
        "{editor_saw:?}"
    );
    let observer_saw = commands(&observer.until_stopped("g").await);
    assert_eq!(observer_saw, ["network:started", "network:stopped"]);

    // It may ask for the status, list components and read sources...
    let status = observer
        .request("network", "getstatus", json!({"graph": "g"}), "status")
        .await;
    assert_eq!(
        status,
        json!({"graph": "g", "running": false, "started": true})
    );
    let source = observer
        .request("component", "getsource", json!({"name": "g"}), "source")
        .await;
    assert_eq!(source["language"], "json");
    // ...but not edit.
    let before = snapshot(&server);
    let refused = observer
        .ask(
            "graph",
            "addnode",
            json!({"id": "x", "component": "core/Repeat", "graph": "g"}),
        )
        .await;
    assert_eq!(
        refused["payload"]["message"],
        "graph:addnode is not permitted"
    );
    assert_eq!(snapshot(&server), before);
    full.assert_silent(Duration::from_millis(150)).await;
}

/// The next frame that is not news of a component (the graphs cleared as not main are
/// components, announced after each edit); those are kept in `frames` too.
async fn next_answer(client: &mut common::protocol::Client, frames: &mut Vec<Value>) -> Value {
    loop {
        let frame = client.next().await.expect("an answer");
        if frame["command"] != "component" {
            return frame;
        }
        frames.push(frame);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_works_at_the_top_level_or_in_the_payload_and_is_never_echoed() {
    let server = TestServer::start(guarded()).await;
    let mut observer = server.client_with_secret(READ_ONLY).await;
    observer.ask("runtime", "getruntime", json!({})).await;
    let mut raw = server.client().await;

    let mut frames = Vec::new();
    let top_level = json!({"protocol": "graph", "command": "clear", "secret": FULL,
        "payload": {"id": "top", "name": "Top"}});
    raw.send_text(top_level.to_string()).await;
    let answer = next_answer(&mut raw, &mut frames).await;
    assert_eq!(
        answer,
        json!({"protocol": "graph", "command": "clear", "payload": {"id": "top", "name": "Top"}})
    );
    frames.push(answer);
    let in_payload = json!({"protocol": "graph", "command": "clear",
        "payload": {"id": "inner", "secret": FULL}});
    raw.send_text(in_payload.to_string()).await;
    let answer = next_answer(&mut raw, &mut frames).await;
    assert_eq!(
        answer,
        json!({"protocol": "graph", "command": "clear", "payload": {"id": "inner"}})
    );
    frames.push(answer);
    // Both at once (as the official suite sends it).
    let both = json!({"protocol": "graph", "command": "addnode", "secret": FULL,
        "payload": {"id": "n", "component": "core/Repeat", "graph": "top", "secret": FULL}});
    raw.send_text(both.to_string()).await;
    let answer = next_answer(&mut raw, &mut frames).await;
    assert_eq!(
        answer["payload"],
        json!({"id": "n", "component": "core/Repeat", "graph": "top"})
    );
    frames.push(answer);
    // With a requestId too, and in the answers of other protocols.
    let with_id = json!({"protocol": "network", "command": "getstatus", "secret": FULL,
        "requestId": "q1", "payload": {"graph": "top", "secret": FULL}});
    raw.send_text(with_id.to_string()).await;
    let answer = next_answer(&mut raw, &mut frames).await;
    assert_eq!(
        answer,
        json!({"protocol": "network", "command": "status", "responseTo": "q1",
            "payload": {"graph": "top", "running": false, "started": false}})
    );
    frames.push(answer);
    let getruntime = json!({"protocol": "runtime", "command": "getruntime", "secret": FULL,
        "payload": {"secret": FULL}});
    raw.send_text(getruntime.to_string()).await;
    let answer = next_answer(&mut raw, &mut frames).await;
    assert_eq!(
        names(&answer["payload"]["capabilities"]),
        OFFERED_WITHOUT_FILE
    );
    frames.push(answer);

    // A later request without the secret is anonymous again.
    let refused = raw.ask("graph", "clear", json!({"id": "anonymous"})).await;
    assert_eq!(
        refused["payload"]["message"],
        "graph:clear is not permitted"
    );
    frames.push(refused);

    // The observer follows the three edits (and the news of the two graphs as components).
    let mut edits = 0;
    while let Some(frame) = observer.next_within(Duration::from_millis(300)).await {
        edits += usize::from(frame["protocol"] == "graph");
        frames.push(frame);
    }
    assert_eq!(edits, 3, "{frames:#?}");
    for frame in &frames {
        let text = frame.to_string();
        assert!(!text.contains(FULL), "secret echoed: {text}");
        assert!(!text.contains(READ_ONLY), "secret echoed: {text}");
        assert!(frame.get("secret").is_none(), "{text}");
        if let Some(payload) = frame["payload"].as_object() {
            assert!(!payload.contains_key("secret"), "{text}");
        }
    }
    let graphs = Runtime::lock(&server.runtime).graph_ids();
    assert_eq!(graphs, ["inner", "top"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_is_offered_only_with_a_main_file() {
    // Open runtime (no secrets): everything that works, which excludes persisting.
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    assert_eq!(
        names(&runtime["payload"]["allCapabilities"]),
        OFFERED_WITHOUT_FILE
    );
    assert_eq!(
        names(&runtime["payload"]["capabilities"]),
        OFFERED_WITHOUT_FILE
    );
    let refused = c.ask("network", "persist", json!({})).await;
    assert_eq!(
        refused,
        json!({"protocol": "network", "command": "error",
            "payload": {"message": "network:persist is not offered: flowd was started without \
                a graph file (--graph FILE), so there is nowhere to persist to"}})
    );
    drop(server);

    // Even a secret granting everything does not grant it without a file.
    let server = TestServer::start(guarded()).await;
    let mut c = server.client_with_secret(FULL).await;
    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    assert!(
        !names(&runtime["payload"]["capabilities"]).contains(&"network:persist".to_string()),
        "{runtime}"
    );
    drop(server);

    // With a main file it is offered and works.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.json");
    let server = TestServer::start(RuntimeConfig {
        main_file: Some(file.clone()),
        ..config()
    })
    .await;
    let mut c = server.client().await;
    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    let all = names(&runtime["payload"]["allCapabilities"]);
    assert!(all.contains(&"network:persist".to_string()), "{all:?}");
    assert_eq!(names(&runtime["payload"]["capabilities"]), all);
    c.clear("m", true).await;
    let persisted = c.request("network", "persist", json!({}), "persist").await;
    assert_eq!(persisted, json!({}));
    assert!(file.exists());
}

/// A `wss://` connection to `port` on localhost that trusts only `cert`.
async fn connect_tls(
    port: u16,
    cert: &rcgen::Certificate,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let mut request = format!("wss://localhost:{port}/")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "noflo".parse().unwrap());
    let (ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("WebSocket handshake over TLS");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("noflo")
    );
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_self_signed_certificate_answers_getruntime() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let server = TestServer::start_with(
        guarded(),
        ServerConfig {
            tls: Some((cert, key)),
            ..ServerConfig::default()
        },
        Arc::new(Registry::with_core()),
    )
    .await;
    assert!(server.url.starts_with("wss://127.0.0.1:"), "{}", server.url);
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();

    // A plain ws:// client gets no WebSocket from a TLS server, and does not upset it.
    let plain = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/")),
    )
    .await
    .expect("the plain attempt ends");
    assert!(plain.is_err());

    let mut ws = connect_tls(port, &certified.cert).await;
    for (secret, capabilities) in [
        (FULL, OFFERED_WITHOUT_FILE.len()),
        ("", 0),
        (READ_ONLY, Capabilities::read_only().names().len()),
    ] {
        let request = json!({"protocol": "runtime", "command": "getruntime",
            "payload": {"secret": secret}});
        ws.send(WsMessage::text(request.to_string())).await.unwrap();
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer over TLS")
            .expect("the connection is open")
            .expect("a frame");
        let WsMessage::Text(text) = frame else {
            panic!("not a text frame: {frame:?}");
        };
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["command"], "runtime", "{answer}");
        assert_eq!(
            answer["payload"]["capabilities"].as_array().unwrap().len(),
            capabilities,
            "{answer}"
        );
    }
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setsource_is_offered_only_when_graph_sources_are_accepted() {
    // By default: not listed, so noflo-ui offers no "New component" in languages flowd
    // cannot build, and a component:source says why it is refused.
    let server = TestServer::start(RuntimeConfig {
        graph_sources: false,
        ..config()
    })
    .await;
    let mut c = server.client().await;
    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    for list in ["capabilities", "allCapabilities"] {
        let listed = names(&runtime["payload"][list]);
        assert!(
            !listed.contains(&"component:setsource".to_string()),
            "{list}: {listed:?}"
        );
        assert!(
            listed.contains(&"component:getsource".to_string()),
            "{list}: {listed:?}"
        );
    }
    // What noflo-ui's "New component" dialog sends (noflo-new-component.js, then
    // fbp-client's component.source).
    let refused = c
        .ask(
            "component",
            "source",
            json!({"name": "MyCoolComponent", "language": "javascript", "library": "project",
                "code": "", "tests": ""}),
        )
        .await;
    assert_eq!(refused["command"], "error", "{refused}");
    let message = refused["payload"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("component:source is not offered: ")
            && message.contains("--graph-sources"),
        "{message}"
    );
    drop(server);

    // With graph sources accepted: listed, and a graph becomes a component.
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    assert!(
        names(&runtime["payload"]["capabilities"]).contains(&"component:setsource".to_string())
    );
    let code = "INPORT=r.IN:IN\nOUTPORT=r.OUT:OUT\nr(core/Repeat)";
    let component = c
        .request(
            "component",
            "source",
            json!({"name": "Pass", "language": "fbp", "code": code}),
            "component",
        )
        .await;
    assert_eq!(component["name"], "flowd/Pass");
}

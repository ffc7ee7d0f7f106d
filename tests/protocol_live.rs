//! Editing a running network over the protocol: the edits take effect without a restart.

mod common;

use common::protocol::{TestServer, config};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_edges_and_iips_added_while_running_take_effect_at_once() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let g = |mut v: serde_json::Value| {
        v["graph"] = json!("live");
        v
    };
    c.request("graph", "clear", json!({"id": "live"}), "clear")
        .await;
    c.request(
        "graph",
        "addnode",
        g(json!({"id": "relay", "component": "core/Repeat"})),
        "addnode",
    )
    .await;
    c.request(
        "graph",
        "addinport",
        g(json!({"public": "in", "node": "relay", "port": "in"})),
        "addinport",
    )
    .await;
    c.request("network", "start", g(json!({})), "started").await;

    c.request(
        "graph",
        "addnode",
        g(json!({"id": "show", "component": "core/Output"})),
        "addnode",
    )
    .await;
    let edge =
        g(json!({"src": {"node": "relay", "port": "out"}, "tgt": {"node": "show", "port": "in"}}));
    c.request("graph", "addedge", edge.clone(), "addedge").await;
    c.request(
        "runtime",
        "packet",
        g(json!({"port": "in", "event": "data", "payload": "through"})),
        "packetsent",
    )
    .await;
    let output = c.expect("network", "output").await;
    assert_eq!(output["message"], "through");
    let status = c
        .request("network", "getstatus", g(json!({})), "status")
        .await;
    assert_eq!(status["running"], true, "the network still runs: {status}");

    // An IIP for a node added while running starts it with that IIP.
    c.request(
        "graph",
        "addnode",
        g(json!({"id": "say", "component": "core/Output"})),
        "addnode",
    )
    .await;
    c.request(
        "graph",
        "addinitial",
        g(json!({"src": {"data": "hello"}, "tgt": {"node": "say", "port": "in"}})),
        "addinitial",
    )
    .await;
    let output = c.expect("network", "output").await;
    assert_eq!(output["message"], "hello");

    // After the edge is removed, packets no longer reach `show`.
    c.request("graph", "removeedge", edge, "removeedge").await;
    c.request(
        "runtime",
        "packet",
        g(json!({"port": "in", "event": "data", "payload": "lost"})),
        "packetsent",
    )
    .await;
    c.request("network", "stop", g(json!({})), "stopped").await;
    // Nothing but the stop's echo may follow: no output of "lost".
    while let Some(frame) = c.next_within(std::time::Duration::from_millis(300)).await {
        assert_ne!(frame["payload"]["message"], "lost", "{frame}");
    }
}

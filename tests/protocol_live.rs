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
    let packet = |text: &str| g(json!({"port": "in", "event": "data", "payload": text}));
    c.clear("live", false).await;
    c.add_node("live", "relay", "core/Repeat").await;
    c.export("live", "addinport", "in", ("relay", "in")).await;
    c.request("network", "start", g(json!({})), "started").await;

    c.add_node("live", "show", "core/Output").await;
    let edge = c.add_edge("live", ("relay", "out"), ("show", "in")).await;
    c.request("runtime", "packet", packet("through"), "packetsent")
        .await;
    let output = c.expect("network", "output").await;
    assert_eq!(output["message"], "through");
    let status = c
        .request("network", "getstatus", g(json!({})), "status")
        .await;
    assert_eq!(status["running"], true, "the network still runs: {status}");

    // An IIP for a node added while running starts it with that IIP.
    c.add_node("live", "say", "core/Output").await;
    c.add_iip("live", json!("hello"), ("say", "in")).await;
    let output = c.expect("network", "output").await;
    assert_eq!(output["message"], "hello");

    // After the edge is removed, packets no longer reach `show`.
    c.edit("removeedge", edge).await;
    c.request("runtime", "packet", packet("lost"), "packetsent")
        .await;
    c.request("network", "stop", g(json!({})), "stopped").await;
    // Nothing but the stop's echo may follow: no output of "lost".
    while let Some(frame) = c.next_within(std::time::Duration::from_millis(300)).await {
        assert_ne!(frame["payload"]["message"], "lost", "{frame}");
    }
}

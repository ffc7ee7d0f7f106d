//! Editing a running network over the protocol: the edits take effect without a restart.

mod common;

use common::protocol::{Client, TestServer, config};
use serde_json::{Value, json};

/// `payload` addressed to the graph `live`.
fn live(mut payload: Value) -> Value {
    payload["graph"] = json!("live");
    payload
}

/// A `runtime:packet` of `text` into the exported inport `in` of `live`.
fn packet(text: &str) -> Value {
    live(json!({"port": "in", "event": "data", "payload": text}))
}

/// Makes `live` `relay(core/Repeat) -> show(core/Output)`, fed through its exported inport
/// `in`, and starts it.
async fn start_relay_to_show(c: &mut Client) {
    c.clear("live", false).await;
    c.add_node("live", "relay", "core/Repeat").await;
    c.add_node("live", "show", "core/Output").await;
    c.add_edge("live", ("relay", "out"), ("show", "in")).await;
    c.export("live", "addinport", "in", ("relay", "in")).await;
    c.request("network", "start", live(json!({})), "started")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_edges_and_iips_added_while_running_take_effect_at_once() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("live", false).await;
    c.add_node("live", "relay", "core/Repeat").await;
    c.export("live", "addinport", "in", ("relay", "in")).await;
    c.request("network", "start", live(json!({})), "started")
        .await;

    c.add_node("live", "show", "core/Output").await;
    let edge = c.add_edge("live", ("relay", "out"), ("show", "in")).await;
    c.request("runtime", "packet", packet("through"), "packetsent")
        .await;
    let output = c.expect("network", "output").await;
    assert_eq!(output["message"], "through");
    let status = c
        .request("network", "getstatus", live(json!({})), "status")
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
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
    // Nothing but the stop's echo may follow: no output of "lost".
    while let Some(frame) = c.next_within(std::time::Duration::from_millis(300)).await {
        assert_ne!(frame["payload"]["message"], "lost", "{frame}");
    }
}

/// The frames up to the `network:output` of `message`, checked for `network:error`s; returns
/// the ids of the edges that `network:data` showed on the way.
async fn data_until_output(c: &mut Client, message: &str) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let frame = c
            .next()
            .await
            .unwrap_or_else(|| panic!("no output '{message}'; edges seen: {ids:?}"));
        let (protocol, command) = (&frame["protocol"], &frame["command"]);
        assert!(
            !(protocol == "network" && command == "error"),
            "the running network could not follow: {frame}"
        );
        if protocol == "network" && command == "data" {
            ids.push(
                frame["payload"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        if protocol == "network" && command == "output" && frame["payload"]["message"] == message {
            return ids;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_renamed_while_running_is_shown_and_edited_under_its_new_name() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    start_relay_to_show(&mut c).await;
    c.request("runtime", "packet", packet("one"), "packetsent")
        .await;
    assert_eq!(
        data_until_output(&mut c, "one").await,
        ["relay() OUT -> IN show()"]
    );

    c.edit("renamenode", live(json!({"from": "relay", "to": "pass"})))
        .await;
    c.edit("renamenode", live(json!({"from": "show", "to": "print"})))
        .await;
    c.request("runtime", "packet", packet("two"), "packetsent")
        .await;
    assert_eq!(
        data_until_output(&mut c, "two").await,
        ["pass() OUT -> IN print()"],
        "packets are shown under the new names"
    );

    // The old name is free for a new node, a process of its own; edits by the new names reach
    // the renamed processes.
    c.add_node("live", "relay", "core/Output").await;
    c.add_edge("live", ("pass", "out"), ("relay", "in")).await;
    c.request("runtime", "packet", packet("three"), "packetsent")
        .await;
    let mut ids = data_until_output(&mut c, "three").await;
    ids.extend(data_until_output(&mut c, "three").await);
    ids.sort();
    assert_eq!(
        ids,
        ["pass() OUT -> IN print()", "pass() OUT -> IN relay()"]
    );

    // A removed process's upstream stops feeding it, and no packet is shown going to it.
    c.edit("removenode", live(json!({"id": "print"}))).await;
    c.request("runtime", "packet", packet("four"), "packetsent")
        .await;
    assert_eq!(
        data_until_output(&mut c, "four").await,
        ["pass() OUT -> IN relay()"]
    );
    let status = c
        .request("network", "getstatus", live(json!({})), "status")
        .await;
    assert_eq!(status["running"], true, "{status}");
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_a_running_network_name_nodes_as_the_graph_does_now() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let code = "INPORT=a.IN:IN\nOUTPORT=a.OUT:OUT\na(core/Repeat)";
    c.request(
        "component",
        "source",
        json!({"name": "Sub", "language": "fbp", "code": code}),
        "component",
    )
    .await;
    c.clear("live", false).await;
    c.add_node("live", "relay", "core/Repeat").await;
    c.export("live", "addinport", "in", ("relay", "in")).await;
    c.request("network", "start", live(json!({})), "started")
        .await;

    // A subgraph node cannot join a running network: it is in the graph, not in the network.
    c.add_node("live", "sub", "flowd/Sub").await;
    let error = c.expect("network", "error").await;
    assert!(
        error["message"].as_str().unwrap().contains("sub"),
        "{error}"
    );
    c.edit("renamenode", live(json!({"from": "sub", "to": "later"})))
        .await;
    c.add_edge("live", ("relay", "out"), ("later", "in")).await;
    let error = c.expect("network", "error").await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("no process 'later'"),
        "the error names the node as it is called now: {message}"
    );
    c.edit("removenode", live(json!({"id": "later"}))).await;
    let error = c.expect("network", "error").await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("no process 'later'"), "{message}");
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_marked_secure_while_running_hides_its_data_at_once() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    start_relay_to_show(&mut c).await;
    let edge = |secure: serde_json::Value| {
        live(
            json!({"src": {"node": "relay", "port": "out"}, "tgt": {"node": "show", "port": "in"},
            "metadata": {"secure": secure}}),
        )
    };
    for (secure, text, shown) in [
        (json!(null), "plain", "plain"),
        (json!(true), "password", "DATA"),
        (json!(null), "visible again", "visible again"),
    ] {
        c.edit("changeedge", edge(secure)).await;
        c.request("runtime", "packet", packet(text), "packetsent")
            .await;
        let data = c.expect("network", "data").await;
        assert_eq!(data["data"], shown, "{data}");
        assert_eq!(c.expect("network", "output").await["message"], text);
    }
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processes_of_a_subgraph_renamed_while_running_follow_it() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let code = "INPORT=a.IN:IN\nOUTPORT=a.OUT:OUT\na(core/Repeat)";
    c.request(
        "component",
        "source",
        json!({"name": "Sub", "language": "fbp", "code": code}),
        "component",
    )
    .await;
    c.clear("live", false).await;
    // Named as noflo-ui names nodes: after their component.
    c.add_node("live", "core/Repeat_ab12", "core/Repeat").await;
    c.add_node("live", "sub", "flowd/Sub").await;
    c.add_node("live", "show", "core/Output").await;
    c.add_edge("live", ("core/Repeat_ab12", "out"), ("sub", "in"))
        .await;
    c.add_edge("live", ("sub", "out"), ("show", "in")).await;
    c.export("live", "addinport", "in", ("core/Repeat_ab12", "in"))
        .await;
    c.request("network", "start", live(json!({})), "started")
        .await;

    c.edit(
        "renamenode",
        live(json!({"from": "sub", "to": "flowd/Sub_k2x9a"})),
    )
    .await;
    c.request("runtime", "packet", packet("through"), "packetsent")
        .await;
    assert_eq!(
        data_until_output(&mut c, "through").await,
        [
            "core/Repeat_ab12() OUT -> IN flowd/Sub_k2x9a/a()",
            "flowd/Sub_k2x9a/a() OUT -> IN show()"
        ]
    );
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_added_while_running_is_shown_only_if_the_selection_covers_it() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    start_relay_to_show(&mut c).await;
    let selected =
        json!([{"src": {"node": "relay", "port": "out"}, "tgt": {"node": "show", "port": "in"}}]);
    c.request(
        "network",
        "edges",
        live(json!({"edges": selected})),
        "edges",
    )
    .await;

    c.add_node("live", "other", "core/Output").await;
    c.add_edge("live", ("relay", "out"), ("other", "in")).await;
    c.request("runtime", "packet", packet("once"), "packetsent")
        .await;
    let mut ids = data_until_output(&mut c, "once").await;
    ids.extend(data_until_output(&mut c, "once").await);
    assert_eq!(
        ids,
        ["relay() OUT -> IN show()"],
        "the new edge is not selected"
    );
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_edited_while_running_takes_effect_from_the_next_packet() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("live", false).await;
    c.add_node("live", "keep", "core/Filter").await;
    c.add_node("live", "show", "core/Output").await;
    c.add_edge("live", ("keep", "out"), ("show", "in")).await;
    c.add_iip("live", json!("^a"), ("keep", "pattern")).await;
    c.export("live", "addinport", "in", ("keep", "in")).await;
    c.request("network", "start", live(json!({})), "started")
        .await;
    c.request("runtime", "packet", packet("apple"), "packetsent")
        .await;
    assert_eq!(c.expect("network", "output").await["message"], "apple");

    // noflo-ui changes an IIP as a removal and an addition.
    c.edit(
        "removeinitial",
        live(json!({"src": {"data": "^a"}, "tgt": {"node": "keep", "port": "pattern"}})),
    )
    .await;
    c.add_iip("live", json!("^b"), ("keep", "pattern")).await;
    for text in ["avocado", "banana"] {
        c.request("runtime", "packet", packet(text), "packetsent")
            .await;
    }
    let output = c.expect("network", "output").await;
    assert_eq!(output["message"], "banana", "the new pattern holds");
    let status = c
        .request("network", "getstatus", live(json!({})), "status")
        .await;
    assert_eq!(status["running"], true, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bang_button_on_an_unwired_kick_sends_while_the_network_runs() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("live", false).await;
    c.add_node("live", "kick", "core/Kick").await;
    c.add_node("live", "show", "core/Output").await;
    c.add_edge("live", ("kick", "out"), ("show", "in")).await;
    c.add_iip("live", json!("clicked"), ("kick", "data")).await;
    c.request("network", "start", live(json!({})), "started")
        .await;
    // Nothing feeds kick.in but the button: the network waits for it, and is no deadlock.
    let quiet = std::time::Duration::from_millis(1200);
    while let Some(frame) = c.next_within(quiet).await {
        assert_ne!(frame["command"], "stopped", "{frame}");
        assert_ne!(frame["command"], "error", "{frame}");
    }
    let status = c
        .request("network", "getstatus", live(json!({})), "status")
        .await;
    assert_eq!(status["running"], true, "{status}");
    for click in 1..=2 {
        // noflo-node-inspector.js sendBang: removeInitial (none there), addInitial(true),
        // removeInitial, in one transaction.
        // Sent without waiting for echoes, as noflo-ui does: the output may come before them.
        c.send(
            "graph",
            "addinitial",
            live(
                json!({"src": {"data": true}, "tgt": {"node": "kick", "port": "in"},
                "metadata": {}}),
            ),
        )
        .await;
        c.send(
            "graph",
            "removeinitial",
            live(json!({"src": {"data": true}, "tgt": {"node": "kick", "port": "in"}})),
        )
        .await;
        loop {
            let frame = c.next().await.expect("the click's output");
            if frame["command"] == "output" {
                assert_eq!(frame["payload"]["message"], "clicked", "click {click}");
                break;
            }
            assert_ne!(frame["command"], "stopped", "click {click}: {frame}");
        }
    }
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_that_waits_for_the_next_start_is_shown_on_its_node() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    start_relay_to_show(&mut c).await;
    // A new exported port is wired at the next start.
    c.export("live", "addoutport", "copy", ("relay", "out"))
        .await;
    let mut on_nodes = Vec::new();
    let whole = loop {
        let frame = c.next().await.expect("news of the edit that waits");
        match frame["command"].as_str() {
            Some("processerror") => on_nodes.push(frame["payload"].clone()),
            Some("error") => break frame["payload"].clone(),
            _ => {}
        }
    };
    assert!(
        whole["message"]
            .as_str()
            .unwrap_or_default()
            .contains("next start"),
        "{whole}"
    );
    // noflo-ui shows process errors on their nodes, and network errors nowhere.
    let ids: Vec<&str> = on_nodes.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, ["relay"], "{on_nodes:?}");
    for payload in &on_nodes {
        assert_eq!(payload["graph"], "live");
        let error = payload["error"].as_str().unwrap_or_default();
        assert!(error.contains("applies at the next start"), "{error}");
    }
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_to_a_new_array_index_carries_data_while_running() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("live", false).await;
    c.add_node("live", "relay", "core/Repeat").await;
    c.add_node("live", "merge", "core/Merge").await;
    c.add_node("live", "show", "core/Output").await;
    c.export("live", "addinport", "in", ("relay", "in")).await;
    c.edit(
        "addedge",
        live(json!({"src": {"node": "relay", "port": "out"},
            "tgt": {"node": "merge", "port": "in", "index": 0}})),
    )
    .await;
    c.add_edge("live", ("merge", "out"), ("show", "in")).await;
    c.request("network", "start", live(json!({})), "started")
        .await;
    // While running: a second source into merge.in[1], started by an IIP.
    c.add_node("live", "late", "core/Repeat").await;
    c.edit(
        "addedge",
        live(json!({"src": {"node": "late", "port": "out"},
            "tgt": {"node": "merge", "port": "in", "index": 1}})),
    )
    .await;
    c.send(
        "graph",
        "addinitial",
        live(json!({"src": {"data": "via index 1"}, "tgt": {"node": "late", "port": "in"}})),
    )
    .await;
    let mut data_on_new_edge = false;
    loop {
        let frame = c.next().await.expect("the packet through the new index");
        match frame["command"].as_str() {
            Some("data") if frame["payload"]["tgt"]["index"] == 1 => data_on_new_edge = true,
            Some("output") => {
                assert_eq!(frame["payload"]["message"], "via index 1");
                break;
            }
            Some("error" | "processerror") => panic!("refused: {frame}"),
            _ => {}
        }
    }
    assert!(data_on_new_edge, "the new edge shows its packet");
    c.request("network", "stop", live(json!({})), "stopped")
        .await;
}

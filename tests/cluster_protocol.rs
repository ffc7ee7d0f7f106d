//! A graph placed over several runtimes, edited and run from a protocol client connected to
//! the one runtime that owns it, as noflo-ui does: every runtime a real `flowd serve --nats`,
//! around a real `nats-server` on loopback.

mod common;

use std::time::Duration;

use common::brokers::{self, Broker};
use common::protocol::Client;
use common::served::Served;
use serde_json::{Value, json};

/// `flowd serve` joined to the cluster at `server` as `name`, its state in `state`.
fn member(server: &Broker, name: &str, state: &tempfile::TempDir) -> Served {
    let url = format!("nats://{}", server.address);
    Served::start(&["--nats", &url, "--name", name], state.path())
}

/// Builds graph `id` over the protocol: `ticks` (here, `count` ticks `interval_ms` apart) ->
/// `there` (a `core/Repeat` on `there_on`) -> `show` (a `core/Output` on `show_on`, or here).
async fn build(client: &mut Client, id: &str, count: u64, interval_ms: u64, placed: [&str; 2]) {
    let [there_on, show_on] = placed;
    client.clear(id, false).await;
    client.add_node(id, "ticks", "core/Interval").await;
    let node = |id_: &str, component: &str, runtime: &str| {
        let mut node = json!({"id": id_, "component": component, "graph": id, "metadata": {}});
        if !runtime.is_empty() {
            node["metadata"]["runtime"] = json!(runtime);
        }
        node
    };
    client
        .edit("addnode", node("there", "core/Repeat", there_on))
        .await;
    client
        .edit("addnode", node("show", "core/Output", show_on))
        .await;
    client.add_edge(id, ("ticks", "out"), ("there", "in")).await;
    client.add_edge(id, ("there", "out"), ("show", "in")).await;
    client
        .add_iip(id, json!(interval_ms), ("ticks", "interval"))
        .await;
    client.add_iip(id, json!(count), ("ticks", "count")).await;
}

fn is(frame: &Value, protocol: &str, command: &str) -> bool {
    frame["protocol"] == protocol && frame["command"] == command
}

/// The next `network:output` line, skipping other frames; panics on a `network:error`.
async fn next_output(client: &mut Client) -> String {
    loop {
        let frame = client.next().await.expect("the network goes on");
        assert!(!is(&frame, "network", "error"), "{frame}");
        if is(&frame, "network", "output") {
            return frame["payload"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_the_owning_runtime_runs_a_graph_placed_over_three_runtimes() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let states = [(); 3].map(|()| tempfile::tempdir().expect("a directory"));
    let _west = member(&server, "west", &states[0]);
    let _east = member(&server, "east", &states[1]);
    let home = member(&server, "home", &states[2]);
    let mut client = Client::connect(&home.url, None).await;
    build(&mut client, "spread", 50, 1, ["west", "east"]).await;
    client
        .request("network", "start", json!({"graph": "spread"}), "started")
        .await;
    let frames = client.until_stopped("spread").await;
    // `show` runs on east: its lines come to the client of home, in order.
    let lines: Vec<&str> = frames
        .iter()
        .filter(|f| is(f, "network", "output"))
        .filter_map(|f| f["payload"]["message"].as_str())
        .collect();
    let expected: Vec<String> = (1..=50).map(|n| n.to_string()).collect();
    assert_eq!(lines, expected, "{frames:#?}");
    // Packets are shown on the graph's edges, whichever runtimes their ends run on: from
    // home to west, and from west to east (reported by west).
    let data = |f: &&Value| is(f, "network", "data");
    let shown = |from: &str, to: &str| -> Vec<Value> {
        frames
            .iter()
            .filter(data)
            .filter(|f| f["payload"]["src"]["node"] == from && f["payload"]["tgt"]["node"] == to)
            .map(|f| f["payload"]["data"].clone())
            .collect()
    };
    assert_eq!(shown("ticks", "there").len(), 50, "{frames:#?}");
    let counted: Vec<Value> = (1..=50).map(|n| json!(n)).collect();
    assert_eq!(shown("there", "show"), counted, "{frames:#?}");
    let internal = |f: &&Value| {
        ["src", "tgt"].iter().any(|end| {
            let node = f["payload"][end]["node"].as_str().unwrap_or_default();
            node.starts_with("remote-")
        })
    };
    assert!(
        !frames.iter().filter(data).any(|f| internal(&f)),
        "{frames:#?}"
    );
    assert!(
        !frames.iter().any(|f| is(f, "network", "error")),
        "{frames:#?}"
    );
    // The finished network is started but not running, as a local one would be.
    let status = client
        .request("network", "getstatus", json!({"graph": "spread"}), "status")
        .await;
    assert_eq!(status["running"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_killed_under_a_running_graph_is_named_to_the_client() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let states = [(); 2].map(|()| tempfile::tempdir().expect("a directory"));
    let mut west = member(&server, "west", &states[0]);
    let home = member(&server, "home", &states[1]);
    let mut client = Client::connect(&home.url, None).await;
    build(&mut client, "doomed", 1_000_000, 5, ["west", ""]).await;
    client
        .request("network", "start", json!({"graph": "doomed"}), "started")
        .await;
    assert_eq!(next_output(&mut client).await, "1");
    west.child.kill().expect("west is killed");
    let _ = west.child.wait();
    let frames = client.until_stopped("doomed").await;
    let error = frames
        .iter()
        .find(|f| is(f, "network", "error"))
        .unwrap_or_else(|| panic!("no network:error in {frames:#?}"));
    let message = error["payload"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'west'") && message.contains("'there'"),
        "{message}"
    );
    let on_node = frames
        .iter()
        .any(|f| is(f, "network", "processerror") && f["payload"]["id"] == "there");
    assert!(on_node, "{frames:#?}");
    // The runtime that owns the graph goes on serving it.
    let status = client
        .request("network", "getstatus", json!({"graph": "doomed"}), "status")
        .await;
    assert_eq!(status["running"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_moved_by_a_live_edit_runs_on_its_new_runtime() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let states = [(); 3].map(|()| tempfile::tempdir().expect("a directory"));
    let mut west = member(&server, "west", &states[0]);
    let mut east = member(&server, "east", &states[1]);
    let home = member(&server, "home", &states[2]);
    let mut client = Client::connect(&home.url, None).await;
    build(&mut client, "moving", 1_000_000, 5, ["west", ""]).await;
    client
        .request("network", "start", json!({"graph": "moving"}), "started")
        .await;
    assert_eq!(next_output(&mut client).await, "1");

    // Moving the node on the canvas changes its metadata but not its runtime: nothing restarts.
    client
        .edit(
            "changenode",
            json!({"id": "there", "metadata": {"x": 100, "y": 40}, "graph": "moving"}),
        )
        .await;
    let first = next_output(&mut client).await;
    for _ in 0..20 {
        let frame = client.next().await.expect("the network goes on");
        assert!(
            !is(&frame, "network", "stopped") && !is(&frame, "network", "error"),
            "{frame}"
        );
    }

    // Placing it on east restarts the network, with `there` on east.
    client
        .edit(
            "changenode",
            json!({"id": "there", "metadata": {"runtime": "east"}, "graph": "moving"}),
        )
        .await;
    client.expect("network", "stopped").await;
    client.expect("network", "started").await;
    assert_eq!(next_output(&mut client).await, "1", "after {first}");
    // West has nothing of the graph any more: killing it changes nothing.
    west.child.kill().expect("west is killed");
    let _ = west.child.wait();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut last = 1;
    while tokio::time::Instant::now() < deadline {
        let line = next_output(&mut client).await;
        let n: u64 = line.parse().expect("a count");
        assert_eq!(n, last + 1, "the ticks go on in order");
        last = n;
    }
    // East has it: killing east is reported with it.
    east.child.kill().expect("east is killed");
    let _ = east.child.wait();
    let frames = client.until_stopped("moving").await;
    let lost = frames
        .iter()
        .filter(|f| is(f, "network", "error"))
        .filter_map(|f| f["payload"]["message"].as_str())
        .any(|m| m.contains("'east'") && m.contains("'there'"));
    assert!(lost, "{frames:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_of_edges_covers_edges_between_runtimes() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let states = [(); 2].map(|()| tempfile::tempdir().expect("a directory"));
    let _west = member(&server, "west", &states[0]);
    let home = member(&server, "home", &states[1]);
    let mut client = Client::connect(&home.url, None).await;
    build(&mut client, "chosen", 30, 1, ["west", ""]).await;
    // Only the edge from home to west: reported by home, its far end on west.
    let selected = json!({"graph": "chosen", "edges": [
        {"src": {"node": "ticks", "port": "out"}, "tgt": {"node": "there", "port": "in"}}
    ]});
    client.request("network", "edges", selected, "edges").await;
    client
        .request("network", "start", json!({"graph": "chosen"}), "started")
        .await;
    let frames = client.until_stopped("chosen").await;
    let on = |from: &str, to: &str| {
        frames
            .iter()
            .filter(|f| is(f, "network", "data"))
            .filter(|f| f["payload"]["src"]["node"] == from && f["payload"]["tgt"]["node"] == to)
            .count()
    };
    assert_eq!(on("ticks", "there"), 30, "{frames:#?}");
    assert_eq!(on("there", "show"), 0, "{frames:#?}");
}

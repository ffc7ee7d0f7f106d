//! What clients see of the packets and output of a running network: a sample that never costs
//! a slow client its connection, a control frame or its answers, edge selections with one rule
//! for edges and IIPs, and IIPs shown as the graph holds them, before what they cause.

mod common;

use std::io::Write;
use std::time::Duration;

use common::protocol::{Client, TestServer, config};
use serde_json::{Value, json};

/// Packets through the busy network.
const PACKETS: usize = 1_000_000;

/// A file of `PACKETS` lines.
fn lines_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut text = String::with_capacity(PACKETS * 8);
    for n in 0..PACKETS {
        text.push_str(&n.to_string());
        text.push('\n');
    }
    file.write_all(text.as_bytes()).expect("written");
    file
}

/// Graph `busy`: `ReadLines` of `file` -> 4 `Repeat` -> `Count` -> `Output`.
async fn busy_graph(c: &mut Client, file: &std::path::Path) {
    c.clear("busy", false).await;
    c.add_node("busy", "read", "core/ReadLines").await;
    let mut previous = "read".to_string();
    for i in 0..4 {
        let repeat = format!("r{i}");
        c.add_node("busy", &repeat, "core/Repeat").await;
        c.add_edge("busy", (&previous, "out"), (&repeat, "in"))
            .await;
        previous = repeat;
    }
    c.add_node("busy", "count", "core/Count").await;
    c.add_node("busy", "show", "core/Output").await;
    c.add_edge("busy", (&previous, "out"), ("count", "in"))
        .await;
    c.add_edge("busy", ("count", "out"), ("show", "in")).await;
    c.add_iip("busy", json!(file.to_str().expect("UTF-8")), ("read", "in"))
        .await;
}

/// What a slow client saw of the busy network: every frame, in order.
async fn watch_slowly(c: &mut Client) -> Vec<Value> {
    c.send("network", "start", json!({"graph": "busy"})).await;
    // An edit while it runs: its echo is a control frame like any other.
    c.send(
        "graph",
        "addnode",
        json!({"id": "late", "component": "core/Drop", "graph": "busy"}),
    )
    .await;
    let mut frames = Vec::new();
    loop {
        let frame = c
            .next_within(Duration::from_secs(120))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "the connection closed or went quiet after {} frames",
                    frames.len()
                )
            });
        let stopped = frame["protocol"] == "network"
            && frame["command"] == "stopped"
            && frame["payload"]["graph"] == "busy";
        frames.push(frame);
        if stopped {
            return frames;
        }
        // A client that reads slower than packets come.
        if frames.len().is_multiple_of(64) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn count(frames: &[Value], protocol: &str, command: &str) -> usize {
    frames
        .iter()
        .filter(|f| f["protocol"] == protocol && f["command"] == command)
        .count()
}

/// Every control frame of the busy run is there, in order, with no error.
fn check_control_frames(frames: &[Value]) {
    // (The graph, not being the main graph, is also a component: its news is not counted.)
    let control: Vec<String> = frames
        .iter()
        .filter(|f| f["command"] != "data" && f["protocol"] != "component")
        .map(|f| {
            format!(
                "{}:{}",
                f["protocol"].as_str().unwrap_or_default(),
                f["command"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        control,
        [
            "network:started",
            "graph:addnode",
            "network:output",
            "network:stopped"
        ],
        "{frames:#?}"
    );
    let output = frames
        .iter()
        .find(|f| f["command"] == "output")
        .map(|f| &f["payload"]["message"]);
    assert_eq!(output, Some(&json!(PACKETS.to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_of_a_busy_network_stays_and_gets_every_control_frame() {
    let file = lines_file();
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    busy_graph(&mut c, file.path()).await;
    let frames = watch_slowly(&mut c).await;
    check_control_frames(&frames);
    let data = count(&frames, "network", "data");
    // A sample of every edge (the IIP among them), not every packet.
    assert!(data > 5, "{data} data frames");
    assert!(data < PACKETS, "{data} data frames");
    // Still connected, and still answered.
    let status = c
        .request("network", "getstatus", json!({"graph": "busy"}), "status")
        .await;
    assert_eq!(status["running"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_packet_shown_a_slow_client_still_stays() {
    let file = lines_file();
    let mut runtime = config();
    runtime.network.watch_rate = None;
    let server = TestServer::start(runtime).await;
    let mut c = server.client().await;
    busy_graph(&mut c, file.path()).await;
    let frames = watch_slowly(&mut c).await;
    check_control_frames(&frames);
    let status = c
        .request("network", "getstatus", json!({"graph": "busy"}), "status")
        .await;
    assert_eq!(status["running"], false);
}

/// Graph `g`: `a` (Repeat) -> `b` (Output), with the IIP `iip` into `a`.
async fn small_graph(c: &mut Client, iip: Value) {
    c.clear("g", false).await;
    c.add_node("g", "a", "core/Repeat").await;
    c.add_node("g", "b", "core/Output").await;
    c.add_edge("g", ("a", "out"), ("b", "in")).await;
    c.add_iip("g", iip, ("a", "in")).await;
}

/// The `(id, data)` of the data frames of one run of `g`.
async fn run_data(c: &mut Client) -> Vec<(String, Value)> {
    c.send("network", "start", json!({"graph": "g"})).await;
    c.until_stopped("g")
        .await
        .iter()
        .filter(|f| f["protocol"] == "network" && f["command"] == "data")
        .map(|f| {
            (
                f["payload"]["id"].as_str().unwrap_or_default().to_string(),
                f["payload"]["data"].clone(),
            )
        })
        .collect()
}

async fn select(c: &mut Client, edges: Value) {
    c.request(
        "network",
        "edges",
        json!({"graph": "g", "edges": edges}),
        "edges",
    )
    .await;
}

const IIP: &str = "DATA -> IN a()";
const EDGE: &str = "a() OUT -> IN b()";

fn ids(data: &[(String, Value)]) -> Vec<&str> {
    data.iter().map(|(id, _)| id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_covers_edges_and_iips_alike_and_the_empty_one_ends_it() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    small_graph(&mut c, json!("hello")).await;
    assert_eq!(ids(&run_data(&mut c).await), [IIP, EDGE]);

    // An edge selected: only that edge, not the IIP.
    select(
        &mut c,
        json!([{"src": {"node": "a", "port": "out"}, "tgt": {"node": "b", "port": "in"}}]),
    )
    .await;
    assert_eq!(ids(&run_data(&mut c).await), [EDGE]);

    // The IIP's edge selected (no `src`): only the IIP.
    select(&mut c, json!([{"tgt": {"node": "a", "port": "in"}}])).await;
    assert_eq!(ids(&run_data(&mut c).await), [IIP]);

    // The empty selection (noflo-ui's "nothing selected") shows everything again, IIPs too.
    select(&mut c, json!([])).await;
    assert_eq!(ids(&run_data(&mut c).await), [IIP, EDGE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iip_is_shown_as_the_graph_holds_it() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    for value in [
        json!("700"),
        json!(700),
        json!("true"),
        json!({"a": [1, "2"]}),
    ] {
        small_graph(&mut c, value.clone()).await;
        let data = run_data(&mut c).await;
        assert_eq!(data[0], (IIP.to_string(), value.clone()), "{data:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iip_is_shown_before_what_it_causes() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    // At start: many runs, as the first packets race the report of the IIP.
    small_graph(&mut c, json!("first")).await;
    for _ in 0..30 {
        assert_eq!(ids(&run_data(&mut c).await), [IIP, EDGE]);
    }
    // Added to a running network: `a` waits for input on an exported inport.
    c.clear("g", false).await;
    c.add_node("g", "gate", "core/Repeat").await;
    c.add_node("g", "b", "core/Output").await;
    c.add_edge("g", ("gate", "out"), ("b", "in")).await;
    c.export("g", "addinport", "in", ("gate", "in")).await;
    c.request("network", "start", json!({"graph": "g"}), "started")
        .await;
    for n in 0..30 {
        c.add_iip("g", json!(format!("live {n}")), ("gate", "in"))
            .await;
        let first = c.expect("network", "data").await;
        let second = c.expect("network", "data").await;
        assert_eq!(first["id"], "DATA -> IN gate()", "{first}");
        assert_eq!(second["id"], "gate() OUT -> IN b()", "{second}");
        assert_eq!(second["data"], format!("live {n}"));
    }
    c.request("network", "stop", json!({"graph": "g"}), "stopped")
        .await;
}

/// A network printing without end (a loop of two `Repeat` copying every IP to `Output`)
/// floods a slow client with output lines; its requests must still be answered, behind at
/// most the lines it is allowed to have waiting, not behind everything printed so far.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_printing_without_end_does_not_delay_a_slow_clients_answers() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("loop", false).await;
    c.add_node("loop", "a", "core/Repeat").await;
    c.add_node("loop", "b", "core/Repeat").await;
    c.add_node("loop", "show", "core/Output").await;
    c.add_edge("loop", ("a", "out"), ("b", "in")).await;
    c.add_edge("loop", ("b", "out"), ("a", "in")).await;
    c.add_edge("loop", ("b", "out"), ("show", "in")).await;
    c.add_iip("loop", json!("round and round"), ("a", "in"))
        .await;
    c.send("network", "start", json!({"graph": "loop"})).await;
    let mut lines = 0usize;
    // Read slowly until thousands of lines came: the client is behind.
    while lines < 5_000 {
        let frame = c
            .next_within(Duration::from_secs(120))
            .await
            .unwrap_or_else(|| panic!("the connection closed after {lines} output lines"));
        if frame["command"] == "output" {
            lines += 1;
        }
        if lines.is_multiple_of(64) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    c.send("runtime", "getruntime", json!({})).await;
    let mut before = 0usize;
    // What came before the answer, by kind, for the failure message.
    let mut seen = std::collections::BTreeMap::new();
    loop {
        let frame = c
            .next_within(Duration::from_secs(120))
            .await
            .unwrap_or_else(|| panic!("no answer after {before} frames"));
        if frame["protocol"] == "runtime" && frame["command"] == "runtime" {
            break;
        }
        let kind = format!("{}:{}", frame["protocol"], frame["command"]);
        *seen.entry(kind).or_insert(0usize) += 1;
        before += 1;
        if before.is_multiple_of(64) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Lines are shown at most 1,000 a second, and at most 1,024 wait for one client.
    assert!(
        before < 4_096,
        "the answer came after {before} frames {seen:?}"
    );
    c.request("network", "stop", json!({"graph": "loop"}), "stopped")
        .await;
}

/// Lines beyond what clients are shown are counted, and the count is said even when the flood
/// is the network's last word: every line printed is either shown or counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_hidden_at_the_end_of_a_flood_are_still_counted() {
    const LINES: u64 = 3_000;
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("burst", false).await;
    c.add_node("burst", "split", "core/SplitText").await;
    c.add_node("burst", "show", "core/Output").await;
    c.add_edge("burst", ("split", "out"), ("show", "in")).await;
    let text = (0..LINES)
        .map(|n| format!("line {n}"))
        .collect::<Vec<_>>()
        .join("\n");
    c.add_iip("burst", json!(text), ("split", "in")).await;
    c.send("network", "start", json!({"graph": "burst"})).await;
    let (mut shown, mut hidden, mut notices) = (0u64, 0u64, 0usize);
    for frame in c.until_stopped("burst").await {
        if frame["command"] != "output" {
            continue;
        }
        let message = frame["payload"]["message"].as_str().unwrap_or_default();
        match message
            .strip_prefix('(')
            .and_then(|m| m.split_once(" lines not shown"))
        {
            Some((count, _)) => {
                hidden += count.parse::<u64>().expect("a count of lines");
                notices += 1;
            }
            None => shown += 1,
        }
    }
    assert!(notices > 0, "{LINES} lines at once were all shown");
    assert_eq!(shown + hidden, LINES, "{shown} shown, {hidden} counted");
}

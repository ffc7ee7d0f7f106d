//! Networks over the protocol: packets through exported ports, `runtime:ports`, process errors,
//! output, networks that cannot start, edge selection, secure edges, subgraphs made from
//! source, graph sources, traces, and the start/stop corner cases.

mod common;

use std::time::Duration;

use common::protocol::{Client, TestServer, commands, config};
use flowd::runtime::Runtime;
use serde_json::{Value, json};

/// Starts the network of `graph` and returns every frame up to and including its
/// `network:stopped`.
async fn run(c: &mut Client, graph: &str) -> Vec<Value> {
    c.send("network", "start", json!({ "graph": graph })).await;
    c.until_stopped(graph).await
}

/// The `network:status` of `graph`.
async fn status(c: &mut Client, graph: &str) -> Value {
    c.request("network", "getstatus", json!({ "graph": graph }), "status")
        .await
}

/// The `id`s of the `network:data` frames.
fn data_edges(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["protocol"] == "network" && f["command"] == "data")
        .map(|f| f["payload"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// Graph `g`, main: a Repeat `r` with its `in` and `out` exported as `in` and `out`.
async fn exported_repeat(c: &mut Client) {
    c.clear("g", true).await;
    c.add_node("g", "r", "core/Repeat").await;
    c.export("g", "addinport", "in", ("r", "in")).await;
    c.export("g", "addoutport", "out", ("r", "out")).await;
    // The main graph's new ports follow each export; the last one is still waiting.
    let ports = c.expect("runtime", "ports").await;
    assert_eq!(ports["outPorts"][0]["id"], "out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_packets_comes_out_whole_and_in_order() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    exported_repeat(&mut c).await;
    c.request("network", "start", json!({"graph": "g"}), "started")
        .await;
    const BURST: u64 = 500;
    for n in 0..BURST {
        let packet = json!({"graph": "g", "port": "in", "event": "data", "payload": n});
        c.send("runtime", "packet", packet).await;
    }
    let mut sent = 0;
    let mut out = Vec::new();
    while sent < BURST || (out.len() as u64) < BURST {
        let frame = c.next().await.unwrap_or_else(|| {
            panic!(
                "{sent} packetsent and {} packets out, then silence",
                out.len()
            )
        });
        match frame["command"].as_str() {
            Some("packetsent") => sent += 1,
            Some("packet") => out.push(frame["payload"]["payload"].as_u64().unwrap()),
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(out, (0..BURST).collect::<Vec<_>>());
    c.request("network", "stop", json!({"graph": "g"}), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_ports_follow_renames_and_removals_while_running() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    exported_repeat(&mut c).await;
    c.request("network", "start", json!({"graph": "g"}), "started")
        .await;
    let packet =
        |port: &str, n: u64| json!({"graph": "g", "port": port, "event": "data", "payload": n});

    c.edit(
        "renameinport",
        json!({"graph": "g", "from": "in", "to": "input"}),
    )
    .await;
    c.edit(
        "renameoutport",
        json!({"graph": "g", "from": "out", "to": "output"}),
    )
    .await;
    c.request("runtime", "packet", packet("input", 1), "packetsent")
        .await;
    let out = c.expect("runtime", "packet").await;
    assert_eq!(
        (&out["port"], &out["payload"]),
        (&json!("output"), &json!(1)),
        "{out}"
    );
    c.send("runtime", "packet", packet("in", 2)).await;
    let refused = c.expect("runtime", "error").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no exported inport 'in'"),
        "the old name is gone: {refused}"
    );

    // A new export is wired at the next start, and the client is told so.
    c.export("g", "addoutport", "copy", ("r", "out")).await;
    let error = c.expect("network", "error").await;
    assert!(
        error["message"].as_str().unwrap().contains("next start"),
        "{error}"
    );

    // A removed outport is no longer reported; a removed inport takes no packets.
    c.edit("removeoutport", json!({"graph": "g", "public": "output"}))
        .await;
    c.request("runtime", "packet", packet("input", 3), "packetsent")
        .await;
    while let Some(frame) = c.next_within(Duration::from_millis(200)).await {
        assert_ne!(
            frame["command"], "packet",
            "a removed outport is reported: {frame}"
        );
    }
    c.edit("removeinport", json!({"graph": "g", "public": "input"}))
        .await;
    c.send("runtime", "packet", packet("input", 4)).await;
    let refused = c.expect("runtime", "error").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no exported inport 'input'"),
        "{refused}"
    );
    c.request("network", "stop", json!({"graph": "g"}), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_go_in_through_an_exported_inport_and_come_out_of_the_outport() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let mut watcher = server.client().await;
    exported_repeat(&mut c).await;

    // Not running yet: refused.
    let refused = c
        .ask(
            "runtime",
            "packet",
            json!({"graph": "g", "port": "in", "event": "data", "payload": "early"}),
        )
        .await;
    assert_eq!(refused["command"], "error", "{refused}");
    assert!(
        refused["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("not running"),
        "{refused}"
    );

    let started = c
        .request("network", "start", json!({"graph": "g"}), "started")
        .await;
    assert_eq!(started["running"], true);

    for (event, payload) in [
        ("begingroup", json!("batch")),
        ("data", json!("hello")),
        ("data", json!({"n": 1, "list": [1, 2]})),
        ("data", json!(3.5)),
        ("endgroup", json!("batch")),
    ] {
        let packet = json!({"graph": "g", "port": "in", "event": event, "payload": payload});
        c.send("runtime", "packet", packet.clone()).await;
        let sent = c.next().await.expect("packetsent");
        assert_eq!(
            sent,
            json!({"protocol": "runtime", "command": "packetsent", "payload": packet})
        );
        let out = json!({"protocol": "runtime", "command": "packet",
            "payload": {"port": "out", "event": event, "graph": "g", "payload": payload}});
        assert_eq!(c.next().await.expect("the packet out"), out);
        // Every client allowed to receive runtime packets sees it; no network:data for the
        // edges to and from the outside.
        assert_eq!(watcher.expect("runtime", "packet").await, out["payload"]);
    }
    // connect and disconnect are acknowledged and carry nothing through.
    for event in ["connect", "disconnect"] {
        let packet = json!({"graph": "g", "port": "in", "event": event});
        let sent = c
            .request("runtime", "packet", packet.clone(), "packetsent")
            .await;
        assert_eq!(sent, packet);
    }
    c.assert_silent(Duration::from_millis(150)).await;

    c.request("network", "stop", json!({"graph": "g"}), "stopped")
        .await;
    let after = c
        .ask(
            "runtime",
            "packet",
            json!({"graph": "g", "port": "in", "event": "data", "payload": "late"}),
        )
        .await;
    assert_eq!(after["command"], "error", "{after}");
}

fn repeat_port(id: &str, description: &str) -> Value {
    json!({"id": id, "type": "all", "description": description, "addressable": false, "required": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_ports_describe_the_main_graph_and_follow_its_exports() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let mut watcher = server.client().await;

    // No main graph: runtime:runtime only, without `graph`.
    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    assert!(runtime["payload"].get("graph").is_none(), "{runtime}");
    c.assert_silent(Duration::from_millis(100)).await;

    c.send("graph", "clear", json!({"id": "g", "main": true}))
        .await;
    assert_eq!(c.next().await.unwrap()["command"], "clear");
    let empty = json!({"protocol": "runtime", "command": "ports",
        "payload": {"graph": "g", "inPorts": [], "outPorts": []}});
    assert_eq!(c.next().await.unwrap(), empty);
    assert_eq!(watcher.expect("runtime", "ports").await, empty["payload"]);
    c.add_node("g", "r", "core/Repeat").await;

    c.send(
        "graph",
        "addinport",
        json!({"public": "in", "node": "r", "port": "in", "graph": "g"}),
    )
    .await;
    assert_eq!(c.next().await.unwrap()["command"], "addinport");
    let ports = c.next().await.unwrap();
    let expected =
        json!({"graph": "g", "inPorts": [repeat_port("in", "Packets to forward")], "outPorts": []});
    assert_eq!(ports["command"], "ports", "{ports}");
    assert_eq!(ports["payload"], expected);
    assert_eq!(watcher.expect("runtime", "ports").await, expected);

    c.export("g", "addoutport", "result", ("r", "out")).await;
    let expected = json!({"graph": "g",
        "inPorts": [repeat_port("in", "Packets to forward")],
        "outPorts": [repeat_port("result", "The same packets")]});
    assert_eq!(c.expect("runtime", "ports").await, expected);

    // getruntime: runtime:runtime naming the main graph, then its ports.
    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    assert_eq!(runtime["command"], "runtime");
    assert_eq!(runtime["payload"]["graph"], "g");
    let ports = c.next().await.unwrap();
    assert_eq!(
        ports,
        json!({"protocol": "runtime", "command": "ports", "payload": expected})
    );

    // Renaming and removing exports of the main graph announce the new ports.
    c.edit(
        "renameinport",
        json!({"from": "in", "to": "input", "graph": "g"}),
    )
    .await;
    let ports = c.expect("runtime", "ports").await;
    assert_eq!(ports["inPorts"][0]["id"], "input");
    c.edit("removeoutport", json!({"public": "result", "graph": "g"}))
        .await;
    let ports = c.expect("runtime", "ports").await;
    assert_eq!(ports["outPorts"], json!([]));

    // Edits that do not touch the exports, and exports of other graphs, announce nothing.
    c.edit(
        "changenode",
        json!({"id": "r", "metadata": {"x": 5}, "graph": "g"}),
    )
    .await;
    c.clear("other", false).await;
    c.add_node("other", "r", "core/Repeat").await;
    c.export("other", "addinport", "in", ("r", "in")).await;
    // (`other` is a component, whose news may come; no ports do.)
    while let Some(frame) = c.next_within(Duration::from_millis(150)).await {
        assert_ne!(frame["command"], "ports", "{frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_exported_node_of_the_main_graph_announces_the_new_ports() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    exported_repeat(&mut c).await;
    c.edit("removenode", json!({"id": "r", "graph": "g"})).await;
    assert!(
        Runtime::lock(&server.runtime)
            .graph("g")
            .unwrap()
            .inports
            .is_empty()
    );
    let ports = c.expect("runtime", "ports").await;
    assert_eq!(ports, json!({"graph": "g", "inPorts": [], "outPorts": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_process_is_a_processerror_and_the_rest_finishes() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("g", false).await;
    c.add_node("g", "f", "core/Filter").await;
    c.add_node("g", "d", "core/Drop").await;
    c.add_edge("g", ("f", "out"), ("d", "in")).await;
    c.add_iip("g", json!("(unclosed"), ("f", "pattern")).await;
    c.add_iip("g", json!("x"), ("f", "in")).await;

    let frames = run(&mut c, "g").await;
    let errors: Vec<&Value> = frames
        .iter()
        .filter(|f| f["command"] == "processerror")
        .collect();
    assert_eq!(errors.len(), 1, "{frames:#?}");
    let error = &errors[0]["payload"];
    assert_eq!(error["id"], "f");
    assert_eq!(error["graph"], "g");
    assert!(
        error["error"].as_str().unwrap().contains("(unclosed"),
        "{error}"
    );
    assert_eq!(
        error.as_object().unwrap().len(),
        3,
        "id, error, graph: {error}"
    );
    assert!(
        !commands(&frames).contains(&"network:error".to_string()),
        "{frames:#?}"
    );
    let stopped = &frames.last().unwrap()["payload"];
    assert_eq!(stopped["started"], true);
    assert_eq!(stopped["running"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_runs_only_the_programs_the_operator_allowed() {
    async fn exec_graph(c: &mut Client, script: &str) {
        c.clear("g", false).await;
        c.add_node("g", "x", "core/Exec").await;
        c.add_node("g", "show", "core/Output").await;
        c.add_edge("g", ("x", "out"), ("show", "in")).await;
        c.add_iip("g", json!("sh"), ("x", "program")).await;
        c.add_iip("g", json!(["-c", script]), ("x", "args")).await;
        c.add_iip("g", json!("hello"), ("x", "in")).await;
    }
    let script = "echo working >&2; tr a-z A-Z";

    // Without --allow-exec: a process error naming the flag, and nothing runs.
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    exec_graph(&mut c, script).await;
    let frames = run(&mut c, "g").await;
    let errors: Vec<&Value> = frames
        .iter()
        .filter(|f| f["command"] == "processerror")
        .collect();
    assert_eq!(errors.len(), 1, "{frames:#?}");
    assert!(
        errors[0]["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("--allow-exec"),
        "{frames:#?}"
    );
    assert!(
        !frames.iter().any(|f| f["command"] == "output"),
        "{frames:#?}"
    );

    // Allowed: stdout comes back as packets, stderr as output.
    let registry = flowd::Registry::with_core();
    flowd::component::exec::register(
        &registry,
        flowd::component::AllowList::allowing([common::which("sh"), common::which("tr")]),
    );
    let server = TestServer::start_with(
        config(),
        flowd::server::ServerConfig::default(),
        std::sync::Arc::new(registry),
    )
    .await;
    let mut c = server.client().await;
    exec_graph(&mut c, script).await;
    let frames = run(&mut c, "g").await;
    let output: Vec<&str> = frames
        .iter()
        .filter(|f| f["command"] == "output")
        .filter_map(|f| f["payload"]["message"].as_str())
        .collect();
    assert!(output.contains(&"working"), "{frames:#?}");
    assert!(output.contains(&"HELLO"), "{frames:#?}");
    assert!(
        !frames.iter().any(|f| f["command"] == "processerror"),
        "{frames:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_output_is_reported_as_network_output() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("g", false).await;
    c.add_node("g", "o", "core/Output").await;
    c.add_iip("g", json!("hello, user"), ("o", "in")).await;
    c.add_iip("g", json!({"k": [1]}), ("o", "in")).await;
    let frames = run(&mut c, "g").await;
    let outputs: Vec<&Value> = frames
        .iter()
        .filter(|f| f["command"] == "output")
        .map(|f| &f["payload"])
        .collect();
    assert_eq!(
        outputs,
        [
            &json!({"message": "hello, user", "type": "message"}),
            &json!({"message": "{\"k\":[1]}", "type": "message"})
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_that_cannot_start_is_a_network_error_to_the_requester() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let mut watcher = server.client().await;
    c.clear("g", false).await;
    c.add_node("g", "f", "core/Filter").await;
    c.add_node("g", "d", "core/Drop").await;
    c.add_edge("g", ("f", "out"), ("d", "in")).await;
    c.add_iip("g", json!("x"), ("f", "in")).await;
    // Let the watcher catch up with the edits (as a component, `g` was announced when it was
    // cleared; with `f`'s required `pattern` unconnected it is not a valid one since).
    watcher.expect("graph", "addinitial").await;

    let answer = c.ask("network", "start", json!({"graph": "g"})).await;
    assert_eq!(answer["protocol"], "network", "{answer}");
    assert_eq!(answer["command"], "error", "{answer}");
    let message = answer["payload"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot start the network of graph 'g'"),
        "{message}"
    );
    assert!(
        message.contains("process 'f': required inport 'pattern' of core/Filter is not connected"),
        "{message}"
    );
    c.assert_silent(Duration::from_millis(150)).await;
    watcher.assert_silent(Duration::from_millis(50)).await;
    assert_eq!(
        status(&mut c, "g").await,
        json!({"graph": "g", "running": false, "started": false})
    );

    // Once the port is fed, the same graph starts.
    c.add_iip("g", json!("x"), ("f", "pattern")).await;
    let started = c
        .request("network", "start", json!({"graph": "g"}), "started")
        .await;
    assert_eq!(started["started"], true);
    c.until_stopped("g").await;
}

/// Graph `g`: IIP -> a -> b -> c (Repeat, Repeat, Drop).
async fn chain(c: &mut Client) {
    c.clear("g", false).await;
    c.add_node("g", "a", "core/Repeat").await;
    c.add_node("g", "b", "core/Repeat").await;
    c.add_node("g", "c", "core/Drop").await;
    c.add_edge("g", ("a", "out"), ("b", "in")).await;
    c.add_edge("g", ("b", "out"), ("c", "in")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_edges_selects_the_edges_whose_data_is_shown() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    chain(&mut c).await;
    c.export("g", "addinport", "in", ("a", "in")).await;
    c.request("network", "start", json!({"graph": "g"}), "started")
        .await;
    let send = |text: &str| json!({"graph": "g", "port": "in", "event": "data", "payload": text});

    // Every edge by default.
    c.request("runtime", "packet", send("one"), "packetsent")
        .await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let data = c.expect("network", "data").await;
        seen.push((data["id"].clone(), data["data"].clone()));
    }
    assert_eq!(
        seen,
        [
            (json!("a() OUT -> IN b()"), json!("one")),
            (json!("b() OUT -> IN c()"), json!("one"))
        ]
    );

    // Only b -> c (ports are matched without case).
    let selection = json!({"graph": "g", "edges": [
        {"src": {"node": "b", "port": "OUT"}, "tgt": {"node": "c", "port": "in"}}]});
    let echo = c
        .request("network", "edges", selection.clone(), "edges")
        .await;
    assert_eq!(echo, selection);
    c.request("runtime", "packet", send("two"), "packetsent")
        .await;
    let data = c.expect("network", "data").await;
    assert_eq!(data["id"], "b() OUT -> IN c()");
    assert_eq!(data["data"], "two");
    c.assert_silent(Duration::from_millis(150)).await;

    // An empty selection shows every edge again.
    c.request(
        "network",
        "edges",
        json!({"graph": "g", "edges": []}),
        "edges",
    )
    .await;
    c.request("runtime", "packet", send("three"), "packetsent")
        .await;
    let first = c.expect("network", "data").await;
    let second = c.expect("network", "data").await;
    assert_eq!(first["id"], "a() OUT -> IN b()");
    assert_eq!(second["id"], "b() OUT -> IN c()");
    c.request("network", "stop", json!({"graph": "g"}), "stopped")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_made_before_start_applies_from_the_first_packet() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    chain(&mut c).await;
    c.add_iip("g", json!("first"), ("a", "in")).await;
    let selection = json!({"graph": "g", "edges": [
        {"src": {"node": "b", "port": "out"}, "tgt": {"node": "c", "port": "in"}}]});
    c.request("network", "edges", selection, "edges").await;
    // Many runs: the first packets race the start (about one run in ten leaked before).
    for _ in 0..50 {
        let frames = run(&mut c, "g").await;
        let edges: Vec<String> = data_edges(&frames)
            .into_iter()
            .filter(|id| !id.starts_with("DATA -> "))
            .collect();
        assert_eq!(edges, ["b() OUT -> IN c()"], "{frames:#?}");
    }
}

/// `graph:changeedge` of the chain's `a -> b`, with `secure` as its `secure` metadata (`null`
/// removes it).
async fn mark_secure(c: &mut Client, secure: Value) {
    c.edit(
        "changeedge",
        json!({"src": {"node": "a", "port": "out"}, "tgt": {"node": "b", "port": "in"},
            "metadata": {"secure": secure}, "graph": "g"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_edges_show_data_as_a_placeholder() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    chain(&mut c).await;
    c.add_iip("g", json!("password"), ("a", "in")).await;
    mark_secure(&mut c, json!(true)).await;
    let frames = run(&mut c, "g").await;
    let data: Vec<(String, Value)> = frames
        .iter()
        .filter(|f| f["command"] == "data")
        .map(|f| {
            (
                f["payload"]["id"].as_str().unwrap().to_string(),
                f["payload"]["data"].clone(),
            )
        })
        .collect();
    assert!(
        data.contains(&("a() OUT -> IN b()".to_string(), json!("DATA"))),
        "{data:?}"
    );
    assert!(
        data.contains(&("b() OUT -> IN c()".to_string(), json!("password"))),
        "{data:?}"
    );

    // Turned off again, the data shows.
    mark_secure(&mut c, json!(null)).await;
    let frames = run(&mut c, "g").await;
    let shown = frames
        .iter()
        .find(|f| f["command"] == "data" && f["payload"]["id"] == "a() OUT -> IN b()")
        .expect("data on a -> b");
    assert_eq!(shown["payload"]["data"], "password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_source_becomes_a_subgraph_component_that_runs() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let mut watcher = server.client().await;

    let twice = json!({
        "properties": {"name": "Twice", "description": "Repeats twice"},
        "processes": {"a": {"component": "core/Repeat"}, "b": {"component": "core/Repeat"}},
        "connections": [{"src": {"process": "a", "port": "out"}, "tgt": {"process": "b", "port": "in"}}],
        "inports": {"in": {"process": "a", "port": "in"}},
        "outports": {"out": {"process": "b", "port": "out"}}
    });
    c.send(
        "component",
        "source",
        json!({"name": "Twice", "language": "json", "code": twice.to_string()}),
    )
    .await;
    let component = c.next().await.expect("component:component");
    assert_eq!(component["command"], "component", "{component}");
    let component = &component["payload"];
    assert_eq!(component["name"], "flowd/Twice");
    assert_eq!(component["subgraph"], true);
    assert_eq!(component["description"], "Repeats twice");
    assert_eq!(component["inPorts"][0]["id"], "in");
    assert_eq!(component["outPorts"][0]["id"], "out");
    assert_eq!(&watcher.expect("component", "component").await, component);

    let fbp =
        "INPORT=Up.IN:IN\nOUTPORT=Down.OUT:OUT\nUp(core/Repeat) OUT -> IN Down(core/Repeat)\n";
    let shout = c
        .request(
            "component",
            "source",
            json!({"name": "Shout", "language": "fbp", "library": "mylib", "code": fbp}),
            "component",
        )
        .await;
    assert_eq!(shout["name"], "mylib/Shout");
    assert_eq!(shout["subgraph"], true);
    assert_eq!(shout["inPorts"][0]["id"], "in");
    assert_eq!(shout["outPorts"][0]["id"], "out");

    // Both are listed as subgraphs.
    c.send("component", "list", json!({})).await;
    let mut subgraphs = Vec::new();
    loop {
        let frame = c.next().await.expect("component list");
        if frame["command"] == "componentsready" {
            break;
        }
        if frame["payload"]["subgraph"] == true {
            subgraphs.push(frame["payload"]["name"].as_str().unwrap().to_string());
        }
    }
    subgraphs.sort();
    assert_eq!(subgraphs, ["flowd/Twice", "mylib/Shout"]);

    // A graph using both runs, and its packets flow through them.
    c.clear("g", false).await;
    c.add_node("g", "t", "flowd/Twice").await;
    c.add_node("g", "s", "mylib/Shout").await;
    c.add_node("g", "o", "core/Output").await;
    c.add_edge("g", ("t", "out"), ("s", "in")).await;
    c.add_edge("g", ("s", "out"), ("o", "in")).await;
    c.add_iip("g", json!("through two subgraphs"), ("t", "in"))
        .await;
    let frames = run(&mut c, "g").await;
    let outputs: Vec<&Value> = frames
        .iter()
        .filter(|f| f["command"] == "output")
        .map(|f| &f["payload"]["message"])
        .collect();
    assert_eq!(outputs, [&json!("through two subgraphs")], "{frames:#?}");
    assert!(
        !commands(&frames)
            .iter()
            .any(|c| c.ends_with(":error") || c.ends_with("processerror")),
        "{frames:#?}"
    );

    // The registered subgraph's source can be read back.
    let source = c
        .request(
            "component",
            "getsource",
            json!({"name": "flowd/Twice"}),
            "source",
        )
        .await;
    assert_eq!(source["name"], "Twice");
    assert_eq!(source["library"], "flowd");
    assert_eq!(source["language"], "json");
    let code: Value = serde_json::from_str(source["code"].as_str().unwrap()).unwrap();
    assert_eq!(code["processes"]["a"]["component"], "core/Repeat");
    assert_eq!(code["outports"]["out"]["process"], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subgraph_source_that_does_not_validate_is_refused() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let before = Runtime::lock(&server.runtime).registry().len();
    for (language, code, expected) in [
        (
            "json",
            json!({"processes": {"a": {"component": "core/Nope"}}}).to_string(),
            "core/Nope",
        ),
        (
            "fbp",
            "A(core/Repeat) OUT -> IN".to_string(),
            "graph 'flowd/Bad'",
        ),
    ] {
        let answer = c
            .ask(
                "component",
                "source",
                json!({"name": "Bad", "language": language, "code": code}),
            )
            .await;
        assert_eq!(answer["command"], "error", "{answer}");
        let message = answer["payload"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(Runtime::lock(&server.runtime).registry().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subgraph_cannot_take_a_core_name() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let code = json!({"processes": {"a": {"component": "core/Drop"}}}).to_string();
    for (name, library, expected) in [
        ("Repeat", "core", "'core/Repeat', which is reserved"),
        ("CORE/Count", "x", "'CORE/Count', which is reserved"),
        (
            "Exec",
            "core",
            "'core/Exec', which is reserved for flowd's core components",
        ),
    ] {
        let answer = c
            .ask(
                "component",
                "source",
                json!({"name": name, "library": library, "language": "json", "code": code}),
            )
            .await;
        assert_eq!(answer["command"], "error", "{answer}");
        let message = answer["payload"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    let registry = Runtime::lock(&server.runtime).registry().clone();
    assert!(!registry.spec("core/Repeat").unwrap().subgraph);
    assert!(registry.spec("CORE/Count").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getsource_serves_graphs_by_id_and_by_namespace() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.edit(
        "clear",
        json!({"id": "hello", "name": "Hello", "main": true}),
    )
    .await;
    c.add_node("hello", "say", "core/Repeat").await;
    c.add_iip("hello", json!("hi"), ("say", "in")).await;

    for name in ["hello", "flowd/hello"] {
        let answer = c.ask("component", "getsource", json!({"name": name})).await;
        assert_eq!(answer["command"], "source", "{name}: {answer}");
        let source = &answer["payload"];
        assert_eq!(source["name"], "hello", "{name}");
        assert_eq!(source["library"], "flowd", "{name}");
        assert_eq!(source["language"], "json", "{name}");
        let code: Value = serde_json::from_str(source["code"].as_str().unwrap()).unwrap();
        assert_eq!(code["properties"]["name"], "Hello");
        assert_eq!(code["processes"]["say"]["component"], "core/Repeat");
        assert_eq!(code["connections"][0]["data"], "hi");
        // It reads back as the same graph.
        let graph = flowd::Graph::from_json(source["code"].as_str().unwrap()).unwrap();
        let runtime = Runtime::lock(&server.runtime);
        assert_eq!(&graph, runtime.graph("hello").unwrap());
    }

    // A core component shows its Rust source, never an error (noflo-ui makes an error a
    // full-page one).
    let answer = c
        .ask("component", "getsource", json!({"name": "core/Repeat"}))
        .await;
    assert_eq!(answer["command"], "source", "{answer}");
    assert_eq!(answer["payload"]["name"], "Repeat");
    assert_eq!(answer["payload"]["library"], "core");
    assert_eq!(answer["payload"]["language"], "rust");
    let code = answer["payload"]["code"].as_str().unwrap();
    assert!(code.contains("impl Component for Repeat"), "{code}");

    for (name, expected) in [
        ("other/hello", "no component or graph named 'other/hello'"),
        ("nothing", "no component or graph named 'nothing'"),
    ] {
        let answer = c.ask("component", "getsource", json!({"name": name})).await;
        assert_eq!(
            answer,
            json!({"protocol": "component", "command": "error", "payload": {"message": expected}})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_record_dump_clear_and_stop() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    chain(&mut c).await;
    c.add_iip("g", json!("traced"), ("a", "in")).await;

    let started = c
        .ask("trace", "start", json!({"graph": "g", "buffersize": 65536}))
        .await;
    assert_eq!(
        started,
        json!({"protocol": "trace", "command": "start", "payload": {"graph": "g", "buffersize": 65536}})
    );
    run(&mut c, "g").await;

    let flowtrace = dump_events(&mut c).await;
    assert_eq!(flowtrace["header"]["main"], "g");
    assert_eq!(flowtrace["header"]["runtime"], config().id.as_str());
    assert_eq!(
        flowtrace["header"]["graphs"]["g"]["processes"]["a"]["component"],
        "core/Repeat"
    );
    let events = flowtrace["events"].as_array().unwrap();
    let names = commands(events);
    assert_eq!(
        names.first().map(String::as_str),
        Some("network:started"),
        "{names:?}"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("network:stopped"),
        "{names:?}"
    );
    let data: Vec<&Value> = events
        .iter()
        .filter(|e| e["command"] == "data")
        .map(|e| &e["payload"]["id"])
        .collect();
    assert_eq!(
        data,
        [
            &json!("DATA -> IN a()"),
            &json!("a() OUT -> IN b()"),
            &json!("b() OUT -> IN c()")
        ]
    );
    assert!(events.iter().all(|e| e["time"].is_string()), "{events:?}");

    // Clear empties it.
    assert_eq!(
        c.ask("trace", "clear", json!({"graph": "g"})).await,
        json!({"protocol": "trace", "command": "clear", "payload": {"graph": "g"}})
    );
    assert_eq!(dump_events(&mut c).await["events"], json!([]));

    // Stopped, it records nothing more.
    assert_eq!(
        c.ask("trace", "stop", json!({"graph": "g"})).await,
        json!({"protocol": "trace", "command": "stop", "payload": {"graph": "g"}})
    );
    run(&mut c, "g").await;
    assert_eq!(dump_events(&mut c).await["events"], json!([]));

    // Started again, it records again.
    c.request("trace", "start", json!({"graph": "g"}), "start")
        .await;
    run(&mut c, "g").await;
    let events = dump_events(&mut c).await["events"]
        .as_array()
        .unwrap()
        .len();
    assert!(events >= 5, "{events}");

    // An unknown graph.
    let missing = c.ask("trace", "start", json!({"graph": "nope"})).await;
    assert_eq!(
        missing,
        json!({"protocol": "trace", "command": "error", "payload": {"message": "Requested graph not found"}})
    );
}

/// `trace:dump` of graph `g`, its flowtrace parsed.
async fn dump_events(c: &mut Client) -> Value {
    let dump = c
        .ask(
            "trace",
            "dump",
            json!({"graph": "g", "type": "flowtrace.json"}),
        )
        .await;
    assert_eq!(dump["command"], "dump", "{dump}");
    assert_eq!(dump["payload"]["graph"], "g");
    assert_eq!(dump["payload"]["type"], "flowtrace.json");
    let text = dump["payload"]["flowtrace"]
        .as_str()
        .expect("flowtrace is a string");
    serde_json::from_str(text).expect("flowtrace is JSON text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_of_a_network_never_started_answers_stopped() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let mut watcher = server.client().await;
    c.clear("g", false).await;
    watcher.expect("graph", "clear").await;
    c.send("network", "stop", json!({"graph": "g"})).await;
    let stopped = c.expect("network", "stopped").await;
    let payload = stopped.as_object().unwrap();
    let mut keys: Vec<&str> = payload.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["graph", "running", "started", "time", "uptime"]);
    assert_eq!(payload["graph"], "g");
    assert_eq!(payload["running"], false);
    assert_eq!(payload["started"], false);
    assert!(payload["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(payload["uptime"].as_f64(), Some(0.0));
    assert_eq!(watcher.expect("network", "stopped").await["graph"], "g");
    assert_eq!(
        status(&mut c, "g").await,
        json!({"graph": "g", "running": false, "started": false})
    );
    // Of an unknown graph: an error.
    let missing = c.ask("network", "stop", json!({"graph": "nope"})).await;
    assert_eq!(
        missing["payload"],
        json!({"message": "Requested graph not found"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_running_network_again_keeps_the_one_network() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    exported_repeat(&mut c).await;
    for _ in 0..2 {
        let started = c
            .request("network", "start", json!({"graph": "g"}), "started")
            .await;
        assert_eq!(started["started"], true);
        assert_eq!(started["running"], true);
    }
    assert_eq!(
        status(&mut c, "g").await,
        json!({"graph": "g", "running": true, "started": true})
    );
    // network:debug has no answer (strict clients would reject any).
    c.send("network", "debug", json!({"graph": "g", "enable": true}))
        .await;
    c.assert_silent(Duration::from_millis(150)).await;
    // One packet in, one packet out: not two networks.
    c.request(
        "runtime",
        "packet",
        json!({"graph": "g", "port": "in", "event": "data", "payload": "once"}),
        "packetsent",
    )
    .await;
    let out = c.expect("runtime", "packet").await;
    assert_eq!(out["payload"], "once");
    c.assert_silent(Duration::from_millis(200)).await;

    let stopped = c
        .request("network", "stop", json!({"graph": "g"}), "stopped")
        .await;
    assert_eq!(stopped["started"], false);
    // A second stop answers stopped too.
    let stopped = c
        .request("network", "stop", json!({"graph": "g"}), "stopped")
        .await;
    assert_eq!(stopped["started"], false);
    assert_eq!(
        status(&mut c, "g").await,
        json!({"graph": "g", "running": false, "started": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_answers_carry_the_request_id() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    exported_repeat(&mut c).await;
    let mut seen = Vec::new();
    for (command, answer, id) in [
        ("start", "started", "s-1"),
        ("getstatus", "status", "s-2"),
        ("stop", "stopped", "s-3"),
    ] {
        let frame = json!({"protocol": "network", "command": command, "requestId": id,
            "payload": {"graph": "g"}});
        c.send_text(frame.to_string()).await;
        let reply = c.next().await.expect("an answer");
        assert_eq!(reply["command"], answer, "{reply}");
        seen.push((command, reply.get("responseTo").cloned()));
    }
    assert_eq!(
        seen,
        [
            ("start", Some(json!("s-1"))),
            ("getstatus", Some(json!("s-2"))),
            ("stop", Some(json!("s-3")))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_graphs_name_their_environment_and_keep_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.json");
    std::fs::write(
        &file,
        r#"{"properties": {"name": "mine", "environment": {"type": "noflo-nodejs", "x": 1}},
            "processes": {}, "connections": []}"#,
    )
    .unwrap();
    let server = TestServer::start(flowd::runtime::RuntimeConfig {
        main_file: Some(file),
        ..config()
    })
    .await;
    Runtime::lock(&server.runtime)
        .load_main_file()
        .expect("the graph loads");
    let mut c = server.client().await;
    c.clear("fresh", false).await;
    // noflo-ui reads a graph's environment from its source when it opens it.
    for (graph, environment) in [
        ("fresh", json!({"type": "flowd"})),
        ("mine", json!({"type": "noflo-nodejs", "x": 1})),
    ] {
        let source = c
            .request("component", "getsource", json!({"name": graph}), "source")
            .await;
        let code: Value = serde_json::from_str(source["code"].as_str().unwrap()).unwrap();
        assert_eq!(code["properties"]["environment"], environment, "{graph}");
    }
}

//! What noflo-ui 0.29.1 sends, replayed frame by frame over a real WebSocket: the sequences
//! come from its source (tag 0.29.1, commit 758d762a: `components/SendSubgraph.js`,
//! `components/SendNewGraph.js`, `elements/noflo-node-inspector.js`, and fbp-client 0.4.3,
//! which sends each command once the previous one is answered).

mod common;

use common::protocol::{Client, TestServer, config};
use serde_json::{Value, json};

/// `graph:<command>` with `payload` in `graph`, answered by its echo.
async fn send(c: &mut Client, graph: &str, command: &str, mut payload: Value) -> Value {
    payload["graph"] = json!(graph);
    c.edit(command, payload).await
}

/// The names `component:list` gives, in order.
async fn component_names(c: &mut Client) -> Vec<String> {
    c.send("component", "list", json!({})).await;
    let mut names = Vec::new();
    loop {
        let frame = c.next().await.expect("component list");
        if frame["command"] == "componentsready" {
            return names;
        }
        if frame["command"] == "component" {
            names.push(
                frame["payload"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
}

fn edge(src: (&str, &str), tgt: (&str, &str)) -> Value {
    json!({"src": {"node": src.0, "port": src.1}, "tgt": {"node": tgt.0, "port": tgt.1}})
}

/// Main graph `main`: 'x' -> src(Repeat) -> a(Repeat) -> b(Repeat) -> show(Output).
async fn main_graph(c: &mut Client) {
    c.clear("main", true).await;
    for (id, component) in [
        ("src", "core/Repeat"),
        ("a", "core/Repeat"),
        ("b", "core/Repeat"),
        ("show", "core/Output"),
    ] {
        send(
            c,
            "main",
            "addnode",
            json!({"id": id, "component": component, "metadata": {"x": 10, "y": 20}}),
        )
        .await;
    }
    for (src, tgt) in [("src", "a"), ("a", "b"), ("b", "show")] {
        send(c, "main", "addedge", edge((src, "out"), (tgt, "in"))).await;
    }
    c.add_iip("main", json!("x"), ("src", "in")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_a_subgraph_of_selected_nodes_loses_nothing_and_runs() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let mut watcher = server.client().await;
    main_graph(&mut c).await;

    // The new graph (SendSubgraph.js → fbp-client graph.send): clear, nodes, edges, exports.
    let sub = "flowd/Sub";
    c.edit(
        "clear",
        json!({"id": sub, "name": sub, "library": "flowd", "main": false, "icon": "cog",
            "description": ""}),
    )
    .await;
    for id in ["a", "b"] {
        send(
            &mut c,
            sub,
            "addnode",
            json!({"id": id, "component": "core/Repeat", "metadata": {"x": 10, "y": 20}}),
        )
        .await;
    }
    send(&mut c, sub, "addedge", edge(("a", "out"), ("b", "in"))).await;
    send(
        &mut c,
        sub,
        "addinport",
        json!({"public": "in", "node": "a", "port": "in"}),
    )
    .await;
    send(
        &mut c,
        sub,
        "addoutport",
        json!({"public": "out", "node": "b", "port": "out"}),
    )
    .await;

    // Every client learns of the component, with the ports the exports made.
    let announced = loop {
        let component = watcher.expect("component", "component").await;
        if component["outPorts"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
        {
            break component;
        }
    };
    assert_eq!(announced["name"], sub);
    assert_eq!(announced["subgraph"], true);
    assert_eq!(announced["inPorts"][0]["id"], "in");

    // The parent, in one transaction: the subgraph node, the boundary edges, then the
    // selected nodes go (edges, metadata cleared, node).
    let node = "project/Sub";
    let added = send(
        &mut c,
        "main",
        "addnode",
        json!({"id": node, "component": sub, "metadata": {"label": "Sub", "x": 10, "y": 20}}),
    )
    .await;
    assert_eq!(added["component"], sub, "{added}");
    send(
        &mut c,
        "main",
        "addedge",
        edge(("src", "out"), (node, "in")),
    )
    .await;
    send(
        &mut c,
        "main",
        "addedge",
        edge((node, "out"), ("show", "in")),
    )
    .await;
    send(
        &mut c,
        "main",
        "removeedge",
        edge(("src", "out"), ("a", "in")),
    )
    .await;
    send(
        &mut c,
        "main",
        "removeedge",
        edge(("a", "out"), ("b", "in")),
    )
    .await;
    send(
        &mut c,
        "main",
        "changenode",
        json!({"id": "a", "metadata": {}}),
    )
    .await;
    send(&mut c, "main", "removenode", json!({"id": "a"})).await;
    send(
        &mut c,
        "main",
        "removeedge",
        edge(("b", "out"), ("show", "in")),
    )
    .await;
    send(
        &mut c,
        "main",
        "changenode",
        json!({"id": "b", "metadata": {}}),
    )
    .await;
    send(&mut c, "main", "removenode", json!({"id": "b"})).await;

    // Nothing is lost: the parent holds the subgraph node, the subgraph the two nodes.
    for (graph, nodes) in [("main", vec!["src", "show", node]), (sub, vec!["a", "b"])] {
        let source = c
            .request("component", "getsource", json!({"name": graph}), "source")
            .await;
        let code: Value = serde_json::from_str(source["code"].as_str().unwrap()).unwrap();
        let mut held: Vec<&str> = code["processes"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        held.sort();
        let mut expected = nodes.clone();
        expected.sort();
        assert_eq!(held, expected, "{graph}: {code}");
    }

    // And it runs: the IIP goes through the subgraph.
    c.send("network", "start", json!({"graph": "main"})).await;
    let frames = c.until_stopped("main").await;
    let outputs: Vec<&Value> = frames
        .iter()
        .filter(|f| f["command"] == "output")
        .map(|f| &f["payload"]["message"])
        .collect();
    assert_eq!(outputs, [&json!("x")], "{frames:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subgraph_is_a_component_before_it_has_content() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    // SendNewGraph.js: the "New graph" dialog, type subgraph, in a live project.
    c.edit(
        "clear",
        json!({"id": "flowd/Empty", "name": "flowd/Empty", "library": "flowd", "main": false,
            "icon": "cog", "description": "nothing yet"}),
    )
    .await;
    let component = c.expect("component", "component").await;
    assert_eq!(component["name"], "flowd/Empty");
    assert_eq!(component["description"], "nothing yet");
    let listed = component_names(&mut c).await;
    assert!(listed.iter().any(|n| n == "flowd/Empty"), "{listed:?}");
    main_graph(&mut c).await;
    send(
        &mut c,
        "main",
        "addnode",
        json!({"id": "e", "component": "flowd/Empty"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_component_has_a_source_to_read() {
    let registry =
        common::wasm::registry_with(&common::wasm::host(&[]), &[&common::wasm::components_dir()]);
    let server =
        TestServer::start_with(config(), flowd::server::ServerConfig::default(), registry).await;
    let mut c = server.client().await;
    let names = component_names(&mut c).await;
    assert!(names.iter().any(|n| n == "text/Uppercase"), "{names:?}");
    for name in &names {
        let answer = c.ask("component", "getsource", json!({"name": name})).await;
        assert_eq!(answer["command"], "source", "{name}: {answer}");
        let code = answer["payload"]["code"].as_str().unwrap();
        assert!(!code.is_empty(), "{name}");
        if name == "text/Uppercase" {
            assert_eq!(answer["payload"]["language"], "wit");
            assert!(code.contains("world flowd-component"), "{code}");
            assert!(code.contains("text_uppercase.wasm"), "{code}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_hear_of_component_files_that_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(flowd::Registry::with_core());
    let (_watcher, _) = flowd::component::wasm::ComponentDir::watch(
        common::wasm::host(&[]),
        registry.clone(),
        dir.path(),
        std::time::Duration::from_millis(50),
    )
    .expect("watches");
    let server =
        TestServer::start_with(config(), flowd::server::ServerConfig::default(), registry).await;
    let mut c = server.client().await;
    let file = dir.path().join("upper.wasm");
    std::fs::copy(
        common::wasm::components_dir().join("text_uppercase.wasm"),
        &file,
    )
    .unwrap();
    let component = c.expect("component", "component").await;
    assert_eq!(component["name"], "text/Uppercase");
    assert_eq!(component["inPorts"][0]["id"], "in");

    std::fs::remove_file(&file).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while component_names(&mut c)
        .await
        .contains(&"text/Uppercase".to_string())
    {
        assert!(std::time::Instant::now() < deadline, "still listed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

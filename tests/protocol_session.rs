//! The FBP protocol end to end over a real WebSocket: the official suite's sequence with its
//! exact payloads, then what the suite does not check (several clients, requestId, every
//! graph command, components and sources, traces).

mod common;

use std::time::Duration;

use common::protocol::{TestServer, config};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_suite_sequence_gets_its_exact_answers() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    assert_eq!(c.subprotocol.as_deref(), Some("noflo"));

    let runtime = c.ask("runtime", "getruntime", json!({})).await;
    assert_eq!(runtime["command"], "runtime", "{runtime}");
    let caps = runtime["payload"]["capabilities"].as_array().unwrap();
    for needed in ["protocol:graph", "protocol:network", "protocol:component"] {
        assert!(caps.contains(&json!(needed)), "{caps:?}");
    }
    assert_eq!(runtime["payload"]["version"], "0.7");

    let clear = c
        .request(
            "graph",
            "clear",
            json!({"baseDir": "/x", "id": "foo", "main": true, "name": "Foo graph"}),
            "clear",
        )
        .await;
    assert_eq!(
        clear,
        json!({"id": "foo", "main": true, "name": "Foo graph"})
    );
    let add = json!({"id": "Repeat1", "component": "core/Repeat", "metadata": {"hello": "World"}, "graph": "foo"});
    assert_eq!(
        c.request("graph", "addnode", add.clone(), "addnode").await,
        add
    );
    let add = json!({"id": "Drop1", "component": "core/Drop", "metadata": {}, "graph": "foo"});
    assert_eq!(
        c.request("graph", "addnode", add.clone(), "addnode").await,
        add
    );
    let edge = json!({"src": {"node": "Repeat1", "port": "out"}, "tgt": {"node": "Drop1", "port": "in"}, "metadata": {"route": 5}, "graph": "foo"});
    assert_eq!(
        c.request("graph", "addedge", edge.clone(), "addedge").await,
        edge
    );

    for (patch, expected) in [
        (json!({"sort": 1}), json!({"sort": 1})),
        (
            json!({"tag": "awesome"}),
            json!({"sort": 1, "tag": "awesome"}),
        ),
        (json!({}), json!({"sort": 1, "tag": "awesome"})),
        (json!({"sort": null, "tag": null}), json!({})),
    ] {
        let answer = c
            .request(
                "graph",
                "changenode",
                json!({"id": "Drop1", "metadata": patch, "graph": "foo"}),
                "changenode",
            )
            .await;
        assert_eq!(
            answer,
            json!({"id": "Drop1", "metadata": expected, "graph": "foo"})
        );
    }

    let iip = json!({"src": {"data": "Hello, world!"}, "tgt": {"node": "Repeat1", "port": "in"}, "metadata": {}, "graph": "foo"});
    assert_eq!(
        c.request("graph", "addinitial", iip.clone(), "addinitial")
            .await,
        iip
    );

    c.send(
        "graph",
        "removenode",
        json!({"id": "Drop1", "graph": "foo"}),
    )
    .await;
    let first = c.next().await.unwrap();
    assert_eq!(first["command"], "removeedge", "{first}");
    assert_eq!(
        first["payload"],
        json!({"src": {"node": "Repeat1", "port": "out"}, "tgt": {"node": "Drop1", "port": "in"}, "graph": "foo"})
    );
    assert_eq!(
        c.expect("graph", "removenode").await,
        json!({"id": "Drop1", "graph": "foo"})
    );

    let removed = c
        .request(
            "graph",
            "removeinitial",
            json!({"tgt": {"node": "Repeat1", "port": "in"}, "graph": "foo"}),
            "removeinitial",
        )
        .await;
    assert_eq!(
        removed,
        json!({"src": {"data": "Hello, world!"}, "tgt": {"node": "Repeat1", "port": "in"}, "graph": "foo"})
    );
    let rename = json!({"from": "Repeat1", "to": "RepeatRenamed", "graph": "foo"});
    assert_eq!(
        c.request("graph", "renamenode", rename.clone(), "renamenode")
            .await,
        rename
    );

    let missing = c
        .ask(
            "graph",
            "addnode",
            json!({"id": "Repeat1", "component": "core/Repeat", "graph": "another-graph"}),
        )
        .await;
    assert_eq!(
        missing,
        json!({"protocol": "graph", "command": "error", "payload": {"message": "Requested graph not found"}})
    );
    let missing = c
        .ask(
            "graph",
            "addnode",
            json!({"id": "Repeat1", "component": "core/Repeat"}),
        )
        .await;
    assert_eq!(missing["payload"], json!({"message": "No graph specified"}));

    let inport = json!({"public": "in", "node": "RepeatRenamed", "port": "in", "graph": "foo"});
    assert_eq!(
        c.request("graph", "addinport", inport.clone(), "addinport")
            .await,
        inport
    );
    let outport = json!({"public": "out", "node": "RepeatRenamed", "port": "out", "graph": "foo"});
    assert_eq!(
        c.request("graph", "addoutport", outport.clone(), "addoutport")
            .await,
        outport
    );
    assert_eq!(
        c.request(
            "graph",
            "removeoutport",
            json!({"public": "out", "graph": "foo"}),
            "removeoutport"
        )
        .await,
        json!({"public": "out", "graph": "foo"})
    );

    // The network part, on graph "bar".
    c.clear("bar", false).await;
    c.add_node("bar", "Hello", "core/Repeat").await;
    c.add_node("bar", "World", "core/Drop").await;
    c.add_edge("bar", ("Hello", "out"), ("World", "in")).await;
    c.add_iip("bar", json!("Hello, world!"), ("Hello", "in"))
        .await;

    let started = c.ask("network", "start", json!({"graph": "bar"})).await;
    assert_eq!(started["command"], "started", "{started}");
    assert_eq!(started["payload"]["started"], true);
    assert_eq!(started["payload"]["running"], true);
    let data = c.expect("network", "data").await;
    assert_eq!(
        data,
        json!({"id": "DATA -> IN Hello()", "graph": "bar", "tgt": {"node": "Hello", "port": "in"}, "data": "Hello, world!"})
    );
    let data = c.expect("network", "data").await;
    assert_eq!(
        data,
        json!({"id": "Hello() OUT -> IN World()", "graph": "bar", "src": {"node": "Hello", "port": "out"}, "tgt": {"node": "World", "port": "in"}, "data": "Hello, world!"})
    );
    let status = c
        .request("network", "getstatus", json!({"graph": "bar"}), "status")
        .await;
    assert_eq!(
        status,
        json!({"graph": "bar", "running": false, "started": true})
    );
    let stopped = c
        .request("network", "stop", json!({"graph": "bar"}), "stopped")
        .await;
    assert_eq!(stopped["running"], false);
    assert_eq!(stopped["started"], false);
    let status = c
        .request("network", "getstatus", json!({"graph": "bar"}), "status")
        .await;
    assert_eq!(
        status,
        json!({"graph": "bar", "running": false, "started": false})
    );

    c.send("component", "list", json!({})).await;
    let mut names = Vec::new();
    let count = loop {
        let frame = c.next().await.expect("component list");
        match frame["command"].as_str() {
            Some("component") => names.push(frame["payload"]["name"].as_str().unwrap().to_string()),
            Some("componentsready") => break frame["payload"].as_u64().unwrap(),
            _ => panic!("unexpected {frame}"),
        }
    };
    assert!(names.contains(&"core/Repeat".to_string()));
    assert_eq!(count as usize, names.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_reach_every_client_and_answers_carry_the_request_id() {
    let server = TestServer::start(config()).await;
    let mut editor = server.client().await;
    let mut watcher = server.client().await;
    editor.clear("g", false).await;
    watcher.expect("graph", "clear").await;
    // Not the main graph, `g` is a component: both hear of it.
    editor.expect("component", "component").await;
    watcher.expect("component", "component").await;

    let frame = json!({"protocol": "graph", "command": "addnode", "requestId": "r-1",
        "payload": {"id": "n", "component": "core/Repeat", "graph": "g"}});
    editor.send_text(frame.to_string()).await;
    let answer = editor.next().await.unwrap();
    assert_eq!(answer["responseTo"], "r-1", "{answer}");
    let seen = watcher.next().await.unwrap();
    assert_eq!(seen["command"], "addnode");
    assert!(seen.get("responseTo").is_none(), "{seen}");

    // An error goes only to the requester, with the id.
    let frame = json!({"protocol": "graph", "command": "addnode", "requestId": 7,
        "payload": {"id": "n", "component": "core/Repeat", "graph": "g"}});
    editor.send_text(frame.to_string()).await;
    let error = editor.next().await.unwrap();
    assert_eq!(error["command"], "error");
    assert_eq!(
        error["responseTo"], "7",
        "responseTo is a string in the schema"
    );
    assert!(
        error["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    watcher.assert_silent(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_edits_name_the_problem_and_change_nothing() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.clear("g", false).await;
    c.add_node("g", "a", "core/Repeat").await;

    let cases = [
        (
            "addnode",
            json!({"id": "b", "component": "core/Repaet", "graph": "g"}),
            "unknown component 'core/Repaet'",
        ),
        (
            "addnode",
            json!({"id": "a", "component": "core/Repeat", "graph": "g"}),
            "already exists",
        ),
        (
            "addnode",
            json!({"id": 5, "component": "core/Repeat", "graph": "g"}),
            "'id' must be a string",
        ),
        (
            "addedge",
            json!({"src": {"node": "a", "port": "nope"}, "tgt": {"node": "a", "port": "in"}, "graph": "g"}),
            "no outport 'nope'",
        ),
        (
            "addedge",
            json!({"src": {"node": "a", "port": "out"}, "tgt": {"node": "zz", "port": "in"}, "graph": "g"}),
            "'zz'",
        ),
        (
            "addinitial",
            json!({"src": {"data": 1}, "tgt": {"node": "a", "port": "bogus"}, "graph": "g"}),
            "no inport 'bogus'",
        ),
        (
            "removenode",
            json!({"id": "ghost", "graph": "g"}),
            "no node 'ghost'",
        ),
        (
            "addinport",
            json!({"public": "x", "node": "a", "port": "out", "graph": "g"}),
            "no inport 'out'",
        ),
        (
            "changenode",
            json!({"id": "a", "metadata": 3, "graph": "g"}),
            "must be an object",
        ),
        (
            "frobnicate",
            json!({"graph": "g"}),
            "graph:frobnicate not supported",
        ),
    ];
    for (command, payload, expected) in cases {
        let answer = c.ask("graph", command, payload).await;
        assert_eq!(answer["command"], "error", "{command}: {answer}");
        let message = answer["payload"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{command}: {message}");
    }
    let graph = flowd::runtime::Runtime::lock(&server.runtime)
        .graph("g")
        .cloned()
        .unwrap();
    assert_eq!(graph.nodes.len(), 1);
    assert!(graph.connections.is_empty());
    assert!(graph.inports.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graph_command_is_echoed_with_what_it_changed() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let g = |mut v: Value| {
        v["graph"] = json!("g");
        v
    };
    c.edit(
        "clear",
        json!({"id": "g", "library": "demo", "icon": "", "description": ""}),
    )
    .await;
    c.add_node("g", "a", "core/Repeat").await;
    c.add_node("g", "b", "core/Repeat").await;
    let edge = c.add_edge("g", ("a", "out"), ("b", "in")).await;
    let changed = c
        .edit(
            "changeedge",
            g(json!({"src": {"node": "a", "port": "out"}, "tgt": {"node": "b", "port": "in"}, "metadata": {"route": 3, "capacity": 8}})),
        )
        .await;
    assert_eq!(changed["metadata"], json!({"route": 3, "capacity": 8}));
    let bad = c
        .ask(
            "graph",
            "changeedge",
            g(json!({"src": {"node": "a", "port": "out"}, "tgt": {"node": "b", "port": "in"}, "metadata": {"capacity": 0}})),
        )
        .await;
    assert_eq!(bad["command"], "error", "{bad}");

    c.export("g", "addinport", "input", ("a", "in")).await;
    let renamed = c
        .edit("renameinport", g(json!({"from": "input", "to": "IN"})))
        .await;
    assert_eq!(renamed, g(json!({"from": "input", "to": "IN"})));
    c.edit("removeinport", g(json!({"public": "IN"}))).await;
    c.export("g", "addoutport", "o", ("b", "out")).await;
    c.edit("renameoutport", g(json!({"from": "o", "to": "OUT"})))
        .await;

    let group = g(json!({"name": "pair", "nodes": ["a", "b"], "metadata": {"description": "two"}}));
    assert_eq!(c.edit("addgroup", group.clone()).await, group);
    c.edit("renamegroup", g(json!({"from": "pair", "to": "duo"})))
        .await;
    let changed = c
        .edit(
            "changegroup",
            g(json!({"name": "duo", "metadata": {"color": 2}})),
        )
        .await;
    assert_eq!(
        changed["metadata"],
        json!({"description": "two", "color": 2})
    );
    c.edit("removegroup", g(json!({"name": "duo"}))).await;
    c.edit("removeedge", edge).await;

    let rt = flowd::runtime::Runtime::lock(&server.runtime);
    let graph = rt.graph("g").unwrap();
    assert!(graph.groups.is_empty());
    assert_eq!(graph.outports[0].name, "OUT");
    assert_eq!(graph.edges().count(), 0);
    assert_eq!(graph.properties["library"], "demo");
}

//! `flowd serve` as a user starts it: the readiness line, the runtime id kept across restarts,
//! the refusal to listen openly without a secret, and a graph edited over the protocol,
//! persisted, and restored by the next start.

mod common;

use std::process::Command;

use common::protocol::Client;
use common::served::Served;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_where_it_listens_and_keeps_its_id() {
    let state = tempfile::tempdir().unwrap();
    let first = Served::start(&[], state.path());
    assert!(
        first.line.starts_with("flowd listening on ws://127.0.0.1:"),
        "{}",
        first.line
    );
    assert!(
        first
            .line
            .contains("#runtime/endpoint?protocol%3Dwebsocket%26address%3Dws%3A%2F%2F127.0.0.1%3A")
    );
    let mut client = Client::connect(&first.url, None).await;
    let runtime = client
        .request("runtime", "getruntime", json!({}), "runtime")
        .await;
    let id = runtime["id"].as_str().unwrap().to_string();
    assert!(first.line.contains(&format!("id%3D{id}")), "{}", first.line);
    assert_eq!(runtime["graph"], "HelloFlowd");
    drop(first);

    let second = Served::start(&[], state.path());
    let mut client = Client::connect(&second.url, None).await;
    let runtime = client
        .request("runtime", "getruntime", json!({}), "runtime")
        .await;
    assert_eq!(runtime["id"], id.as_str(), "the id must survive a restart");
}

#[test]
fn serve_refuses_an_open_address_without_a_secret() {
    let output = Command::new(env!("CARGO_BIN_EXE_flowd"))
        .args(["serve", "--listen", "0.0.0.0:0", "--id", "x"])
        .env_remove("FLOWD_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a secret"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_edited_and_persisted_is_restored_by_the_next_start() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("main.json");
    std::fs::write(
        &file,
        r#"{"properties": {"name": "edited"}, "processes": {}, "connections": []}"#,
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    {
        let served = Served::start(&["--graph", file_arg], state.path());
        let mut c = Client::connect(&served.url, None).await;
        let runtime = c
            .request("runtime", "getruntime", json!({}), "runtime")
            .await;
        assert_eq!(runtime["graph"], "edited");
        c.edit(
            "addnode",
            json!({"id": "r", "component": "core/Repeat", "metadata": {"x": 10, "y": 20}, "graph": "edited"}),
        )
        .await;
        c.request("network", "persist", json!({}), "persist").await;
    }
    assert!(state.path().join("main.json.bak").exists());
    let served = Served::start(&["--graph", file_arg], state.path());
    let mut c = Client::connect(&served.url, None).await;
    let source = c
        .request(
            "component",
            "getsource",
            json!({"name": "edited"}),
            "source",
        )
        .await;
    assert_eq!(source["language"], "json");
    let graph: serde_json::Value = serde_json::from_str(source["code"].as_str().unwrap()).unwrap();
    assert_eq!(graph["processes"]["r"]["component"], "core/Repeat");
    assert_eq!(
        graph["processes"]["r"]["metadata"],
        json!({"x": 10, "y": 20})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autosave_writes_edits_without_being_asked() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("auto.fbp");
    std::fs::write(&file, "# @name auto\n'x' -> IN A(core/Repeat)\n").unwrap();
    // Left by an earlier flowd killed while it saved (a process id no kernel gives out).
    let leftover = state.path().join(".auto.fbp.tmp4194305");
    std::fs::write(&leftover, "# @name au").unwrap();
    let served = Served::start(
        &["--graph", file.to_str().unwrap(), "--autosave"],
        state.path(),
    );
    assert!(
        !leftover.exists(),
        "the interrupted save's file is removed at start"
    );
    let mut c = Client::connect(&served.url, None).await;
    c.edit(
        "renamenode",
        json!({"from": "A", "to": "B", "graph": "auto"}),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&file).unwrap();
        if text.contains("B(core/Repeat)") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not saved: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The most threads this system could give flowd, by the limits a test can read; flowd's own
/// limit is at most this.
fn system_thread_bound() -> usize {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    [
        read("/proc/sys/vm/max_map_count").map(|maps| maps / 4),
        read("/proc/sys/kernel/threads-max"),
        read("/proc/sys/kernel/pid_max"),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(1 << 20)
}

/// A graph of `count` processes of `component`, as FBP JSON source for `component:source`.
fn wide_graph(name: &str, component: &str, count: usize) -> String {
    let processes: serde_json::Map<String, serde_json::Value> = (0..count)
        .map(|i| (format!("n{i}"), json!({"component": component})))
        .collect();
    json!({"properties": {"name": name}, "processes": processes, "connections": []}).to_string()
}

/// Runs `graph` (with one `core/Output` of `text`) to its end and returns the output lines.
async fn run_small(c: &mut Client, graph: &str, text: &str) -> Vec<String> {
    c.clear(graph, false).await;
    c.add_node(graph, "show", "core/Output").await;
    c.add_iip(graph, json!(text), ("show", "in")).await;
    run_to_end(c, graph).await
}

/// Starts the network of `graph` and returns its output lines once it has stopped.
async fn run_to_end(c: &mut Client, graph: &str) -> Vec<String> {
    c.send("network", "start", json!({ "graph": graph })).await;
    c.until_stopped(graph)
        .await
        .iter()
        .filter(|f| f["command"] == "output")
        .map(|f| {
            f["payload"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_subgraphs_past_the_systems_limit_are_refused_and_serving_goes_on() {
    let state = tempfile::tempdir().unwrap();
    let mut served = Served::start(&["--graph-sources"], state.path());
    let mut c = Client::connect(&served.url, None).await;
    // Two levels of `side` nodes each: twice the threads the system could run (a connector
    // needs a thread of its own; most components run as tasks and need none).
    let side = ((2 * system_thread_bound()) as f64).sqrt().ceil() as usize;
    let processes = side * side;
    for (name, component) in [("Wide", "http/Request"), ("Wider", "flowd/Wide")] {
        let code = wide_graph(name, component, side);
        c.request(
            "component",
            "source",
            json!({"name": name, "language": "json", "code": code}),
            "component",
        )
        .await;
    }
    c.clear("big", false).await;
    c.add_node("big", "w", "flowd/Wider").await;
    c.send("network", "start", json!({"graph": "big"})).await;
    let error = c.expect("network", "error").await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("cannot start {processes} processes")),
        "{message}"
    );
    assert!(message.contains("at most"), "{message}");
    assert!(served.child.try_wait().unwrap().is_none(), "flowd exited");

    let status = c
        .request("network", "getstatus", json!({"graph": "big"}), "status")
        .await;
    assert_eq!(status["running"], false);
    assert_eq!(
        run_small(&mut c, "small", "still serving").await,
        ["still serving"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_maximum_of_processes_refuses_larger_networks() {
    let state = tempfile::tempdir().unwrap();
    let served = Served::start(&["--max-processes", "4"], state.path());
    let mut c = Client::connect(&served.url, None).await;
    c.clear("five", false).await;
    for i in 0..5 {
        c.add_node("five", &format!("r{i}"), "core/Repeat").await;
    }
    c.send("network", "start", json!({"graph": "five"})).await;
    let error = c.expect("network", "error").await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("cannot start 5 processes"), "{message}");
    assert!(message.contains("at most 4"), "{message}");
    assert!(message.contains("--max-processes"), "{message}");

    // The graph is kept: one node fewer, and it runs.
    c.edit("removenode", json!({"id": "r4", "graph": "five"}))
        .await;
    c.send("network", "start", json!({"graph": "five"})).await;
    c.until_stopped("five").await;
    assert_eq!(run_small(&mut c, "small", "fits").await, ["fits"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_graph_file_is_created_empty_and_edits_land_in_it() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("my.json");
    let file_arg = file.to_str().unwrap();
    let served = Served::start(&["--graph", file_arg, "--autosave"], state.path());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("the file is created"))
            .expect("it holds a JSON graph");
    assert_eq!(written["processes"], json!({}));
    let mut c = Client::connect(&served.url, None).await;
    let runtime = c
        .request("runtime", "getruntime", json!({}), "runtime")
        .await;
    assert_eq!(runtime["graph"], "my");
    c.add_node("my", "r", "core/Repeat").await;
    c.request("network", "persist", json!({}), "persist").await;
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written["processes"]["r"]["component"], "core/Repeat");
}

#[test]
fn a_port_in_use_is_named_with_its_cause_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let state = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_flowd"))
        .args(["serve", "--listen", &address, "--state-dir"])
        .arg(state.path())
        .env_remove("FLOWD_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn the_readiness_line_offers_flowhub_and_the_community_build_or_the_ui_given() {
    let state = tempfile::tempdir().unwrap();
    let served = Served::start(&[], state.path());
    for ui in ["https://app.flowhub.io/", "https://noflojs.org/noflo-ui/"] {
        assert!(
            served
                .line
                .contains(&format!("{ui}#runtime/endpoint?protocol%3Dwebsocket")),
            "{}",
            served.line
        );
    }
    drop(served);
    let local = Served::start(&["--ui", "http://localhost:9999/"], state.path());
    assert!(
        local
            .line
            .contains("(open http://localhost:9999/#runtime/endpoint?"),
        "{}",
        local.line
    );
    assert!(!local.line.contains("flowhub"), "{}", local.line);
}

/// Makes subgraph `id` as noflo-ui does (`graph:clear` without `main`): a `component` node
/// `inner` between its exported `in` and `out`.
async fn make_subgraph(c: &mut Client, id: &str, component: &str) {
    c.edit(
        "clear",
        json!({"id": id, "name": id, "library": "project", "main": false}),
    )
    .await;
    c.add_node(id, "inner", component).await;
    c.export(id, "addinport", "in", ("inner", "in")).await;
    c.export(id, "addoutport", "out", ("inner", "out")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subgraphs_made_in_the_editor_are_kept_with_the_main_graph_across_restarts() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("app.json");
    let file_arg = file.to_str().unwrap();
    {
        let served = Served::start(&["--graph", file_arg, "--autosave"], state.path());
        let mut c = Client::connect(&served.url, None).await;
        let main = c
            .request("runtime", "getruntime", json!({}), "runtime")
            .await["graph"]
            .as_str()
            .unwrap()
            .to_string();
        // "project/A" uses "project/B": loaded in name order, A would come before B.
        make_subgraph(&mut c, "project/B", "core/Repeat").await;
        make_subgraph(&mut c, "project/A", "project/B").await;
        c.add_node(&main, "sub", "project/A").await;
        c.add_node(&main, "show", "core/Output").await;
        c.add_edge(&main, ("sub", "out"), ("show", "in")).await;
        c.add_iip(&main, json!("through both"), ("sub", "in")).await;
        let saved = state.path().join("app.subgraphs/project%2FA.json");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !saved.exists()
            || !std::fs::read_to_string(&file)
                .unwrap()
                .contains("project/A")
        {
            assert!(std::time::Instant::now() < deadline, "not autosaved");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // An edit of a subgraph alone is saved too.
        c.edit(
            "changenode",
            json!({"id": "inner", "metadata": {"label": "edited"}, "graph": "project/B"}),
        )
        .await;
        let b = state.path().join("app.subgraphs/project%2FB.json");
        while !std::fs::read_to_string(&b).unwrap().contains("edited") {
            assert!(
                std::time::Instant::now() < deadline,
                "subgraph edit not autosaved"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    let served = Served::start(&["--graph", file_arg], state.path());
    let mut c = Client::connect(&served.url, None).await;
    let main = c
        .request("runtime", "getruntime", json!({}), "runtime")
        .await["graph"]
        .as_str()
        .unwrap()
        .to_string();
    c.send("component", "list", json!({})).await;
    let mut names = Vec::new();
    loop {
        let frame = c.next().await.expect("the component list");
        match frame["command"].as_str() {
            Some("component") => names.push(frame["payload"]["name"].as_str().unwrap().to_string()),
            Some("componentsready") => break,
            _ => {}
        }
    }
    for name in ["project/A", "project/B"] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    let b = c
        .request(
            "component",
            "getsource",
            json!({"name": "project/B"}),
            "source",
        )
        .await;
    assert!(b["code"].as_str().unwrap().contains("edited"), "{b}");
    let output = run_to_end(&mut c, &main).await;
    assert_eq!(output, vec!["through both"]);
}

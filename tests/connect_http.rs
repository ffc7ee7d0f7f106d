//! `http/Server` and `http/Request` over real loopback sockets, against a client and a server
//! written on plain std sockets (tests/common/http.rs), so nothing of flowd's HTTP code is on
//! the other side.

mod common;

use std::time::Duration;

use common::http::{Canned, request};
use common::port;
use flowd::engine::NetworkConfig;
use flowd::{Graph, Ip, Network, Registry};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Starts `graph` (which has an `http/Server` called `http`, listening on a free port) and
/// returns the running network with the address it listens on.
fn serve(mut graph: Graph) -> (Network, String) {
    graph.add_iip(json!("127.0.0.1:0"), port("http", "listen"));
    graph.add_outport("LISTENING", "http", "listening");
    let mut network = Network::start(&graph, &Registry::with_core(), NetworkConfig::default())
        .expect("the graph starts");
    let mut listening = network.take_outport("LISTENING").expect("LISTENING");
    let address = listening
        .recv_timeout(WAIT)
        .map(|ip| ip.payload().to_string_lossy().into_owned())
        .expect("the server says where it listens");
    (network, address)
}

/// A graph with `http` (http/Server) whose requests go through `middle` back to it.
fn through(middle: &str, settings: &[(&str, Value)]) -> Graph {
    let mut graph = Graph::new("serve");
    graph.add_node("http", "http/Server");
    graph.add_node("middle", middle);
    for (name, value) in settings {
        graph.add_iip(value.clone(), port("middle", name));
    }
    graph.add_edge(port("http", "request"), port("middle", "in"));
    graph.add_edge(port("middle", "out"), port("http", "response"));
    graph
}

fn stop(mut network: Network) {
    assert!(network.stop_and_wait(WAIT), "the network stops");
}

#[test]
fn an_echo_through_repeat_answers_each_request_with_its_body() {
    let (network, address) = serve(through("core/Repeat", &[]));
    for n in 0..20 {
        let body = format!("hello {n}");
        let reply = request(&address, "POST", "/echo?x=1", body.as_bytes()).expect("a reply");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), body);
        // The request's own headers are echoed, but never those of its connection.
        assert_eq!(reply.header("x-test"), Some("yes"));
        assert_eq!(
            reply.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
    stop(network);
}

#[test]
fn the_request_carries_method_path_query_headers_and_body() {
    // The template answers with what it was given, as JSON, status 201.
    let template = r#"{"id": "{{ id }}", "status": 201, "headers": {"x-flowd": "yes"},
        "body": {"method": "{{ method }}", "path": "{{ path }}", "query": "{{ query }}",
                 "test": "{{ headers['x-test'] }}", "body": "{{ body }}", "remote": "{{ remote }}"}}"#;
    let (network, address) = serve(through("text/Template", &[("template", json!(template))]));
    let reply = request(&address, "PUT", "/a/b?k=v&w", b"payload").expect("a reply");
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("x-flowd"), Some("yes"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let seen: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/a/b");
    assert_eq!(seen["query"], "k=v&w");
    assert_eq!(seen["test"], "yes");
    assert_eq!(seen["body"], "payload");
    assert!(
        seen["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:"))
    );
    stop(network);
}

#[test]
fn a_request_nobody_answers_gets_504_after_the_timeout() {
    let mut graph = Graph::new("silent");
    graph.add_node("http", "http/Server");
    graph.add_node("sink", "core/Drop");
    graph.add_node("never", "core/Repeat");
    graph.add_iip(json!(200), port("http", "timeout"));
    graph.add_edge(port("http", "request"), port("sink", "in"));
    graph.add_edge(port("never", "out"), port("http", "response"));
    // `never` waits on an exported inport that stays open: nothing answers, nothing ends.
    graph.add_inport("NEVER", "never", "in");
    let (mut network, address) = serve(graph);
    let _open = network.take_inport("NEVER");
    let reply = request(&address, "GET", "/", b"").expect("a reply");
    assert_eq!(reply.status, 504, "{}", reply.text());
    stop(network);
}

#[test]
fn without_a_response_port_each_request_is_accepted_once_sent_on() {
    let mut graph = Graph::new("webhook");
    graph.add_node("http", "http/Server");
    graph.add_outport("REQUESTS", "http", "request");
    let (mut network, address) = serve(graph);
    let mut requests = network.take_outport("REQUESTS").expect("REQUESTS");
    let reply = request(&address, "POST", "/hook", b"{\"event\":1}").expect("a reply");
    assert_eq!(reply.status, 202);
    let Ok(Ip::Data(sent)) = requests.recv_timeout(WAIT) else {
        panic!("the request was sent on");
    };
    let sent = sent.to_json();
    assert_eq!(sent["path"], "/hook");
    assert_eq!(sent["body"], "{\"event\":1}");
    stop(network);
}

#[test]
fn binary_bodies_travel_as_base64_both_ways() {
    let (network, address) = serve(through("core/Repeat", &[]));
    let body: Vec<u8> = (0..=255).collect();
    let reply = request(&address, "POST", "/", &body).expect("a reply");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, body);
    stop(network);
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_and_the_server_goes_on() {
    let (network, address) = serve(through("core/Repeat", &[]));
    let big = vec![b'x'; 17 * 1024 * 1024];
    // The server may answer before it has read everything, and close: either way no 200.
    if let Ok(reply) = request(&address, "POST", "/", &big) {
        assert_eq!(reply.status, 413);
    }
    let reply = request(&address, "POST", "/", b"small").expect("a reply");
    assert_eq!((reply.status, reply.text().as_str()), (200, "small"));
    stop(network);
}

#[test]
fn a_bad_response_is_a_500_for_its_client_and_an_error_naming_it() {
    let template = r#"{"id": "{{ id }}", "status": "teapot"}"#;
    let mut graph = through("text/Template", &[("template", json!(template))]);
    graph.add_outport("ERRORS", "http", "error");
    let (mut network, address) = serve(graph);
    let mut errors = network.take_outport("ERRORS").expect("ERRORS");
    let reply = request(&address, "GET", "/", b"").expect("a reply");
    assert_eq!(reply.status, 500);
    let Ok(Ip::Data(error)) = errors.recv_timeout(WAIT) else {
        panic!("the bad response is reported");
    };
    let error = error.to_json();
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid status")),
        "{error}"
    );
    stop(network);
}

#[test]
fn stopping_the_network_closes_the_server() {
    let (network, address) = serve(through("core/Repeat", &[]));
    assert_eq!(
        request(&address, "GET", "/", b"").map(|r| r.status).ok(),
        Some(200)
    );
    stop(network);
    assert!(
        request(&address, "GET", "/", b"").is_err(),
        "still listening after stop"
    );
}

#[test]
fn an_address_in_use_is_an_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("its address").to_string();
    let mut graph = through("core/Repeat", &[]);
    graph.add_iip(json!(address.clone()), port("http", "listen"));
    let outcome = Network::start(&graph, &Registry::with_core(), NetworkConfig::default())
        .expect("the graph starts")
        .wait();
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert!(
        outcome.errors[0].1.contains(&address),
        "{:?}",
        outcome.errors
    );
}

/// Runs `ips` through an `http/Request`, returning what came out of `out` and of `error`.
fn fetch(ips: Vec<Ip>, settings: &[(&str, Value)]) -> (Vec<Value>, Vec<Value>) {
    let mut graph = Graph::new("fetch");
    graph.add_node("get", "http/Request");
    for (name, value) in settings {
        graph.add_iip(value.clone(), port("get", name));
    }
    graph.add_node("collect", "core/Collect");
    graph.add_node("failures", "core/Collect");
    graph.add_edge(port("get", "out"), port("collect", "in"));
    graph.add_edge(port("get", "error"), port("failures", "in"));
    graph.add_inport("IN", "get", "in");
    graph.add_outport("OUT", "collect", "out");
    graph.add_outport("ERR", "failures", "out");
    let mut network = Network::start(&graph, &Registry::with_core(), NetworkConfig::default())
        .expect("the graph starts");
    let mut input = network.take_inport("IN").expect("IN");
    let (mut out, mut err) = (
        network.take_outport("OUT").expect("OUT"),
        network.take_outport("ERR").expect("ERR"),
    );
    input.send_batch(ips).expect("sent");
    input.close();
    let array = |ip: Option<Ip>| match ip.map(|ip| ip.payload().to_json()) {
        Some(Value::Array(items)) => items,
        other => panic!("expected an array, got {other:?}"),
    };
    let (responses, failures) = (array(out.recv()), array(err.recv()));
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    (responses, failures)
}

#[test]
fn requests_get_their_responses_in_order_with_status_headers_and_body() {
    let server = Canned::start(|method, path, body| {
        let status = if path == "/missing" { 404 } else { 200 };
        let text = format!("{method} {path} {}", String::from_utf8_lossy(body));
        (status, "X-Canned: 1\r\n".into(), text.into_bytes())
    });
    let base = format!("http://{}", server.address);
    let (responses, failures) = fetch(
        vec![
            Ip::data(format!("{base}/plain")),
            Ip::data(
                json!({"url": format!("{base}/post"), "method": "post", "id": 7,
                    "headers": {"x-a": "b"}, "body": {"k": 1}})
                .to_string(),
            ),
            Ip::data(format!("{base}/missing")),
        ],
        &[],
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(responses.len(), 3, "{responses:?}");
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(responses[0]["body"], "GET /plain ");
    assert_eq!(responses[0]["headers"]["x-canned"], "1");
    assert_eq!(responses[1]["body"], r#"POST /post {"k":1}"#);
    assert_eq!(responses[1]["id"], 7);
    assert_eq!(responses[2]["status"], 404);
    // Connections were kept alive: three requests, whatever the number of connections.
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[test]
fn failures_go_to_error_naming_the_url_and_the_stream_goes_on() {
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    let slow = Canned::start(|_, _, _| {
        std::thread::sleep(Duration::from_secs(3));
        (200, String::new(), b"late".to_vec())
    });
    let ok = Canned::start(|_, _, _| (200, String::new(), b"fine".to_vec()));
    let (responses, failures) = fetch(
        vec![
            Ip::data(format!("http://{closed}/refused")),
            Ip::data(format!("http://{}/slow", slow.address)),
            Ip::data("ftp://example.com/"),
            Ip::data(json!({"method": "GET"}).to_string()),
            Ip::data(format!("http://{}/ok", ok.address)),
        ],
        &[("timeout", json!(300))],
    );
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_eq!(responses[0]["body"], "fine");
    let reasons: Vec<String> = failures
        .iter()
        .map(|f| f["error"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].contains(&format!("http://{closed}/refused")),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("within 300 ms"), "{reasons:?}");
    assert!(reasons[2].contains("ftp://example.com/"), "{reasons:?}");
    assert!(reasons[3].contains("'url'"), "{reasons:?}");
}

#[test]
fn a_client_and_a_server_in_one_graph_talk_over_loopback() {
    // http/Request calls this graph's own http/Server, which echoes through core/Repeat.
    let (network, address) = serve(through("core/Repeat", &[]));
    let (responses, failures) = fetch(
        vec![Ip::data(
            json!({"url": format!("http://{address}/x"), "method": "POST", "body": "round"})
                .to_string(),
        )],
        &[],
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(responses[0]["body"], "round");
    stop(network);
}

#[test]
fn an_https_server_no_root_vouches_for_is_refused_naming_the_url() {
    let port = common::http::untrusted_tls();
    let url = format!("https://localhost:{port}/secret");
    let (responses, failures) = fetch(vec![Ip::data(url.clone())], &[]);
    assert!(responses.is_empty(), "{responses:?}");
    let reason = failures[0]["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&url) && reason.contains("certificate"),
        "{reason}"
    );
}

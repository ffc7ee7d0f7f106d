//! Live edits of a running network: processes, edges and IIPs added and removed while IPs flow.

mod common;

use std::time::{Duration, Instant};

use common::{port, start, test_registry};
use flowd::engine::{Event, LiveEditError, Network};
use flowd::graph::Node;
use flowd::{Graph, Ip};

/// Waits for the output event with `message` from `node`; panics after 5 s.
fn expect_output(network: &Network, node: &str, message: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match network.events().recv_timeout(left) {
            Ok(Event::Output {
                node: n,
                message: m,
            }) if n == node && m == message => return,
            Ok(Event::ProcessError { node, message }) => panic!("{node} failed: {message}"),
            Ok(_) => continue,
            Err(_) => panic!("no output {message:?} from {node}"),
        }
    }
}

/// Waits for `node` to end; panics after 5 s.
fn expect_end(network: &Network, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match network.events().recv_timeout(left) {
            Ok(Event::ProcessEnded { node: n }) if n == node => return,
            Ok(_) => continue,
            Err(_) => panic!("{node} did not end"),
        }
    }
}

fn node(id: &str, component: &str) -> Node {
    let mut graph = Graph::new("x");
    graph.add_node(id, component);
    graph.nodes.remove(0)
}

/// `IN -> relay(core/Repeat)`, fed from the test; the relay's outport starts unconnected.
fn relay_network() -> (Network, flowd::engine::GraphInport) {
    let registry = test_registry();
    let mut graph = Graph::new("live");
    graph.add_node("relay", "core/Repeat");
    graph.add_inport("IN", "relay", "in");
    let mut network = start(&graph, &registry);
    let input = network.take_inport("IN").unwrap();
    (network, input)
}

#[test]
fn a_process_and_edge_added_while_running_get_the_next_ips() {
    let registry = test_registry();
    let (mut network, mut input) = relay_network();
    network
        .add_process(&node("show", "core/Output"), &registry)
        .unwrap();
    network
        .connect(&port("relay", "out"), &port("show", "in"), None)
        .unwrap();
    input.send(Ip::data("first")).unwrap();
    expect_output(&network, "show", "first");

    // Removing the edge ends the stream into `show`, which then finishes.
    network
        .disconnect(&port("relay", "out"), &port("show", "in"))
        .unwrap();
    expect_end(&network, "show");
    input.send(Ip::data("unseen")).unwrap();

    // A second display takes over.
    network
        .add_process(&node("show2", "core/Output"), &registry)
        .unwrap();
    network
        .connect(&port("relay", "OUT"), &port("show2", "IN"), None)
        .unwrap();
    input.send(Ip::data("second")).unwrap();
    expect_output(&network, "show2", "second");
    drop(input);
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(
        !outcome.output.contains(&"unseen".to_string()),
        "{:?}",
        outcome.output
    );
}

#[test]
fn an_iip_starts_a_process_added_while_running() {
    let registry = test_registry();
    let (mut network, input) = relay_network();
    network
        .add_process(&node("say", "core/Output"), &registry)
        .unwrap();
    network
        .send_initial(&port("say", "in"), &serde_json::json!("hello"))
        .unwrap();
    expect_output(&network, "say", "hello");
    expect_end(&network, "say");
    drop(input);
    assert!(network.wait().errors.is_empty());
}

#[test]
fn a_removed_process_stops_and_its_receivers_see_the_end() {
    let registry = test_registry();
    let (mut network, mut input) = relay_network();
    network
        .add_process(&node("show", "core/Output"), &registry)
        .unwrap();
    network
        .connect(&port("relay", "out"), &port("show", "in"), None)
        .unwrap();
    input.send(Ip::data("x")).unwrap();
    expect_output(&network, "show", "x");
    network.remove_process("relay").unwrap();
    expect_end(&network, "show");
    assert_eq!(
        network.remove_process("relay"),
        Err(LiveEditError::NoProcess("relay".into()))
    );
    drop(input);
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

#[test]
fn live_edits_that_cannot_apply_say_why() {
    let registry = test_registry();
    let (mut network, _input) = relay_network();
    let error = network
        .connect(&port("relay", "nope"), &port("relay", "in"), None)
        .unwrap_err();
    assert!(
        error.to_string().contains("has no outport 'nope'"),
        "{error}"
    );
    let error = network
        .add_process(&node("relay", "core/Repeat"), &registry)
        .unwrap_err();
    assert_eq!(error, LiveEditError::ProcessExists("relay".into()));
    let error = network
        .add_process(&node("x", "core/Nope"), &registry)
        .unwrap_err();
    assert!(error.to_string().contains("not registered"), "{error}");
    let error = network
        .disconnect(&port("relay", "out"), &port("relay", "in"))
        .unwrap_err();
    assert!(error.to_string().contains("no edge"), "{error}");
}

#[test]
fn an_edge_added_beside_another_carries_the_next_ip_of_a_waiting_sender() {
    let registry = test_registry();
    let (mut network, mut input) = relay_network();
    for display in ["first", "second"] {
        network
            .add_process(&node(display, "core/Output"), &registry)
            .unwrap();
    }
    network
        .connect(&port("relay", "out"), &port("first", "in"), None)
        .unwrap();
    input.send(Ip::data("one")).unwrap();
    expect_output(&network, "first", "one");

    // The relay waits for input with one connection; the edge added now is adopted when it
    // wakes, before it sends, so "two" reaches both displays.
    network
        .connect(&port("relay", "out"), &port("second", "in"), None)
        .unwrap();
    input.send(Ip::data("two")).unwrap();
    expect_output(&network, "second", "two");

    network.stop();
}

#[test]
fn an_edge_added_while_the_sender_computes_carries_the_ips_it_receives_after() {
    let registry = test_registry();
    let mut graph = Graph::new("live");
    graph.add_node("busy", "test/Busy");
    graph.add_node("first", "core/Output");
    graph.add_edge(port("busy", "out"), port("first", "in"));
    graph.add_inport("IN", "busy", "in");
    let mut network = start(&graph, &registry);
    let mut input = network.take_inport("IN").unwrap();
    network
        .add_process(&node("second", "core/Output"), &registry)
        .unwrap();

    // While the sender computes on "one", an edge is added, then "two" is queued for it: it
    // takes "two" without ever waiting, and must send it on the new edge too.
    input.send(Ip::data("one")).unwrap();
    network
        .connect(&port("busy", "out"), &port("second", "in"), None)
        .unwrap();
    input.send(Ip::data("two")).unwrap();
    expect_output(&network, "second", "two");

    network.stop();
}

#[test]
fn a_sender_whose_only_receiver_was_removed_takes_a_new_one() {
    let registry = test_registry();
    let (mut network, mut input) = relay_network();
    network
        .add_process(&node("first", "core/Output"), &registry)
        .unwrap();
    network
        .connect(&port("relay", "out"), &port("first", "in"), None)
        .unwrap();
    input.send(Ip::data("one")).unwrap();
    expect_output(&network, "first", "one");

    // The relay is detached from the removed display, so it drops what comes next rather
    // than finding its only connection closed (after a batch or two) and ending.
    network.remove_process("first").unwrap();
    input
        .send_batch((0..5_000).map(|_| Ip::data("lost")))
        .unwrap();
    network
        .add_process(&node("second", "core/Output"), &registry)
        .unwrap();
    network
        .connect(&port("relay", "out"), &port("second", "in"), None)
        .unwrap();
    input.send(Ip::data("two")).unwrap();
    expect_output(&network, "second", "two");
    network.stop();
}

#[test]
fn every_core_setting_follows_a_new_iip_from_the_next_packet() {
    // (component, setting, first value, new value, input, output before, output after)
    let cases = [
        ("core/Kick", "data", "one", "two", "x", "one", "two"),
        ("core/SplitText", "separator", ",", ";", "a,b;c", "a", "a,b"),
        ("core/Filter", "pattern", "^a", "^b", "b", "", "b"),
    ];
    let registry = test_registry();
    for (component, setting, first, new, input_text, before, after) in cases {
        let mut graph = Graph::new("settings");
        graph.add_node("c", component);
        graph.add_node("show", "core/Output");
        graph.add_edge(port("c", "out"), port("show", "in"));
        graph.add_iip(serde_json::json!(first), port("c", setting));
        graph.add_inport("IN", "c", "in");
        let mut network = start(&graph, &registry);
        let mut input = network.take_inport("IN").unwrap();
        input.send(Ip::data(input_text)).unwrap();
        if !before.is_empty() {
            expect_output(&network, "show", before);
        }
        network
            .send_initial(&port("c", setting), &serde_json::json!(new))
            .unwrap();
        input.send(Ip::data(input_text)).unwrap();
        expect_output(&network, "show", after);
        drop(input);
        let outcome = network.wait();
        assert!(
            outcome.errors.is_empty(),
            "{component}: {:?}",
            outcome.errors
        );
    }
}

#[test]
fn a_timing_setting_is_read_again_at_the_next_packet() {
    // Timing cannot be asserted on a shared machine: a bad new value shows it was read.
    let registry = test_registry();
    for (component, setting) in [("core/Delay", "delay"), ("core/Throttle", "interval")] {
        let mut graph = Graph::new("timing");
        graph.add_node("c", component);
        graph.add_node("show", "core/Output");
        graph.add_edge(port("c", "out"), port("show", "in"));
        graph.add_iip(serde_json::json!("0"), port("c", setting));
        graph.add_inport("IN", "c", "in");
        let mut network = start(&graph, &registry);
        let mut input = network.take_inport("IN").unwrap();
        input.send(Ip::data("first")).unwrap();
        expect_output(&network, "show", "first");
        network
            .send_initial(&port("c", setting), &serde_json::json!("-5"))
            .unwrap();
        let _ = input.send(Ip::data("second"));
        drop(input);
        let outcome = network.wait();
        assert_eq!(outcome.errors.len(), 1, "{component}: {:?}", outcome.errors);
        assert!(
            outcome.errors[0]
                .1
                .contains(&format!("inport '{setting}': invalid value '-5'")),
            "{component}: {:?}",
            outcome.errors
        );
    }
}

#[test]
fn a_new_index_of_an_array_outport_gets_copies_from_the_next_ip() {
    // IN -> split(core/Split) OUT[0] -> first(core/Output); OUT[1] is connected live.
    let registry = test_registry();
    let mut graph = Graph::new("fan-out");
    graph.add_node("split", "core/Split");
    graph.add_node("first", "core/Output");
    graph.add_inport("IN", "split", "in");
    graph.add_edge(port("split", "out").with_index(0), port("first", "in"));
    let mut network = start(&graph, &registry);
    let mut input = network.take_inport("IN").unwrap();
    input.send(Ip::data("one")).unwrap();
    expect_output(&network, "first", "one");

    network
        .add_process(&node("second", "core/Output"), &registry)
        .unwrap();
    network
        .connect(
            &port("split", "out").with_index(1),
            &port("second", "in"),
            None,
        )
        .expect("a new index of an array outport connects live");
    input.send(Ip::data("two")).unwrap();
    expect_output(&network, "second", "two");
    drop(input);
    expect_end(&network, "second");
}

#[test]
fn a_new_index_of_an_array_inport_is_served_while_the_others_wait() {
    // IN -> a(core/Repeat) -> merge.IN[0]; merge -> show. A second source is connected to a
    // new index, IN[1], while merge waits on IN[0], which stays quiet.
    let registry = test_registry();
    let mut graph = Graph::new("fan-in");
    graph.add_node("a", "core/Repeat");
    graph.add_node("merge", "core/Merge");
    graph.add_node("show", "core/Output");
    graph.add_inport("IN", "a", "in");
    graph.add_edge(port("a", "out"), port("merge", "in").with_index(0));
    graph.add_edge(port("merge", "out"), port("show", "in"));
    let mut network = start(&graph, &registry);
    let mut input = network.take_inport("IN").unwrap();
    input.send(Ip::data("from a")).unwrap();
    expect_output(&network, "show", "from a");

    network
        .add_process(&node("b", "core/Repeat"), &registry)
        .unwrap();
    network
        .connect(&port("b", "out"), &port("merge", "in").with_index(1), None)
        .expect("a new index of an array inport connects live");
    network
        .send_initial(&port("b", "in"), &serde_json::json!("from b"))
        .unwrap();
    expect_output(&network, "show", "from b");

    // Merge ends once every index, the new one included, has ended.
    drop(input);
    expect_end(&network, "merge");
}

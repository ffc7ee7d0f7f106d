//! Failure isolation and stop.

mod common;

use std::time::{Duration, Instant};

use common::{port, start, test_registry, wait_within};
use flowd::engine::Event;
use flowd::{Graph, Ip};
use serde_json::json;

fn graph_with(component: &str) -> Graph {
    let mut graph = Graph::new("failure");
    graph.add_node("bad", component);
    graph.add_iip(json!("go"), port("bad", "in"));
    graph.add_node("good", "core/Output");
    graph.add_iip(json!("still running"), port("good", "in"));
    graph
}

#[test]
fn a_panicking_component_ends_only_its_process() {
    let registry = test_registry();
    let outcome = start(&graph_with("test/Panic"), &registry).wait();
    assert_eq!(outcome.output, vec!["still running"]);
    assert_eq!(outcome.errors.len(), 1);
    let (node, message) = &outcome.errors[0];
    assert_eq!(node, "bad");
    assert!(message.contains("boom in a component"), "{message}");
    assert!(!outcome.stopped);
}

#[test]
fn a_component_error_is_reported_with_its_node() {
    let registry = test_registry();
    let outcome = start(&graph_with("test/Fail"), &registry).wait();
    assert_eq!(
        outcome.errors,
        vec![("bad".to_string(), "deliberate failure".to_string())]
    );
    assert_eq!(outcome.output, vec!["still running"]);
}

#[test]
fn downstream_of_a_failed_process_sees_end_of_stream() {
    let registry = test_registry();
    let mut graph = Graph::new("downstream");
    graph.add_node("bad", "test/Panic");
    graph.add_node("count", "core/Count");
    graph.add_node("show", "core/Output");
    graph.add_iip(json!("go"), port("bad", "in"));
    graph.add_edge(port("bad", "out"), port("count", "in"));
    graph.add_edge(port("count", "out"), port("show", "in"));
    let outcome = start(&graph, &registry).wait();
    assert_eq!(outcome.output, vec!["0"]);
    assert_eq!(outcome.errors.len(), 1);
}

#[test]
fn stop_ends_processes_blocked_in_receive_and_send_within_a_second() {
    let registry = test_registry();
    let mut graph = Graph::new("blocked");
    // Blocked in receive: an exported inport that is never fed.
    graph.add_node("waiting", "core/Repeat");
    graph.add_inport("in", "waiting", "in");
    // Blocked in send: a producer whose consumer never reads (an exported outport never read).
    graph.add_node("gen", "test/Generate");
    graph.add_iip(json!(1_000_000), port("gen", "in"));
    graph.add_outport("out", "gen", "out");
    let mut network = start(&graph, &registry);
    let _held_input = network.take_inport("in");
    std::thread::sleep(Duration::from_millis(100));
    assert!(network.is_running());
    let stopping = Instant::now();
    assert!(
        network.stop_and_wait(Duration::from_secs(1)),
        "still running 1 s after stop"
    );
    assert!(stopping.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_stopped_network_ends_with_stopped() {
    let registry = test_registry();
    let mut graph = Graph::new("stopped");
    graph.add_node("waiting", "core/Repeat");
    graph.add_inport("in", "waiting", "in");
    let network = start(&graph, &registry);
    network.stop();
    let last = network
        .events()
        .iter()
        .find(|e| matches!(e, Event::Stopped { .. } | Event::Finished { .. }));
    assert!(matches!(last, Some(Event::Stopped { .. })), "{last:?}");
}

#[test]
fn sends_after_stop_fail_with_stopped() {
    let registry = test_registry();
    let mut graph = Graph::new("after-stop");
    graph.add_node("r", "core/Repeat");
    graph.add_inport("in", "r", "in");
    let mut network = start(&graph, &registry);
    let mut input = network.take_inport("in").unwrap();
    network.stop();
    assert!(input.send(Ip::data("late")).is_err());
}

#[test]
fn a_component_that_panics_when_dropped_ends_only_its_process() {
    let registry = test_registry();
    let mut graph = Graph::new("drop");
    graph.add_node("bad", "test/PanicOnDrop");
    graph.add_node("count", "core/Count");
    graph.add_node("show", "core/Output");
    graph.add_iip(json!("go"), port("bad", "in"));
    graph.add_edge(port("bad", "out"), port("count", "in"));
    graph.add_edge(port("count", "out"), port("show", "in"));
    let outcome = wait_within(start(&graph, &registry), Duration::from_secs(60))
        .expect("the network ends although a component panicked in drop");
    assert_eq!(outcome.output, vec!["1"]);
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    let (node, message) = &outcome.errors[0];
    assert_eq!(node, "bad");
    assert!(message.contains("boom in a component's drop"), "{message}");
}

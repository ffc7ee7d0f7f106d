//! Deadlock detection: a network whose every process waits on an edge, with nothing outside
//! able to feed it, is reported and stopped instead of waiting forever.

mod common;

use std::time::Duration;

use common::{port, register_fn, start, test_registry, wait_within};
use flowd::engine::{Event, ProcessContext};
use flowd::{Graph, Ip, Registry};
use serde_json::json;

/// Long enough for the watchdog on a loaded machine; a deadlock is found in well under a second.
const LIMIT: Duration = Duration::from_secs(60);

/// The test components plus `test/InThenLater`, which forwards all of `in`, then all of
/// `later`: a reader that takes its inports one after the other, as a concatenation does.
fn registry() -> Registry {
    let registry = test_registry();
    register_fn(&registry, "test/InThenLater", &["later"], || {
        Box::new(|ctx: &mut ProcessContext| {
            let (first, later, out) =
                (ctx.inport("in")?, ctx.inport("later")?, ctx.outport("out")?);
            for input in [first, later] {
                while let Some(ip) = ctx.recv(input)? {
                    ctx.send(out, ip)?;
                }
            }
            Ok(())
        })
    });
    registry
}

#[test]
fn a_self_loop_without_input_is_reported_as_a_deadlock_and_stopped() {
    let mut graph = Graph::new("self-loop");
    graph.add_node("r", "core/Repeat");
    graph.add_edge(port("r", "out"), port("r", "in"));
    let outcome = wait_within(start(&graph, &registry()), LIMIT).expect("the network ends");
    let message = outcome.deadlock.expect("a deadlock is reported");
    assert!(
        message.contains("'r' (core/Repeat) waits to receive on r.in"),
        "{message}"
    );
    assert!(outcome.stopped);
}

#[test]
fn a_cycle_without_input_names_every_process_of_it() {
    let mut graph = Graph::new("cycle");
    graph.add_node("a", "core/Repeat");
    graph.add_node("b", "core/Repeat");
    graph.add_edge(port("a", "out"), port("b", "in"));
    graph.add_edge(port("b", "out"), port("a", "in"));
    let outcome = wait_within(start(&graph, &registry()), LIMIT).expect("the network ends");
    let message = outcome.deadlock.expect("a deadlock is reported");
    for process in ["'a' (core/Repeat)", "'b' (core/Repeat)"] {
        assert!(message.contains(process), "{message}");
    }
}

#[test]
fn a_reader_that_waits_on_one_port_while_another_fills_is_a_deadlock_naming_the_full_edge() {
    // gen -> split; split.OUT[0] -> join.LATER; split.OUT[1] -> pass -> join.IN. `join` reads
    // IN to its end before LATER, so once LATER's edge is full `split` can send no more and
    // IN never ends: the classic FBP deadlock of a fan-out joined in sequence.
    let mut graph = Graph::new("fan-out");
    graph.add_node("gen", "test/Generate");
    graph.add_node("split", "core/Split");
    graph.add_node("pass", "core/Repeat");
    graph.add_node("join", "test/InThenLater");
    graph.add_node("sink", "core/Drop");
    graph.add_iip(json!("100000"), port("gen", "in"));
    graph.add_edge(port("gen", "out"), port("split", "in"));
    graph.add_edge(port("split", "out").with_index(0), port("join", "later"));
    graph.add_edge(port("split", "out").with_index(1), port("pass", "in"));
    graph.add_edge(port("pass", "out"), port("join", "in"));
    graph.add_edge(port("join", "out"), port("sink", "in"));
    let outcome = wait_within(start(&graph, &registry()), LIMIT).expect("the network ends");
    let message = outcome.deadlock.expect("a deadlock is reported");
    assert!(
        message.contains(
            "'split' (core/Split) waits to send on split.out[0] -> join.later, which is full"
        ),
        "{message}"
    );
    assert!(
        message.contains("'join' (test/InThenLater) waits to receive on join.in;"),
        "{message}"
    );
    assert!(message.contains("'sink' (core/Drop)"), "{message}");
}

#[test]
fn a_network_that_can_still_be_fed_from_outside_is_not_a_deadlock() {
    let mut graph = Graph::new("fed");
    graph.add_node("r", "core/Repeat");
    graph.add_node("out", "core/Drop");
    graph.add_edge(port("r", "out"), port("out", "in"));
    graph.add_inport("IN", "r", "in");
    let mut network = start(&graph, &registry());
    let mut input = network.take_inport("IN").expect("the graph exports IN");
    // Several of the watchdog's looks: every process waits, but the inport is open.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(network.is_running());
    input
        .send(Ip::data("late"))
        .expect("the network still takes input");
    input.close();
    let outcome = wait_within(network, LIMIT).expect("the network finishes");
    assert_eq!(outcome.deadlock, None);
    assert!(!outcome.stopped);
}

#[test]
fn a_slow_process_among_waiting_ones_is_not_a_deadlock() {
    // `busy` computes for 300 ms per IP while the rest of the network waits on it.
    let mut graph = Graph::new("slow");
    graph.add_node("gen", "test/Generate");
    graph.add_node("busy", "test/Busy");
    graph.add_node("sink", "core/Drop");
    graph.add_iip(json!("4"), port("gen", "in"));
    graph.add_edge(port("gen", "out"), port("busy", "in"));
    graph.add_edge(port("busy", "out"), port("sink", "in"));
    let outcome = wait_within(start(&graph, &registry()), LIMIT).expect("the network finishes");
    assert_eq!(outcome.deadlock, None);
    assert!(!outcome.stopped);
}

#[test]
fn the_deadlock_event_names_each_process_and_its_wait() {
    let mut graph = Graph::new("self-loop");
    graph.add_node("r", "core/Repeat");
    graph.add_edge(port("r", "out"), port("r", "in"));
    let network = start(&graph, &registry());
    let events = network.events().clone();
    let deadline = std::time::Instant::now() + LIMIT;
    let processes = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events
            .recv_timeout(left)
            .expect("events until the network ends")
        {
            Event::Deadlock { processes, .. } => break processes,
            Event::Finished { .. } | Event::Stopped { .. } => panic!("ended without a deadlock"),
            _ => {}
        }
    };
    assert_eq!(
        processes,
        vec![("r".to_string(), "waits to receive on r.in".to_string())]
    );
    assert!(wait_within(network, LIMIT).is_some());
}

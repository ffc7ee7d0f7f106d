//! Helpers for the tests of the native components: small real networks, run to their end.

use serde_json::Value;

use crate::component::Registry;
use crate::engine::{Network, NetworkConfig, Outcome};
use crate::graph::{Graph, PortRef};
use crate::ip::Ip;

/// `process.port`.
pub(super) fn port(process: &str, port: &str) -> PortRef {
    PortRef::new(process, port)
}

/// Starts `graph` with the core components.
pub(super) fn start(graph: &Graph) -> Network {
    Network::start(graph, &Registry::with_core(), NetworkConfig::default())
        .expect("the test graph starts")
}

/// Runs `graph` to its end.
pub(super) fn run(graph: &Graph) -> Outcome {
    start(graph).wait()
}

/// Runs `graph` to its end, feeding `ips` into its exported inport `IN` (then closing it).
pub(super) fn run_with_input(graph: &Graph, ips: Vec<Ip>) -> Outcome {
    let mut network = start(graph);
    let mut input = network.take_inport("IN").expect("the graph exports IN");
    // Fed from another thread, so that events are drained meanwhile however many IPs there are.
    let feeder = std::thread::spawn(move || {
        // The receiver may have failed already (that is what some tests check).
        let _ = input.send_batch(ips);
    });
    let outcome = network.wait();
    feeder.join().expect("the feeder thread ends");
    outcome
}

/// A graph with one process `c` of `component`, the settings `config` as IIPs on their ports,
/// the exported inport `IN` feeding `c.in`, and `c.out` shown by a `core/Output` called `show`.
pub(super) fn through(component: &str, config: &[(&str, Value)]) -> Graph {
    let mut graph = Graph::new("test");
    graph.add_node("c", component);
    graph.add_node("show", "core/Output");
    for (name, value) in config {
        graph.add_iip(value.clone(), port("c", name));
    }
    graph.add_edge(port("c", "out"), port("show", "in"));
    graph.add_inport("IN", "c", "in");
    graph
}

/// Runs `ips` through `component` configured by `config` (see [`through`]); returns the output
/// lines, asserting that no process failed.
pub(super) fn lines_through(
    component: &str,
    config: &[(&str, Value)],
    ips: Vec<Ip>,
) -> Vec<String> {
    let outcome = run_with_input(&through(component, config), ips);
    assert!(outcome.errors.is_empty(), "errors: {:?}", outcome.errors);
    outcome.output
}

/// The process errors of running `component` configured by `config` on `ips`.
pub(super) fn errors_through(
    component: &str,
    config: &[(&str, Value)],
    ips: Vec<Ip>,
) -> Vec<(String, String)> {
    run_with_input(&through(component, config), ips).errors
}

/// A data IP of `text`.
pub(super) fn data(text: &str) -> Ip {
    Ip::data(text)
}

/// An opening bracket labelled `label`.
pub(super) fn open(label: &str) -> Ip {
    Ip::open(label)
}

/// A closing bracket labelled `label`.
pub(super) fn close(label: &str) -> Ip {
    Ip::close(label)
}

/// `items` as owned strings, to compare with output lines.
pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// Asserts that `component` refuses to start without its required setting `setting`, and that
/// a setting port that is connected but ends without a value is a process error naming it.
pub(super) fn assert_required_setting(component: &str, setting: &str) {
    let graph = through(component, &[]);
    let invalid = graph
        .validate(&Registry::with_core())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(invalid.contains(&format!("'{setting}'")), "{invalid}");
    let mut graph = through(component, &[]);
    graph.add_node("nothing", "core/Repeat");
    graph.add_edge(port("nothing", "out"), port("c", setting));
    let errors = run_with_input(&graph, vec![data("x")]).errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains(&format!("'{setting}'")), "{errors:?}");
}

//! Every edge capacity works, from 1 to the maximum, set for the network or per edge.

mod common;

use std::time::Duration;

use common::{add_chain, port, test_registry, wait_within};
use flowd::engine::NetworkConfig;
use flowd::graph::{Connection, Edge};
use flowd::{Graph, Network};
use serde_json::json;

const CAPACITIES: [usize; 6] = [1, 2, 15, 16, 17, Edge::MAX_CAPACITY];

/// How long a network of these tests may take before it counts as hung (they take well under
/// a second; the margin is for a loaded machine).
const HANG: Duration = Duration::from_secs(120);

/// `gen` sends `count` IPs through `Split` to `fan` `core/Repeat`s, merged into a `core/Count`.
fn diamond(count: u64, fan: usize) -> Graph {
    let mut graph = Graph::new("diamond");
    graph.add_node("gen", "test/Generate");
    graph.add_iip(json!(count), port("gen", "in"));
    graph.add_node("split", "core/Split");
    graph.add_node("merge", "core/Merge");
    graph.add_node("count", "core/Count");
    graph.add_node("show", "core/Output");
    graph.add_edge(port("gen", "out"), port("split", "in"));
    for i in 0..fan {
        let repeat = format!("r{i}");
        graph.add_node(repeat.as_str(), "core/Repeat");
        graph.add_edge(port("split", "out").with_index(i), port(&repeat, "in"));
        graph.add_edge(port(&repeat, "out"), port("merge", "in").with_index(i));
    }
    graph.add_edge(port("merge", "out"), port("count", "in"));
    graph.add_edge(port("count", "out"), port("show", "in"));
    graph
}

/// `gen` sends `count` IPs through a chain of `length` `core/Repeat` into a `core/Count`.
fn chain(count: u64, length: usize) -> Graph {
    let mut graph = Graph::new("chain");
    graph.add_node("gen", "test/Generate");
    graph.add_iip(json!(count), port("gen", "in"));
    let (first, last) = add_chain(&mut graph, "r", std::iter::repeat_n("core/Repeat", length));
    graph.add_edge(port("gen", "out"), port(&first, "in"));
    graph.add_node("count", "core/Count");
    graph.add_node("show", "core/Output");
    graph.add_edge(port(&last, "out"), port("count", "in"));
    graph.add_edge(port("count", "out"), port("show", "in"));
    graph
}

/// Runs `graph` to its end and returns its output, failing the test on a hang or an error.
fn run(graph: &Graph, config: NetworkConfig, what: &str) -> Vec<String> {
    let registry = test_registry();
    let network = Network::start(graph, &registry, config).expect("the graph starts");
    let outcome = wait_within(network, HANG).unwrap_or_else(|| panic!("{what}: hung"));
    assert!(outcome.errors.is_empty(), "{what}: {:?}", outcome.errors);
    outcome.output
}

fn with_capacity(capacity: usize) -> NetworkConfig {
    NetworkConfig {
        default_capacity: capacity,
        ..NetworkConfig::default()
    }
}

#[test]
fn a_diamond_runs_with_every_default_capacity() {
    for capacity in CAPACITIES {
        let output = run(
            &diamond(2_000, 8),
            with_capacity(capacity),
            &format!("diamond, capacity {capacity}"),
        );
        assert_eq!(output, vec!["16000"], "capacity {capacity}");
    }
}

#[test]
fn a_long_chain_runs_with_every_default_capacity() {
    for capacity in CAPACITIES {
        let output = run(
            &chain(1_000, 500),
            with_capacity(capacity),
            &format!("chain, capacity {capacity}"),
        );
        assert_eq!(output, vec!["1000"], "capacity {capacity}");
    }
}

#[test]
fn a_capacity_in_edge_metadata_works_for_every_capacity() {
    for capacity in CAPACITIES {
        let mut graph = diamond(1_000, 3);
        for connection in &mut graph.connections {
            if let Connection::Edge(edge) = connection {
                edge.metadata = json!({"capacity": capacity}).as_object().cloned();
            }
        }
        // The rest of the network keeps the default, so that small and large edges meet.
        let output = run(
            &graph,
            NetworkConfig::default(),
            &format!("edge metadata capacity {capacity}"),
        );
        assert_eq!(output, vec!["3000"], "capacity {capacity}");
    }
}

//! Backpressure: a full edge blocks its sender, so memory stays bounded.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Meter, port, registry};
use flowd::engine::NetworkConfig;
use flowd::{Graph, Network};
use serde_json::json;

#[test]
fn a_slow_consumer_bounds_a_fast_producer() {
    let meter = Arc::new(Meter::default());
    let registry = registry(meter.clone());
    let capacity = 16;
    let mut graph = Graph::new("backpressure");
    graph.add_node("fast", "test/Metered");
    graph.add_node("slow", "test/SlowSink");
    graph.add_edge(port("fast", "out"), port("slow", "in"));
    let edge = match &mut graph.connections[0] {
        flowd::graph::Connection::Edge(edge) => edge,
        _ => unreachable!(),
    };
    edge.metadata = Some(json!({"capacity": capacity}).as_object().unwrap().clone());
    let mut network = Network::start(&graph, &registry, NetworkConfig::default()).unwrap();
    // Let the consumer take a few hundred IPs at its own pace.
    while meter.consumed.load(Ordering::SeqCst) < 300 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(network.stop_and_wait(Duration::from_secs(10)));
    let produced = meter.produced.load(Ordering::SeqCst);
    let max_in_flight = meter.max_in_flight.load(Ordering::SeqCst);
    // In flight: the producer's partly filled batch, the queue, and the consumer's current
    // batch, each at most one capacity.
    assert!(
        max_in_flight <= 3 * capacity,
        "{max_in_flight} IPs in flight for an edge of capacity {capacity} (produced {produced})"
    );
    assert!(
        max_in_flight >= capacity,
        "the producer was never ahead: {max_in_flight}"
    );
}

#[test]
fn default_capacity_also_bounds_memory() {
    let meter = Arc::new(Meter::default());
    let registry = registry(meter.clone());
    let mut graph = Graph::new("backpressure-default");
    graph.add_node("fast", "test/Metered");
    graph.add_node("slow", "test/SlowSink");
    graph.add_edge(port("fast", "out"), port("slow", "in"));
    let config = NetworkConfig::default();
    let capacity = config.default_capacity as i64;
    let mut network = Network::start(&graph, &registry, config).unwrap();
    while meter.consumed.load(Ordering::SeqCst) < 50 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Give the producer every chance to run ahead.
    std::thread::sleep(Duration::from_millis(200));
    assert!(network.stop_and_wait(Duration::from_secs(10)));
    let max_in_flight = meter.max_in_flight.load(Ordering::SeqCst);
    assert!(max_in_flight <= 3 * capacity, "{max_in_flight} in flight");
}

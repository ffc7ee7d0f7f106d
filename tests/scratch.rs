use flowd::{Graph, Network, Registry, engine::NetworkConfig, graph::PortRef};
use serde_json::json;

#[test]
fn smoke() {
    let mut g = Graph::new("t");
    g.add_node("a", "core/Repeat");
    g.add_node("b", "core/Repeat");
    g.add_node("o", "core/Output");
    g.add_iip(json!("hello"), PortRef::new("a", "in"));
    g.add_edge(PortRef::new("a", "out"), PortRef::new("b", "in"));
    g.add_edge(PortRef::new("b", "out"), PortRef::new("o", "IN"));
    let r = Registry::with_core();
    let n = Network::start(&g, &r, NetworkConfig::default()).unwrap();
    let out = n.wait();
    assert_eq!(out.output, vec!["hello"]);
    assert!(out.errors.is_empty());
}

//! The example WebAssembly components, each in a real network, on the real wasmtime host.

mod common;

use common::port;
use common::wasm::{components_dir, host, optional_guest, registry_with};
use flowd::engine::NetworkConfig;
use flowd::{Graph, Ip, Network, Registry};
use serde_json::json;

fn registry() -> std::sync::Arc<Registry> {
    registry_with(&host(&[]), &[&components_dir()])
}

/// Runs `component` (configured by `config` IIPs) on `ips` fed into its `in`, showing `out`.
fn through(
    registry: &Registry,
    component: &str,
    config: &[(&str, serde_json::Value)],
    ips: Vec<Ip>,
) -> Vec<String> {
    let mut graph = Graph::new("wasm-test");
    graph.add_node("c", component);
    graph.add_node("show", "core/Output");
    for (name, value) in config {
        graph.add_iip(value.clone(), port("c", name));
    }
    graph.add_edge(port("c", "out"), port("show", "in"));
    graph.add_inport("IN", "c", "in");
    let mut network = Network::start(&graph, registry, NetworkConfig::default()).expect("starts");
    let mut input = network.take_inport("IN").expect("exported");
    let feeder = std::thread::spawn(move || {
        let _ = input.send_batch(ips);
    });
    let outcome = network.wait();
    feeder.join().expect("the feeder ends");
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    outcome.output
}

#[test]
fn every_example_component_is_registered_with_its_ports() {
    let registry = registry();
    for name in [
        "text/Uppercase",
        "json/Field",
        "stats/Aggregate",
        "route/ByPattern",
    ] {
        let spec = registry
            .spec(name)
            .unwrap_or_else(|| panic!("{name} is registered"));
        assert!(!spec.description.is_empty());
        assert!(
            spec.find_inport("in").is_some(),
            "{name} has an inport 'in'"
        );
    }
}

#[test]
fn uppercase_transforms_text_and_keeps_brackets() {
    let registry = registry();
    let out = through(
        &registry,
        "text/Uppercase",
        &[],
        vec![
            Ip::open(""),
            Ip::data("hello"),
            Ip::data("wörld"),
            Ip::close(""),
        ],
    );
    assert_eq!(out, vec!["<", "HELLO", "WöRLD", ">"]);
}

#[test]
fn json_field_extracts_a_path() {
    let registry = registry();
    let out = through(
        &registry,
        "json/Field",
        &[("path", json!("a.b.1"))],
        vec![
            Ip::data(r#"{"a": {"b": [10, {"c": true}]}}"#),
            Ip::data(r#"{"a": {"b": [1, 2]}}"#),
        ],
    );
    assert_eq!(out, vec![r#"{"c":true}"#, "2"]);
}

#[test]
fn aggregate_keeps_state_per_substream() {
    let registry = registry();
    let out = through(
        &registry,
        "stats/Aggregate",
        &[],
        vec![
            Ip::open("a"),
            Ip::data("1"),
            Ip::data("2"),
            Ip::data("3"),
            Ip::close("a"),
        ],
    );
    let stats: Vec<serde_json::Value> = out
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(stats.len(), 1, "{out:?}");
    assert_eq!(stats[0]["count"], 3);
    assert_eq!(stats[0]["sum"], 6);
    assert_eq!(stats[0]["mean"], 2);
}

#[test]
fn router_sends_by_pattern_to_array_ports() {
    let registry = registry();
    let mut graph = Graph::new("router");
    graph.add_node("r", "route/ByPattern");
    graph.add_iip(json!(["apple*", "*berry"]), port("r", "patterns"));
    for (i, name) in ["apples", "berries"].iter().enumerate() {
        graph.add_node(*name, "core/Count");
        graph.add_edge(port("r", "out").with_index(i), port(name, "in"));
        graph.add_edge(port(name, "out"), port("show", "in"));
    }
    graph.add_node("rest", "core/Count");
    graph.add_edge(port("r", "unmatched"), port("rest", "in"));
    graph.add_node("show", "core/Output");
    graph.add_edge(port("rest", "out"), port("show", "in"));
    for fruit in ["apple pie", "strawberry", "blueberry", "kiwi", "apple"] {
        graph.add_iip(json!(fruit), port("r", "in"));
    }
    let outcome = Network::start(&graph, &registry, NetworkConfig::default())
        .expect("starts")
        .wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let mut counts = outcome.output;
    counts.sort();
    assert_eq!(counts, vec!["1", "2", "2"]);
}

#[test]
#[cfg_attr(
    not(all(flowd_c_guest, flowd_python_guest)),
    ignore = "needs the C and Python guests: bash components/build.sh"
)]
fn rust_c_and_python_components_run_in_one_network() {
    optional_guest("c_prefix.wasm");
    optional_guest("py_format.wasm");
    let registry = registry();
    let graph = Graph::from_fbp(
        "'hello world' -> IN Up(text/Uppercase) OUT -> IN P(c/Prefix) OUT -> IN F(py/Format) OUT -> IN Show(core/Output)\n\
         '>> ' -> PREFIX P\n\
         '[{}]' -> TEMPLATE F\n",
    )
    .expect("parses");
    let outcome = Network::start(&graph, &registry, NetworkConfig::default())
        .expect("starts")
        .wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.output, vec!["[>> HELLO WORLD]"]);
}

#[test]
#[cfg_attr(
    not(flowd_c_guest),
    ignore = "needs the C guest: bash components/build.sh"
)]
fn c_component_forwards_brackets_and_prefixes_data() {
    optional_guest("c_prefix.wasm");
    let registry = registry();
    let out = through(
        &registry,
        "c/Prefix",
        &[("prefix", json!("# "))],
        vec![Ip::open(""), Ip::data("a"), Ip::close(""), Ip::data("b")],
    );
    assert_eq!(out, vec!["<", "# a", ">", "# b"]);
}

#[test]
#[cfg_attr(
    not(flowd_python_guest),
    ignore = "needs the Python guest: bash components/build.sh"
)]
fn python_component_formats_and_reports_bad_input() {
    optional_guest("py_format.wasm");
    let registry = registry();
    let out = through(
        &registry,
        "py/Format",
        &[("template", json!("{name} is {age}"))],
        vec![Ip::data(r#"{"name": "Ada", "age": 36}"#)],
    );
    assert_eq!(out, vec!["Ada is 36"]);
}

#[test]
fn guests_run_on_a_pooled_host_and_as_threads() {
    let pooled = flowd::component::wasm::WasmHost::new(flowd::component::wasm::WasmConfig {
        cache_dir: Some(common::wasm::cache_dir()),
        pooling: Some(16),
        ..Default::default()
    })
    .expect("a pooled host");
    let registry = registry_with(&pooled, &[&components_dir()]);
    let ips = vec![Ip::open(""), Ip::data("pooled"), Ip::close("")];
    assert_eq!(
        through(&registry, "text/Uppercase", &[], ips),
        vec!["<", "POOLED", ">"]
    );
    // A guest on a thread of its own drives its calls the same way.
    let registry = self::registry();
    let mut graph = Graph::new("threads");
    graph.add_node("c", "text/Uppercase");
    graph.add_node("show", "core/Output");
    graph.add_edge(port("c", "out"), port("show", "in"));
    graph.add_iip(json!("on a thread"), port("c", "in"));
    let config = NetworkConfig {
        tasks: false,
        ..NetworkConfig::default()
    };
    let outcome = Network::start(&graph, &registry, config)
        .expect("starts")
        .wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.output, vec!["ON A THREAD"]);
}

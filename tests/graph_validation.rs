//! Each malformed-graph error names what is wrong, and an invalid graph never starts.

mod common;

use common::test_registry;
use flowd::engine::NetworkConfig;
use flowd::graph::{Error, ValidationError};
use flowd::{Graph, Network};

fn problems(json: &str) -> Vec<ValidationError> {
    let graph = Graph::from_json(json).expect("the JSON parses");
    match graph.validate(&test_registry()) {
        Err(Error::Invalid(problems)) => problems,
        other => panic!("expected validation errors, got {other:?}"),
    }
}

fn one_problem(json: &str) -> String {
    let problems = problems(json);
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems[0].to_string()
}

#[test]
fn unknown_component_names_node_and_suggests() {
    let text = one_problem(r#"{"processes": {"a": {"component": "core/Repaet"}}}"#);
    assert_eq!(
        text,
        "process 'a': unknown component 'core/Repaet' (did you mean 'core/Repeat'?)"
    );
}

#[test]
fn unknown_port_names_node_port_and_alternatives() {
    let text = one_problem(
        r#"{"processes": {"a": {"component": "core/Repeat"}, "b": {"component": "core/Drop"}},
            "connections": [{"src": {"process": "a", "port": "output"}, "tgt": {"process": "b", "port": "in"}}]}"#,
    );
    assert!(text.contains("edge a.output -> b.in"), "{text}");
    assert!(text.contains("has no outport 'output'"), "{text}");
    assert!(text.contains("(it has 'out')"), "{text}");
}

#[test]
fn edge_to_a_missing_process_is_named() {
    let text = one_problem(
        r#"{"processes": {"a": {"component": "core/Repeat"}},
            "connections": [{"src": {"process": "a", "port": "out"}, "tgt": {"process": "ghost", "port": "in"}}]}"#,
    );
    assert_eq!(text, "edge a.out -> ghost.in: no process 'ghost'");
}

#[test]
fn iip_to_a_missing_process_is_named() {
    let text =
        one_problem(r#"{"connections": [{"data": 1, "tgt": {"process": "ghost", "port": "in"}}]}"#);
    assert!(
        text.contains("IIP 1 -> ghost.in: no process 'ghost'"),
        "{text}"
    );
}

#[test]
fn duplicate_process_id_is_named() {
    let text = one_problem(
        r#"{"processes": {"a": {"component": "core/Repeat"}, "a": {"component": "core/Drop"}}}"#,
    );
    assert_eq!(text, "duplicate process id 'a'");
}

#[test]
fn index_on_a_plain_port_is_named() {
    let text = one_problem(
        r#"{"processes": {"a": {"component": "core/Repeat"}, "b": {"component": "core/Drop"}},
            "connections": [{"src": {"process": "a", "port": "out", "index": 2}, "tgt": {"process": "b", "port": "in"}}]}"#,
    );
    assert!(
        text.contains("port 'out' of process 'a' is not an array port, but index 2 was given"),
        "{text}"
    );
}

#[test]
fn exported_port_to_a_missing_port_is_named() {
    let text = one_problem(
        r#"{"processes": {"a": {"component": "core/Repeat"}},
            "inports": {"IN": {"process": "a", "port": "nope"}}}"#,
    );
    assert!(text.starts_with("exported inport 'IN'"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = problems(
        r#"{"processes": {"a": {"component": "nope/A"}, "b": {"component": "core/Drop"}},
            "connections": [{"src": {"process": "b", "port": "x"}, "tgt": {"process": "c", "port": "in"}}]}"#,
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err =
        Graph::from_json("{\n \"processes\": {\n  \"a\": {\"component\": }\n }\n}").unwrap_err();
    match err {
        Error::Json { line, column, .. } => assert_eq!((line, column), (3, 22)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_invalid_graph_never_starts() {
    let graph = Graph::from_json(r#"{"processes": {"a": {"component": "nope/Nope"}}}"#).unwrap();
    let err = Network::start(&graph, &test_registry(), NetworkConfig::default())
        .err()
        .expect("an invalid graph must not start");
    assert!(
        err.to_string().contains("unknown component 'nope/Nope'"),
        "{err}"
    );
}

#[test]
fn an_unconnected_required_port_is_named() {
    let text = one_problem(
        r#"{"processes": {"f": {"component": "core/Filter"}},
            "connections": [{"data": "x", "tgt": {"process": "f", "port": "in"}}]}"#,
    );
    assert_eq!(
        text,
        "process 'f': required inport 'pattern' of core/Filter is not connected"
    );
}

#[test]
fn a_required_bang_port_may_stay_unconnected() {
    // noflo-ui shows core/Kick's `in` (a bang port) as a button, never as a wire.
    let graph = flowd::Graph::from_json(
        r#"{"processes": {"k": {"component": "core/Kick"}, "show": {"component": "core/Output"}},
            "connections": [{"data": "x", "tgt": {"process": "k", "port": "data"}},
                            {"src": {"process": "k", "port": "out"}, "tgt": {"process": "show", "port": "in"}}]}"#,
    )
    .expect("parses");
    let registry = flowd::Registry::with_core();
    graph
        .validate(&registry)
        .expect("an unwired bang port is fine");
    let outcome = flowd::Network::start(&graph, &registry, Default::default())
        .expect("starts")
        .wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

#[test]
fn an_unusable_edge_capacity_is_refused_before_anything_is_allocated() {
    for capacity in ["1e18", "0", "\"many\"", "-3"] {
        let text = one_problem(&format!(
            r#"{{"processes": {{"a": {{"component": "core/Repeat"}}, "b": {{"component": "core/Drop"}}}},
                "connections": [{{"src": {{"process": "a", "port": "out"}}, "tgt": {{"process": "b", "port": "in"}},
                                  "metadata": {{"capacity": {capacity}}}}}]}}"#
        ));
        assert!(text.starts_with("edge a.out -> b.in: capacity"), "{text}");
        assert!(text.contains("not an integer from 1 to 1048576"), "{text}");
    }
}

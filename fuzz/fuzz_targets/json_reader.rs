//! The FBP JSON reader: any text either reads to a graph or is refused with an error; a graph
//! it reads can be validated, written in both formats, and its JSON reads again, to the same
//! graph when its names are unique (the reader keeps duplicate ids for validation to report,
//! which a JSON object cannot hold twice).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = HashSet::new();
    names.into_iter().all(|name| seen.insert(name))
}

fuzz_target!(|text: &str| {
    let Ok(graph) = flowd::Graph::from_json(text) else {
        return;
    };
    let registry = flowd::Registry::with_core();
    let _ = graph.validate(&registry);
    let _ = graph.to_fbp();
    let json = graph.to_json_string();
    let again = match flowd::Graph::from_json(&json) {
        Ok(again) => again,
        Err(error) => panic!("a graph written as JSON does not read again: {error}\n{json}"),
    };
    if unique(graph.nodes.iter().map(|n| n.id.as_str()))
        && unique(graph.inports.iter().map(|p| p.name.as_str()))
        && unique(graph.outports.iter().map(|p| p.name.as_str()))
    {
        assert_eq!(again, graph, "JSON written and read back differs:\n{json}");
    }
});

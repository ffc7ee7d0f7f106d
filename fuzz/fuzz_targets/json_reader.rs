//! The FBP JSON reader: any text either reads to a graph or is refused with an error; a graph
//! it reads can be validated, flattened, written in both formats, and its JSON reads again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(graph) = flowd::Graph::from_json(text) else {
        return;
    };
    let registry = flowd::Registry::with_core();
    let _ = graph.validate(&registry);
    let _ = graph.to_fbp();
    let json = graph.to_json_string();
    match flowd::Graph::from_json(&json) {
        Ok(again) => assert_eq!(again, graph, "JSON written and read back differs:\n{json}"),
        Err(error) => panic!("a graph written as JSON does not read again: {error}\n{json}"),
    }
});

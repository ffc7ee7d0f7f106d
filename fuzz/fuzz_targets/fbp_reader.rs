//! The `.fbp` reader: any text either reads to a graph or is refused with an error; a graph it
//! reads can be validated, written in both formats, and the written `.fbp` reads again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(graph) = flowd::Graph::from_fbp(text) else {
        return;
    };
    let registry = flowd::Registry::with_core();
    let _ = graph.validate(&registry);
    let _ = graph.to_json();
    let written = graph.to_fbp();
    if let Err(error) = flowd::Graph::from_fbp(&written) {
        panic!("a graph written as .fbp does not read again: {error}\n{written}");
    }
});

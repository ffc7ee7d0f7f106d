//! `core/Split`: copies every IP to every connected index of an array outport.

use super::{NativeComponent, in_port, try_send};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};

/// Copies every IP on `in`, brackets included, to each connected index of the array outport
/// `out`, in index order (copies share the payload).
///
/// An index whose receiver has ended is skipped from then on; when no index is left open (or
/// none was connected), the process ends, which closes `in` upstream. An index connected
/// while the network runs gets copies from the next IP on.
#[derive(Default)]
pub struct Split;

impl NativeComponent for Split {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/Split",
            "Copies every packet to each connection of OUT",
        )
        .icon("expand")
        .inport(in_port("Packets to copy"))
        .outport(PortSpec::new("out", "all", "A copy of every packet, on each index").array())
    }
}

impl Component for Split {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let mut outputs = Vec::new();
        for index in ctx.outport_indexes("out") {
            outputs.push(ctx.outport_at("out", index)?);
        }
        let mut generation = ctx.port_generation();
        while !outputs.is_empty() {
            let Some(ip) = ctx.recv(input)? else {
                break;
            };
            // An index connected while the network runs gets copies from this IP on.
            if ctx.port_generation() != generation {
                generation = ctx.port_generation();
                for index in ctx.outport_indexes("out") {
                    let output = ctx.outport_at("out", index)?;
                    if !outputs.contains(&output) {
                        outputs.push(output);
                    }
                }
            }
            let mut open = Vec::with_capacity(outputs.len());
            for &output in &outputs {
                if try_send(ctx, output, ip.clone())? {
                    open.push(output);
                }
            }
            outputs = open;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use crate::engine::Event;
    use crate::graph::Graph;

    /// `IN -> s.in`, and `s.out[i] -> show{i}.in` for each of `indexes`.
    fn fan_out(indexes: &[usize]) -> Graph {
        let mut graph = Graph::new("split");
        graph.add_node("s", "core/Split");
        graph.add_inport("IN", "s", "in");
        for i in indexes {
            let show = format!("show{i}");
            graph.add_node(&show, "core/Output");
            graph.add_edge(port("s", "out").with_index(*i), port(&show, "in"));
        }
        graph
    }

    #[test]
    fn copies_every_ip_to_every_index() {
        let outcome = run_with_input(
            &fan_out(&[0, 1, 2]),
            vec![open("g"), data("a"), data("b"), close("g")],
        );
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let mut lines = outcome.output;
        lines.sort();
        let mut expected = Vec::new();
        for _ in 0..3 {
            expected.extend(strings(&["< g", "> g", "a", "b"]));
        }
        expected.sort();
        assert_eq!(lines, expected);
    }

    #[test]
    fn indexes_without_explicit_numbers_are_numbered_in_order() {
        let mut graph = Graph::new("split");
        graph.add_node("s", "core/Split");
        graph.add_node("a", "core/Output");
        graph.add_node("b", "core/Output");
        graph.add_iip(json!("x"), port("s", "in"));
        graph.add_edge(port("s", "out"), port("a", "in"));
        graph.add_edge(port("s", "out"), port("b", "in"));
        let outcome = run(&graph);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.output, strings(&["x", "x"]));
    }

    #[test]
    fn a_closed_index_is_skipped() {
        let mut graph = fan_out(&[0]);
        // Index 1 goes to a process that fails at once, closing its inport.
        graph.add_node("bad", "core/Filter");
        graph.add_iip(json!("("), port("bad", "pattern"));
        graph.add_edge(port("s", "out").with_index(1), port("bad", "in"));
        let mut network = start(&graph);
        loop {
            match network.events().recv() {
                Ok(Event::ProcessEnded { node }) if node == "bad" => break,
                Ok(_) => {}
                Err(_) => panic!("the network ended before 'bad' did"),
            }
        }
        let mut input = network.take_inport("IN").expect("IN is exported");
        let ips: Vec<_> = (0..300).map(|i| data(&i.to_string())).collect();
        input.send_batch(ips).expect("split takes everything");
        drop(input);
        let outcome = network.wait();
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let expected: Vec<String> = (0..300).map(|i| i.to_string()).collect();
        assert_eq!(outcome.output, expected);
    }
}

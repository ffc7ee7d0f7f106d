//! `core/Merge`: forwards the IPs of several inputs to one output as they arrive.

use super::{NativeComponent, out_port};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{InPort, OutPort, ProcessContext, ProcessError, Received};
use crate::ip::Ip;

/// Forwards every IP of every connected index of the array inport `in` to `out`, in the order
/// they arrive, serving the indexes in turn; ends when every index has ended. An index
/// connected while the network runs is served from its first IP.
///
/// A substream is kept whole: once an index sends an opening bracket, only that index is read
/// until the bracket closes (or that index ends), so bracketed groups from different inputs
/// never interleave. Several edges into `in` without an index each get an index of their own.
#[derive(Default)]
pub struct Merge;

impl NativeComponent for Merge {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/Merge",
            "Forwards the packets of every input to one output",
        )
        .icon("compress")
        .inport(
            PortSpec::new(
                "in",
                "all",
                "Packets to merge, from any number of connections",
            )
            .array(),
        )
        .outport(out_port("Every packet, in the order they arrived"))
    }
}

impl Component for Merge {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let output = ctx.outport("out")?;
        loop {
            // Every index, those connected while the network runs included.
            match ctx.recv_any_index("in")? {
                Received::Ip(input, ip) => {
                    let opens = matches!(ip, Ip::Open(_));
                    ctx.send(output, ip)?;
                    if opens {
                        forward_substream(ctx, input, output)?;
                    }
                }
                Received::Ended(_) => {}
                Received::AllEnded | Received::Timeout => return Ok(()),
            }
        }
    }
}

/// Forwards from `input` alone until the bracket just opened is closed or `input` ends.
fn forward_substream(
    ctx: &mut ProcessContext,
    input: InPort,
    output: OutPort,
) -> Result<(), ProcessError> {
    let mut depth = 1usize;
    while depth > 0 {
        let Some(ip) = ctx.recv(input)? else {
            break;
        };
        match ip {
            Ip::Open(_) => depth += 1,
            Ip::Close(_) => depth -= 1,
            Ip::Data(_) => {}
        }
        ctx.send(output, ip)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use crate::graph::Graph;

    #[test]
    fn merges_several_inputs() {
        let mut graph = Graph::new("merge");
        graph.add_node("m", "core/Merge");
        graph.add_node("show", "core/Output");
        graph.add_edge(port("m", "out"), port("show", "in"));
        for i in 0..3 {
            let source = format!("r{i}");
            graph.add_node(&source, "core/Repeat");
            graph.add_iip(json!(format!("{i}a")), port(&source, "in"));
            graph.add_iip(json!(format!("{i}b")), port(&source, "in"));
            graph.add_edge(port(&source, "out"), port("m", "in").with_index(i));
        }
        // A plain fan-in edge without an index gets the next one.
        graph.add_node("r3", "core/Repeat");
        graph.add_iip(json!("3a"), port("r3", "in"));
        graph.add_edge(port("r3", "out"), port("m", "in"));
        let outcome = run(&graph);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let mut lines = outcome.output;
        // Each input's own order is kept.
        for i in 0..3 {
            let a = lines.iter().position(|l| *l == format!("{i}a"));
            let b = lines.iter().position(|l| *l == format!("{i}b"));
            assert!(a < b, "{lines:?}");
        }
        lines.sort();
        assert_eq!(lines, strings(&["0a", "0b", "1a", "1b", "2a", "2b", "3a"]));
    }

    #[test]
    fn substreams_do_not_interleave() {
        let mut graph = Graph::new("merge");
        graph.add_node("m", "core/Merge");
        graph.add_node("show", "core/Output");
        graph.add_edge(port("m", "out"), port("show", "in"));
        graph.add_inport("A", "m", "in");
        graph.add_inport("B", "m", "in");
        let mut network = start(&graph);
        // Each side from its own thread: while Merge passes one side's substream, the other
        // side may fill its edge, and a single sender would then wait on it for ever.
        let senders: Vec<_> = ["A", "B"]
            .into_iter()
            .map(|name| {
                let mut inport = network.take_inport(name).expect("exported");
                let side = name.to_lowercase();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let label = format!("{side}{i}");
                        inport
                            .send_batch([open(&label), data(&format!("{side}1"))])
                            .expect("sent");
                        inport
                            .send_batch([data(&format!("{side}2")), close(&label)])
                            .expect("sent");
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().expect("the sender ends");
        }
        let outcome = network.wait();
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.output.len(), 20 * 8);
        for group in outcome.output.chunks(4) {
            let side = &group[0][2..3];
            assert!(group[0].starts_with(&format!("< {side}")), "{group:?}");
            assert_eq!(group[1], format!("{side}1"));
            assert_eq!(group[2], format!("{side}2"));
            assert_eq!(group[3], group[0].replacen('<', ">", 1));
        }
    }

    #[test]
    fn no_inputs_ends_at_once() {
        let mut graph = Graph::new("merge");
        graph.add_node("m", "core/Merge");
        graph.add_node("show", "core/Output");
        graph.add_edge(port("m", "out"), port("show", "in"));
        let outcome = run(&graph);
        assert!(outcome.errors.is_empty());
        assert!(outcome.output.is_empty());
    }
}

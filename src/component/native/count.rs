//! `core/Count`: counts data IPs, per stream and per substream.

use super::{NativeComponent, in_port};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::Ip;

/// Counts the data IPs on `in` and sends counts (as decimal text) to `out`.
///
/// - Data IPs are counted and not forwarded.
/// - Brackets are forwarded. At each closing bracket the count of data IPs inside that
///   substream (nested substreams included) is sent just before the bracket, so
///   `< a, x, < b, y, z >, > a` gives `< a`, `< b`, `2`, `> b`, `3`, `> a`.
/// - At end of stream the count of every data IP of the stream is sent (`0` for an empty
///   stream), after the substreams' counts.
/// - A closing bracket with no matching opening one is forwarded without a count.
#[derive(Default)]
pub struct Count;

impl NativeComponent for Count {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("core/Count", "Counts packets, per substream and per stream")
            .icon("sort-numeric-asc")
            .inport(in_port("Packets to count"))
            .outport(PortSpec::new(
                "out",
                "int",
                "The count of each substream at its close, and of the stream at its end",
            ))
    }
}

impl Component for Count {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let mut total: u64 = 0;
        // The counts of the substreams open now, outermost first.
        let mut open: Vec<u64> = Vec::new();
        while let Some(ip) = ctx.recv(input)? {
            match ip {
                Ip::Data(_) => {
                    total += 1;
                    for count in &mut open {
                        *count += 1;
                    }
                }
                Ip::Open(_) => {
                    open.push(0);
                    ctx.send(output, ip)?;
                }
                Ip::Close(_) => {
                    if let Some(count) = open.pop() {
                        ctx.send(output, Ip::data(count.to_string()))?;
                    }
                    ctx.send(output, ip)?;
                }
            }
        }
        ctx.send(output, Ip::data(total.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn counts_the_stream_at_its_end() {
        let lines = lines_through("core/Count", &[], vec![data("a"), data("b"), data("c")]);
        assert_eq!(lines, strings(&["3"]));
    }

    #[test]
    fn an_empty_stream_counts_zero() {
        assert_eq!(lines_through("core/Count", &[], vec![]), strings(&["0"]));
    }

    #[test]
    fn counts_each_substream_at_its_close() {
        let lines = lines_through(
            "core/Count",
            &[],
            vec![
                open("a"),
                data("x"),
                open("b"),
                data("y"),
                data("z"),
                close("b"),
                close("a"),
                data("w"),
                open("c"),
                close("c"),
            ],
        );
        assert_eq!(
            lines,
            strings(&["< a", "< b", "2", "> b", "3", "> a", "< c", "0", "> c", "4"])
        );
    }

    #[test]
    fn an_unmatched_close_is_forwarded_without_a_count() {
        let lines = lines_through("core/Count", &[], vec![data("x"), close("")]);
        assert_eq!(lines, strings(&[">", "1"]));
    }
}

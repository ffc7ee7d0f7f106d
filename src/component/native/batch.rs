//! `core/Batch`: groups data IPs into bracketed batches by count or by time.

use std::time::{Duration, Instant};

use super::setting::Setting;
use super::{NativeComponent, in_port, millis, positive_int};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError, Received};
use crate::ip::Ip;

/// The batch size when `size` is not set.
const DEFAULT_SIZE: u64 = 100;

/// Forwards the data IPs on `in` to `out` in batches, each a substream between an opening and
/// a closing bracket (empty labels): a batch closes when it holds `size` IPs (default 100), or
/// `timeout` milliseconds after its first IP arrived (when `timeout` is set above 0), or at end
/// of stream; an empty batch is never sent.
///
/// The IPs of a batch go out as they arrive (after its opening bracket), so a batch costs no
/// memory and downstream sees the first IP at once. A bracket on `in` closes the batch open at
/// the time and is forwarded as it is, so batches never straddle the input's substreams.
/// Settings changed while it runs apply from the next batch.
#[derive(Default)]
pub struct Batch;

impl NativeComponent for Batch {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/Batch",
            "Groups packets into bracketed batches by count or time",
        )
        .icon("archive")
        .inport(in_port("Packets to group"))
        .inport(PortSpec::new(
            "size",
            "int",
            "Packets per batch at most (default 100)",
        ))
        .inport(PortSpec::new(
            "timeout",
            "number",
            "Milliseconds after its first packet that a batch closes (default 0: no limit)",
        ))
        .outport(PortSpec::new(
            "out",
            "all",
            "The packets, each batch between brackets",
        ))
    }
}

impl Component for Batch {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut size = Setting::read(ctx, "size", positive_int, || Ok(DEFAULT_SIZE))?;
        let mut timeout = Setting::read(ctx, "timeout", millis, || Ok(Duration::ZERO))?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        // The batch open now: how many IPs it holds and when it must close.
        let mut open: Option<(u64, Option<Instant>)> = None;
        loop {
            let received = match open {
                Some((_, Some(deadline))) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    ctx.recv_any_timeout(&[input], left)?
                }
                _ => ctx.recv_any(&[input])?,
            };
            match received {
                Received::Ip(_, ip @ Ip::Data(_)) => {
                    let (held, deadline) = match open.take() {
                        Some(batch) => batch,
                        None => {
                            ctx.send(output, Ip::open(""))?;
                            let limit = *timeout.get(ctx)?;
                            (
                                0,
                                (!limit.is_zero())
                                    .then(|| Instant::now().checked_add(limit))
                                    .flatten(),
                            )
                        }
                    };
                    ctx.send(output, ip)?;
                    if held + 1 >= *size.get(ctx)? {
                        ctx.send(output, Ip::close(""))?;
                    } else {
                        open = Some((held + 1, deadline));
                    }
                }
                Received::Ip(_, bracket) => {
                    if open.take().is_some() {
                        ctx.send(output, Ip::close(""))?;
                    }
                    ctx.send(output, bracket)?;
                }
                Received::Timeout => {
                    open = None;
                    ctx.send(output, Ip::close(""))?;
                    // Closed now, not when the next IP fills the output batch.
                    ctx.flush()?;
                }
                Received::Ended(_) | Received::AllEnded => break,
            }
        }
        if open.is_some() {
            ctx.send(output, Ip::close(""))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use crate::graph::Graph;

    #[test]
    fn groups_by_size_and_closes_the_last_batch_at_the_end() {
        let ips = (1..=5).map(|n| data(&n.to_string())).collect();
        let lines = lines_through("core/Batch", &[("size", json!(2))], ips);
        assert_eq!(
            lines,
            strings(&["<", "1", "2", ">", "<", "3", "4", ">", "<", "5", ">"])
        );
    }

    #[test]
    fn input_brackets_close_the_batch_and_pass_through() {
        let lines = lines_through(
            "core/Batch",
            &[("size", json!(3))],
            vec![data("1"), open("g"), data("2"), close("g"), close("g")],
        );
        assert_eq!(
            lines,
            strings(&["<", "1", ">", "< g", "<", "2", ">", "> g", "> g"])
        );
    }

    #[test]
    fn a_batch_closes_when_its_time_is_up() {
        // A slow source: one IP, then a pause far longer than the timeout, then another.
        let mut graph = Graph::new("batch");
        graph.add_node("slow", "core/Throttle");
        graph.add_node("batch", "core/Batch");
        graph.add_node("show", "core/Output");
        graph.add_iip(json!(500), port("slow", "interval"));
        graph.add_iip(json!(1000), port("batch", "size"));
        graph.add_iip(json!(20), port("batch", "timeout"));
        graph.add_edge(port("slow", "out"), port("batch", "in"));
        graph.add_edge(port("batch", "out"), port("show", "in"));
        graph.add_inport("IN", "slow", "in");
        let outcome = run_with_input(&graph, vec![data("a"), data("b")]);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.output, strings(&["<", "a", ">", "<", "b", ">"]));
    }

    #[test]
    fn a_bad_size_is_an_error_naming_it() {
        let errors = errors_through("core/Batch", &[("size", json!(0))], vec![data("x")]);
        assert!(errors[0].1.contains("'size'"), "{errors:?}");
    }
}

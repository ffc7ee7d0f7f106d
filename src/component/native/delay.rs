//! `core/Delay`: forwards every IP after a delay.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::setting::Setting;
use super::{NativeComponent, in_port, millis, out_port};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError, Received};
use crate::ip::Ip;

/// How long IPs are held when `delay` is not set (as noflo's `core/RepeatDelayed`).
const DEFAULT_DELAY: Duration = Duration::from_millis(500);

/// At most this many IPs are held at once; beyond that, `in` waits (backpressure).
const MAX_HELD: usize = 100_000;

/// At most this many bytes of payload are held at once; beyond that, `in` waits.
const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// What an IP held costs beside its payload (the queue entry and the payload's header).
const HELD_OVERHEAD: usize = 64;

/// Forwards every IP on `in`, brackets included and in order, to `out` once `delay`
/// milliseconds (default 500, fractions allowed) have passed since it was received.
///
/// This is a delay line, not a rate limit: IPs received together leave together, so a stream
/// is shifted in time by `delay` rather than slowed down (see `core/Throttle` for that). What
/// is held is bounded: up to 100,000 IPs and 64 MiB of payload at once (about 70 MiB in all);
/// a stream faster than that per `delay` is slowed to it, by backpressure on `in`. The delay is
/// waited for in a way that a network stop interrupts. A `delay` that is not a number of
/// milliseconds of 0 or more ends the process with an error.
#[derive(Default)]
pub struct Delay;

impl NativeComponent for Delay {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("core/Delay", "Forwards every packet after a delay")
            .icon("clock-o")
            .inport(in_port("Packets to delay"))
            .inport(PortSpec::new(
                "delay",
                "number",
                "The delay in milliseconds (default 500)",
            ))
            .outport(out_port("The same packets, later"))
    }
}

impl Component for Delay {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut delay = Setting::read(ctx, "delay", millis, || Ok(DEFAULT_DELAY))?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        // The IPs held, each with the time it is due, and the bytes they take.
        let mut pending: VecDeque<(Instant, Ip)> = VecDeque::new();
        let mut held_bytes = 0;
        let mut ended = false;
        loop {
            let now = Instant::now();
            while pending.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, ip)) = pending.pop_front() {
                    held_bytes -= held_size(&ip);
                    ctx.send(output, ip)?;
                }
            }
            let next_due = pending.front().map(|(due, _)| *due);
            let full = pending.len() >= MAX_HELD || held_bytes >= MAX_HELD_BYTES;
            if ended || full {
                match next_due {
                    Some(due) => ctx.sleep(due.saturating_duration_since(Instant::now()))?,
                    None => return Ok(()),
                }
                continue;
            }
            let received = match next_due {
                Some(due) => {
                    ctx.recv_any_timeout(&[input], due.saturating_duration_since(Instant::now()))?
                }
                None => ctx.recv_any(&[input])?,
            };
            match received {
                Received::Ip(_, ip) => {
                    // `millis` refused delays the clock cannot add.
                    let due = Instant::now()
                        .checked_add(*delay.get(ctx)?)
                        .unwrap_or_else(Instant::now);
                    held_bytes += held_size(&ip);
                    pending.push_back((due, ip));
                }
                Received::Ended(_) | Received::AllEnded => ended = true,
                Received::Timeout => {}
            }
        }
    }
}

/// The memory an IP held costs, counted against [`MAX_HELD_BYTES`].
fn held_size(ip: &Ip) -> usize {
    ip.payload().as_bytes().len() + HELD_OVERHEAD
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::super::testing::*;
    use crate::graph::Graph;

    #[test]
    fn forwards_everything_in_order() {
        let lines = lines_through(
            "core/Delay",
            &[("delay", json!(2))],
            vec![open("g"), data("1"), data("2"), close("g"), data("3")],
        );
        assert_eq!(lines, strings(&["< g", "1", "2", "> g", "3"]));
    }

    #[test]
    fn more_than_it_holds_still_all_arrive() {
        let count = super::MAX_HELD + 500;
        let ips: Vec<_> = (0..count).map(|i| data(&i.to_string())).collect();
        let lines = lines_through("core/Delay", &[("delay", json!(20))], ips);
        let expected: Vec<String> = (0..count).map(|i| i.to_string()).collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_long_delay_shifts_a_fast_stream_instead_of_slowing_it() {
        // Everything sent within the delay is held at once: the sender is never held back.
        let mut graph = Graph::new("delay");
        graph.add_node("d", "core/Delay");
        graph.add_node("show", "core/Drop");
        graph.add_iip(json!(600_000), port("d", "delay"));
        graph.add_edge(port("d", "out"), port("show", "in"));
        graph.add_inport("IN", "d", "in");
        let mut network = start(&graph);
        let mut input = network.take_inport("IN").expect("the graph exports IN");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let feeder = std::thread::spawn(move || {
            let sent = input.send_batch((0..20_000).map(|i| data(&i.to_string())));
            let _ = done_tx.send(sent.is_ok());
        });
        let all_taken = done_rx.recv_timeout(Duration::from_secs(60));
        assert!(network.stop_and_wait(Duration::from_secs(5)));
        feeder.join().expect("the feeder ends");
        assert_eq!(
            all_taken,
            Ok(true),
            "the delay line held back its sender before its budget was used"
        );
    }

    #[test]
    fn stop_interrupts_a_long_delay() {
        let mut graph = Graph::new("delay");
        graph.add_node("d", "core/Delay");
        graph.add_node("show", "core/Output");
        graph.add_iip(json!(600_000), port("d", "delay"));
        graph.add_iip(json!("late"), port("d", "in"));
        graph.add_edge(port("d", "out"), port("show", "in"));
        let mut network = start(&graph);
        assert!(network.stop_and_wait(Duration::from_secs(5)));
    }

    #[test]
    fn a_bad_delay_is_an_error_naming_it() {
        for bad in [json!("soon"), json!(-5), json!(1e300)] {
            let errors = errors_through("core/Delay", &[("delay", bad.clone())], vec![data("x")]);
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(errors[0].1.contains("'delay'"), "{errors:?}");
        }
        let errors = errors_through("core/Delay", &[("delay", json!("soon"))], vec![]);
        assert!(errors[0].1.contains("soon"), "{errors:?}");
    }
}

//! `core/Throttle`: limits the rate of data IPs.

use std::time::{Duration, Instant};

use super::setting::Setting;
use super::{NativeComponent, in_port, millis, out_port};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};

/// Forwards every IP on `in` to `out`, spacing data IPs at least `interval` milliseconds apart
/// (default 1000, fractions allowed): at most one data IP per interval.
///
/// No IP is dropped: a data IP that comes too soon waits for its turn, and `in` waits behind
/// it (backpressure). Brackets are forwarded at once, without waiting or counting. The first
/// data IP goes out at once. Waiting is interrupted by a network stop. An `interval` that is
/// not a number of milliseconds of 0 or more ends the process with an error.
#[derive(Default)]
pub struct Throttle;

/// The interval when `interval` is not set.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

impl NativeComponent for Throttle {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("core/Throttle", "Forwards at most one packet per interval")
            .icon("tachometer")
            .inport(in_port("Packets to pace"))
            .inport(PortSpec::new(
                "interval",
                "number",
                "The least time between two packets, in milliseconds (default 1000)",
            ))
            .outport(out_port("The same packets, paced"))
    }
}

impl Component for Throttle {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut interval = Setting::read(ctx, "interval", millis, || Ok(DEFAULT_INTERVAL))?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let mut next: Option<Instant> = None;
        while let Some(ip) = ctx.recv(input)? {
            if ip.is_data() {
                let wait = next.map(|at| at.saturating_duration_since(Instant::now()));
                if let Some(wait) = wait.filter(|wait| !wait.is_zero()) {
                    ctx.sleep(wait)?;
                }
                // `millis` refused intervals the clock cannot add.
                next = Instant::now().checked_add(*interval.get(ctx)?);
            }
            ctx.send(output, ip)?;
        }
        Ok(())
    }
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
            "core/Throttle",
            &[("interval", json!(1))],
            vec![open("g"), data("1"), data("2"), close("g"), data("3")],
        );
        assert_eq!(lines, strings(&["< g", "1", "2", "> g", "3"]));
    }

    #[test]
    fn stop_interrupts_the_wait() {
        let mut graph = Graph::new("throttle");
        graph.add_node("t", "core/Throttle");
        graph.add_node("show", "core/Output");
        graph.add_iip(json!("600000"), port("t", "interval"));
        graph.add_iip(json!("first"), port("t", "in"));
        graph.add_iip(json!("second"), port("t", "in"));
        graph.add_edge(port("t", "out"), port("show", "in"));
        let mut network = start(&graph);
        assert!(network.stop_and_wait(Duration::from_secs(5)));
    }

    #[test]
    fn a_bad_interval_is_an_error_naming_it() {
        let errors = errors_through("core/Throttle", &[("interval", json!({"ms": 5}))], vec![]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("'interval'"), "{errors:?}");
        assert!(errors[0].1.contains(r#"{"ms":5}"#), "{errors:?}");
    }
}

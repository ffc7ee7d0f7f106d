//! `core/Interval`: sends a tick at a steady interval.

use std::time::{Duration, Instant};

use super::setting::Setting;
use super::{NativeComponent, millis, positive_int};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// The interval when `interval` is not set.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Sends a tick to `out` every `interval` milliseconds (default 1000, more than 0, fractions
/// allowed): the tick's number, from 1. The first tick goes out at once.
///
/// It runs until the network stops, `out` closes downstream, or `count` ticks (when set) have
/// gone out. Ticks keep to their schedule; a tick that a slow downstream held up past the next
/// one's time is not followed by a burst: the ticks missed are skipped (backpressure never
/// queues ticks). A new `interval` set while it runs applies from the next tick.
#[derive(Default)]
pub struct Interval;

impl NativeComponent for Interval {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/Interval",
            "Sends a numbered tick at a steady interval",
        )
        .icon("clock-o")
        .inport(PortSpec::new(
            "interval",
            "number",
            "Milliseconds between ticks (default 1000)",
        ))
        .inport(PortSpec::new(
            "count",
            "int",
            "How many ticks to send before ending (default: no end)",
        ))
        .outport(PortSpec::new("out", "int", "The tick numbers, from 1"))
    }
}

impl Component for Interval {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut interval =
            Setting::read(ctx, "interval", positive_millis, || Ok(DEFAULT_INTERVAL))?;
        let limit = match ctx.read_config("count")? {
            Some(value) => positive_int("count", value)?,
            None => u64::MAX,
        };
        let output = ctx.outport("out")?;
        let mut due = Instant::now();
        for tick in 1..=limit {
            let wait = due.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                ctx.sleep(wait)?;
            }
            ctx.send(output, Ip::data(tick.to_string()))?;
            // Delivered now, not left in a batch until the next tick.
            ctx.flush()?;
            // The ticks missed while downstream held this one up are skipped, not sent in a
            // burst. `millis` refused intervals the clock cannot add.
            let every = *interval.get(ctx)?;
            let now = Instant::now();
            let next = due.checked_add(every).filter(|next| *next >= now);
            let Some(next) = next.or_else(|| now.checked_add(every)) else {
                break;
            };
            due = next;
        }
        Ok(())
    }
}

/// A duration in milliseconds above 0, the setting of inport `name`.
fn positive_millis(name: &'static str, value: Payload) -> Result<Duration, ProcessError> {
    let text = value.to_string_lossy().into_owned();
    let duration = millis(name, value)?;
    if duration.is_zero() {
        return Err(ProcessError::failed(format!(
            "inport '{name}': invalid value '{text}': expected a number of milliseconds above 0"
        )));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::super::testing::*;
    use crate::graph::Graph;

    fn interval(settings: &[(&str, serde_json::Value)]) -> Graph {
        let mut graph = Graph::new("interval");
        graph.add_node("tick", "core/Interval");
        graph.add_node("show", "core/Output");
        for (name, value) in settings {
            graph.add_iip(value.clone(), port("tick", name));
        }
        graph.add_edge(port("tick", "out"), port("show", "in"));
        graph
    }

    #[test]
    fn sends_count_numbered_ticks_spaced_by_the_interval() {
        let started = Instant::now();
        let outcome = run(&interval(&[("interval", json!(20)), ("count", json!(4))]));
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.output, strings(&["1", "2", "3", "4"]));
        // Three intervals at least lie between the first tick and the last (a lower bound
        // only: a loaded machine may take longer).
        assert!(started.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn runs_until_stopped_without_a_count() {
        let mut network = start(&interval(&[("interval", json!(1))]));
        std::thread::sleep(Duration::from_millis(50));
        assert!(network.stop_and_wait(Duration::from_secs(5)));
    }

    #[test]
    fn a_zero_or_bad_interval_is_an_error_naming_it() {
        for bad in [json!(0), json!("soon"), json!(-5)] {
            let outcome = run(&interval(&[("interval", bad.clone())]));
            assert_eq!(outcome.errors.len(), 1, "{bad}: {:?}", outcome.errors);
            assert!(
                outcome.errors[0].1.contains("'interval'"),
                "{:?}",
                outcome.errors
            );
        }
        let outcome = run(&interval(&[("count", json!(0))]));
        assert!(
            outcome.errors[0].1.contains("'count'"),
            "{:?}",
            outcome.errors
        );
    }
}

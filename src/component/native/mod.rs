//! Native core components, compiled in: the fastest kind.
//!
//! One file per component, each with its spec, its behaviour and its tests. [`register_all`]
//! is the one list of them.
//!
//! # Configuration
//!
//! Components that need settings (a file name, a pattern, a delay) read them from their own
//! inports, usually fed by IIPs, before they process anything: the first data IP on such a port
//! is the setting. A value that arrives later (an IIP added while the network runs) replaces it
//! from the next packet on ([`setting::Setting`]). A bad value ends the process with an error
//! naming the port and the value.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Component, ComponentSpec, PortSpec, Registry};
use crate::engine::{OutPort, ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

mod batch;
mod collect;
mod count;
mod csv;
mod delay;
mod drop;
mod filter;
mod interval;
mod json;
mod kick;
mod merge;
mod output;
mod read_lines;
mod repeat;
pub(crate) mod setting;
mod split;
mod split_text;
mod template;
mod throttle;
mod write_lines;

#[cfg(test)]
mod testing;

/// Registers every core component in `registry`.
pub fn register_all(registry: &Registry) {
    register::<repeat::Repeat>(registry);
    register::<drop::Drop>(registry);
    register::<output::Output>(registry);
    register::<kick::Kick>(registry);
    register::<split::Split>(registry);
    register::<merge::Merge>(registry);
    register::<count::Count>(registry);
    register::<collect::Collect>(registry);
    register::<read_lines::ReadLines>(registry);
    register::<write_lines::WriteLines>(registry);
    register::<split_text::SplitText>(registry);
    register::<filter::Filter>(registry);
    register::<delay::Delay>(registry);
    register::<throttle::Throttle>(registry);
    register::<interval::Interval>(registry);
    register::<batch::Batch>(registry);
    register::<json::Parse>(registry);
    register::<json::Stringify>(registry);
    register::<json::Get>(registry);
    register::<csv::Parse>(registry);
    register::<csv::Write>(registry);
    register::<template::Template>(registry);
}

/// The Rust source of the core component `name`, as compiled into flowd (shown read-only to
/// protocol clients that ask for it).
pub fn source(name: &str) -> Option<&'static str> {
    Some(match name {
        "core/Repeat" => include_str!("repeat.rs"),
        "core/Drop" => include_str!("drop.rs"),
        "core/Output" => include_str!("output.rs"),
        "core/Kick" => include_str!("kick.rs"),
        "core/Split" => include_str!("split.rs"),
        "core/Merge" => include_str!("merge.rs"),
        "core/Count" => include_str!("count.rs"),
        "core/Collect" => include_str!("collect.rs"),
        "core/ReadLines" => include_str!("read_lines.rs"),
        "core/WriteLines" => include_str!("write_lines.rs"),
        "core/SplitText" => include_str!("split_text.rs"),
        "core/Filter" => include_str!("filter.rs"),
        "core/Delay" => include_str!("delay.rs"),
        "core/Throttle" => include_str!("throttle.rs"),
        "core/Interval" => include_str!("interval.rs"),
        "core/Batch" => include_str!("batch.rs"),
        "json/Parse" | "json/Stringify" | "json/Get" => include_str!("json.rs"),
        "csv/Parse" | "csv/Write" => include_str!("csv.rs"),
        "text/Template" => include_str!("template.rs"),
        "core/Exec" => include_str!("../exec/mod.rs"),
        "http/Server" => include_str!("../connect/http/server.rs"),
        "http/Request" => include_str!("../connect/http/request.rs"),
        "nats/Publish" | "nats/Subscribe" => include_str!("../connect/nats.rs"),
        "mqtt/Publish" | "mqtt/Subscribe" => include_str!("../connect/mqtt.rs"),
        "net/TcpConnect" | "net/TcpListen" => include_str!("../connect/tcp.rs"),
        _ => return None,
    })
}

/// A native component: a spec, and a way to make a fresh instance for each process.
pub trait NativeComponent: Component + Default + 'static {
    /// The component's spec.
    fn spec() -> ComponentSpec;
}

/// Registers the native component `C`.
pub fn register<C: NativeComponent>(registry: &Registry) {
    registry.register(
        C::spec(),
        Arc::new(|_: &crate::component::NodeInfo<'_>| {
            Ok(Box::new(C::default()) as Box<dyn Component>)
        }),
    );
}

/// The usual `in` port: any data.
fn in_port(description: &str) -> PortSpec {
    PortSpec::new("in", "all", description)
}

/// The usual `out` port: any data.
fn out_port(description: &str) -> PortSpec {
    PortSpec::new("out", "all", description)
}

/// A duration in milliseconds (a number ≥ 0, fractions allowed), the setting of inport `name`.
pub(crate) fn millis(name: &'static str, value: Payload) -> Result<Duration, ProcessError> {
    let text = value.to_string_lossy();
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|ms| *ms >= 0.0)
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        // A duration so long that no clock can count it is refused too.
        .filter(|duration| Instant::now().checked_add(*duration).is_some())
        .ok_or_else(|| {
            ProcessError::failed(format!(
                "inport '{name}': invalid value '{text}': expected a number of milliseconds (0 or more)"
            ))
        })
}

/// Sends `ip` on `port`; returns `Ok(false)` instead of an error when every connection of the
/// port has closed downstream, so that a component with several outports can go on with the
/// others.
pub(crate) fn try_send(
    ctx: &mut ProcessContext,
    port: OutPort,
    ip: Ip,
) -> Result<bool, ProcessError> {
    match ctx.send(port, ip) {
        Ok(()) => Ok(true),
        Err(ProcessError::Closed { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The usual `error` port: the packets a component could not handle, each with the reason.
pub(crate) fn error_port() -> PortSpec {
    PortSpec::new(
        "error",
        "object",
        "Each packet that could not be handled, as {\"error\": reason, \"input\": text}; \
         when not connected, the first such packet ends the process with the reason",
    )
}

/// Reports that `input` could not be handled because of `reason`: as a packet on `errors` when
/// that port is connected, so that one bad record does not stop a pipeline; otherwise as the
/// process's failure, so that it is never lost silently.
///
/// # Errors
///
/// The failure, when `errors` is not connected; what sending says otherwise.
pub(crate) fn reject(
    ctx: &mut ProcessContext,
    errors: OutPort,
    input: &Payload,
    reason: String,
) -> Result<(), ProcessError> {
    if !ctx.is_outport_connected(errors) {
        return Err(ProcessError::Failed(reason));
    }
    let report = serde_json::json!({ "error": reason, "input": input.to_string_lossy() });
    try_send(ctx, errors, Ip::Data(Payload::from_json(&report))).map(|_| ())
}

/// A whole number above 0, the setting of inport `name`.
pub(crate) fn positive_int(name: &'static str, value: Payload) -> Result<u64, ProcessError> {
    let text = value.to_string_lossy();
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ProcessError::failed(format!(
                "inport '{name}': invalid value '{text}': expected a whole number above 0"
            ))
        })
}

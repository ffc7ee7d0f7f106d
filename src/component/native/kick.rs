//! `core/Kick`: sends a configured packet each time it is kicked.

use super::setting::{self, Setting};
use super::{NativeComponent, out_port};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// Sends the packet set on `data` to `out` once for every data IP on `in`.
///
/// `data` is read first (its first IP; JSON `null` if nothing is connected to it), then each
/// data IP on `in`, whatever it holds, makes one copy of it go out. Brackets on `in` are
/// forwarded, so a kick inside a substream comes out inside it. Nothing is sent at end of
/// stream. Typical use: `'' -> IN Start(core/Kick)` with `'hello' -> DATA Start` starts a
/// network with one packet.
#[derive(Default)]
pub struct Kick;

impl NativeComponent for Kick {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/Kick",
            "Sends the packet set on DATA each time a packet arrives on IN",
        )
        .icon("share")
        .inport(PortSpec::new("in", "bang", "Each packet here sends DATA once").required())
        .inport(PortSpec::new(
            "data",
            "all",
            "The packet to send (default: null)",
        ))
        .outport(out_port("The DATA packet, once per kick"))
    }
}

impl Component for Kick {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut packet =
            Setting::read(ctx, "data", setting::payload, || Ok(Payload::from("null")))?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        while let Some(ip) = ctx.recv(input)? {
            let ip = match ip {
                Ip::Data(_) => Ip::Data(packet.get(ctx)?.clone()),
                bracket => bracket,
            };
            ctx.send(output, ip)?;
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
    fn sends_data_once_per_kick() {
        let lines = lines_through(
            "core/Kick",
            &[("data", json!({"go": true}))],
            vec![data("a"), data("b")],
        );
        assert_eq!(lines, strings(&[r#"{"go":true}"#, r#"{"go":true}"#]));
    }

    #[test]
    fn forwards_brackets_around_kicks() {
        let lines = lines_through(
            "core/Kick",
            &[("data", json!("x"))],
            vec![open("g"), data("1"), close("g")],
        );
        assert_eq!(lines, strings(&["< g", "x", "> g"]));
    }

    #[test]
    fn sends_null_without_data() {
        let lines = lines_through("core/Kick", &[], vec![data("")]);
        assert_eq!(lines, strings(&["null"]));
    }

    #[test]
    fn an_iip_kick_starts_a_network() {
        let mut graph = Graph::new("kick");
        graph.add_node("k", "core/Kick");
        graph.add_node("show", "core/Output");
        graph.add_iip(json!(""), port("k", "in"));
        graph.add_iip(json!("hello"), port("k", "data"));
        graph.add_edge(port("k", "out"), port("show", "in"));
        let outcome = run(&graph);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.output, strings(&["hello"]));
    }
}

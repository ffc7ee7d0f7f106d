//! `core/Output`: shows each IP to the user, one line each.

use super::{NativeComponent, in_port, out_port};
use crate::component::{Component, ComponentSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::Ip;

/// Reports each data IP as a line of output (on stdout under `flowd run`, as `network:output`
/// for protocol clients) and forwards every IP to `out`.
///
/// Brackets are shown as `<` and `>` followed by their label, if any.
#[derive(Default)]
pub struct Output;

impl NativeComponent for Output {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("core/Output", "Shows each packet as a line of output")
            .icon("bug")
            .inport(in_port("Packets to show"))
            .outport(out_port("The same packets, forwarded"))
    }
}

impl Component for Output {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        while let Some(ip) = ctx.recv(input)? {
            let line = match &ip {
                Ip::Data(payload) => payload.to_string_lossy().into_owned(),
                Ip::Open(label) => format!("< {label}").trim_end().to_string(),
                Ip::Close(label) => format!("> {label}").trim_end().to_string(),
            };
            ctx.output(line);
            if ctx.is_outport_connected(output) {
                ctx.send(output, ip)?;
            }
        }
        Ok(())
    }
}

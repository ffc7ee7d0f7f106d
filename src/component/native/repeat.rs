//! `core/Repeat`: forwards every IP unchanged.

use super::{NativeComponent, in_port, out_port};
use crate::component::{Component, ComponentSpec};
use crate::engine::{ProcessContext, ProcessError};

/// Forwards every IP, brackets included, from `in` to `out`.
#[derive(Default)]
pub struct Repeat;

impl NativeComponent for Repeat {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("core/Repeat", "Forwards every packet unchanged")
            .icon("forward")
            .inport(in_port("Packets to forward"))
            .outport(out_port("The same packets"))
    }
}

impl Component for Repeat {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        while let Some(ip) = ctx.recv(input)? {
            ctx.send(output, ip)?;
        }
        Ok(())
    }
}

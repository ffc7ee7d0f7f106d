//! `core/Drop`: consumes and discards everything.

use super::{NativeComponent, in_port};
use crate::component::{Component, ComponentSpec};
use crate::engine::{ProcessContext, ProcessError};

/// Reads `in` to its end and discards every IP.
#[derive(Default)]
pub struct Drop;

impl NativeComponent for Drop {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("core/Drop", "Discards every packet")
            .icon("trash")
            .inport(in_port("Packets to discard"))
    }
}

impl Component for Drop {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let mut batch = Vec::with_capacity(256);
        while ctx.recv_batch(input, &mut batch, 256)? > 0 {
            batch.clear();
        }
        Ok(())
    }
}

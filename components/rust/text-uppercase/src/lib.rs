//! `text/Uppercase`: upper-cases the ASCII letters of each data IP; brackets pass through.
//!
//! * inport `in` (string): text;
//! * outport `out` (string): the same text, upper-cased.
//!
//! The smallest useful component, and the SDK's introductory example.

use flowd_guest::{Component, Context, Port, Result, Spec};

struct Uppercase;

impl Component for Uppercase {
    fn describe() -> Spec {
        Spec::new("text/Uppercase", "Upper-cases text")
            .icon("font")
            .inport(Port::new("in", "string", "Text"))
            .outport(Port::new("out", "string", "Upper-cased text"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        while let Some(ip) = input.recv()? {
            output.send(ip.map_data(|d| d.to_ascii_uppercase()))?;
        }
        Ok(())
    }
}

flowd_guest::export!(Uppercase);

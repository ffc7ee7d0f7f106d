//! `bench/PassthroughSimple`: forwards every IP from `in` to `out` unchanged, one `recv` and one
//! `send` per IP: the baseline that `bench/Passthrough`'s batching is measured against.
//!
//! * inport `in` (all); outport `out` (all).

use flowd_guest::{Component, Context, Port, Result, Spec};

struct PassthroughSimple;

impl Component for PassthroughSimple {
    fn describe() -> Spec {
        Spec::new(
            "bench/PassthroughSimple",
            "Forwards everything unchanged, one IP per host call",
        )
        .icon("forward")
        .inport(Port::new("in", "all", "Anything"))
        .outport(Port::new("out", "all", "The same IPs"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        while let Some(ip) = input.recv()? {
            output.send(ip)?;
        }
        Ok(())
    }
}

flowd_guest::export!(PassthroughSimple);

//! `bench/Passthrough`: forwards every IP from `in` to `out` unchanged, in packed batches of up
//! to 256 IPs: the fastest path through a component, for benchmarks.
//!
//! * inport `in` (all); outport `out` (all).

use flowd_guest::{Component, Context, Port, Result, Spec};

/// IPs taken per host call.
const BATCH: u32 = 256;

struct Passthrough;

impl Component for Passthrough {
    fn describe() -> Spec {
        Spec::new(
            "bench/Passthrough",
            "Forwards everything unchanged, in packed batches",
        )
        .icon("forward")
        .inport(Port::new("in", "all", "Anything"))
        .outport(Port::new("out", "all", "The same IPs"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        while let Some(batch) = input.recv_packed(BATCH)? {
            output.send_packed(&batch)?;
        }
        Ok(())
    }
}

flowd_guest::export!(Passthrough);

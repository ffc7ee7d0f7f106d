//! `hostile/Spin`: waits for one IP (or end of stream) on `in`, then loops forever without
//! calling the host. Only an epoch deadline (or fuel) can stop it.

use flowd_guest::{Component, Context, Port, Result, Spec};

struct Spin;

impl Component for Spin {
    fn describe() -> Spec {
        Spec::new(
            "hostile/Spin",
            "Loops forever without host calls after one IP",
        )
        .icon("refresh")
        .inport(Port::new("in", "all", "Any IP starts the loop"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let _ = ctx.inport("in")?.recv()?;
        let mut n = 0u64;
        loop {
            // black_box keeps the loop from being optimised into something else.
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

flowd_guest::export!(Spin);

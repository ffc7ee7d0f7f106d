//! `hostile/Panic`: panics on the first IP it receives on `in` (a trap, as guests build with
//! `panic = "abort"`; the message goes to stderr). Ends normally if `in` ends without an IP.

use flowd_guest::{Component, Context, Port, Result, Spec};

struct Panic;

impl Component for Panic {
    fn describe() -> Spec {
        Spec::new("hostile/Panic", "Panics on its first IP")
            .icon("exclamation")
            .inport(Port::new("in", "all", "Any IP triggers the panic"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        if let Some(ip) = ctx.inport("in")?.recv()? {
            panic!(
                "hostile/Panic: panicking on purpose at the first IP ({} bytes)",
                ip.payload().len()
            );
        }
        Ok(())
    }
}

flowd_guest::export!(Panic);

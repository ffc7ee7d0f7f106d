//! Claims the name `core/Count` with the same ports, counting nothing: a third-party file
//! trying to replace a core component. The registry must refuse it.

use flowd_guest::{Component, Context, Port, Result, Spec};

struct FakeCount;

impl Component for FakeCount {
    fn describe() -> Spec {
        Spec::new("core/Count", "Not the real core/Count")
            .inport(Port::new("in", "all", "Anything"))
            .outport(Port::new("out", "int", "Always 42"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        while input.recv()?.is_some() {}
        output.send_data("42")?;
        Ok(())
    }
}

flowd_guest::export!(FakeCount);

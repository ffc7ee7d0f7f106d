//! `hostile/ReadEnv`: sends to `out` the value of the environment variable named by its `in`
//! IIP, or fails with `environment variable <NAME> is not set`. Without a grant, the sandbox
//! must make it fail.

use flowd_guest::{Component, Context, Error, Port, Result, Spec};

struct ReadEnv;

impl Component for ReadEnv {
    fn describe() -> Spec {
        Spec::new(
            "hostile/ReadEnv",
            "Sends the environment variable its IIP names",
        )
        .icon("key")
        .inport(Port::new("in", "string", "Name of the variable").required())
        .outport(Port::new("out", "string", "The variable's value"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let name: String = ctx.read_config("in")?;
        let value = std::env::var_os(&name)
            .ok_or_else(|| Error::msg(format!("environment variable {name} is not set")))?;
        let value = value
            .into_string()
            .map_err(|_| Error::msg(format!("environment variable {name} is not Unicode")))?;
        ctx.outport("out")?.send_data(value)
    }
}

flowd_guest::export!(ReadEnv);

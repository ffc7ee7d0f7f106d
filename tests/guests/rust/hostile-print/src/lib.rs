//! `hostile/Print`: prints its `in` IIP with `println!` to stdout as `<text>` and with
//! `eprintln!` to stderr as `stderr: <text>`, then ends. For the host's capture of standard
//! streams.

use flowd_guest::{Component, Context, Port, Result, Spec};

struct Print;

impl Component for Print {
    fn describe() -> Spec {
        Spec::new("hostile/Print", "Prints its IIP to stdout and stderr")
            .icon("print")
            .inport(Port::new("in", "string", "Text to print").required())
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let text: String = ctx.read_config("in")?;
        println!("{text}");
        eprintln!("stderr: {text}");
        Ok(())
    }
}

flowd_guest::export!(Print);

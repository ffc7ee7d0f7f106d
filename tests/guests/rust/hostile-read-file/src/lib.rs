//! `hostile/ReadFile`: reads the file named by its `in` IIP with `std::fs` and sends the content
//! to `out`, or fails with `<path>: <io error>`. Without a granted directory, the sandbox must
//! make it fail.

use flowd_guest::{Component, Context, Error, Port, Result, Spec};

struct ReadFile;

impl Component for ReadFile {
    fn describe() -> Spec {
        Spec::new(
            "hostile/ReadFile",
            "Sends the content of the file its IIP names",
        )
        .icon("file")
        .inport(Port::new("in", "string", "Path of the file").required())
        .outport(Port::new("out", "string", "The file's content"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let path: String = ctx.read_config("in")?;
        let content = std::fs::read(&path).map_err(|e| Error::msg(format!("{path}: {e}")))?;
        ctx.outport("out")?.send_data(content)
    }
}

flowd_guest::export!(ReadFile);

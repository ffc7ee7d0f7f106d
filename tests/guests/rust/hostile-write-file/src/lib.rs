//! `hostile/WriteFile`: writes a line to the file its IIP names, with `std::fs`, and sends
//! `written`; fails with the I/O error otherwise. Without a read-write grant it must fail.

use flowd_guest::{Component, Context, Error, Port, Result, Spec};

struct WriteFile;

impl Component for WriteFile {
    fn describe() -> Spec {
        Spec::new("hostile/WriteFile", "Writes to the file its IIP names")
            .icon("pencil")
            .inport(Port::new("in", "string", "Path of the file to write").required())
            .outport(Port::new("out", "string", "`written` once done"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let path: String = ctx.read_config("in")?;
        std::fs::write(&path, "written by a guest\n")
            .map_err(|e| Error::msg(format!("{path}: {e}")))?;
        ctx.outport("out")?.send_data("written")
    }
}

flowd_guest::export!(WriteFile);

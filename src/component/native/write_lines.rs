//! `core/WriteLines`: writes data IPs to a file, one line each.

use std::fs::File;
use std::io::{BufWriter, Write};

use super::setting::{self, Setting};
use super::{NativeComponent, out_port, try_send};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::Ip;

/// Writes each data IP on `in` to the file named on `file`, followed by a newline, and
/// forwards every IP (brackets included) to `out` if it is connected.
///
/// `file` is read first; the file is then created, or truncated if it exists, so an empty
/// stream leaves an empty file. Brackets are not written. Writes are buffered and flushed at end
/// of stream. A missing `file` setting, or a file that cannot be created or written, ends the
/// process with an error naming it. If `out` closes downstream, writing goes on.
#[derive(Default)]
pub struct WriteLines;

impl NativeComponent for WriteLines {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/WriteLines",
            "Writes each packet to a file as one line",
        )
        .icon("save")
        .inport(PortSpec::new("in", "string", "Lines to write"))
        .inport(
            PortSpec::new("file", "string", "The name of the file to write (replaced)").required(),
        )
        .outport(out_port("The same packets, once written"))
    }
}

impl Component for WriteLines {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut file = Setting::read(ctx, "file", setting::text, || {
            Err(ProcessError::failed("inport 'file': no file name given"))
        })?;
        let mut name = file.get(ctx)?.clone();
        let mut writer = create(&name)?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let mut forward = ctx.is_outport_connected(output);
        while let Some(ip) = ctx.recv(input)? {
            if let Ip::Data(line) = &ip {
                // A new file name set while running: the lines from here on go there.
                if *file.get(ctx)? != name {
                    writer.flush().map_err(|e| cannot_write(&name, e))?;
                    name = file.get(ctx)?.clone();
                    writer = create(&name)?;
                }
                writer.write_all(line).map_err(|e| cannot_write(&name, e))?;
                writer
                    .write_all(b"\n")
                    .map_err(|e| cannot_write(&name, e))?;
            }
            if forward {
                forward = try_send(ctx, output, ip)?;
            }
        }
        writer.flush().map_err(|e| cannot_write(&name, e))?;
        Ok(())
    }
}

/// Creates (or empties) the file `name` for writing.
fn create(name: &str) -> Result<BufWriter<File>, ProcessError> {
    File::create(name)
        .map(BufWriter::new)
        .map_err(|e| ProcessError::failed(format!("cannot create '{name}': {e}")))
}

fn cannot_write(name: &str, error: std::io::Error) -> ProcessError {
    ProcessError::failed(format!("cannot write '{name}': {error}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use crate::graph::Graph;

    #[test]
    fn writes_one_line_per_data_ip_and_forwards() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("out.txt");
        let name = file.to_str().expect("a UTF-8 path");
        let lines = lines_through(
            "core/WriteLines",
            &[("file", json!(name))],
            vec![open("g"), data("one"), data(""), data("three"), close("g")],
        );
        assert_eq!(lines, strings(&["< g", "one", "", "three", "> g"]));
        let written = std::fs::read_to_string(&file).expect("the file was written");
        assert_eq!(written, "one\n\nthree\n");
    }

    #[test]
    fn read_then_write_copies_a_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let source = dir.path().join("source.txt");
        let target = dir.path().join("target.txt");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&source, &text).expect("written");
        let mut graph = Graph::new("copy");
        graph.add_node("read", "core/ReadLines");
        graph.add_node("write", "core/WriteLines");
        graph.add_iip(
            json!(source.to_str().expect("a UTF-8 path")),
            port("read", "in"),
        );
        graph.add_iip(
            json!(target.to_str().expect("a UTF-8 path")),
            port("write", "file"),
        );
        graph.add_edge(port("read", "out"), port("write", "in"));
        let outcome = run(&graph);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(std::fs::read_to_string(&target).expect("written"), text);
    }

    #[test]
    fn an_empty_stream_leaves_an_empty_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("empty.txt");
        std::fs::write(&file, "old contents").expect("written");
        let lines = lines_through(
            "core/WriteLines",
            &[("file", json!(file.to_str().expect("a UTF-8 path")))],
            vec![],
        );
        assert!(lines.is_empty());
        assert_eq!(std::fs::read_to_string(&file).expect("exists"), "");
    }

    #[test]
    fn an_unwritable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("no/such/dir/out.txt");
        let name = file.to_str().expect("a UTF-8 path");
        let errors = errors_through("core/WriteLines", &[("file", json!(name))], vec![data("x")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains(name), "{errors:?}");
    }

    #[test]
    fn a_missing_file_setting_is_an_error() {
        assert_required_setting("core/WriteLines", "file");
    }
}

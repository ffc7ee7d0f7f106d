//! `core/ReadLines`: sends the lines of files.

use std::fs::File;
use std::io::{BufRead, BufReader};

use super::NativeComponent;
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// For each data IP on `in`, a file name, reads that file and sends each of its lines to `out`
/// as one data IP, without the line ending (`\n` or `\r\n`).
///
/// A last line without a newline is sent too; an empty file sends nothing. Lines are bytes:
/// they need not be UTF-8. Brackets on `in` are forwarded. A file that cannot be opened or read
/// ends the process with an error naming the file.
#[derive(Default)]
pub struct ReadLines;

impl NativeComponent for ReadLines {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("core/ReadLines", "Sends each line of the named files")
            .icon("file-text-o")
            .inport(PortSpec::new("in", "string", "Names of the files to read").required())
            .outport(PortSpec::new(
                "out",
                "string",
                "Each line of each file, without its newline",
            ))
    }
}

impl Component for ReadLines {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(name) = ip else {
                ctx.send(output, ip)?;
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            let cannot =
                |e: std::io::Error| ProcessError::failed(format!("cannot read '{name}': {e}"));
            let mut reader = BufReader::new(File::open(&name).map_err(cannot)?);
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).map_err(cannot)? == 0 {
                    break;
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                ctx.send(output, Ip::Data(Payload::from(line.as_slice())))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;

    #[test]
    fn sends_each_line_of_each_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let first = dir.path().join("first.txt");
        let second = dir.path().join("second.txt");
        std::fs::write(&first, "one\ntwo\r\n\nlast without newline").expect("written");
        std::fs::write(&second, "three\n").expect("written");
        let lines = lines_through(
            "core/ReadLines",
            &[],
            vec![
                open("files"),
                data(first.to_str().expect("a UTF-8 path")),
                data(second.to_str().expect("a UTF-8 path")),
                close("files"),
            ],
        );
        assert_eq!(
            lines,
            strings(&[
                "< files",
                "one",
                "two",
                "",
                "last without newline",
                "three",
                "> files"
            ])
        );
    }

    #[test]
    fn reads_a_file_named_by_an_iip() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("in.txt");
        std::fs::write(&file, "a\nb\n").expect("written");
        let mut graph = crate::graph::Graph::new("read");
        graph.add_node("r", "core/ReadLines");
        graph.add_node("show", "core/Output");
        graph.add_iip(json!(file.to_str().expect("a UTF-8 path")), port("r", "in"));
        graph.add_edge(port("r", "out"), port("show", "in"));
        let outcome = run(&graph);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.output, strings(&["a", "b"]));
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let missing = dir.path().join("missing.txt");
        let missing = missing.to_str().expect("a UTF-8 path");
        let errors = errors_through("core/ReadLines", &[], vec![data(missing)]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "c");
        assert!(errors[0].1.contains(missing), "{errors:?}");
    }
}

//! `core/Collect`: gathers data IPs into one JSON array.

use serde_json::Value;

use super::{NativeComponent, in_port};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// Collects data IPs into JSON arrays of their JSON values (see [`Payload::to_json`]: JSON text
/// stays that value, other text becomes a string).
///
/// - Each outermost substream becomes one array, sent at its closing bracket; its two brackets
///   are forwarded around it: `< a, 1, 2, > a` gives `< a`, `[1,2]`, `> a`.
/// - A substream nested inside it becomes a nested array (its brackets are not forwarded):
///   `< a, 1, < b, 2 >, > a` gives `< a`, `[1,[2]]`, `> a`.
/// - Data IPs outside any bracket are collected into one array sent at end of stream; it is
///   sent even when empty unless the stream had substreams, so an empty stream gives `[]`.
/// - At end of stream a substream left open is sent as it is, without a closing bracket; a
///   closing bracket with no opening one is forwarded unchanged.
#[derive(Default)]
pub struct Collect;

impl NativeComponent for Collect {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/Collect",
            "Gathers the packets of each substream, or of the stream, into one array",
        )
        .icon("list")
        .inport(in_port("Packets to collect"))
        .outport(PortSpec::new(
            "out",
            "array",
            "One array per outermost substream, and one of the rest at end of stream",
        ))
    }
}

impl Component for Collect {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        // The arrays being filled: the stream's own first, then one per open bracket.
        let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
        let mut sent_substream = false;
        while let Some(ip) = ctx.recv(input)? {
            match ip {
                Ip::Data(payload) => push(&mut stack, payload.to_json()),
                Ip::Open(_) => {
                    if stack.len() == 1 {
                        ctx.send(output, ip)?;
                    }
                    stack.push(Vec::new());
                }
                Ip::Close(_) => {
                    if stack.len() == 1 {
                        ctx.send(output, ip)?;
                        continue;
                    }
                    let items = stack.pop().unwrap_or_default();
                    if stack.len() == 1 {
                        ctx.send(output, array(items))?;
                        ctx.send(output, ip)?;
                        sent_substream = true;
                    } else {
                        push(&mut stack, Value::Array(items));
                    }
                }
            }
        }
        while stack.len() > 2 {
            let items = stack.pop().unwrap_or_default();
            push(&mut stack, Value::Array(items));
        }
        if stack.len() == 2 {
            let items = stack.pop().unwrap_or_default();
            ctx.send(output, array(items))?;
            sent_substream = true;
        }
        let items = stack.pop().unwrap_or_default();
        if !items.is_empty() || !sent_substream {
            ctx.send(output, array(items))?;
        }
        Ok(())
    }
}

/// Adds `value` to the innermost array.
fn push(stack: &mut [Vec<Value>], value: Value) {
    if let Some(items) = stack.last_mut() {
        items.push(value);
    }
}

/// A data IP holding `items` as a JSON array.
fn array(items: Vec<Value>) -> Ip {
    Ip::Data(Payload::from_json(&Value::Array(items)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use crate::ip::{Ip, Payload};

    #[test]
    fn collects_the_stream_at_its_end() {
        let lines = lines_through(
            "core/Collect",
            &[],
            vec![data("1"), data("hello"), data(r#"{"a":true}"#)],
        );
        assert_eq!(lines, strings(&[r#"[1,"hello",{"a":true}]"#]));
    }

    #[test]
    fn an_empty_stream_gives_an_empty_array() {
        assert_eq!(lines_through("core/Collect", &[], vec![]), strings(&["[]"]));
    }

    #[test]
    fn collects_each_outermost_substream() {
        let lines = lines_through(
            "core/Collect",
            &[],
            vec![
                open("a"),
                data("1"),
                open("b"),
                data("2"),
                close("b"),
                close("a"),
                open("c"),
                data("x"),
                close("c"),
            ],
        );
        assert_eq!(
            lines,
            strings(&["< a", "[1,[2]]", "> a", "< c", r#"["x"]"#, "> c"])
        );
    }

    #[test]
    fn data_outside_brackets_comes_at_the_end() {
        let lines = lines_through(
            "core/Collect",
            &[],
            vec![
                data("1"),
                open(""),
                data("2"),
                close(""),
                data("3"),
                open(""),
            ],
        );
        assert_eq!(lines, strings(&["<", "[2]", ">", "<", "[]", "[1,3]"]));
    }

    #[test]
    fn json_values_stay_json() {
        let lines = lines_through(
            "core/Collect",
            &[],
            vec![Ip::Data(Payload::from_json(&json!({"k": [1, 2]})))],
        );
        assert_eq!(lines, strings(&[r#"[{"k":[1,2]}]"#]));
    }
}

//! `json/Parse`, `json/Stringify` and `json/Get`: JSON in a stream of packets.
//!
//! A payload is bytes; where a packet stands for a JSON value, flowd reads it as the crate's IP
//! and JSON mapping says (`crate::ip`): text that parses as JSON is that value, other text is a
//! string. These components make that mapping explicit and strict at the points a pipeline
//! needs it.

use serde_json::Value;

use super::setting::Setting;
use super::{NativeComponent, error_port, in_port, out_port, reject, try_send};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// At most this much of a bad input is quoted in an error message.
const QUOTED: usize = 80;

/// Parses the text of each data IP on `in` as JSON and sends the value to `out` (compact JSON
/// text; a JSON string becomes its text, so `"hi"` gives `hi`: the inverse of `json/Stringify`).
///
/// Text that is not JSON goes to `error` with the parser's reason (line and column), or ends
/// the process if `error` is not connected. Brackets are forwarded to `out`.
#[derive(Default)]
pub struct Parse;

impl NativeComponent for Parse {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("json/Parse", "Parses the text of each packet as JSON")
            .icon("code")
            .inport(PortSpec::new("in", "string", "JSON texts"))
            .outport(out_port("The values parsed"))
            .outport(error_port())
    }
}

impl Component for Parse {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let errors = ctx.outport("error")?;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(text) = ip else {
                ctx.send(output, ip)?;
                continue;
            };
            match serde_json::from_slice::<Value>(text.as_bytes()) {
                Ok(value) => ctx.send(output, Ip::Data(Payload::from_json(&value)))?,
                Err(error) => {
                    let reason = format!("not JSON ({error}): {}", quote(&text));
                    reject(ctx, errors, &text, reason)?;
                }
            }
        }
        Ok(())
    }
}

/// Sends each data IP on `in` to `out` as JSON text: a JSON value stays that value (written
/// compactly, or indented when `indent` is a number of spaces above 0), and any other text
/// becomes a JSON string, so `hi` gives `"hi"`. Brackets are forwarded.
#[derive(Default)]
pub struct Stringify;

impl NativeComponent for Stringify {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("json/Stringify", "Writes each packet as JSON text")
            .icon("code")
            .inport(in_port("Values to write"))
            .inport(PortSpec::new(
                "indent",
                "int",
                "Spaces per level of indentation (default 0: one line)",
            ))
            .outport(PortSpec::new("out", "string", "JSON texts"))
    }
}

impl Component for Stringify {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut indent = Setting::read(ctx, "indent", spaces, || Ok(0))?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(payload) = ip else {
                ctx.send(output, ip)?;
                continue;
            };
            let value = payload.to_json();
            let text = match *indent.get(ctx)? {
                0 => serde_json::to_vec(&value),
                n => {
                    let indent = vec![b' '; n];
                    let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
                    let mut text = Vec::new();
                    let mut writer = serde_json::Serializer::with_formatter(&mut text, formatter);
                    serde::Serialize::serialize(&value, &mut writer).map(|()| text)
                }
            }
            .map_err(|e| ProcessError::failed(format!("cannot write JSON: {e}")))?;
            ctx.send(output, Ip::data(text))?;
        }
        Ok(())
    }
}

/// Sends, for each data IP on `in`, the part of its JSON value that `path` names to `out`;
/// an IP whose value has nothing there goes unchanged to `missing` (or nowhere if `missing` is
/// not connected).
///
/// `path` is a JSON pointer (`/items/0/name`, RFC 6901) when it starts with `/`, and otherwise
/// a dotted path (`items.0.name` or `items[0].name`); an empty path names the whole value. The
/// part is sent as `json/Parse` sends values (a string as its text). Brackets are forwarded to
/// both outports. A path set while the network runs applies from the next packet.
#[derive(Default)]
pub struct Get;

impl NativeComponent for Get {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("json/Get", "Picks one part of each JSON packet by path")
            .icon("search")
            .inport(in_port("JSON values"))
            .inport(
                PortSpec::new(
                    "path",
                    "string",
                    "A JSON pointer (/a/0/b) or dotted path (a[0].b, a.0.b)",
                )
                .required(),
            )
            .outport(out_port("The parts found"))
            .outport(PortSpec::new(
                "missing",
                "all",
                "The packets with nothing at the path, unchanged",
            ))
    }
}

impl Component for Get {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut path = Setting::read(ctx, "path", pointer, || {
            Err(ProcessError::failed("inport 'path': no path given"))
        })?;
        let input = ctx.inport("in")?;
        let found = ctx.outport("out")?;
        let missing = ctx.outport("missing")?;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(payload) = &ip else {
                try_send(ctx, missing, ip.clone())?;
                ctx.send(found, ip)?;
                continue;
            };
            let value = payload.to_json();
            match value.pointer(path.get(ctx)?) {
                Some(part) => ctx.send(found, Ip::Data(Payload::from_json(part)))?,
                None => {
                    try_send(ctx, missing, ip)?;
                }
            }
        }
        Ok(())
    }
}

/// A number of spaces (0 to 16), the setting of inport `name`.
fn spaces(name: &'static str, value: Payload) -> Result<usize, ProcessError> {
    let text = value.to_string_lossy();
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= 16)
        .ok_or_else(|| {
            ProcessError::failed(format!(
                "inport '{name}': invalid value '{text}': expected a number of spaces from 0 to 16"
            ))
        })
}

/// A path as a JSON pointer, the setting of inport `name`: a pointer as given, or a dotted
/// path (`a.b[0].c`) turned into one.
fn pointer(name: &'static str, value: Payload) -> Result<String, ProcessError> {
    let path = value.to_string_lossy();
    let path = path.trim();
    if path.is_empty() || path.starts_with('/') {
        return Ok(path.to_string());
    }
    let mut pointer = String::new();
    for segment in path.split('.') {
        // `items[0][1]` is `items`, `0`, `1`.
        let (key, indexes) = segment.split_once('[').unwrap_or((segment, ""));
        let mut parts = vec![key];
        if !indexes.is_empty() {
            let Some(indexes) = indexes.strip_suffix(']') else {
                return Err(bad_path(name, path));
            };
            parts.extend(indexes.split("]["));
        }
        for (i, part) in parts.into_iter().enumerate() {
            // Only a leading key may be empty (`[0].name` is the array's first item's name).
            if part.is_empty() && (i > 0 || segment.is_empty()) {
                return Err(bad_path(name, path));
            }
            if part.is_empty() {
                continue;
            }
            if i > 0 && part.parse::<usize>().is_err() {
                return Err(bad_path(name, path));
            }
            pointer.push('/');
            pointer.push_str(&part.replace('~', "~0").replace('/', "~1"));
        }
    }
    Ok(pointer)
}

fn bad_path(name: &str, path: &str) -> ProcessError {
    ProcessError::failed(format!(
        "inport '{name}': invalid path '{path}': expected a JSON pointer (/a/0/b) or a dotted \
         path (a[0].b)"
    ))
}

/// The start of `text`, to quote in an error message.
fn quote(text: &Payload) -> String {
    let text = text.to_string_lossy();
    match text.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("'{}…'", &text[..end]),
        None => format!("'{text}'"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use super::pointer;
    use crate::graph::Graph;
    use crate::ip::Payload;

    #[test]
    fn parse_and_stringify_are_inverses() {
        let values = ["{\"a\": [1, 2.5, true]}", "\"hi\"", "null", " 7 "];
        let parsed = lines_through("json/Parse", &[], values.iter().map(|v| data(v)).collect());
        assert_eq!(
            parsed,
            strings(&[r#"{"a":[1,2.5,true]}"#, "hi", "null", "7"])
        );
        let written = lines_through(
            "json/Stringify",
            &[],
            parsed.iter().map(|v| data(v)).collect(),
        );
        assert_eq!(
            written,
            strings(&[r#"{"a":[1,2.5,true]}"#, r#""hi""#, "null", "7"])
        );
    }

    #[test]
    fn stringify_indents_on_request_and_forwards_brackets() {
        let lines = lines_through(
            "json/Stringify",
            &[("indent", json!(2))],
            vec![open("g"), data(r#"{"a":1}"#), close("g")],
        );
        assert_eq!(lines, strings(&["< g", "{\n  \"a\": 1\n}", "> g"]));
    }

    #[test]
    fn bad_json_ends_the_process_naming_the_input_when_error_is_unconnected() {
        let errors = errors_through("json/Parse", &[], vec![data("{\"a\":"), data("1")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("not JSON"), "{errors:?}");
        assert!(errors[0].1.contains("'{\"a\":'"), "{errors:?}");
    }

    #[test]
    fn bad_json_goes_to_error_when_connected_and_the_stream_goes_on() {
        let mut graph = through("json/Parse", &[]);
        graph.add_node("bad", "core/Output");
        graph.add_edge(port("c", "error"), port("bad", "in"));
        let outcome = run_with_input(&graph, vec![data("[1"), data("[2]"), data("nope")]);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let reports: Vec<serde_json::Value> = outcome
            .output
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .filter(|v: &serde_json::Value| v.get("error").is_some())
            .collect();
        assert_eq!(reports.len(), 2, "{:?}", outcome.output);
        assert_eq!(reports[0]["input"], "[1");
        assert_eq!(reports[1]["input"], "nope");
        assert!(outcome.output.contains(&"[2]".to_string()));
    }

    #[test]
    fn get_picks_by_pointer_or_dotted_path() {
        let record = r#"{"user": {"name": "ada", "tags": ["a", {"k": 5}]}, "a/b": 1}"#;
        for (path, want) in [
            ("/user/name", "ada"),
            ("user.name", "ada"),
            ("user.tags[1].k", "5"),
            ("user.tags.1.k", "5"),
            ("/a~1b", "1"),
            (
                "",
                r#"{"user":{"name":"ada","tags":["a",{"k":5}]},"a/b":1}"#,
            ),
            ("user", r#"{"name":"ada","tags":["a",{"k":5}]}"#),
        ] {
            let lines = lines_through("json/Get", &[("path", json!(path))], vec![data(record)]);
            assert_eq!(lines, strings(&[want]), "path {path:?}");
        }
    }

    #[test]
    fn get_sends_what_has_nothing_at_the_path_to_missing() {
        let mut graph = Graph::new("get");
        graph.add_node("get", "json/Get");
        graph.add_node("found", "core/Output");
        graph.add_node("lost", "core/Output");
        graph.add_iip(json!("a.b"), port("get", "path"));
        graph.add_edge(port("get", "out"), port("found", "in"));
        graph.add_edge(port("get", "missing"), port("lost", "in"));
        graph.add_inport("IN", "get", "in");
        let outcome = run_with_input(
            &graph,
            vec![
                data(r#"{"a":{"b":"yes"}}"#),
                data(r#"{"a":1}"#),
                data("text"),
            ],
        );
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let mut output = outcome.output;
        output.sort();
        assert_eq!(output, strings(&["text", "yes", r#"{"a":1}"#]));
    }

    #[test]
    fn dotted_paths_become_pointers_and_bad_ones_are_refused() {
        let p = |s: &str| pointer("path", Payload::from(s));
        assert_eq!(p("a.b").ok().as_deref(), Some("/a/b"));
        assert_eq!(p("[2].x").ok().as_deref(), Some("/2/x"));
        assert_eq!(p("a[0][1]").ok().as_deref(), Some("/a/0/1"));
        for bad in ["a..b", "a[x]", "a[0", "a[]"] {
            let error = p(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                error.contains("'path'") && error.contains(bad),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn get_requires_a_path() {
        assert_required_setting("json/Get", "path");
    }
}

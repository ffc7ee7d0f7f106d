//! `core/SplitText`: splits the text of each data IP on a separator.

use super::NativeComponent;
use super::setting::Setting;
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// Splits each data IP on `in` at every occurrence of the separator set on `separator`
/// (default: a newline) and sends the parts to `out`, one data IP each, in order.
///
/// Like JavaScript's `split` (noflo's `strings/SplitStr`), every part is sent, empty ones
/// included: `a,,b,` on `,` gives `a`, ``, `b`, ``. The separator is matched as plain bytes,
/// not as a pattern. Brackets are forwarded. An empty separator ends the process with an error.
#[derive(Default)]
pub struct SplitText;

impl NativeComponent for SplitText {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/SplitText",
            "Splits text on a separator into several packets",
        )
        .icon("scissors")
        .inport(PortSpec::new("in", "string", "Text to split"))
        .inport(PortSpec::new(
            "separator",
            "string",
            "Where to split (default: a newline)",
        ))
        .outport(PortSpec::new("out", "string", "The parts, in order"))
    }
}

impl Component for SplitText {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut separator = Setting::read(ctx, "separator", separator, || Ok(Payload::from("\n")))?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(text) = ip else {
                ctx.send(output, ip)?;
                continue;
            };
            let separator = separator.get(ctx)?.clone();
            let bytes = text.to_bytes();
            let mut start = 0;
            for end in occurrences(&bytes, &separator) {
                ctx.send(output, Ip::Data(Payload::from(bytes.slice(start..end))))?;
                start = end + separator.len();
            }
            ctx.send(output, Ip::Data(Payload::from(bytes.slice(start..))))?;
        }
        Ok(())
    }
}

/// A separator: any text but the empty one.
fn separator(name: &'static str, value: Payload) -> Result<Payload, ProcessError> {
    if value.is_empty() {
        return Err(ProcessError::failed(format!(
            "inport '{name}': invalid value '': the separator must not be empty"
        )));
    }
    Ok(value)
}

/// The start of each non-overlapping occurrence of `needle` (not empty) in `haystack`.
fn occurrences<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut at = 0;
    std::iter::from_fn(move || {
        let found = haystack
            .get(at..)?
            .windows(needle.len())
            .position(|window| window == needle)?;
        let start = at + found;
        at = start + needle.len();
        Some(start)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use super::occurrences;

    #[test]
    fn finds_non_overlapping_occurrences() {
        let found: Vec<usize> = occurrences(b"aaaa", b"aa").collect();
        assert_eq!(found, vec![0, 2]);
        assert_eq!(occurrences(b"abc", b"x").count(), 0);
        assert_eq!(occurrences(b"", b"x").count(), 0);
    }

    #[test]
    fn splits_on_newlines_by_default() {
        let lines = lines_through("core/SplitText", &[], vec![data("a\nb\nc")]);
        assert_eq!(lines, strings(&["a", "b", "c"]));
    }

    #[test]
    fn splits_on_a_separator_keeping_empty_parts_and_brackets() {
        let lines = lines_through(
            "core/SplitText",
            &[("separator", json!(", "))],
            vec![open("g"), data("x, y, , z, "), data("alone"), close("g")],
        );
        assert_eq!(
            lines,
            strings(&["< g", "x", "y", "", "z", "", "alone", "> g"])
        );
    }

    #[test]
    fn an_empty_separator_is_an_error() {
        let errors = errors_through(
            "core/SplitText",
            &[("separator", json!(""))],
            vec![data("x")],
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("'separator'"), "{errors:?}");
    }
}

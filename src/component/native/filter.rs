//! `core/Filter`: passes on the data IPs whose text matches a regular expression.

use regex::Regex;

use super::setting::Setting;
use super::{NativeComponent, try_send};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// Sends each data IP on `in` whose text matches the regular expression set on `pattern` to
/// `out`, and every other data IP to `rejected` (or nowhere if `rejected` is not connected).
///
/// The pattern uses the syntax of the `regex` crate and matches anywhere in the text (anchor
/// it with `^…$` to match the whole); the text is the IP's bytes as UTF-8, invalid sequences
/// replaced. Brackets are forwarded to both outports. A missing or invalid pattern ends the
/// process with an error naming it. The process ends early when both outports have closed
/// downstream (or when neither is connected).
#[derive(Default)]
pub struct Filter;

impl NativeComponent for Filter {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "core/Filter",
            "Passes on the packets whose text matches a regular expression",
        )
        .icon("filter")
        .inport(PortSpec::new("in", "string", "Packets to filter"))
        .inport(PortSpec::new("pattern", "string", "The regular expression to match").required())
        .outport(PortSpec::new("out", "string", "The packets that match"))
        .outport(PortSpec::new(
            "rejected",
            "string",
            "The packets that do not match",
        ))
    }
}

impl Component for Filter {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut regex = Setting::read(ctx, "pattern", regex, || {
            Err(ProcessError::failed("inport 'pattern': no pattern given"))
        })?;
        let input = ctx.inport("in")?;
        let matched = ctx.outport("out")?;
        let rejected = ctx.outport("rejected")?;
        let mut matched_open = ctx.is_outport_connected(matched);
        let mut rejected_open = ctx.is_outport_connected(rejected);
        while matched_open || rejected_open {
            let Some(ip) = ctx.recv(input)? else {
                break;
            };
            let (to_matched, to_rejected) = match &ip {
                Ip::Data(text) => {
                    let hit = regex.get(ctx)?.is_match(&text.to_string_lossy());
                    (hit, !hit)
                }
                Ip::Open(_) | Ip::Close(_) => (true, true),
            };
            if to_rejected && rejected_open {
                rejected_open = try_send(ctx, rejected, ip.clone())?;
            }
            if to_matched && matched_open {
                matched_open = try_send(ctx, matched, ip)?;
            }
        }
        Ok(())
    }
}

/// A regular expression, the setting of inport `name`.
fn regex(name: &'static str, pattern: Payload) -> Result<Regex, ProcessError> {
    let pattern = pattern.to_string_lossy();
    Regex::new(&pattern).map_err(|e| {
        ProcessError::failed(format!(
            "inport '{name}': invalid regular expression '{pattern}': {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use crate::graph::Graph;

    #[test]
    fn passes_matching_packets_and_brackets() {
        let lines = lines_through(
            "core/Filter",
            &[("pattern", json!("^a"))],
            vec![
                open("g"),
                data("apple"),
                data("banana"),
                data("avocado"),
                close("g"),
            ],
        );
        assert_eq!(lines, strings(&["< g", "apple", "avocado", "> g"]));
    }

    #[test]
    fn sends_the_rest_to_rejected() {
        let mut graph = Graph::new("filter");
        graph.add_node("f", "core/Filter");
        graph.add_node("yes", "core/Drop");
        graph.add_node("no", "core/Output");
        graph.add_iip(json!("[0-9]+"), port("f", "pattern"));
        for text in ["one", "2", "three", "44"] {
            graph.add_iip(json!(text), port("f", "in"));
        }
        graph.add_edge(port("f", "out"), port("yes", "in"));
        graph.add_edge(port("f", "rejected"), port("no", "in"));
        let outcome = run(&graph);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.output, strings(&["one", "three"]));
    }

    #[test]
    fn an_invalid_pattern_is_an_error_naming_it() {
        let errors = errors_through(
            "core/Filter",
            &[("pattern", json!("(unclosed"))],
            vec![data("x")],
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "c");
        assert!(errors[0].1.contains("'pattern'"), "{errors:?}");
        assert!(errors[0].1.contains("(unclosed"), "{errors:?}");
    }

    #[test]
    fn a_missing_pattern_is_an_error() {
        assert_required_setting("core/Filter", "pattern");
    }
}

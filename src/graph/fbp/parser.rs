//! The `.fbp` grammar, rule by rule as `grammar/fbp.peg` of the `fbp` package has it.
//!
//! Each rule is a method that returns `None` when it does not match (having moved back to where
//! it started), and alternatives are tried in the grammar's order, so the same text takes the
//! same path as in `fbp`. The grammar's actions run where `fbp` runs them, side effects
//! included: a node declared inside an alternative that later fails stays declared, and the
//! chain elements of every statement go into one list that is paired into connections at the
//! end exactly as `fbp`'s `processEdges` pairs them.

use std::collections::HashMap;

use serde_json::Value;

use super::super::error::Error;
use super::super::model::{Connection, Edge, ExportedPort, Graph, Iip, Node, Object, PortRef};
use super::lexer::{
    Component, Port, annotation, comment, component, line_terminator, metadata, newline, node_name,
    port, port_name,
};
use super::scanner::Scanner;
use super::value::{js_insert, js_order, json_text};

/// Reads `.fbp` text into a graph.
pub(super) fn parse(text: &str) -> Result<Graph, Error> {
    let mut parser = Parser {
        s: Scanner::new(text),
        nodes: Vec::new(),
        by_id: HashMap::new(),
        anonymous: HashMap::new(),
        anonymous_counts: HashMap::new(),
        default_in: "IN".into(),
        default_out: "OUT".into(),
        parts: Vec::new(),
        properties: None,
        inports: Vec::new(),
        outports: Vec::new(),
    };
    // start = (line)*, then the end of the input.
    while parser.s.pos < parser.s.len() {
        let before = parser.s.pos;
        if parser.line().is_none() || parser.s.pos == before {
            break;
        }
    }
    if let Some(error) = parser.s.fatal.take() {
        return Err(error);
    }
    if parser.s.pos < parser.s.len() {
        return Err(parser.syntax_error());
    }
    parser.finish()
}

/// What a statement start can be; reported together as "a statement".
const STATEMENT: &str = "a statement";
const STATEMENT_PARTS: &[&str] = &[
    "a port name",
    "a node name",
    "'('",
    "an IIP",
    "a number",
    "a comment",
    "end of line",
];

/// An element of a connection chain, with where its node (or IIP) is written.
#[derive(Clone)]
enum Part {
    Src(PortRef, usize),
    Tgt(PortRef, usize),
    Data(Value, usize),
}

/// A process as declared so far.
struct Declared {
    id: String,
    component: Option<(String, usize)>,
    metadata: Option<Object>,
    pos: usize,
}

/// `INPORT=`/`OUTPORT=`, with where its node is written.
struct Export {
    name: String,
    process: String,
    port: String,
    pos: usize,
}

struct Parser<'a> {
    s: Scanner<'a>,
    nodes: Vec<Declared>,
    by_id: HashMap<String, usize>,
    /// Anonymous nodes by where their `(Component)` is written, so re-parsing finds the same.
    anonymous: HashMap<usize, String>,
    anonymous_counts: HashMap<String, usize>,
    default_in: String,
    default_out: String,
    parts: Vec<Part>,
    properties: Option<Object>,
    inports: Vec<Export>,
    outports: Vec<Export>,
}

impl Parser<'_> {
    /// Runs `f`; if it fails, moves back to where it started.
    fn seq<T>(&mut self, f: impl FnOnce(&mut Parser) -> Option<T>) -> Option<T> {
        let start = self.s.pos;
        let result = f(self);
        if result.is_none() {
            self.s.pos = start;
        }
        result
    }

    fn line(&mut self) -> Option<()> {
        for (keyword, inport) in [("INPORT=", true), ("OUTPORT=", false)] {
            let export = self.seq(|p| {
                p.s.spaces();
                p.s.lit(keyword, STATEMENT)?;
                let (process, pos) = p.node()?;
                p.s.lit(".", "'.'")?;
                let port = port_name(&mut p.s)?;
                p.s.lit(":", "':'")?;
                let name = port_name(&mut p.s)?;
                p.s.spaces();
                line_terminator(&mut p.s);
                Some((process, pos, port, name))
            });
            if let Some((process, pos, port, name)) = export {
                self.register_export(inport, process, pos, port, name);
                return Some(());
            }
        }
        for (keyword, inport) in [("DEFAULT_INPORT=", true), ("DEFAULT_OUTPORT=", false)] {
            let name = self.s.seq(|s| {
                s.spaces();
                s.lit(keyword, STATEMENT)?;
                let name = port_name(s)?;
                s.spaces();
                line_terminator(s);
                Some(name)
            });
            if let Some(name) = name {
                *(if inport {
                    &mut self.default_in
                } else {
                    &mut self.default_out
                }) = name;
                return Some(());
            }
        }
        if let Some((key, value)) = self.s.seq(|s| {
            let annotation = annotation(s)?;
            newline(s)?;
            Some(annotation)
        }) {
            self.register_annotation(key, value);
            return Some(());
        }
        let comment_line = self.s.seq(|s| {
            comment(s)?;
            let _ = newline(s);
            Some(())
        });
        let empty_line = || {
            self.s.seq(|s| {
                s.spaces();
                newline(s)
            })
        };
        if comment_line.or_else(empty_line).is_some() {
            return Some(());
        }
        let (parts, array) = self.seq(|p| {
            p.s.spaces();
            let connection = p.connection()?;
            p.s.spaces();
            line_terminator(&mut p.s);
            Some(connection)
        })?;
        // registerEdges keeps only chains (arrays), not a lone destination.
        if array {
            self.parts.extend(parts);
        }
        Some(())
    }

    /// `connection = source _ "->" _ connection / destination`, unrolled into a loop so long
    /// chains do not recurse; the result and the order of attempts are the recursive ones.
    fn connection(&mut self) -> Option<(Vec<Part>, bool)> {
        let mut starts = Vec::new();
        let mut chain: Vec<Vec<Part>> = Vec::new();
        loop {
            let start = self.s.pos;
            let step = self.seq(|p| {
                let source = p.source()?;
                p.s.spaces();
                p.s.lit("->", "'->'")?;
                p.s.spaces();
                Some(source)
            });
            let Some(source) = step else { break };
            starts.push(start);
            chain.push(source);
        }
        loop {
            if let Some((destination, array)) = self.destination() {
                let array = array || !chain.is_empty();
                let parts = chain.into_iter().flatten().chain(destination).collect();
                return Some((parts, array));
            }
            // This level's `source -> connection` failed too: the one before takes its
            // destination alternative instead.
            self.s.pos = starts.pop()?;
            chain.pop();
        }
    }

    fn source(&mut self) -> Option<Vec<Part>> {
        if let Some(bridge) = self.bridge() {
            return Some(bridge);
        }
        if let Some(outport) = self.outport() {
            return Some(vec![outport]);
        }
        self.iip().map(|data| vec![data])
    }

    fn destination(&mut self) -> Option<(Vec<Part>, bool)> {
        if let Some(inport) = self.inport() {
            return Some((vec![inport], false));
        }
        self.bridge().map(|bridge| (bridge, true))
    }

    /// A node passed through: `IN node OUT`, with a component if either port is left out.
    fn bridge(&mut self) -> Option<Vec<Part>> {
        let bridge = |p: &mut Parser, (process, pos): (String, usize), x, y| {
            vec![
                Part::Tgt(make_port(&process, x, &p.default_in), pos),
                Part::Src(make_port(&process, y, &p.default_out), pos),
            ]
        };
        let full = self.seq(|p| {
            let x = p.port_space()?;
            let node = p.node()?;
            let y = p.space_port()?;
            Some(bridge(p, node, Some(x), Some(y)))
        });
        full.or_else(|| {
            self.seq(|p| {
                let x = p.port_space();
                let node = p.node_with_component()?;
                let y = p.space_port();
                Some(bridge(p, node, x, y))
            })
        })
    }

    fn outport(&mut self) -> Option<Part> {
        self.seq(|p| {
            let (process, pos) = p.node()?;
            let port = p.space_port();
            Some(Part::Src(make_port(&process, port, &p.default_out), pos))
        })
    }

    fn inport(&mut self) -> Option<Part> {
        self.seq(|p| {
            let port = p.port_space();
            let (process, pos) = p.node()?;
            Some(Part::Tgt(make_port(&process, port, &p.default_in), pos))
        })
    }

    /// `'text'` (only `\'` is an escape) or a JSON value.
    fn iip(&mut self) -> Option<Part> {
        let start = self.s.pos;
        let quoted = self.s.seq(|s| {
            s.lit("'", "an IIP")?;
            let mut text = String::new();
            loop {
                let rest = s.rest();
                let Some(at) = rest.find(['\\', '\'']) else {
                    s.skip(rest.len());
                    let (line, column) = s.line_col(start);
                    s.fail(format!(
                        "a closing ' for the IIP opened at line {line}, column {column}"
                    ));
                    return None;
                };
                text.push_str(&rest[..at]);
                s.skip(at);
                if rest[at..].starts_with("\\'") {
                    text.push('\'');
                    s.skip(2);
                } else if rest[at..].starts_with('\'') {
                    s.skip(1);
                    return Some(Value::String(text));
                } else {
                    text.push('\\');
                    s.skip(1);
                }
            }
        });
        let data = quoted.or_else(|| json_text(&mut self.s, "an IIP"))?;
        Some(Part::Data(data, start))
    }

    fn node(&mut self) -> Option<(String, usize)> {
        if let Some(node) = self.node_name_and_component() {
            return Some(node);
        }
        let start = self.s.pos;
        if let Some(name) = node_name(&mut self.s) {
            return Some((name, start));
        }
        self.node_component()
    }

    fn node_with_component(&mut self) -> Option<(String, usize)> {
        self.node_name_and_component()
            .or_else(|| self.node_component())
    }

    fn node_name_and_component(&mut self) -> Option<(String, usize)> {
        self.seq(|p| {
            let start = p.s.pos;
            let name = node_name(&mut p.s)?;
            let component = component(&mut p.s)?;
            p.add_node(&name, start, &component);
            Some((name, start))
        })
    }

    fn node_component(&mut self) -> Option<(String, usize)> {
        let start = self.s.pos;
        let component = component(&mut self.s)?;
        if let Some(name) = self.anonymous.get(&start) {
            return Some((name.clone(), start));
        }
        // fbp replaces the first run of other characters only (no `g` flag).
        let key = match component.name.find(|c: char| !c.is_ascii_alphanumeric()) {
            None => component.name.clone(),
            Some(at) => {
                let rest = &component.name[at..];
                let end = rest
                    .find(|c: char| c.is_ascii_alphanumeric())
                    .unwrap_or(rest.len());
                format!("{}_{}", &component.name[..at], &rest[end..])
            }
        };
        let count = self.anonymous_counts.entry(key.clone()).or_insert(0);
        *count += 1;
        let name = format!("_{key}_{count}");
        self.anonymous.insert(start, name.clone());
        self.add_node(&name, start, &component);
        Some((name, start))
    }

    fn port_space(&mut self) -> Option<Port> {
        self.s.seq(|s| {
            let port = port(s)?;
            s.spaces1()?;
            Some(port)
        })
    }

    fn space_port(&mut self) -> Option<Port> {
        self.s.seq(|s| {
            s.spaces1()?;
            port(s)
        })
    }

    /// fbp's `addNode`: a later component replaces (here: must equal) an earlier one, later
    /// metadata replaces earlier metadata, `()` adds nothing.
    fn add_node(&mut self, id: &str, pos: usize, component: &Component) {
        let index = *self.by_id.entry(id.to_string()).or_insert_with(|| {
            self.nodes.push(Declared {
                id: id.to_string(),
                component: None,
                metadata: None,
                pos,
            });
            self.nodes.len() - 1
        });
        let declared = &mut self.nodes[index];
        if !component.name.is_empty() {
            match &declared.component {
                None => declared.component = Some((component.name.clone(), component.pos)),
                Some((existing, _)) if *existing == component.name => {}
                Some((existing, at)) => {
                    let (line, column) = self.s.line_col(*at);
                    let message = format!(
                        "node '{id}' is already declared as component '{existing}' (line {line}, \
                         column {column}); it cannot also be '{}'",
                        component.name
                    );
                    let error = self.s.error_at(component.pos, message);
                    self.s.set_fatal(error);
                }
            }
        }
        if let Some(meta) = &component.meta {
            declared.metadata = Some(metadata(meta));
        }
    }

    fn register_annotation(&mut self, key: String, value: String) {
        let properties = self.properties.get_or_insert_with(Object::new);
        if key == "runtime" {
            let mut environment = Object::new();
            environment.insert("type".into(), Value::String(value));
            properties.insert("environment".into(), Value::Object(environment));
        } else {
            js_insert(properties, key, Value::String(value));
        }
    }

    fn register_export(
        &mut self,
        inport: bool,
        process: String,
        pos: usize,
        port: String,
        name: String,
    ) {
        let name = name.to_ascii_lowercase();
        if name == "__proto__" {
            return;
        }
        let export = Export {
            name,
            process,
            port: port.to_ascii_lowercase(),
            pos,
        };
        let exports = if inport {
            &mut self.inports
        } else {
            &mut self.outports
        };
        match exports.iter_mut().find(|e| e.name == export.name) {
            Some(existing) => *existing = export,
            None => exports.push(export),
        }
    }

    fn syntax_error(&mut self) -> Error {
        let expected = self.s.expected_mut();
        if expected.iter().any(|l| l == STATEMENT) {
            expected.retain(|l| !STATEMENT_PARTS.contains(&l.as_ref()));
        }
        self.s.syntax_error()
    }

    /// fbp's `processEdges` and `validateContents`, then the graph.
    fn finish(mut self) -> Result<Graph, Error> {
        // Moved, not copied: an IIP may be most of the text.
        let mut pairs = Vec::new();
        let mut parts = std::mem::take(&mut self.parts).into_iter().peekable();
        while let Some(part) = parts.next() {
            if matches!(part, Part::Src(..) | Part::Data(..))
                && let Some(tgt) = parts.next_if(|next| matches!(next, Part::Tgt(..)))
            {
                pairs.push((part, tgt));
            }
        }
        let undeclared = |context: String, id: &str, pos: usize| {
            self.s.error_at(
                pos,
                format!("{context} uses node '{id}', which is never given a component (write {id}(Component) once)"),
            )
        };
        if let Some(node) = self.nodes.iter().find(|n| n.component.is_none()) {
            let id = &node.id;
            return Err(self.s.error_at(
                node.pos,
                format!("node '{id}' has no component (write {id}(Component) once)"),
            ));
        }
        for (keyword, exports) in [("INPORT", &self.inports), ("OUTPORT", &self.outports)] {
            if let Some(e) = exports
                .iter()
                .find(|e| !self.by_id.contains_key(&e.process))
            {
                return Err(undeclared(
                    format!("{keyword}={}.{}:{}", e.process, e.port, e.name),
                    &e.process,
                    e.pos,
                ));
            }
        }
        let mut connections = Vec::new();
        for (from, to) in pairs {
            let Part::Tgt(tgt, tgt_pos) = to else {
                continue;
            };
            let (context, src) = match from {
                Part::Src(src, pos) => (format!("the edge {src} -> {tgt}"), Some((src, pos))),
                Part::Data(data, pos) => {
                    if !self.by_id.contains_key(&tgt.process) {
                        let mut shown = data.to_string();
                        if shown.len() > 40 {
                            let end = (0..=40).rev().find(|&i| shown.is_char_boundary(i));
                            shown.truncate(end.unwrap_or(0));
                            shown.push('…');
                        }
                        return Err(undeclared(format!("the IIP {shown}"), &tgt.process, pos));
                    }
                    connections.push(Connection::Iip(Iip::new(data, tgt)));
                    continue;
                }
                Part::Tgt(..) => continue,
            };
            if !self.by_id.contains_key(&tgt.process) {
                return Err(undeclared(context, &tgt.process, tgt_pos));
            }
            if let Some((src, pos)) = src {
                if !self.by_id.contains_key(&src.process) {
                    return Err(undeclared(context, &src.process, pos));
                }
                connections.push(Connection::Edge(Edge::new(src, tgt)));
            }
        }
        let exports = |exports: Vec<Export>| {
            exports
                .into_iter()
                .map(|e| ExportedPort::new(&e.name, &e.process, &e.port))
                .collect()
        };
        Ok(Graph {
            case_sensitive: Some(false),
            properties: self.properties.map(js_order).unwrap_or_default(),
            nodes: self
                .nodes
                .into_iter()
                .map(|n| Node {
                    id: n.id,
                    component: n.component.map(|(c, _)| c).unwrap_or_default(),
                    metadata: n.metadata,
                    extra: Object::new(),
                })
                .collect(),
            connections,
            inports: exports(self.inports),
            outports: exports(self.outports),
            groups: Vec::new(),
            extra: Object::new(),
        })
    }
}

/// fbp's `makePort`: the port given, or the default (lower-cased).
fn make_port(process: &str, port: Option<Port>, default: &str) -> PortRef {
    match port {
        Some(Port { name, index }) => PortRef {
            process: process.to_string(),
            port: name,
            index,
        },
        None => PortRef::new(process, default.to_ascii_lowercase()),
    }
}

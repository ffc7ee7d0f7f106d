//! Writing a graph as `.fbp` text.
//!
//! Annotations come first, then exported ports, then one statement per connection. Each node
//! is declared with its component where it is first mentioned, unless that would change the
//! order of the graph's nodes (the order of first declaration): such nodes, and nodes with no
//! connection, get a declaration of their own.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::super::model::{Connection, ExportedPort, Graph, Node, Object, PortRef};

/// `[a-zA-Z_][a-zA-Z0-9_-]*`
fn is_node_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `[a-zA-Z_][a-zA-Z0-9._]*`
fn is_port_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Component names: `[a-zA-Z0-9/_-]+`.
fn is_component(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'))
}

/// Metadata keys and string values: `[a-zA-Z0-9/_]*`.
fn is_meta_word(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_'))
}

/// Annotation keys: `[a-zA-Z0-9_-]+`.
fn is_annotation_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// Annotation values: `[a-zA-Z0-9_-. ]+`, not starting with a space.
fn is_annotation_value(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with(' ')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}

/// Writes `graph`.
pub(super) fn write(graph: &Graph) -> String {
    let mut w = Writer::default();
    w.properties(&graph.properties);
    if graph.case_sensitive == Some(true) {
        w.omit("case-sensitive port names (.fbp lower-cases them)".into());
    }
    for group in &graph.groups {
        w.omit(format!("group '{}'", group.name));
    }
    for key in graph.extra.keys() {
        w.omit(format!("graph key '{key}'"));
    }
    let nodes = w.nodes(&graph.nodes);
    let known: HashSet<&str> = nodes.iter().map(|(n, _)| n.id.as_str()).collect();
    for (keyword, exports) in [("INPORT", &graph.inports), ("OUTPORT", &graph.outports)] {
        for export in exports {
            w.export(keyword, export, &known);
        }
    }
    let connections: Vec<&Connection> = graph
        .connections
        .iter()
        .filter(|c| w.connection_ok(c, &known))
        .collect();

    // The nodes declared inline are the longest tail of the node list whose first mentions
    // come in the same order (then the tail's nodes that are never mentioned).
    let mut rank: HashMap<&str, usize> = HashMap::new();
    for connection in &connections {
        let ends: Vec<&PortRef> = match connection {
            Connection::Edge(e) => vec![&e.src, &e.tgt],
            Connection::Iip(i) => vec![&i.tgt],
        };
        for end in ends {
            let next = rank.len();
            rank.entry(end.process.as_str()).or_insert(next);
        }
    }
    let rank_of = |node: &Node| rank.get(node.id.as_str()).copied().unwrap_or(usize::MAX);
    let mut first_inline = nodes.len();
    while first_inline > 0
        && (first_inline == nodes.len()
            || rank_of(nodes[first_inline - 1].0) <= rank_of(nodes[first_inline].0))
    {
        first_inline -= 1;
    }
    let declarations: HashMap<&str, &str> = nodes
        .iter()
        .map(|(node, text)| (node.id.as_str(), text.as_str()))
        .collect();
    let (before, inline) = nodes.split_at(first_inline);

    let mut out = std::mem::take(&mut w.head);
    if !w.omitted.is_empty() {
        out.push_str("# flowd: left out, as .fbp cannot express it:\n");
        for what in &w.omitted {
            out.push_str(&format!("#   {what}\n"));
        }
    }
    let section = |out: &mut String, lines: Vec<String>| {
        if !lines.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
        }
    };
    section(&mut out, std::mem::take(&mut w.exports));
    section(
        &mut out,
        before.iter().map(|(_, text)| text.clone()).collect(),
    );
    let mut declared: HashSet<String> = before.iter().map(|(n, _)| n.id.clone()).collect();
    let mut mention = |end: &PortRef| -> String {
        let id = end.process.as_str();
        match declarations.get(id) {
            Some(text) if declared.insert(id.to_string()) => (*text).to_string(),
            _ => id.to_string(),
        }
    };
    let mut lines = Vec::new();
    for connection in connections {
        lines.push(match connection {
            Connection::Edge(edge) => {
                let src = mention(&edge.src);
                let tgt = mention(&edge.tgt);
                format!("{src} {} -> {} {tgt}", port(&edge.src), port(&edge.tgt))
            }
            Connection::Iip(iip) => {
                let tgt = mention(&iip.tgt);
                format!("{} -> {} {tgt}", data(&iip.data), port(&iip.tgt))
            }
        });
    }
    section(&mut out, lines);
    let rest = inline
        .iter()
        .filter(|(n, _)| !declared.contains(n.id.as_str()))
        .map(|(_, text)| text.clone())
        .collect();
    section(&mut out, rest);
    out
}

#[derive(Default)]
struct Writer {
    /// Annotations.
    head: String,
    /// What .fbp cannot express, listed in a comment after the annotations.
    omitted: Vec<String>,
    exports: Vec<String>,
}

impl Writer {
    fn omit(&mut self, what: String) {
        let what: String = what
            .chars()
            .map(|c| {
                if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        self.omitted.push(what);
    }

    fn properties(&mut self, properties: &Object) {
        for (key, value) in properties {
            match (key.as_str(), value) {
                ("environment", Value::Object(env)) if env.len() == 1 => {
                    match env.get("type").and_then(Value::as_str) {
                        Some(kind) if is_annotation_value(kind) => {
                            self.head.push_str(&format!("# @runtime {kind}\n"));
                        }
                        _ => self.omit(format!("property '{key}'")),
                    }
                }
                (_, Value::String(text))
                    if is_annotation_key(key)
                        && key != "runtime"
                        && key != "__proto__"
                        && is_annotation_value(text) =>
                {
                    self.head.push_str(&format!("# @{key} {text}\n"));
                }
                _ => self.omit(format!("property '{key}'")),
            }
        }
    }

    /// The nodes that can be written, each with its declaration `Name(component:meta)`.
    fn nodes<'g>(&mut self, nodes: &'g [Node]) -> Vec<(&'g Node, String)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for node in nodes {
            let id = &node.id;
            if !is_node_name(id) || !is_component(&node.component) || !seen.insert(id.as_str()) {
                self.omit(format!("node '{id}' (component '{}')", node.component));
                continue;
            }
            for key in node.extra.keys() {
                self.omit(format!("key '{key}' of node '{id}'"));
            }
            let mut text = format!("{id}({}", node.component);
            if let Some(metadata) = &node.metadata {
                let mut items = Vec::new();
                for (key, value) in metadata {
                    match meta_item(key, value) {
                        Some(item) => items.push(item),
                        None => self.omit(format!("metadata '{key}' of node '{id}'")),
                    }
                }
                if metadata.is_empty() {
                    self.omit(format!("empty metadata of node '{id}'"));
                }
                if !items.is_empty() {
                    text.push(':');
                    text.push_str(&items.join(","));
                }
            }
            text.push(')');
            out.push((node, text));
        }
        out
    }

    fn export(&mut self, keyword: &str, export: &ExportedPort, known: &HashSet<&str>) {
        let name = &export.name;
        if !known.contains(export.process.as_str())
            || !is_port_name(&export.port)
            || !is_port_name(name)
            || export.index.is_some()
        {
            self.omit(format!("{keyword} '{name}' ({})", export.target()));
            return;
        }
        if export.metadata.is_some() || !export.extra.is_empty() {
            self.omit(format!("metadata of {keyword} '{name}'"));
        }
        self.exports.push(format!(
            "{keyword}={}.{}:{}",
            export.process,
            export.port.to_ascii_uppercase(),
            name.to_ascii_uppercase()
        ));
    }

    /// Whether `connection` can be written (noting what of it cannot).
    fn connection_ok(&mut self, connection: &Connection, known: &HashSet<&str>) -> bool {
        let end_ok =
            |end: &PortRef| known.contains(end.process.as_str()) && is_port_name(&end.port);
        let (ok, what, extra) = match connection {
            Connection::Edge(e) => (
                end_ok(&e.src) && end_ok(&e.tgt),
                format!("edge {e}"),
                e.metadata.is_some() || !e.extra.is_empty(),
            ),
            Connection::Iip(i) => (
                end_ok(&i.tgt),
                format!("IIP to {}", i.tgt),
                i.metadata.is_some() || !i.extra.is_empty(),
            ),
        };
        if !ok {
            self.omit(what);
        } else if extra {
            self.omit(format!("metadata of the {what}"));
        }
        ok
    }
}

/// `key=value`, if `.fbp` can say it: `x`/`y` must be whole numbers, others words.
fn meta_item(key: &str, value: &Value) -> Option<String> {
    if !is_meta_word(key) || key == "__proto__" {
        return None;
    }
    let text = match value {
        Value::Number(n) if key == "x" || key == "y" => n.as_u64()?.to_string(),
        Value::Null if key == "x" || key == "y" => String::new(),
        Value::String(s) if key != "x" && key != "y" && is_meta_word(s) => s.clone(),
        _ => return None,
    };
    Some(format!("{key}={text}"))
}

/// `NAME` or `NAME[index]`.
fn port(end: &PortRef) -> String {
    let name = end.port.to_ascii_uppercase();
    match end.index {
        Some(index) => format!("{name}[{index}]"),
        None => name,
    }
}

/// An IIP: a string in single quotes where that reads back the same, JSON otherwise.
fn data(value: &Value) -> String {
    let json = serde_json::to_string(value)
        .unwrap_or_else(|_| unreachable!("a serde_json::Value always serializes"));
    match value {
        // In single quotes only `\'` is an escape, so a trailing backslash cannot be written;
        // control characters read better as JSON escapes.
        Value::String(s) if !s.ends_with('\\') && !s.chars().any(char::is_control) => {
            format!("'{}'", s.replace('\'', "\\'"))
        }
        // At the start of a line these would read as node names; JSON whitespace before them
        // (a tab) makes them IIPs.
        Value::Bool(_) | Value::Null => format!("\t{json}"),
        _ => json,
    }
}

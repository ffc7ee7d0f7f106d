//! The token-level rules of the `.fbp` grammar: names, ports, components, comments.
//!
//! There is no separate lexer in the `fbp` grammar (a PEG); these are its rules that match
//! words and punctuation, on the [`Scanner`], without touching the parser's state.

use serde_json::Value;

use super::super::model::Object;
use super::scanner::Scanner;
use super::value::{js_insert, js_number, js_order, js_parse_float};

/// A port as written: its name (lower-cased) and array index.
pub(super) struct Port {
    pub(super) name: String,
    pub(super) index: Option<usize>,
}

/// `(name:meta)`, with where the name starts.
pub(super) struct Component {
    pub(super) name: String,
    pub(super) pos: usize,
    pub(super) meta: Option<String>,
}

/// Node metadata `key=value,...`: a bare `value` is `routes`, `x` and `y` are numbers.
pub(super) fn metadata(text: &str) -> Object {
    let mut out = Object::new();
    for item in text.split(',') {
        let mut fields = item.split('=');
        let first = fields.next().unwrap_or_default();
        let (key, value) = match fields.next() {
            None => ("routes", first),
            Some(value) => (first, value),
        };
        let value = if key == "x" || key == "y" {
            js_number(js_parse_float(value))
        } else {
            Value::String(value.to_string())
        };
        js_insert(&mut out, key.to_string(), value);
    }
    js_order(out)
}

pub(super) fn node_name(s: &mut Scanner<'_>) -> Option<String> {
    s.named("a node name", |s| {
        let first = s.class(|c| c.is_ascii_alphabetic() || c == '_', "")?;
        let rest = s.many(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        Some(format!("{first}{rest}"))
    })
}

pub(super) fn port_name(s: &mut Scanner<'_>) -> Option<String> {
    s.named("a port name", |s| {
        let first = s.class(|c| c.is_ascii_alphabetic() || c == '_', "")?;
        let rest = s.many(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        Some(format!("{first}{rest}"))
    })
}

/// `NAME[index]`; names are lower-cased (fbp's `caseSensitive: false`).
pub(super) fn port(s: &mut Scanner<'_>) -> Option<Port> {
    s.seq(|s| {
        let name = port_name(s)?.to_ascii_lowercase();
        let index = s.seq(|s| {
            s.lit("[", "'['")?;
            let start = s.pos;
            let digits = s.many(|c| c.is_ascii_digit());
            if digits.is_empty() {
                s.fail("an array index");
                return None;
            }
            s.lit("]", "']'")?;
            match digits.parse::<usize>() {
                Ok(index) => Some(index),
                Err(_) => {
                    let error = s.error_at(start, format!("port index {digits} is too large"));
                    s.set_fatal(error);
                    None
                }
            }
        });
        Some(Port { name, index })
    })
}

pub(super) fn component(s: &mut Scanner<'_>) -> Option<Component> {
    s.seq(|s| {
        s.lit("(", "'('")?;
        let pos = s.pos;
        let name = s.many(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'));
        let meta = s.seq(|s| {
            s.lit(":", "':'")?;
            let meta = s.many(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '=' | '_' | ','));
            if meta.is_empty() {
                s.fail("node metadata (key=value,...)");
                return None;
            }
            Some(meta)
        });
        s.lit(")", "')'")?;
        Some(Component { name, pos, meta })
    })
}

/// `# @key value`, which must end its line.
pub(super) fn annotation(s: &mut Scanner<'_>) -> Option<(String, String)> {
    s.seq(|s| {
        s.lit("#", "a comment")?;
        s.spaces1()?;
        s.lit("@", "'@'")?;
        let key = s.many(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if key.is_empty() {
            s.fail("an annotation name");
            return None;
        }
        s.spaces1()?;
        let value = s.many(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ' | '.'));
        if value.is_empty() {
            s.fail("an annotation value");
            return None;
        }
        Some((key, value))
    })
}

pub(super) fn comment(s: &mut Scanner<'_>) -> Option<()> {
    s.seq(|s| {
        s.spaces();
        s.lit("#", "a comment")?;
        s.many(|c| !is_newline(c));
        Some(())
    })
}

pub(super) fn is_newline(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

pub(super) fn newline(s: &mut Scanner<'_>) -> Option<()> {
    s.class(is_newline, "end of line").map(|_| ())
}

/// `_ ","? comment? newline?`
pub(super) fn line_terminator(s: &mut Scanner<'_>) {
    s.spaces();
    let _ = s.lit(",", "','");
    let _ = comment(s);
    let _ = newline(s);
}

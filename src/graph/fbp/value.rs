//! JSON IIPs, and the JavaScript value semantics the `fbp` package's output has.
//!
//! The `fbp` package parses JSON IIPs with its own grammar (RFC 7159) into JavaScript values,
//! which `JSON.stringify` then writes. To produce the same JSON, numbers go through JavaScript's
//! double precision and printing (`-0` becomes `0`, overflow becomes `null`, integers print
//! without a fraction), and objects keep JavaScript's key order (integer-like keys first, in
//! ascending order) and drop `__proto__`.

use serde_json::{Number, Value};

use super::super::model::Object;
use super::scanner::Scanner;

/// How deep JSON arrays and objects may nest in an IIP.
const MAX_DEPTH: usize = 128;

/// `JSON_text`: a JSON value with optional whitespace (tabs and newlines included) around it.
pub(super) fn json_text(s: &mut Scanner<'_>, label: &'static str) -> Option<Value> {
    s.seq(|s| {
        ws(s);
        let value = value(s, 0, label)?;
        ws(s);
        Some(value)
    })
}

fn ws(s: &mut Scanner<'_>) {
    s.many(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
}

/// A value; `label` names what was expected if none starts here.
fn value(s: &mut Scanner<'_>, depth: usize, label: &'static str) -> Option<Value> {
    match s.peek() {
        Some('f') => s.lit("false", "'false'").map(|()| Value::Bool(false)),
        Some('n') => s.lit("null", "'null'").map(|()| Value::Null),
        Some('t') => s.lit("true", "'true'").map(|()| Value::Bool(true)),
        Some('{') => object(s, depth + 1),
        Some('[') => array(s, depth + 1),
        Some('-' | '0'..='9') => number(s),
        Some('"') => string(s).map(Value::String),
        _ => {
            s.fail(label);
            None
        }
    }
}

fn too_deep(s: &mut Scanner<'_>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        let error = s.error_at(
            s.pos,
            format!("JSON nested more than {MAX_DEPTH} levels deep"),
        );
        s.set_fatal(error);
        return true;
    }
    false
}

fn object(s: &mut Scanner<'_>, depth: usize) -> Option<Value> {
    if too_deep(s, depth) {
        return None;
    }
    s.seq(|s| {
        s.lit("{", "'{'")?;
        ws(s);
        let mut out = Object::new();
        if let Some((key, value)) = member(s, depth) {
            js_insert(&mut out, key, value);
            while let Some((key, value)) = s.seq(|s| {
                ws(s);
                s.lit(",", "','")?;
                ws(s);
                member(s, depth)
            }) {
                js_insert(&mut out, key, value);
            }
        }
        ws(s);
        s.lit("}", "'}'")?;
        ws(s);
        Some(Value::Object(js_order(out)))
    })
}

fn member(s: &mut Scanner<'_>, depth: usize) -> Option<(String, Value)> {
    s.seq(|s| {
        if s.peek() != Some('"') {
            s.fail("a JSON string (an object key)");
            return None;
        }
        let key = string(s)?;
        ws(s);
        s.lit(":", "':'")?;
        ws(s);
        let value = value(s, depth, "a JSON value")?;
        Some((key, value))
    })
}

fn array(s: &mut Scanner<'_>, depth: usize) -> Option<Value> {
    if too_deep(s, depth) {
        return None;
    }
    s.seq(|s| {
        s.lit("[", "'['")?;
        ws(s);
        let mut out = Vec::new();
        if let Some(first) = s.seq(|s| value(s, depth, "a JSON value")) {
            out.push(first);
            while let Some(next) = s.seq(|s| {
                ws(s);
                s.lit(",", "','")?;
                ws(s);
                value(s, depth, "a JSON value")
            }) {
                out.push(next);
            }
        }
        ws(s);
        s.lit("]", "']'")?;
        ws(s);
        Some(Value::Array(out))
    })
}

/// `minus? int frac? exp?`, read as JavaScript's `parseFloat` reads it.
fn number(s: &mut Scanner<'_>) -> Option<Value> {
    let digits = |s: &mut Scanner| !s.many(|c| c.is_ascii_digit()).is_empty();
    s.named("a number", |s| {
        let start = s.pos;
        if s.peek() == Some('-') {
            s.bump();
        }
        match s.peek() {
            Some('0') => s.bump(),
            Some('1'..='9') => {
                digits(s);
            }
            _ => return None,
        }
        s.seq(|s| {
            s.lit(".", "'.'")?;
            digits(s).then_some(())
        });
        s.seq(|s| {
            s.class(|c| c == 'e' || c == 'E', "'e'")?;
            if s.peek() == Some('+') || s.peek() == Some('-') {
                s.bump();
            }
            digits(s).then_some(())
        });
        let text = s.since(start);
        Some(js_number(text.parse().unwrap_or(f64::NAN)))
    })
}

/// A JSON string; lone UTF-16 surrogates (from `\u` escapes) become U+FFFD.
fn string(s: &mut Scanner<'_>) -> Option<String> {
    s.seq(|s| {
        s.lit("\"", "a JSON string")?;
        let mut text = String::new();
        // `\u` escapes in a row, decoded together so that a surrogate pair makes one character.
        let mut escaped: Vec<u16> = Vec::new();
        let flush = |text: &mut String, escaped: &mut Vec<u16>| {
            if !escaped.is_empty() {
                text.push_str(&String::from_utf16_lossy(escaped));
                escaped.clear();
            }
        };
        loop {
            let rest = s.rest();
            let plain = rest
                .find(|c: char| c == '"' || c == '\\' || u32::from(c) < 0x20)
                .unwrap_or(rest.len());
            if plain > 0 {
                flush(&mut text, &mut escaped);
                text.push_str(&rest[..plain]);
                s.skip(plain);
            }
            match s.peek() {
                Some('"') => {
                    s.bump();
                    flush(&mut text, &mut escaped);
                    return Some(text);
                }
                Some('\\') => {
                    s.bump();
                    let c = match s.peek() {
                        Some(c @ ('"' | '\\' | '/')) => c,
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('u') => {
                            s.bump();
                            let mut unit = 0u16;
                            for _ in 0..4 {
                                let digit =
                                    s.class(|c| c.is_ascii_hexdigit(), "a hexadecimal digit")?;
                                unit = unit * 16 + digit.to_digit(16).map_or(0, |d| d as u16);
                            }
                            escaped.push(unit);
                            continue;
                        }
                        _ => {
                            s.fail(
                                "an escape sequence (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                            );
                            return None;
                        }
                    };
                    s.bump();
                    flush(&mut text, &mut escaped);
                    text.push(c);
                }
                _ => {
                    s.fail("a closing '\"' (control characters must be escaped)");
                    return None;
                }
            }
        }
    })
}

/// A JavaScript number as the JSON `JSON.stringify` writes for it would parse.
pub(super) fn js_number(f: f64) -> Value {
    if !f.is_finite() {
        return Value::Null;
    }
    if f == 0.0 {
        return Value::from(0u64);
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        // JavaScript prints these as plain digits; JSON readers make an integer of them
        // when it fits.
        if let Ok(value) = serde_json::from_str::<Value>(&format!("{f}")) {
            return value;
        }
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// JavaScript's `parseFloat`: the longest numeric prefix, NaN if there is none.
pub(super) fn js_parse_float(text: &str) -> f64 {
    let text = text.trim_start();
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    if rest.starts_with("Infinity") {
        return sign * f64::INFINITY;
    }
    let bytes = rest.as_bytes();
    let count = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let int_digits = count(0);
    let mut end = int_digits;
    let mut frac_digits = 0;
    if bytes.get(end) == Some(&b'.') {
        frac_digits = count(end + 1);
        end += 1 + frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return f64::NAN;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let signed = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exp_digits = count(end + 1 + signed);
        if exp_digits > 0 {
            end += 1 + signed + exp_digits;
        }
    }
    let number = format!("0{}", &rest[..end]);
    sign * number.parse::<f64>().unwrap_or(f64::NAN)
}

/// Sets `key` as a JavaScript object assignment would: in place if present, `__proto__` never.
pub(super) fn js_insert(map: &mut Object, key: String, value: Value) {
    if key != "__proto__" {
        map.insert(key, value);
    }
}

/// The keys in JavaScript's order: array indices ascending, then the rest as inserted.
pub(super) fn js_order(map: Object) -> Object {
    let index = |key: &str| -> Option<u32> {
        let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
        let number: u32 = key.parse().ok()?;
        (canonical && key.bytes().all(|b| b.is_ascii_digit()) && number != u32::MAX)
            .then_some(number)
    };
    if !map.keys().any(|k| index(k).is_some()) {
        return map;
    }
    let (mut indices, rest): (Vec<_>, Vec<_>) =
        map.into_iter().partition(|(k, _)| index(k).is_some());
    indices.sort_by_key(|(k, _)| index(k));
    indices.into_iter().chain(rest).collect()
}

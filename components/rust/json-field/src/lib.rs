//! `json/Field`: extracts one field from each JSON data IP.
//!
//! * inport `path` (string, setting, required): where the field is. Dot-separated keys and array
//!   indexes, as in `a.b.0` (object key `a`, key `b`, element 0); an empty path is the whole
//!   document. A path starting with `/` is a JSON Pointer (RFC 6901) instead, for keys that
//!   contain dots (`/a.b/0`).
//! * inport `in` (all): JSON documents, one per data IP.
//! * outport `out` (all): the field's value. A JSON string is sent as its own text, without
//!   quotes (flowd's convention for JSON values); anything else as compact JSON.
//! * outport `error` (all): the data IPs that are not JSON or lack the field, unchanged. When
//!   `error` is not connected they are dropped with a warning in the log.
//!
//! Brackets pass through to `out` unchanged.

use flowd_guest::{Component, Context, Ip, Port, Result, Spec, warn};
use serde_json::Value;

/// A parsed `path` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    /// Dot-separated segments; each is an object key, or an index into an array.
    Dotted(Vec<String>),
    /// A JSON Pointer.
    Pointer(String),
}

impl Path {
    fn parse(text: &str) -> Path {
        if text.starts_with('/') {
            Path::Pointer(text.to_owned())
        } else if text.is_empty() {
            Path::Dotted(Vec::new())
        } else {
            Path::Dotted(text.split('.').map(str::to_owned).collect())
        }
    }

    /// The value at this path in `doc`, or why there is none.
    fn lookup<'v>(&self, doc: &'v Value) -> Result<&'v Value, String> {
        match self {
            Path::Pointer(p) => doc.pointer(p).ok_or_else(|| format!("no field at {p}")),
            Path::Dotted(segments) => {
                let mut here = doc;
                for (i, seg) in segments.iter().enumerate() {
                    let next = match here {
                        Value::Object(map) => map.get(seg),
                        Value::Array(items) => seg.parse::<usize>().ok().and_then(|n| items.get(n)),
                        _ => None,
                    };
                    here =
                        next.ok_or_else(|| format!("no field `{}`", segments[..=i].join(".")))?;
                }
                Ok(here)
            }
        }
    }
}

/// The field of `data` at `path`, encoded for sending.
fn extract(path: &Path, data: &[u8]) -> Result<Vec<u8>, String> {
    let doc: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    Ok(match path.lookup(&doc)? {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    })
}

struct Field;

impl Component for Field {
    fn describe() -> Spec {
        Spec::new("json/Field", "Extracts a field from JSON data")
            .icon("filter")
            .inport(Port::new("path", "string", "Field path, like a.b.0 or /a/b/0").required())
            .inport(Port::new("in", "all", "JSON documents"))
            .outport(Port::new("out", "all", "The field's values"))
            .outport(Port::new(
                "error",
                "all",
                "Data that is not JSON or lacks the field",
            ))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let path = Path::parse(&ctx.read_config::<String>("path")?);
        let input = ctx.inport("in")?;
        let (output, errors) = (ctx.outport("out")?, ctx.outport("error")?);
        while let Some(ip) = input.recv()? {
            let Ip::Data(data) = ip else {
                output.send(ip)?;
                continue;
            };
            match extract(&path, &data) {
                Ok(value) => output.send(Ip::Data(value))?,
                Err(why) if errors.is_connected() => {
                    flowd_guest::debug!("to error: {why}");
                    match errors.send(Ip::Data(data)) {
                        // `error` closing downstream must not stop `out`.
                        Err(e) if e.is_closed() => warn!("dropped a data IP: {why}"),
                        other => other?,
                    }
                }
                Err(why) => warn!("dropped a data IP: {why}"),
            }
        }
        Ok(())
    }
}

flowd_guest::export!(Field);

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, json: &str) -> Result<String, String> {
        extract(&Path::parse(path), json.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn dotted_paths() {
        let doc = r#"{"a":{"b":[{"c":1},"two",null]},"s":"text","x.y":true}"#;
        assert_eq!(get("a.b.0", doc).unwrap(), r#"{"c":1}"#);
        assert_eq!(get("a.b.0.c", doc).unwrap(), "1");
        assert_eq!(get("a.b.1", doc).unwrap(), "two", "strings without quotes");
        assert_eq!(get("a.b.2", doc).unwrap(), "null");
        assert_eq!(get("s", doc).unwrap(), "text");
        assert_eq!(get("", "[1, 2]").unwrap(), "[1,2]");
        assert_eq!(get("a.b.3", doc).unwrap_err(), "no field `a.b.3`");
        assert_eq!(get("a.z.q", doc).unwrap_err(), "no field `a.z`");
        assert!(get("s.0", doc).is_err(), "no indexing into strings");
        assert!(get("a.b.x", doc).is_err(), "arrays need numeric segments");
    }

    #[test]
    fn pointers_and_errors() {
        let doc = r#"{"x.y":{"k":[5]}}"#;
        assert_eq!(get("/x.y/k/0", doc).unwrap(), "5");
        assert!(get("/x.y/k/1", doc).is_err());
        assert!(get("a", "{not json").unwrap_err().starts_with("not JSON"));
    }
}

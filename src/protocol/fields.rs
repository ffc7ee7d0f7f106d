//! Reading payload fields leniently, with errors that name the command and the field.

use serde_json::{Map, Value};

use super::Payload;
use crate::graph::{Object, PortRef};

/// The `graph` field, with the suite's exact text when it is missing.
pub(crate) fn graph(payload: &Payload) -> Result<&str, String> {
    match payload.get("graph") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err("No graph specified".into()),
    }
}

/// A required string field.
pub(crate) fn string<'a>(
    payload: &'a Payload,
    key: &str,
    command: &str,
) -> Result<&'a str, String> {
    match payload.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("{command}: '{key}' must not be empty")),
        Some(other) => Err(format!(
            "{command}: '{key}' must be a string, not {}",
            kind(other)
        )),
        None => Err(format!("{command}: '{key}' is missing")),
    }
}

/// An optional metadata object; `null` counts as absent, and so do keys whose value is `null`
/// (noflo-ui sends `route: null`).
pub(crate) fn metadata(
    payload: &Payload,
    key: &str,
    command: &str,
) -> Result<Option<Object>, String> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )),
        Some(other) => Err(format!(
            "{command}: '{key}' must be an object, not {}",
            kind(other)
        )),
    }
}

/// A required metadata patch (an object; `null` values delete keys).
pub(crate) fn patch<'a>(payload: &'a Payload, command: &str) -> Result<&'a Object, String> {
    match payload.get("metadata") {
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(format!(
            "{command}: 'metadata' must be an object, not {}",
            kind(other)
        )),
        None => Err(format!("{command}: 'metadata' is missing")),
    }
}

/// A required port reference `{node, port, index?}`.
pub(crate) fn port(payload: &Payload, key: &str, command: &str) -> Result<PortRef, String> {
    let Some(Value::Object(map)) = payload.get(key) else {
        return Err(format!(
            "{command}: '{key}' must be an object {{\"node\", \"port\"}}"
        ));
    };
    let field = |name: &str| -> Result<String, String> {
        match map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!(
                "{command}: '{key}.{name}' must be a non-empty string"
            )),
        }
    };
    let mut port = PortRef::new(field("node")?, field("port")?);
    port.index = match map.get("index") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(index(n.as_u64(), key, command)?),
        Some(Value::String(s)) => Some(index(s.parse().ok(), key, command)?),
        Some(_) => return Err(format!("{command}: '{key}.index' must be a number")),
    };
    Ok(port)
}

fn index(value: Option<u64>, key: &str, command: &str) -> Result<usize, String> {
    value
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| format!("{command}: '{key}.index' must be a non-negative integer"))
}

/// A port reference as the protocol writes it: `index` only when there is one.
pub(crate) fn port_json(port: &PortRef) -> Value {
    let mut map = Map::new();
    map.insert("node".into(), Value::from(port.process.as_str()));
    map.insert("port".into(), Value::from(port.port.as_str()));
    if let Some(index) = port.index {
        map.insert("index".into(), Value::from(index));
    }
    Value::Object(map)
}

/// Copies the keys of `payload` named in `keys` that are present, for echoes: an echo carries
/// what the request supplied and invents nothing.
pub(crate) fn echo(payload: &Payload, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| payload.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

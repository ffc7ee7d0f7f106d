//! `http/Server` and `http/Request`, and the JSON shape of the HTTP messages they exchange
//! with the rest of a network.
//!
//! A message is a JSON object: headers as an object of strings (repeated headers joined with
//! `, `), and the body as `body` (text) when it is UTF-8, or as `bodyBase64` otherwise. Going
//! the other way, `body` may also be any other JSON value, which is sent as JSON text with
//! `content-type: application/json` unless the message says otherwise.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

mod request;
mod server;

pub(super) use request::Request;
pub(super) use server::Server;

/// Bodies larger than this are refused (request bodies with 413 by `http/Server`, response
/// bodies with an error by `http/Request`), unless a component's `maxbody` says otherwise.
pub(super) const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Headers that belong to one connection, not to the message, and that the server or client
/// sets itself: never copied from a JSON message (an echoed request's `content-length` would
/// otherwise lie about the response).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `headers` as a JSON object.
fn headers_to_json(headers: &HeaderMap) -> Value {
    let mut object = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match object.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                object.insert(name.as_str().to_string(), Value::String(value.into_owned()));
            }
        }
    }
    Value::Object(object)
}

/// Adds `body` to `message` as `body` (UTF-8 text) or `bodyBase64`.
fn put_body(message: &mut Map<String, Value>, body: &[u8]) {
    match std::str::from_utf8(body) {
        Ok(text) => message.insert("body".into(), Value::String(text.to_string())),
        Err(_) => message.insert("bodyBase64".into(), Value::String(BASE64.encode(body))),
    };
}

/// The headers and body of a JSON message, ready to send.
///
/// # Errors
///
/// A header name or value that HTTP does not allow, or `bodyBase64` that is not base64.
fn headers_and_body(message: &Map<String, Value>) -> Result<(HeaderMap, Bytes), String> {
    let mut headers = HeaderMap::new();
    if let Some(given) = message.get("headers") {
        let Value::Object(given) = given else {
            return Err(format!("'headers' must be an object, not {given}"));
        };
        for (name, value) in given {
            if HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name '{name}'"))?;
            let values = match value {
                Value::Array(values) => values.iter().collect(),
                single => vec![single],
            };
            for value in values {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| format!("invalid value for header '{name}': '{text}'"))?;
                headers.append(name.clone(), value);
            }
        }
    }
    let body = match (message.get("bodyBase64"), message.get("body")) {
        (Some(Value::String(encoded)), _) => BASE64
            .decode(encoded)
            .map(Bytes::from)
            .map_err(|e| format!("'bodyBase64' is not base64: {e}"))?,
        (_, None | Some(Value::Null)) => Bytes::new(),
        (_, Some(Value::String(text))) => Bytes::from(text.clone()),
        (_, Some(other)) => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Bytes::from(other.to_string())
        }
    };
    Ok((headers, body))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_are_text_when_they_can_be_and_base64_otherwise() {
        let mut message = Map::new();
        put_body(&mut message, b"caf\xc3\xa9");
        put_body(&mut message, b"\xff\x00");
        assert_eq!(
            Value::Object(message),
            json!({"body": "café", "bodyBase64": "/wA="})
        );
    }

    #[test]
    fn json_bodies_are_sent_as_json_and_connection_headers_are_left_out() {
        let message = json!({"headers": {"X-A": ["1", 2], "Content-Length": "99", "Host": "h"},
            "body": {"ok": true}});
        let Value::Object(message) = message else {
            unreachable!()
        };
        let (headers, body) = headers_and_body(&message).unwrap_or_default();
        assert_eq!(body, Bytes::from(r#"{"ok":true}"#));
        assert_eq!(headers.get_all("x-a").iter().count(), 2);
        assert_eq!(
            headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        assert!(headers.get("content-length").is_none() && headers.get("host").is_none());
    }

    #[test]
    fn bad_headers_and_base64_are_reported() {
        for bad in [
            json!({"headers": {"bad name": "x"}}),
            json!({"headers": {"x": "line\nbreak"}}),
            json!({"headers": "x"}),
            json!({"bodyBase64": "***"}),
        ] {
            let Value::Object(message) = bad else {
                unreachable!()
            };
            assert!(headers_and_body(&message).is_err(), "{message:?}");
        }
    }
}

//! The envelope: one JSON object per WebSocket text frame, in both directions.
//!
//! Input is read leniently (a secret may sit at the top level or in the payload, `payload`
//! may be missing); output is strict: exactly `protocol`, `command`, `payload` and, when the
//! request carried a `requestId`, `responseTo`.

use serde_json::{Map, Value, json};

/// A request from a client, parsed from one text frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `runtime`, `graph`, `network`, `component` or `trace` (others are answered as unknown).
    pub protocol: String,
    /// The command within the protocol.
    pub command: String,
    /// The payload, without any `secret`.
    pub payload: Map<String, Value>,
    /// The secret, from the top level or else the payload; `None` if missing or empty.
    pub secret: Option<String>,
    /// The request's `requestId`, to be copied into `responseTo` of the direct answers.
    pub request_id: Option<Value>,
}

/// Why a frame is not a request. The message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FrameError {
    /// The protocol to answer with an error frame of (`runtime` when the frame names none).
    pub protocol: String,
    /// What is wrong.
    pub message: String,
}

impl Request {
    /// Parses a text frame.
    ///
    /// # Errors
    ///
    /// [`FrameError`] when the frame is not a JSON object with string `protocol` and `command`
    /// and an object `payload` (a missing payload counts as empty).
    pub fn parse(text: &str) -> Result<Request, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|error| FrameError {
            protocol: "runtime".into(),
            message: format!("the frame is not JSON: {error}"),
        })?;
        let Value::Object(mut frame) = value else {
            return Err(FrameError {
                protocol: "runtime".into(),
                message: "the frame is not a JSON object".into(),
            });
        };
        let protocol = match frame.remove("protocol") {
            Some(Value::String(p)) => p,
            _ => {
                return Err(FrameError {
                    protocol: "runtime".into(),
                    message: "the frame has no 'protocol' string".into(),
                });
            }
        };
        let fail = |message: String| FrameError {
            protocol: known_protocol(&protocol).to_string(),
            message,
        };
        let command = match frame.remove("command") {
            Some(Value::String(c)) => c,
            _ => return Err(fail("the frame has no 'command' string".into())),
        };
        let mut payload = match frame.remove("payload") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p,
            Some(_) => {
                return Err(fail(format!(
                    "{protocol}:{command}: 'payload' must be an object"
                )));
            }
        };
        let payload_secret = payload.remove("secret");
        let secret = [frame.remove("secret"), payload_secret]
            .into_iter()
            .flatten()
            .find_map(|s| match s {
                Value::String(s) if !s.is_empty() => Some(s),
                _ => None,
            });
        Ok(Request {
            protocol,
            command,
            payload,
            secret,
            // The output schema wants a string `responseTo`.
            request_id: frame.remove("requestId").and_then(|id| match id {
                Value::Null => None,
                Value::String(s) => Some(Value::String(s)),
                other => Some(Value::String(other.to_string())),
            }),
        })
    }
}

/// The protocol's name, if it is one of the five flowd speaks.
pub fn protocol_name(protocol: &str) -> Option<&'static str> {
    ["runtime", "graph", "network", "component", "trace"]
        .into_iter()
        .find(|p| *p == protocol)
}

/// The protocol to report an error under: the frame's own if it is one of the five, else
/// `runtime`.
pub fn known_protocol(protocol: &str) -> &'static str {
    protocol_name(protocol).unwrap_or("runtime")
}

/// A message from the runtime to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The protocol.
    pub protocol: &'static str,
    /// The command.
    pub command: String,
    /// The payload: an object, except for `component:componentsready` (a count).
    pub payload: Value,
}

impl Message {
    /// A message with the given payload.
    pub fn new(protocol: &'static str, command: impl Into<String>, payload: Value) -> Message {
        Message {
            protocol,
            command: command.into(),
            payload,
        }
    }

    /// `<protocol>:error` with `message`.
    pub fn error(protocol: &str, message: impl Into<String>) -> Message {
        Message::new(
            known_protocol(protocol),
            "error",
            json!({ "message": message.into() }),
        )
    }

    /// The frame's text, with `responseTo` when answering a request that had a `requestId`.
    pub fn to_frame(&self, response_to: Option<&Value>) -> String {
        let envelope = Envelope {
            protocol: self.protocol,
            command: &self.command,
            payload: &self.payload,
            response_to,
        };
        // Borrowing the payload spares a deep copy of every packet shown to clients.
        serde_json::to_string(&envelope)
            .expect("JSON values and strings always serialize: map keys are strings")
    }
}

/// The outgoing envelope, borrowed from a [`Message`], in the order clients are shown it.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    protocol: &'a str,
    command: &'a str,
    payload: &'a Value,
    #[serde(rename = "responseTo", skip_serializing_if = "Option::is_none")]
    response_to: Option<&'a Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_the_top_level_or_the_payload_and_are_stripped() {
        let r = Request::parse(
            r#"{"protocol":"graph","command":"clear","payload":{"id":"a","secret":"p"},"secret":"t"}"#,
        )
        .unwrap();
        assert_eq!(r.secret.as_deref(), Some("t"));
        assert!(!r.payload.contains_key("secret"));
        let r = Request::parse(
            r#"{"protocol":"runtime","command":"getruntime","payload":{"secret":""}}"#,
        )
        .unwrap();
        assert_eq!(r.secret, None);
    }

    #[test]
    fn malformed_frames_say_what_is_wrong() {
        let e = Request::parse("nope").unwrap_err();
        assert!(e.message.contains("not JSON"), "{e}");
        let e = Request::parse(r#"{"protocol":"graph","payload":{}}"#).unwrap_err();
        assert_eq!(e.protocol, "graph");
        assert!(e.message.contains("'command'"), "{e}");
        let e = Request::parse(r#"{"protocol":"graph","command":"x","payload":3}"#).unwrap_err();
        assert!(e.message.contains("must be an object"), "{e}");
    }

    #[test]
    fn frames_carry_response_to_only_when_asked() {
        let m = Message::error("graph", "boom");
        assert_eq!(
            m.to_frame(None),
            r#"{"protocol":"graph","command":"error","payload":{"message":"boom"}}"#
        );
        assert!(
            m.to_frame(Some(&json!("r1")))
                .ends_with(r#""responseTo":"r1"}"#)
        );
    }
}

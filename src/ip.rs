//! Information packets: what flows over the edges of a network.
//!
//! An [`Ip`] is data, or one of the two brackets that group data into substreams. Payloads are
//! opaque bytes. [`Payload`] is cheap to clone: fan-out to several edges copies no data, and
//! small payloads (up to [`Payload::INLINE_CAPACITY`] bytes) live inline, so creating one
//! allocates nothing.
//!
//! # IPs and JSON
//!
//! At the edges of the runtime (graph files, the FBP protocol) IPs appear as JSON values. This
//! module is the one place that maps between them:
//!
//! - a JSON string becomes its UTF-8 text (without quotes); any other JSON value becomes its
//!   compact JSON text ([`Payload::from_json`]);
//! - going back, a payload that parses as JSON becomes that value, and anything else becomes a
//!   JSON string of its (lossy UTF-8) text ([`Payload::to_json`]).
//!
//! So the IIP `"hello"` reaches a component as the five bytes `hello`, and the IIP `{"a": 1}`
//! as the bytes `{"a":1}`.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use serde_json::Value;

/// An information packet.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Ip {
    /// A data packet.
    Data(Payload),
    /// Opens a bracket (a substream); the payload is its label, often empty.
    Open(Payload),
    /// Closes the innermost open bracket; the payload is its label, often empty.
    Close(Payload),
}

impl Ip {
    /// A data IP with the given payload.
    pub fn data(payload: impl Into<Payload>) -> Ip {
        Ip::Data(payload.into())
    }

    /// An opening bracket with the given label.
    pub fn open(label: impl Into<Payload>) -> Ip {
        Ip::Open(label.into())
    }

    /// A closing bracket with the given label.
    pub fn close(label: impl Into<Payload>) -> Ip {
        Ip::Close(label.into())
    }

    /// The payload (data, or the bracket label).
    pub fn payload(&self) -> &Payload {
        match self {
            Ip::Data(p) | Ip::Open(p) | Ip::Close(p) => p,
        }
    }

    /// Takes the payload out of the IP.
    pub fn into_payload(self) -> Payload {
        match self {
            Ip::Data(p) | Ip::Open(p) | Ip::Close(p) => p,
        }
    }

    /// Whether this is a data IP (not a bracket).
    pub fn is_data(&self) -> bool {
        matches!(self, Ip::Data(_))
    }
}

impl fmt::Debug for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ip::Data(p) => write!(f, "Data({p:?})"),
            Ip::Open(p) => write!(f, "Open({p:?})"),
            Ip::Close(p) => write!(f, "Close({p:?})"),
        }
    }
}

/// The bytes an IP carries: inline when small, otherwise a shared reference-counted buffer.
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        buf: [u8; Payload::INLINE_CAPACITY],
    },
    Shared(Bytes),
}

impl Payload {
    /// Payloads up to this many bytes are stored inline, without an allocation.
    pub const INLINE_CAPACITY: usize = 22;

    /// An empty payload (as carried by unlabeled brackets).
    pub const fn empty() -> Payload {
        Payload(Repr::Inline {
            len: 0,
            buf: [0; Payload::INLINE_CAPACITY],
        })
    }

    /// A payload holding a copy of `bytes`.
    #[inline]
    pub fn copy_from_slice(bytes: &[u8]) -> Payload {
        if bytes.len() <= Self::INLINE_CAPACITY {
            let mut buf = [0; Self::INLINE_CAPACITY];
            buf[..bytes.len()].copy_from_slice(bytes);
            Payload(Repr::Inline {
                len: bytes.len() as u8,
                buf,
            })
        } else {
            Payload(Repr::Shared(Bytes::copy_from_slice(bytes)))
        }
    }

    /// The bytes as a slice.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Shared(b) => b,
        }
    }

    /// The payload as UTF-8 text, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// The payload as text, with invalid UTF-8 sequences replaced.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    /// The payload as a [`Bytes`] buffer (copies only inline payloads).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(b) => b.clone(),
        }
    }

    /// Maps a JSON value to a payload: a string becomes its text, anything else its JSON text.
    pub fn from_json(value: &Value) -> Payload {
        match value {
            Value::String(s) => Payload::from(s.as_str()),
            other => Payload::from(other.to_string()),
        }
    }

    /// Maps a payload to a JSON value: valid JSON text becomes that value, anything else a string.
    ///
    /// This is the inverse of [`Payload::from_json`] for every value except strings whose text
    /// is itself valid JSON (the string `"42"` comes back as the number `42`).
    pub fn to_json(&self) -> Value {
        match serde_json::from_slice::<Value>(self.as_bytes()) {
            Ok(value) => value,
            Err(_) => Value::String(self.to_string_lossy().into_owned()),
        }
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload::empty()
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Payload {}

impl std::hash::Hash for Payload {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialEq<&str> for Payload {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "{:?}", self.as_bytes()),
        }
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        if bytes.len() <= Self::INLINE_CAPACITY {
            Payload::copy_from_slice(&bytes)
        } else {
            Payload(Repr::Shared(bytes))
        }
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        if bytes.len() <= Self::INLINE_CAPACITY {
            Payload::copy_from_slice(&bytes)
        } else {
            Payload(Repr::Shared(Bytes::from(bytes)))
        }
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Self {
        Payload::from(text.into_bytes())
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Self {
        Payload::copy_from_slice(text.as_bytes())
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Self {
        Payload::copy_from_slice(bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for Payload {
    fn from(bytes: &[u8; N]) -> Self {
        Payload::copy_from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_payloads_are_inline_and_large_ones_shared() {
        let small = Payload::from("12345678");
        assert!(matches!(small.0, Repr::Inline { len: 8, .. }));
        let large = Payload::from("x".repeat(100));
        assert!(matches!(large.0, Repr::Shared(_)));
        assert_eq!(large.len(), 100);
        assert_eq!(small, "12345678");
    }

    #[test]
    fn ip_is_no_larger_than_five_words() {
        assert!(std::mem::size_of::<Ip>() <= 40);
    }

    #[test]
    fn json_strings_become_their_text_and_other_values_their_json() {
        assert_eq!(Payload::from_json(&json!("hello")), "hello");
        assert_eq!(Payload::from_json(&json!({"a": 1})), "{\"a\":1}");
        assert_eq!(Payload::from_json(&json!(42)), "42");
        assert_eq!(Payload::from("{\"a\":1}").to_json(), json!({"a": 1}));
        assert_eq!(Payload::from("hello").to_json(), json!("hello"));
        assert_eq!(
            Payload::from(vec![0xff, 0xfe]).to_json(),
            json!("\u{fffd}\u{fffd}")
        );
    }
}

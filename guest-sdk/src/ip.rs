//! Information packets: [`Ip`], its [`IpKind`], and the borrowed view [`IpRef`].

use std::borrow::Cow;

pub use crate::raw::flowd::component::types::Ip;
use crate::{Error, Result};

/// The kind of an IP, without its payload. The discriminants are the packed encoding's kind
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IpKind {
    /// A data IP.
    Data = 0,
    /// An opening bracket.
    Open = 1,
    /// A closing bracket.
    Close = 2,
}

impl IpKind {
    /// The kind for a packed kind byte, `None` if the byte is not 0, 1 or 2.
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(IpKind::Data),
            1 => Some(IpKind::Open),
            2 => Some(IpKind::Close),
            _ => None,
        }
    }

    /// The packed kind byte: 0 data, 1 open, 2 close.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl Ip {
    /// A data IP. Accepts `&str`, `String`, `&[u8]`, `Vec<u8>`.
    pub fn data(payload: impl Into<Vec<u8>>) -> Self {
        Ip::Data(payload.into())
    }

    /// An opening bracket with a label (`""` for none).
    pub fn open(label: impl Into<Vec<u8>>) -> Self {
        Ip::Open(label.into())
    }

    /// A closing bracket with a label (`""` for none).
    pub fn close(label: impl Into<Vec<u8>>) -> Self {
        Ip::Close(label.into())
    }

    /// This IP's kind.
    pub fn kind(&self) -> IpKind {
        match self {
            Ip::Data(_) => IpKind::Data,
            Ip::Open(_) => IpKind::Open,
            Ip::Close(_) => IpKind::Close,
        }
    }

    /// Whether this is a data IP.
    pub fn is_data(&self) -> bool {
        matches!(self, Ip::Data(_))
    }

    /// Whether this is an opening bracket.
    pub fn is_open(&self) -> bool {
        matches!(self, Ip::Open(_))
    }

    /// Whether this is a closing bracket.
    pub fn is_close(&self) -> bool {
        matches!(self, Ip::Close(_))
    }

    /// Whether this is a bracket, opening or closing.
    pub fn is_bracket(&self) -> bool {
        !self.is_data()
    }

    /// The payload, whatever the kind: the data of a data IP, the label of a bracket.
    pub fn payload(&self) -> &[u8] {
        match self {
            Ip::Data(p) | Ip::Open(p) | Ip::Close(p) => p,
        }
    }

    /// The payload, by value.
    pub fn into_payload(self) -> Vec<u8> {
        match self {
            Ip::Data(p) | Ip::Open(p) | Ip::Close(p) => p,
        }
    }

    /// The bytes of a data IP, `None` for a bracket.
    pub fn as_data(&self) -> Option<&[u8]> {
        match self {
            Ip::Data(p) => Some(p),
            _ => None,
        }
    }

    /// The label of a bracket, `None` for a data IP.
    pub fn label(&self) -> Option<&[u8]> {
        match self {
            Ip::Open(p) | Ip::Close(p) => Some(p),
            Ip::Data(_) => None,
        }
    }

    /// The payload as UTF-8 text (for a bracket, its label). Fails with a clear error if the
    /// bytes are not UTF-8.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(self.payload())
            .map_err(|e| Error::Other(format!("IP payload is not UTF-8 text: {e}")))
    }

    /// The payload as text, with invalid UTF-8 replaced by `U+FFFD`.
    pub fn text_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.payload())
    }

    /// The payload as an owned `String`, without copying. Fails if it is not UTF-8.
    pub fn into_text(self) -> Result<String> {
        String::from_utf8(self.into_payload())
            .map_err(|e| Error::Other(format!("IP payload is not UTF-8 text: {e}")))
    }

    /// Transforms the payload of a data IP; brackets pass through unchanged. This is the usual
    /// way to write a filter that keeps the stream's structure.
    ///
    /// ```
    /// use flowd_guest::Ip;
    /// let up = |ip: Ip| ip.map_data(|d| d.to_ascii_uppercase());
    /// assert_eq!(up(Ip::data("abc")), Ip::data("ABC"));
    /// assert_eq!(up(Ip::open("abc")), Ip::open("abc"));
    /// ```
    pub fn map_data(self, f: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Ip {
        match self {
            Ip::Data(d) => Ip::Data(f(d)),
            bracket => bracket,
        }
    }

    /// Like [`Ip::map_data`] with a fallible transformation; brackets pass through.
    pub fn try_map_data<E>(self, f: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, E>) -> Result<Ip, E> {
        match self {
            Ip::Data(d) => f(d).map(Ip::Data),
            bracket => Ok(bracket),
        }
    }

    /// A borrowed view of this IP.
    pub fn as_ip_ref(&self) -> IpRef<'_> {
        match self {
            Ip::Data(p) => IpRef::Data(p),
            Ip::Open(p) => IpRef::Open(p),
            Ip::Close(p) => IpRef::Close(p),
        }
    }
}

/// A borrowed IP, as yielded by [`Batch::iter`](crate::Batch::iter): the payload points into
/// the batch's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRef<'a> {
    /// A data IP.
    Data(&'a [u8]),
    /// An opening bracket with its label.
    Open(&'a [u8]),
    /// A closing bracket with its label.
    Close(&'a [u8]),
}

impl<'a> IpRef<'a> {
    /// A view of the given kind and payload.
    pub fn new(kind: IpKind, payload: &'a [u8]) -> Self {
        match kind {
            IpKind::Data => IpRef::Data(payload),
            IpKind::Open => IpRef::Open(payload),
            IpKind::Close => IpRef::Close(payload),
        }
    }

    /// This IP's kind.
    pub fn kind(&self) -> IpKind {
        match self {
            IpRef::Data(_) => IpKind::Data,
            IpRef::Open(_) => IpKind::Open,
            IpRef::Close(_) => IpKind::Close,
        }
    }

    /// Whether this is a data IP.
    pub fn is_data(&self) -> bool {
        matches!(self, IpRef::Data(_))
    }

    /// Whether this is a bracket.
    pub fn is_bracket(&self) -> bool {
        !self.is_data()
    }

    /// The payload (data, or a bracket's label).
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            IpRef::Data(p) | IpRef::Open(p) | IpRef::Close(p) => p,
        }
    }

    /// The payload as UTF-8 text; fails if it is not UTF-8.
    pub fn text(&self) -> Result<&'a str> {
        std::str::from_utf8(self.payload())
            .map_err(|e| Error::Other(format!("IP payload is not UTF-8 text: {e}")))
    }

    /// An owned copy.
    pub fn to_ip(&self) -> Ip {
        match *self {
            IpRef::Data(p) => Ip::Data(p.to_vec()),
            IpRef::Open(p) => Ip::Open(p.to_vec()),
            IpRef::Close(p) => Ip::Close(p.to_vec()),
        }
    }
}

impl<'a> From<&'a Ip> for IpRef<'a> {
    fn from(ip: &'a Ip) -> Self {
        ip.as_ip_ref()
    }
}

impl From<IpRef<'_>> for Ip {
    fn from(ip: IpRef<'_>) -> Self {
        ip.to_ip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        let d = Ip::data("héllo");
        assert!(d.is_data() && !d.is_bracket());
        assert_eq!(d.kind(), IpKind::Data);
        assert_eq!(d.text().unwrap(), "héllo");
        assert_eq!(d.label(), None);
        let o = Ip::open("grp");
        assert!(o.is_open() && o.is_bracket());
        assert_eq!(o.label(), Some(&b"grp"[..]));
        assert_eq!(o.as_data(), None);
        assert!(Ip::close("").is_close());
        let bad = Ip::Data(vec![0xff, b'a']);
        assert!(bad.text().is_err());
        assert_eq!(bad.text_lossy(), "\u{fffd}a");
        assert_eq!(Ip::data("x").into_text().unwrap(), "x");
    }

    #[test]
    fn map_data_keeps_brackets() {
        let rev = |ip: Ip| {
            ip.map_data(|mut d| {
                d.reverse();
                d
            })
        };
        assert_eq!(rev(Ip::data("abc")), Ip::data("cba"));
        assert_eq!(rev(Ip::close("abc")), Ip::close("abc"));
        let r: Result<Ip, &str> = Ip::data("a").try_map_data(|_| Err("no"));
        assert_eq!(r, Err("no"));
        let r: Result<Ip, &str> = Ip::open("a").try_map_data(|_| Err("no"));
        assert_eq!(r, Ok(Ip::open("a")));
    }

    #[test]
    fn kinds_and_refs() {
        for k in [IpKind::Data, IpKind::Open, IpKind::Close] {
            assert_eq!(IpKind::from_u8(k.as_u8()), Some(k));
        }
        assert_eq!(IpKind::from_u8(3), None);
        let ip = Ip::open("l");
        let r = IpRef::from(&ip);
        assert_eq!(r, IpRef::Open(b"l"));
        assert_eq!(Ip::from(r), ip);
        assert_eq!(IpRef::new(IpKind::Close, b"x").to_ip(), Ip::close("x"));
    }
}

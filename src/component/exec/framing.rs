//! How IPs travel over a child's standard input and output: a framing (where one IP ends and
//! the next begins) and a mapping for brackets.
//!
//! - `lines`: one IP per line, ended by `\n`; a `\r` before it is dropped on the way back, and
//!   a last line without a newline still counts. An IP holding newlines reaches the child as
//!   several lines.
//! - `length`: each frame is its length as 4 bytes, big-endian, then that many bytes. Any bytes.
//! - `netstring`: `<length in decimal>:<bytes>,` (D. J. Bernstein's netstrings). Any bytes.
//!
//! Brackets are dropped by default: the child sees only data, and everything it writes is
//! data. With markers, an opening bracket travels as a frame made of the open marker and the
//! bracket's label, a closing one likewise, in both directions.

use std::io::{self, BufRead, Read, Write};

use crate::ip::{Ip, Payload};

/// Where one frame ends and the next begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One frame per line.
    Lines,
    /// A 4-byte big-endian length, then the bytes.
    Length,
    /// `<length>:<bytes>,`
    Netstring,
}

impl Framing {
    /// The framing called `name`, as in the `framing` setting.
    pub(crate) fn named(name: &str) -> Option<Framing> {
        match name {
            "lines" => Some(Framing::Lines),
            "length" => Some(Framing::Length),
            "netstring" => Some(Framing::Netstring),
            _ => None,
        }
    }

    /// The framing's name, as in the `framing` setting.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Framing::Lines => "lines",
            Framing::Length => "length",
            Framing::Netstring => "netstring",
        }
    }
}

/// What happens to brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Brackets {
    /// Brackets are not sent to the child; everything it writes is data.
    Drop,
    /// Brackets travel as frames starting with these markers, followed by the label.
    Markers {
        /// Starts a frame that is an opening bracket.
        open: Vec<u8>,
        /// Starts a frame that is a closing bracket.
        close: Vec<u8>,
    },
}

/// Why a child's output could not be read as frames.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// A frame longer than the limit.
    #[error("a frame longer than {limit} bytes (raise max_frame if that is expected)")]
    TooLong {
        /// The limit.
        limit: usize,
    },
    /// The output ended inside a frame.
    #[error("the output ended inside a frame")]
    Truncated,
    /// Bytes that are not a frame of this framing.
    #[error("not a netstring: {0}")]
    Malformed(&'static str),
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A framing with its bracket mapping and frame size limit: both directions of the wire.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    /// The framing.
    pub(crate) framing: Framing,
    /// The bracket mapping.
    pub(crate) brackets: Brackets,
    /// The longest frame read back, in bytes.
    pub(crate) max_frame: usize,
}

impl Wire {
    /// Whether `ip` is written to the child at all (dropped brackets are not).
    pub(crate) fn carries(&self, ip: &Ip) -> bool {
        ip.is_data() || matches!(self.brackets, Brackets::Markers { .. })
    }

    /// Writes `ip` as one frame (nothing for a bracket that is dropped).
    pub(crate) fn encode(&self, ip: &Ip, out: &mut impl Write) -> io::Result<()> {
        let marker: &[u8] = match (ip, &self.brackets) {
            (Ip::Data(_), _) => &[],
            (_, Brackets::Drop) => return Ok(()),
            (Ip::Open(_), Brackets::Markers { open, .. }) => open,
            (Ip::Close(_), Brackets::Markers { close, .. }) => close,
        };
        let body = ip.payload().as_bytes();
        let length = marker.len() + body.len();
        match self.framing {
            Framing::Lines => {}
            Framing::Length => {
                let length = u32::try_from(length).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "an IP of 4 GiB or more does not fit a length-prefixed frame",
                    )
                })?;
                out.write_all(&length.to_be_bytes())?;
            }
            Framing::Netstring => write!(out, "{length}:")?,
        }
        out.write_all(marker)?;
        out.write_all(body)?;
        match self.framing {
            Framing::Lines => out.write_all(b"\n"),
            Framing::Length => Ok(()),
            Framing::Netstring => out.write_all(b","),
        }
    }

    /// Reads the next frame as an IP; `None` at the end of the output.
    pub(crate) fn decode(&self, input: &mut impl BufRead) -> Result<Option<Ip>, FrameError> {
        let body = match self.framing {
            Framing::Lines => self.read_line(input)?,
            Framing::Length => self.read_length_prefixed(input)?,
            Framing::Netstring => self.read_netstring(input)?,
        };
        Ok(body.map(|body| self.classify(body)))
    }

    fn read_line(&self, input: &mut impl BufRead) -> Result<Option<Vec<u8>>, FrameError> {
        let mut line = Vec::new();
        // Room for the longest line and its `\r\n`.
        let limit = self.max_frame.saturating_add(2) as u64;
        input.by_ref().take(limit).read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.len() > self.max_frame {
            return Err(FrameError::TooLong {
                limit: self.max_frame,
            });
        }
        Ok(Some(line))
    }

    fn read_length_prefixed(
        &self,
        input: &mut impl BufRead,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let mut header = [0u8; 4];
        let got = read_up_to(input, &mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            return Err(FrameError::Truncated);
        }
        let length = u32::from_be_bytes(header) as usize;
        self.read_body(input, length).map(Some)
    }

    fn read_netstring(&self, input: &mut impl BufRead) -> Result<Option<Vec<u8>>, FrameError> {
        let mut digits = Vec::new();
        // Enough digits for any length up to the limit, and one more to catch longer ones.
        let most = self.max_frame.checked_ilog10().unwrap_or(0) as usize + 2;
        input
            .by_ref()
            .take(most as u64 + 1)
            .read_until(b':', &mut digits)?;
        if digits.is_empty() {
            return Ok(None);
        }
        if digits.last() != Some(&b':') {
            return Err(if digits.len() > most {
                FrameError::Malformed("a length with too many digits")
            } else if digits.iter().all(u8::is_ascii_digit) {
                FrameError::Truncated
            } else {
                FrameError::Malformed("expected digits then ':'")
            });
        }
        digits.pop();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::Malformed("expected digits then ':'"));
        }
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(FrameError::Malformed("a length with a leading zero"));
        }
        let length = std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .ok_or(FrameError::TooLong {
                limit: self.max_frame,
            })?;
        let body = self.read_body(input, length)?;
        let mut comma = [0u8; 1];
        if read_up_to(input, &mut comma)? == 0 {
            return Err(FrameError::Truncated);
        }
        if comma[0] != b',' {
            return Err(FrameError::Malformed("expected ',' after the bytes"));
        }
        Ok(Some(body))
    }

    /// Reads `length` bytes, refusing lengths over the limit before reading any. Memory grows
    /// with the bytes that come, not with the length announced.
    fn read_body(&self, input: &mut impl BufRead, length: usize) -> Result<Vec<u8>, FrameError> {
        if length > self.max_frame {
            return Err(FrameError::TooLong {
                limit: self.max_frame,
            });
        }
        let mut body = Vec::with_capacity(length.min(64 * 1024));
        input.by_ref().take(length as u64).read_to_end(&mut body)?;
        if body.len() < length {
            return Err(FrameError::Truncated);
        }
        Ok(body)
    }

    /// A frame's bytes as a data IP or, by its marker, a bracket.
    fn classify(&self, body: Vec<u8>) -> Ip {
        if let Brackets::Markers { open, close } = &self.brackets {
            if let Some(label) = body.strip_prefix(open.as_slice()) {
                return Ip::Open(Payload::from(label));
            }
            if let Some(label) = body.strip_prefix(close.as_slice()) {
                return Ip::Close(Payload::from(label));
            }
        }
        Ip::Data(Payload::from(body))
    }
}

/// Fills `buf` as far as the input goes; how many bytes were read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(framing: Framing) -> Wire {
        Wire {
            framing,
            brackets: Brackets::Drop,
            max_frame: 16,
        }
    }

    fn with_markers(framing: Framing) -> Wire {
        Wire {
            brackets: Brackets::Markers {
                open: b"<<".to_vec(),
                close: b">>".to_vec(),
            },
            ..wire(framing)
        }
    }

    fn encoded(wire: &Wire, ips: &[Ip]) -> Vec<u8> {
        let mut out = Vec::new();
        for ip in ips {
            wire.encode(ip, &mut out).expect("encodes");
        }
        out
    }

    fn decoded(wire: &Wire, bytes: &[u8]) -> Result<Vec<Ip>, FrameError> {
        let mut input = bytes;
        let mut ips = Vec::new();
        while let Some(ip) = wire.decode(&mut input)? {
            ips.push(ip);
        }
        Ok(ips)
    }

    #[test]
    fn each_framing_writes_the_documented_bytes() {
        let ips = [Ip::data("hello"), Ip::data("")];
        assert_eq!(encoded(&wire(Framing::Lines), &ips), b"hello\n\n");
        assert_eq!(
            encoded(&wire(Framing::Length), &ips),
            b"\0\0\0\x05hello\0\0\0\0"
        );
        assert_eq!(encoded(&wire(Framing::Netstring), &ips), b"5:hello,0:,");
    }

    #[test]
    fn each_framing_reads_back_what_it_writes() {
        let ips = vec![
            Ip::data("one"),
            Ip::data(""),
            Ip::data(&b"\0\x01 bytes"[..]),
            Ip::open("g"),
            Ip::data("two"),
            Ip::close("g"),
        ];
        for framing in [Framing::Length, Framing::Netstring] {
            let wire = with_markers(framing);
            assert_eq!(decoded(&wire, &encoded(&wire, &ips)).unwrap(), ips);
        }
        let wire = with_markers(Framing::Lines);
        assert_eq!(
            decoded(&wire, b"one\r\ntwo\n<<g\n>>g\nlast").unwrap(),
            vec![
                Ip::data("one"),
                Ip::data("two"),
                Ip::open("g"),
                Ip::close("g"),
                Ip::data("last")
            ]
        );
    }

    #[test]
    fn dropped_brackets_are_not_written() {
        let wire = wire(Framing::Lines);
        assert!(!wire.carries(&Ip::open("g")));
        assert!(wire.carries(&Ip::data("x")));
        assert_eq!(encoded(&wire, &[Ip::open("g"), Ip::close("g")]), b"");
        assert_eq!(decoded(&wire, b"<<g\n").unwrap(), vec![Ip::data("<<g")]);
    }

    #[test]
    fn frames_over_the_limit_are_refused_before_they_are_read() {
        let long = [b'x'; 17];
        let mut line = long.to_vec();
        line.push(b'\n');
        assert!(matches!(
            decoded(&wire(Framing::Lines), &line),
            Err(FrameError::TooLong { limit: 16 })
        ));
        let exactly = [b'x'; 16];
        assert_eq!(
            decoded(&wire(Framing::Lines), &exactly).unwrap(),
            vec![Ip::data(&exactly[..])]
        );
        let mut crlf = exactly.to_vec();
        crlf.extend_from_slice(b"\r\n");
        assert_eq!(
            decoded(&wire(Framing::Lines), &crlf).unwrap(),
            vec![Ip::data(&exactly[..])]
        );
        assert!(matches!(
            decoded(&wire(Framing::Length), b"\xff\xff\xff\xff"),
            Err(FrameError::TooLong { .. })
        ));
        assert!(matches!(
            decoded(&wire(Framing::Netstring), b"99999999999999999999999:"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decoded(&wire(Framing::Netstring), b"17:"),
            Err(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn broken_frames_are_errors() {
        for (framing, bytes) in [
            (Framing::Length, &b"\0\0"[..]),
            (Framing::Length, b"\0\0\0\x05abc"),
            (Framing::Netstring, b"5:abc"),
            (Framing::Netstring, b"3:abc"),
            (Framing::Netstring, b"12"),
        ] {
            assert!(
                matches!(decoded(&wire(framing), bytes), Err(FrameError::Truncated)),
                "{framing:?} {bytes:?}"
            );
        }
        for bytes in [&b"x:abc,"[..], b":abc,", b"03:abc,", b"3:abc;", b"3 :abc,"] {
            assert!(
                matches!(
                    decoded(&wire(Framing::Netstring), bytes),
                    Err(FrameError::Malformed(_))
                ),
                "{bytes:?}"
            );
        }
    }
}

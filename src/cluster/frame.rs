//! The messages of a remote edge, as bytes on NATS.
//!
//! A remote edge has two subjects: the sender publishes [`Message::Frames`] (and the other
//! sender messages) on its data subject, the receiver publishes [`Message::Credit`] on its
//! credit subject. Every number is little-endian; an IP is a tag byte, its payload's length as
//! an unsigned LEB128 varint, and the payload, so an 8-byte IP costs 10 bytes. A frame's header
//! is its kind, the sender's life, the number of its first IP and how many IPs it holds.
//!
//! Sequence numbers count IPs from 0 over the sender's life; a frame names the life (a
//! number the sender draws when it starts), so a receiver can tell a sender that started
//! again (its share redeployed after a crash) from one that lost IPs. A frame names the number of its
//! first IP, so the receiver sees at once when one went missing; credit names the number up to
//! which (exclusive) the sender may send, so a repeated or late credit message changes nothing.

use bytes::{BufMut, Bytes, BytesMut};

use crate::ip::{Ip, Payload};

const FRAMES: u8 = 1;
const CREDIT: u8 = 2;
const END: u8 = 3;
const ABORT: u8 = 4;
const ASK: u8 = 5;

/// Bytes before a frame's first IP.
const FRAME_HEADER: usize = 1 + 8 + 8 + 4;

/// Where a frame's header holds its count of IPs.
const COUNT_AT: usize = 17;

const TAG_DATA: u8 = 0;
const TAG_OPEN: u8 = 1;
const TAG_CLOSE: u8 = 2;

/// One message of a remote edge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// IPs, in order; the first has sequence number `first`.
    Frames {
        /// Which life of the sender sent it (a sender that starts again numbers from 0).
        life: u64,
        /// The sequence number of the first IP.
        first: u64,
        /// The IPs.
        ips: Vec<Ip>,
    },
    /// From the receiver: the sender may send IPs numbered below `until`. `closed` says the
    /// receiver takes nothing more (its downstream closed, or it saw the end).
    Credit {
        /// The first sequence number the sender may not send yet.
        until: u64,
        /// Whether the receiver has ended.
        closed: bool,
    },
    /// From the sender: the stream ended after `total` IPs.
    End {
        /// Which life of the sender.
        life: u64,
        /// How many IPs the edge carried.
        total: u64,
    },
    /// From the sender: it failed, and the edge ends with an error.
    Abort {
        /// Why.
        reason: String,
    },
    /// From the sender: please publish your credit again (the sender started after the
    /// receiver, or a credit message was lost).
    Ask,
}

/// Why bytes are not a message of a remote edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed remote-edge message: {0}")]
pub(crate) struct Malformed(&'static str);

/// Builds a [`Message::Frames`] message IP by IP.
pub(crate) struct FrameWriter {
    buffer: BytesMut,
    life: u64,
    first: u64,
    count: u64,
}

impl FrameWriter {
    /// An empty frame of the sender's life `life` whose first IP will be number `first`.
    pub(crate) fn new(life: u64, first: u64) -> FrameWriter {
        FrameWriter::with_capacity(life, first, 4096)
    }

    /// As [`FrameWriter::new`], with room for `capacity` bytes.
    fn with_capacity(life: u64, first: u64, capacity: usize) -> FrameWriter {
        let mut buffer = BytesMut::with_capacity(capacity.max(FRAME_HEADER));
        buffer.put_u8(FRAMES);
        buffer.put_u64_le(life);
        buffer.put_u64_le(first);
        // The count, written when the frame is taken.
        buffer.put_u32_le(0);
        FrameWriter {
            buffer,
            life,
            first,
            count: 0,
        }
    }

    /// Appends `ip`.
    pub(crate) fn push(&mut self, ip: &Ip) {
        let (tag, payload) = match ip {
            Ip::Data(p) => (TAG_DATA, p),
            Ip::Open(p) => (TAG_OPEN, p),
            Ip::Close(p) => (TAG_CLOSE, p),
        };
        let bytes = payload.as_bytes();
        self.buffer.put_u8(tag);
        put_varint(&mut self.buffer, bytes.len() as u64);
        self.buffer.put_slice(bytes);
        self.count += 1;
    }

    /// The life of the sender writing it.
    pub(crate) fn life(&self) -> u64 {
        self.life
    }

    /// The sequence number of the frame's first IP.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// How many IPs the frame holds.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The frame's size in bytes so far.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// The finished frame; the writer starts a new one after it, with room for as much.
    pub(crate) fn take(&mut self) -> Bytes {
        let next = FrameWriter::with_capacity(self.life, self.first + self.count, self.len());
        let mut taken = std::mem::replace(self, next);
        // Frames are cut long before 2^32 IPs (see the edge's batch and frame sizes).
        let count = u32::try_from(taken.count).unwrap_or(u32::MAX);
        taken.buffer[COUNT_AT..FRAME_HEADER].copy_from_slice(&count.to_le_bytes());
        taken.buffer.freeze()
    }
}

impl Message {
    /// The message as bytes.
    pub(crate) fn encode(&self) -> Bytes {
        let mut buffer = BytesMut::with_capacity(16);
        match self {
            Message::Frames { life, first, ips } => {
                let mut writer = FrameWriter::new(*life, *first);
                for ip in ips {
                    writer.push(ip);
                }
                return writer.take();
            }
            Message::Credit { until, closed } => {
                buffer.put_u8(CREDIT);
                buffer.put_u64_le(*until);
                buffer.put_u8(u8::from(*closed));
            }
            Message::End { life, total } => {
                buffer.put_u8(END);
                buffer.put_u64_le(*life);
                buffer.put_u64_le(*total);
            }
            Message::Abort { reason } => {
                buffer.put_u8(ABORT);
                buffer.put_slice(reason.as_bytes());
            }
            Message::Ask => buffer.put_u8(ASK),
        }
        buffer.freeze()
    }

    /// Reads a message. Large payloads share `bytes` rather than being copied.
    ///
    /// # Errors
    ///
    /// [`Malformed`] for anything a flowd sender or receiver does not write.
    pub(crate) fn decode(bytes: &Bytes) -> Result<Message, Malformed> {
        let (&kind, rest) = bytes.split_first().ok_or(Malformed("empty"))?;
        match kind {
            FRAMES => {
                if bytes.len() < FRAME_HEADER {
                    return Err(Malformed("frame header too short"));
                }
                let life = read_u64(&bytes[1..])?;
                let first = read_u64(&bytes[9..])?;
                let mut count = [0; 4];
                count.copy_from_slice(&bytes[COUNT_AT..FRAME_HEADER]);
                // Every IP takes two bytes at least: a count is never trusted beyond that.
                let count = u32::from_le_bytes(count) as usize;
                let mut ips = Vec::with_capacity(count.min((bytes.len() - FRAME_HEADER) / 2));
                let mut at = FRAME_HEADER;
                while at < bytes.len() {
                    let tag = bytes[at];
                    let (len, used) = read_varint(&bytes[at + 1..])?;
                    let start = at + 1 + used;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|len| start.checked_add(len))
                        .filter(|&end| end <= bytes.len())
                        .ok_or(Malformed("an IP runs past the end of its frame"))?;
                    let payload = if end - start <= Payload::INLINE_CAPACITY {
                        Payload::copy_from_slice(&bytes[start..end])
                    } else {
                        Payload::from(bytes.slice(start..end))
                    };
                    ips.push(match tag {
                        TAG_DATA => Ip::Data(payload),
                        TAG_OPEN => Ip::Open(payload),
                        TAG_CLOSE => Ip::Close(payload),
                        _ => return Err(Malformed("unknown IP tag")),
                    });
                    at = end;
                }
                Ok(Message::Frames { life, first, ips })
            }
            CREDIT => {
                let until = read_u64(rest)?;
                let closed = *rest.get(8).ok_or(Malformed("credit too short"))? != 0;
                Ok(Message::Credit { until, closed })
            }
            END => Ok(Message::End {
                life: read_u64(rest)?,
                total: read_u64(rest.get(8..).unwrap_or_default())?,
            }),
            ABORT => Ok(Message::Abort {
                reason: String::from_utf8_lossy(rest).into_owned(),
            }),
            ASK => Ok(Message::Ask),
            _ => Err(Malformed("unknown message kind")),
        }
    }
}

fn read_u64(bytes: &[u8]) -> Result<u64, Malformed> {
    let head = bytes.get(..8).ok_or(Malformed("too short"))?;
    let mut number = [0; 8];
    number.copy_from_slice(head);
    Ok(u64::from_le_bytes(number))
}

fn put_varint(buffer: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buffer.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

/// A varint and how many bytes it took.
fn read_varint(bytes: &[u8]) -> Result<(u64, usize), Malformed> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(Malformed("bad length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message) {
        assert_eq!(Message::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn every_message_reads_back_as_written() {
        round_trip(Message::Frames {
            life: 3,
            first: 7,
            ips: vec![
                Ip::open("group"),
                Ip::data("a"),
                Ip::data(vec![9u8; 300]),
                Ip::data(""),
                Ip::close(""),
            ],
        });
        round_trip(Message::Frames {
            life: u64::MAX,
            first: u64::MAX - 1,
            ips: vec![],
        });
        round_trip(Message::Credit {
            until: 1 << 40,
            closed: true,
        });
        round_trip(Message::End { life: 1, total: 12 });
        round_trip(Message::Abort {
            reason: "upstream failed".into(),
        });
        round_trip(Message::Ask);
    }

    #[test]
    fn a_writer_numbers_its_frames_on() {
        let mut writer = FrameWriter::new(5, 10);
        writer.push(&Ip::data("x"));
        writer.push(&Ip::data("y"));
        assert_eq!(writer.count(), 2);
        let first = Message::decode(&writer.take());
        writer.push(&Ip::data("z"));
        let second = Message::decode(&writer.take());
        assert!(
            matches!(first, Ok(Message::Frames { life: 5, first: 10, ref ips }) if ips.len() == 2)
        );
        assert!(
            matches!(second, Ok(Message::Frames { life: 5, first: 12, ref ips }) if ips.len() == 1)
        );
    }

    #[test]
    fn garbage_is_refused_not_trusted() {
        let frame = |body: &[u8]| {
            let mut bytes = vec![FRAMES];
            bytes.extend([0; 16]);
            // A count no frame this short can hold.
            bytes.extend(u32::MAX.to_le_bytes());
            bytes.extend(body);
            bytes
        };
        for bytes in [
            b"".to_vec(),
            vec![9],
            vec![FRAMES, 0, 0],
            vec![FRAMES, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![CREDIT, 1, 2, 3, 4, 5, 6, 7, 8],
            frame(&[TAG_DATA, 200]),
            frame(&[7, 0]),
            frame(&[TAG_DATA, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            assert!(
                Message::decode(&Bytes::from(bytes.clone())).is_err(),
                "{bytes:?}"
            );
        }
        // A count beyond what the frame holds is only a hint.
        let one = frame(&[TAG_DATA, 1, b'x']);
        assert_eq!(
            Message::decode(&Bytes::from(one)),
            Ok(Message::Frames {
                life: 0,
                first: 0,
                ips: vec![Ip::data("x")]
            })
        );
    }
}

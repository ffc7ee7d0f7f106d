//! The host bindings generated from `wit/`, and the mapping between their IPs and ours.

use crate::engine::{InPort, OutPort, ProcessError};
use crate::ip::{Ip, Payload};

/// A guest's handle on an inport.
pub struct GuestInport {
    pub(crate) port: InPort,
}

/// A guest's handle on an outport.
pub struct GuestOutport {
    pub(crate) port: OutPort,
}

wasmtime::component::bindgen!({
    path: "wit",
    world: "flowd-component",
    with: {
        "flowd:component/ports.inport": GuestInport,
        "flowd:component/ports.outport": GuestOutport,
    },
    // The calls that may wait are async: they hand the wait to the driver (see `drive`).
    imports: {
        "flowd:component/ports.[method]inport.recv": async | trappable,
        "flowd:component/ports.[method]inport.recv-batch": async | trappable,
        "flowd:component/ports.[method]inport.recv-packed": async | trappable,
        "flowd:component/ports.[method]outport.send": async | trappable,
        "flowd:component/ports.[method]outport.send-batch": async | trappable,
        "flowd:component/ports.[method]outport.send-packed": async | trappable,
        "flowd:component/ports.recv-any": async | trappable,
        "flowd:component/ports.read-config": async | trappable,
        "flowd:component/ports.flush": async | trappable,
        "flowd:component/runtime.sleep": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub(crate) use self::flowd::component::types::{
    Ip as WitIp, LogLevel, PackedIps, PortError, Received as WitReceived,
};

impl From<Ip> for WitIp {
    fn from(ip: Ip) -> WitIp {
        match ip {
            Ip::Data(p) => WitIp::Data(p.to_vec()),
            Ip::Open(p) => WitIp::Open(p.to_vec()),
            Ip::Close(p) => WitIp::Close(p.to_vec()),
        }
    }
}

impl From<WitIp> for Ip {
    fn from(ip: WitIp) -> Ip {
        match ip {
            WitIp::Data(bytes) => Ip::Data(Payload::from(bytes)),
            WitIp::Open(bytes) => Ip::Open(Payload::from(bytes)),
            WitIp::Close(bytes) => Ip::Close(Payload::from(bytes)),
        }
    }
}

impl From<ProcessError> for PortError {
    fn from(error: ProcessError) -> PortError {
        match error {
            ProcessError::Stopped => PortError::Stopped,
            ProcessError::Closed { .. } => PortError::Closed,
            ProcessError::Failed(message) => PortError::UnknownPort(message),
        }
    }
}

/// Packs IPs into the flat encoding of `packed-ips`.
pub(crate) fn pack(ips: Vec<Ip>) -> PackedIps {
    let mut packed = PackedIps {
        kinds: Vec::with_capacity(ips.len()),
        ends: Vec::with_capacity(ips.len()),
        data: Vec::new(),
    };
    for ip in ips {
        let (kind, payload) = match &ip {
            Ip::Data(p) => (0, p),
            Ip::Open(p) => (1, p),
            Ip::Close(p) => (2, p),
        };
        packed.kinds.push(kind);
        packed.data.extend_from_slice(payload);
        // Batches are bounded far below 4 GiB by the guest's memory limit.
        packed
            .ends
            .push(u32::try_from(packed.data.len()).unwrap_or(u32::MAX));
    }
    packed
}

/// Unpacks the flat encoding, checking it (it comes from an untrusted guest).
pub(crate) fn unpack(packed: PackedIps) -> Result<Vec<Ip>, PortError> {
    let invalid = |why: String| PortError::InvalidBatch(why);
    if packed.kinds.len() != packed.ends.len() {
        return Err(invalid(format!(
            "{} kinds but {} ends",
            packed.kinds.len(),
            packed.ends.len()
        )));
    }
    let bytes = bytes::Bytes::from(packed.data);
    let mut ips = Vec::with_capacity(packed.kinds.len());
    let mut start = 0usize;
    for (i, (kind, end)) in packed.kinds.iter().zip(&packed.ends).enumerate() {
        let end = *end as usize;
        if end < start || end > bytes.len() {
            return Err(invalid(format!(
                "end {end} of IP {i} is out of order or beyond the {} data bytes",
                bytes.len()
            )));
        }
        let payload = Payload::from(bytes.slice(start..end));
        ips.push(match kind {
            0 => Ip::Data(payload),
            1 => Ip::Open(payload),
            2 => Ip::Close(payload),
            other => return Err(invalid(format!("IP {i} has unknown kind {other}"))),
        });
        start = end;
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        let ips = vec![
            Ip::open("g"),
            Ip::data(""),
            Ip::data("x".repeat(40)),
            Ip::close("g"),
        ];
        assert_eq!(unpack(pack(ips.clone())).unwrap(), ips);
    }

    #[test]
    fn malformed_batches_are_refused() {
        let bad = |kinds: Vec<u8>, ends: Vec<u32>, data: &[u8]| {
            unpack(PackedIps {
                kinds,
                ends,
                data: data.to_vec(),
            })
            .unwrap_err()
        };
        assert!(matches!(
            bad(vec![0], vec![], b""),
            PortError::InvalidBatch(_)
        ));
        assert!(matches!(
            bad(vec![0], vec![5], b"abc"),
            PortError::InvalidBatch(_)
        ));
        assert!(matches!(
            bad(vec![0, 0], vec![2, 1], b"abc"),
            PortError::InvalidBatch(_)
        ));
        assert!(matches!(
            bad(vec![7], vec![1], b"a"),
            PortError::InvalidBatch(_)
        ));
    }
}

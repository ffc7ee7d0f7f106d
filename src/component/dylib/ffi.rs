//! The C ABI of `guest-sdk/include/flowd.h`, version 1: its structures, and the host functions
//! a library calls while it runs a process.
//!
//! Every host function catches panics (unwinding into C is undefined behaviour) and checks its
//! arguments: a null pointer or an unknown port handle is `FLOWD_ERROR`, never a crash of the
//! host's own making.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::engine::{InPort, OutPort, ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// The ABI version this host speaks (`FLOWD_ABI_VERSION`).
pub(crate) const ABI_VERSION: u32 = 1;

/// The entry symbol of version 1.
pub(crate) const ENTRY: &[u8] = b"flowd_component_v1";

pub(crate) const OK: i32 = 0;
pub(crate) const END: i32 = 1;
pub(crate) const STOPPED: i32 = 2;
pub(crate) const ERROR: i32 = 3;

const KIND_DATA: u32 = 0;
const KIND_OPEN: u32 = 1;
const KIND_CLOSE: u32 = 2;

/// `flowd_process *`: the library only hands it back.
pub(crate) type ProcessPtr = *mut std::ffi::c_void;

/// `flowd_ip`.
#[repr(C)]
pub(crate) struct RawIp {
    pub(crate) kind: u32,
    pub(crate) data: *const u8,
    pub(crate) len: usize,
}

/// `flowd_host_api`.
#[repr(C)]
pub(crate) struct HostApi {
    pub(crate) abi_version: u32,
    pub(crate) inport: extern "C" fn(ProcessPtr, *const c_char, i32) -> i32,
    pub(crate) outport: extern "C" fn(ProcessPtr, *const c_char, i32) -> i32,
    pub(crate) recv: extern "C" fn(ProcessPtr, i32, *mut RawIp) -> i32,
    pub(crate) send: extern "C" fn(ProcessPtr, i32, *const RawIp) -> i32,
    pub(crate) output: extern "C" fn(ProcessPtr, *const c_char, usize),
    pub(crate) fail: extern "C" fn(ProcessPtr, *const c_char, usize),
    pub(crate) is_stopping: extern "C" fn(ProcessPtr) -> i32,
}

/// `flowd_port`.
#[repr(C)]
pub(crate) struct RawPort {
    pub(crate) name: *const c_char,
    pub(crate) datatype: *const c_char,
    pub(crate) description: *const c_char,
    pub(crate) array: u32,
    pub(crate) required: u32,
}

/// `flowd_component`.
#[repr(C)]
pub(crate) struct RawComponent {
    pub(crate) abi_version: u32,
    pub(crate) name: *const c_char,
    pub(crate) description: *const c_char,
    pub(crate) icon: *const c_char,
    pub(crate) inports: *const RawPort,
    pub(crate) inport_count: usize,
    pub(crate) outports: *const RawPort,
    pub(crate) outport_count: usize,
    pub(crate) run: Option<extern "C" fn(*const HostApi, ProcessPtr) -> i32>,
}

/// The table handed to every library.
pub(crate) static HOST_API: HostApi = HostApi {
    abi_version: ABI_VERSION,
    inport: host_inport,
    outport: host_outport,
    recv: host_recv,
    send: host_send,
    output: host_output,
    fail: host_fail,
    is_stopping: host_is_stopping,
};

/// `flowd_process`: the host's side of one running process.
pub(crate) struct HostProcess<'a> {
    ctx: &'a mut ProcessContext,
    inports: Vec<InPort>,
    outports: Vec<OutPort>,
    /// The last IP received: what the library's `flowd_ip` points into.
    last: Option<Ip>,
    /// The message given with `fail`.
    pub(crate) failure: Option<String>,
    /// A port operation ended because the network stops.
    pub(crate) stopped: bool,
}

impl<'a> HostProcess<'a> {
    pub(crate) fn new(ctx: &'a mut ProcessContext) -> Self {
        HostProcess {
            ctx,
            inports: Vec::new(),
            outports: Vec::new(),
            last: None,
            failure: None,
            stopped: false,
        }
    }

    fn status(&mut self, error: &ProcessError) -> i32 {
        match error {
            ProcessError::Stopped => {
                self.stopped = true;
                STOPPED
            }
            ProcessError::Closed { .. } => END,
            ProcessError::Failed(message) => {
                self.failure.get_or_insert_with(|| message.clone());
                ERROR
            }
        }
    }
}

/// Reads a C string the library passed; `None` if null or not UTF-8.
///
/// # Safety
///
/// `text` is null or points to a NUL-terminated string.
pub(crate) unsafe fn c_str<'s>(text: *const c_char) -> Option<&'s str> {
    if text.is_null() {
        return None;
    }
    // SAFETY: the caller promises a NUL-terminated string.
    unsafe { CStr::from_ptr(text) }.to_str().ok()
}

/// Runs `body` on the process behind `process`, turning a null pointer or a panic into `or`.
fn with_process<T>(process: ProcessPtr, or: T, body: impl FnOnce(&mut HostProcess<'_>) -> T) -> T {
    if process.is_null() {
        return or;
    }
    // SAFETY: the host created this pointer from a live `HostProcess` for the duration of
    // `run`, on this thread; the library only hands it back.
    let process = unsafe { &mut *process.cast::<HostProcess<'_>>() };
    catch_unwind(AssertUnwindSafe(|| body(process))).unwrap_or(or)
}

fn port_handle(process: ProcessPtr, name: *const c_char, index: i32, inbound: bool) -> i32 {
    with_process(process, -1, |p| {
        // SAFETY: the ABI requires a NUL-terminated name.
        let Some(name) = (unsafe { c_str(name) }) else {
            return -1;
        };
        let index = usize::try_from(index).ok();
        if inbound {
            let port = match index {
                Some(i) => p.ctx.inport_at(name, i),
                None => p.ctx.inport(name),
            };
            port.ok().map_or(-1, |port| {
                p.inports.push(port);
                (p.inports.len() - 1) as i32
            })
        } else {
            let port = match index {
                Some(i) => p.ctx.outport_at(name, i),
                None => p.ctx.outport(name),
            };
            port.ok().map_or(-1, |port| {
                p.outports.push(port);
                (p.outports.len() - 1) as i32
            })
        }
    })
}

extern "C" fn host_inport(process: ProcessPtr, name: *const c_char, index: i32) -> i32 {
    port_handle(process, name, index, true)
}

extern "C" fn host_outport(process: ProcessPtr, name: *const c_char, index: i32) -> i32 {
    port_handle(process, name, index, false)
}

extern "C" fn host_recv(process: ProcessPtr, port: i32, out: *mut RawIp) -> i32 {
    with_process(process, ERROR, |p| {
        let Some(&port) = usize::try_from(port).ok().and_then(|i| p.inports.get(i)) else {
            return ERROR;
        };
        if out.is_null() {
            return ERROR;
        }
        match p.ctx.recv(port) {
            Ok(Some(ip)) => {
                let kind = match &ip {
                    Ip::Data(_) => KIND_DATA,
                    Ip::Open(_) => KIND_OPEN,
                    Ip::Close(_) => KIND_CLOSE,
                };
                let ip = p.last.insert(ip);
                let bytes = ip.payload().as_bytes();
                // SAFETY: `out` is non-null and points to a `flowd_ip` the library owns.
                unsafe {
                    *out = RawIp {
                        kind,
                        data: bytes.as_ptr(),
                        len: bytes.len(),
                    };
                }
                OK
            }
            Ok(None) => END,
            Err(error) => p.status(&error),
        }
    })
}

extern "C" fn host_send(process: ProcessPtr, port: i32, ip: *const RawIp) -> i32 {
    with_process(process, ERROR, |p| {
        let Some(&port) = usize::try_from(port).ok().and_then(|i| p.outports.get(i)) else {
            return ERROR;
        };
        if ip.is_null() {
            return ERROR;
        }
        // SAFETY: `ip` is non-null and points to a `flowd_ip` the library owns.
        let raw = unsafe { &*ip };
        let bytes = if raw.len == 0 {
            &[][..]
        } else if raw.data.is_null() {
            return ERROR;
        } else {
            // SAFETY: the ABI requires `data` to point to `len` readable bytes.
            unsafe { std::slice::from_raw_parts(raw.data, raw.len) }
        };
        let payload = Payload::copy_from_slice(bytes);
        let ip = match raw.kind {
            KIND_DATA => Ip::Data(payload),
            KIND_OPEN => Ip::Open(payload),
            KIND_CLOSE => Ip::Close(payload),
            _ => return ERROR,
        };
        match p.ctx.send(port, ip) {
            Ok(()) => OK,
            Err(error) => p.status(&error),
        }
    })
}

/// The text of a (pointer, length) pair from the library, lossily decoded.
fn text(data: *const c_char, len: usize) -> Option<String> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the ABI requires `text` to point to `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    Some(String::from_utf8_lossy(bytes).into_owned())
}

extern "C" fn host_output(process: ProcessPtr, data: *const c_char, len: usize) {
    with_process(process, (), |p| {
        if let Some(line) = text(data, len) {
            p.ctx.output(line);
        }
    });
}

extern "C" fn host_fail(process: ProcessPtr, data: *const c_char, len: usize) {
    with_process(process, (), |p| p.failure = text(data, len));
}

extern "C" fn host_is_stopping(process: ProcessPtr) -> i32 {
    with_process(process, 1, |p| i32::from(p.ctx.is_stopping()))
}

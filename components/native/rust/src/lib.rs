//! `native/Reverse`: reverses the bytes of every data IP; brackets pass unchanged.
//!
//! A native shared-object component in Rust, built as a `cdylib` against the C ABI of
//! `guest-sdk/include/flowd.h` (version 1), whose types are mirrored here. It runs with flowd's
//! full rights: flowd loads it only with `--allow-native`.

use std::ffi::{c_char, c_void};

const ABI_VERSION: u32 = 1;
const OK: i32 = 0;
const ERROR: i32 = 3;
const DATA: u32 = 0;

#[repr(C)]
struct Ip {
    kind: u32,
    data: *const u8,
    len: usize,
}

type Process = *mut c_void;

#[repr(C)]
struct HostApi {
    abi_version: u32,
    inport: extern "C" fn(Process, *const c_char, i32) -> i32,
    outport: extern "C" fn(Process, *const c_char, i32) -> i32,
    recv: extern "C" fn(Process, i32, *mut Ip) -> i32,
    send: extern "C" fn(Process, i32, *const Ip) -> i32,
    output: extern "C" fn(Process, *const c_char, usize),
    fail: extern "C" fn(Process, *const c_char, usize),
    is_stopping: extern "C" fn(Process) -> i32,
}

#[repr(C)]
struct Port {
    name: *const c_char,
    datatype: *const c_char,
    description: *const c_char,
    array: u32,
    required: u32,
}

#[repr(C)]
struct Component {
    abi_version: u32,
    name: *const c_char,
    description: *const c_char,
    icon: *const c_char,
    inports: *const Port,
    inport_count: usize,
    outports: *const Port,
    outport_count: usize,
    run: extern "C" fn(*const HostApi, Process) -> i32,
}

/// Static data behind raw pointers: only read, so sharing it between threads is sound.
struct Shared<T>(T);
// SAFETY: the wrapped values are never written after compilation.
unsafe impl<T> Sync for Shared<T> {}

static INPORTS: Shared<[Port; 1]> = Shared([Port {
    name: c"in".as_ptr(),
    datatype: c"all".as_ptr(),
    description: c"bytes to reverse".as_ptr(),
    array: 0,
    required: 1,
}]);

static OUTPORTS: Shared<[Port; 1]> = Shared([Port {
    name: c"out".as_ptr(),
    datatype: c"all".as_ptr(),
    description: c"the bytes reversed".as_ptr(),
    array: 0,
    required: 0,
}]);

static COMPONENT: Shared<Component> = Shared(Component {
    abi_version: ABI_VERSION,
    name: c"native/Reverse".as_ptr(),
    description: c"Reverses the bytes of each packet (a native Rust component)".as_ptr(),
    icon: c"exchange".as_ptr(),
    inports: INPORTS.0.as_ptr(),
    inport_count: 1,
    outports: OUTPORTS.0.as_ptr(),
    outport_count: 1,
    run,
});

/// The entry point flowd looks for.
#[unsafe(no_mangle)]
pub extern "C" fn flowd_component_v1() -> *const c_void {
    (&raw const COMPONENT.0).cast()
}

extern "C" fn run(api: *const HostApi, process: Process) -> i32 {
    // SAFETY: flowd passes a valid table for the duration of this call.
    let api = unsafe { &*api };
    let input = (api.inport)(process, c"in".as_ptr(), -1);
    let output = (api.outport)(process, c"out".as_ptr(), -1);
    if input < 0 || output < 0 {
        let message = "native/Reverse: ports 'in' and 'out' are missing";
        (api.fail)(process, message.as_ptr().cast(), message.len());
        return 1;
    }
    let mut ip = Ip {
        kind: DATA,
        data: std::ptr::null(),
        len: 0,
    };
    let mut reversed = Vec::new();
    loop {
        let status = (api.recv)(process, input, &mut ip);
        if status != OK {
            return i32::from(status == ERROR);
        }
        let status = if ip.kind == DATA && ip.len > 0 {
            // SAFETY: flowd guarantees `len` readable bytes until the next recv.
            let bytes = unsafe { std::slice::from_raw_parts(ip.data, ip.len) };
            reversed.clear();
            reversed.extend(bytes.iter().rev());
            let out = Ip {
                kind: DATA,
                data: reversed.as_ptr(),
                len: reversed.len(),
            };
            (api.send)(process, output, &out)
        } else {
            (api.send)(process, output, &ip)
        };
        if status != OK {
            return i32::from(status == ERROR);
        }
    }
}

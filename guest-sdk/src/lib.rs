//! # flowd-guest: write flowd components in Rust
//!
//! A flowd component is a WebAssembly component that runs as a process in a flowd network,
//! sandboxed. It implements the WIT world `flowd:component/flowd-component` (the repository's
//! `wit/component.wit`): `describe` says what the component is, `run` receives and sends
//! information packets (IPs) until its inports end. This crate wraps that world in a small
//! Rust API: implement [`Component`], call [`export!`], build for `wasm32-wasip2`.
//!
//! ```no_run
//! use flowd_guest::{Component, Context, Port, Result, Spec};
//!
//! struct Upper;
//!
//! impl Component for Upper {
//!     fn describe() -> Spec {
//!         Spec::new("text/Uppercase", "Upper-cases text")
//!             .icon("font")
//!             .inport(Port::new("in", "string", "Text"))
//!             .outport(Port::new("out", "string", "Upper-cased text"))
//!     }
//!
//!     fn run(ctx: &mut Context) -> Result<()> {
//!         let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
//!         while let Some(ip) = input.recv()? {
//!             // Brackets pass through `map_data` unchanged.
//!             output.send(ip.map_data(|d| d.to_ascii_uppercase()))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! flowd_guest::export!(Upper);
//! ```
//!
//! The component crate has `crate-type = ["cdylib"]` and depends on `flowd-guest` only;
//! `cargo build --target wasm32-wasip2 --release` writes the component to
//! `target/wasm32-wasip2/release/<crate_name>.wasm`. The crate's `README.md` has the steps.
//!
//! ## The model
//!
//! * flowd calls [`Component::describe`] once, when it loads the component, and makes a fresh
//!   instance for every process of a graph that uses it, then calls [`Component::run`] once on
//!   the process's own thread. State lives in `run`'s local variables.
//! * [`Context`] opens ports ([`Context::inport`], [`Context::outport`], and for array ports
//!   [`Context::inport_at`], [`Context::outports`], ...), reads settings
//!   ([`Context::read_config`]), logs ([`Context::log_info`], [`info!`]), and sleeps.
//! * [`InPort::recv`] waits for the next [`Ip`] and returns `Ok(None)` at end of stream.
//!   [`OutPort::send`] waits while the connection is full (backpressure).
//! * IPs are [`Ip::Data`], or brackets [`Ip::Open`] / [`Ip::Close`] that delimit substreams.
//!   [`Ip::map_data`] transforms data and passes brackets through, which keeps a stream's
//!   structure; forward brackets unless the component's job is to change it.
//! * Settings are IIPs: [`Context::read_config`] reads the first data IP of a port and parses
//!   it with `FromStr`.
//!
//! ## Errors and ending
//!
//! [`Error`] covers port failures, bad settings and anything else (`From` conversions exist for
//! `String`, `&str`, I/O, UTF-8 and number-parsing errors). When the network stops, port calls
//! return [`Error::Stopped`]; when every connection of an outport has closed downstream, sending
//! returns [`Error::Closed`]. Both are [quiet](Error::is_quiet): propagate them with `?` and the
//! glue that [`export!`] generates reports a normal end to the host. `run` should return `Ok`
//! on stop or close, and that is what `?` achieves. Any other `Err` becomes a process error
//! with the error's message; a panic traps the instance (guests build with `panic = "abort"`).
//!
//! ## Going fast
//!
//! Each host call costs a few hundred nanoseconds. For many small IPs, receive and send in
//! batches: [`InPort::recv_batch`] / [`OutPort::send_batch`] move `Vec<Ip>`s, and
//! [`InPort::recv_packed`] / [`OutPort::send_packed`] move a [`Batch`], three flat buffers
//! that cross the boundary with three allocations and can be edited in place.
//!
//! ## The sandbox
//!
//! By default a component has no files, network or environment variables, 64 MiB of memory,
//! and must make a port or runtime call at least every few seconds. Standard output and error
//! are captured line by line as the process's output.
//!
//! ## Raw bindings
//!
//! The [`raw`] module holds the `wit-bindgen` bindings this crate is built on, for anything the
//! wrapper does not cover.

#![warn(missing_docs)]

extern crate self as flowd_guest;

mod batch;
mod context;
mod error;
#[cfg(feature = "http")]
pub mod http;
mod ip;
mod spec;

pub use batch::{Batch, Iter};
pub use context::{Context, InPort, Level, OutPort, Received, Recv, log};
pub use error::{Error, Result};
pub use ip::{Ip, IpKind, IpRef};
pub use spec::{Port, Spec};

/// The raw `wit-bindgen` bindings of the `flowd-component` world (generated from
/// `wit/component.wit`), for what the SDK does not wrap: `raw::flowd::component::ports`,
/// `raw::flowd::component::runtime` and `raw::flowd::component::types`.
#[allow(missing_docs)]
pub mod raw {
    wit_bindgen::generate!({
        path: "../wit",
        world: "flowd-component",
        additional_derives: [PartialEq, Eq, Hash],
        pub_export_macro: true,
        export_macro_name: "__flowd_export_raw",
        default_bindings_module: "flowd_guest::raw",
        runtime_path: "flowd_guest::__private::wit_bindgen::rt",
    });
}

/// A flowd component: what [`export!`] turns into a WebAssembly component.
///
/// Both functions are associated functions: each process gets a fresh instance and exactly one
/// call to `run`, so state lives in `run`'s locals.
pub trait Component {
    /// Describes the component: name (with a library prefix, as in `text/Uppercase`),
    /// description, icon and ports. Called once at load time; must not use ports.
    fn describe() -> Spec;

    /// Runs one process to completion, usually until its inports reach end of stream.
    ///
    /// Return `Ok(())` when done. A [quiet](Error::is_quiet) error (the network stopping, or an
    /// outport closed downstream) is reported as success too, so propagating port errors with
    /// `?` is correct. Any other error is reported as a process error with its message.
    fn run(ctx: &mut Context) -> Result<()>;
}

/// Exports a type implementing [`Component`] as the component's `describe` and `run`.
///
/// Call it once, at the root of the component crate (a `cdylib`):
///
/// ```no_run
/// use flowd_guest::{Component, Context, Result, Spec};
///
/// struct Nothing;
///
/// impl Component for Nothing {
///     fn describe() -> Spec {
///         Spec::new("demo/Nothing", "Does nothing")
///     }
///     fn run(_ctx: &mut Context) -> Result<()> {
///         Ok(())
///     }
/// }
///
/// flowd_guest::export!(Nothing);
/// ```
///
/// The generated `run` turns [quiet](Error::is_quiet) errors into success and any other
/// [`Error`] into the error string the host reports.
#[macro_export]
macro_rules! export {
    ($component:ty) => {
        #[doc(hidden)]
        type __FlowdGuestExport = $crate::__private::Adapter<$component>;
        $crate::raw::__flowd_export_raw!(__FlowdGuestExport with_types_in $crate::raw);
    };
}

/// Logs a formatted line at a [`Level`]: `log!(Level::Warn, "skipped {n} IPs")`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log($level, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at [`Level::Trace`].
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::Level::Trace, $($arg)+) };
}

/// Logs a formatted line at [`Level::Debug`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::Level::Debug, $($arg)+) };
}

/// Logs a formatted line at [`Level::Info`]: `info!("read {} bytes", n)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::Level::Info, $($arg)+) };
}

/// Logs a formatted line at [`Level::Warn`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::Level::Warn, $($arg)+) };
}

/// Logs a formatted line at [`Level::Error`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::Level::Error, $($arg)+) };
}

#[doc(hidden)]
pub mod __private {
    //! Support for the macros; not a public API.

    use std::marker::PhantomData;

    pub use wit_bindgen;

    use crate::raw::flowd::component::types::ComponentInfo;
    use crate::{Component, Context};

    /// Implements the generated `Guest` trait for any [`Component`].
    pub struct Adapter<T>(PhantomData<T>);

    impl<T: Component> crate::raw::Guest for Adapter<T> {
        fn describe() -> ComponentInfo {
            T::describe().into_raw()
        }

        fn run() -> Result<(), String> {
            match T::run(&mut Context::new()) {
                Ok(()) => Ok(()),
                Err(e) if e.is_quiet() => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

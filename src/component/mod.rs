//! Components: what a process runs, and the one registry that lists them all.
//!
//! A component has a [`ComponentSpec`] (data: name, documentation, ports) and behaviour (a
//! [`Component`] that runs against a [`ProcessContext`]). The [`Registry`] maps names to both,
//! whatever kind the component is: native core components compiled in ([`native`]),
//! WebAssembly components ([`wasm`]) and, when the operator allows them, native shared objects
//! ([`dylib`]).
//!
//! # The component contract
//!
//! - `run` is called once per process, on the process's own thread. It returns when the
//!   component is done, usually when its inports reach end of stream.
//! - Port operations fail with [`ProcessError::Stopped`] when the network stops, and sends with
//!   [`ProcessError::Closed`] when everything downstream has ended; pass both on with `?`.
//! - Brackets ([`crate::Ip::Open`], [`crate::Ip::Close`]) are forwarded unchanged by components
//!   that do not give them a meaning.
//! - An error returned or a panic ends only this process, reported with the node's id.
//! - Outports are flushed and closed by the engine after `run` returns.
//!
//! [`ProcessContext`]: crate::engine::ProcessContext
//! [`ProcessError::Stopped`]: crate::engine::ProcessError::Stopped
//! [`ProcessError::Closed`]: crate::engine::ProcessError::Closed

mod allow;
pub mod connect;
pub mod dylib;
pub mod exec;
pub mod native;
mod registry;
mod spec;
pub mod wasm;

pub use allow::AllowList;
pub use registry::{Change, ComponentFactory, NameError, NodeInfo, Origin, Registry, is_reserved};
pub use spec::{ComponentSpec, PortSpec};

use crate::engine::{ProcessContext, ProcessError};

/// The behaviour of a component: one instance runs one process.
pub trait Component: Send {
    /// Runs the process to completion.
    ///
    /// # Errors
    ///
    /// A [`ProcessError::Failed`] is reported as a process error; `Stopped` and `Closed` end
    /// the process quietly.
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError>;

    /// Whether the process needs an operating-system thread of its own: `true` (the default)
    /// for a component that may block outside its [`ProcessContext`] (files, sockets, child
    /// programs, channels of its own, foreign code). A component that waits only through its
    /// context answers `false` and runs as a task on the shared worker threads, costing a
    /// small stack instead of a thread (ADR 0010).
    fn needs_thread(&self) -> bool {
        true
    }
}

impl<F> Component for F
where
    F: FnMut(&mut ProcessContext) -> Result<(), ProcessError> + Send,
{
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        self(ctx)
    }
}

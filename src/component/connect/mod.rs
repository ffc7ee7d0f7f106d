//! Connectors: core components that reach the world outside the network over real protocols
//! (HTTP, TCP, message brokers).
//!
//! They are native and run with flowd's rights, as `core/ReadLines` does for files; what a
//! sandboxed WebAssembly component may reach is granted separately (see [`super::wasm`]).
//! Their sockets live on one small tokio runtime shared by every connector of the program
//! ([`io_runtime`]), while each process keeps its own thread and blocking API: a process hands
//! work to the runtime and waits for the answer through a bounded channel, so backpressure
//! reaches the socket and no queue grows without bound.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

use super::Registry;
use super::native::register;
use crate::engine::{ProcessContext, ProcessError, ReceivedOr};

pub(crate) mod bridge;
mod http;
mod mqtt;
pub(crate) mod nats;
mod tcp;

/// Registers every connector in `registry`.
pub fn register_all(registry: &Registry) {
    register::<http::Server>(registry);
    register::<http::Request>(registry);
    register::<nats::Publish>(registry);
    register::<nats::Subscribe>(registry);
    register::<mqtt::Publish>(registry);
    register::<mqtt::Subscribe>(registry);
    register::<tcp::TcpConnect>(registry);
    register::<tcp::TcpListen>(registry);
}

/// Worker threads of the connectors' runtime: sockets wait in the kernel, so few are needed.
const IO_THREADS: usize = 2;

/// The runtime every connector's sockets run on, started on first use.
///
/// # Errors
///
/// When the runtime cannot start (no threads left); the error is kept and returned to every
/// later caller, as nothing would change by trying again.
pub(crate) fn io_runtime() -> Result<&'static Runtime, ProcessError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(IO_THREADS)
                .thread_name("flowd-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the connectors' runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| ProcessError::failed(e.clone()))
}

/// Aborts a task of the connectors' runtime when dropped: the process that started it owns
/// it, so a stop or a failure of the process ends the task too.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `future` on the connectors' runtime and waits for its output on the process's thread,
/// in a way that a network stop ends at once (the task is then aborted): for connecting,
/// looking names up, and each request, which may take long against a peer that does not
/// answer.
///
/// # Errors
///
/// [`ProcessError::Stopped`] when the network stops first; a failure if the runtime cannot
/// start.
pub(crate) fn wait_for<T: Send + 'static>(
    ctx: &mut ProcessContext,
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, ProcessError> {
    let (done, wait) = crossbeam_channel::bounded(1);
    let _task = AbortOnDrop(io_runtime()?.spawn(async move {
        let _ = done.send(future.await);
    }));
    match ctx.recv_any_or(&[], &wait)? {
        ReceivedOr::Channel(Some(output)) => Ok(output),
        _ => Err(ProcessError::failed(
            "a connector's task ended without an answer",
        )),
    }
}

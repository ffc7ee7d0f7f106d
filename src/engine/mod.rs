//! The engine: running a graph as a network of concurrent processes.
//!
//! [`Network::start`] validates a [`crate::Graph`], creates one instance of its component for
//! each process and runs each on its own OS thread. Processes exchange [`crate::Ip`]s over
//! bounded edges that move IPs in batches ([`edge`](self#edges)), report what happens on one
//! event channel ([`Event`]), and end when their inputs end or the network stops.
//!
//! # Edges
//!
//! An edge is a bounded queue: a full edge blocks its sender, so memory stays bounded whatever
//! the speeds of producer and consumer. IPs move in batches: when IPs arrive faster than they
//! are consumed, an IP costs a push and a pop, not a channel operation and a wake-up. A batch
//! is handed over when full or as soon as its process is about to wait, so an idle network
//! still moves a lone IP at once. Several edges into one inport merge (fan-in); an outport
//! connected to several inports copies each IP to all of them (fan-out, sharing the payload).
//!
//! # End of stream and stop
//!
//! An inport ends when its IIPs have been read and every upstream process has ended and been
//! drained. A process ends when its component's `run` returns; the engine then closes its
//! outports. The network has finished when every process has ended. [`Network::stop`] wakes
//! every process blocked in a port operation, which then returns [`ProcessError::Stopped`].
//!
//! # Failures
//!
//! A component that returns an error or panics ends its own process with
//! [`Event::ProcessError`] naming the node; its outports close as if it had finished, and the
//! rest of the network goes on.

mod build;
mod config;
mod context;
mod cpu;
mod deadlock;
mod edge;
mod error;
mod events;
mod external;
mod live;
mod metrics;
mod network;
mod parker;
mod process;
mod queue;
mod watch;

pub use config::NetworkConfig;
pub(crate) use context::OutputSink;
pub use context::{InPort, OutPort, ProcessContext, Received, ReceivedOr};
pub(crate) use error::error_chain;
pub use error::{Error, ProcessError};
pub use events::{EdgeId, Event, SHOWN_BYTES};
pub use external::{GraphInport, GraphOutport, RecvTimeout};
pub use live::LiveEditError;
pub use metrics::{EdgeMetrics, NetworkMetrics, ProcessMetrics, ProcessState};
pub use network::{Network, Outcome};
pub(crate) use process::panic_message;
pub(crate) use watch::Rate;

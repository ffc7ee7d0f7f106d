//! flowd: a Flow-Based Programming runtime.
//!
//! A [`Graph`] names processes (instances of components) and the connections between their
//! ports. A [`Network`] runs a graph: each process as a task on a few worker threads (or, if
//! its component blocks in the operating system, on a thread of its own), its ports joined by bounded
//! edges that carry [`Ip`]s (information packets) in batches, with backpressure. Components come
//! from one [`Registry`].
//!
//! ```text
//!  graph/      pure data: Graph, Node, Edge, Iip; FBP JSON and .fbp; validation; atomic save
//!  component/  Registry of ComponentSpec + factory; native core components
//!  engine/     Network, ProcessContext, bounded batched edges, events, live edits
//!  sched/      processes as tasks: stackful coroutines on one worker thread per core
//!  threads/    every thread flowd starts, within the system's limits
//!  protocol/   the FBP Network Protocol: envelope, capabilities, a handler per subprotocol
//!  runtime/    the graphs a server manages, their networks and clients
//!  server/     WebSocket (and TLS) transport on tokio
//!  cli/        the flowd command line
//! ```
//!
//! # Example
//!
//! ```
//! use flowd::{Graph, Network, Registry, engine::NetworkConfig};
//!
//! let graph = Graph::from_fbp("'hello' -> IN Say(core/Repeat) OUT -> IN Show(core/Output)")?;
//! let registry = Registry::with_core();
//! let network = Network::start(&graph, &registry, NetworkConfig::default())?;
//! let outcome = network.wait();
//! assert!(outcome.errors.is_empty());
//! assert_eq!(outcome.output, vec!["hello".to_string()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod component;
pub mod engine;
pub mod graph;
mod ip;
pub mod protocol;
pub mod runtime;
mod sched;
pub mod server;
pub mod threads;

pub use component::{ComponentSpec, PortSpec, Registry};
pub use engine::Network;
pub use graph::Graph;
pub use ip::{Ip, Payload};

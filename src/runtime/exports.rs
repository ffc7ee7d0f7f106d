//! The exported ports of a running network, as clients reach them: `runtime:packet` into an
//! exported inport, and what leaves an exported outport back out as `runtime:packet`.
//!
//! Each exported inport has a feeder thread behind a bounded queue, so a full edge never blocks
//! the runtime; each exported outport has a reader thread. Both follow the graph while the
//! network runs: a renamed export is reached, and reported, under its new name; a removed
//! inport ends the stream into its process, and a removed outport is no longer reported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crossbeam_channel::{Sender, TrySendError};
use serde_json::json;

use super::Runtime;
use crate::engine::{GraphInport, GraphOutport, Network};
use crate::graph::{Direction, Graph};
use crate::ip::Ip;
use crate::protocol::Message;

/// Packets that may wait for an exported inport before `runtime:packet` is refused.
const INPORT_QUEUE: usize = 1024;

/// The public name an outport's reader reports under; `None` once the export is removed.
type ReportedName = Arc<Mutex<Option<String>>>;

/// The exported ports of one running network, by their public names.
#[derive(Default)]
pub(crate) struct Exports {
    /// Feeders of the exported inports.
    inports: HashMap<String, Sender<Ip>>,
    /// The names the readers of the exported outports report under.
    outports: HashMap<String, ReportedName>,
}

impl Exports {
    /// Takes `graph`'s exported ports from `network` and starts their threads.
    ///
    /// # Errors
    ///
    /// When a thread cannot start (the threads that did start end with the network).
    pub(crate) fn start(
        runtime: &Weak<Mutex<Runtime>>,
        graph_id: &str,
        graph: &Graph,
        network: &mut Network,
    ) -> Result<Exports, String> {
        let failed = |kind: &str, name: &str, error: std::io::Error| {
            format!("cannot serve exported {kind} '{name}': {error}")
        };
        let mut exports = Exports::default();
        for export in &graph.inports {
            if let Some(port) = network.take_inport(&export.name) {
                let feeder = spawn_feeder(port).map_err(|e| failed("inport", &export.name, e))?;
                exports.inports.insert(export.name.clone(), feeder);
            }
        }
        for export in &graph.outports {
            if let Some(port) = network.take_outport(&export.name) {
                let name = Arc::new(Mutex::new(Some(export.name.clone())));
                spawn_reader(runtime.clone(), graph_id.to_string(), name.clone(), port)
                    .map_err(|e| failed("outport", &export.name, e))?;
                exports.outports.insert(export.name.clone(), name);
            }
        }
        Ok(exports)
    }

    /// Ends the stream into every exported inport (its feeder ends once it has passed on
    /// what was queued).
    pub(crate) fn close_inports(&mut self) {
        self.inports.clear();
    }

    /// Queues `ip` for the exported inport `port`.
    pub(crate) fn send(&self, port: &str, ip: Ip) -> Result<(), String> {
        let Some(feeder) = self.inports.get(port) else {
            return Err(format!(
                "the running network has no exported inport '{port}'"
            ));
        };
        feeder.try_send(ip).map_err(|error| match error {
            TrySendError::Full(_) => format!(
                "inport '{port}' has {INPORT_QUEUE} packets waiting; try again when it drains"
            ),
            TrySendError::Disconnected(_) => {
                format!("inport '{port}' no longer takes packets (its process has ended)")
            }
        })
    }

    /// The export `from` is now called `to`.
    pub(crate) fn rename(&mut self, direction: Direction, from: &str, to: &str) {
        match direction {
            Direction::In => {
                if let Some(feeder) = self.inports.remove(from) {
                    self.inports.insert(to.to_string(), feeder);
                }
            }
            Direction::Out => {
                if let Some(name) = self.outports.remove(from) {
                    *lock(&name) = Some(to.to_string());
                    self.outports.insert(to.to_string(), name);
                }
            }
        }
    }

    /// The export `name` is gone: an inport's stream ends once what it queued is delivered,
    /// and an outport's packets are no longer reported.
    pub(crate) fn remove(&mut self, direction: Direction, name: &str) {
        match direction {
            // Dropping the feeder's sender ends its thread, and so the stream.
            Direction::In => drop(self.inports.remove(name)),
            Direction::Out => {
                if let Some(reported) = self.outports.remove(name) {
                    *lock(&reported) = None;
                }
            }
        }
    }
}

fn lock(name: &ReportedName) -> std::sync::MutexGuard<'_, Option<String>> {
    name.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a thread that moves packets from the runtime into an exported inport. What has queued
/// up meanwhile goes over as one batch.
fn spawn_feeder(mut port: GraphInport) -> std::io::Result<Sender<Ip>> {
    let (tx, rx) = crossbeam_channel::bounded::<Ip>(INPORT_QUEUE);
    crate::threads::spawn("flowd-feeder", move || {
        while let Ok(first) = rx.recv() {
            let waiting = std::iter::once(first).chain(rx.try_iter().take(INPORT_QUEUE));
            if port.send_batch(waiting).is_err() {
                break;
            }
        }
    })?;
    Ok(tx)
}

/// Runs a thread that sends what leaves an exported outport to the clients as `runtime:packet`
/// (and drains it unreported once the export is removed, so its process is not held back).
fn spawn_reader(
    runtime: Weak<Mutex<Runtime>>,
    graph: String,
    name: ReportedName,
    mut out: GraphOutport,
) -> std::io::Result<()> {
    crate::threads::spawn("flowd-reader", move || {
        while let Some(ip) = out.recv() {
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            // The name is read under the runtime's lock, so a packet never goes out under a
            // name whose rename or removal was already announced.
            let mut runtime = runtime.lock().unwrap_or_else(|e| e.into_inner());
            let Some(port) = lock(&name).clone() else {
                continue;
            };
            let (event, payload) = match &ip {
                Ip::Data(p) => ("data", p.to_json()),
                Ip::Open(p) => ("begingroup", p.to_json()),
                Ip::Close(p) => ("endgroup", p.to_json()),
            };
            let message = Message::new(
                "runtime",
                "packet",
                json!({ "port": port, "event": event, "graph": graph, "payload": payload }),
            );
            runtime.clients.broadcast(&message, None);
        }
    })?;
    Ok(())
}

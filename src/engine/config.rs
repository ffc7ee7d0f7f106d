//! How a network is built: [`NetworkConfig`].

use super::events::EdgeId;

/// How a network is built. The defaults suit most graphs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The capacity of an edge, in IPs, unless its metadata sets `capacity` (default 1024; at
    /// most [`crate::graph::Edge::MAX_CAPACITY`]).
    pub default_capacity: usize,
    /// The largest batch an edge hands over at once (default 1024; an edge's batches are also
    /// never larger than its capacity).
    pub max_batch: usize,
    /// Whether exported ports are wired to
    /// [`GraphInport`](super::GraphInport)/[`GraphOutport`](super::GraphOutport) handles (default
    /// true). When false, exported inports receive nothing and exported outports discard.
    pub external_ports: bool,
    /// The capacity of the event channel (default 4096).
    pub event_capacity: usize,
    /// Whether edges are watched from the start (default false): IPs on edges are then reported as
    /// [`Event::Data`](super::Event::Data), and IIPs as [`Event::Initial`](super::Event::Initial)
    /// before anything they cause. [`Network::watch`](super::Network::watch) changes it per edge
    /// later.
    pub watch_edges: bool,
    /// With `watch_edges`: watch only the edges this selection covers ([`EdgeId::covers`];
    /// an empty selection covers all). Default `None`: every edge. IIPs are reported either
    /// way: they are few, and whoever shows them decides.
    pub watch_only: Option<Vec<EdgeId>>,
    /// At most this many [`Event::Data`](super::Event::Data) per watched edge per second, after a
    /// burst of as many at once; the rest are counted
    /// ([`Network::unreported`](super::Network::unreported)) and dropped. Default `None`: every IP
    /// on a watched edge (as long as the event channel has room).
    pub watch_rate: Option<u32>,
    /// The most processes this program may run at once, over every network (default `None`:
    /// as many as the system has room for; see [`crate::threads`]). A network that would pass
    /// it, or the system's limit, does not start.
    pub max_processes: Option<usize>,
    /// Whether a bang inport (datatype `bang`) left unconnected stays open for IIPs sent
    /// while the network runs (default false: it ends at once, as any unconnected port).
    /// noflo-ui shows such a port as a button that sends one IIP; the open port also counts
    /// as a way into the network, so waiting on it is never taken for a deadlock.
    pub open_bang_ports: bool,
    /// Whether processes whose components wait only through their context run as tasks on
    /// the shared worker threads (default true; ADR 0010). When false, every process has an
    /// operating-system thread of its own, as before tasks: for comparison, or for a native
    /// component that turns out to block its worker.
    pub tasks: bool,
}

impl NetworkConfig {
    /// Whether a process of `component` runs on a thread of its own.
    pub(super) fn on_thread(&self, component: &dyn crate::component::Component) -> bool {
        !self.tasks || component.needs_thread()
    }

    /// Whether `edge` is watched from the start.
    pub(super) fn watches(&self, edge: &EdgeId) -> bool {
        self.watch_edges
            && self
                .watch_only
                .as_ref()
                .is_none_or(|s| s.is_empty() || s.iter().any(|w| w.covers(edge)))
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            default_capacity: 1024,
            max_batch: 1024,
            external_ports: true,
            event_capacity: 4096,
            watch_edges: false,
            watch_only: None,
            watch_rate: None,
            max_processes: None,
            open_bang_ports: false,
            tasks: true,
        }
    }
}

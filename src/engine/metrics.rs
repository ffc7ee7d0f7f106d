//! What a running network has done, for operators: per process its state and the time it
//! spent blocked, per edge the IPs and bytes it carried and how full its queue is.
//!
//! Counting costs the data path next to nothing: an edge counts a batch (two relaxed atomic
//! additions) when its sender hands it over, and a process times a wait only when it is about
//! to park its thread, which costs far more.

use std::time::Duration;

use super::events::EdgeId;

/// A snapshot of one network.
#[derive(Debug, Clone, Default)]
pub struct NetworkMetrics {
    /// Its processes (one that ended may be missing once processes were added after it).
    pub processes: Vec<ProcessMetrics>,
    /// Its edges between processes.
    pub edges: Vec<EdgeMetrics>,
}

/// What a process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Not started yet.
    Waiting,
    /// Computing, sleeping, or waiting on something other than its edges.
    Running,
    /// Parked until an inport has an IP or a full edge has room.
    Blocked,
    /// Ended by itself, or stopped.
    Ended,
    /// Ended with an error or a panic.
    Failed,
}

impl ProcessState {
    /// Its name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            ProcessState::Waiting => "waiting",
            ProcessState::Running => "running",
            ProcessState::Blocked => "blocked",
            ProcessState::Ended => "ended",
            ProcessState::Failed => "failed",
        }
    }

    /// Every state, in order.
    pub const ALL: [ProcessState; 5] = [
        ProcessState::Waiting,
        ProcessState::Running,
        ProcessState::Blocked,
        ProcessState::Ended,
        ProcessState::Failed,
    ];
}

/// One process.
#[derive(Debug, Clone)]
pub struct ProcessMetrics {
    /// The process's name in the network.
    pub node: String,
    /// Its component.
    pub component: String,
    /// What it does now.
    pub state: ProcessState,
    /// Time spent blocked receiving (the wait in progress included).
    pub receive_blocked: Duration,
    /// Time spent blocked sending to a full edge (the wait in progress included).
    pub send_blocked: Duration,
    /// CPU time its thread spent running it (zero where threads' CPU clocks cannot be read).
    pub cpu: Duration,
    /// Bytes of memory it reports in use (a WebAssembly guest's linear memories; zero for
    /// processes that report none).
    pub memory: u64,
}

/// One edge.
#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    /// The edge.
    pub edge: EdgeId,
    /// IPs handed over to the receiver's queue.
    pub ips: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Batches waiting in the receiving inport's queue (shared by every edge into it).
    pub queued_batches: usize,
    /// The batches that queue holds at most: when `queued_batches` reaches it, the sender
    /// blocks.
    pub capacity_batches: usize,
    /// IPs per batch at most on this edge.
    pub batch_ips: usize,
}

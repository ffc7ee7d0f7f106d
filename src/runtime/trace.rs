//! Flowtraces: a bounded record of a graph's network events, dumped as Flowtrace JSON.

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::graph::Graph;
use crate::protocol::Message;

/// The buffer size when `trace:start` names none: 10 MB of event text.
pub(crate) const DEFAULT_BUFFER_BYTES: usize = 10 * 1024 * 1024;

/// The largest buffer a client may ask for: it is the runtime's memory.
const MAX_BUFFER_BYTES: usize = 256 * 1024 * 1024;

/// The events recorded for one graph, oldest first, within a byte budget.
pub(crate) struct Trace {
    events: VecDeque<(usize, Value)>,
    bytes: usize,
    capacity: usize,
    recording: bool,
    started: String,
}

impl Trace {
    /// A trace that records up to `capacity` bytes of events, dropping the oldest beyond.
    pub(crate) fn new(capacity: usize) -> Trace {
        Trace {
            events: VecDeque::new(),
            bytes: 0,
            capacity: capacity.clamp(1, MAX_BUFFER_BYTES),
            recording: true,
            started: super::report::now(),
        }
    }

    /// Starts or stops recording; the recorded events stay.
    pub(crate) fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Changes the budget, dropping the oldest events that no longer fit.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.clamp(1, MAX_BUFFER_BYTES);
        self.trim();
    }

    /// Drops every recorded event.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
    }

    /// Records a network message, if recording.
    pub(crate) fn record(&mut self, message: &Message) {
        if !self.recording {
            return;
        }
        let event = json!({
            "protocol": message.protocol,
            "command": message.command,
            "payload": message.payload,
            "time": super::report::now(),
        });
        let size = event.to_string().len();
        self.events.push_back((size, event));
        self.bytes += size;
        self.trim();
    }

    fn trim(&mut self) {
        while self.bytes > self.capacity {
            match self.events.pop_front() {
                Some((size, _)) => self.bytes -= size,
                None => break,
            }
        }
    }

    /// The Flowtrace JSON text of what was recorded, with the graph as it is now.
    pub(crate) fn dump(&self, graph_id: &str, graph: &Graph, runtime_id: &str) -> String {
        let mut graphs = serde_json::Map::new();
        graphs.insert(graph_id.to_string(), graph.to_json());
        json!({
            "header": {
                "runtime": runtime_id,
                "start": self.started,
                "end": super::report::now(),
                "graphs": graphs,
                "main": graph_id,
            },
            "events": self.events.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_events_go_when_the_budget_is_spent() {
        let mut trace = Trace::new(400);
        for i in 0..20 {
            trace.record(&Message::new("network", "data", json!({ "data": i })));
        }
        assert!(trace.bytes <= 400);
        let dump: Value = serde_json::from_str(&trace.dump("g", &Graph::new("g"), "id")).unwrap();
        let events = dump["events"].as_array().unwrap();
        assert!(!events.is_empty() && events.len() < 20);
        assert_eq!(events.last().unwrap()["payload"]["data"], 19);
    }
}

//! The runtime's counters in the Prometheus text format, for the operations listener
//! ([`crate::server::ops`]): runtime-wide figures, and per running network, process and edge
//! what [`crate::engine::NetworkMetrics`] holds. Labels are the names of graphs, processes,
//! components and ports only, never payloads.

use std::collections::HashMap;
use std::fmt::Write;

use super::Runtime;
use super::network::NetworkState;
use crate::engine::{NetworkMetrics, ProcessMetrics, ProcessState};

impl Runtime {
    /// Every metric, as a Prometheus scrape reads it.
    pub fn metrics_text(&self) -> String {
        let mut text = Text::default();
        text.header("flowd_clients", "gauge", "Protocol clients connected.");
        text.line("flowd_clients", &[], self.client_count() as f64);
        let frames = self.clients.totals();
        text.header(
            "flowd_frames_total",
            "counter",
            "Protocol frames received from clients and sent to them.",
        );
        text.line(
            "flowd_frames_total",
            &[("direction", "received")],
            frames.received as f64,
        );
        text.line(
            "flowd_frames_total",
            &[("direction", "sent")],
            frames.sent as f64,
        );
        text.header(
            "flowd_dropped_packet_frames_total",
            "counter",
            "Packet frames (network:data and the like) dropped for clients that read too \
             slowly.",
        );
        text.line(
            "flowd_dropped_packet_frames_total",
            &[],
            frames.dropped_packets as f64,
        );
        text.header("flowd_graphs", "gauge", "Graphs the runtime holds.");
        text.line("flowd_graphs", &[], self.graphs.len() as f64);
        text.header(
            "flowd_networks_running",
            "gauge",
            "Networks running (started, not finished or stopped).",
        );
        text.line(
            "flowd_networks_running",
            &[],
            self.running_networks() as f64,
        );
        let networks: Vec<(&str, NetworkMetrics, u64)> = self
            .graphs
            .iter()
            .filter_map(|(id, entry)| match &entry.network {
                NetworkState::Running(live) => {
                    Some((id.as_str(), live.metrics(), live.unreported()))
                }
                _ => None,
            })
            .collect();
        text.header(
            "flowd_unreported_packets_total",
            "counter",
            "Packets on watched edges not shown to clients (over the data rate, or too many \
             events at once).",
        );
        for (graph, _, unreported) in &networks {
            text.line(
                "flowd_unreported_packets_total",
                &[("graph", graph)],
                *unreported as f64,
            );
        }
        processes(&mut text, &networks);
        throughput(&mut text, &networks);
        resources(&mut text, &networks);
        edges(&mut text, &networks);
        text.0
    }
}

fn processes(text: &mut Text, networks: &[(&str, NetworkMetrics, u64)]) {
    text.header(
        "flowd_process_state",
        "gauge",
        "1 for the state each process is in (waiting, running, blocked, ended, failed).",
    );
    for (graph, metrics, _) in networks {
        for process in &metrics.processes {
            for state in ProcessState::ALL {
                let on = if process.state == state { 1.0 } else { 0.0 };
                let extra = Some(("state", state.name()));
                text.process_line("flowd_process_state", graph, process, extra, on);
            }
        }
    }
    text.header(
        "flowd_process_blocked_seconds_total",
        "counter",
        "Time each process spent blocked, receiving (its inports empty) or sending (an edge \
         full).",
    );
    for (graph, metrics, _) in networks {
        for process in &metrics.processes {
            for (direction, time) in [
                ("receive", process.receive_blocked),
                ("send", process.send_blocked),
            ] {
                let (name, extra) = (
                    "flowd_process_blocked_seconds_total",
                    Some(("direction", direction)),
                );
                text.process_line(name, graph, process, extra, time.as_secs_f64());
            }
        }
    }
}

/// What went in and out of each process: the sums over its edges (IIPs not counted).
fn throughput(text: &mut Text, networks: &[(&str, NetworkMetrics, u64)]) {
    // Per network, per process: [IPs in, IPs out, bytes in, bytes out], in one pass.
    let sums: Vec<HashMap<&str, [u64; 4]>> = networks
        .iter()
        .map(|(_, metrics, _)| {
            let mut sums: HashMap<&str, [u64; 4]> = HashMap::new();
            for edge in &metrics.edges {
                let into = sums.entry(edge.edge.tgt.process.as_str()).or_default();
                into[0] += edge.ips;
                into[2] += edge.bytes;
                let out_of = sums.entry(edge.edge.src.process.as_str()).or_default();
                out_of[1] += edge.ips;
                out_of[3] += edge.bytes;
            }
            sums
        })
        .collect();
    for (name, help, first) in [
        (
            "flowd_process_ips_total",
            "IPs into each process and out of it, over its edges.",
            0,
        ),
        (
            "flowd_process_bytes_total",
            "Payload bytes into each process and out of it, over its edges.",
            2,
        ),
    ] {
        text.header(name, "counter", help);
        for ((graph, metrics, _), sums) in networks.iter().zip(&sums) {
            for process in &metrics.processes {
                let node = process.node.as_str();
                let totals = sums.get(node).copied().unwrap_or_default();
                for (direction, total) in [("in", totals[first]), ("out", totals[first + 1])] {
                    let extra = Some(("direction", direction));
                    text.process_line(name, graph, process, extra, total as f64);
                }
            }
        }
    }
}

fn resources(text: &mut Text, networks: &[(&str, NetworkMetrics, u64)]) {
    text.header(
        "flowd_process_cpu_seconds_total",
        "counter",
        "CPU time each process's thread spent running it.",
    );
    for (graph, metrics, _) in networks {
        for process in &metrics.processes {
            let cpu = process.cpu.as_secs_f64();
            text.process_line("flowd_process_cpu_seconds_total", graph, process, None, cpu);
        }
    }
    text.header(
        "flowd_process_memory_bytes",
        "gauge",
        "Memory a sandboxed (WebAssembly) process has in use: its linear memories.",
    );
    for (graph, metrics, _) in networks {
        for process in metrics.processes.iter().filter(|p| p.memory > 0) {
            let memory = process.memory as f64;
            text.process_line("flowd_process_memory_bytes", graph, process, None, memory);
        }
    }
}

fn edges(text: &mut Text, networks: &[(&str, NetworkMetrics, u64)]) {
    let families: [(&str, &str, &str); 5] = [
        ("flowd_edge_ips_total", "counter", "IPs each edge carried."),
        (
            "flowd_edge_bytes_total",
            "counter",
            "Payload bytes each edge carried.",
        ),
        (
            "flowd_edge_queued_batches",
            "gauge",
            "Batches waiting in the queue of each edge's target inport (shared by edges into \
             one inport).",
        ),
        (
            "flowd_edge_capacity_batches",
            "gauge",
            "The batches that queue holds: when full, the sender blocks.",
        ),
        (
            "flowd_edge_batch_ips",
            "gauge",
            "IPs per batch at most on each edge.",
        ),
    ];
    for (index, (name, kind, help)) in families.iter().enumerate() {
        text.header(name, kind, help);
        for (graph, metrics, _) in networks {
            for edge in &metrics.edges {
                let (src, tgt) = (edge.edge.src.to_string(), edge.edge.tgt.to_string());
                let value = match index {
                    0 => edge.ips as f64,
                    1 => edge.bytes as f64,
                    2 => edge.queued_batches as f64,
                    3 => edge.capacity_batches as f64,
                    _ => edge.batch_ips as f64,
                };
                let labels = [
                    ("graph", *graph),
                    ("src", src.as_str()),
                    ("tgt", tgt.as_str()),
                ];
                text.line(name, &labels, value);
            }
        }
    }
}

/// Prometheus text being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// A line about `process` of `graph`, labelled with both, its component and `extra`.
    fn process_line(
        &mut self,
        name: &str,
        graph: &str,
        process: &ProcessMetrics,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        let mut labels = vec![
            ("graph", graph),
            ("node", process.node.as_str()),
            ("component", process.component.as_str()),
        ];
        labels.extend(extra);
        self.line(name, &labels, value);
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{label}=\"{}\"", escape(value));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_a_line() {
        let mut text = Text::default();
        text.line("m", &[("node", "a\"b\\c\nd")], 1.0);
        assert_eq!(text.0, "m{node=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}

//! Many processes in one runtime: processes as tasks on a few worker threads (ADR 0010)
//! against a thread per process (`NetworkConfig::tasks = false`), in the same run.
//!
//! - `chain_500/{tasks,threads}`: `bench/Generate` sends 10,000 IPs through 500 `core/Repeat`
//!   into `core/Drop`.
//! - `fan_64/{tasks,threads}`: 10,000 IPs through `core/Split` to 64 `core/Repeat`, merged by
//!   `core/Merge` into `core/Drop`, every edge of capacity 1 (a hand-over per IP).
//! - `chain_100k/tasks`: a chain of 100,000 `core/Repeat` fed through an exported inport:
//!   start, 1,000 IPs in and out, stop. (With a thread each, 100,000 processes do not start.)
//! - `idle_100k/tasks`: 100,000 `core/Repeat` waiting on exported inports: start, then stop.
//!
//! After the run, a summary prints the medians, the ratios, and the resident memory measured
//! while each 100,000-process network ran. Run: `cargo bench --bench scale`.

mod common;

use std::time::{Duration, Instant};

use common::{median_ns, registry, run_with};
use criterion::{Criterion, criterion_group};
use flowd::engine::NetworkConfig;
use flowd::graph::PortRef;
use flowd::{Graph, Ip, Network, Registry};

const IPS: u64 = 10_000;
const LARGE: usize = 100_000;

fn config(tasks: bool) -> NetworkConfig {
    NetworkConfig {
        tasks,
        ..NetworkConfig::default()
    }
}

/// Edges of `capacity` IPs.
fn with_capacity(config: NetworkConfig, capacity: usize) -> NetworkConfig {
    NetworkConfig {
        default_capacity: capacity,
        ..config
    }
}

fn chain(length: usize) -> Graph {
    let mut graph = Graph::new("chain");
    graph.add_node("gen", "bench/Generate");
    graph.add_iip(serde_json::json!(IPS), PortRef::new("gen", "count"));
    graph.add_iip(serde_json::json!(8), PortRef::new("gen", "size"));
    let mut previous = "gen".to_string();
    for i in 0..length {
        let id = format!("r{i}");
        graph.add_node(&id, "core/Repeat");
        graph.add_edge(PortRef::new(&previous, "out"), PortRef::new(&id, "in"));
        previous = id;
    }
    graph.add_node("sink", "core/Drop");
    graph.add_edge(PortRef::new(&previous, "out"), PortRef::new("sink", "in"));
    graph
}

fn fan(branches: usize) -> Graph {
    let mut graph = Graph::new("fan");
    graph.add_node("gen", "bench/Generate");
    graph.add_iip(serde_json::json!(IPS), PortRef::new("gen", "count"));
    graph.add_iip(serde_json::json!(8), PortRef::new("gen", "size"));
    graph.add_node("split", "core/Split");
    graph.add_node("merge", "core/Merge");
    graph.add_node("sink", "core/Drop");
    graph.add_edge(PortRef::new("gen", "out"), PortRef::new("split", "in"));
    for i in 0..branches {
        let id = format!("r{i}");
        graph.add_node(&id, "core/Repeat");
        graph.add_edge(
            PortRef::new("split", "out").with_index(i),
            PortRef::new(&id, "in"),
        );
        graph.add_edge(
            PortRef::new(&id, "out"),
            PortRef::new("merge", "in").with_index(i),
        );
    }
    graph.add_edge(PortRef::new("merge", "out"), PortRef::new("sink", "in"));
    graph
}

/// Resident memory of this program now, in MiB.
fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// The largest resident memory seen while a 100,000-process network ran, per bench.
static RESIDENT: std::sync::Mutex<Vec<(&str, u64)>> = std::sync::Mutex::new(Vec::new());

fn note_resident(what: &'static str) {
    if let Some(mib) = resident_mib() {
        let mut seen = RESIDENT.lock().unwrap_or_else(|e| e.into_inner());
        match seen.iter_mut().find(|(w, _)| *w == what) {
            Some((_, most)) => *most = (*most).max(mib),
            None => seen.push((what, mib)),
        }
    }
}

/// A chain of `LARGE` `core/Repeat` between exported ports: start, `ips` in and out, stop.
fn large_chain(registry: &Registry, ips: u64) -> Duration {
    let mut graph = Graph::new("large");
    for i in 0..LARGE {
        graph.add_node(format!("r{i}"), "core/Repeat");
        if i > 0 {
            graph.add_edge(
                PortRef::new(format!("r{}", i - 1), "out"),
                PortRef::new(format!("r{i}"), "in"),
            );
        }
    }
    graph.add_inport("IN", "r0", "in");
    graph.add_outport("OUT", &format!("r{}", LARGE - 1), "out");
    let started = Instant::now();
    let mut network = Network::start(&graph, registry, config(true))
        .unwrap_or_else(|e| panic!("the large chain must start: {e}"));
    let mut input = network.take_inport("IN").expect("IN");
    let mut output = network.take_outport("OUT").expect("OUT");
    let feeder = std::thread::spawn(move || {
        for i in 0..ips {
            input.send(Ip::data(i.to_string())).expect("IN takes IPs");
        }
    });
    for _ in 0..ips {
        output.recv().expect("every IP comes out");
    }
    feeder.join().expect("the feeder");
    note_resident("chain_100k");
    drop(output);
    assert!(network.stop_and_wait(Duration::from_secs(600)));
    started.elapsed()
}

/// `LARGE` `core/Repeat`, each waiting on an exported inport: start, then stop.
fn large_idle(registry: &Registry) -> Duration {
    let mut graph = Graph::new("idle");
    for i in 0..LARGE {
        graph.add_node(format!("r{i}"), "core/Repeat");
        graph.add_inport(&format!("IN{i}"), &format!("r{i}"), "in");
    }
    let started = Instant::now();
    let mut network = Network::start(&graph, registry, config(true))
        .unwrap_or_else(|e| panic!("the idle network must start: {e}"));
    note_resident("idle_100k");
    assert!(network.stop_and_wait(Duration::from_secs(600)));
    started.elapsed()
}

fn bench_shapes(c: &mut Criterion) {
    let registry = registry();
    for (group_name, graph, capacity) in [("chain_500", chain(500), 1024), ("fan_64", fan(64), 1)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        for (name, tasks) in [("tasks", true), ("threads", false)] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            run_with(&registry, &graph, with_capacity(config(tasks), capacity))
                        })
                        .sum()
                })
            });
        }
        group.finish();
    }
}

fn bench_large(c: &mut Criterion) {
    let registry = registry();
    let mut group = c.benchmark_group("chain_100k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("tasks", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| large_chain(&registry, 1_000)).sum())
    });
    group.finish();
    let mut group = c.benchmark_group("idle_100k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("tasks", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| large_idle(&registry)).sum())
    });
    group.finish();
}

criterion_group!(benches, bench_shapes, bench_large);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\nsummary (medians, same run):");
    for group in ["chain_500", "fan_64"] {
        if let (Some(tasks), Some(threads)) =
            (median_ns(group, "tasks"), median_ns(group, "threads"))
        {
            println!(
                "  {group:<10} tasks {:>9.1} ms   threads {:>9.1} ms   threads/tasks {:.2}",
                tasks / 1e6,
                threads / 1e6,
                threads / tasks
            );
        }
    }
    for group in ["chain_100k", "idle_100k"] {
        if let Some(tasks) = median_ns(group, "tasks") {
            let resident = RESIDENT
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|(w, _)| *w == group)
                .map_or_else(|| "?".to_string(), |(_, mib)| mib.to_string());
            println!(
                "  {group:<10} tasks {:>9.1} ms   resident while running {resident} MiB",
                tasks / 1e6
            );
        }
    }
}

//! The 4-stage pass-through pipeline: raw crossbeam threads against a flowd network.
//!
//! - `pipeline/crossbeam_baseline`: a producer thread, 4 forwarding threads and a consumer,
//!   joined by crossbeam `bounded(1024)` channels, moving 8-byte payloads one message at a time.
//! - `pipeline/flowd_repeat`: the same shape as a flowd network, built and run as `flowd run`
//!   runs a graph: `Generate -> Repeat x4 -> Drop`, each a real process with its own ports
//!   and bounded edges (default capacity), IPs with 8-byte payloads.
//! - `latency/flowd_idle_4_stages`: one IP into an exported inport of an idle 4-stage network
//!   of `core/Repeat`, until it comes out of the exported outport.
//!
//! After the run, a summary prints the medians, in IPs/s, and the ratio flowd / baseline.
//! Run: `cargo bench --bench pipeline`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use flowd::component::Component;
use flowd::engine::{NetworkConfig, ProcessContext, ProcessError};
use flowd::graph::PortRef;
use flowd::{ComponentSpec, Graph, Ip, Network, Payload, PortSpec, Registry};

/// IPs per measured run.
const IPS: u64 = 1_000_000;
const STAGES: usize = 4;

fn crossbeam_baseline(ips: u64) -> Duration {
    let start = Instant::now();
    let (first_tx, mut rx) = crossbeam_channel::bounded::<u64>(1024);
    let mut threads = Vec::new();
    for _ in 0..STAGES {
        let (tx, next_rx) = crossbeam_channel::bounded::<u64>(1024);
        let stage_rx = std::mem::replace(&mut rx, next_rx);
        threads.push(std::thread::spawn(move || {
            for value in stage_rx {
                if tx.send(value).is_err() {
                    break;
                }
            }
        }));
    }
    threads.push(std::thread::spawn(move || {
        for i in 0..ips {
            if first_tx.send(i).is_err() {
                break;
            }
        }
    }));
    let mut received = 0u64;
    for value in rx {
        received = received.wrapping_add(value);
    }
    std::hint::black_box(received);
    for thread in threads {
        let _ = thread.join();
    }
    start.elapsed()
}

/// `bench/Generate`: sends `count` (IIP) data IPs with 8-byte payloads.
struct Generate;

impl Component for Generate {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let count_port = ctx.inport("count")?;
        let out = ctx.outport("out")?;
        let count: u64 = match ctx.recv(count_port)? {
            Some(ip) => ip
                .payload()
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ProcessError::failed("count must be a number"))?,
            None => 0,
        };
        for i in 0..count {
            ctx.send(out, Ip::Data(Payload::copy_from_slice(&i.to_le_bytes())))?;
        }
        Ok(())
    }
}

fn registry() -> Registry {
    let registry = Registry::with_core();
    let spec = ComponentSpec::new("bench/Generate", "Sends `count` 8-byte packets")
        .inport(PortSpec::new("count", "int", "How many"))
        .outport(PortSpec::new("out", "all", "The packets"));
    registry.register(
        spec,
        Arc::new(|_: &flowd::component::NodeInfo<'_>| Ok(Box::new(Generate) as Box<dyn Component>)),
    );
    registry
}

fn pipeline_graph(ips: u64) -> Graph {
    let mut graph = Graph::new("pipeline");
    graph.add_node("gen", "bench/Generate");
    graph.add_iip(serde_json::json!(ips), PortRef::new("gen", "count"));
    let mut previous = "gen".to_string();
    for stage in 0..STAGES {
        let id = format!("repeat{stage}");
        graph.add_node(&id, "core/Repeat");
        graph.add_edge(PortRef::new(&previous, "out"), PortRef::new(&id, "in"));
        previous = id;
    }
    graph.add_node("sink", "core/Drop");
    graph.add_edge(PortRef::new(&previous, "out"), PortRef::new("sink", "in"));
    graph
}

fn flowd_pipeline(registry: &Registry, graph: &Graph) -> Duration {
    let start = Instant::now();
    let network = Network::start(graph, registry, NetworkConfig::default())
        .unwrap_or_else(|e| panic!("the bench graph must start: {e}"));
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    start.elapsed()
}

fn latency_graph() -> Graph {
    let mut graph = Graph::new("latency");
    for stage in 0..STAGES {
        graph.add_node(format!("r{stage}"), "core/Repeat");
        if stage > 0 {
            graph.add_edge(
                PortRef::new(format!("r{}", stage - 1), "out"),
                PortRef::new(format!("r{stage}"), "in"),
            );
        }
    }
    graph.add_inport("in", "r0", "in");
    graph.add_outport("out", &format!("r{}", STAGES - 1), "out");
    graph
}

fn bench_throughput(c: &mut Criterion) {
    let registry = registry();
    let graph = pipeline_graph(IPS);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(IPS));
    group.sample_size(15);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("crossbeam_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| crossbeam_baseline(IPS)).sum())
    });
    group.bench_function("flowd_repeat", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| flowd_pipeline(&registry, &graph)).sum())
    });
    group.finish();
}

fn bench_latency(c: &mut Criterion) {
    let registry = registry();
    let mut network = Network::start(&latency_graph(), &registry, NetworkConfig::default())
        .unwrap_or_else(|e| panic!("the latency graph must start: {e}"));
    let mut input = network.take_inport("in").expect("exported inport");
    let mut output = network.take_outport("out").expect("exported outport");
    let mut group = c.benchmark_group("latency");
    group.bench_function("flowd_idle_4_stages", |b| {
        b.iter(|| {
            input
                .send(Ip::data("12345678"))
                .expect("the network is running");
            output.recv().expect("the IP comes out")
        })
    });
    group.finish();
    drop(input);
    network.stop();
}

criterion_group!(benches, bench_throughput, bench_latency);

/// Reads a median (ns per iteration) from criterion's report.
fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{bench}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["median"]["point_estimate"].as_f64()
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let per_second = |ns: f64| IPS as f64 / (ns / 1e9);
    if let (Some(base), Some(flowd)) = (
        median_ns("pipeline", "crossbeam_baseline"),
        median_ns("pipeline", "flowd_repeat"),
    ) {
        println!("\nsummary (medians, same run):");
        println!(
            "  crossbeam baseline   {:>8.2} M IPs/s",
            per_second(base) / 1e6
        );
        println!(
            "  flowd core/Repeat    {:>8.2} M IPs/s",
            per_second(flowd) / 1e6
        );
        println!("  ratio flowd/baseline {:>8.2}", base / flowd);
    }
    if let Some(latency) = median_ns("latency", "flowd_idle_4_stages") {
        println!("  idle 4-stage latency {:>8.1} us (median)", latency / 1e3);
    }
}

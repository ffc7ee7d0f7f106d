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
//! - `wasm_10k/tasks`: a chain of 10,000 sandboxed `bench/Passthrough` (the Rust guest,
//!   `bash components/build-rust.sh`): start, 1,000 IPs in and out, stop.
//!
//! After the run, a summary prints the medians, the ratios, and the resident memory measured
//! while each 100,000-process network ran. Run: `cargo bench --bench scale`.

mod common;

use std::time::{Duration, Instant};

use common::{exported_chain, generated_chain, median_ns, registry, run_with, wasm_registry};
use criterion::{Criterion, criterion_group};
use flowd::engine::NetworkConfig;
use flowd::graph::PortRef;
use flowd::{Graph, Ip, Network, Registry};

const IPS: u64 = 10_000;
const LARGE: usize = 100_000;
/// WebAssembly processes in the large sandboxed chain.
const WASM_LARGE: usize = 10_000;

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

/// Chains of `(registry, component, length)`, each a network of one runtime: start them all,
/// pass 1,000 IPs through each at once, stop; the resident memory while they all ran is noted
/// as `what`.
fn large_chains(chains: &[(&Registry, &str, usize)], tasks: bool, what: &'static str) -> Duration {
    let ips = 1_000;
    let started = Instant::now();
    let mut networks: Vec<Network> = chains
        .iter()
        .map(|(registry, component, length)| {
            Network::start(&exported_chain(component, *length), registry, config(tasks))
                .unwrap_or_else(|e| panic!("the chain of {component} must start: {e}"))
        })
        .collect();
    let passing: Vec<_> = networks
        .iter_mut()
        .map(|network| {
            let mut input = network.take_inport("IN").expect("IN");
            let mut output = network.take_outport("OUT").expect("OUT");
            std::thread::spawn(move || {
                let feeder = std::thread::spawn(move || {
                    for i in 0..ips {
                        input.send(Ip::data(i.to_string())).expect("IN takes IPs");
                    }
                });
                let passed = (0..ips).all(|_| output.recv().is_some());
                feeder.join().expect("the feeder");
                (passed, output)
            })
        })
        .collect();
    let outputs: Vec<_> = passing
        .into_iter()
        .map(|p| p.join().expect("the IPs pass"))
        .collect();
    note_resident(what);
    for ((passed, output), (network, (_, component, length))) in
        outputs.into_iter().zip(networks.into_iter().zip(chains))
    {
        if !passed {
            let errors = network.wait().errors;
            panic!("{length} {component}: IPs stopped coming out: {errors:?}");
        }
        drop(output);
        let mut network = network;
        assert!(network.stop_and_wait(Duration::from_secs(600)));
    }
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
    for (group_name, graph, capacity) in [
        (
            "chain_500",
            generated_chain("core/Repeat", 500, IPS, 8),
            1024,
        ),
        ("fan_64", fan(64), 1),
    ] {
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

/// A group `name` of one bench, `tasks`, that takes seconds per run: `run` once per iteration.
fn bench_slow(c: &mut Criterion, name: &str, measurement: Duration, run: impl Fn() -> Duration) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.measurement_time(measurement);
    group.bench_function("tasks", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run()).sum())
    });
    group.finish();
}

fn bench_large(c: &mut Criterion) {
    let registry = registry();
    bench_slow(c, "chain_100k", Duration::from_secs(30), || {
        large_chains(&[(&registry, "core/Repeat", LARGE)], true, "chain_100k")
    });
    bench_slow(c, "idle_100k", Duration::from_secs(20), || {
        large_idle(&registry)
    });
}

/// `WASM_LARGE` sandboxed pass-through guests in a chain, as tasks. (With a thread each,
/// 10,000 guests do not start: the threads' stacks and signal stacks pass Linux's limit of
/// memory maps.)
fn bench_wasm(c: &mut Criterion) {
    let registry = wasm_registry(None);
    bench_slow(c, "wasm_10k", Duration::from_secs(30), || {
        large_chains(
            &[(&registry, "bench/Passthrough", WASM_LARGE)],
            true,
            "wasm_10k",
        )
    });
}

criterion_group!(benches, bench_shapes, bench_large, bench_wasm);

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
    let resident = |what: &str| {
        RESIDENT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(w, _)| *w == what)
            .map_or_else(|| "?".to_string(), |(_, mib)| mib.to_string())
    };
    for group in ["chain_100k", "idle_100k"] {
        if let Some(tasks) = median_ns(group, "tasks") {
            println!(
                "  {group:<10} tasks {:>9.1} ms   resident while running {} MiB",
                tasks / 1e6,
                resident(group)
            );
        }
    }
    // Once, not sampled: 100,000 native processes and 10,000 guests in one runtime at once.
    let registry = wasm_registry(None);
    let together = large_chains(
        &[
            (&registry, "core/Repeat", LARGE),
            (&registry, "bench/Passthrough", WASM_LARGE),
        ],
        true,
        "together",
    );
    println!(
        "  together   tasks {:>9.1} ms   resident while running {} MiB (one run: chain_100k and wasm_10k at once)",
        together.as_secs_f64() * 1e3,
        resident("together")
    );
    if let Some(ns) = median_ns("wasm_10k", "tasks") {
        println!(
            "  wasm_10k   tasks {:>9.1} ms   resident while running {} MiB",
            ns / 1e6,
            resident("wasm_10k")
        );
    }
}

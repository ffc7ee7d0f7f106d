//! The 4-stage pass-through pipeline: raw crossbeam threads against a flowd network.
//!
//! - `pipeline/crossbeam_baseline`: a producer thread, 4 forwarding threads and a consumer,
//!   joined by crossbeam `bounded(1024)` channels, moving 8-byte payloads one message at a time.
//! - `pipeline/flowd_repeat`: the same shape as a flowd network, built and run as `flowd run`
//!   runs a graph: `Generate -> Repeat x4 -> Drop`, each a real process with its own ports
//!   and bounded edges (default capacity), IPs with 8-byte payloads.
//! - `pipeline/flowd_repeat_threads`: the same with a thread per process, as before processes
//!   became tasks (ADR 0010).
//! - `pipeline/flowd_repeat_watched`: the same network with every edge watched as `flowd serve`
//!   watches it (packets reported at most 100 per edge per second, the rest counted).
//! - `pipeline/flowd_repeat_watched_all`: every IP on every edge reported (as far as the event
//!   channel has room), as flowd did before packets were sampled.
//! - `latency/flowd_idle_4_stages`: one IP into an exported inport of an idle 4-stage network
//!   of `core/Repeat`, until it comes out of the exported outport;
//!   `latency/flowd_idle_4_stages_threads` the same with a thread per process.
//!
//! After the run, a summary prints the medians, in IPs/s, and the ratio flowd / baseline.
//! Run: `cargo bench --bench pipeline`.

mod common;

use std::time::{Duration, Instant};

use common::{STAGES, exported_chain, median_ns, pipeline, registry, run, run_with};
use criterion::{Criterion, Throughput, criterion_group};
use flowd::engine::NetworkConfig;
use flowd::{Ip, Network};

/// IPs per measured run.
const IPS: u64 = 1_000_000;

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

fn bench_throughput(c: &mut Criterion) {
    let registry = registry();
    let graph = pipeline("core/Repeat", IPS, 8);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(IPS));
    group.sample_size(15);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("crossbeam_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| crossbeam_baseline(IPS)).sum())
    });
    group.bench_function("flowd_repeat", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run(&registry, &graph)).sum())
    });
    let threads = || NetworkConfig {
        tasks: false,
        ..NetworkConfig::default()
    };
    group.bench_function("flowd_repeat_threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_with(&registry, &graph, threads()))
                .sum()
        })
    });
    for (name, rate) in [
        (
            "flowd_repeat_watched",
            Some(flowd::runtime::DEFAULT_DATA_RATE),
        ),
        ("flowd_repeat_watched_all", None),
    ] {
        let config = || NetworkConfig {
            watch_edges: true,
            watch_rate: rate,
            ..NetworkConfig::default()
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| run_with(&registry, &graph, config()))
                    .sum()
            })
        });
    }
    group.finish();
}

fn bench_latency(c: &mut Criterion) {
    let registry = registry();
    let mut group = c.benchmark_group("latency");
    for (name, tasks) in [
        ("flowd_idle_4_stages", true),
        ("flowd_idle_4_stages_threads", false),
    ] {
        let config = NetworkConfig {
            tasks,
            ..NetworkConfig::default()
        };
        let mut network = Network::start(&exported_chain("core/Repeat", STAGES), &registry, config)
            .unwrap_or_else(|e| panic!("the latency graph must start: {e}"));
        let mut input = network.take_inport("IN").expect("exported inport");
        let mut output = network.take_outport("OUT").expect("exported outport");
        group.bench_function(name, |b| {
            b.iter(|| {
                input
                    .send(Ip::data("12345678"))
                    .expect("the network is running");
                output.recv().expect("the IP comes out")
            })
        });
        drop(input);
        network.stop();
    }
    group.finish();
}

criterion_group!(benches, bench_throughput, bench_latency);

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
        if let Some(threads) = median_ns("pipeline", "flowd_repeat_threads") {
            println!(
                "  a thread per process {:>8.2} M IPs/s (ratio {:.2})",
                per_second(threads) / 1e6,
                base / threads
            );
        }
        for (name, label) in [
            ("flowd_repeat_watched", "watched, sampled   "),
            ("flowd_repeat_watched_all", "watched, every IP  "),
        ] {
            if let Some(watched) = median_ns("pipeline", name) {
                println!(
                    "  {label}  {:>8.2} M IPs/s ({:.2} of unwatched)",
                    per_second(watched) / 1e6,
                    flowd / watched
                );
            }
        }
    }
    if let Some(latency) = median_ns("latency", "flowd_idle_4_stages") {
        println!("  idle 4-stage latency {:>8.1} us (median)", latency / 1e3);
    }
    if let Some(latency) = median_ns("latency", "flowd_idle_4_stages_threads") {
        println!("  a thread per process {:>8.1} us (median)", latency / 1e3);
    }
}

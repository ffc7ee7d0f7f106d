//! Remote edges against in-process edges, in the same run, over a real `nats-server` on
//! loopback (Debian's package; the bench is skipped without it).
//!
//! - `remote_edge/local_8B`, `remote_edge/local_1KiB`: `bench/Generate -> core/Drop` in one
//!   network, 1,000,000 IPs of 8 bytes (100,000 of 1 KiB);
//! - `remote_edge/remote_8B`, `remote_edge/remote_1KiB`: the same graph with `core/Drop`
//!   placed on a second runtime (its own NATS connection), timed from start until both
//!   shares have finished;
//! - `remote_edge/durable_8B`: the remote graph with the edge durable (JetStream);
//! - `crash_resume` (printed, not criterion): the durable run with the receiving share
//!   stopped at half way and started again, against the same run without the crash, median
//!   of 5 each;
//! - `latency/remote_edge`: one IP in an exported inport on one runtime and out of an
//!   exported outport on the other, across an idle remote edge (a `core/Repeat` each side);
//! - `latency/nats_request`: a bare async-nats request and reply through the same server.
//!
//! After the run, a summary prints IPs per second (criterion medians) and the ratios.
//!
//! Run: `cargo bench --bench cluster`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{median_ns, nats_server};
use criterion::{Criterion, Throughput, criterion_group};
use flowd::cluster::placement::Placement;
use flowd::cluster::{self, Cluster};
use flowd::engine::{GraphInport, GraphOutport, NetworkConfig};
use flowd::graph::PortRef;
use flowd::{Graph, Ip, Network, Registry};
use futures_util::StreamExt;

/// IPs per iteration, by size.
const SIZES: [(&str, usize, u64); 2] = [("8B", 8, 1_000_000), ("1KiB", 1024, 100_000)];

/// The two runtimes: `home` and `west`, each with its own connection to the server.
fn runtimes(url: &str) -> BTreeMap<String, Registry> {
    ["home", "west"]
        .into_iter()
        .map(|name| {
            let registry = common::registry();
            let member =
                Cluster::connect(url, name, &Default::default()).expect("joins the cluster");
            cluster::register(&registry, &member);
            (name.to_string(), registry)
        })
        .collect()
}

/// Runs made so far: each placed run gets subjects of its own.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Starts every share of `graph` (home `home`) on its runtime.
fn start_placed(graph: &Graph, runtimes: &BTreeMap<String, Registry>) -> Vec<Network> {
    let run = format!("run{}", RUNS.fetch_add(1, Ordering::Relaxed));
    let placement =
        Placement::split(graph, "home", &run, &BTreeMap::new()).expect("the graph places");
    placement
        .shares
        .iter()
        .map(|(name, share)| {
            Network::start(share, &runtimes[name], NetworkConfig::default())
                .unwrap_or_else(|e| panic!("the share of {name} starts: {e}"))
        })
        .collect()
}

/// `bench/Generate -> core/Drop`, the sink on `west` when `remote`.
fn generate_and_drop(count: u64, size: usize, remote: bool) -> Graph {
    generate_and_drop_with(count, size, remote, false)
}

/// As [`generate_and_drop`], the edge durable when `durable`.
fn generate_and_drop_with(count: u64, size: usize, remote: bool, durable: bool) -> Graph {
    let mut graph = common::pipeline("core/Repeat", count, size);
    // No stages: the generator straight into the sink.
    graph.nodes.retain(|n| !n.id.starts_with("stage"));
    graph.connections.retain(|c| match c {
        flowd::graph::Connection::Edge(_) => false,
        flowd::graph::Connection::Iip(_) => true,
    });
    graph.add_edge(PortRef::new("gen", "out"), PortRef::new("sink", "in"));
    if durable && let Some(flowd::graph::Connection::Edge(edge)) = graph.connections.last_mut() {
        edge.metadata = serde_json::json!({"durable": true}).as_object().cloned();
    }
    if remote && let Some(sink) = graph.nodes.iter_mut().find(|n| n.id == "sink") {
        sink.metadata = serde_json::json!({"runtime": "west"}).as_object().cloned();
    }
    graph
}

fn bench_throughput(c: &mut Criterion, url: &str) {
    let runtimes = runtimes(url);
    let mut group = c.benchmark_group("remote_edge");
    group.sample_size(10);
    for (label, size, count) in SIZES {
        group.throughput(Throughput::Elements(count));
        let local = generate_and_drop(count, size, false);
        group.bench_function(format!("local_{label}"), |b| {
            b.iter(|| common::run(&runtimes["home"], &local));
        });
        let remote = generate_and_drop(count, size, true);
        group.bench_function(format!("remote_{label}"), |b| {
            b.iter(|| {
                for network in start_placed(&remote, &runtimes) {
                    let outcome = network.wait();
                    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
                }
            });
        });
    }
    let (_, size, count) = SIZES[0];
    group.throughput(Throughput::Elements(count));
    let durable = generate_and_drop_with(count, size, true, true);
    group.bench_function("durable_8B", |b| {
        b.iter(|| {
            for network in start_placed(&durable, &runtimes) {
                let outcome = network.wait();
                assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
            }
        });
    });
    group.finish();
    crash_resume(&runtimes, &durable);
}

/// Times the durable run with and without a crash of the receiving share at half way.
fn crash_resume(runtimes: &BTreeMap<String, Registry>, graph: &Graph) {
    let timed = |crash: bool| {
        let run = format!("run{}", RUNS.fetch_add(1, Ordering::Relaxed));
        let placement =
            Placement::split(graph, "home", &run, &BTreeMap::new()).expect("the graph places");
        let start = |name: &str| {
            Network::start(
                &placement.shares[name],
                &runtimes[name],
                NetworkConfig::default(),
            )
            .expect("the share starts")
        };
        let started = Instant::now();
        let home = start("home");
        let mut west = start("west");
        if crash {
            std::thread::sleep(Duration::from_millis(40));
            drop(west);
            west = start("west");
        }
        for network in [home, west] {
            let outcome = network.wait();
            assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        }
        started.elapsed()
    };
    let median = |crash: bool| {
        let mut times: Vec<Duration> = (0..5).map(|_| timed(crash)).collect();
        times.sort();
        times[2]
    };
    let (plain, crashed) = (median(false), median(true));
    println!(
        "crash_resume: durable run {:.1} ms, with the receiver stopped and started again {:.1} ms \
         (one crash and resume costs {:.1} ms)",
        plain.as_secs_f64() * 1e3,
        crashed.as_secs_f64() * 1e3,
        (crashed.as_secs_f64() - plain.as_secs_f64()) * 1e3
    );
}

/// `IN -> core/Repeat (home) -> core/Repeat (west) -> OUT`, running.
fn idle_edge(runtimes: &BTreeMap<String, Registry>) -> (Vec<Network>, GraphInport, GraphOutport) {
    let mut graph = Graph::new("latency");
    graph.add_node("there", "core/Repeat");
    graph.add_node("back", "core/Repeat");
    graph.add_edge(PortRef::new("there", "out"), PortRef::new("back", "in"));
    graph.add_inport("IN", "there", "in");
    graph.add_outport("OUT", "back", "out");
    if let Some(back) = graph.nodes.iter_mut().find(|n| n.id == "back") {
        back.metadata = serde_json::json!({"runtime": "west"}).as_object().cloned();
    }
    let mut networks = start_placed(&graph, runtimes);
    let input = networks
        .iter_mut()
        .find_map(|n| n.take_inport("IN"))
        .expect("IN");
    let output = networks
        .iter_mut()
        .find_map(|n| n.take_outport("OUT"))
        .expect("OUT");
    (networks, input, output)
}

fn bench_latency(c: &mut Criterion, url: &str) {
    let runtimes = runtimes(url);
    let (networks, mut input, mut output) = idle_edge(&runtimes);
    let mut group = c.benchmark_group("latency");
    group.bench_function("remote_edge", |b| {
        b.iter(|| {
            input.send(Ip::data("ping")).expect("sent");
            output
                .recv_timeout(Duration::from_secs(10))
                .expect("the IP crossed");
        });
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let client = runtime
        .block_on(async_nats::connect(url))
        .expect("connects");
    let responder = client.clone();
    runtime.block_on(async {
        let mut requests = responder.subscribe("bench.echo").await.expect("subscribes");
        responder.flush().await.expect("flushes");
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                if let Some(reply) = request.reply {
                    let _ = responder.publish(reply, request.payload).await;
                }
            }
        });
    });
    group.bench_function("nats_request", |b| {
        b.iter(|| {
            runtime
                .block_on(client.request("bench.echo", "ping".into()))
                .expect("answered");
        });
    });
    group.finish();
    drop(input);
    for mut network in networks {
        network.stop_and_wait(Duration::from_secs(10));
    }
}

fn benches(c: &mut Criterion) {
    let Some(server) = nats_server() else {
        println!("cluster: skipped, no nats-server (apt-get install nats-server)");
        return;
    };
    bench_throughput(c, &server.1);
    bench_latency(c, &server.1);
}

criterion_group!(cluster_benches, benches);

fn summary() {
    for (label, _, count) in SIZES {
        let rate = |bench: &str| {
            median_ns("remote_edge", &format!("{bench}_{label}"))
                .map(|ns| count as f64 / (ns / 1e9))
        };
        if let (Some(local), Some(remote)) = (rate("local"), rate("remote")) {
            println!(
                "{label}: in-process {:.2} M IPs/s, remote {:.2} M IPs/s (remote/local {:.2})",
                local / 1e6,
                remote / 1e6,
                remote / local
            );
        }
    }
    if let Some(durable) = median_ns("remote_edge", "durable_8B") {
        let count = SIZES[0].2 as f64;
        println!("8B durable: {:.2} M IPs/s", count / (durable / 1e9) / 1e6);
    }
    if let (Some(edge), Some(request)) = (
        median_ns("latency", "remote_edge"),
        median_ns("latency", "nats_request"),
    ) {
        println!(
            "latency: one IP across an idle remote edge {:.1} µs, a bare NATS request/reply {:.1} µs",
            edge / 1e3,
            request / 1e3
        );
    }
}

fn main() {
    let started = Instant::now();
    cluster_benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
    println!("(bench took {:.0} s)", started.elapsed().as_secs_f64());
}

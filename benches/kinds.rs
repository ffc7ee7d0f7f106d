//! The four kinds of component in one run: the 4-stage pass-through pipeline
//! `Generate -> stage x4 -> Drop`, run as `flowd run` runs a graph, where a stage is
//!
//! - `native`: the core component `core/Repeat`, compiled in;
//! - `wasm`: the Rust guest `bench/Passthrough`, in its sandbox;
//! - `so`: the C shared object `native/Passthrough` (`--allow-native`);
//! - `exec`: `core/Exec` running `cat` with length-prefixed frames (`--allow-exec`), as the
//!   subgraph `bench/Cat`.
//!
//! Each with 8-byte and 1 KiB payloads. After the run, a summary prints the medians in IPs/s
//! and each kind's throughput as a fraction of native's, measured in the same run.
//!
//! Needs the guests and the shared object: `bash components/build.sh`.
//! Run: `cargo bench --bench kinds`.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{dist, median_ns, pipeline, run, wasm_registry};
use criterion::{Criterion, Throughput, criterion_group};
use flowd::component::{AllowList, dylib, exec};
use flowd::graph::PortRef;
use flowd::{Graph, Registry};

const IPS: u64 = 200_000;

const KINDS: [(&str, &str); 4] = [
    ("native", "core/Repeat"),
    ("wasm", "bench/Passthrough"),
    ("so", "native/Passthrough"),
    ("exec", "bench/Cat"),
];

const SIZES: [(&str, usize); 2] = [("8B", 8), ("1KiB", 1024)];

/// Where `program` is in PATH.
fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").expect("PATH is set"))
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("the benchmark needs {program} in PATH"))
}

/// `core/Exec` running `cat`, framed by lengths, as a component with `in` and `out`.
fn cat_graph() -> Graph {
    let mut graph = Graph::new("bench/Cat");
    graph.add_node("cat", "core/Exec");
    graph.add_iip(serde_json::json!("cat"), PortRef::new("cat", "program"));
    graph.add_iip(serde_json::json!("length"), PortRef::new("cat", "framing"));
    graph.add_inport("in", "cat", "in");
    graph.add_outport("out", "cat", "out");
    graph
}

/// Every kind registered: core, the WebAssembly guests, the shared object and `bench/Cat`.
fn kinds_registry() -> Arc<Registry> {
    let registry = wasm_registry(None);
    let library = dist()
        .join("native")
        .join(format!("libpassthrough.{}", dylib::EXTENSION));
    dylib::load(&library, &AllowList::allowing([library.clone()]), &registry)
        .expect("build the shared objects first: bash components/build-native.sh");
    exec::register(&registry, AllowList::allowing([which("cat")]));
    registry
        .register_graph("bench/Cat", cat_graph())
        .expect("bench/Cat registers");
    registry
}

fn bench_kinds(c: &mut Criterion) {
    let registry = kinds_registry();
    let mut group = c.benchmark_group("kinds");
    group.throughput(Throughput::Elements(IPS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(6));
    for (label, size) in SIZES {
        for (kind, stage) in KINDS {
            let graph = pipeline(stage, IPS, size);
            group.bench_function(format!("{kind}_{label}"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run(&registry, &graph)).sum())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_kinds);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let per_second = |ns: f64| IPS as f64 / (ns / 1e9);
    println!("\nsummary (medians, same run; 4 stages of each kind):");
    for (label, _) in SIZES {
        let Some(native) = median_ns("kinds", &format!("native_{label}")) else {
            continue;
        };
        for (kind, _) in KINDS {
            if let Some(ns) = median_ns("kinds", &format!("{kind}_{label}")) {
                println!(
                    "  {kind:>6} {label:>5} {:>8.3} M IPs/s  {:>6.3} of native",
                    per_second(ns) / 1e6,
                    native / ns
                );
            }
        }
    }
}

//! Starting WebAssembly components: instances and loading. (Their throughput against the other
//! kinds of component is in `benches/kinds.rs`.)
//!
//! - `wasm_instantiate/1000_processes{,_pooled}`: a network of 1,000 `bench/Passthrough`
//!   processes with nothing to do, from start to finish: each instantiates its guest, sees end
//!   of stream and ends; `1000_native_processes` is the same with `core/Repeat`, the floor set
//!   by threads and ports.
//! - `wasm_load/10_components_from_cache`: a new host (a second start of flowd) loading 10
//!   component files whose compiled code is in the cache.
//!
//! Needs the guests: `bash components/build.sh` (or `components/build-rust.sh`).
//! Run: `cargo bench --bench wasm`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{dist, median_ns, run, wasm_cache as cache, wasm_registry};
use criterion::{Criterion, criterion_group};
use flowd::Graph;
use flowd::component::wasm::{WasmConfig, WasmHost};

fn idle_processes(count: usize, component: &str) -> Graph {
    let mut graph = Graph::new("many");
    for i in 0..count {
        graph.add_node(format!("p{i}"), component);
    }
    graph
}

fn bench_instantiate(c: &mut Criterion) {
    let graph = idle_processes(1000, "bench/Passthrough");
    let mut group = c.benchmark_group("wasm_instantiate");
    group.sample_size(10);
    // The floor: the same network of native processes (threads, ports, start and end).
    let native = idle_processes(1000, "core/Repeat");
    let registry = wasm_registry(None);
    group.bench_function("1000_native_processes", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run(&registry, &native)).sum())
    });
    for (label, pooling) in [
        ("1000_processes", None),
        ("1000_processes_pooled", Some(1100)),
    ] {
        let registry = wasm_registry(pooling);
        group.bench_function(label, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(&registry, &graph)).sum())
        });
    }
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dist())
        .expect("dist")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    let hostile = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/guests/dist");
    files.extend(
        [
            "hostile_print.wasm",
            "hostile_panic.wasm",
            "hostile_trap.wasm",
        ]
        .iter()
        .map(|f| hostile.join(f))
        .filter(|p| p.exists()),
    );
    files.truncate(10);
    assert_eq!(files.len(), 10, "10 component files: {files:?}");
    let config = || WasmConfig {
        cache_dir: Some(cache()),
        ..WasmConfig::default()
    };
    // Warm the cache: the first start compiles.
    let host = WasmHost::new(config()).expect("host");
    for file in &files {
        host.load(file).expect("loads");
    }
    let mut group = c.benchmark_group("wasm_load");
    group.sample_size(10);
    group.bench_function("10_components_from_cache", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let host = WasmHost::new(config()).expect("host");
                for file in &files {
                    host.load(file).expect("loads");
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench_instantiate, bench_load);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\nsummary (medians, same run):");
    for label in [
        "1000_native_processes",
        "1000_processes",
        "1000_processes_pooled",
    ] {
        if let Some(ns) = median_ns("wasm_instantiate", label) {
            println!("  {label}: {:.1} ms", ns / 1e6);
        }
    }
    if let Some(ns) = median_ns("wasm_load", "10_components_from_cache") {
        println!("  10 components from the cache: {:.1} ms", ns / 1e6);
    }
}

//! Shared by the benchmarks: a generator component and the pipeline graph.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowd::component::{Component, NodeInfo};
use flowd::engine::{NetworkConfig, ProcessContext, ProcessError};
use flowd::graph::PortRef;
use flowd::{ComponentSpec, Graph, Ip, Network, Payload, PortSpec, Registry};

/// Pass-through stages in the pipeline.
pub const STAGES: usize = 4;

fn number(ctx: &mut ProcessContext, port: &str) -> Result<u64, ProcessError> {
    let value = ctx.read_config(port)?;
    value
        .as_ref()
        .and_then(|p| p.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProcessError::failed(format!("{port} must be a number")))
}

/// `bench/Generate`: sends `count` (IIP) data IPs of `size` (IIP, at least 8) bytes, each
/// numbered in its first 8 bytes.
fn generate(ctx: &mut ProcessContext) -> Result<(), ProcessError> {
    let count = number(ctx, "count")?;
    let size = number(ctx, "size")? as usize;
    let out = ctx.outport("out")?;
    let mut bytes = vec![b'x'; size.max(8)];
    for i in 0..count {
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        ctx.send(
            out,
            Ip::Data(Payload::copy_from_slice(&bytes[..size.max(8)])),
        )?;
    }
    Ok(())
}

/// The core components plus `bench/Generate`.
pub fn registry() -> Registry {
    let registry = Registry::with_core();
    let spec = ComponentSpec::new("bench/Generate", "Sends `count` packets of `size` bytes")
        .inport(PortSpec::new("count", "int", "How many"))
        .inport(PortSpec::new(
            "size",
            "int",
            "Bytes per packet (at least 8)",
        ))
        .outport(PortSpec::new("out", "all", "The packets"));
    registry.register(
        spec,
        Arc::new(|_: &NodeInfo<'_>| Ok(Box::new(generate) as Box<dyn Component>)),
    );
    registry
}

/// The Rust guests built into `components/dist` (`bash components/build-rust.sh`).
pub fn dist() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("components/dist");
    assert!(
        dir.join("bench_passthrough.wasm").exists(),
        "build the guests first: bash components/build-rust.sh"
    );
    dir
}

/// Where the benchmarks cache compiled guests.
pub fn wasm_cache() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-wasm-cache")
}

/// [`registry`] with the guests of [`dist`], on a host pooling `pooling` instances if given.
pub fn wasm_registry(pooling: Option<u32>) -> Arc<Registry> {
    use flowd::component::wasm::{ComponentDir, WasmConfig, WasmHost};
    let registry = Arc::new(registry());
    let host = WasmHost::new(WasmConfig {
        cache_dir: Some(wasm_cache()),
        pooling,
        ..WasmConfig::default()
    })
    .expect("host");
    let report = ComponentDir::load_once(host, registry.clone(), &dist()).expect("loads");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    registry
}

/// `bench/Generate` -> `stage` x [`STAGES`] -> `core/Drop`.
pub fn pipeline(stage: &str, ips: u64, size: usize) -> Graph {
    generated_chain(stage, STAGES, ips, size)
}

/// `bench/Generate` (`ips` IPs of `size` bytes) -> `stage` x `stages` -> `core/Drop`.
pub fn generated_chain(stage: &str, stages: usize, ips: u64, size: usize) -> Graph {
    let mut graph = Graph::new("pipeline");
    graph.add_node("gen", "bench/Generate");
    graph.add_iip(serde_json::json!(ips), PortRef::new("gen", "count"));
    graph.add_iip(serde_json::json!(size), PortRef::new("gen", "size"));
    let mut previous = "gen".to_string();
    for i in 0..stages {
        let id = format!("stage{i}");
        graph.add_node(&id, stage);
        graph.add_edge(PortRef::new(&previous, "out"), PortRef::new(&id, "in"));
        previous = id;
    }
    graph.add_node("sink", "core/Drop");
    graph.add_edge(PortRef::new(&previous, "out"), PortRef::new("sink", "in"));
    graph
}

/// A chain of `length` processes of `component` between the exported ports `IN` and `OUT`.
pub fn exported_chain(component: &str, length: usize) -> Graph {
    let mut graph = Graph::new("chain");
    for i in 0..length {
        graph.add_node(format!("r{i}"), component);
        if i > 0 {
            graph.add_edge(
                PortRef::new(format!("r{}", i - 1), "out"),
                PortRef::new(format!("r{i}"), "in"),
            );
        }
    }
    graph.add_inport("IN", "r0", "in");
    graph.add_outport("OUT", &format!("r{}", length - 1), "out");
    graph
}

/// Builds and runs `graph` as `flowd run` does; the time from start to finish.
pub fn run(registry: &Registry, graph: &Graph) -> Duration {
    run_with(registry, graph, NetworkConfig::default())
}

/// As [`run`], with `config`.
pub fn run_with(registry: &Registry, graph: &Graph, config: NetworkConfig) -> Duration {
    let start = Instant::now();
    let network = Network::start(graph, registry, config)
        .unwrap_or_else(|e| panic!("the bench graph must start: {e}"));
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    start.elapsed()
}

/// A median from criterion's report, in ns per iteration.
pub fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{bench}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["median"]["point_estimate"].as_f64()
}

/// A nats-server (Debian's package) on a free loopback port, with JetStream storing in a
/// temporary directory, killed when dropped; its URL is the second field.
pub struct NatsServer(pub std::process::Child, pub String, tempfile::TempDir);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn nats_server() -> Option<NatsServer> {
    let program = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let dir = tempfile::tempdir().ok()?;
    let child = std::process::Command::new(program)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let address = format!("127.0.0.1:{port}");
    let server = NatsServer(child, format!("nats://{address}"), dir);
    for _ in 0..200 {
        if std::net::TcpStream::connect(&address).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

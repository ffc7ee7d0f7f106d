//! Shared helpers for the integration tests: test-only components and graph builders.
#![allow(dead_code)]

pub mod brokers;
pub mod http;
pub mod native;
pub mod protocol;
pub mod served;
pub mod wasm;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use flowd::component::Component;
use flowd::engine::{NetworkConfig, ProcessContext, ProcessError};
use flowd::graph::PortRef;
use flowd::{ComponentSpec, Graph, Ip, Network, PortSpec, Registry};

/// `process.port`.
pub fn port(process: &str, port: &str) -> PortRef {
    PortRef::new(process, port)
}

/// Adds a chain to `graph`: processes `{prefix}0`, `{prefix}1`, ..., one per item of
/// `components` (its component), each one's `out` wired to the next one's `in`. Returns the
/// ids of the first and the last process.
pub fn add_chain<'a>(
    graph: &mut Graph,
    prefix: &str,
    components: impl IntoIterator<Item = &'a str>,
) -> (String, String) {
    let mut first = None;
    let mut previous: Option<String> = None;
    for (i, component) in components.into_iter().enumerate() {
        let id = format!("{prefix}{i}");
        graph.add_node(id.as_str(), component);
        match &previous {
            Some(previous) => {
                graph.add_edge(port(previous, "out"), port(&id, "in"));
            }
            None => first = Some(id.clone()),
        }
        previous = Some(id);
    }
    (first.unwrap_or_default(), previous.unwrap_or_default())
}

/// Adds a chain like [`add_chain`], fed through the exported inport `IN` and read from the
/// exported outport `OUT`.
pub fn add_exported_chain<'a>(
    graph: &mut Graph,
    prefix: &str,
    components: impl IntoIterator<Item = &'a str>,
) {
    let (first, last) = add_chain(graph, prefix, components);
    graph.add_inport("IN", &first, "in");
    graph.add_outport("OUT", &last, "out");
}

/// Where `program` is in PATH (for `core/Exec` tests, which run real programs).
pub fn which(program: &str) -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").expect("PATH is set"))
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("the tests need {program} in PATH"))
}

/// Registers `component` under `name` with an `in` and an `out` port (plus `extra_in`).
pub fn register_fn<F>(registry: &Registry, name: &str, extra_in: &[&str], make: F)
where
    F: Fn() -> Box<dyn Component> + Send + Sync + 'static,
{
    let mut spec = ComponentSpec::new(name, "a test component")
        .inport(PortSpec::new("in", "all", "input"))
        .outport(PortSpec::new("out", "all", "output"));
    for port in extra_in {
        spec = spec.inport(PortSpec::new(*port, "all", "extra input"));
    }
    registry.register(
        spec,
        Arc::new(move |_: &flowd::component::NodeInfo<'_>| Ok(make())),
    );
}

/// Counters shared between a test and its components.
#[derive(Default)]
pub struct Meter {
    /// IPs a producer has handed to `send` and that `send` accepted.
    pub produced: AtomicU64,
    /// IPs a consumer has received.
    pub consumed: AtomicU64,
    /// The largest `produced - consumed` seen by the producer.
    pub max_in_flight: AtomicI64,
}

/// The core components plus test components:
/// - `test/Generate`: sends `in` (IIP, a count) data IPs numbered from 0;
/// - `test/Panic`: panics on its first IP;
/// - `test/PanicOnDrop`: forwards `in` to `out`, then panics when the engine drops it;
/// - `test/Fail`: returns an error on its first IP;
/// - `test/Metered`: a producer that sends forever, recording into `meter`;
/// - `test/SlowSink`: a consumer that sleeps 1 ms per IP, recording into `meter`;
/// - `test/Busy`: forwards `in` to `out`, computing for 300 ms (without waiting on the
///   engine) between receiving each IP and sending it.
pub fn registry(meter: Arc<Meter>) -> Registry {
    let registry = Registry::with_core();
    register_fn(&registry, "test/Generate", &[], || {
        Box::new(|ctx: &mut ProcessContext| {
            let input = ctx.inport("in")?;
            let out = ctx.outport("out")?;
            let count: u64 = match ctx.recv(input)? {
                Some(ip) => ip.payload().to_string_lossy().parse().unwrap_or(0),
                None => 0,
            };
            for i in 0..count {
                ctx.send(out, Ip::data(i.to_string()))?;
            }
            Ok(())
        })
    });
    register_fn(&registry, "test/Panic", &[], || {
        Box::new(|ctx: &mut ProcessContext| {
            let input = ctx.inport("in")?;
            if ctx.recv(input)?.is_some() {
                panic!("boom in a component");
            }
            Ok(())
        })
    });
    register_fn(&registry, "test/PanicOnDrop", &[], || Box::new(PanicOnDrop));
    register_fn(&registry, "test/Fail", &[], || {
        Box::new(|ctx: &mut ProcessContext| {
            let input = ctx.inport("in")?;
            ctx.recv(input)?;
            Err(ProcessError::failed("deliberate failure"))
        })
    });
    let producer_meter = meter.clone();
    register_fn(&registry, "test/Metered", &[], move || {
        let meter = producer_meter.clone();
        Box::new(move |ctx: &mut ProcessContext| {
            let out = ctx.outport("out")?;
            loop {
                ctx.send(out, Ip::data("x"))?;
                let produced = meter.produced.fetch_add(1, Ordering::SeqCst) + 1;
                let in_flight = produced as i64 - meter.consumed.load(Ordering::SeqCst) as i64;
                meter.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            }
        })
    });
    register_fn(&registry, "test/Busy", &[], || {
        Box::new(|ctx: &mut ProcessContext| {
            let (input, out) = (ctx.inport("in")?, ctx.outport("out")?);
            while let Some(ip) = ctx.recv(input)? {
                std::thread::sleep(std::time::Duration::from_millis(300));
                ctx.send(out, ip)?;
            }
            Ok(())
        })
    });
    let consumer_meter = meter;
    register_fn(&registry, "test/SlowSink", &[], move || {
        let meter = consumer_meter.clone();
        Box::new(move |ctx: &mut ProcessContext| {
            let input = ctx.inport("in")?;
            while ctx.recv(input)?.is_some() {
                meter.consumed.fetch_add(1, Ordering::SeqCst);
                ctx.sleep(std::time::Duration::from_micros(200))?;
            }
            Ok(())
        })
    });
    registry
}

/// Forwards its input, then panics in `drop`: a component whose cleanup is broken.
struct PanicOnDrop;

impl Component for PanicOnDrop {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let out = ctx.outport("out")?;
        while let Some(ip) = ctx.recv(input)? {
            ctx.send(out, ip)?;
        }
        Ok(())
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("boom in a component's drop");
    }
}

/// Waits for `network` like [`Network::wait`], but gives up after `limit`: a test of a hang
/// fails instead of hanging. `None` if the network was still running.
pub fn wait_within(network: Network, limit: std::time::Duration) -> Option<flowd::engine::Outcome> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(network.wait());
    });
    rx.recv_timeout(limit).ok()
}

/// A registry with the test components and a fresh meter.
pub fn test_registry() -> Registry {
    registry(Arc::new(Meter::default()))
}

/// Starts `graph` on `registry` with default settings.
pub fn start(graph: &Graph, registry: &Registry) -> Network {
    Network::start(graph, registry, NetworkConfig::default()).expect("the test graph starts")
}

/// The text of each data IP, and `<`/`>` for brackets.
pub fn texts(ips: &[Ip]) -> Vec<String> {
    ips.iter()
        .map(|ip| match ip {
            Ip::Data(p) => p.to_string(),
            Ip::Open(_) => "<".into(),
            Ip::Close(_) => ">".into(),
        })
        .collect()
}

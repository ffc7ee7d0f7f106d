//! Connectors against the bare libraries they are built on, in the same run.
//!
//! - `http_echo/flowd`: `http/Server -> core/Repeat -> response`, a network answering every
//!   request with its body;
//! - `http_echo/hyper`: a bare hyper server doing the same (the body back), on a tokio runtime
//!   of the same size as flowd's connectors' runtime.
//!
//! Both are driven by the same client: 64 concurrent keep-alive connections (hyper's client on
//! a runtime of its own), each sending 16-byte POSTs one after the other. After the run, a
//! summary prints requests per second (criterion medians), the flowd/hyper ratio, and the p50
//! and p99 latency of a separate timed pass of each.
//!
//! - `nats_relay/flowd`: `nats/Subscribe -> 4 x core/Repeat -> nats/Publish` between two
//!   subjects of a real `nats-server` (started here; Debian's package);
//! - `nats_relay/async-nats`: async-nats alone, subscribing and publishing each message again.
//!
//! Both are driven by one async-nats client that publishes 16-byte messages with at most 1,000
//! not yet relayed back (so that core NATS, which drops for slow consumers, loses nothing),
//! and counts them on the second subject.
//!
//! - `http_client/wasm`: the Rust guest `web/Fetch` (components/rust/web-fetch) making one
//!   granted `wasi:http` GET per IP, through flowd's checked connector;
//! - `http_client/native`: `http/Request` making the same GETs.
//!
//! Both fetch from the bare hyper server above, one request after the other.
//!
//! Run: `cargo bench --bench connectors` (the NATS part is skipped without `nats-server`, the
//! client part without the built components: `bash components/build.sh`).

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{median_ns, nats_server};
use criterion::{Criterion, Throughput, criterion_group};
use flowd::engine::NetworkConfig;
use flowd::graph::PortRef;
use flowd::{Graph, Network, Registry};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::runtime::Runtime;

/// Concurrent clients.
const CLIENTS: usize = 64;

/// Requests each client sends per iteration.
const PER_CLIENT: usize = 50;

/// Requests per iteration in all.
const REQUESTS: usize = CLIENTS * PER_CLIENT;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn runtime(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `http/Server -> core/Repeat -> response`, listening on a free port.
fn flowd_echo() -> (Network, SocketAddr) {
    let mut graph = Graph::new("echo");
    graph.add_node("http", "http/Server");
    graph.add_node("echo", "core/Repeat");
    graph.add_iip(
        serde_json::json!("127.0.0.1:0"),
        PortRef::new("http", "listen"),
    );
    graph.add_edge(PortRef::new("http", "request"), PortRef::new("echo", "in"));
    graph.add_edge(
        PortRef::new("echo", "out"),
        PortRef::new("http", "response"),
    );
    graph.add_outport("LISTENING", "http", "listening");
    let mut network = Network::start(&graph, &Registry::with_core(), NetworkConfig::default())
        .expect("the echo graph starts");
    let address = network
        .take_outport("LISTENING")
        .and_then(|mut port| port.recv())
        .and_then(|ip| ip.payload().to_string_lossy().parse().ok())
        .expect("the server's address");
    (network, address)
}

/// A bare hyper echo server on `runtime`.
fn hyper_echo(runtime: &Runtime) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a port");
    let address = listener.local_addr().expect("its address");
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// Sends `PER_CLIENT` requests from each of `CLIENTS` clients at once; returns the time taken
/// and, when `latencies` is set, each request's latency.
fn drive(
    runtime: &Runtime,
    client: &HttpClient,
    address: SocketAddr,
    latencies: bool,
) -> (Duration, Vec<Duration>) {
    let uri: hyper::Uri = format!("http://{address}/echo").parse().expect("a URI");
    runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            let (client, uri) = (client.clone(), uri.clone());
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..PER_CLIENT {
                    let sent = Instant::now();
                    let request = hyper::Request::post(uri.clone())
                        .body(Full::new(Bytes::from_static(b"0123456789abcdef")))
                        .expect("a request");
                    let response = client.request(request).await.expect("a response");
                    assert!(response.status().is_success(), "{}", response.status());
                    let body = response.into_body().collect().await.expect("a body");
                    assert_eq!(body.to_bytes().len(), 16);
                    if latencies {
                        seen.push(sent.elapsed());
                    }
                }
                seen
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("a client task"));
        }
        (started.elapsed(), all)
    })
}

fn client(runtime: &Runtime) -> HttpClient {
    let _entered = runtime.enter();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CLIENTS)
        .build(connector)
}

/// The p50 and p99 of `latencies`, in microseconds.
fn percentiles(mut latencies: Vec<Duration>) -> (f64, f64) {
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.5), at(0.99))
}

fn bench_http(c: &mut Criterion) {
    let clients = runtime(2);
    let bare = runtime(2);
    let client = client(&clients);
    let (mut network, flowd_address) = flowd_echo();
    let hyper_address = hyper_echo(&bare);
    let mut group = c.benchmark_group("http_echo");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, address) in [("flowd", flowd_address), ("hyper", hyper_address)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| drive(&clients, &client, address, false).0)
                    .sum()
            });
        });
    }
    group.finish();
    for (name, address) in [("flowd", flowd_address), ("hyper", hyper_address)] {
        let mut latencies = Vec::new();
        for _ in 0..10 {
            latencies.extend(drive(&clients, &client, address, true).1);
        }
        let (p50, p99) = percentiles(latencies);
        println!("http_echo/{name}: latency p50 {p50:.0} µs, p99 {p99:.0} µs ({CLIENTS} clients)");
    }
    assert!(network.stop_and_wait(Duration::from_secs(10)));
}

/// Messages relayed per iteration.
const MESSAGES: usize = 20_000;

/// Messages published and not yet back, at most.
const WINDOW: usize = 1_000;

/// `nats/Subscribe -> 4 x core/Repeat -> nats/Publish` from `prefix.in` to `prefix.out`.
fn flowd_relay(url: &str, prefix: &str) -> Network {
    let mut graph = Graph::new("relay");
    graph.add_node("sub", "nats/Subscribe");
    graph.add_node("pub", "nats/Publish");
    for node in ["sub", "pub"] {
        graph.add_iip(serde_json::json!(url), PortRef::new(node, "url"));
    }
    graph.add_iip(
        serde_json::json!(format!("{prefix}.in")),
        PortRef::new("sub", "subject"),
    );
    graph.add_iip(
        serde_json::json!(format!("{prefix}.out")),
        PortRef::new("pub", "subject"),
    );
    let mut last = "sub".to_string();
    for stage in 0..4 {
        let name = format!("r{stage}");
        graph.add_node(&name, "core/Repeat");
        graph.add_edge(PortRef::new(&last, "out"), PortRef::new(&name, "in"));
        last = name;
    }
    graph.add_edge(PortRef::new(&last, "out"), PortRef::new("pub", "in"));
    Network::start(&graph, &Registry::with_core(), NetworkConfig::default())
        .expect("the relay starts")
}

/// async-nats alone relaying `prefix.in` to `prefix.out`, on `runtime`.
fn bare_relay(runtime: &Runtime, url: &str, prefix: &str) {
    let (url, prefix) = (url.to_string(), prefix.to_string());
    let client = runtime
        .block_on(async_nats::connect(url))
        .expect("connects");
    runtime.spawn(async move {
        let mut messages = client
            .subscribe(format!("{prefix}.in"))
            .await
            .expect("subscribes");
        let out = format!("{prefix}.out");
        while let Some(message) = messages.next().await {
            let _ = client.publish(out.clone(), message.payload).await;
        }
    });
}

/// Sends `count` messages to `prefix.in` and waits for them on `prefix.out`.
async fn relay_through(
    client: &async_nats::Client,
    back: &mut async_nats::Subscriber,
    prefix: &str,
    count: usize,
) {
    let subject = format!("{prefix}.in");
    let (mut sent, mut got) = (0, 0);
    while got < count {
        while sent < count && sent - got < WINDOW {
            client
                .publish(subject.clone(), Bytes::from_static(b"0123456789abcdef"))
                .await
                .expect("publishes");
            sent += 1;
        }
        tokio::time::timeout(Duration::from_secs(10), back.next())
            .await
            .expect("a message relayed back within 10 s (was one dropped?)")
            .expect("the subscription lasts");
        got += 1;
    }
}

fn bench_nats(c: &mut Criterion) {
    let Some(server) = nats_server() else {
        println!("nats_relay: skipped, no nats-server (apt-get install nats-server)");
        return;
    };
    // The bare relay's runtime, apart from the driver's (as flowd's connectors have theirs).
    let bare = runtime(2);
    let runtime = runtime(2);
    let mut relay = flowd_relay(&server.1, "flowd");
    bare_relay(&bare, &server.1, "bare");
    let client = runtime
        .block_on(async_nats::connect(server.1.clone()))
        .expect("connects");
    let mut group = c.benchmark_group("nats_relay");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(10);
    for (name, prefix) in [("flowd", "flowd"), ("async-nats", "bare")] {
        let mut back = runtime.block_on(async {
            let mut back = client
                .subscribe(format!("{prefix}.out"))
                .await
                .expect("subscribes");
            // Until the relay is subscribed, probes are lost: send them until one comes back.
            loop {
                client
                    .publish(format!("{prefix}.in"), Bytes::from_static(b"probe"))
                    .await
                    .expect("publishes");
                if tokio::time::timeout(Duration::from_millis(100), back.next())
                    .await
                    .is_ok()
                {
                    break;
                }
            }
            // Probes still on their way are drained.
            while tokio::time::timeout(Duration::from_millis(300), back.next())
                .await
                .is_ok()
            {}
            back
        });
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    runtime.block_on(relay_through(&client, &mut back, prefix, MESSAGES));
                }
                started.elapsed()
            });
        });
    }
    group.finish();
    assert!(relay.stop_and_wait(Duration::from_secs(10)));
}

/// GETs per iteration of the client benchmark.
const GETS: u64 = 500;

/// `stage` fetching the URLs fed to `IN`, the responses dropped.
fn client_graph(stage: &str) -> Graph {
    let mut graph = Graph::new("fetch");
    graph.add_node("fetch", stage);
    graph.add_node("drop", "core/Drop");
    graph.add_edge(PortRef::new("fetch", "out"), PortRef::new("drop", "in"));
    graph.add_inport("IN", "fetch", "in");
    graph
}

fn bench_client(c: &mut Criterion) {
    let dist = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("components/dist");
    if !dist.join("web_fetch.wasm").exists() {
        println!("http_client: skipped, build the components first: bash components/build.sh");
        return;
    }
    let bare = runtime(2);
    let address = hyper_echo(&bare);
    let origin = format!("http://{address}");
    let host = flowd::component::wasm::WasmHost::new(flowd::component::wasm::WasmConfig {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-wasm-cache"),
        ),
        component_grants: [(
            "web/Fetch".to_string(),
            flowd::component::wasm::Grants {
                http: vec![origin.clone()],
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    })
    .expect("a wasm host");
    let registry = Arc::new(Registry::with_core());
    flowd::component::wasm::ComponentDir::load_once(host, registry.clone(), &dist)
        .expect("the components load");
    let mut group = c.benchmark_group("http_client");
    group.throughput(Throughput::Elements(GETS));
    group.sample_size(10);
    for (name, stage) in [("wasm", "web/Fetch"), ("native", "http/Request")] {
        let graph = client_graph(stage);
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let mut network = Network::start(&graph, &registry, NetworkConfig::default())
                        .expect("starts");
                    let mut input = network.take_inport("IN").expect("IN");
                    let started = Instant::now();
                    input
                        .send_batch((0..GETS).map(|n| flowd::Ip::data(format!("{origin}/{n}"))))
                        .expect("sent");
                    input.close();
                    let outcome = network.wait();
                    total += started.elapsed();
                    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_http, bench_nats, bench_client);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let per_second = |ns: f64| REQUESTS as f64 / (ns / 1e9);
    println!("\nsummary (medians, same run; {CLIENTS} keep-alive clients, 16-byte echo):");
    let flowd = median_ns("http_echo", "flowd");
    let hyper = median_ns("http_echo", "hyper");
    if let (Some(flowd), Some(hyper)) = (flowd, hyper) {
        println!("  flowd  {:>9.0} requests/s", per_second(flowd));
        println!("  hyper  {:>9.0} requests/s", per_second(hyper));
        println!("  flowd / hyper: {:.3}", hyper / flowd);
    }
    let per_second = |ns: f64| MESSAGES as f64 / (ns / 1e9);
    let flowd = median_ns("nats_relay", "flowd");
    let bare = median_ns("nats_relay", "async-nats");
    if let (Some(flowd), Some(bare)) = (flowd, bare) {
        println!("\nsummary (medians, same run; NATS relay, 16-byte messages, window {WINDOW}):");
        println!("  flowd       {:>9.0} messages/s", per_second(flowd));
        println!("  async-nats  {:>9.0} messages/s", per_second(bare));
        println!("  flowd / async-nats: {:.3}", bare / flowd);
    }
    let per_second = |ns: f64| GETS as f64 / (ns / 1e9);
    let wasm = median_ns("http_client", "wasm");
    let native = median_ns("http_client", "native");
    if let (Some(wasm), Some(native)) = (wasm, native) {
        println!("\nsummary (medians, same run; one GET after the other):");
        println!(
            "  web/Fetch (wasm)       {:>8.0} requests/s",
            per_second(wasm)
        );
        println!(
            "  http/Request (native)  {:>8.0} requests/s",
            per_second(native)
        );
        println!("  wasm / native: {:.3}", native / wasm);
    }
}

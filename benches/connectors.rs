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
//! Run: `cargo bench --bench connectors`.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::median_ns;
use criterion::{Criterion, Throughput, criterion_group};
use flowd::engine::NetworkConfig;
use flowd::graph::PortRef;
use flowd::{Graph, Network, Registry};
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
    graph.add_iip(serde_json::json!("127.0.0.1:0"), PortRef::new("http", "listen"));
    graph.add_edge(PortRef::new("http", "request"), PortRef::new("echo", "in"));
    graph.add_edge(PortRef::new("echo", "out"), PortRef::new("http", "response"));
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
                let service = hyper::service::service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
                    let body = request
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                });
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

criterion_group!(benches, bench_http);

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
}

//! The protocol server over loopback: edit round trips and graph building, as noflo-ui does them.
//!
//! Each scenario starts a fresh server in this process (`Server::bind` on `127.0.0.1:0`, the
//! core components, the rate limit raised out of the way) and talks to it with real
//! tokio-tungstenite clients (subprotocol `noflo`, Nagle off), all on one tokio multi-thread
//! runtime:
//!
//! 1. **Round trip, 1 client**: `graph:clear`, then 10,000 `graph:addnode` (core/Repeat, a new
//!    node id each) one at a time, each timed from sending the request until its echo
//!    (`graph:addnode` with the request's `responseTo`) has arrived, after a warm-up on
//!    another graph. Median, p90, p99, p99.9, max in µs, and the medians of the first and last
//!    10% of the requests (the graph grows by one node per request).
//! 2. **Round trip, 50 clients**: the same while 49 idle clients are connected, each reading
//!    every frame it is sent (every edit is broadcast to them). Also reported: when the last
//!    idle client had received all 10,000 broadcasts, counted from the first request.
//! 3. **Building a 1,000-node graph**: `graph:clear`, 1,000 `graph:addnode` and 999
//!    `graph:addedge` chaining them (`out -> in`), sent pipelined (every request sent while a
//!    reader collects the echoes; done when the last echo arrives) and one at a time (each
//!    request waits for its echo). Total ms over several runs.
//!
//! Percentiles are nearest-rank over every sample (no criterion statistics: this is a custom
//! harness). Clients and server share the machine's cores, so the figures include the clients'
//! work, and they move with the machine's load: on a VM, waking a thread on an idle vCPU costs
//! tens of µs, which a round trip pays a few times (a busy machine can make it faster).
//!
//! Run: `cargo bench --bench protocol`. One scenario alone: `cargo bench --bench protocol --
//! roundtrip/1` (the names: `roundtrip/1`, `roundtrip/50`, `build/pipelined`,
//! `build/one_at_a_time`; any part of one selects it). As criterion does, it runs as a quick
//! smoke test instead when the arguments contain `--test` or lack `--bench`
//! (`cargo test --benches`, `cargo bench --bench protocol -- --test`).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use flowd::Registry;
use flowd::runtime::{Runtime, RuntimeConfig};
use flowd::server::{Server, ServerConfig};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The component of every node the bench adds.
const COMPONENT: &str = "core/Repeat";

/// The clients' read buffer. tungstenite zero-fills its whole read buffer (128 KiB by default)
/// before every read, which would make 49 in-process idle clients cost more CPU than the server
/// they are meant to load; the frames here are a few hundred bytes.
const CLIENT_READ_BUFFER: usize = 4 * 1024;

/// How long the idle clients may take to receive every broadcast before the bench gives up.
const BROADCAST_WAIT: Duration = Duration::from_secs(120);

/// How much work each scenario does.
struct Sizes {
    quick: bool,
    /// Measured round trips per scenario.
    requests: usize,
    /// Unmeasured round trips first (on another graph).
    warmup: usize,
    /// Clients connected in scenario 2, the measuring one included.
    clients: usize,
    /// Nodes of the graph built in scenario 3.
    nodes: usize,
    /// Runs of each way of building it.
    builds: usize,
    /// Scenarios to run (by a part of their name); all when empty.
    filters: Vec<String>,
}

impl Sizes {
    /// Full sizes under `cargo bench`; a smoke test under `cargo test --benches` or `--test`.
    fn from_args() -> Sizes {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
        let filters = args.into_iter().filter(|a| !a.starts_with('-')).collect();
        if quick {
            Sizes {
                quick,
                requests: 200,
                warmup: 20,
                clients: 50,
                nodes: 50,
                builds: 1,
                filters,
            }
        } else {
            Sizes {
                quick,
                requests: 10_000,
                warmup: 1_000,
                clients: 50,
                nodes: 1_000,
                builds: 7,
                filters,
            }
        }
    }

    /// Whether scenario `name` (`roundtrip/1`, `roundtrip/50`, `build/pipelined`,
    /// `build/one_at_a_time`) is to run.
    fn selected(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }
}

/// A server on a free loopback port, stopped when dropped.
struct BenchServer {
    url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl BenchServer {
    async fn start() -> BenchServer {
        let runtime = Runtime::new(RuntimeConfig::default(), Arc::new(Registry::with_core()));
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            // The bench sends as fast as the server answers: no throttling.
            requests_per_second: u32::MAX,
            request_burst: u32::MAX,
            ..ServerConfig::default()
        };
        let server = Server::bind(config, runtime).await.expect("bind");
        let url = server.url();
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        BenchServer {
            url,
            stop: Some(stop),
        }
    }

    /// Connects a client as noflo-ui does: subprotocol `noflo`, Nagle off.
    async fn client(&self) -> Ws {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .expect("a ws:// URL");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("noflo"));
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .expect("connect");
        ws
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ---- Requests ----------------------------------------------------------------------------

fn request(command: &str, request_id: usize, payload: Value) -> String {
    json!({
        "protocol": "graph",
        "command": command,
        "payload": payload,
        "requestId": request_id.to_string(),
    })
    .to_string()
}

fn clear(graph: &str, request_id: usize) -> String {
    request(
        "clear",
        request_id,
        json!({ "id": graph, "name": graph, "library": "bench" }),
    )
}

/// `graph:addnode` of node `n<i>`, with the metadata an editor sends.
fn addnode(graph: &str, i: usize, request_id: usize) -> String {
    request(
        "addnode",
        request_id,
        json!({
            "graph": graph,
            "id": format!("n{i}"),
            "component": COMPONENT,
            "metadata": { "label": format!("n{i}"), "x": (i % 100) * 120, "y": (i / 100) * 80 },
        }),
    )
}

/// `graph:addedge` from `n<i>.out` to `n<i+1>.in`.
fn addedge(graph: &str, i: usize, request_id: usize) -> String {
    request(
        "addedge",
        request_id,
        json!({
            "graph": graph,
            "src": { "node": format!("n{i}"), "port": "out" },
            "tgt": { "node": format!("n{}", i + 1), "port": "in" },
        }),
    )
}

/// The requests that build a chain of `nodes` nodes: clear, the nodes, then the edges.
fn build_requests(graph: &str, nodes: usize) -> Vec<(&'static str, String)> {
    let mut requests = vec![("clear", clear(graph, 0))];
    requests.extend((0..nodes).map(|i| ("addnode", addnode(graph, i, 1 + i))));
    requests.extend(
        (0..nodes.saturating_sub(1)).map(|i| ("addedge", addedge(graph, i, 1 + nodes + i))),
    );
    requests
}

// ---- Client side -------------------------------------------------------------------------

async fn send<S>(sink: &mut S, text: String)
where
    S: Sink<WsMessage> + Unpin,
    S::Error: Debug,
{
    sink.send(WsMessage::text(text)).await.expect("send");
}

/// The next text frame; panics if the connection ends first.
async fn next_text<S>(stream: &mut S) -> tungstenite::Utf8Bytes
where
    S: Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(WsMessage::Text(text))) => return text,
            Some(Ok(WsMessage::Close(frame))) => panic!("the server closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("connection error: {error}"),
            None => panic!("the connection ended"),
        }
    }
}

/// Panics unless `text` is the echo `graph:<command>` answering request `request_id`.
fn check_echo(text: &str, command: &str, request_id: usize) {
    let frame: Value = serde_json::from_str(text).expect("frames are JSON");
    let expected = request_id.to_string();
    let ok = frame["protocol"] == "graph"
        && frame["command"] == command
        && frame["responseTo"].as_str() == Some(expected.as_str());
    assert!(
        ok,
        "expected the echo graph:{command} of request {request_id}, got {text}"
    );
}

/// Sends `text` and waits for its echo; returns the time in between.
async fn round_trip(ws: &mut Ws, text: String, command: &str, request_id: usize) -> Duration {
    let start = Instant::now();
    send(ws, text).await;
    let echo = next_text(ws).await;
    let elapsed = start.elapsed();
    check_echo(&echo, command, request_id);
    elapsed
}

/// An idle client: reads every frame; reports when it has seen `expected` `graph:addnode`
/// broadcasts of `graph`. Runs until the connection ends or the task is aborted.
async fn idle_client(mut ws: Ws, graph: String, expected: usize, done: oneshot::Sender<Instant>) {
    let in_graph = format!("\"graph\":\"{graph}\"");
    let mut seen = 0;
    let mut done = Some(done);
    while let Some(Ok(message)) = ws.next().await {
        if let WsMessage::Text(text) = message
            && text.contains("\"command\":\"addnode\"")
            && text.contains(&in_graph)
        {
            seen += 1;
            if seen == expected
                && let Some(done) = done.take()
            {
                let _ = done.send(Instant::now());
            }
        }
    }
}

// ---- Scenarios ---------------------------------------------------------------------------

/// What scenarios 1 and 2 measured.
struct RoundTrips {
    samples: Vec<Duration>,
    /// From the first measured request to the last echo of the measuring client.
    elapsed: Duration,
    /// From the first measured request until every idle client had every broadcast.
    broadcasts: Option<Duration>,
}

/// Scenarios 1 and 2: `requests` addnode round trips with `clients` clients connected.
async fn addnode_round_trips(sizes: &Sizes, clients: usize) -> RoundTrips {
    let server = BenchServer::start().await;
    let graph = "bench";
    let mut idle = Vec::new();
    let mut done = Vec::new();
    for _ in 1..clients {
        let (tx, rx) = oneshot::channel();
        let ws = server.client().await;
        idle.push(tokio::spawn(idle_client(
            ws,
            graph.into(),
            sizes.requests,
            tx,
        )));
        done.push(rx);
    }
    let mut ws = server.client().await;

    // Warm up on another graph: connections, allocator, caches.
    let mut request_id = 0;
    round_trip(&mut ws, clear("warmup", request_id), "clear", request_id).await;
    for i in 0..sizes.warmup {
        request_id += 1;
        let text = addnode("warmup", i, request_id);
        round_trip(&mut ws, text, "addnode", request_id).await;
    }
    request_id += 1;
    round_trip(&mut ws, clear(graph, request_id), "clear", request_id).await;

    // Every request made before the clock starts.
    let first_id = request_id + 1;
    let requests: Vec<String> = (0..sizes.requests)
        .map(|i| addnode(graph, i, first_id + i))
        .collect();
    let mut samples = Vec::with_capacity(sizes.requests);
    let start = Instant::now();
    for (i, text) in requests.into_iter().enumerate() {
        samples.push(round_trip(&mut ws, text, "addnode", first_id + i).await);
    }
    let elapsed = start.elapsed();

    let mut broadcasts = None;
    if !done.is_empty() {
        let all = futures_util::future::join_all(done);
        if let Ok(received) = tokio::time::timeout(BROADCAST_WAIT, all).await {
            broadcasts = received
                .into_iter()
                .map(|r| r.ok().map(|at| at - start))
                .collect::<Option<Vec<_>>>()
                .and_then(|all| all.into_iter().max());
        }
    }
    for task in idle {
        task.abort();
    }
    RoundTrips {
        samples,
        elapsed,
        broadcasts,
    }
}

/// Scenario 3, pipelined: every request sent while a reader task collects the echoes.
async fn build_pipelined(server: &BenchServer, nodes: usize) -> Duration {
    let requests = build_requests("built", nodes);
    let expected: Vec<&'static str> = requests.iter().map(|(command, _)| *command).collect();
    let (mut sink, mut stream) = server.client().await.split();
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        for (request_id, command) in expected.into_iter().enumerate() {
            let echo = next_text(&mut stream).await;
            check_echo(&echo, command, request_id);
        }
        Instant::now()
    });
    for (_, text) in requests {
        send(&mut sink, text).await;
    }
    let finished = reader.await.expect("the reader does not panic");
    finished - start
}

/// Scenario 3, one at a time: each request waits for its echo.
async fn build_one_at_a_time(server: &BenchServer, nodes: usize) -> Duration {
    let requests = build_requests("built", nodes);
    let mut ws = server.client().await;
    let start = Instant::now();
    for (request_id, (command, text)) in requests.into_iter().enumerate() {
        round_trip(&mut ws, text, command, request_id).await;
    }
    start.elapsed()
}

// ---- Report ------------------------------------------------------------------------------

/// The nearest-rank percentile `p` (0-100] of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, 50.0)
}

fn print_round_trips(label: &str, r: &RoundTrips) {
    let mut sorted = r.samples.clone();
    sorted.sort_unstable();
    let tenth = (r.samples.len() / 10).max(1);
    println!(
        "  {label:<22} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1}   {:>9.1} {:>9.1}   {:>8.0}",
        us(percentile(&sorted, 50.0)),
        us(percentile(&sorted, 90.0)),
        us(percentile(&sorted, 99.0)),
        us(percentile(&sorted, 99.9)),
        us(*sorted.last().expect("samples")),
        us(median(&r.samples[..tenth])),
        us(median(&r.samples[r.samples.len() - tenth..])),
        r.samples.len() as f64 / r.elapsed.as_secs_f64(),
    );
}

fn print_builds(label: &str, runs: &[Duration]) {
    let mut sorted = runs.to_vec();
    sorted.sort_unstable();
    println!(
        "  {label:<22} {:>8.1} {:>8.1} {:>8.1}",
        ms(sorted[0]),
        ms(percentile(&sorted, 50.0)),
        ms(*sorted.last().expect("runs")),
    );
}

fn main() {
    let sizes = Sizes::from_args();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    if sizes.quick {
        println!("protocol bench: quick run (smoke test); `cargo bench --bench protocol` measures");
    }
    println!(
        "\nflowd protocol server over loopback WebSocket ({cores} cores, tokio multi-thread, \
         server and clients in one process)"
    );
    // Every client is a task on the runtime's workers, as the server's connections are.
    let sizes = Arc::new(sizes);
    let run = tokio.spawn(async move {
        if sizes.selected("roundtrip/1") || sizes.selected("roundtrip/50") {
            println!(
                "\ngraph:addnode -> echo round trip, {} requests one at a time (µs)",
                sizes.requests
            );
            println!(
                "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>9}   {:>9} {:>9}   {:>8}",
                "clients", "median", "p90", "p99", "p99.9", "max", "early", "late", "req/s"
            );
        }
        if sizes.selected("roundtrip/1") {
            print_round_trips("1", &addnode_round_trips(&sizes, 1).await);
        }
        if sizes.selected("roundtrip/50") {
            let label = format!("{} (1 + {} idle)", sizes.clients, sizes.clients - 1);
            let many = addnode_round_trips(&sizes, sizes.clients).await;
            print_round_trips(&label, &many);
            match many.broadcasts {
                Some(all) => println!(
                    "  the {} idle clients had every broadcast {:.1} ms after the first request \
                     (the measuring client finished at {:.1} ms)",
                    sizes.clients - 1,
                    ms(all),
                    ms(many.elapsed)
                ),
                None => println!(
                    "  not every idle client received every broadcast within {BROADCAST_WAIT:?}"
                ),
            }
        }
        if sizes.selected("roundtrip/1") || sizes.selected("roundtrip/50") {
            println!(
                "  (early, late: the medians of the first and last 10% of the requests; the \
                 graph grows by one node per request)"
            );
        }

        let pipelined = sizes.selected("build/pipelined");
        let one_at_a_time = sizes.selected("build/one_at_a_time");
        if pipelined || one_at_a_time {
            println!(
                "\nbuilding a {}-node graph (clear + {} addnode + {} addedge), ms over {} run(s)",
                sizes.nodes,
                sizes.nodes,
                sizes.nodes.saturating_sub(1),
                sizes.builds
            );
            println!("  {:<22} {:>8} {:>8} {:>8}", "", "min", "median", "max");
            let server = BenchServer::start().await;
            let mut runs = (Vec::new(), Vec::new());
            for _ in 0..sizes.builds {
                if pipelined {
                    runs.0.push(build_pipelined(&server, sizes.nodes).await);
                }
                if one_at_a_time {
                    runs.1.push(build_one_at_a_time(&server, sizes.nodes).await);
                }
            }
            if pipelined {
                print_builds("pipelined", &runs.0);
            }
            if one_at_a_time {
                print_builds("one at a time", &runs.1);
            }
        }
    });
    tokio.block_on(run).expect("the bench does not panic");
}

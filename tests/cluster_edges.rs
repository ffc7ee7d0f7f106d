//! Remote edges over a real `nats-server` on loopback: a graph placed over two runtimes (each
//! with its own NATS connection, as two `flowd serve --nats` would have), split into shares
//! that run as networks of their own.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::brokers::{self, NatsPeer};
use common::{Meter, port, register_fn, wait_within};
use flowd::cluster::placement::Placement;
use flowd::cluster::{self, Cluster};
use flowd::component::Component;
use flowd::engine::{NetworkConfig, Outcome, ProcessContext, ProcessError};
use flowd::{Graph, Ip, Network, Registry};
use serde_json::json;

/// Long enough for any of these networks on a loaded machine; a hang fails instead.
const LIMIT: Duration = Duration::from_secs(120);

/// A runtime of the cluster: the test components, the core ones and the remote edges.
fn runtime(url: &str, name: &str, meter: &Arc<Meter>) -> Registry {
    let registry = common::registry(meter.clone());
    let cluster = Cluster::connect(url, name, &Default::default()).expect("joins the cluster");
    cluster::register(&registry, &cluster);
    register_fn(&registry, "test/InOrder", &[], || Box::new(InOrder));
    register_fn(&registry, "test/Brackets", &[], || Box::new(Brackets));
    register_fn(&registry, "test/Show", &[], || Box::new(Show));
    register_fn(&registry, "test/TakeTen", &[], || Box::new(TakeTen));
    registry
}

/// Checks that its inport carries 0, 1, 2, ... and prints how many came.
struct InOrder;

impl Component for InOrder {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        let mut expected = 0u64;
        while let Some(ip) = ctx.recv(input)? {
            let got = ip.payload().to_string_lossy();
            if got != expected.to_string() {
                return Err(ProcessError::failed(format!(
                    "got {got}, expected {expected}"
                )));
            }
            expected += 1;
        }
        ctx.output(format!("{expected} in order"));
        Ok(())
    }
}

/// Sends `<a`, `1`, `<b`, `2`, `b>`, `a>` on its first IP.
struct Brackets;

impl Component for Brackets {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let (input, out) = (ctx.inport("in")?, ctx.outport("out")?);
        ctx.recv(input)?;
        for ip in [
            Ip::open("a"),
            Ip::data("1"),
            Ip::open("b"),
            Ip::data("2"),
            Ip::close("b"),
            Ip::close("a"),
        ] {
            ctx.send(out, ip)?;
        }
        Ok(())
    }
}

/// Prints each IP it receives, brackets with their labels.
struct Show;

impl Component for Show {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        while let Some(ip) = ctx.recv(input)? {
            let line = match &ip {
                Ip::Data(p) => p.to_string(),
                Ip::Open(p) => format!("<{p}"),
                Ip::Close(p) => format!("{p}>"),
            };
            ctx.output(line);
        }
        Ok(())
    }
}

/// Takes ten IPs and ends, closing its inport.
struct TakeTen;

impl Component for TakeTen {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        for _ in 0..10 {
            ctx.recv(input)?;
        }
        Ok(())
    }
}

/// The networks of a placed graph, by runtime.
struct Placed {
    networks: BTreeMap<String, Network>,
}

impl Placed {
    /// Splits `graph` (home runtime `home`) and starts each share on its runtime's registry.
    fn start(graph: &Graph, runtimes: &BTreeMap<&str, Registry>, run: &str) -> Placed {
        let placement =
            Placement::split(graph, "home", run, &BTreeMap::new()).expect("the graph places");
        let networks = placement
            .shares
            .iter()
            .map(|(name, share)| {
                let registry = &runtimes[name.as_str()];
                let network = Network::start(share, registry, NetworkConfig::default())
                    .unwrap_or_else(|e| panic!("the share of {name} starts: {e}"));
                (name.clone(), network)
            })
            .collect();
        Placed { networks }
    }

    /// Waits for every network; fails the test if one hangs.
    fn wait(self) -> BTreeMap<String, Outcome> {
        let waiting: Vec<_> = self
            .networks
            .into_iter()
            .map(|(name, network)| std::thread::spawn(move || (name, wait_within(network, LIMIT))))
            .collect();
        waiting
            .into_iter()
            .map(|handle| {
                let (name, outcome) = handle.join().expect("a waiting thread");
                (
                    name.clone(),
                    outcome.unwrap_or_else(|| panic!("{name} hangs")),
                )
            })
            .collect()
    }
}

/// Two runtimes, `home` and `west`, on the server at `url`.
fn two_runtimes(url: &str, meter: &Arc<Meter>) -> BTreeMap<&'static str, Registry> {
    BTreeMap::from([
        ("home", runtime(url, "home", meter)),
        ("west", runtime(url, "west", meter)),
    ])
}

/// `graph`'s process `id` placed on `runtime`.
fn place(graph: &mut Graph, id: &str, runtime: &str) {
    let node = graph
        .nodes
        .iter_mut()
        .find(|n| n.id == id)
        .expect("the process");
    node.metadata = json!({"runtime": runtime}).as_object().cloned();
}

#[test]
fn a_million_ips_cross_in_order_and_complete() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let runtimes = two_runtimes(&server.address, &Arc::default());
    let mut graph = Graph::new("million");
    graph.add_node("generate", "test/Generate");
    graph.add_node("check", "test/InOrder");
    graph.add_iip(json!(1_000_000), port("generate", "in"));
    graph.add_edge(port("generate", "out"), port("check", "in"));
    place(&mut graph, "check", "west");
    let outcomes = Placed::start(&graph, &runtimes, "r1").wait();
    for outcome in outcomes.values() {
        assert!(outcome.errors.is_empty(), "{outcomes:?}");
    }
    assert_eq!(outcomes["west"].output, ["1000000 in order"]);
}

#[test]
fn brackets_cross_there_and_back() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let runtimes = two_runtimes(&server.address, &Arc::default());
    let mut graph = Graph::new("brackets");
    graph.add_node("make", "test/Brackets");
    graph.add_node("relay", "core/Repeat");
    graph.add_node("show", "test/Show");
    graph.add_iip(json!("go"), port("make", "in"));
    graph.add_edge(port("make", "out"), port("relay", "in"));
    graph.add_edge(port("relay", "out"), port("show", "in"));
    place(&mut graph, "relay", "west");
    let outcomes = Placed::start(&graph, &runtimes, "r1").wait();
    assert!(outcomes["home"].errors.is_empty(), "{outcomes:?}");
    assert!(outcomes["west"].errors.is_empty(), "{outcomes:?}");
    assert_eq!(outcomes["home"].output, ["<a", "1", "<b", "2", "b>", "a>"]);
}

#[test]
fn a_slow_consumer_bounds_what_the_producer_runs_ahead() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let meter = Arc::new(Meter::default());
    let runtimes = two_runtimes(&server.address, &meter);
    let mut graph = Graph::new("slow");
    graph.add_node("produce", "test/Metered");
    graph.add_node("consume", "test/SlowSink");
    graph.add_edge(port("produce", "out"), port("consume", "in"));
    if let Some(flowd::graph::Connection::Edge(edge)) = graph.connections.last_mut() {
        edge.metadata = json!({"capacity": 100}).as_object().cloned();
    }
    place(&mut graph, "consume", "west");
    let placed = Placed::start(&graph, &runtimes, "r1");
    std::thread::sleep(Duration::from_secs(3));
    let consumed = meter.consumed.load(Ordering::SeqCst);
    let ahead = meter.max_in_flight.load(Ordering::SeqCst);
    for network in placed.networks.values() {
        network.stop();
    }
    placed.wait();
    assert!(consumed > 0, "nothing crossed");
    // A local edge holds up to three times its capacity (its queue and a batch at each
    // end); so at most: the producer's local half (300), the remote credit (100) and the
    // consumer's local half (300), far from the millions an unbounded queue takes in 3 s.
    assert!(ahead <= 3 * 100 + 100 + 3 * 100, "ran {ahead} IPs ahead");
}

#[test]
fn a_receiver_whose_downstream_closes_ends_the_sender_too() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let meter = Arc::new(Meter::default());
    let runtimes = two_runtimes(&server.address, &meter);
    let mut graph = Graph::new("closing");
    graph.add_node("produce", "test/Metered");
    graph.add_node("take", "test/TakeTen");
    graph.add_edge(port("produce", "out"), port("take", "in"));
    place(&mut graph, "take", "west");
    let outcomes = Placed::start(&graph, &runtimes, "r1").wait();
    for outcome in outcomes.values() {
        assert!(outcome.errors.is_empty(), "{outcomes:?}");
        assert!(!outcome.stopped);
    }
}

#[test]
fn two_graphs_do_not_share_edges() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let runtimes = two_runtimes(&server.address, &Arc::default());
    let make = |name: &str, count: u64| {
        let mut graph = Graph::new(name);
        graph.add_node("generate", "test/Generate");
        graph.add_node("check", "test/InOrder");
        graph.add_iip(json!(count), port("generate", "in"));
        graph.add_edge(port("generate", "out"), port("check", "in"));
        place(&mut graph, "check", "west");
        graph
    };
    // The same processes and edge keys: only the graph's name and the run tell them apart.
    let first = Placed::start(&make("first", 50_000), &runtimes, "r1");
    let second = Placed::start(&make("second", 70_000), &runtimes, "r1");
    let third = Placed::start(&make("first", 30_000), &runtimes, "r2");
    let outputs: Vec<_> = [first, second, third]
        .into_iter()
        .map(|placed| placed.wait()["west"].output.clone())
        .collect();
    assert_eq!(
        outputs,
        [["50000 in order"], ["70000 in order"], ["30000 in order"]]
    );
}

/// The frame a sender (of life 7) would publish: IPs numbered from `first`, each a data IP.
fn frame(first: u64, payloads: &[&str]) -> Vec<u8> {
    let mut bytes = vec![1];
    // The sender's life, the first IP's number, and how many IPs follow.
    bytes.extend_from_slice(&7u64.to_le_bytes());
    bytes.extend_from_slice(&first.to_le_bytes());
    bytes.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    for payload in payloads {
        bytes.push(0);
        bytes.push(payload.len() as u8);
        bytes.extend_from_slice(payload.as_bytes());
    }
    bytes
}

#[test]
fn lost_ips_end_the_receiver_with_an_error_that_counts_them() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let runtimes = two_runtimes(&server.address, &Arc::default());
    let mut graph = Graph::new("lossy");
    graph.add_node("check", "test/Show");
    graph.add_node("receive", cluster::edge::RECEIVE);
    graph.nodes[1].metadata = json!({"edge": "e", "peer": "east"}).as_object().cloned();
    graph.add_edge(port("receive", "out"), port("check", "in"));
    // A sender that skips IPs 2 to 4, as core NATS does to a consumer that falls behind.
    let mut peer = NatsPeer::connect(&server.address);
    peer.subscribe("flowd.lossy.edge.e.credit");
    let network =
        Network::start(&graph, &runtimes["west"], NetworkConfig::default()).expect("starts");
    // The receiver's first credit: it listens now.
    peer.next_message();
    peer.publish("flowd.lossy.edge.e.data", &frame(0, &["a", "b"]));
    peer.publish("flowd.lossy.edge.e.data", &frame(5, &["f"]));
    peer.sync();
    let outcome = wait_within(network, LIMIT).expect("the receiver ends");
    assert_eq!(outcome.output, ["a", "b"]);
    let (process, message) = &outcome.errors[0];
    assert_eq!(process, "receive");
    assert!(message.contains("3 IPs were lost"), "{message}");
    assert!(message.contains("runtime 'east'"), "{message}");
}

#[test]
fn a_nats_server_that_dies_is_reported_at_both_ends() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let meter = Arc::new(Meter::default());
    let runtimes = two_runtimes(&server.address, &meter);
    let mut graph = Graph::new("dies");
    graph.add_node("produce", "test/Metered");
    graph.add_node("consume", "test/SlowSink");
    graph.add_edge(port("produce", "out"), port("consume", "in"));
    place(&mut graph, "consume", "west");
    let placed = Placed::start(&graph, &runtimes, "r1");
    while meter.consumed.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(server);
    let outcomes = placed.wait();
    for (runtime, outcome) in &outcomes {
        let failures: Vec<_> = outcome
            .errors
            .iter()
            .filter(|(process, _)| process.starts_with("remote-"))
            .collect();
        assert_eq!(failures.len(), 1, "{runtime}: {outcome:?}");
        assert!(
            failures[0]
                .1
                .contains("lost the connection to the NATS server"),
            "{runtime}: {outcome:?}"
        );
        assert!(
            failures[0].1.contains("produce.out>consume.in"),
            "{outcome:?}"
        );
    }
}

/// `generate -> record`, the edge durable and `record` on `west`.
fn durable_graph(name: &str, count: u64, record: &str) -> Graph {
    let mut graph = Graph::new(name);
    graph.add_node("generate", "test/Generate");
    graph.add_node("record", record);
    graph.add_iip(json!(count), port("generate", "in"));
    graph.add_edge(port("generate", "out"), port("record", "in"));
    if let Some(flowd::graph::Connection::Edge(edge)) = graph.connections.last_mut() {
        edge.metadata = json!({"durable": true}).as_object().cloned();
    }
    place(&mut graph, "record", "west");
    graph
}

#[test]
fn a_durable_edge_carries_every_ip_in_order() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let runtimes = two_runtimes(&server.address, &Arc::default());
    let graph = durable_graph("durable", 200_000, "test/InOrder");
    let outcomes = Placed::start(&graph, &runtimes, "r1").wait();
    for outcome in outcomes.values() {
        assert!(outcome.errors.is_empty(), "{outcomes:?}");
    }
    assert_eq!(outcomes["west"].output, ["200000 in order"]);
}

#[test]
fn a_durable_edge_cuts_large_ips_into_frames_the_server_takes() {
    let Some(server) = brokers::nats() else {
        return;
    };
    const COUNT: usize = 24;
    const SIZE: usize = 200 * 1024;
    let runtimes = two_runtimes(&server.address, &Arc::default());
    // Sent in one go, 4.8 MB in all: several frames, each under the server's 1 MiB.
    register_fn(&runtimes["home"], "test/Large", &[], || {
        Box::new(|ctx: &mut ProcessContext| {
            let out = ctx.outport("out")?;
            let ips = (0..COUNT).map(|i| Ip::data(format!("{i:08}{}", "x".repeat(SIZE))));
            ctx.send_batch(out, ips)?;
            Ok(())
        })
    });
    register_fn(&runtimes["west"], "test/Sizes", &[], || {
        Box::new(|ctx: &mut ProcessContext| {
            let (input, out) = (ctx.inport("in")?, ctx.outport("out")?);
            let mut seen = Vec::new();
            while let Some(ip) = ctx.recv(input)? {
                let text = ip.payload().to_string_lossy().into_owned();
                seen.push(format!("{} {}", &text[..8], text.len()));
            }
            ctx.send(out, Ip::data(seen.join(",")))?;
            Ok(())
        })
    });
    let mut graph = Graph::new("large");
    graph.add_node("large", "test/Large");
    graph.add_node("sizes", "test/Sizes");
    graph.add_node("show", "core/Output");
    graph.add_edge(port("large", "out"), port("sizes", "in"));
    if let Some(flowd::graph::Connection::Edge(edge)) = graph.connections.last_mut() {
        edge.metadata = json!({"durable": true}).as_object().cloned();
    }
    graph.add_edge(port("sizes", "out"), port("show", "in"));
    place(&mut graph, "sizes", "west");
    place(&mut graph, "show", "west");
    let outcomes = Placed::start(&graph, &runtimes, "r1").wait();
    for outcome in outcomes.values() {
        assert!(outcome.errors.is_empty(), "{outcomes:?}");
    }
    let expected: Vec<String> = (0..COUNT).map(|i| format!("{i:08} {}", SIZE + 8)).collect();
    assert_eq!(outcomes["west"].output, [expected.join(",")]);
}

/// Records the number each IP carries, a little slowly.
struct Record(Arc<std::sync::Mutex<Vec<u64>>>);

impl Component for Record {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let input = ctx.inport("in")?;
        while let Some(ip) = ctx.recv(input)? {
            let number = ip.payload().to_string_lossy().parse().unwrap_or(u64::MAX);
            self.0.lock().expect("the record").push(number);
            if number % 64 == 0 {
                ctx.sleep(Duration::from_micros(500))?;
            }
        }
        Ok(())
    }
}

#[test]
fn a_durable_edge_resumes_where_a_dead_receiver_left_off() {
    let Some(server) = brokers::nats() else {
        return;
    };
    const COUNT: u64 = 60_000;
    let runtimes = two_runtimes(&server.address, &Arc::default());
    let record = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recording = record.clone();
    register_fn(&runtimes["west"], "test/Record", &[], move || {
        Box::new(Record(recording.clone()))
    });
    let graph = durable_graph("resume", COUNT, "test/Record");
    let placement =
        Placement::split(&graph, "home", "r1", &BTreeMap::new()).expect("the graph places");
    let start = |runtime: &str| {
        Network::start(
            &placement.shares[runtime],
            &runtimes[runtime],
            NetworkConfig::default(),
        )
        .expect("the share starts")
    };
    let home = start("home");
    let first_life = start("west");
    while record.lock().expect("the record").len() < 5_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The receiving side dies mid-stream: what it had passed on and not had taken is lost
    // with it, and what it had not acknowledged waits in the stream.
    drop(first_life);
    let seen_before = record.lock().expect("the record").len();
    assert!(seen_before < COUNT as usize, "it finished before it died");
    let second_life = start("west");
    let outcomes: Vec<Outcome> = [home, second_life]
        .into_iter()
        .map(|network| wait_within(network, LIMIT).expect("each side ends"))
        .collect();
    for outcome in &outcomes {
        assert!(outcome.errors.is_empty(), "{outcomes:?}");
    }
    let record = record.lock().expect("the record").clone();
    // Nothing lost, nothing out of order: dropping what repeats leaves 0, 1, 2, ...
    let mut next = 0u64;
    let mut repeated = 0;
    for number in &record {
        if *number < next {
            repeated += 1;
            continue;
        }
        assert_eq!(*number, next, "lost or reordered around {next}");
        next += 1;
    }
    assert_eq!(next, COUNT);
    // Only what had been taken downstream and not yet acknowledged comes again.
    assert!(repeated <= 64 * 4096, "{repeated} repeated");
    eprintln!("{seen_before} IPs before the crash, {repeated} repeated after it");
}

//! `nats/Publish` and `nats/Subscribe` against a real `nats-server` on loopback, with a NATS
//! peer on a plain socket (tests/common/brokers.rs) on the other side.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::brokers::{self, NatsPeer};
use common::port;
use flowd::engine::{GraphOutport, NetworkConfig, RecvTimeout};
use flowd::{Graph, Ip, Network, Registry};
use serde_json::json;

const MESSAGES: usize = 1000;

fn start(graph: &Graph) -> Network {
    Network::start(graph, &Registry::with_core(), NetworkConfig::default()).expect("starts")
}

#[test]
fn publish_sends_every_packet_in_order_and_flushes_before_it_ends() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let mut peer = NatsPeer::connect(&server.address);
    peer.subscribe("flowd.out");
    let mut graph = Graph::new("publish");
    graph.add_node("pub", "nats/Publish");
    graph.add_iip(
        json!(format!("nats://{}", server.address)),
        port("pub", "url"),
    );
    graph.add_iip(json!("flowd.out"), port("pub", "subject"));
    graph.add_inport("IN", "pub", "in");
    let mut network = start(&graph);
    let mut input = network.take_inport("IN").expect("IN");
    input
        .send_batch((0..MESSAGES).map(|n| Ip::data(n.to_string())))
        .expect("sent");
    input.close();
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    for n in 0..MESSAGES {
        assert_eq!(peer.next_message(), n.to_string().into_bytes());
    }
}

/// Publishes probes on `subject` until one comes out of `out`: the subscription is in place.
fn until_subscribed(peer: &mut NatsPeer, subject: &str, out: &mut GraphOutport) {
    for _ in 0..200 {
        peer.publish(subject, b"probe");
        peer.sync();
        match out.recv_timeout(Duration::from_millis(100)) {
            Ok(_) => return,
            Err(RecvTimeout::Timeout) => {}
            Err(RecvTimeout::Ended) => panic!("the subscriber ended"),
        }
    }
    panic!("the subscriber never received a probe");
}

/// The numbered messages that come out of `out` until `count` have (probes left out).
fn numbered(out: &mut GraphOutport, count: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    while seen.len() < count {
        match out.recv_timeout(Duration::from_secs(30)) {
            Ok(ip) => {
                if let Ok(n) = ip.payload().to_string_lossy().parse() {
                    seen.push(n);
                }
            }
            Err(e) => panic!("after {} messages: {e:?}", seen.len()),
        }
    }
    seen
}

#[test]
fn subscribe_sends_each_message_of_a_wildcard_subject_in_order() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let mut graph = Graph::new("subscribe");
    graph.add_node("sub", "nats/Subscribe");
    graph.add_iip(
        json!(format!("nats://{}", server.address)),
        port("sub", "url"),
    );
    graph.add_iip(json!("flowd.in.>"), port("sub", "subject"));
    graph.add_outport("OUT", "sub", "out");
    let mut network = start(&graph);
    let mut out = network.take_outport("OUT").expect("OUT");
    let mut peer = NatsPeer::connect(&server.address);
    until_subscribed(&mut peer, "flowd.in.probe", &mut out);
    for n in 0..MESSAGES {
        peer.publish(&format!("flowd.in.n{}", n % 3), n.to_string().as_bytes());
    }
    peer.publish("flowd.other", b"-1");
    assert_eq!(
        numbered(&mut out, MESSAGES),
        (0..MESSAGES).collect::<Vec<_>>()
    );
    assert!(network.stop_and_wait(Duration::from_secs(10)));
}

#[test]
fn a_queue_group_shares_the_messages_instead_of_copying_them() {
    let Some(server) = brokers::nats() else {
        return;
    };
    let mut graph = Graph::new("workers");
    for worker in ["w1", "w2"] {
        graph.add_node(worker, "nats/Subscribe");
        graph.add_iip(
            json!(format!("nats://{}", server.address)),
            port(worker, "url"),
        );
        graph.add_iip(json!("flowd.jobs"), port(worker, "subject"));
        graph.add_iip(json!("workers"), port(worker, "queue"));
    }
    graph.add_node("merge", "core/Merge");
    graph.add_edge(port("w1", "out"), port("merge", "in").with_index(0));
    graph.add_edge(port("w2", "out"), port("merge", "in").with_index(1));
    graph.add_outport("OUT", "merge", "out");
    let mut network = start(&graph);
    let mut out = network.take_outport("OUT").expect("OUT");
    let mut peer = NatsPeer::connect(&server.address);
    until_subscribed(&mut peer, "flowd.jobs", &mut out);
    for n in 0..MESSAGES {
        peer.publish("flowd.jobs", n.to_string().as_bytes());
    }
    let seen = numbered(&mut out, MESSAGES);
    let distinct: BTreeSet<usize> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), MESSAGES, "a message came twice");
    // Nothing more comes: without the group each message would have come twice.
    let extra = std::iter::from_fn(|| out.recv_timeout(Duration::from_millis(200)).ok())
        .filter(|ip| ip.payload().to_string_lossy() != "probe")
        .count();
    assert_eq!(extra, 0);
    assert!(network.stop_and_wait(Duration::from_secs(10)));
}

#[test]
fn a_server_that_is_not_there_is_an_error_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    for component in ["nats/Publish", "nats/Subscribe"] {
        let mut graph = Graph::new("nowhere");
        graph.add_node("n", component);
        graph.add_iip(json!(format!("nats://{closed}")), port("n", "url"));
        graph.add_iip(json!("x"), port("n", "subject"));
        let outcome = start(&graph).wait();
        assert_eq!(outcome.errors.len(), 1, "{component}: {:?}", outcome.errors);
        assert!(
            outcome.errors[0].1.contains(&closed.to_string()),
            "{component}: {:?}",
            outcome.errors
        );
    }
}

#[test]
fn a_stop_ends_a_connection_attempt_to_a_server_that_never_answers() {
    // Accepted by the kernel, never answered: the client waits for the server's INFO.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = silent.local_addr().expect("an address");
    for component in ["nats/Publish", "nats/Subscribe"] {
        let mut graph = Graph::new("silent");
        graph.add_node("n", component);
        graph.add_iip(json!(format!("nats://{address}")), port("n", "url"));
        graph.add_iip(json!("x"), port("n", "subject"));
        let mut network = start(&graph);
        std::thread::sleep(Duration::from_millis(200));
        // The attempt itself would go on for 10 s: the stop must not wait for it.
        assert!(
            network.stop_and_wait(Duration::from_secs(5)),
            "{component} held up the stop"
        );
    }
}

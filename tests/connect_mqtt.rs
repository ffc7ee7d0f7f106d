//! `mqtt/Publish` and `mqtt/Subscribe` against a real mosquitto broker on loopback, with
//! mosquitto's own clients (`mosquitto_pub`, `mosquitto_sub`) on the other side.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::brokers;
use common::port;
use flowd::engine::{GraphOutport, NetworkConfig, RecvTimeout};
use flowd::{Graph, Ip, Network, Registry};
use serde_json::json;

const MESSAGES: usize = 300;

fn start(graph: &Graph) -> Network {
    Network::start(graph, &Registry::with_core(), NetworkConfig::default()).expect("starts")
}

/// `mosquitto_pub` publishing each line of `lines` to `topic` at QoS 1.
fn publish_lines(address: &str, topic: &str, lines: &[String]) {
    let (host, port) = address.split_once(':').expect("host:port");
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", host, "-p", port, "-t", topic, "-q", "1", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub runs (package mosquitto-clients)");
    let mut stdin = child.stdin.take().expect("its stdin");
    for line in lines {
        writeln!(stdin, "{line}").expect("written");
    }
    drop(stdin);
    assert!(child.wait().expect("it ends").success());
}

#[test]
fn publish_sends_every_packet_in_order_before_it_ends() {
    let Some(broker) = brokers::mosquitto() else {
        return;
    };
    let (host, broker_port) = broker.address.split_once(':').expect("host:port");
    // -d prints the SUBACK, so the test knows the subscription is in place; stdbuf makes its
    // output line-buffered, or the SUBACK would wait in a pipe buffer until it exits.
    let mut subscriber = Command::new("stdbuf")
        .args([
            "-oL",
            "mosquitto_sub",
            "-h",
            host,
            "-p",
            broker_port,
            "-t",
            "flowd/out",
            "-q",
            "1",
            "-d",
        ])
        .args(["-C", &MESSAGES.to_string(), "-W", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs (package mosquitto-clients)");
    let mut lines = BufReader::new(subscriber.stdout.take().expect("its stdout")).lines();
    for line in lines.by_ref() {
        if line.expect("a line").contains("SUBACK") {
            break;
        }
    }
    let mut graph = Graph::new("publish");
    graph.add_node("pub", "mqtt/Publish");
    graph.add_iip(
        json!(format!("mqtt://{}", broker.address)),
        port("pub", "url"),
    );
    graph.add_iip(json!("flowd/out"), port("pub", "topic"));
    graph.add_inport("IN", "pub", "in");
    let mut network = start(&graph);
    let mut input = network.take_inport("IN").expect("IN");
    input
        .send_batch((0..MESSAGES).map(|n| Ip::data(format!("m{n}"))))
        .expect("sent");
    input.close();
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let received: Vec<String> = lines
        .map_while(Result::ok)
        .filter(|line| !line.starts_with("Client ") && !line.starts_with("Subscribed "))
        .collect();
    let _ = subscriber.wait();
    let expected: Vec<String> = (0..MESSAGES).map(|n| format!("m{n}")).collect();
    assert_eq!(received, expected);
}

/// Publishes probes on `topic` until one comes out of `out`: the subscription is in place.
fn until_subscribed(address: &str, topic: &str, out: &mut GraphOutport) {
    for _ in 0..100 {
        publish_lines(address, topic, &["probe".to_string()]);
        match out.recv_timeout(Duration::from_millis(200)) {
            Ok(_) => return,
            Err(RecvTimeout::Timeout) => {}
            Err(RecvTimeout::Ended) => panic!("the subscriber ended"),
        }
    }
    panic!("the subscriber never received a probe");
}

#[test]
fn subscribe_sends_each_message_of_a_wildcard_topic_in_order() {
    let Some(broker) = brokers::mosquitto() else {
        return;
    };
    let mut graph = Graph::new("subscribe");
    graph.add_node("sub", "mqtt/Subscribe");
    graph.add_iip(
        json!(format!("mqtt://{}", broker.address)),
        port("sub", "url"),
    );
    graph.add_iip(json!("flowd/in/#"), port("sub", "topic"));
    graph.add_outport("OUT", "sub", "out");
    let mut network = start(&graph);
    let mut out = network.take_outport("OUT").expect("OUT");
    until_subscribed(&broker.address, "flowd/in/probe", &mut out);
    let lines: Vec<String> = (0..MESSAGES).map(|n| format!("m{n}")).collect();
    publish_lines(&broker.address, "flowd/in/data", &lines);
    publish_lines(&broker.address, "flowd/other", &["never".to_string()]);
    let mut received = Vec::new();
    while received.len() < MESSAGES {
        match out.recv_timeout(Duration::from_secs(30)) {
            Ok(ip) => {
                let text = ip.payload().to_string_lossy().into_owned();
                if text != "probe" {
                    received.push(text);
                }
            }
            Err(e) => panic!("after {} messages: {e:?}", received.len()),
        }
    }
    assert_eq!(received, lines);
    assert!(network.stop_and_wait(Duration::from_secs(10)));
}

#[test]
fn a_broker_that_is_not_there_or_a_bad_setting_is_an_error_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    for (component, url, qos, expected) in [
        (
            "mqtt/Publish",
            format!("mqtt://{closed}"),
            1,
            closed.to_string(),
        ),
        (
            "mqtt/Subscribe",
            format!("mqtt://{closed}"),
            1,
            closed.to_string(),
        ),
        (
            "mqtt/Subscribe",
            "mqtts://example.com".into(),
            1,
            "mqtts://example.com".into(),
        ),
        (
            "mqtt/Publish",
            format!("mqtt://{closed}"),
            3,
            "'qos'".into(),
        ),
    ] {
        let mut graph = Graph::new("nowhere");
        graph.add_node("n", component);
        graph.add_iip(json!(url), port("n", "url"));
        graph.add_iip(json!("x"), port("n", "topic"));
        graph.add_iip(json!(qos), port("n", "qos"));
        let outcome = start(&graph).wait();
        assert_eq!(outcome.errors.len(), 1, "{component}: {:?}", outcome.errors);
        assert!(
            outcome.errors[0].1.contains(&expected),
            "{component}: {:?}",
            outcome.errors
        );
    }
}

//! `net/TcpListen` and `net/TcpConnect` over real loopback sockets, with plain std sockets on
//! the other side.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::port;
use flowd::engine::NetworkConfig;
use flowd::{Graph, Ip, Network, Registry};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn start(graph: &Graph) -> Network {
    Network::start(graph, &Registry::with_core(), NetworkConfig::default()).expect("starts")
}

/// `net/TcpListen` (called `tcp`) on a free port with `framing`, its `out` through `core/Repeat`
/// back to its `in`: an echo server. Returns the network and the address it listens on.
fn echo_server(framing: &str) -> (Network, String) {
    let mut graph = Graph::new("echo");
    graph.add_node("tcp", "net/TcpListen");
    graph.add_node("echo", "core/Repeat");
    graph.add_iip(json!("127.0.0.1:0"), port("tcp", "address"));
    graph.add_iip(json!(framing), port("tcp", "framing"));
    graph.add_edge(port("tcp", "out"), port("echo", "in"));
    graph.add_edge(port("echo", "out"), port("tcp", "in"));
    graph.add_outport("LISTENING", "tcp", "listening");
    let mut network = start(&graph);
    let address = network
        .take_outport("LISTENING")
        .and_then(|mut port| port.recv_timeout(WAIT).ok())
        .map(|ip| ip.payload().to_string_lossy().into_owned())
        .expect("the listener says where it listens");
    (network, address)
}

fn client(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connects");
    stream.set_read_timeout(Some(WAIT)).expect("a timeout");
    stream
}

#[test]
fn a_listener_echoes_each_clients_lines_back_to_it_alone() {
    let (mut network, address) = echo_server("lines");
    let (mut one, mut two) = (client(&address), client(&address));
    one.write_all(b"a1\na2\n").expect("written");
    two.write_all(b"b1\n").expect("written");
    let mut lines_one = BufReader::new(one.try_clone().expect("a clone")).lines();
    let mut lines_two = BufReader::new(two.try_clone().expect("a clone")).lines();
    assert_eq!(lines_two.next().and_then(Result::ok).as_deref(), Some("b1"));
    assert_eq!(lines_one.next().and_then(Result::ok).as_deref(), Some("a1"));
    assert_eq!(lines_one.next().and_then(Result::ok).as_deref(), Some("a2"));
    // A client that leaves does not disturb the others.
    drop(lines_two);
    drop(two);
    one.write_all(b"a3\n").expect("written");
    assert_eq!(lines_one.next().and_then(Result::ok).as_deref(), Some("a3"));
    assert!(network.stop_and_wait(WAIT));
}

#[test]
fn length_frames_carry_any_bytes() {
    let (mut network, address) = echo_server("length");
    let mut stream = client(&address);
    let body: Vec<u8> = (0..=255).collect();
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .and_then(|()| stream.write_all(&body))
        .expect("written");
    let mut header = [0; 4];
    stream.read_exact(&mut header).expect("a length");
    let mut back = vec![0; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut back).expect("the frame");
    assert_eq!(back, body);
    assert!(network.stop_and_wait(WAIT));
}

#[test]
fn frames_come_out_labelled_with_their_connection() {
    let mut graph = Graph::new("listen");
    graph.add_node("tcp", "net/TcpListen");
    graph.add_iip(json!("127.0.0.1:0"), port("tcp", "address"));
    graph.add_outport("LISTENING", "tcp", "listening");
    graph.add_outport("OUT", "tcp", "out");
    let mut network = start(&graph);
    let address = network
        .take_outport("LISTENING")
        .and_then(|mut port| port.recv_timeout(WAIT).ok())
        .map(|ip| ip.payload().to_string_lossy().into_owned())
        .expect("an address");
    let mut out = network.take_outport("OUT").expect("OUT");
    let mut stream = client(&address);
    stream.write_all(b"hello\n").expect("written");
    let got: Vec<Ip> = (0..3)
        .map(|_| out.recv_timeout(WAIT).expect("an IP"))
        .collect();
    assert_eq!(got, [Ip::open("c1"), Ip::data("hello"), Ip::close("c1")]);
    // With `in` not connected it goes on serving.
    let mut other = client(&address);
    other.write_all(b"again\n").expect("written");
    let got: Vec<Ip> = (0..3)
        .map(|_| out.recv_timeout(WAIT).expect("an IP"))
        .collect();
    assert_eq!(got, [Ip::open("c2"), Ip::data("again"), Ip::close("c2")]);
    // Stop wakes every thread, even with idle clients connected.
    assert!(network.stop_and_wait(WAIT));
}

/// A server on a free port that answers each line with it upper-cased, and closes when the
/// client has closed its side.
fn upper_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut writer = stream.try_clone().expect("a clone");
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if writeln!(writer, "{}", line.to_uppercase()).is_err() {
                    break;
                }
            }
        }
    });
    address
}

/// Runs `ips` through a `net/TcpConnect` to `address`; returns what came out and the errors.
fn talk(address: &str, framing: &str, ips: Vec<Ip>) -> (Vec<String>, Vec<(String, String)>) {
    let mut graph = Graph::new("talk");
    graph.add_node("tcp", "net/TcpConnect");
    graph.add_node("all", "core/Collect");
    graph.add_iip(json!(address), port("tcp", "address"));
    graph.add_iip(json!(framing), port("tcp", "framing"));
    graph.add_edge(port("tcp", "out"), port("all", "in"));
    graph.add_inport("IN", "tcp", "in");
    graph.add_outport("OUT", "all", "out");
    let mut network = start(&graph);
    let mut input = network.take_inport("IN").expect("IN");
    let mut out = network.take_outport("OUT").expect("OUT");
    input.send_batch(ips).expect("sent");
    input.close();
    let collected = out.recv().map(|ip| ip.payload().to_json());
    let outcome = network.wait();
    let lines = match collected {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    (lines, outcome.errors)
}

#[test]
fn a_client_sends_its_packets_and_gets_every_answer_before_it_ends() {
    let address = upper_server();
    let ips = (0..200).map(|n| Ip::data(format!("line {n}"))).collect();
    let (lines, errors) = talk(&address, "lines", ips);
    assert!(errors.is_empty(), "{errors:?}");
    let expected: Vec<String> = (0..200).map(|n| format!("LINE {n}")).collect();
    assert_eq!(lines, expected);
}

#[test]
fn bytes_framing_passes_the_stream_through_as_it_comes() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address").to_string();
    let blob: Vec<u8> = (0..300_000u32).map(|n| b'a' + (n % 26) as u8).collect();
    let sent = blob.clone();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(&sent);
        }
    });
    let (chunks, errors) = talk(&address, "bytes", vec![]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(chunks.concat().into_bytes(), blob);
}

#[test]
fn no_server_or_a_bad_setting_is_an_error_naming_it() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .to_string();
    let (_, errors) = talk(&closed, "lines", vec![Ip::data("x")]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains(&closed), "{errors:?}");
    let (_, errors) = talk(&closed, "chunks", vec![]);
    assert!(errors[0].1.contains("'framing'"), "{errors:?}");
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("an address").to_string();
    let mut graph = Graph::new("taken");
    graph.add_node("tcp", "net/TcpListen");
    graph.add_iip(json!(address.clone()), port("tcp", "address"));
    let outcome = start(&graph).wait();
    assert!(
        outcome.errors[0].1.contains(&address),
        "{:?}",
        outcome.errors
    );
}

//! 100,000 processes in one runtime: processes are tasks on a few worker threads, not OS
//! threads (ADR 0010).

mod common;

use std::time::Duration;

use common::{port, test_registry, wait_within};
use flowd::engine::NetworkConfig;
use flowd::{Graph, Ip, Network};
use serde_json::json;

const PROCESSES: usize = 100_000;

/// Generous: these run in seconds; the margin is for a loaded 2-core machine.
const HANG: Duration = Duration::from_secs(600);

/// A chain of `length` `core/Repeat`, fed through the exported inport `IN` and read from the
/// exported outport `OUT`.
fn chain(length: usize) -> Graph {
    let mut graph = Graph::new("chain");
    for i in 0..length {
        graph.add_node(format!("r{i}"), "core/Repeat");
        if i > 0 {
            graph.add_edge(
                port(&format!("r{}", i - 1), "out"),
                port(&format!("r{i}"), "in"),
            );
        }
    }
    graph.add_inport("IN", "r0", "in");
    graph.add_outport("OUT", &format!("r{}", length - 1), "out");
    graph
}

/// A field of `/proc/self/status` in kB (or a count), if this system has it.
fn status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_chain_of_100_000_processes_carries_1000_ips_on_a_few_threads() {
    let registry = test_registry();
    let mut network = Network::start(&chain(PROCESSES), &registry, NetworkConfig::default())
        .expect("100,000 processes start");
    let mut input = network.take_inport("IN").expect("IN");
    let mut output = network.take_outport("OUT").expect("OUT");
    // Every process is waiting now, and none holds a thread.
    if let Some(threads) = status("Threads:") {
        assert!(
            threads < 1_000,
            "{threads} threads for {PROCESSES} processes"
        );
    }
    let feeder = std::thread::spawn(move || {
        for i in 0..1_000u64 {
            input
                .send(Ip::data(i.to_string()))
                .expect("IN takes the IP");
        }
    });
    for i in 0..1_000u64 {
        let ip = output.recv_timeout(HANG).expect("an IP comes out");
        assert_eq!(ip, Ip::data(i.to_string()), "in order, through every stage");
    }
    feeder.join().expect("the feeder");
    drop(output);
    assert!(network.stop_and_wait(HANG), "the network stops");
    if let Some(peak) = status("VmHWM:") {
        eprintln!("peak RSS with {PROCESSES} processes: {} MiB", peak / 1024);
        assert!(peak < 4 * 1024 * 1024, "peak RSS {peak} kB passes 4 GiB");
    }
}

#[test]
fn a_network_of_100_000_idle_processes_finishes_when_its_inputs_end() {
    let mut graph = Graph::new("idle");
    for i in 0..PROCESSES {
        graph.add_node(format!("r{i}"), "core/Repeat");
        graph.add_inport(&format!("IN{i}"), &format!("r{i}"), "in");
    }
    graph.add_node("count", "core/Count");
    graph.add_edge(port("r0", "out"), port("count", "in"));
    graph.add_node("show", "core/Output");
    graph.add_edge(port("count", "out"), port("show", "in"));
    let registry = test_registry();
    let mut network =
        Network::start(&graph, &registry, NetworkConfig::default()).expect("processes start");
    let mut first = network.take_inport("IN0").expect("IN0");
    first.send(Ip::data("x")).expect("IN0 takes the IP");
    drop(first);
    // Dropping the network's other inport handles closes them: every process ends.
    for i in 1..PROCESSES {
        drop(network.take_inport(&format!("IN{i}")));
    }
    let outcome = wait_within(network, HANG).expect("the network finishes");
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.output, vec![json!(1).to_string()]);
}

//! 100,000 processes in one runtime: processes are tasks on a few worker threads, not OS
//! threads (ADR 0010); 10,000 sandboxed guests likewise. The tests take turns, so that each
//! measures the memory of its own network (the release figures are in `benches/scale.rs`).

mod common;

use std::time::Duration;

use common::{add_exported_chain, port, test_registry, wait_within};
use flowd::engine::NetworkConfig;
use flowd::{Graph, Ip, Network};
use serde_json::json;

const PROCESSES: usize = 100_000;

/// IPs through the long chain (the bench sends 1,000; a debug build takes a while per hop).
const IPS: u64 = 200;

/// Generous: these run in seconds; the margin is for a loaded 2-core machine.
const HANG: Duration = Duration::from_secs(600);

/// A chain of `length` `core/Repeat`, fed through the exported inport `IN` and read from the
/// exported outport `OUT`.
fn chain(length: usize) -> Graph {
    let mut graph = Graph::new("chain");
    add_exported_chain(&mut graph, "r", std::iter::repeat_n("core/Repeat", length));
    graph
}

/// A field of `/proc/self/status` in kB (or a count), if this system has it.
fn status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One test at a time: two networks of 100,000 processes at once would measure each other.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asserts that this program's resident memory, with a network running, is under 4 GiB.
fn assert_resident_under_4_gib(what: &str) {
    if let Some(resident) = status("VmRSS:") {
        eprintln!("resident with {what}: {} MiB", resident / 1024);
        assert!(
            resident < 4 * 1024 * 1024,
            "{resident} kB resident with {what} passes 4 GiB"
        );
    }
}

#[test]
fn a_chain_of_100_000_processes_carries_ips_on_a_few_threads() {
    let _turn = one_at_a_time();
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
        for i in 0..IPS {
            input
                .send(Ip::data(i.to_string()))
                .expect("IN takes the IP");
        }
    });
    for i in 0..IPS {
        let ip = output.recv_timeout(HANG).expect("an IP comes out");
        assert_eq!(ip, Ip::data(i.to_string()), "in order, through every stage");
    }
    feeder.join().expect("the feeder");
    assert_resident_under_4_gib("a chain of 100,000 processes");
    drop(output);
    assert!(network.stop_and_wait(HANG), "the network stops");
}

#[test]
fn a_network_of_100_000_idle_processes_finishes_when_its_inputs_end() {
    let _turn = one_at_a_time();
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

#[test]
fn a_chain_of_10_000_sandboxed_guests_carries_ips_on_a_few_threads() {
    let _turn = one_at_a_time();
    const GUESTS: usize = 10_000;
    let host = common::wasm::host(&[]);
    let registry = common::wasm::registry_with(&host, &[&common::wasm::components_dir()]);
    // Both ways a guest moves IPs: in batches, and one call per IP.
    let mut graph = Graph::new("guests");
    let components = ["bench/Passthrough", "bench/PassthroughSimple"];
    add_exported_chain(&mut graph, "g", components.into_iter().cycle().take(GUESTS));
    let mut network =
        Network::start(&graph, &registry, NetworkConfig::default()).expect("10,000 guests start");
    let mut input = network.take_inport("IN").expect("IN");
    let mut output = network.take_outport("OUT").expect("OUT");
    for i in 0..10u64 {
        input
            .send(Ip::data(i.to_string()))
            .expect("IN takes the IP");
    }
    for i in 0..10u64 {
        let ip = output.recv_timeout(HANG).expect("an IP comes out");
        assert_eq!(ip, Ip::data(i.to_string()), "in order, through every guest");
    }
    // Every guest is alive and waiting now, and none holds a thread.
    if let Some(threads) = status("Threads:") {
        assert!(threads < 1_000, "{threads} threads for {GUESTS} guests");
    }
    assert_resident_under_4_gib("10,000 guests");
    drop(input);
    drop(output);
    let outcome = wait_within(network, HANG).expect("the guests finish when IN ends");
    assert!(
        outcome.errors.is_empty(),
        "{:?}",
        outcome.errors[..outcome.errors.len().min(5)].to_vec()
    );
}

//! `FLOWD_WORKERS` sets how many worker threads run the processes that are tasks. The pool
//! starts once per program, so this file holds a single test.

mod common;

use std::time::Duration;

use common::{add_exported_chain, test_registry};
use flowd::engine::NetworkConfig;
use flowd::{Graph, Ip, Network};

/// The names of this program's threads that are flowd workers.
fn worker_threads() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with("flowd-worker-"))
        .collect()
}

#[test]
fn flowd_workers_sets_the_number_of_worker_threads() {
    // SAFETY: set before any thread of this program reads the environment.
    unsafe { std::env::set_var("FLOWD_WORKERS", "3") };
    let mut graph = Graph::new("chain");
    add_exported_chain(&mut graph, "r", std::iter::repeat_n("core/Repeat", 30));
    let registry = test_registry();
    let mut network =
        Network::start(&graph, &registry, NetworkConfig::default()).expect("the chain starts");
    let mut input = network.take_inport("IN").expect("IN");
    let mut output = network.take_outport("OUT").expect("OUT");
    for i in 0..10 {
        input.send(Ip::data(format!("{i}"))).expect("IN takes IPs");
        let ip = output
            .recv_timeout(Duration::from_secs(60))
            .expect("the IP comes out");
        assert_eq!(ip, Ip::data(format!("{i}")));
    }
    if std::path::Path::new("/proc/self/task").exists() {
        let mut workers = worker_threads();
        workers.sort();
        assert_eq!(
            workers,
            ["flowd-worker-0", "flowd-worker-1", "flowd-worker-2"],
            "FLOWD_WORKERS=3"
        );
    }
    drop(input);
    assert!(network.stop_and_wait(Duration::from_secs(60)), "it stops");
}

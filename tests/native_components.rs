//! Native shared-object components: the C and Rust examples in networks, the operator's
//! allow-list, and a clear refusal of every broken library. Each test builds what it loads
//! (gcc for C, cargo for the Rust cdylib), so nothing depends on a previous build.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::native::{broken, reverse, upper};
use common::port;
use flowd::component::AllowList;
use flowd::component::dylib::{self, DylibError};
use flowd::engine::NetworkConfig;
use flowd::{Graph, Ip, Network, Registry};

fn allow(paths: &[&Path]) -> AllowList {
    AllowList::allowing(paths.iter().map(|p| p.to_path_buf()))
}

/// Runs `IN -> components... -> OUT` on `inputs` and returns what came out.
fn pipeline(registry: &Registry, components: &[&str], inputs: Vec<Ip>) -> Vec<Ip> {
    let mut graph = Graph::new("native");
    for (i, component) in components.iter().enumerate() {
        graph.add_node(format!("n{i}"), *component);
        if i > 0 {
            graph.add_edge(
                port(&format!("n{}", i - 1), "out"),
                port(&format!("n{i}"), "in"),
            );
        }
    }
    graph.add_inport("IN", "n0", "in");
    graph.add_outport("OUT", &format!("n{}", components.len() - 1), "out");
    let mut network = Network::start(&graph, registry, NetworkConfig::default()).unwrap();
    let mut input = network.take_inport("IN").unwrap();
    let mut output = network.take_outport("OUT").unwrap();
    // Fed from its own thread: with bounded edges, feeding everything before reading would
    // wait forever once the edges are full.
    let feeder = std::thread::spawn(move || input.send_batch(inputs));
    let mut received = Vec::new();
    while let Some(ip) = output.recv() {
        received.push(ip);
    }
    feeder.join().unwrap().unwrap();
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    received
}

#[test]
fn the_c_and_rust_examples_run_in_one_network() {
    let registry = Registry::with_core();
    let policy = allow(&[upper(), reverse()]);
    let spec = dylib::load(upper(), &policy, &registry).unwrap();
    assert_eq!(spec.name, "native/Upper");
    assert!(spec.inports[0].required);
    let spec = dylib::load(reverse(), &policy, &registry).unwrap();
    assert_eq!(spec.name, "native/Reverse");

    let out = pipeline(
        &registry,
        &["native/Upper", "core/Repeat", "native/Reverse"],
        vec![Ip::open("g"), Ip::data("abc"), Ip::data(""), Ip::close("g")],
    );
    assert_eq!(
        out,
        vec![Ip::open("g"), Ip::data("CBA"), Ip::data(""), Ip::close("g")]
    );
}

#[test]
fn many_packets_flow_through_a_native_stage_with_backpressure() {
    let registry = Registry::with_core();
    dylib::load(upper(), &allow(&[upper()]), &registry).unwrap();
    let inputs: Vec<Ip> = (0..50_000).map(|i| Ip::data(format!("x{i}"))).collect();
    let out = pipeline(&registry, &["native/Upper"], inputs);
    assert_eq!(out.len(), 50_000);
    assert_eq!(out[49_999], Ip::data("X49999"));
}

#[test]
fn nothing_loads_without_the_operators_permission() {
    let registry = Registry::new();
    let error = dylib::load(upper(), &AllowList::default(), &registry).unwrap_err();
    assert!(matches!(error, DylibError::NotAllowed(_)));
    let message = error.to_string();
    assert!(message.contains("--allow-native"), "{message}");
    assert!(message.contains("full rights"), "{message}");
    assert!(registry.is_empty());

    // A directory allows the files in it, and only those.
    let dir = upper().parent().unwrap();
    assert!(allow(&[dir]).allows(upper()));
    assert!(!allow(&[dir]).allows(reverse()));
    assert_eq!(
        dylib::shared_objects(&allow(&[dir])),
        vec![upper().canonicalize().unwrap()]
    );
}

#[test]
fn broken_libraries_are_refused_with_the_cause() {
    let registry = Registry::new();
    let missing = Path::new("/nonexistent/libnothing.so");
    let error = dylib::load(missing, &allow(&[missing]), &registry).unwrap_err();
    assert!(error.to_string().contains("no such file"), "{error}");

    let (_dir, path) = broken("NO_ENTRY");
    let error = dylib::load(&path, &allow(&[&path]), &registry).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("exports no `flowd_component_v1`"),
        "{error}"
    );

    let (_dir, path) = broken("WRONG_ABI");
    let error = dylib::load(&path, &allow(&[&path]), &registry).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("built for flowd ABI version 99, but this flowd speaks version 1"),
        "{error}"
    );

    let (_dir, path) = broken("NO_NAME");
    let error = dylib::load(&path, &allow(&[&path]), &registry).unwrap_err();
    assert!(error.to_string().contains("library prefix"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("libtext.so");
    std::fs::write(&text, "not a library").unwrap();
    let error = dylib::load(&text, &allow(&[&text]), &registry).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot load it as a shared object"),
        "{error}"
    );
    assert!(registry.is_empty());
}

#[test]
fn a_library_declaring_a_port_twice_is_refused_with_the_file_and_the_port() {
    let registry = Registry::new();
    let (_dir, path) = broken("PORT_TWICE");
    let error = dylib::load(&path, &allow(&[&path]), &registry).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("inport 'IN' is declared twice"),
        "{message}"
    );
    assert!(registry.is_empty());
}

#[test]
fn a_library_cannot_take_a_core_name_or_another_librarys_name() {
    let registry = Registry::with_core();
    let core_count = registry.spec("core/Count").unwrap();
    let (_dir, path) = broken("CORE_NAME");
    let error = dylib::load(&path, &allow(&[&path]), &registry).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("claims the name 'core/Count', which is reserved"),
        "{message}"
    );
    assert_eq!(registry.spec("core/Count").unwrap(), core_count);
    assert_eq!(
        registry.origin("core/Count"),
        Some(flowd::component::Origin::Builtin)
    );

    // The same library from a second file: the first keeps the name.
    let (_first_dir, first) = broken("FAILS");
    let (_second_dir, second) = broken("FAILS");
    dylib::load(&first, &allow(&[&first]), &registry).unwrap();
    let error = dylib::load(&second, &allow(&[&second]), &registry).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "claims the name 'test/Fails', which {} registered already",
            first.display()
        )),
        "{message}"
    );
    assert_eq!(
        registry.origin("test/Fails"),
        Some(flowd::component::Origin::File(first.clone()))
    );
}

#[test]
fn a_failing_native_process_reports_its_message_and_the_rest_goes_on() {
    let registry = Registry::with_core();
    let (_dir, path) = broken("FAILS");
    dylib::load(&path, &allow(&[&path]), &registry).unwrap();
    let mut graph = Graph::new("fails");
    graph.add_node("bad", "test/Fails");
    graph.add_node("fine", "core/Output");
    graph.add_iip("x".into(), port("bad", "in"));
    graph.add_iip("still here".into(), port("fine", "in"));
    let outcome = Network::start(&graph, &registry, NetworkConfig::default())
        .unwrap()
        .wait();
    assert_eq!(
        outcome.errors,
        vec![(
            "bad".to_string(),
            "refusing the first packet on purpose".to_string()
        )]
    );
    assert_eq!(outcome.output, vec!["still here".to_string()]);
}

#[test]
fn stop_ends_a_native_process_waiting_for_input() {
    let registry = Registry::with_core();
    dylib::load(upper(), &allow(&[upper()]), &registry).unwrap();
    let mut graph = Graph::new("idle");
    graph.add_node("u", "native/Upper");
    graph.add_inport("IN", "u", "in");
    let mut network = Network::start(&graph, &registry, NetworkConfig::default()).unwrap();
    let _input = network.take_inport("IN").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    assert!(network.stop_and_wait(Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_secs(5));
}

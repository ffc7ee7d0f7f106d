//! The sandbox: each hostile guest fails alone, with a clear error; grants open exactly what
//! they name.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::port;
use common::wasm::{host, hostile_dir, registry_with};
use flowd::component::wasm::{DirGrant, Grants, LoadError};
use flowd::engine::{NetworkConfig, Outcome};
use flowd::{Graph, Network, Registry};
use serde_json::json;

/// A graph of `component` with `iip` on its `in`, its `out` shown, and a bystander process
/// that must finish whatever the guest does.
fn hostile_graph(component: &str, iip: serde_json::Value) -> Graph {
    let mut graph = Graph::new("hostile");
    graph.add_node("guest", component);
    graph.add_iip(iip, port("guest", "in"));
    graph.add_node("show", "core/Output");
    if matches!(
        component,
        "hostile/ReadFile" | "hostile/ReadEnv" | "hostile/WriteFile"
    ) {
        graph.add_edge(port("guest", "out"), port("show", "in"));
    }
    graph.add_node("bystander", "core/Output");
    graph.add_iip(json!("bystander done"), port("bystander", "in"));
    graph
}

fn run(registry: &Registry, graph: &Graph) -> Outcome {
    Network::start(graph, registry, NetworkConfig::default())
        .expect("starts")
        .wait()
}

fn guest_error(outcome: &Outcome) -> String {
    assert!(
        outcome.output.contains(&"bystander done".to_string()),
        "{outcome:?}"
    );
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert_eq!(outcome.errors[0].0, "guest");
    outcome.errors[0].1.clone()
}

fn cpu(ms: u64) -> Grants {
    Grants {
        cpu_ms: Some(ms),
        ..Grants::default()
    }
}

#[test]
fn an_infinite_loop_is_stopped_at_its_cpu_limit() {
    let registry = registry_with(&host(&[("hostile/Spin", cpu(200))]), &[&hostile_dir()]);
    let outcome = run(&registry, &hostile_graph("hostile/Spin", json!("go")));
    let error = guest_error(&outcome);
    assert!(error.contains("without calling the host"), "{error}");
    assert!(error.contains("200 ms"), "{error}");
}

#[test]
fn a_memory_bomb_hits_its_memory_limit() {
    let grants = Grants {
        memory_mib: Some(16),
        ..Grants::default()
    };
    let registry = registry_with(&host(&[("hostile/MemoryBomb", grants)]), &[&hostile_dir()]);
    let outcome = run(&registry, &hostile_graph("hostile/MemoryBomb", json!("go")));
    let error = guest_error(&outcome);
    assert!(error.contains("memory limit of 16 MiB"), "{error}");
}

#[test]
fn a_panic_is_a_trap_with_the_panic_message() {
    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let outcome = run(&registry, &hostile_graph("hostile/Panic", json!("go")));
    let error = guest_error(&outcome);
    assert!(error.starts_with("trapped"), "{error}");
    assert!(error.contains("panicked"), "{error}");
}

#[test]
fn a_failure_above_a_long_stack_trace_keeps_its_cause() {
    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let outcome = run(
        &registry,
        &hostile_graph("hostile/Panic", json!("traceback")),
    );
    let error = guest_error(&outcome);
    assert!(error.starts_with("trapped"), "{error}");
    assert!(
        error.contains("Error: hostile/Panic: the real cause, above its stack trace"),
        "{error}"
    );
    assert!(error.contains("at frame5 (guest.js:15:5)"), "{error}");
}

#[test]
fn an_unreachable_instruction_is_a_trap() {
    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let outcome = run(&registry, &hostile_graph("hostile/Trap", json!("go")));
    let error = guest_error(&outcome);
    assert!(error.contains("unreachable"), "{error}");
}

#[test]
fn files_are_closed_without_a_grant_and_readable_with_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the secret").expect("written");
    let graph = hostile_graph("hostile/ReadFile", json!(secret.display().to_string()));

    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let error = guest_error(&run(&registry, &graph));
    assert!(error.contains("secret.txt"), "{error}");

    let grants = Grants {
        dirs: vec![DirGrant {
            host: dir.path().to_path_buf(),
            guest: None,
            write: false,
        }],
        ..Grants::default()
    };
    let registry = registry_with(&host(&[("hostile/ReadFile", grants)]), &[&hostile_dir()]);
    let outcome = run(&registry, &graph);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(
        outcome.output.contains(&"the secret".to_string()),
        "{outcome:?}"
    );
}

#[test]
fn writing_needs_a_read_write_grant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("out.txt");
    let graph = hostile_graph("hostile/WriteFile", json!(target.display().to_string()));
    let grant = |write: bool| Grants {
        dirs: vec![DirGrant {
            host: dir.path().to_path_buf(),
            guest: None,
            write,
        }],
        ..Grants::default()
    };

    // No grant, then a read-only one: the write is refused and nothing is written.
    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let error = guest_error(&run(&registry, &graph));
    assert!(error.contains("out.txt"), "{error}");
    let registry = registry_with(
        &host(&[("hostile/WriteFile", grant(false))]),
        &[&hostile_dir()],
    );
    let error = guest_error(&run(&registry, &graph));
    assert!(error.contains("out.txt"), "{error}");
    assert!(!target.exists(), "a read-only grant let the guest write");

    // A read-write grant: the file is written.
    let registry = registry_with(
        &host(&[("hostile/WriteFile", grant(true))]),
        &[&hostile_dir()],
    );
    let outcome = run(&registry, &graph);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(
        outcome.output.contains(&"written".to_string()),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&target).expect("written"),
        "written by a guest\n"
    );
}

#[test]
fn a_directory_grant_in_node_metadata_works_when_graph_grants_are_trusted() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("f.txt"), "from metadata").expect("written");
    let mut graph = hostile_graph(
        "hostile/ReadFile",
        json!(dir.path().join("f.txt").display().to_string()),
    );
    graph.nodes[0].metadata = json!({"grants": {"dirs": [{"host": dir.path()}]}})
        .as_object()
        .cloned();
    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let outcome = run(&registry, &graph);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(outcome.output.contains(&"from metadata".to_string()));
}

#[test]
fn the_environment_is_empty_without_a_grant() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("FLOWD_TEST_SECRET", "hunter2") };
    let graph = hostile_graph("hostile/ReadEnv", json!("FLOWD_TEST_SECRET"));
    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let error = guest_error(&run(&registry, &graph));
    assert!(error.contains("not set"), "{error}");

    let grants = Grants {
        env: vec!["FLOWD_TEST_SECRET".into()],
        ..Grants::default()
    };
    let registry = registry_with(&host(&[("hostile/ReadEnv", grants)]), &[&hostile_dir()]);
    let outcome = run(&registry, &graph);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(outcome.output.contains(&"hunter2".to_string()));
}

#[test]
fn stdout_and_stderr_become_output_of_the_process() {
    let registry = registry_with(&host(&[]), &[&hostile_dir()]);
    let outcome = run(&registry, &hostile_graph("hostile/Print", json!("printed")));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let printed = outcome
        .output
        .iter()
        .filter(|l| l.contains("printed"))
        .count();
    assert_eq!(printed, 2, "{:?}", outcome.output);
}

#[test]
fn the_wall_clock_reads_the_epoch_without_a_grant_and_the_time_with_one() {
    let mut graph = Graph::new("clock");
    graph.add_node("guest", "hostile/Clock");
    let seen = |grants: &[(&str, Grants)]| {
        let registry = registry_with(&host(grants), &[&hostile_dir()]);
        let outcome = run(&registry, &graph);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let line = outcome
            .output
            .iter()
            .find_map(|l| l.strip_prefix("wall clock: "))
            .unwrap_or_else(|| panic!("no clock line in {:?}", outcome.output))
            .to_string();
        line.parse::<u64>().expect("seconds")
    };
    assert_eq!(seen(&[]), 0, "the guest read the host's wall clock");

    let granted = Grants {
        wall_clock: Some(true),
        ..Grants::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let seconds = seen(&[("hostile/Clock", granted)]);
    assert!(seconds.abs_diff(now) < 3600, "{seconds} is not about {now}");
}

#[test]
fn a_guest_cannot_take_a_core_name_and_a_later_file_never_shadows_an_earlier_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = dir.path().join("a_fake_count.wasm");
    std::fs::copy(hostile_dir().join("hostile_core_name.wasm"), &fake).expect("copied");
    // The same component twice: the first file (in name order) keeps its name.
    let first = dir.path().join("b_print.wasm");
    let second = dir.path().join("c_print.wasm");
    for file in [&first, &second] {
        std::fs::copy(hostile_dir().join("hostile_print.wasm"), file).expect("copied");
    }
    let registry = std::sync::Arc::new(Registry::with_core());
    let core_count = registry.spec("core/Count").expect("core/Count");
    let report =
        flowd::component::wasm::ComponentDir::load_once(host(&[]), registry.clone(), dir.path())
            .expect("readable");
    assert_eq!(report.loaded, vec!["hostile/Print"]);
    let failed: Vec<String> = report.failed.iter().map(ToString::to_string).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].contains(&fake.display().to_string())
            && failed[0].contains("claims the name 'core/Count', which is reserved"),
        "{failed:?}"
    );
    assert!(
        failed[1].contains(&second.display().to_string())
            && failed[1].contains(&format!(
                "claims the name 'hostile/Print', which {} registered already",
                first.display()
            )),
        "{failed:?}"
    );
    assert_eq!(registry.spec("core/Count"), Some(core_count));
    assert_eq!(
        registry.origin("hostile/Print"),
        Some(flowd::component::Origin::File(first))
    );
}

#[test]
fn stop_ends_a_spinning_guest_promptly() {
    let registry = registry_with(&host(&[("hostile/Spin", cpu(600_000))]), &[&hostile_dir()]);
    let mut graph = Graph::new("spin");
    graph.add_node("guest", "hostile/Spin");
    graph.add_iip(json!("go"), port("guest", "in"));
    let mut network = Network::start(&graph, &registry, NetworkConfig::default()).expect("starts");
    std::thread::sleep(Duration::from_millis(300));
    assert!(network.is_running());
    let stopping = Instant::now();
    assert!(
        network.stop_and_wait(Duration::from_secs(2)),
        "the guest still spins"
    );
    eprintln!("a spinning guest stopped in {:?}", stopping.elapsed());
}

#[test]
fn spinning_guests_do_not_starve_the_processes_that_share_their_workers() {
    // More spinners than worker threads: every worker has one. Their CPU limit is far off, so
    // only the yield at each epoch tick lets the chain beside them move.
    let registry = registry_with(&host(&[("hostile/Spin", cpu(600_000))]), &[&hostile_dir()]);
    let mut graph = Graph::new("crowded");
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    for i in 0..workers * 3 {
        graph.add_node(format!("spin{i}"), "hostile/Spin");
        graph.add_iip(json!("go"), port(&format!("spin{i}"), "in"));
    }
    common::add_exported_chain(&mut graph, "r", std::iter::repeat_n("core/Repeat", 10));
    let mut network = Network::start(&graph, &registry, NetworkConfig::default()).expect("starts");
    let mut input = network.take_inport("IN").expect("IN");
    let mut output = network.take_outport("OUT").expect("OUT");
    for i in 0..20 {
        input
            .send(flowd::Ip::data(format!("{i}")))
            .expect("IN takes the IP");
        let ip = output
            .recv_timeout(Duration::from_secs(60))
            .expect("the chain moves beside the spinners");
        assert_eq!(ip, flowd::Ip::data(format!("{i}")));
    }
    assert!(network.is_running(), "the spinners still spin");
    assert!(
        network.stop_and_wait(Duration::from_secs(10)),
        "stop ends the spinners"
    );
}

fn load_error(file: &Path) -> LoadError {
    match host(&[]).load(file) {
        Ok(_) => panic!("{} must not load", file.display()),
        Err(error) => error,
    }
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("text.wasm");
    std::fs::write(&file, "definitely not wasm").expect("written");
    let error = load_error(&file);
    assert!(matches!(error, LoadError::NotWasm { .. }), "{error}");
    assert!(error.to_string().contains("not a WebAssembly file"));
}

#[test]
fn a_core_module_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("core.wasm");
    std::fs::write(&file, b"\0asm\x01\0\0\0").expect("written");
    let error = load_error(&file);
    assert!(matches!(error, LoadError::CoreModule { .. }), "{error}");
    assert!(error.to_string().contains("wasm-tools component new"));
}

#[test]
fn a_component_of_another_world_is_refused() {
    let error = load_error(&hostile_dir().join("hostile_other_world.wasm"));
    assert!(matches!(error, LoadError::WrongWorld { .. }), "{error}");
}

#[test]
fn a_truncated_component_is_refused() {
    let bytes = std::fs::read(hostile_dir().join("hostile_print.wasm")).expect("built");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cut.wasm");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("written");
    let error = load_error(&file);
    assert!(matches!(error, LoadError::Invalid { .. }), "{error}");
}

#[test]
fn a_bad_file_in_a_component_directory_does_not_stop_the_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bad.wasm"), "nope").expect("written");
    std::fs::copy(
        hostile_dir().join("hostile_print.wasm"),
        dir.path().join("print.wasm"),
    )
    .expect("copied");
    let registry = std::sync::Arc::new(Registry::with_core());
    let report =
        flowd::component::wasm::ComponentDir::load_once(host(&[]), registry.clone(), dir.path())
            .expect("readable");
    assert_eq!(report.loaded, vec!["hostile/Print"]);
    assert_eq!(report.failed.len(), 1);
    assert!(registry.spec("hostile/Print").is_some());
}

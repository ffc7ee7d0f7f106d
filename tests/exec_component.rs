//! `core/Exec` with real programs (`sh`, `cat`, `tr`, `sleep`): each framing, brackets,
//! failures and restarts, backpressure from a child that does not read, stop while a child is
//! busy, and the operator's allow-list.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{port, which};
use flowd::component::{AllowList, exec};
use flowd::engine::{Event, GraphInport, NetworkConfig, Outcome};
use flowd::{Graph, Ip, Network, Registry};
use serde_json::{Value, json};

/// The core components, with `core/Exec` allowed to run the programs the tests use.
fn registry() -> Registry {
    let registry = Registry::with_core();
    let allowed = ["sh", "cat", "tr", "sleep"].map(which);
    exec::register(&registry, AllowList::allowing(allowed));
    registry
}

/// `IN -> x (core/Exec, configured by settings) -> OUT`.
fn exec_graph(settings: &[(&str, Value)]) -> Graph {
    let mut graph = exec_to_out(settings);
    graph.add_inport("IN", "x", "in");
    graph
}

/// `x (core/Exec, configured by settings) -> OUT`.
fn exec_to_out(settings: &[(&str, Value)]) -> Graph {
    let mut graph = Graph::new("exec");
    graph.add_node("x", "core/Exec");
    for (name, value) in settings {
        graph.add_iip(value.clone(), port("x", name));
    }
    graph.add_outport("OUT", "x", "out");
    graph
}

/// A shell command as settings.
fn shell(script: &str) -> Vec<(&'static str, Value)> {
    vec![("program", json!("sh")), ("args", json!(["-c", script]))]
}

/// Runs `graph` on `registry`, feeding `inputs` into IN; what came out of OUT, and how it
/// ended.
fn run(registry: &Registry, graph: &Graph, inputs: Vec<Ip>) -> (Vec<Ip>, Outcome) {
    let mut network = Network::start(graph, registry, NetworkConfig::default()).unwrap();
    let mut input = network.take_inport("IN").unwrap();
    let mut output = network.take_outport("OUT").unwrap();
    // A failing child may stop reading, so the feeder's result is not the test's business.
    let feeder = std::thread::spawn(move || {
        let _ = input.send_batch(inputs);
    });
    let mut received = Vec::new();
    while let Some(ip) = output.recv() {
        received.push(ip);
    }
    feeder.join().unwrap();
    (received, network.wait())
}

/// Runs and asserts that nothing failed.
fn through(settings: &[(&str, Value)], inputs: Vec<Ip>) -> Vec<Ip> {
    let (received, outcome) = run(&registry(), &exec_graph(settings), inputs);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    received
}

fn data(items: &[&str]) -> Vec<Ip> {
    items.iter().map(|s| Ip::data(*s)).collect()
}

#[test]
fn a_program_transforms_lines() {
    let received = through(
        &[("program", json!("tr")), ("args", json!(["a-z", "A-Z"]))],
        data(&["hello", "", "world"]),
    );
    assert_eq!(received, data(&["HELLO", "", "WORLD"]));
}

#[test]
fn the_python_example_keeps_substreams_whole() {
    let registry = registry();
    exec::register(&registry, AllowList::allowing([which("python3")]));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("components/exec/title.py");
    let settings = [
        ("program", json!("python3")),
        ("args", json!([script.to_str().unwrap()])),
        ("brackets", json!({"open": "<<", "close": ">>"})),
    ];
    let inputs = vec![
        Ip::open("doc"),
        Ip::data("hello world"),
        Ip::data("flow-based programming"),
        Ip::close("doc"),
    ];
    let (received, outcome) = run(&registry, &exec_graph(&settings), inputs);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(
        received,
        vec![
            Ip::open("doc"),
            Ip::data("Hello World"),
            Ip::data("Flow-Based Programming"),
            Ip::close("doc"),
        ]
    );
}

#[test]
fn every_framing_carries_any_bytes_through_cat() {
    let inputs: Vec<Ip> = (0..2000u32)
        .map(|i| {
            let mut bytes = i.to_le_bytes().to_vec();
            bytes.extend_from_slice(b"\n\0,:12:x");
            Ip::data(bytes)
        })
        .collect();
    for framing in ["length", "netstring"] {
        let received = through(
            &[("program", json!("cat")), ("framing", json!(framing))],
            inputs.clone(),
        );
        assert_eq!(received, inputs, "{framing}");
    }
    let lines = data(&["one", "two words", "ünïcode"]);
    let received = through(
        &[("program", json!("cat")), ("framing", json!("lines"))],
        lines.clone(),
    );
    assert_eq!(received, lines);
}

#[test]
fn frames_written_by_the_program_itself_are_read() {
    let cases = [
        (
            "lines",
            r"printf 'a\r\nb\n\nlast'",
            data(&["a", "b", "", "last"]),
        ),
        (
            "netstring",
            r"printf '5:hello,0:,3:a,b,'",
            data(&["hello", "", "a,b"]),
        ),
        (
            "length",
            r"printf '\000\000\000\005hello\000\000\000\000'",
            data(&["hello", ""]),
        ),
    ];
    for (framing, script, expected) in cases {
        let mut settings = shell(script);
        settings.push(("framing", json!(framing)));
        let (received, outcome) = run(&registry(), &generator(&settings), vec![]);
        assert!(outcome.errors.is_empty(), "{framing}: {:?}", outcome.errors);
        assert_eq!(received, expected, "{framing}");
    }
}

/// As [`exec_graph`], but with nothing connected to the program's input (IN feeds a spare
/// process), so that the program is a generator.
fn generator(settings: &[(&str, Value)]) -> Graph {
    let mut graph = exec_to_out(settings);
    graph.add_node("spare", "core/Drop");
    graph.add_inport("IN", "spare", "in");
    graph
}

#[test]
fn brackets_travel_as_marker_frames_or_are_dropped() {
    let inputs = vec![
        Ip::open("file"),
        Ip::data("x"),
        Ip::close("file"),
        Ip::data("y"),
    ];
    let markers = json!({"open": "<<", "close": ">>"});
    for framing in ["lines", "length", "netstring"] {
        let received = through(
            &[
                ("program", json!("cat")),
                ("framing", json!(framing)),
                ("brackets", markers.clone()),
            ],
            inputs.clone(),
        );
        assert_eq!(received, inputs, "{framing}");
    }
    // What the child sees, and brackets it makes itself.
    let mut settings =
        shell(r#"while read -r line; do echo "[$line]"; done; printf '<<made\n>>made\n'"#);
    settings.push(("brackets", markers));
    assert_eq!(
        through(&settings, inputs.clone()),
        vec![
            Ip::data("[<<file]"),
            Ip::data("[x]"),
            Ip::data("[>>file]"),
            Ip::data("[y]"),
            Ip::open("made"),
            Ip::close("made"),
        ]
    );
    assert_eq!(
        through(&[("program", json!("cat"))], inputs),
        data(&["x", "y"])
    );
}

#[test]
fn the_environment_is_clean_and_set_by_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    let mut settings = shell(r#"echo "$GREETING from $(pwd)"; echo "HOME=${HOME-unset}""#);
    settings.push(("env", json!({"GREETING": "hi"})));
    settings.push(("cwd", json!(cwd.to_str().unwrap())));
    let (received, outcome) = run(&registry(), &generator(&settings), vec![]);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(
        received,
        data(&[&format!("hi from {}", cwd.display()), "HOME=unset"])
    );
}

#[test]
fn a_crashing_program_fails_its_process_only_with_its_stderr() {
    let registry = registry();
    let mut graph = exec_graph(&shell(
        r#"read -r line; echo "cannot handle $line" >&2; exit 3"#,
    ));
    // A neighbour that has nothing to do with it.
    graph.add_node("other", "core/Output");
    graph.add_iip(json!("still here"), port("other", "in"));
    let (received, outcome) = run(&registry, &graph, data(&["bad"]));
    assert!(received.is_empty());
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    let (node, message) = &outcome.errors[0];
    assert_eq!(node, "x");
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(message.contains("cannot handle bad"), "{message}");
    assert!(outcome.output.contains(&"cannot handle bad".to_string()));
    assert!(outcome.output.contains(&"still here".to_string()));
}

#[test]
fn bad_output_and_bad_settings_are_errors_naming_the_cause() {
    let registry = registry();
    let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
        (
            [
                shell("printf 'x:abc,'"),
                vec![("framing", json!("netstring"))],
            ]
            .concat(),
            "not netstring frames",
        ),
        (
            [shell("printf 'a long line'"), vec![("max_frame", json!(4))]].concat(),
            "longer than 4 bytes",
        ),
        (
            vec![("program", json!("cat")), ("framing", json!("json"))],
            "inport 'framing'",
        ),
        (
            vec![("program", json!("cat")), ("args", json!("-n"))],
            "inport 'args'",
        ),
        (
            vec![("program", json!("cat")), ("env", json!({"A": 1}))],
            "inport 'env'",
        ),
        (
            vec![
                ("program", json!("cat")),
                ("brackets", json!({"open": "<"})),
            ],
            "inport 'brackets'",
        ),
        (
            vec![("program", json!("cat")), ("restart", json!("sometimes"))],
            "inport 'restart'",
        ),
        (
            vec![("program", json!("no-such-program-anywhere"))],
            "not found in PATH",
        ),
        (
            vec![
                ("program", json!("cat")),
                ("env", json!({"LD_PRELOAD": "/tmp/evil.so"})),
            ],
            "LD_PRELOAD is refused",
        ),
        (
            vec![("program", json!("cat")), ("max_frame", json!(1u64 << 40))],
            "inport 'max_frame'",
        ),
    ];
    for (settings, expected) in cases {
        let (_, outcome) = run(&registry, &exec_graph(&settings), data(&["x"]));
        assert_eq!(
            outcome.errors.len(),
            1,
            "{settings:?}: {:?}",
            outcome.errors
        );
        assert!(
            outcome.errors[0].1.contains(expected),
            "{settings:?}: {:?}",
            outcome.errors
        );
    }
}

#[test]
fn programs_run_only_when_the_operator_allows_them() {
    let settings = [("program", json!("cat"))];
    let (_, outcome) = run(&Registry::with_core(), &exec_graph(&settings), data(&["x"]));
    let message = &outcome.errors[0].1;
    assert!(message.contains("external programs are off"), "{message}");
    assert!(message.contains("--allow-exec"), "{message}");

    let registry = Registry::with_core();
    exec::register(&registry, AllowList::allowing([which("sleep")]));
    let (_, outcome) = run(&registry, &exec_graph(&settings), data(&["x"]));
    let message = &outcome.errors[0].1;
    assert!(message.contains("is not allowed"), "{message}");
    assert!(message.contains("--allow-exec"), "{message}");
}

#[test]
fn a_failing_program_is_restarted_until_the_limit() {
    let registry = registry();
    let mut settings = shell("echo started >&2; exit 1");
    settings.push(("restart", json!("on-failure")));
    settings.push(("max_restarts", json!(2)));
    let mut network =
        Network::start(&exec_graph(&settings), &registry, NetworkConfig::default()).unwrap();
    // Input stays open: a child that ends while input may still come is restarted.
    let input = network.take_inport("IN").unwrap();
    let outcome = network.wait();
    drop(input);
    let started = outcome.output.iter().filter(|l| *l == "started").count();
    assert_eq!(started, 3, "{:?}", outcome.output);
    let restarting = outcome
        .output
        .iter()
        .filter(|l| l.contains("restarting in"))
        .count();
    assert_eq!(restarting, 2, "{:?}", outcome.output);
    assert_eq!(outcome.errors.len(), 1);
    assert!(
        outcome.errors[0]
            .1
            .contains("giving up after 3 failed runs"),
        "{:?}",
        outcome.errors
    );
}

#[test]
fn an_always_restarted_program_serves_one_ip_per_run() {
    let registry = registry();
    let mut settings = shell(r#"echo ready >&2; read -r line; echo "got $line""#);
    settings.push(("restart", json!("always")));
    let mut network =
        Network::start(&exec_graph(&settings), &registry, NetworkConfig::default()).unwrap();
    let mut input = network.take_inport("IN").unwrap();
    let mut output = network.take_outport("OUT").unwrap();
    for item in ["a", "b", "c"] {
        wait_for_output(&network, "ready");
        input.send(Ip::data(item)).unwrap();
        assert_eq!(output.recv(), Some(Ip::data(format!("got {item}"))));
    }
    // Unless the end of input was seen first, one more run starts and reads that end.
    drop(input);
    let rest: Vec<Ip> = std::iter::from_fn(|| output.recv()).collect();
    assert!(rest.is_empty() || rest == data(&["got "]), "{rest:?}");
    let outcome = network.wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

/// Waits (up to a minute) for the output line `line`.
fn wait_for_output(network: &Network, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(event) = network.events().recv_deadline(deadline) {
        if let Event::Output { message, .. } = event
            && message == line
        {
            return;
        }
    }
    panic!("no output line {line:?}");
}

#[test]
fn a_program_that_never_reads_holds_back_its_input() {
    let registry = registry();
    let settings = [("program", json!("sleep")), ("args", json!(["600"]))];
    let mut network =
        Network::start(&exec_graph(&settings), &registry, NetworkConfig::default()).unwrap();
    let mut input = network.take_inport("IN").unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let feeder = std::thread::spawn(move || {
        let payload = vec![b'x'; 1024];
        for _ in 0..1_000_000 {
            if input.send(Ip::data(payload.clone())).is_err() {
                break;
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Waits until the feeder is held: it got some IPs in, then none for three looks in a row.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut still) = (usize::MAX, 0);
    while still < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = sent.load(Ordering::Relaxed);
        still = if now == last && now > 0 { still + 1 } else { 0 };
        last = now;
    }
    assert!(still == 3, "the feeder never settled: {last} IPs");
    // The edge (1024), the writer's queue (16 batches of at most 256), the pipe (64 KiB: 64
    // IPs) and the writer's buffer (64 KiB) hold it all: a million IPs never get in.
    assert!(
        last < 1024 + 16 * 256 + 64 + 64 + 16,
        "{last} IPs were taken"
    );
    assert!(network.stop_and_wait(Duration::from_secs(30)));
    feeder.join().unwrap();
}

#[test]
fn stop_ends_a_busy_child_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let registry = registry();
    // Ignores SIGTERM, so only SIGKILL ends it; starts a grandchild too.
    let script = format!(
        r#"trap '' TERM; sleep 600 & echo "$$ $!" > {}; echo ready >&2; while :; do :; done"#,
        pids.display()
    );
    let (mut network, _input, pids) = start_writing_pids(&registry, &script, &pids);
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.iter().all(|pid| is_alive(*pid)));
    assert!(network.stop_and_wait(Duration::from_secs(30)));
    assert_ended(&pids);
}

/// Starts `script`, which writes process ids into `pid_file` and then `ready` to stderr;
/// the running network, its inport (held open, so that the child sees no end of input) and
/// the ids.
fn start_writing_pids(
    registry: &Registry,
    script: &str,
    pid_file: &std::path::Path,
) -> (Network, GraphInport, Vec<i32>) {
    let mut network = Network::start(
        &exec_graph(&shell(script)),
        registry,
        NetworkConfig::default(),
    )
    .unwrap();
    let input = network.take_inport("IN").unwrap();
    wait_for_output(&network, "ready");
    let text = std::fs::read_to_string(pid_file).unwrap();
    let pids = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    (network, input, pids)
}

/// Asserts that each of `pids` ends within 10 s.
fn assert_ended(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|pid| is_alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids {
        assert!(!is_alive(*pid), "process {pid} still runs");
    }
}

/// Whether `pid` is a process that has not ended (zombies waiting to be reaped have ended).
fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

#[test]
fn stop_ends_what_an_exited_child_left_holding_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let registry = registry();
    // The shell exits at once; what it leaves behind ignores SIGTERM and keeps stdout open.
    let script = format!(
        r#"sh -c "trap '' TERM; sleep 600" & echo "$$ $!" > {}; echo ready >&2"#,
        pid_file.display()
    );
    let (mut network, _input, pids) = start_writing_pids(&registry, &script, &pid_file);
    let (shell_pid, left) = (pids[0], pids[1]);
    assert_ended(&[shell_pid]);
    assert!(is_alive(left));
    assert!(network.stop_and_wait(Duration::from_secs(30)));
    assert_ended(&[left]);
}

#[test]
fn a_complete_frame_does_not_wait_for_the_next() {
    let registry = registry();
    // A prompt without a newline after the answer, then nothing for a long time.
    let graph = generator(&shell(r#"printf 'answer\n> '; sleep 600"#));
    let mut network = Network::start(&graph, &registry, NetworkConfig::default()).unwrap();
    let mut output = network.take_outport("OUT").unwrap();
    assert_eq!(
        output.recv_timeout(Duration::from_secs(60)),
        Ok(Ip::data("answer"))
    );
    assert!(network.stop_and_wait(Duration::from_secs(30)));
}

//! The `flowd` binary end to end: each test runs it as a user would and checks its exit code,
//! stdout and stderr.
//!
//! Every run has the repository root as its working directory (graphs name files relative to
//! it) and an environment without `FLOWD_LOG` and `RUST_LOG`, so that the caller's logging
//! settings cannot change what the tests see. Fixtures are in `tests/data/cli/`; the example
//! graphs in `examples/` are run against the output `examples/README.md` documents.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowd::Graph;
use flowd::graph::Connection;
use serde_json::Value;

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a run of `flowd` gave.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts the exit code, showing everything the run printed if it differs.
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:#?}");
        self
    }

    fn assert_stdout(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "unexpected stdout: {self:#?}");
        self
    }

    fn assert_stderr_has(&self, part: &str) -> &Self {
        assert!(
            self.stderr.contains(part),
            "stderr lacks {part:?}: {self:#?}"
        );
        self
    }

    fn assert_stdout_has(&self, part: &str) -> &Self {
        assert!(
            self.stdout.contains(part),
            "stdout lacks {part:?}: {self:#?}"
        );
        self
    }
}

/// `flowd` with the given arguments, run from the repository root.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowd"));
    command
        .args(args)
        .current_dir(root())
        .env_remove("FLOWD_LOG")
        .env_remove("RUST_LOG");
    command
}

fn run_command(mut command: Command) -> Run {
    let output = command.output().expect("flowd runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

fn flowd(args: &[&str]) -> Run {
    run_command(command(args))
}

/// `lines` joined, each ending in a newline.
fn lines(lines: &[&str]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// The graph files in `examples/`, relative to the root, sorted.
fn example_graphs() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "fbp" || e == "json"))
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy();
            format!("examples/{name}")
        })
        .collect();
    names.sort();
    names
}

/// Each `$ cargo run -- run [OPTIONS] GRAPH` in a console block of `examples/README.md`, as
/// (arguments after `run`, output written under it).
fn documented_runs() -> Vec<(Vec<String>, String)> {
    let readme = std::fs::read_to_string(root().join("examples/README.md")).expect("a README");
    let mut runs = Vec::new();
    let mut current: Option<(Vec<String>, String)> = None;
    for line in readme.lines() {
        if let Some(args) = line.strip_prefix("$ cargo run -- run ") {
            let args = args.split_whitespace().map(str::to_string).collect();
            current = Some((args, String::new()));
        } else if line.starts_with("```") {
            runs.extend(current.take());
        } else if let Some((_, output)) = &mut current {
            output.push_str(line);
            output.push('\n');
        }
    }
    runs
}

/// Whether a documented run needs WebAssembly components (built by `components/build.sh`).
fn needs_components(args: &[String]) -> bool {
    args.iter().any(|a| a == "--components")
}

/// Whether a documented run is a server, shown started in the background (`... GRAPH &`) and
/// then talked to: only checked here (tests/connect_*.rs test the connectors on free ports).
fn serves(args: &[String]) -> bool {
    args.last().is_some_and(|a| a == "&")
}

/// Runs each documented run and checks its output; checks each server.
fn check_documented_runs(runs: &[(Vec<String>, String)]) {
    for (args, expected) in runs {
        if serves(args) {
            let args = &args[..args.len() - 1];
            let graph = &args[args.len() - 1];
            let mut check = vec!["check"];
            check.extend(args.iter().map(String::as_str));
            flowd(&check)
                .assert_code(0)
                .assert_stdout_has(&format!("{graph}: ok ("));
            continue;
        }
        assert!(!expected.is_empty(), "{args:?}: no output documented");
        let mut full = vec!["run"];
        full.extend(args.iter().map(String::as_str));
        flowd(&full).assert_code(0).assert_stdout(expected);
    }
}

const HELLO: &[&str] = &[
    "Hello from flowd",
    "Each line went through two processes and a bounded edge",
];

#[test]
fn every_example_runs_with_the_output_its_readme_documents() {
    let runs = documented_runs();
    let documented: BTreeSet<&str> = runs
        .iter()
        .filter_map(|(args, _)| args.iter().rev().find(|a| *a != "&").map(String::as_str))
        .collect();
    let present = example_graphs();
    let present: BTreeSet<&str> = present.iter().map(String::as_str).collect();
    assert_eq!(
        documented, present,
        "every example graph has its run documented in examples/README.md, and only those"
    );
    let native: Vec<_> = runs
        .into_iter()
        .filter(|(args, _)| !needs_components(args))
        .collect();
    check_documented_runs(&native);
}

#[test]
#[cfg_attr(
    not(all(flowd_c_guest, flowd_python_guest)),
    ignore = "needs the C and Python guests: bash components/build.sh"
)]
fn the_webassembly_examples_run_with_the_output_their_readme_documents() {
    common::wasm::build_rust_guests();
    common::wasm::optional_guest("c_prefix.wasm");
    common::wasm::optional_guest("py_format.wasm");
    let wasm: Vec<_> = documented_runs()
        .into_iter()
        .filter(|(args, _)| needs_components(args))
        .collect();
    assert!(
        !wasm.is_empty(),
        "examples/README.md documents a WebAssembly run"
    );
    check_documented_runs(&wasm);
    flowd(&[
        "check",
        "--components",
        "components/dist",
        "examples/wasm.fbp",
    ])
    .assert_code(0)
    .assert_stdout_has("examples/wasm.fbp: ok (");
}

#[test]
fn the_examples_print_what_they_are_about() {
    // The README is checked above; this pins the outputs themselves, so that a change to an
    // example and its README together still shows up here.
    let expected: &[(&str, &[&str])] = &[
        ("examples/hello.fbp", HELLO),
        ("examples/wordcount.fbp", &["69"]),
        (
            "examples/collect.json",
            &[
                "1",
                "two",
                r#"{"three":3}"#,
                "[4,5]",
                "true",
                "42",
                r#"[1,"two",{"three":3},[4,5],true,42]"#,
            ],
        ),
        ("examples/fanout.fbp", &["apple", "banana", "cherry", "9"]),
        ("examples/countdown.fbp", &["3", "2", "1", "liftoff!"]),
    ];
    for (graph, output) in expected {
        let run = flowd(&["run", graph]);
        run.assert_code(0).assert_stdout(&lines(output));
        assert_eq!(run.stderr, "", "{graph}: nothing on stderr: {run:#?}");
    }
}

#[test]
fn the_bundled_example_runs() {
    flowd(&["run", "examples/hello.fbp"])
        .assert_code(0)
        .assert_stdout(&lines(HELLO));
}

#[test]
fn help_lists_the_protocol_server() {
    flowd(&["--help"])
        .assert_code(0)
        .assert_stdout_has("Serve the FBP Network Protocol over WebSocket");
}

#[test]
fn run_refuses_an_unknown_component_and_suggests_a_name() {
    let run = flowd(&["run", "tests/data/cli/unknown_component.fbp"]);
    run.assert_code(1)
        .assert_stdout("")
        .assert_stderr_has("invalid graph")
        .assert_stderr_has("process 'Echo': unknown component 'core/Repaet'")
        .assert_stderr_has("(did you mean 'core/Repeat'?)");
}

#[test]
fn run_reports_malformed_json_with_line_and_column() {
    flowd(&["run", "tests/data/cli/malformed.json"])
        .assert_code(1)
        .assert_stdout("")
        .assert_stderr_has("tests/data/cli/malformed.json")
        .assert_stderr_has("invalid JSON graph at line 4, column 3: trailing comma");
}

#[test]
fn run_reports_malformed_fbp_with_line_and_column() {
    flowd(&["run", "tests/data/cli/malformed.fbp"])
        .assert_code(1)
        .assert_stdout("")
        .assert_stderr_has("tests/data/cli/malformed.fbp")
        .assert_stderr_has("invalid .fbp graph at line 3, column 1:")
        .assert_stderr_has("node 'IN', which is never given a component");
}

#[test]
fn a_missing_graph_file_is_named() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("no-such-graph.fbp");
    let missing = missing.to_str().expect("a UTF-8 path");
    for command in ["run", "check"] {
        flowd(&[command, missing])
            .assert_code(1)
            .assert_stdout("")
            .assert_stderr_has(&format!("flowd: {missing}: "))
            .assert_stderr_has("No such file or directory");
    }
    flowd(&["convert", missing, "--to", "json"])
        .assert_code(1)
        .assert_stdout("")
        .assert_stderr_has(missing);
}

#[test]
fn run_takes_the_smallest_capacity() {
    for capacity in ["1", "2", "15"] {
        flowd(&["run", "examples/hello.fbp", "--capacity", capacity])
            .assert_code(0)
            .assert_stdout(&lines(HELLO));
    }
}

#[test]
fn run_refuses_more_processes_than_the_system_has_room_for() {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    // Twice the memory maps' bound: flowd's own limit is lower still. Files are read on a
    // thread of its own by each process (most components run as tasks and need none).
    let maps = read("/proc/sys/vm/max_map_count").unwrap_or(65_530);
    let count = maps / 2;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let graph = dir.path().join("huge.fbp");
    let mut text = String::from("'x' -> IN n0(core/ReadLines)\n");
    for i in 1..count {
        text.push_str(&format!("n{} OUT -> IN n{i}(core/ReadLines)\n", i - 1));
    }
    std::fs::write(&graph, text).expect("the graph is written");
    flowd(&["run", graph.to_str().expect("a UTF-8 path")])
        .assert_code(1)
        .assert_stdout("")
        .assert_stderr_has(&format!("cannot start {count} processes"))
        .assert_stderr_has("this runtime can run at most");
    flowd(&["run", "examples/hello.fbp", "--max-processes", "1"])
        .assert_code(1)
        .assert_stderr_has("at most 1 at once");
}

#[test]
fn a_failing_process_fails_the_run_but_not_the_others() {
    flowd(&["run", "tests/data/cli/failing_process.fbp"])
        .assert_code(1)
        .assert_stdout(&lines(&["still running"]))
        .assert_stderr_has(
            "flowd: process 'Read' failed: cannot read 'tests/data/cli/no-such-file.txt': ",
        );
}

#[test]
fn a_deadlock_ends_the_run_with_an_error_naming_what_each_process_waits_on() {
    flowd(&["run", "tests/data/cli/deadlock.fbp"])
        .assert_code(1)
        .assert_stdout(&lines(&["still running"]))
        .assert_stderr_has("flowd: deadlock: ")
        .assert_stderr_has("'Loop' (core/Repeat) waits to receive on Loop.in");
}

#[test]
fn check_warns_of_a_cycle_that_nothing_feeds() {
    flowd(&["check", "tests/data/cli/deadlock.fbp"])
        .assert_code(0)
        .assert_stdout("tests/data/cli/deadlock.fbp: ok (2 processes, 2 connections)\n")
        .assert_stderr_has("flowd: warning: 'Loop' is in a cycle that nothing feeds");
}

#[test]
fn check_accepts_every_example() {
    // Examples run with WebAssembly guests are checked with them, with the guests' test.
    let with_guests: BTreeSet<String> = documented_runs()
        .into_iter()
        .filter(|(args, _)| needs_components(args))
        .filter_map(|(args, _)| args.into_iter().rev().find(|a| a != "&"))
        .collect();
    for graph in example_graphs()
        .iter()
        .filter(|g| !with_guests.contains(*g))
    {
        let run = flowd(&["check", graph]);
        run.assert_code(0)
            .assert_stdout_has(&format!("{graph}: ok ("));
        assert_eq!(run.stdout.lines().count(), 1, "{run:#?}");
        assert_eq!(run.stderr, "", "no warning for an example: {run:#?}");
    }
    flowd(&["check", "examples/hello.fbp"])
        .assert_code(0)
        .assert_stdout("examples/hello.fbp: ok (2 processes, 3 connections)\n");
}

#[test]
fn check_lists_every_problem() {
    let run = flowd(&["check", "tests/data/cli/invalid.json"]);
    run.assert_code(1)
        .assert_stdout("")
        .assert_stderr_has("flowd: tests/data/cli/invalid.json: invalid graph:\n");
    let problems: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|line| line.strip_prefix("  - "))
        .collect();
    assert_eq!(
        problems,
        vec![
            "process 'Echo': unknown component 'core/Repaet' (did you mean 'core/Repeat'?)",
            "duplicate process id 'Show'",
            "edge Copy.out[0] -> Show.in[1]: port 'in' of process 'Show' is not an array port, \
             but index 1 was given",
            "edge Copy.output[1] -> Ghost.in: component 'core/Split' of process 'Copy' has no \
             outport 'output' (it has 'out')",
            "edge Copy.output[1] -> Ghost.in: no process 'Ghost'",
            "exported inport 'IN': no process 'Nobody'",
        ],
        "{run:#?}"
    );
    flowd(&["check", "tests/data/cli/unknown_component.fbp"])
        .assert_code(1)
        .assert_stderr_has("(did you mean 'core/Repeat'?)");
}

#[test]
fn components_lists_each_component_with_its_ports() {
    let run = flowd(&["components"]);
    run.assert_code(0);
    let block: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("core/Repeat "))
        .take_while(|line| !line.is_empty())
        .collect();
    assert_eq!(
        block.len(),
        4,
        "core/Repeat, its description, two ports: {run:#?}"
    );
    assert_eq!(block[0], "core/Repeat  (forward)");
    assert_eq!(block[1].trim(), "Forwards every packet unchanged");
    let words =
        |line: &str| -> Vec<String> { line.split_whitespace().take(3).map(String::from).collect() };
    assert_eq!(words(block[2]), ["in", "in", "all"]);
    assert_eq!(words(block[3]), ["out", "out", "all"]);
    // Array ports are marked.
    run.assert_stdout_has("out out[]");
}

#[test]
fn components_json_gives_a_name_and_ports_per_spec() {
    let run = flowd(&["components", "--json"]);
    run.assert_code(0);
    let specs: Value = serde_json::from_str(&run.stdout).expect("the output is JSON");
    let specs = specs.as_array().expect("an array of specs");
    let mut names = BTreeSet::new();
    for spec in specs {
        let name = spec["name"].as_str().expect("every spec has a name");
        assert!(spec["inports"].is_array(), "{spec}");
        assert!(spec["outports"].is_array(), "{spec}");
        names.insert(name.to_string());
    }
    for core in [
        "core/Repeat",
        "core/Output",
        "core/ReadLines",
        "core/Split",
        "core/Merge",
    ] {
        assert!(names.contains(core), "{core} in {names:?}");
    }
    let repeat = specs
        .iter()
        .find(|spec| spec["name"] == "core/Repeat")
        .expect("core/Repeat");
    assert_eq!(repeat["inports"][0]["name"], "in");
    assert_eq!(repeat["outports"][0]["name"], "out");
    // The text listing shows the same components.
    let text = flowd(&["components"]);
    let listed: BTreeSet<String> = text
        .stdout
        .lines()
        .filter(|line| !line.starts_with(' ') && !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .map(String::from)
        .collect();
    assert_eq!(listed, names);
}

#[test]
fn convert_to_json_gives_the_graph_the_fbp_file_reads_to() {
    let graphs: Vec<String> = example_graphs()
        .into_iter()
        .filter(|g| g.ends_with(".fbp"))
        .collect();
    assert!(graphs.len() >= 4, "{graphs:?}");
    for graph in graphs {
        let run = flowd(&["convert", &graph, "--to", "json"]);
        run.assert_code(0);
        let converted = Graph::from_json(&run.stdout)
            .unwrap_or_else(|e| panic!("{graph}: the output is an FBP JSON graph: {e}"));
        let loaded = flowd::graph::load(&root().join(&graph)).expect("the example loads");
        assert_eq!(converted, loaded, "{graph}");
    }
}

/// The connections with their metadata left out (`.fbp` cannot express it).
fn bare_connections(graph: &Graph) -> Vec<Connection> {
    graph
        .connections
        .iter()
        .cloned()
        .map(|mut connection| {
            match &mut connection {
                Connection::Edge(edge) => edge.metadata = None,
                Connection::Iip(iip) => iip.metadata = None,
            }
            connection
        })
        .collect()
}

#[test]
fn convert_to_fbp_reads_back_to_the_same_graph() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (graph, output) in [
        ("tests/data/cli/roundtrip.json", "5\n"),
        ("examples/collect.json", ""),
    ] {
        let run = flowd(&["convert", graph, "--to", "fbp"]);
        run.assert_code(0);
        let original = flowd::graph::load(&root().join(graph)).expect("the graph loads");
        let read_back = Graph::from_fbp(&run.stdout)
            .unwrap_or_else(|e| panic!("{graph}: the output is .fbp: {e}\n{}", run.stdout));
        assert_eq!(read_back.nodes, original.nodes, "{graph}");
        assert_eq!(
            bare_connections(&read_back),
            bare_connections(&original),
            "{graph}"
        );
        assert_eq!(read_back.inports, original.inports, "{graph}");
        assert_eq!(read_back.outports, original.outports, "{graph}");

        // The converted file runs as the original does.
        let name = Path::new(graph).with_extension("fbp");
        let converted = dir.path().join(name.file_name().expect("a file name"));
        std::fs::write(&converted, &run.stdout).expect("written");
        let converted = converted.to_str().expect("a UTF-8 path");
        let expected = flowd(&["run", graph]);
        expected.assert_code(0);
        if !output.is_empty() {
            expected.assert_stdout(output);
        }
        flowd(&["run", converted])
            .assert_code(0)
            .assert_stdout(&expected.stdout);
    }
    // Nothing .fbp cannot say is lost from this one.
    let run = flowd(&["convert", "tests/data/cli/roundtrip.json", "--to", "fbp"]);
    let original = flowd::graph::load(&root().join("tests/data/cli/roundtrip.json")).unwrap();
    assert_eq!(Graph::from_fbp(&run.stdout).unwrap(), original);
}

#[test]
fn help_describes_the_commands_and_their_arguments() {
    let run = flowd(&["--help"]);
    run.assert_code(0);
    for part in [
        "Usage: flowd",
        "run",
        "check",
        "components",
        "convert",
        "--log",
    ] {
        run.assert_stdout_has(part);
    }
    let run = flowd(&["run", "--help"]);
    run.assert_code(0);
    for part in ["Usage: flowd run", "<GRAPH>", "--capacity", ".fbp"] {
        run.assert_stdout_has(part);
    }
    flowd(&["convert", "--help"])
        .assert_code(0)
        .assert_stdout_has("--to <TO>")
        .assert_stdout_has("json")
        .assert_stdout_has("fbp");
    flowd(&["--version"])
        .assert_code(0)
        .assert_stdout(&format!("flowd {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_usage_error_exits_with_2() {
    for args in [
        &["run"][..],
        &["frobnicate"],
        &["convert", "examples/hello.fbp"],
        &["convert", "examples/hello.fbp", "--to", "yaml"],
        &["run", "--capacity", "lots", "examples/hello.fbp"],
        &["components", "--yaml"],
    ] {
        let run = flowd(args);
        run.assert_code(2)
            .assert_stdout("")
            .assert_stderr_has("error: ")
            .assert_stderr_has("try '--help'");
    }
}

#[test]
fn logs_go_to_stderr_never_to_stdout() {
    // Quiet by default.
    let run = flowd(&["run", "examples/hello.fbp"]);
    run.assert_code(0).assert_stdout(&lines(HELLO));
    assert_eq!(run.stderr, "", "{run:#?}");

    let by_flag = flowd(&["--log", "debug", "run", "examples/hello.fbp"]);
    let by_flag_after = flowd(&["run", "examples/hello.fbp", "--log", "debug"]);
    let mut by_env = command(&["run", "examples/hello.fbp"]);
    by_env.env("FLOWD_LOG", "debug");
    let by_env = run_command(by_env);
    for run in [by_flag, by_flag_after, by_env] {
        run.assert_code(0)
            .assert_stdout(&lines(HELLO))
            .assert_stderr_has("DEBUG")
            .assert_stderr_has("process started");
    }
}

/// Known bug, see the report: `graph::Error::File` and `graph::Error::Io` print their cause in
/// their message and also return it as `source()`, so `flowd`'s `{:#}` prints it twice:
/// `flowd: x.json: invalid JSON graph at line 4, column 3: trailing comma: invalid JSON graph at
/// line 4, column 3: trailing comma`.
#[test]
fn a_load_error_states_its_cause_once() {
    let run = flowd(&["run", "tests/data/cli/malformed.json"]);
    run.assert_code(1);
    assert_eq!(run.stderr.matches("trailing comma").count(), 1, "{run:#?}");
}

#[test]
fn a_policy_file_grants_a_wasm_component_what_it_names() {
    common::wasm::build_rust_guests();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let graph = dir.path().join("env.fbp");
    std::fs::write(
        &graph,
        "'FLOWD_CLI_TEST_VALUE' -> IN Read(hostile/ReadEnv) OUT -> IN Show(core/Output)\n",
    )
    .expect("written");
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"components": {"hostile/ReadEnv": {"env": ["FLOWD_CLI_TEST_VALUE=granted"]}}}"#,
    )
    .expect("written");
    let graph = graph.to_str().expect("a UTF-8 path");
    let policy = policy.to_str().expect("a UTF-8 path");
    let guests = "tests/guests/dist";

    // Without the policy the variable is not there: the process fails, flowd exits 1.
    flowd(&["run", "--components", guests, graph])
        .assert_code(1)
        .assert_stderr_has(
            "process 'Read' failed: environment variable FLOWD_CLI_TEST_VALUE is not set",
        );
    // With it, the guest sees exactly the granted value.
    flowd(&["run", "--components", guests, "--policy", policy, graph])
        .assert_code(0)
        .assert_stdout("granted\n");
    // A malformed policy is refused before anything runs.
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"components": {"x": {"memory": 1}}}"#,
    )
    .expect("written");
    let bad = dir.path().join("bad.json");
    flowd(&[
        "run",
        "--components",
        guests,
        "--policy",
        bad.to_str().expect("UTF-8"),
        graph,
    ])
    .assert_code(1)
    .assert_stderr_has("unknown field `memory`");
}

#[test]
fn a_native_component_runs_only_with_allow_native() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir
        .path()
        .join(common::native::upper().file_name().unwrap());
    std::fs::copy(common::native::upper(), &library).unwrap();
    let graph = dir.path().join("shout.fbp");
    std::fs::write(
        &graph,
        "'quiet words' -> IN U(native/Upper) OUT -> IN Show(core/Output)\n",
    )
    .unwrap();
    let (graph, library, components) = (
        graph.to_str().unwrap(),
        library.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    );
    flowd(&["run", graph, "--allow-native", library])
        .assert_code(0)
        .assert_stdout("QUIET WORDS\n");
    flowd(&["run", graph, "--components", components])
        .assert_code(1)
        .assert_stderr_has("unknown component 'native/Upper'")
        .assert_stderr_has("were not loaded: native components need --allow-native");
}

#[test]
fn core_exec_runs_a_program_only_with_allow_exec() {
    flowd(&["run", "examples/exec.fbp"])
        .assert_code(1)
        .assert_stderr_has("external programs are off")
        .assert_stderr_has("--allow-exec");
    flowd(&["run", "--allow-exec", "/nonexistent", "examples/exec.fbp"])
        .assert_code(1)
        .assert_stderr_has("is not allowed");
}

#[test]
fn graph_files_are_read_up_to_a_limit_the_operator_sets() {
    flowd(&["check", "/dev/zero"])
        .assert_code(1)
        .assert_stderr_has("/dev/zero: larger than 67108864 bytes, the limit for a graph file");
    flowd(&["--max-graph-bytes", "100", "check", "examples/hello.fbp"])
        .assert_code(1)
        .assert_stderr_has("examples/hello.fbp: larger than 100 bytes");
    flowd(&["--max-graph-bytes", "100000", "check", "examples/hello.fbp"]).assert_code(0);
}

#[test]
fn json_logs_name_the_graph_node_and_component_of_each_process_line() {
    let run = flowd(&[
        "run",
        "examples/hello.fbp",
        "--log-format",
        "json",
        "--log",
        "flowd=debug",
    ]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let started: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "process started")
        .collect();
    assert!(!started.is_empty(), "{lines:#?}");
    for line in started {
        let span = &line["span"];
        assert_eq!(span["graph"], "HelloFlowd", "{line}");
        assert!(
            span["node"].as_str().is_some_and(|n| !n.is_empty()),
            "{line}"
        );
        assert!(
            span["component"].as_str().is_some_and(|c| c.contains('/')),
            "{line}"
        );
    }
}

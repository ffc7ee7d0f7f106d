//! Graceful drain on SIGTERM, as operators stop flowd: `flowd run` and `flowd serve` as real
//! processes, signalled as a supervisor would.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::protocol::Client;
use common::served::Served;
use serde_json::json;

/// How long a signalled flowd may take to exit in these tests: far more than it needs; a
/// process still there after it is stuck.
const EXIT_WITHIN: Duration = Duration::from_secs(60);

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) with the pid of a child this test started and has not reaped.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0, "the signal is sent");
}

/// `flowd run` of a graph of `ticks` (a `core/Interval`, `count` ticks `interval_ms` apart)
/// into `core/Output`, with `extra` arguments; stdout and stderr piped.
fn run_ticks(count: u64, interval_ms: u64, extra: &[&str]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("ticks.fbp");
    std::fs::write(
        &file,
        format!(
            "'{interval_ms}' -> INTERVAL ticks(core/Interval)\n'{count}' -> COUNT ticks\n\
             ticks OUT -> IN show(core/Output)\n"
        ),
    )
    .expect("written");
    let child = Command::new(env!("CARGO_BIN_EXE_flowd"))
        .arg("run")
        .arg(&file)
        .args(extra)
        .env_remove("FLOWD_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowd run starts");
    (child, dir)
}

/// Waits for `child` to exit (killing it after [`EXIT_WITHIN`]); its status, stdout lines and
/// stderr.
fn finish(
    mut child: Child,
    mut lines: impl Iterator<Item = String>,
) -> (bool, Vec<String>, String) {
    let deadline = Instant::now() + EXIT_WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().expect("a status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flowd did not exit within {EXIT_WITHIN:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rest: Vec<String> = lines.by_ref().collect();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status.success(), rest, stderr)
}

#[test]
fn a_run_signalled_once_lets_what_is_in_flight_finish() {
    let (mut child, _dir) = run_ticks(20, 50, &["--drain-timeout", "60"]);
    let mut lines = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok);
    assert_eq!(lines.next().as_deref(), Some("1"));
    signal(&child, libc::SIGTERM);
    let (success, rest, stderr) = finish(child, lines);
    assert!(success, "{stderr}");
    assert!(stderr.contains("draining"), "{stderr}");
    let expected: Vec<String> = (2..=20).map(|n| n.to_string()).collect();
    assert_eq!(rest, expected, "{stderr}");
}

#[test]
fn a_run_that_does_not_finish_in_time_is_stopped_at_the_deadline() {
    let (mut child, _dir) = run_ticks(1_000_000, 20, &["--drain-timeout", "1"]);
    let mut lines = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok);
    assert_eq!(lines.next().as_deref(), Some("1"));
    signal(&child, libc::SIGTERM);
    let (_, rest, stderr) = finish(child, lines);
    assert!(
        stderr.contains("still running after 1 s of draining: stopping"),
        "{stderr}"
    );
    assert!(rest.len() < 999_999, "it was stopped");
}

#[test]
fn a_second_signal_stops_at_once() {
    let (mut child, _dir) = run_ticks(1_000_000, 20, &["--drain-timeout", "3600"]);
    let mut lines = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok);
    assert_eq!(lines.next().as_deref(), Some("1"));
    signal(&child, libc::SIGINT);
    assert!(lines.next().is_some(), "it goes on draining");
    signal(&child, libc::SIGTERM);
    let (_, _, stderr) = finish(child, lines);
    assert!(stderr.contains("stopping now"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_signalled_closes_graph_inports_lets_the_network_finish_and_autosaves() {
    let state = tempfile::tempdir().expect("a directory");
    let file = state.path().join("main.json");
    std::fs::write(
        &file,
        json!({
            "properties": {"name": "main"},
            "inports": {"in": {"process": "relay", "port": "in"}},
            "processes": {
                "relay": {"component": "core/Repeat"},
                "show": {"component": "core/Output"}
            },
            "connections": [
                {"src": {"process": "relay", "port": "out"}, "tgt": {"process": "show", "port": "in"}}
            ]
        })
        .to_string(),
    )
    .expect("written");
    let path = file.to_str().expect("UTF-8");
    let mut served = Served::start(
        &["--graph", path, "--autosave", "--drain-timeout", "3600"],
        state.path(),
    );
    let mut client = Client::connect(&served.url, None).await;
    // An edit not yet saved, and a network fed only through its exported inport.
    client.add_node("main", "late", "core/Drop").await;
    client
        .request("network", "start", json!({"graph": "main"}), "started")
        .await;
    signal(&served.child, libc::SIGTERM);
    // Closing its inport ends the network long before the hour is up; then flowd exits.
    let deadline = Instant::now() + EXIT_WITHIN;
    while served.is_alive() {
        assert!(Instant::now() < deadline, "flowd serve did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = served.child.wait().expect("a status");
    assert!(status.success(), "{status:?}");
    let saved = std::fs::read_to_string(&file).expect("the graph file");
    assert!(saved.contains("\"late\""), "{saved}");
}

//! The operations listener of a real `flowd serve --metrics`, read over real HTTP while
//! networks run: the IPs counted against those sent, the fill of a deliberately blocked
//! edge, a failing process's state, and health and readiness.

mod common;

use std::time::{Duration, Instant};

use common::http;
use common::protocol::Client;
use common::served::Served;
use serde_json::json;

/// How long a test waits for the metrics to show what it expects.
const WAIT: Duration = Duration::from_secs(30);

/// `flowd serve --metrics 127.0.0.1:0` and the address of its operations listener.
fn serve(state: &tempfile::TempDir) -> (Served, String) {
    let components = common::wasm::components_dir();
    let components = components.to_str().expect("a UTF-8 path");
    let served = Served::start(
        &["--metrics", "127.0.0.1:0", "--components", components],
        state.path(),
    );
    let address = served
        .line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no operations address in {:?}", served.line))
        .to_string();
    (served, address)
}

fn get(address: &str, path: &str) -> http::Reply {
    http::request(address, "GET", path, b"").expect("the operations listener answers")
}

/// The value of the sample `name{labels}` in `text`, labels given as `key="value"` parts in
/// any order.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let inner = rest.strip_prefix('{')?.strip_suffix('}')?;
        let parts: Vec<&str> = inner.split(',').collect();
        labels
            .iter()
            .all(|label| parts.contains(label))
            .then(|| value.parse().ok())?
    })
}

/// Waits until `check` holds for the scraped metrics; panics with the last scrape if not.
fn until(address: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = get(address, "/metrics").text();
        if check(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never showed:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_what_flows_show_a_full_edge_and_a_failed_process() {
    let state = tempfile::tempdir().expect("a directory");
    let (served, ops) = serve(&state);
    assert_eq!(get(&ops, "/healthz").status, 200);
    assert_eq!(get(&ops, "/readyz").status, 200);
    assert_eq!(get(&ops, "/nothing").status, 404);
    let mut client = Client::connect(&served.url, None).await;

    // Fed from outside: 50 packets of 5 bytes through `relay`.
    client.clear("counted", false).await;
    client.add_node("counted", "relay", "core/Repeat").await;
    client.add_node("counted", "sink", "core/Drop").await;
    client
        .add_edge("counted", ("relay", "out"), ("sink", "in"))
        .await;
    client
        .export("counted", "addinport", "in", ("relay", "in"))
        .await;
    client
        .request("network", "start", json!({"graph": "counted"}), "started")
        .await;
    for n in 0..50 {
        let packet =
            json!({"graph": "counted", "port": "in", "event": "data", "payload": 10_000 + n});
        client.send("runtime", "packet", packet).await;
    }
    let edge = ["graph=\"counted\"", "src=\"relay.out\"", "tgt=\"sink.in\""];
    let text = until(&ops, "50 IPs on relay.out -> sink.in", |text| {
        sample(text, "flowd_edge_ips_total", &edge) == Some(50.0)
    });
    assert_eq!(sample(&text, "flowd_edge_bytes_total", &edge), Some(250.0));
    let into_sink = ["graph=\"counted\"", "node=\"sink\"", "direction=\"in\""];
    assert_eq!(
        sample(&text, "flowd_process_ips_total", &into_sink),
        Some(50.0)
    );
    let out_of_relay = ["graph=\"counted\"", "node=\"relay\"", "direction=\"out\""];
    assert_eq!(
        sample(&text, "flowd_process_bytes_total", &out_of_relay),
        Some(250.0)
    );

    // One IP an hour goes on: the edge into the throttle fills up, and the process feeding it
    // blocks sending.
    let lines = vec!["x"; 20_000].join("\n");
    client.clear("jammed", false).await;
    client.add_node("jammed", "split", "core/SplitText").await;
    client.add_node("jammed", "hold", "core/Throttle").await;
    client.add_node("jammed", "sink", "core/Drop").await;
    client
        .add_edge("jammed", ("split", "out"), ("hold", "in"))
        .await;
    client
        .add_edge("jammed", ("hold", "out"), ("sink", "in"))
        .await;
    client
        .add_iip("jammed", json!(3_600_000), ("hold", "interval"))
        .await;
    client
        .add_iip("jammed", json!(lines), ("split", "in"))
        .await;
    client
        .request("network", "start", json!({"graph": "jammed"}), "started")
        .await;
    let full = ["graph=\"jammed\"", "src=\"split.out\"", "tgt=\"hold.in\""];
    let blocked = [
        "graph=\"jammed\"",
        "node=\"split\"",
        "component=\"core/SplitText\"",
        "state=\"blocked\"",
    ];
    until(&ops, "a full edge into hold", |text| {
        let queued = sample(text, "flowd_edge_queued_batches", &full);
        queued.is_some() && queued == sample(text, "flowd_edge_capacity_batches", &full)
    });
    let text = until(&ops, "split blocked", |text| {
        sample(text, "flowd_process_state", &blocked) == Some(1.0)
    });
    let sending = ["graph=\"jammed\"", "node=\"split\"", "direction=\"send\""];
    assert!(
        sample(&text, "flowd_process_blocked_seconds_total", &sending).is_some_and(|s| s > 0.0),
        "{text}"
    );

    // A process that fails while the rest of its network goes on.
    client.clear("broken", false).await;
    client.add_node("broken", "parse", "json/Parse").await;
    client.add_node("broken", "relay", "core/Repeat").await;
    client.add_node("broken", "sink", "core/Drop").await;
    client
        .add_edge("broken", ("relay", "out"), ("sink", "in"))
        .await;
    client
        .export("broken", "addinport", "in", ("relay", "in"))
        .await;
    client
        .add_iip("broken", json!("{not json"), ("parse", "in"))
        .await;
    client
        .request("network", "start", json!({"graph": "broken"}), "started")
        .await;
    let failed = [
        "graph=\"broken\"",
        "node=\"parse\"",
        "component=\"json/Parse\"",
        "state=\"failed\"",
    ];
    until(&ops, "parse failed", |text| {
        sample(text, "flowd_process_state", &failed) == Some(1.0)
    });
    // A sandboxed process: its linear memory and its CPU time.
    client.clear("guest", false).await;
    client.add_node("guest", "up", "text/Uppercase").await;
    client.add_node("guest", "sink", "core/Drop").await;
    client
        .add_edge("guest", ("up", "out"), ("sink", "in"))
        .await;
    client
        .export("guest", "addinport", "in", ("up", "in"))
        .await;
    client
        .request("network", "start", json!({"graph": "guest"}), "started")
        .await;
    for _ in 0..100 {
        let packet =
            json!({"graph": "guest", "port": "in", "event": "data", "payload": "some text"});
        client.send("runtime", "packet", packet).await;
    }
    let up = ["graph=\"guest\"", "src=\"up.out\"", "tgt=\"sink.in\""];
    let guest = [
        "graph=\"guest\"",
        "node=\"up\"",
        "component=\"text/Uppercase\"",
    ];
    let text = until(&ops, "100 IPs out of the guest", |text| {
        sample(text, "flowd_edge_ips_total", &up) == Some(100.0)
    });
    let memory = sample(&text, "flowd_process_memory_bytes", &guest).unwrap_or_default();
    assert!(memory >= 65_536.0, "at least one page: {text}");
    let cpu = sample(&text, "flowd_process_cpu_seconds_total", &guest);
    assert!(cpu.is_some_and(|s| s > 0.0), "{text}");

    let text = get(&ops, "/metrics").text();
    assert!(text.contains("flowd_clients 1\n"), "{text}");
    assert!(text.contains("flowd_networks_running 4\n"), "{text}");
    let received = sample(&text, "flowd_frames_total", &["direction=\"received\""]);
    assert!(
        received.is_some_and(|n| n >= 150.0),
        "the packets and edits sent: {text}"
    );
    assert!(
        text.contains("flowd_dropped_packet_frames_total "),
        "{text}"
    );

    // `flowd top` reads the same: the full edge comes first among the edges.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flowd"))
        .args(["top", "--once", &format!("http://{ops}")])
        .env_remove("FLOWD_LOG")
        .output()
        .expect("flowd top runs");
    let view = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{view}");
    assert!(view.contains("4 networks running"), "{view}");
    let edges: Vec<&str> = view
        .lines()
        .skip_while(|line| !line.contains("EDGE"))
        .collect();
    assert!(
        edges[1].contains("split.out -> hold.in") && edges[1].ends_with("100%"),
        "{view}"
    );
}

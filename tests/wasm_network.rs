//! Network grants: hostile guests (tests/guests/rust/hostile-http and hostile-socket) try every
//! way out through `wasi:http` and `wasi:sockets`, without grants and with grants that open
//! exactly one door, against servers on loopback written on plain std sockets.

mod common;

use std::net::TcpListener;

use common::http::Canned;
use common::port;
use common::wasm::{host, hostile_dir, registry_with};
use flowd::component::wasm::Grants;
use flowd::engine::NetworkConfig;
use flowd::{Graph, Network};
use serde_json::json;

/// Runs `component` (hostile/Http or hostile/Socket) on each of `attempts`, with `grants`;
/// returns one report per attempt, in order.
fn attempt(component: &str, grants: Grants, attempts: &[String]) -> Vec<String> {
    let registry = registry_with(&host(&[(component, grants)]), &[&hostile_dir()]);
    let mut graph = Graph::new("net");
    graph.add_node("guest", component);
    for attempt in attempts {
        graph.add_iip(json!(attempt), port("guest", "in"));
    }
    graph.add_node("show", "core/Output");
    graph.add_edge(port("guest", "out"), port("show", "in"));
    let outcome = Network::start(&graph, &registry, NetworkConfig::default())
        .expect("starts")
        .wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.output.len(), attempts.len(), "{:?}", outcome.output);
    outcome.output
}

fn http(origins: &[String]) -> Grants {
    Grants {
        http: origins.to_vec(),
        ..Grants::default()
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port")
}

#[test]
fn without_a_grant_every_http_request_is_denied() {
    let server = Canned::start(|_, _, _| (200, String::new(), b"secret".to_vec()));
    let port = server
        .address
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let attempts = [
        format!("http://{}/", server.address),
        format!("http://localhost:{port}/"),
        format!("POST http://{}/ payload", server.address),
        "https://example.com/".to_string(),
        "http://[::1]:80/".to_string(),
    ];
    for report in attempt("hostile/Http", Grants::default(), &attempts) {
        assert_eq!(report, "error: HttpRequestDenied", "{report}");
    }
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn an_http_grant_opens_its_origin_and_nothing_else() {
    let server = Canned::start(|method, path, body| {
        let text = format!("{method} {path} {}", String::from_utf8_lossy(body));
        (200, String::new(), text.into_bytes())
    });
    let other = Canned::start(|_, _, _| (200, String::new(), b"other".to_vec()));
    let port = server
        .address
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let grants = http(&[format!("http://{}", server.address)]);
    let reports = attempt(
        "hostile/Http",
        grants,
        &[
            format!("http://{}/a?b=1", server.address),
            format!("POST http://{}/p data", server.address),
            format!("https://{}/", server.address),
            format!("http://{}/", other.address),
            format!("http://localhost:{port}/"),
        ],
    );
    assert_eq!(reports[0], "200 11 GET /a?b=1 ");
    assert_eq!(reports[1], "200 12 POST /p data");
    // Another scheme, another port, another name for the same host: each is its own origin.
    for report in &reports[2..] {
        assert_eq!(report, "error: HttpRequestDenied");
    }
    assert_eq!(other.requests.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn a_redirect_to_a_denied_origin_is_not_followed() {
    let denied = Canned::start(|_, _, _| (200, String::new(), b"inside".to_vec()));
    let target = format!("http://{}/", denied.address);
    let location = target.clone();
    let server = Canned::start(move |_, _, _| (302, format!("Location: {location}\r\n"), vec![]));
    let grants = http(&[format!("http://{}", server.address)]);
    let reports = attempt(
        "hostile/Http",
        grants,
        &[format!("http://{}/go", server.address), target],
    );
    // The host hands the 302 to the guest as it is; the guest's own follow-up is refused.
    assert_eq!(reports[0], "302 0 ");
    assert_eq!(reports[1], "error: HttpRequestDenied");
    assert_eq!(
        denied.requests.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn a_port_wildcard_grants_every_port_of_its_host_only() {
    let server = Canned::start(|_, _, _| (204, String::new(), vec![]));
    let grants = http(&["http://127.0.0.1:*".to_string()]);
    let reports = attempt(
        "hostile/Http",
        grants,
        &[
            format!("http://{}/", server.address),
            format!("http://127.0.0.1:{}/", closed_port()),
            format!("http://127.0.0.2:{}/", closed_port()),
        ],
    );
    assert_eq!(reports[0], "204 0 ");
    assert_eq!(reports[1], "error: ConnectionRefused");
    assert_eq!(reports[2], "error: HttpRequestDenied");
}

#[test]
fn a_huge_response_is_cut_at_the_body_limit() {
    let server = Canned::start(|_, _, _| (200, String::new(), vec![b'x'; 3 << 20]));
    let grants = Grants {
        net_body_mib: Some(1),
        ..http(&[format!("http://{}", server.address)])
    };
    let reports = attempt(
        "hostile/Http",
        grants,
        &[format!("http://{}/", server.address)],
    );
    assert!(
        reports[0].starts_with("error: ") && reports[0].contains("body size"),
        "{reports:?}"
    );
}

#[test]
fn a_name_granted_does_not_reach_a_local_address_it_resolves_to() {
    // The machine's own name resolves to a local address on most hosts (127.0.1.1, or a
    // container's private address): a name grant must not lead there.
    let Some(name) = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
    else {
        return;
    };
    let resolved: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 80))
        .map(Iterator::collect)
        .unwrap_or_default();
    if resolved.is_empty() {
        eprintln!("skipped: {name} does not resolve here");
        return;
    }
    let server = Canned::start(|_, _, _| (200, String::new(), b"inside".to_vec()));
    let port = server
        .address
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let reports = attempt(
        "hostile/Http",
        http(&[format!("http://{name}:{port}")]),
        &[format!("http://{name}:{port}/")],
    );
    assert_eq!(reports[0], "error: DestinationIpProhibited", "{resolved:?}");
}

#[test]
fn sockets_are_refused_without_a_grant() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address");
    let reports = attempt(
        "hostile/Socket",
        Grants::default(),
        &[
            format!("tcp {address}"),
            format!("udp {address}"),
            "listen 127.0.0.1:0".to_string(),
            "lookup localhost".to_string(),
        ],
    );
    for report in &reports {
        assert!(report.starts_with("error: "), "{reports:?}");
    }
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(listener.accept().is_err(), "a connection got through");
}

#[test]
fn a_connect_grant_opens_one_address() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for stream in listener.incoming().flatten() {
            let mut writer = stream.try_clone().expect("a clone");
            let mut line = String::new();
            let _ = BufReader::new(stream).read_line(&mut line);
            // One write, so the answer is not split into pieces by the formatter.
            let _ = writer.write_all(format!("you said {}\n", line.trim()).as_bytes());
        }
    });
    let grants = Grants {
        connect: vec![address.to_string()],
        ..Grants::default()
    };
    let reports = attempt(
        "hostile/Socket",
        grants,
        &[
            format!("tcp {address}"),
            format!("tcp 127.0.0.1:{}", closed_port()),
            "listen 127.0.0.1:0".to_string(),
            "listen 0.0.0.0:0".to_string(),
        ],
    );
    assert_eq!(reports[0], "ok you said hello");
    // Refused, not merely closed: nothing listens there, but the grant does not reach it.
    assert!(
        reports[1].starts_with("error: Permission denied"),
        "{reports:?}"
    );
    // Connecting may bind an ephemeral port; listening on one is something else.
    assert!(reports[2].starts_with("error: "), "{reports:?}");
    assert!(reports[3].starts_with("error: "), "{reports:?}");
}

#[test]
fn a_listen_grant_opens_one_address_to_listen_on() {
    let free = closed_port();
    let grants = Grants {
        listen: vec![format!("127.0.0.1:{free}")],
        ..Grants::default()
    };
    let reports = attempt(
        "hostile/Socket",
        grants,
        &[
            format!("listen 127.0.0.1:{free}"),
            format!("listen 127.0.0.1:{}", closed_port()),
        ],
    );
    assert_eq!(reports[0], format!("ok 127.0.0.1:{free}"));
    assert!(reports[1].starts_with("error: "), "{reports:?}");
}

#[test]
fn malformed_grants_are_refused_with_the_grant_named() {
    for (grant, expected) in [
        ("ftp://example.com", "scheme"),
        ("https://example.com/path", "origin"),
        ("https://ex*ample.com", "wildcard"),
        ("http://example.com:port", "port"),
    ] {
        let registry = registry_with(
            &host(&[("hostile/Http", http(&[grant.to_string()]))]),
            &[&hostile_dir()],
        );
        let mut graph = Graph::new("bad");
        graph.add_node("guest", "hostile/Http");
        let outcome =
            Network::start(&graph, &registry, NetworkConfig::default()).map(Network::wait);
        let message = match outcome {
            Ok(outcome) => format!("{:?}", outcome.errors),
            Err(error) => error.to_string(),
        };
        assert!(
            message.contains(grant) && message.contains(expected),
            "{grant}: {message}"
        );
    }
}

#[test]
fn the_example_fetch_component_reaches_its_granted_origin_only() {
    use common::wasm::components_dir;
    let server =
        Canned::start(|_, path, _| (200, "X-Seen: yes\r\n".into(), path.as_bytes().to_vec()));
    let other = Canned::start(|_, _, _| (200, String::new(), b"no".to_vec()));
    let grants = http(&[format!("http://{}", server.address)]);
    let registry = registry_with(&host(&[("web/Fetch", grants)]), &[&components_dir()]);
    let mut graph = Graph::new("fetch");
    graph.add_node("fetch", "web/Fetch");
    graph.add_iip(
        json!(format!("http://{}/hello", server.address)),
        port("fetch", "in"),
    );
    graph.add_iip(
        json!(format!("http://{}/", other.address)),
        port("fetch", "in"),
    );
    graph.add_node("show", "core/Output");
    graph.add_node("failed", "core/Output");
    graph.add_edge(port("fetch", "out"), port("show", "in"));
    graph.add_edge(port("fetch", "error"), port("failed", "in"));
    let outcome = Network::start(&graph, &registry, NetworkConfig::default())
        .expect("starts")
        .wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let reports: Vec<serde_json::Value> = outcome
        .output
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let ok = reports
        .iter()
        .find(|r| r["status"] == 200)
        .expect("a response");
    assert_eq!(ok["body"], "/hello");
    assert_eq!(ok["headers"]["x-seen"], "yes");
    let refused = reports
        .iter()
        .find(|r| r.get("error").is_some())
        .expect("a refusal");
    assert_eq!(refused["error"], "HttpRequestDenied");
}

#[test]
fn a_refusal_is_logged_with_the_node_host_and_port() {
    let dir = tempfile::tempdir().expect("a directory");
    let blocked = closed_port();
    let graph = dir.path().join("net.fbp");
    std::fs::write(
        &graph,
        format!(
            "'http://127.0.0.1:{blocked}/x' -> IN Guest(hostile/Http) OUT -> IN Show(core/Output)\n\
             'tcp 127.0.0.1:{blocked}' -> IN Sock(hostile/Socket) OUT -> IN Show2(core/Output)\n"
        ),
    )
    .expect("written");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_flowd"))
        .arg("run")
        .arg("--components")
        .arg(hostile_dir())
        .arg("--cache-dir")
        .arg(common::wasm::cache_dir())
        .args(["--log", "warn"])
        .arg(&graph)
        .output()
        .expect("flowd runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("error: HttpRequestDenied"), "{stdout}");
    for (node, what) in [("Guest", "HTTP request"), ("Sock", "connect or send to")] {
        let line = stderr
            .lines()
            .find(|l| l.contains("refused") && l.contains(node))
            .unwrap_or_else(|| panic!("no refusal logged for {node}: {stderr}"));
        assert!(line.contains(what), "{line}");
        assert!(line.contains(&format!("127.0.0.1:{blocked}")), "{line}");
    }
}

#[test]
#[cfg_attr(
    not(flowd_js_guest),
    ignore = "needs the JavaScript guest: bash components/build.sh"
)]
fn a_javascript_guest_fetches_its_granted_origin_only() {
    // Only this guest: it is 12 MB, and the other tests need not compile it.
    let guest = common::wasm::optional_guest("js_fetch.wasm");
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::copy(&guest, dir.path().join("js_fetch.wasm")).expect("copied");
    let server =
        Canned::start(|_, path, _| (200, String::new(), format!("js saw {path}").into_bytes()));
    let other = Canned::start(|_, _, _| (200, String::new(), b"no".to_vec()));
    let grants = http(&[format!("http://{}", server.address)]);
    let registry = registry_with(&host(&[("js/Fetch", grants)]), &[dir.path()]);
    let mut graph = Graph::new("fetch");
    graph.add_node("fetch", "js/Fetch");
    graph.add_iip(
        json!(format!("http://{}/a", server.address)),
        port("fetch", "in"),
    );
    graph.add_iip(
        json!(format!("http://{}/b", other.address)),
        port("fetch", "in"),
    );
    graph.add_node("show", "core/Output");
    graph.add_edge(port("fetch", "out"), port("show", "in"));
    let outcome = Network::start(&graph, &registry, NetworkConfig::default())
        .expect("starts")
        .wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let reports: Vec<serde_json::Value> = outcome
        .output
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert_eq!(reports.len(), 2, "{:?}", outcome.output);
    assert_eq!(reports[0]["status"], 200);
    assert_eq!(reports[0]["body"], "js saw /a");
    assert!(reports[1]["error"].is_string(), "{reports:?}");
    assert_eq!(other.requests.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn a_guest_is_refused_by_an_https_server_no_root_vouches_for() {
    let port = common::http::untrusted_tls();
    let reports = attempt(
        "hostile/Http",
        http(&[format!("https://localhost:{port}")]),
        &[format!("https://localhost:{port}/")],
    );
    assert!(reports[0].starts_with("error: "), "{reports:?}");
}

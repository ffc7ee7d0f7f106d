//! `flowd serve`: the FBP protocol server, for noflo-ui and other clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args as ClapArgs;

use super::drain::SignalHandlers;
use crate::component::Registry;
use crate::graph::Graph;
use crate::protocol::Capabilities;
use crate::runtime::{Runtime, RuntimeConfig, SharedRuntime};
use crate::server::ops::OpsServer;
use crate::server::{Server, ServerConfig};

/// Where the noflo-ui URL printed at start points by default (the hosted noflo-ui).
/// Flowhub, the hosted noflo-ui.
const DEFAULT_UI: &str = "https://app.flowhub.io/";

/// noflo-ui's own build of its latest version, from the noflo project.
const COMMUNITY_UI: &str = "https://noflojs.org/noflo-ui/";

/// The options of `flowd serve`.
#[derive(Debug, Clone, ClapArgs)]
pub struct ServeArgs {
    /// The main graph (FBP JSON or .fbp): loaded at start, written back by `network:persist`
    /// and `--autosave`. Without it, the bundled example graph is served (and not saved).
    #[arg(long, value_name = "FILE")]
    pub graph: Option<PathBuf>,

    /// The address to listen on. Anything but loopback needs a secret.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3569")]
    pub listen: SocketAddr,

    /// A secret that grants full control. May be given several times. Without any secret,
    /// every local client has full control.
    #[arg(long, env = "FLOWD_SECRET", value_name = "SECRET")]
    pub secret: Vec<String>,

    /// A secret that grants read-only access: follow graphs, network status and components.
    #[arg(long, value_name = "SECRET")]
    pub readonly_secret: Vec<String>,

    /// A JSON file mapping secrets to capabilities: `{"SECRET": "all" | "readonly" |
    /// ["protocol:graph", "network:status", ...]}`.
    #[arg(long, value_name = "FILE")]
    pub access: Option<PathBuf>,

    /// The runtime id (a UUID) noflo-ui knows this runtime by [default: one made at first
    /// start and kept in the state directory].
    #[arg(long, value_name = "UUID")]
    pub id: Option<String>,

    /// Where the runtime id is kept [default: $XDG_STATE_HOME/flowd, or ~/.local/state/flowd].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// The label noflo-ui shows.
    #[arg(long, default_value = "flowd")]
    pub label: String,

    /// The component library of graphs made in noflo-ui.
    #[arg(long, default_value = "flowd")]
    pub namespace: String,

    /// Write the main graph back to its file shortly after every edit.
    #[arg(long, requires = "graph")]
    pub autosave: bool,

    /// Accept graphs (FBP JSON or .fbp) sent as component source (`component:source`) and
    /// offer `component:setsource`; no other language is built, so it is off by default.
    #[arg(long)]
    pub graph_sources: bool,

    /// A PEM certificate chain: serve `wss://` (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The largest frame a client may send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_frame_bytes)]
    pub max_frame_bytes: usize,

    /// Bytes of frames that may wait for a client that does not read before it is disconnected
    /// (packet frames beyond 4 MiB are dropped instead).
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().client_queue_bytes)]
    pub client_queue_bytes: usize,

    /// Requests per second a client may send on average (bursts of 5x are allowed).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().requests_per_second)]
    pub max_requests_per_second: u32,

    /// Serve /metrics (Prometheus), /healthz and /readyz over HTTP on ADDR: a port (on
    /// loopback) or an address. Off unless given.
    #[arg(long, value_name = "ADDR", value_parser = ops_address)]
    pub metrics: Option<SocketAddr>,

    /// Packets shown to clients (`network:data`) per edge per second, after a burst of as
    /// many; the rest are counted and not shown. 0 shows every packet.
    #[arg(long, value_name = "N", default_value_t = crate::runtime::DEFAULT_DATA_RATE)]
    pub data_rate: u32,

    /// The noflo-ui to point the printed URL at, such as a local copy for a machine without
    /// internet [default: Flowhub (app.flowhub.io), and noflo-ui's community build
    /// (noflojs.org/noflo-ui)].
    #[arg(long, value_name = "URL")]
    pub ui: Option<String>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            serve: ServeArgs,
        }
        // Parsing no arguments cannot fail: every option has a default.
        Wrapper::try_parse_from(["flowd"])
            .map(|w| w.serve)
            .unwrap_or_else(|e| unreachable!("defaults parse: {e}"))
    }
}

/// Runs the server until SIGINT or SIGTERM, draining its networks for up to `drain_timeout`
/// (see [`drained`]); `cluster`: the cluster it serves and places graphs over, if any.
pub fn serve(
    args: ServeArgs,
    registry: Arc<Registry>,
    limits: super::Limits,
    cluster: Option<Arc<crate::cluster::Cluster>>,
    drain_timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let secrets = secrets(&args)?;
    let full_secret = args.secret.first().cloned();
    let id = match &args.id {
        Some(id) => id.clone(),
        None => stable_id(args.state_dir.as_deref()),
    };
    let config = RuntimeConfig {
        id: id.clone(),
        label: args.label.clone(),
        namespace: args.namespace.clone(),
        secrets,
        main_file: args.graph.clone(),
        autosave: args.autosave,
        max_graph_bytes: limits.max_graph_bytes,
        graph_sources: args.graph_sources,
        network: crate::engine::NetworkConfig {
            max_processes: limits.max_processes,
            watch_rate: (args.data_rate > 0).then_some(args.data_rate),
            ..Default::default()
        },
        cluster,
    };
    let runtime = Runtime::new(config, registry);
    {
        let mut rt = Runtime::lock(&runtime);
        if rt.load_main_file()?.is_none() {
            let graph = Graph::from_fbp(super::EXAMPLE_GRAPH).context("the bundled example")?;
            let id = graph.name().unwrap_or("hello").to_string();
            rt.add_graph(&id, graph, true);
        }
    }
    let server_config = ServerConfig {
        listen: args.listen,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        max_frame_bytes: args.max_frame_bytes,
        requests_per_second: args.max_requests_per_second,
        request_burst: args.max_requests_per_second.saturating_mul(5),
        client_queue_bytes: args.client_queue_bytes,
        ..ServerConfig::default()
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(async move {
        let signals = SignalHandlers::new().context("cannot listen for signals")?;
        let shared = runtime.clone();
        let server = Server::bind(server_config, runtime).await?;
        let ready = Arc::new(AtomicBool::new(false));
        let ops = match args.metrics {
            Some(address) => {
                let ops = OpsServer::bind(address, shared.clone(), ready.clone())
                    .await
                    .with_context(|| format!("cannot listen for operations on {address}"))?;
                let bound = ops.local_addr()?;
                tokio::spawn(ops.run());
                format!("; operations on http://{bound}")
            }
            None => String::new(),
        };
        ready.store(true, Ordering::Release);
        let url = server.url();
        // One line on stdout once listening: test harnesses wait for it.
        let open = |ui: &str| ui_url(ui, &url, &id, full_secret.as_deref());
        let uis = match &args.ui {
            Some(ui) => open(ui),
            None => format!("{} or {}", open(DEFAULT_UI), open(COMMUNITY_UI)),
        };
        println!("flowd listening on {url} (open {uis}){ops}");
        server
            .run(drained(shared, signals, drain_timeout, ready))
            .await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `--metrics`: a port on loopback, or an address.
fn ops_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("'{text}' is neither a port nor an address such as 127.0.0.1:9090"))
}

/// The capabilities of every configured secret.
fn secrets(args: &ServeArgs) -> anyhow::Result<BTreeMap<String, Capabilities>> {
    let mut secrets = BTreeMap::new();
    if let Some(path) = &args.access {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&text).with_context(|| {
                format!("{}: expected {{\"SECRET\": CAPABILITIES}}", path.display())
            })?;
        for (secret, value) in map {
            let caps: Capabilities = match &value {
                serde_json::Value::String(s) => s.parse(),
                serde_json::Value::Array(list) => list
                    .iter()
                    .map(|c| c.as_str().unwrap_or_default().parse())
                    .collect(),
                _ => Err("expected \"all\", \"readonly\" or a list of capabilities".into()),
            }
            .map_err(|e| anyhow::anyhow!("{}: secret entry: {e}", path.display()))?;
            secrets.insert(secret, caps);
        }
    }
    for secret in &args.readonly_secret {
        secrets.insert(secret.clone(), Capabilities::read_only());
    }
    for secret in &args.secret {
        secrets.insert(secret.clone(), Capabilities::all());
    }
    if secrets.keys().any(String::is_empty) {
        anyhow::bail!("a secret must not be empty");
    }
    Ok(secrets)
}

/// The runtime id kept in the state directory, made on first use.
fn stable_id(state_dir: Option<&Path>) -> String {
    let dir = state_dir.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .map(|d| d.join("flowd"))
    });
    let Some(dir) = dir else {
        tracing::warn!("no state directory (HOME unset); the runtime id changes at each start");
        return uuid::Uuid::new_v4().to_string();
    };
    let file = dir.join("runtime-id");
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Ok(id) = uuid::Uuid::parse_str(text.trim())
    {
        return id.to_string();
    }
    let id = uuid::Uuid::new_v4().to_string();
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, &id));
    if let Err(error) = saved {
        tracing::warn!(
            "cannot keep the runtime id in {}: {error}; it changes at each start",
            file.display()
        );
    }
    id
}

/// noflo-ui's URL for this runtime: the whole query is one percent-encoded segment.
pub fn ui_url(ui: &str, address: &str, id: &str, secret: Option<&str>) -> String {
    let mut query = format!("protocol=websocket&address={address}&id={id}");
    if let Some(secret) = secret {
        query.push_str("&secret=");
        query.push_str(secret);
    }
    format!("{ui}#runtime/endpoint?{}", encode_uri_component(&query))
}

/// JavaScript's `encodeURIComponent`.
fn encode_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Completes once a signal asks the server to stop, after draining: the first SIGINT or
/// SIGTERM closes every running network's exported inports and waits up to `timeout` for the
/// networks to finish; a second signal cuts the wait short. What still runs is then stopped
/// (and autosaved) by the server.
async fn drained(
    runtime: SharedRuntime,
    mut signals: SignalHandlers,
    timeout: Duration,
    ready: Arc<AtomicBool>,
) {
    if !signals.next().await {
        return std::future::pending().await;
    }
    ready.store(false, Ordering::Release);
    let running = {
        let mut runtime = Runtime::lock(&runtime);
        runtime.close_inports();
        runtime.running_networks()
    };
    if running == 0 {
        return;
    }
    eprintln!(
        "flowd: draining {running} running network{}: letting what is in flight finish for up \
         to {} s (again to stop now)",
        if running == 1 { "" } else { "s" },
        timeout.as_secs_f64()
    );
    // A deadline past what the clock can hold is none: the drain waits.
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    loop {
        tokio::select! {
            _ = signals.next() => {
                eprintln!("flowd: stopping now");
                return;
            }
            () = tokio::time::sleep(DRAIN_CHECK) => {}
        }
        if Runtime::lock(&runtime).running_networks() == 0 {
            return;
        }
        if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
            eprintln!(
                "flowd: still running after {} s of draining: stopping",
                timeout.as_secs_f64()
            );
            return;
        }
    }
}

/// How often a draining server looks whether its networks have finished.
const DRAIN_CHECK: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ui_url_encodes_the_query_as_one_segment() {
        let url = ui_url("http://ui/", "ws://127.0.0.1:3569", "abc", None);
        assert_eq!(
            url,
            "http://ui/#runtime/endpoint?protocol%3Dwebsocket%26address%3Dws%3A%2F%2F127.0.0.1%3A3569%26id%3Dabc"
        );
    }
}
